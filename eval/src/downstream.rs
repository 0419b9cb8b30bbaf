//! The downstream head on frozen features (METHOD.md "Downstream evaluation"): head
//! Linear(1000→1000) → ReLU → Linear(1000→classes) (or one linear layer, the probe), Adam,
//! shuffled mini-batches, accuracy on the held-out images after every epoch (the paper's
//! Figure 3 curve).
//!
//! Two modes share [`Head`]: **cached** ([`train_head`]) embeds every image once, exact because
//! the encoder is frozen; **faithful** ([`train_head_faithful`]) is the authors' protocol, with
//! AutoAugment (ImageNet policy) drawn afresh on the uint8 training images every epoch, so the
//! encoder runs over the training set every epoch.

use sipl_loader::rng::sample_rng;
use sipl_shards::Dataset;
use sipl_train::adam::{Adam, AdamConfig};
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

impl HeadConfig {
    /// Checks every value against its range (named as `sipl eval downstream`'s flags):
    /// `--epochs` in [1, 1000000], `--lr` in (0, 1), `--batch` in [1, 65536].
    pub fn validate(&self) -> Result<(), sipl_limits::RangeError> {
        sipl_limits::EPOCHS.check("--epochs", self.epochs)?;
        sipl_limits::LR.check("--lr", self.lr)?;
        sipl_limits::BATCH.check("--batch", self.batch)?;
        Ok(())
    }
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig { epochs: 100, lr: 1e-4, batch: 64, seed: 0, linear_probe: false }
    }
}

/// How the frozen encoder's BatchNorm layers run while the head trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderBn {
    /// Eval mode: running statistics, fixed (the encoder is truly frozen). The default.
    #[default]
    Eval,
    /// The authors' variant: the encoder's weights are frozen but its BatchNorm layers stay in
    /// training mode while the head trains (batch statistics in every training forward, running
    /// statistics drifting with momentum 0.1), and the held-out images are embedded in eval
    /// mode with the drifted statistics after every epoch. Faithful mode only: cached features
    /// cannot represent it.
    Train,
}

impl EncoderBn {
    pub fn name(self) -> &'static str {
        match self {
            EncoderBn::Eval => "eval",
            EncoderBn::Train => "train",
        }
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

/// The head's predicted class for every held-out image (in held-out order) after one epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Predictions {
    pub epoch: usize,
    pub classes: Vec<i64>,
}

/// A trained head's record: the accuracy curve, and the held-out predictions at the best
/// epoch (the first with the highest accuracy, as the summary picks it) and at the last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeadRun {
    pub curve: Vec<EpochResult>,
    pub best: Predictions,
    pub last: Predictions,
}

impl HeadRun {
    /// Records an epoch: `predicted` are the held-out predictions [N] (int64, any device),
    /// `truth` the labels [N].
    fn push(
        &mut self,
        epoch: usize,
        train_loss: f64,
        (predicted, truth): (&Tensor, &Tensor),
        seconds: f64,
    ) -> EpochResult {
        let n = truth.size()[0].max(1);
        let right = predicted.eq_tensor(truth).sum(Kind::Int64).int64_value(&[]);
        let val_accuracy = right as f64 / n as f64;
        let classes =
            Vec::<i64>::try_from(predicted.to_device(tch::Device::Cpu)).expect("int64 predictions");
        let r = EpochResult { epoch, train_loss, val_accuracy, seconds };
        if self.curve.iter().all(|c| c.val_accuracy < val_accuracy) {
            self.best = Predictions { epoch, classes: classes.clone() };
        }
        self.last = Predictions { epoch, classes };
        self.curve.push(r);
        r
    }
}

/// The head and its optimizer.
pub struct Head {
    _vs: nn::VarStore,
    net: nn::Sequential,
    adam: Adam,
    cfg: HeadConfig,
}

impl Head {
    /// A freshly initialised head over `dim`-wide features with `classes` outputs.
    ///
    /// # Errors
    /// `cfg` out of range ([`HeadConfig::validate`]), or fewer than 2 classes.
    pub fn new(
        dim: i64,
        classes: i64,
        device: tch::Device,
        cfg: HeadConfig,
    ) -> Result<Self, EvalError> {
        cfg.validate()?;
        sipl_limits::Ints::new(2, u64::MAX).check("--classes", classes)?;
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
        Ok(Head { _vs: vs, net, adam, cfg })
    }

