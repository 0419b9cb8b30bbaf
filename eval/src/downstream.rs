//! The downstream head on frozen features (SPEC "Downstream evaluation"): head
//! Linear(1000→1000) → ReLU → Linear(1000→classes) (or one linear layer, the probe), Adam,
//! shuffled mini-batches, accuracy on the held-out images after every epoch (the paper's
//! Figure 3 curve).
//!
//! Two modes share [`Head`]: **cached** ([`train_head`]) embeds every image once, exact because
//! the encoder is frozen; **faithful** ([`train_head_faithful`]) is the authors' protocol, with
//! AutoAugment (ImageNet policy) drawn afresh on the uint8 training images every epoch, so the
//! encoder runs over the training set every epoch.

use sipl_shards::Dataset;
use sipl_train::adam::{Adam, AdamConfig};
use sipl_train::rng::sample_rng;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::EvalError;
use crate::features::{Encoder, Preprocess, U8Transform};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadConfig {
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    pub seed: i64,
    /// A single Linear(1000→classes) instead of the two-layer head.
    pub linear_probe: bool,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig { epochs: 100, lr: 1e-4, batch: 64, seed: 0, linear_probe: false }
    }
}

/// One row of the accuracy curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochResult {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_accuracy: f64,
    /// Seconds this epoch took (features included in faithful mode).
    pub seconds: f64,
}

/// The head and its optimizer.
pub struct Head {
    _vs: nn::VarStore,
    net: nn::Sequential,
    adam: Adam,
    cfg: HeadConfig,
}

impl Head {
    pub fn new(dim: i64, classes: i64, device: tch::Device, cfg: HeadConfig) -> Self {
        tch::manual_seed(cfg.seed);
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net = if cfg.linear_probe {
            nn::seq().add(nn::linear(&root / "0", dim, classes, Default::default()))
        } else {
            nn::seq()
                .add(nn::linear(&root / "0", dim, 1000, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&root / "2", 1000, classes, Default::default()))
        };
        sipl_train::model::torchvision_init(&vs); // nn.Linear's weights: uniform(±1/√fan_in)
        let adam = Adam::new(&vs, AdamConfig::new(cfg.lr, 0.0));
        Head { _vs: vs, net, adam, cfg }
    }

    /// One epoch of shuffled mini-batches; the mean training loss. Errors: the optimizer's
    /// (see [`Adam::step`]).
    pub fn train_epoch(&mut self, x: &Tensor, y: &Tensor) -> Result<f64, EvalError> {
        let device = x.device();
        let n = x.size()[0];
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let (mut loss_sum, mut batches) = (Tensor::zeros([], (Kind::Float, device)), 0);
        let mut start = 0;
        while start < n {
            let idx = order.narrow(0, start, (self.cfg.batch as i64).min(n - start));
            let loss = self
                .net
                .forward(&x.index_select(0, &idx))
                .cross_entropy_for_logits(&y.index_select(0, &idx));
            self.adam.zero_grad();
            loss.backward();
            self.adam.step()?;
            loss_sum += loss.detach();
            batches += 1;
            start += self.cfg.batch as i64;
        }
        Ok(loss_sum.double_value(&[]) / batches.max(1) as f64)
    }

    /// Accuracy on (`x`, `y`).
    pub fn accuracy(&self, x: &Tensor, y: &Tensor) -> f64 {
        let n = x.size()[0].max(1);
        tch::no_grad(|| {
            self.net.forward(x).argmax(1, false).eq_tensor(y).sum(Kind::Int64).int64_value(&[])
                as f64
                / n as f64
        })
    }
}

/// Cached mode: trains a head on fixed features (`train_x`, `train_y`), evaluating on
/// (`val_x`, `val_y`) after every epoch.
pub fn train_head(
    (train_x, train_y): (&Tensor, &Tensor),
    (val_x, val_y): (&Tensor, &Tensor),
    classes: i64,
    cfg: HeadConfig,
) -> Result<Vec<EpochResult>, EvalError> {
    let mut head = Head::new(train_x.size()[1], classes, train_x.device(), cfg);
    (1..=cfg.epochs)
        .map(|epoch| {
            let t = std::time::Instant::now();
            let train_loss = head.train_epoch(train_x, train_y)?;
            let val_accuracy = head.accuracy(val_x, val_y);
            Ok(EpochResult { epoch, train_loss, val_accuracy, seconds: t.elapsed().as_secs_f64() })
        })
        .collect()
}

/// Faithful mode: every epoch, AutoAugment (ImageNet policy) on each training image's uint8
/// pixels, drawn from (seed, epoch, image), then an encoder pass over the training set; the
/// held-out features (`val_x`, no augmentation) are computed once by the caller.
#[allow(clippy::too_many_arguments)]
pub fn train_head_faithful(
    encoder: &Encoder,
    ds: &Dataset,
    (train_idx, train_y): (&[usize], &Tensor),
    (val_x, val_y): (&Tensor, &Tensor),
    classes: i64,
    input_size: usize,
    cfg: HeadConfig,
    mut on_epoch: impl FnMut(&EpochResult),
) -> Result<Vec<EpochResult>, EvalError> {
    let mut head = Head::new(val_x.size()[1], classes, val_x.device(), cfg);
    let mut curve = Vec::with_capacity(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let t = std::time::Instant::now();
        let augment = |index: usize, rgb: &mut [u8], w: usize, h: usize| {
            let mut rng = sample_rng(cfg.seed as u64 ^ 0xA07A, epoch as u64, index as u64);
            crate::autoaugment::autoaugment_imagenet(rgb, w, h, &mut rng);
        };
        let pre = Preprocess { on_u8: Some(&augment as U8Transform), on_float: None };
        let x = encoder.embed_with(ds, train_idx, input_size, cfg.batch, pre)?;
        let train_loss = head.train_epoch(&x, train_y)?;
        let val_accuracy = head.accuracy(val_x, val_y);
        let r = EpochResult { epoch, train_loss, val_accuracy, seconds: t.elapsed().as_secs_f64() };
        on_epoch(&r);
        curve.push(r);
    }
    Ok(curve)
}
