//! Per-sample randomness as a pure function of (seed, epoch, image index): the stream is the
//! same for any worker count, any rank layout, and after a restart at any position.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for sample `index` of `epoch` under `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index))
}

/// The generator for the sample order of `epoch`.
pub fn order_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(splitmix64(seed ^ 0x5EED_0F0D_E500_0000) ^ epoch))
}