    /// One Adam step on the mini-batch (`x` [B, dim], `y` [B]); the loss, on the device.
    /// Errors: the optimizer's (see [`Adam::step`]).
    pub fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<Tensor, EvalError> {
        let loss = self.net.forward(x).cross_entropy_for_logits(y);
        self.adam.zero_grad();
        loss.backward();
        self.adam.step()?;
        Ok(loss.detach())
    }

    /// The order of one epoch's mini-batches: a permutation of 0..n from libtorch's generator
    /// (seeded by [`Head::new`]), on `device`.
    fn order(n: i64, device: tch::Device) -> Tensor {
        Tensor::randperm(n, (Kind::Int64, device))
    }

    /// One epoch of shuffled mini-batches; the mean training loss. Errors: the optimizer's
    /// (see [`Adam::step`]).
    pub fn train_epoch(&mut self, x: &Tensor, y: &Tensor) -> Result<f64, EvalError> {
        let device = x.device();
        let n = x.size()[0];
        let order = Self::order(n, device);
        let (mut loss_sum, mut batches) = (Tensor::zeros([], (Kind::Float, device)), 0);
        let mut start = 0;
        while start < n {
            let idx = order.narrow(0, start, (self.cfg.batch as i64).min(n - start));
            loss_sum += self.step(&x.index_select(0, &idx), &y.index_select(0, &idx))?;
            batches += 1;
            start += self.cfg.batch as i64;
        }
        Ok(loss_sum.double_value(&[]) / batches.max(1) as f64)
    }

    /// Predicted classes [N] (int64, on the features' device) for features `x` [N, dim].
    pub fn predict(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward(x).argmax(1, false))
    }

    /// Accuracy on (`x`, `y`).
    pub fn accuracy(&self, x: &Tensor, y: &Tensor) -> f64 {
        let n = x.size()[0].max(1);
        self.predict(x).eq_tensor(y).sum(Kind::Int64).int64_value(&[]) as f64 / n as f64
    }
}

/// Cached mode: trains a head on fixed features (`train_x`, `train_y`), evaluating on
/// (`val_x`, `val_y`) after every epoch.
///
/// # Errors
/// A setting out of range ([`Head::new`]) before any work; a non-finite training
/// loss ([`EvalError::NonFinite`]) at the epoch it appears, so that no accuracy of a diverged
/// head is ever reported.
pub fn train_head(
    (train_x, train_y): (&Tensor, &Tensor),
    (val_x, val_y): (&Tensor, &Tensor),
    classes: i64,
    cfg: HeadConfig,
) -> Result<HeadRun, EvalError> {
    let mut head = Head::new(train_x.size()[1], classes, train_x.device(), cfg)?;
    let mut run = HeadRun::default();
    for epoch in 1..=cfg.epochs {
        let t = std::time::Instant::now();
        let train_loss = finite(head.train_epoch(train_x, train_y)?, epoch)?;
        let predicted = head.predict(val_x);
        run.push(epoch, train_loss, (&predicted, val_y), t.elapsed().as_secs_f64());
    }
    Ok(run)
}

/// `loss` when finite, else the error that stops the head's training.
fn finite(loss: f64, epoch: usize) -> Result<f64, EvalError> {
    match loss.is_finite() {
        true => Ok(loss),
        false => Err(EvalError::NonFinite { epoch, value: loss }),
    }
}

