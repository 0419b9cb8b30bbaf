//! Train / held-out splits for the downstream head and the kNN vote: METHOD.md's "first N kept
//! images" (Tiny val's classes are interleaved, so that split is balanced there), or a seeded
//! stratified split for class-ordered sets. [`prepare`] opens a labelled set and splits it the
//! one way `sipl eval` and the training monitor both use.

use std::collections::BTreeMap;
use std::path::Path;

use sipl_limits::{Ints, RangeError};
use sipl_shards::Dataset;

use crate::EvalError;
use crate::predictions::held_out_fingerprint;

/// (train indices, held-out indices).
pub type Split = (Vec<usize>, Vec<usize>);

/// The first `train` images train, the rest are held out.
pub fn first(n: usize, train: usize) -> Split {
    ((0..train.min(n)).collect(), (train.min(n)..n).collect())
}

/// Per class, a seeded shuffle holds out `held_out_fraction` of its images (at least one when
/// a class has two or more). Deterministic for a seed.
pub fn stratified(labels: &[i64], held_out_fraction: f64, seed: u64) -> Split {
    let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let (mut train, mut held) = (Vec::new(), Vec::new());
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: a small, fixed generator so the split never depends on a crate version.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for (_, mut idx) in by_class {
        for i in (1..idx.len()).rev() {
            idx.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let k = ((idx.len() as f64 * held_out_fraction).round() as usize)
            .min(idx.len().saturating_sub(1));
        let k = if idx.len() >= 2 { k.max(1) } else { k };
        held.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

/// The names errors give the split's settings: `sipl eval`'s flags or `[monitor]`'s keys.
#[derive(Debug, Clone, Copy)]
pub struct SplitKeys {
    pub data: &'static str,
    pub images: &'static str,
    pub train_images: &'static str,
    pub stratified: &'static str,
}

/// `sipl eval`'s flags.
pub const FLAGS: SplitKeys = SplitKeys {
    data: "--data",
    images: "--images",
    train_images: "--train-images",
    stratified: "--stratified",
};

/// How a labelled set is split.
#[derive(Debug, Clone, Copy)]
pub struct SplitSpec {
    /// Only the first N images of the set (none: all).
    pub images: Option<usize>,
    /// The first N (of those) train, the rest are held out; used without `stratified`.
    pub train_images: usize,
    /// A seeded stratified split holding out this share of every class.
    pub stratified: Option<f64>,
    pub split_seed: u64,
    pub keys: SplitKeys,
}

/// A labelled dataset split for an evaluation, with what the outputs record about it.
pub struct Prepared {
    pub ds: Dataset,
    /// Labels of the images used (the first `images`, or all), by dataset index.
    pub labels: Vec<i64>,
    pub classes: i64,
    pub train: Vec<usize>,
    pub held: Vec<usize>,
    /// "first 9000" or "stratified 0.25, seed 0" (", of the first 2000 images" with a cap).
    pub split: String,
    /// [`held_out_fingerprint`] of the held-out images.
    pub held_out: String,
}

/// Opens `data`, checks its labels (against a head of `head` classes when given), and splits
/// it by `spec`; both parts hold images.
///
/// # Errors
/// An unlabelled set, labels beyond the head, a cap or split outside the set (each naming its
/// key), or a shard that cannot be read.
pub fn prepare(data: &Path, spec: &SplitSpec, head: Option<i64>) -> Result<Prepared, EvalError> {
    let k = spec.keys;
    let ds = Dataset::open(data)?;
    let (mut labels, classes) = labels(&ds, data, head)?;
    if let Some(cap) = spec.images {
        Ints::new(2, labels.len() as u64)
            .check(k.images, cap)
            .map_err(|e| e.note(format!("{} holds {} images", data.display(), labels.len())))?;
        labels.truncate(cap);
    }
    let n = labels.len();
    let of = spec.images.map_or(String::new(), |c| format!(", of the first {c} images"));
    let ((train, held), split) = match spec.stratified {
        Some(f) => {
            sipl_limits::HELD_OUT_FRACTION.check(k.stratified, f)?;
            (
                stratified(&labels, f, spec.split_seed),
                format!("stratified {f}, seed {}{of}", spec.split_seed),
            )
        }
        None => {
            Ints::new(1, n.saturating_sub(1) as u64)
                .check(k.train_images, spec.train_images)
                .map_err(|e| {
                    e.note(format!("the dataset has {n} images; the rest are held out"))
                })?;
            (first(n, spec.train_images), format!("first {}{of}", spec.train_images))
        }
    };
    if let (Some(f), true) = (spec.stratified, held.is_empty() || train.is_empty()) {
        let e = RangeError::new(k.stratified, f, "a share that holds out images")
            .note("no class of the dataset has two images to split");
        return Err(e.into());
    }
    let held_out = held_out_fingerprint(&ds, &held)?;
    Ok(Prepared { ds, labels, classes, train, held, split, held_out })
}

/// The labels of every image of `ds` and the number of classes (`head`, when given, which
/// must lie in [2, the set's classes]).
///
/// # Errors
/// A set without class labels or with fewer than two classes, an image without a label or
/// with one beyond the classes.
pub fn labels(ds: &Dataset, data: &Path, head: Option<i64>) -> Result<(Vec<i64>, i64), EvalError> {
    let own = ds.meta().classes.len() as i64;
    if own == 0 {
        return Err(EvalError::Data(format!(
            "{}: the dataset has no class labels; an evaluation needs a labelled set",
            data.display()
        )));
    }
    let classes = match head {
        Some(c) => Ints::new(2, own.max(2) as u64).check("--classes", c).map_err(|e| {
            e.note(format!(
                "the dataset has {own} classes; outputs beyond them would never see a label"
            ))
        })?,
        None => own,
    };
    if classes < 2 {
        return Err(EvalError::Data(format!(
            "{}: the dataset has {classes} class; an evaluation needs at least 2",
            data.display()
        )));
    }
    let mut labels = Vec::with_capacity(ds.len());
    for i in 0..ds.len() {
        let r = ds.record(i)?;
        match r.label {
            Some(l) if (0..classes).contains(&(l as i64)) => labels.push(l as i64),
            Some(l) => {
                return Err(EvalError::Data(format!(
                    "{}: label {l} does not fit a head over {classes} classes (labels 0 to {})",
                    r.path,
                    classes - 1
                )));
            }
            None => {
                return Err(EvalError::Data(format!(
                    "{}: has no label (an evaluation needs a labelled dataset, every image in a \
                     class folder)",
                    r.path
                )));
            }
        }
    }
    Ok((labels, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_holds_out_each_class_and_is_deterministic() {
        let labels: Vec<i64> = (0..40).map(|i| i / 10).collect();
        let (train, held) = stratified(&labels, 0.2, 7);
        assert_eq!(held.len(), 8);
        for c in 0..4 {
            assert_eq!(held.iter().filter(|&&i| labels[i] == c).count(), 2);
        }
        assert_eq!(train.len() + held.len(), 40);
        assert_eq!(stratified(&labels, 0.2, 7), (train, held));
        assert_eq!(first(10, 7), ((0..7).collect(), (7..10).collect()));
    }
}
