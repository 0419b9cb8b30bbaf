//! Train / held-out splits for the downstream head: METHOD.md's "first N kept images" (Tiny val's
//! classes are interleaved, so that split is balanced there), or a seeded stratified split for
//! class-ordered sets.

use std::collections::BTreeMap;

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
