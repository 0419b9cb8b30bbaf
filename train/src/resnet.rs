//! ResNet-18 with torchvision's layout and parameter names (He et al. 2015, "Deep Residual
//! Learning for Image Recognition"; `torchvision.models.resnet18`), whose BatchNorm layers can
//! normalise one batch as several groups: [`ResNet18::forward_groups`].
//!
//! Variables are created in the order of `tch::vision::resnet::resnet18`, so a seeded model
//! draws the same initial values as before this module existed.
//!
//! Why groups: SIPL embeds each view (centre, neighbour, styled neighbour) in a pass of its
//! own, so in training mode every view is normalised with its own batch statistics (METHOD.md
//! "Model and training"). Three passes of N patches launch three times the kernels of one pass
//! of 3N, each a third of the size. With `groups = 3` one pass runs every convolution, ReLU,
//! residual add and pooling over all 3N patches, while each BatchNorm layer normalises the
//! three consecutive groups of N with their own statistics and updates its running statistics
//! once per group, in group order: what the three passes compute, up to the rounding of the
//! convolution algorithms chosen for the bigger batch (PyTorch calls per-group statistics in
//! one batch "ghost batch normalisation").

use tch::Tensor;
use tch::nn::{self, ModuleT};

/// A 3×3 or 1×1 convolution without bias, as torchvision's `conv3x3` / `conv1x1`.
fn conv2d(p: nn::Path, c_in: i64, c_out: i64, ksize: i64, padding: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride, padding, bias: false, ..Default::default() };
    nn::conv2d(p, c_in, c_out, ksize, config)
}

/// `xs` through `bn`: in training mode with `groups` > 1, each of `groups` consecutive equal
/// slices of the batch (dimension 0) with its own statistics, one slice after the other.
fn batch_norm(bn: &nn::BatchNorm, xs: &Tensor, train: bool, groups: i64) -> Tensor {
    if !train || groups == 1 {
        return xs.apply_t(bn, train);
    }
    let parts: Vec<Tensor> = xs.chunk(groups, 0).iter().map(|g| g.apply_t(bn, true)).collect();
    Tensor::cat(&parts, 0)
}

/// torchvision's `BasicBlock`: two 3×3 convolutions with a residual connection, downsampled
/// by a strided 1×1 convolution when the shape changes.
#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let conv1 = conv2d(&p / "conv1", c_in, c_out, 3, 1, stride);
        let bn1 = nn::batch_norm2d(&p / "bn1", c_out, Default::default());
        let conv2 = conv2d(&p / "conv2", c_out, c_out, 3, 1, 1);
        let bn2 = nn::batch_norm2d(&p / "bn2", c_out, Default::default());
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = &p / "downsample";
            let conv = conv2d(&d / "0", c_in, c_out, 1, 0, stride);
            (conv, nn::batch_norm2d(&d / "1", c_out, Default::default()))
        });
        BasicBlock { conv1, bn1, conv2, bn2, downsample }
    }

    fn forward(&self, xs: &Tensor, train: bool, groups: i64) -> Tensor {
        let ys = batch_norm(&self.bn1, &xs.apply(&self.conv1), train, groups).relu();
        let ys = batch_norm(&self.bn2, &ys.apply(&self.conv2), train, groups);
        let shortcut = match &self.downsample {
            Some((conv, bn)) => batch_norm(bn, &xs.apply(conv), train, groups),
            None => xs.shallow_clone(),
        };
        (shortcut + ys).relu()
    }
}

/// ResNet-18 (torchvision's `resnet18`): stem, four layers of two [`BasicBlock`]s, global
/// average pooling and a linear classifier.
#[derive(Debug)]
pub struct ResNet18 {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    /// layer1.0, layer1.1, …, layer4.1.
    blocks: Vec<BasicBlock>,
    fc: nn::Linear,
}

impl ResNet18 {
    /// The variables under `p` (`conv1`, `bn1`, `layer1.0.conv1`, …, `fc`), with tch's
    /// initialisation; `num_classes` outputs.
    pub fn new(p: &nn::Path, num_classes: i64) -> Self {
        let conv1 = conv2d(p / "conv1", 3, 64, 7, 3, 2);
        let bn1 = nn::batch_norm2d(p / "bn1", 64, Default::default());
        let mut blocks = Vec::with_capacity(8);
        for (layer, c_in, c_out, stride) in [
            ("layer1", 64, 64, 1),
            ("layer2", 64, 128, 2),
            ("layer3", 128, 256, 2),
            ("layer4", 256, 512, 2),
        ] {
            blocks.push(BasicBlock::new(p / layer / "0", c_in, c_out, stride));
            blocks.push(BasicBlock::new(p / layer / "1", c_out, c_out, 1));
        }
        let fc = nn::linear(p / "fc", 512, num_classes, Default::default());
        ResNet18 { conv1, bn1, blocks, fc }
    }

    /// Outputs [N, num_classes] of images [N, 3, H, W] (any H, W ≥ 32). In training mode,
    /// BatchNorm normalises each of `groups` consecutive equal slices of the batch with its own
    /// statistics and updates its running statistics once per slice, in order: the same as
    /// `groups` separate passes over the slices, concatenated (see the module's docs). In
    /// evaluation mode `groups` changes nothing.
    ///
    /// Panics when `groups` is not a positive divisor of N.
    pub fn forward_groups(&self, xs: &Tensor, train: bool, groups: i64) -> Tensor {
        let n = xs.size()[0];
        assert!(groups >= 1 && n % groups == 0, "{groups} groups do not divide a batch of {n}");
        let mut ys = batch_norm(&self.bn1, &xs.apply(&self.conv1), train, groups)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in &self.blocks {
            ys = block.forward(&ys, train, groups);
        }
        ys.adaptive_avg_pool2d([1, 1]).flat_view().apply(&self.fc)
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_groups(xs, train, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::ModuleT;
    use tch::{Device, Kind};

    #[test]
    fn groups_match_separate_passes() {
        tch::manual_seed(5);
        let (vs_one, mut vs_sep) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
        let one = ResNet18::new(&vs_one.root(), 7);
        let sep = ResNet18::new(&vs_sep.root(), 7);
        vs_sep.copy(&vs_one).expect("same variables");
        let x = Tensor::randn([6, 3, 32, 32], (Kind::Float, Device::Cpu));
        let grouped = one.forward_groups(&x, true, 3);
        let parts: Vec<Tensor> = x.chunk(3, 0).iter().map(|g| sep.forward_t(g, true)).collect();
        let separate = Tensor::cat(&parts, 0);
        let close = |a: &Tensor, b: &Tensor| a.allclose(b, 1e-5, 1e-5, false);
        assert!(close(&grouped, &separate), "outputs differ");
        grouped.square().sum(Kind::Float).backward();
        separate.square().sum(Kind::Float).backward();
        let sep_vars = vs_sep.variables();
        for (name, t) in vs_one.variables() {
            let other = &sep_vars[&name];
            assert!(close(&t, other), "{name}: running statistics differ");
            if t.requires_grad() {
                let (g, h) = (t.grad(), other.grad());
                let scale = h.abs().max().double_value(&[]);
                let diff = (&g - &h).abs().max().double_value(&[]);
                assert!(
                    diff <= 1e-4 * scale.max(1.0),
                    "{name}: gradients differ by {diff} (scale {scale})"
                );
            }
        }
        // A single pass over the whole batch normalises differently: the check above has teeth.
        let joint = sep.forward_t(&x, true);
        assert!(!close(&joint, &separate));
    }
}
