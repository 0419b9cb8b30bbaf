//! The pretext network (METHOD.md "Model and training"): a ResNet-18 encoder with torchvision's
//! parameter names under `encoder.` (its 1000-d output is the embedding) and the head
//! Linear(2000→4096) → ReLU → Linear(4096→8) under `fc.0` / `fc.2`, the names of the authors'
//! PyTorch model, so weights round-trip both ways.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use sipl_loader::scheme::Scheme;

use crate::resnet::ResNet18;

pub const EMBEDDING: i64 = 1000;
pub const HIDDEN: i64 = 4096;
pub const POSITIONS: i64 = 8;

pub struct PretextModel {
    encoder: ResNet18,
    head: nn::Sequential,
    /// How the views pass through the encoder (`model.joint_views`, `model.batched_views`).
    pub views: ViewPasses,
}

/// How the V views of a batch [V, N, 3, S, S] pass through the encoder in training mode. In
/// evaluation mode BatchNorm uses its running statistics, so every choice computes the same
/// embeddings and the batched ones run one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewPasses {
    /// One encoder pass per view (the paper): BatchNorm normalises each view with its own
    /// statistics.
    #[default]
    PerView,
    /// One pass over all V·N patches with BatchNorm statistics still per view
    /// ([`ResNet18::forward_groups`] with V groups): the same results as `PerView` up to the
    /// rounding of the convolution algorithms, in fewer, bigger kernels.
    Batched,
    /// One pass over all V·N patches with BatchNorm statistics over all views together: changes
    /// results.
    Joint,
}

impl PretextModel {
    /// Creates the variables under `root` (`root / "encoder"`, `root / "fc"`) with tch's
    /// initialisation; [`torchvision_init`] re-draws them as PyTorch would.
    pub fn new(root: &nn::Path) -> Self {
        let encoder = ResNet18::new(&(root / "encoder"), EMBEDDING);
        let fc = root / "fc";
        let head = nn::seq()
            .add(nn::linear(&fc / "0", 2 * EMBEDDING, HIDDEN, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&fc / "2", HIDDEN, POSITIONS, Default::default()));
        PretextModel { encoder, head, views: ViewPasses::PerView }
    }

    /// The 1000-d embedding of a batch of patches [N, 3, S, S].
    pub fn embed(&self, patches: &Tensor, train: bool) -> Tensor {
        self.encoder.forward_groups(patches, train, 1)
    }

    /// Position logits [N, 8] for (centre, neighbour) embeddings.
    pub fn head(&self, centre: &Tensor, neighbour: &Tensor) -> Tensor {
        self.head.forward(&Tensor::cat(&[centre, neighbour], 1))
    }

    /// Logits of every problem of `scheme` from the batch's views [V, N, 3, S, S]: one encoder
    /// pass per view (a centre shared by two problems is embedded once, as in SIPLv1/v3), or
    /// one pass over all V·N patches as [`PretextModel::views`] says.
    pub fn forward(&self, scheme: Scheme, views: &Tensor, train: bool) -> Vec<Tensor> {
        let v = scheme.views() as i64;
        let groups = match (self.views, train) {
            (ViewPasses::PerView, _) => None,
            (ViewPasses::Batched, true) => Some(v),
            (ViewPasses::Joint, _) | (ViewPasses::Batched, false) => Some(1),
        };
        let embeddings: Vec<Tensor> = match groups {
            None => (0..v).map(|i| self.embed(&views.get(i), train)).collect(),
            Some(groups) => {
                let s = views.size();
                let all = views.reshape([v * s[1], s[2], s[3], s[4]]);
                let all = self.encoder.forward_groups(&all, train, groups);
                all.reshape([v, s[1], EMBEDDING]).unbind(0)
            }
        };
        scheme.problems().iter().map(|&(c, n)| self.head(&embeddings[c], &embeddings[n])).collect()
    }
}

/// Bytes a ResNet-18 training step keeps per input pixel of one image on the CPU
/// (activations saved for backward and their gradients). Measured as the peak RSS growth of
/// `sipl bench step`: 962 from batch 4 to 20 at 112², 947 from 2 to 10 at 224²; rounded up.
pub const CPU_TRAIN_BYTES_PER_PIXEL: u64 = 1000;

/// Host memory of a training step over `batch` images of `size`² (the inputs, and on the CPU
/// the activations). Used to refuse a batch that cannot fit before it is tried.
pub fn train_step_bytes(batch: u64, size: u64, device: tch::Device) -> u64 {
    let pixels = batch.saturating_mul(size.saturating_mul(size));
    let per_pixel = 12 + if device == tch::Device::Cpu { CPU_TRAIN_BYTES_PER_PIXEL } else { 0 };
    pixels.saturating_mul(per_pixel)
}

/// The variables of `vs` (parameters and BatchNorm statistics) sorted by name: a `VarStore` is a
/// hash map whose order differs between processes, and every seeded draw, bucket layout and
/// saved file needs one order.
pub fn sorted_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Re-draws every variable of `vs` as `torchvision.models.resnet18()` and `nn.Linear` draw
/// them, where tch's defaults differ: convolutions kaiming-normal (fan_out, ReLU) instead of
/// kaiming-uniform (fan_in); BatchNorm scale 1 instead of uniform(0, 1); linear weights
/// uniform(±1/√fan_in) instead of uniform(±√(6/fan_in)). Biases (uniform(±1/√fan_in) for linear
/// layers, 0 for BatchNorm) and running statistics already agree. Draws come from tch's
/// generator in name order, so `tch::manual_seed` makes them reproducible.
pub fn torchvision_init(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut v) in sorted_variables(vs) {
            let size = v.size();
            let leaf = name.rsplit('.').next().unwrap_or_default();
            match (size.len(), leaf) {
                (4, _) => {
                    let fan_out = (size[0] * size[2] * size[3]) as f64;
                    let _ = v.normal_(0.0, (2.0 / fan_out).sqrt());
                }
                (2, "weight") => {
                    let bound = 1.0 / (size[1] as f64).sqrt();
                    let _ = v.uniform_(-bound, bound);
                }
                (1, "weight") => {
                    let _ = v.fill_(1.0); // BatchNorm scale
                }
                _ => {}
            }
        }
    });
}

