//! Sample order: a seeded shuffle per epoch, then this rank's share (every `world`-th position
//! from `rank`): disjoint across ranks, and together complete.

use rand::RngExt;

use crate::rng::order_rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// The images `first..first + len` of the dataset are sampled.
    pub first: usize,
    pub len: usize,
    pub seed: u64,
    pub shuffle: bool,
    pub rank: usize,
    pub world: usize,
}

impl Sampler {
    /// The dataset indices this rank visits in `epoch`, in order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (self.first..self.first + self.len).collect();
        if self.shuffle {
            let mut rng = order_rng(self.seed, epoch);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
        }
        order.into_iter().skip(self.rank).step_by(self.world.max(1)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_disjoint_and_complete_and_epochs_differ() {
        for (len, world) in [(10, 1), (10, 3), (17, 4), (5, 8)] {
            let mut all: Vec<usize> = (0..world)
                .flat_map(|rank| {
                    Sampler { first: 0, len, seed: 9, shuffle: true, rank, world }.epoch_order(2)
                })
                .collect();
            all.sort();
            assert_eq!(all, (0..len).collect::<Vec<_>>(), "len {len} world {world}");
        }
        let s = Sampler { first: 0, len: 100, seed: 1, shuffle: true, rank: 0, world: 1 };
        assert_ne!(s.epoch_order(0), s.epoch_order(1));
        assert_eq!(s.epoch_order(3), s.epoch_order(3));
        let plain = Sampler { shuffle: false, ..s };
        assert_eq!(plain.epoch_order(5), (0..100).collect::<Vec<_>>());
    }
}