/// Faithful mode: every epoch, AutoAugment (ImageNet policy) on each training image's uint8
/// pixels, drawn from (seed, epoch, image), then an encoder pass over the training set.
///
/// With [`EncoderBn::Eval`] the held-out features (`val_x`, no augmentation) are computed once
/// by the caller; with [`EncoderBn::Train`] the encoder embeds each of the head's shuffled
/// mini-batches in training mode (batch statistics; running statistics drift), and the
/// held-out images (`val_idx`) are embedded again after every epoch in eval mode. Errors as
/// [`train_head`].
#[allow(clippy::too_many_arguments)]
pub fn train_head_faithful(
    encoder: &Encoder,
    ds: &Dataset,
    (train_idx, train_y): (&[usize], &Tensor),
    (val_idx, val_x, val_y): (&[usize], &Tensor, &Tensor),
    classes: i64,
    input_size: usize,
    (cfg, bn): (HeadConfig, EncoderBn),
    mut on_epoch: impl FnMut(&EpochResult),
) -> Result<HeadRun, EvalError> {
    let mut head = Head::new(val_x.size()[1], classes, val_x.device(), cfg)?;
    let mut run = HeadRun::default();
    for epoch in 1..=cfg.epochs {
        let t = std::time::Instant::now();
        let augment = |index: usize, rgb: &mut [u8], w: usize, h: usize| {
            let mut rng = sample_rng(cfg.seed as u64 ^ 0xA07A, epoch as u64, index as u64);
            crate::autoaugment::autoaugment_imagenet(rgb, w, h, &mut rng);
        };
        let pre = Preprocess { on_u8: Some(&augment as U8Transform), on_float: None };
        let (train_loss, predicted) = match bn {
            EncoderBn::Eval => {
                let x = encoder.embed_with(ds, train_idx, input_size, cfg.batch, pre)?;
                (finite(head.train_epoch(&x, train_y)?, epoch)?, head.predict(val_x))
            }
            EncoderBn::Train => {
                let order = Vec::<i64>::try_from(
                    Head::order(train_idx.len() as i64, val_x.device()).to_device(tch::Device::Cpu),
                )
                .expect("int64 order");
                let (mut loss_sum, mut batches) = (0.0, 0usize);
                for chunk in order.chunks(cfg.batch.max(1)) {
                    let idx: Vec<usize> = chunk.iter().map(|&i| train_idx[i as usize]).collect();
                    let x = encoder.embed_train_mode(ds, &idx, input_size, pre)?;
                    let pick = Tensor::from_slice(chunk).to_device(train_y.device());
                    loss_sum += head.step(&x, &train_y.index_select(0, &pick))?.double_value(&[]);
                    batches += 1;
                }
                let vx = encoder.embed(ds, val_idx, input_size, cfg.batch)?;
                (finite(loss_sum / batches.max(1) as f64, epoch)?, head.predict(&vx))
            }
        };
        let r = run.push(epoch, train_loss, (&predicted, val_y), t.elapsed().as_secs_f64());
        on_epoch(&r);
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` feature rows of width 8, all `value`, labels alternating over 2 classes.
    fn data(n: i64, value: f64) -> (Tensor, Tensor) {
        let x = Tensor::full([n, 8], value, (Kind::Float, tch::Device::Cpu));
        let y = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).remainder(2);
        (x, y)
    }

    #[test]
    fn settings_out_of_range_are_refused_before_any_step() {
        let (x, y) = data(4, 0.5);
        let base = HeadConfig { epochs: 2, batch: 2, linear_probe: true, ..Default::default() };
        for (cfg, error) in [
            (HeadConfig { batch: 0, ..base }, "--batch = 0: must be in [1, 65536]"),
            (HeadConfig { lr: f64::NAN, ..base }, "--lr = NaN: must be a number in (0, 1)"),
            (HeadConfig { lr: -1.0, ..base }, "--lr = -1"),
            (HeadConfig { lr: 0.0, ..base }, "--lr = 0"),
            (HeadConfig { epochs: 0, ..base }, "--epochs = 0: must be in [1, 1000000]"),
        ] {
            let e = train_head((&x, &y), (&x, &y), 2, cfg).expect_err(error).to_string();
            assert!(e.contains(error), "{e}");
        }
        let e = train_head((&x, &y), (&x, &y), 1, base).expect_err("one class").to_string();
        assert!(e.contains("--classes = 1"), "{e}");
        assert_eq!(train_head((&x, &y), (&x, &y), 2, base).expect("in range").curve.len(), 2);
    }

    #[test]
    fn a_non_finite_loss_stops_the_head_without_a_curve() {
        let (x, y) = data(4, f64::NAN);
        let cfg = HeadConfig { epochs: 3, batch: 2, ..Default::default() };
        match train_head((&x, &y), (&x, &y), 2, cfg) {
            Err(EvalError::NonFinite { epoch: 1, value }) => assert!(value.is_nan()),
            other => panic!("expected a non-finite loss error, got {other:?}"),
        }
    }
}
