//! The downstream head on frozen features (SPEC "Downstream evaluation", cached mode): head
//! Linear(1000→1000) → ReLU → Linear(1000→classes), Adam, shuffled mini-batches, accuracy on
//! the held-out images after every epoch (the paper's Figure 3 curve).

use sipl_train::adam::{Adam, AdamConfig};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

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
}

/// Trains a head on (`train_x`, `train_y`) and evaluates on (`val_x`, `val_y`) after every epoch.
pub fn train_head(
    (train_x, train_y): (&Tensor, &Tensor),
    (val_x, val_y): (&Tensor, &Tensor),
    classes: i64,
    cfg: HeadConfig,
) -> Vec<EpochResult> {
    tch::manual_seed(cfg.seed);
    let device = train_x.device();
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let dim = train_x.size()[1];
    let head = if cfg.linear_probe {
        nn::seq().add(nn::linear(&root / "0", dim, classes, Default::default()))
    } else {
        nn::seq()
            .add(nn::linear(&root / "0", dim, 1000, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&root / "2", 1000, classes, Default::default()))
    };
    let mut adam = Adam::new(&vs, AdamConfig::new(cfg.lr, 0.0));
    let n = train_x.size()[0];
    let mut curve = Vec::with_capacity(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let (mut loss_sum, mut batches) = (Tensor::zeros([], (Kind::Float, device)), 0);
        let mut start = 0;
        while start < n {
            let idx = order.narrow(0, start, (cfg.batch as i64).min(n - start));
            let loss = head
                .forward(&train_x.index_select(0, &idx))
                .cross_entropy_for_logits(&train_y.index_select(0, &idx));
            adam.zero_grad();
            loss.backward();
            adam.step();
            loss_sum += loss.detach();
            batches += 1;
            start += cfg.batch as i64;
        }
        let val_accuracy = tch::no_grad(|| accuracy(&head, val_x, val_y));
        curve.push(EpochResult {
            epoch,
            train_loss: loss_sum.double_value(&[]) / batches.max(1) as f64,
            val_accuracy,
        });
    }
    curve
}

fn accuracy(head: &impl Module, x: &Tensor, y: &Tensor) -> f64 {
    let n = x.size()[0].max(1);
    head.forward(x).argmax(1, false).eq_tensor(y).sum(Kind::Int64).int64_value(&[]) as f64
        / n as f64
}
