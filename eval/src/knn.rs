//! Weighted k-nearest-neighbour classification on frozen embeddings: the quickest honest check
//! of an encoder (no training, no hyper-parameters to tune).
//!
//! The protocol SSL libraries report (Wu et al. 2018, "Unsupervised feature learning via
//! non-parametric instance discrimination"; DINO's `eval_knn.py`): embeddings are
//! L2-normalised; a held-out image's k nearest training images by cosine similarity `s` vote
//! for their class with weight `exp(s / T)`; the class with the largest total wins (ties go to
//! the lower class index). Defaults: k = 20 and 200, T = 0.07.

use tch::{Kind, Tensor};

use crate::EvalError;
use crate::split::Prepared;

/// Settings of [`knn_predict`].
#[derive(Debug, Clone, PartialEq)]
pub struct KnnConfig {
    /// Neighbourhood sizes, each ≥ 1 (clamped to the number of training images).
    pub k: Vec<usize>,
    /// Temperature of the vote weights, > 0.
    pub temperature: f64,
    /// Held-out images per similarity block (bounds memory: block × train images floats).
    pub block: usize,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig { k: vec![20, 200], temperature: 0.07, block: 256 }
    }
}

/// Predicted classes [N_test] (int64, CPU) for every k of `cfg`, in order.
///
/// `train_x` [N_train, D] and `test_x` [N_test, D] are embeddings (normalised here),
/// `train_y` [N_train] int64 labels in `0..classes`.
pub fn knn_predict(
    (train_x, train_y): (&Tensor, &Tensor),
    test_x: &Tensor,
    classes: i64,
    cfg: &KnnConfig,
) -> Vec<Tensor> {
    tch::no_grad(|| {
        let normalise = |x: &Tensor| {
            let x = x.to_kind(Kind::Float);
            let norm = x.norm_scalaropt_dim(2.0, [1i64], true).clamp_min(1e-12);
            x / norm
        };
        let (train, test) = (normalise(train_x), normalise(test_x));
        let n_train = train.size()[0];
        let k_max = cfg.k.iter().copied().max().unwrap_or(1).min(n_train as usize) as i64;
        let train_t = train.transpose(0, 1);
        let train_y = train_y.to_kind(Kind::Int64);
        let mut out: Vec<Vec<Tensor>> = cfg.k.iter().map(|_| Vec::new()).collect();
        let n_test = test.size()[0];
        let block = cfg.block.max(1) as i64;
        let mut start = 0;
        while start < n_test {
            let len = block.min(n_test - start);
            let sim = test.narrow(0, start, len).matmul(&train_t);
            let (top_sim, top_idx) = sim.topk(k_max, 1, true, true);
            let labels = train_y.index_select(0, &top_idx.view([-1])).view([len, k_max]);
            let weights = (top_sim / cfg.temperature).exp();
            for (slot, &k) in out.iter_mut().zip(&cfg.k) {
                let k = (k as i64).min(k_max);
                let votes = Tensor::zeros([len, classes], (Kind::Float, weights.device()));
                let votes = votes.scatter_add(1, &labels.narrow(1, 0, k), &weights.narrow(1, 0, k));
                slot.push(votes.argmax(1, false));
            }
            start += len;
        }
        out.into_iter()
            .map(|parts| {
                if parts.is_empty() {
                    Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu))
                } else {
                    Tensor::cat(&parts, 0).to_device(tch::Device::Cpu)
                }
            })
            .collect()
    })
}

/// What the kNN vote found on a split's held-out images, for every k.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnOutcome {
    /// Predicted classes of the held-out images, per k (in `cfg.k`'s order).
    pub predicted: Vec<Vec<i64>>,
    /// Their true classes.
    pub truth: Vec<i64>,
    /// Held-out images classified right, per k.
    pub correct: Vec<u64>,
}

/// Embeds both parts of split `p` with `embed` (held-out images after the training ones) and
/// classifies the held-out images by [`knn_predict`]. The one path of `sipl eval knn` and of
/// the training monitor.
///
/// # Errors
/// Whatever `embed` returns; a prediction tensor that cannot be read back.
pub fn knn_split(
    p: &Prepared,
    embed: impl Fn(&[usize]) -> Result<Tensor, EvalError>,
    cfg: &KnnConfig,
) -> Result<KnnOutcome, EvalError> {
    let tx = embed(&p.train)?;
    let vx = embed(&p.held)?;
    let pick = |idx: &[usize]| idx.iter().map(|&i| p.labels[i]).collect::<Vec<i64>>();
    let ty = Tensor::from_slice(&pick(&p.train)).to_device(tx.device());
    let predicted = knn_predict((&tx, &ty), &vx, p.classes, cfg)
        .iter()
        .map(|t| Vec::<i64>::try_from(t).map_err(EvalError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let truth = pick(&p.held);
    let correct = predicted
        .iter()
        .map(|c| c.iter().zip(&truth).filter(|(a, b)| a == b).count() as u64)
        .collect();
    Ok(KnnOutcome { predicted, truth, correct })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_vote_by_weight() {
        // Two tight clusters; a query near each; and a query where one close neighbour of
        // class 1 outweighs two far ones of class 0 at a low temperature.
        let train = Tensor::from_slice(&[1.0f32, 0.0, 0.99, 0.1, 0.0, 1.0, 0.1, 0.99]).view([4, 2]);
        let y = Tensor::from_slice(&[0i64, 0, 1, 1]);
        let test = Tensor::from_slice(&[1.0f32, 0.05, 0.05, 1.0]).view([2, 2]);
        let cfg = KnnConfig { k: vec![1, 4], temperature: 0.07, block: 1 };
        let p = knn_predict((&train, &y), &test, 2, &cfg);
        assert_eq!(Vec::<i64>::try_from(&p[0]).expect("k=1"), vec![0, 1]);
        assert_eq!(Vec::<i64>::try_from(&p[1]).expect("k=4"), vec![0, 1]);

        let train = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.05, 1.0]).view([3, 2]);
        let y = Tensor::from_slice(&[1i64, 0, 0]);
        let test = Tensor::from_slice(&[1.0f32, 0.3]).view([1, 2]);
        let cfg = KnnConfig { k: vec![3], temperature: 0.07, block: 8 };
        let p = knn_predict((&train, &y), &test, 2, &cfg);
        assert_eq!(Vec::<i64>::try_from(&p[0]).expect("k=3"), vec![1]);
        // k beyond the training set is clamped.
        let cfg = KnnConfig { k: vec![50], temperature: 1.0, block: 8 };
        assert_eq!(knn_predict((&train, &y), &test, 2, &cfg)[0].size(), vec![1]);
    }
}
