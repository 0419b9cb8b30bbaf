//! Sample order: a seeded shuffle per epoch, then this rank's share (every `world`-th position
//! from `rank`): disjoint across ranks, and together complete. With `even` (training), the
//! last `len mod world` images of each epoch's shuffled order are left out, so that every rank
//! has the same number of batches (a rank with one batch more would wait forever for the
//! others' gradients); which images those are changes with the epoch.

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
    /// Every rank gets `len / world` images.
    pub even: bool,
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
        let world = self.world.max(1);
        if self.even {
            order.truncate(order.len() - order.len() % world);
        }
        order.into_iter().skip(self.rank).step_by(world).collect()
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
                    let s =
                        Sampler { first: 0, len, seed: 9, shuffle: true, rank, world, even: false };
                    s.epoch_order(2)
                })
                .collect();
            all.sort();
            assert_eq!(all, (0..len).collect::<Vec<_>>(), "len {len} world {world}");
        }
        let s =
            Sampler { first: 0, len: 100, seed: 1, shuffle: true, rank: 0, world: 1, even: false };
        assert_ne!(s.epoch_order(0), s.epoch_order(1));
        assert_eq!(s.epoch_order(3), s.epoch_order(3));
        let plain = Sampler { shuffle: false, ..s };
        assert_eq!(plain.epoch_order(5), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn even_shares_are_equal_disjoint_and_leave_out_fewer_than_world() {
        let (len, world) = (17, 4);
        let shares: Vec<Vec<usize>> = (0..world)
            .map(|rank| {
                let s = Sampler { first: 3, len, seed: 9, shuffle: true, rank, world, even: true };
                s.epoch_order(1)
            })
            .collect();
        assert!(shares.iter().all(|s| s.len() == len / world));
        let mut all: Vec<usize> = shares.concat();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), len - len % world, "disjoint");
        assert!(all.iter().all(|i| (3..3 + len).contains(i)));
        // The left-out image changes between epochs (it is the shuffled order's tail).
        let left_out = |epoch| {
            let mut seen = vec![false; len];
            for rank in 0..world {
                let s = Sampler { first: 0, len, seed: 9, shuffle: true, rank, world, even: true };
                s.epoch_order(epoch).into_iter().for_each(|i| seen[i] = true);
            }
            seen.iter().position(|s| !s).expect("one image left out")
        };
        assert!((0..6).map(left_out).collect::<std::collections::HashSet<_>>().len() > 1);
    }
}