/// The loss and its parts for one batch.
pub struct Loss {
    pub total: Tensor,
    /// Cross-entropy of each problem.
    pub ce: Vec<Tensor>,
    /// symKL(f1, f2) (zero for one problem).
    pub kl: Tensor,
}

/// CE(f, y) for one problem; CE(f1,y) + CE(f2,y) + α·symKL(f1,f2) for two, where
/// symKL = KL(p1‖p2) + KL(p2‖p1) on the softmax outputs with batch-mean reduction (METHOD.md).
pub fn loss(logits: &[Tensor], labels: &Tensor, alpha: f64) -> Loss {
    let ce: Vec<Tensor> = logits.iter().map(|f| f.cross_entropy_for_logits(labels)).collect();
    let total = ce.iter().fold(Tensor::zeros([], (Kind::Float, labels.device())), |a, b| a + b);
    let kl = match logits {
        [f1, f2] => sym_kl(f1, f2),
        _ => Tensor::zeros([], (Kind::Float, labels.device())),
    };
    Loss { total: total + &kl * alpha, ce, kl }
}

/// KL(p1‖p2) + KL(p2‖p1) = Σ (p1 − p2)(log p1 − log p2) / batch.
pub fn sym_kl(f1: &Tensor, f2: &Tensor) -> Tensor {
    let (l1, l2) = (f1.log_softmax(1, Kind::Float), f2.log_softmax(1, Kind::Float));
    let batch = f1.size()[0] as f64;
    let kl12 = (l1.exp() * (&l1 - &l2)).sum(Kind::Float) / batch;
    let kl21 = (l2.exp() * (&l2 - &l1)).sum(Kind::Float) / batch;
    kl12 + kl21
}

/// Correct predictions over all problems of a batch (METHOD.md: pretext accuracy counts both), left
/// on the device (no host sync) as an int64 scalar tensor.
pub fn correct_on_device(logits: &[Tensor], labels: &Tensor) -> Tensor {
    logits.iter().fold(Tensor::zeros([], (Kind::Int64, labels.device())), |acc, f| {
        acc + f.argmax(1, false).eq_tensor(labels).sum(Kind::Int64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn};

    #[test]
    fn torchvision_init_draws_pytorch_distributions() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = PretextModel::new(&vs.root());
        torchvision_init(&vs);
        let v = vs.variables();
        let std = |t: &Tensor| t.std(true).double_value(&[]);
        let conv = &v["encoder.layer1.0.conv1.weight"]; // 64×64×3×3: fan_out 576
        assert!((std(conv) / (2.0f64 / 576.0).sqrt() - 1.0).abs() < 0.02, "{}", std(conv));
        let first = &v["encoder.conv1.weight"]; // 64×3×7×7: fan_out 3136
        assert!((std(first) / (2.0f64 / 3136.0).sqrt() - 1.0).abs() < 0.05);
        assert!(v["encoder.bn1.weight"].eq(1.0).all().int64_value(&[]) == 1);
        assert!(v["encoder.layer2.0.downsample.1.weight"].eq(1.0).all().int64_value(&[]) == 1);
        let bound = |t: &Tensor| t.abs().max().double_value(&[]);
        // The bound as libtorch holds it: in float32, which rounds 1/√2000 up by 8.5e-10, so a
        // draw may exceed the float64 bound (it did, one run in several).
        let f32_bound = |fan_in: f64| (1.0 / fan_in.sqrt()) as f32 as f64;
        let fc = &v["fc.0.weight"]; // 4096×2000
        assert!(bound(fc) <= f32_bound(2000.0) && bound(fc) > 0.99 / 2000f64.sqrt());
        assert!(bound(&v["encoder.fc.weight"]) <= f32_bound(512.0));
        assert!(v["encoder.bn1.running_var"].eq(1.0).all().int64_value(&[]) == 1);
    }

    #[test]
    fn only_joint_views_change_training_mode_batch_statistics() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = PretextModel::new(&vs.root());
        let views = Tensor::randn([3, 4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let run =
            |m: &PretextModel, train| tch::no_grad(|| m.forward(Scheme::SiplV1, &views, train));
        let max_diff = |a: &[Tensor], b: &[Tensor]| {
            a.iter().zip(b).map(|(x, y)| (x - y).abs().max().double_value(&[])).fold(0.0, f64::max)
        };
        // Evaluation first: a training-mode pass updates the running statistics.
        let eval_apart = run(&model, false);
        model.views = ViewPasses::Joint;
        let eval_joint = run(&model, false);
        let train_joint = run(&model, true);
        model.views = ViewPasses::PerView;
        let train_apart = run(&model, true);
        model.views = ViewPasses::Batched;
        let train_batched = run(&model, true);
        assert_eq!(eval_joint.len(), 2);
        assert!(max_diff(&eval_apart, &eval_joint) < 1e-5, "running statistics: same logits");
        assert!(max_diff(&train_apart, &train_joint) > 1e-4, "batch statistics span the views");
        // Batched: per-view statistics in one pass (the running statistics moved between the
        // two training passes, which batch statistics do not read).
        assert!(max_diff(&train_apart, &train_batched) < 1e-5, "batched views: per-view logits");
    }
}
