//! `adjust_contrast`: blend with the mean of the grayscale image, clamped to [0, 1].

use super::StyleOp;
use crate::planar::{LUMA, Planar};

pub struct Contrast(pub f32);

impl StyleOp for Contrast {
    fn apply(&self, img: &mut Planar) {
        let n = img.plane_len();
        let (r, g, b) = img.planes_mut();
        let mean = (luma_sum(r, g, b) / n as f64) as f32;
        let (f, rest) = (self.0, (1.0 - self.0) * mean);
        img.data.iter_mut().for_each(|v| *v = (f * *v + rest).clamp(0.0, 1.0));
    }
}

/// The luma of one pixel, in f32 (torchvision's weights).
#[inline(always)]
fn luma(r: f32, g: f32, b: f32) -> f32 {
    LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
}

/// The sum in f64 of every pixel's luma, equal bit for bit to adding them one by one in pixel
/// order, but added eight lanes at a time when that cannot change the result.
///
/// Adding non-negative terms in f64 is exact, in any order, when every partial sum is
/// representable. The terms are f32, so a term t ≥ 2^e is a multiple of 2^(e−23); a sum below
/// 2^E is representable when it is a multiple of 2^(E−53). The lanes assume every term lies in
/// [0, 2] (pixels in [0, 1]; luma weights summing to 1) and take 2^E above 2n: then if no term
/// is outside [0, 2] or in (0, 2^(E−30)), every partial sum of every order is exact and all
/// orders agree. For a 224² patch that excludes a luma in (0, 2^−13), which a dark pixel
/// interpolated to a tiny value can produce; then the sum runs in pixel order.
fn luma_sum(r: &[f32], g: &[f32], b: &[f32]) -> f64 {
    const LANES: usize = 8;
    let n = r.len();
    // 2^E > 2n: E is one above the binary exponent of 2n.
    let e = if n == 0 { 0 } else { ((2.0 * n as f64).to_bits() >> 52) as i32 - 1023 + 1 };
    let tiny = 2f64.powi(e - 30).max(f32::MIN_POSITIVE as f64) as f32;
    // From −0.0, as `f64::sum` starts: an all-(−0.0) plane sums to −0.0 either way.
    let mut acc = [-0.0f64; LANES];
    let mut outside = 0u32;
    let whole = n / LANES * LANES;
    let chunks =
        r[..whole].chunks_exact(LANES).zip(g.chunks_exact(LANES)).zip(b.chunks_exact(LANES));
    for ((r, g), b) in chunks {
        for l in 0..LANES {
            let t = luma(r[l], g[l], b[l]);
            acc[l] += t as f64;
            outside += u32::from(t != 0.0 && t < tiny || t > 2.0);
        }
    }
    let mut sum = acc.into_iter().sum::<f64>();
    for i in whole..n {
        let t = luma(r[i], g[i], b[i]);
        sum += t as f64;
        outside += u32::from(t != 0.0 && t < tiny || t > 2.0);
    }
    // A NaN term counts as inside but makes the sum NaN.
    if n > 0 && outside == 0 && sum.is_finite() {
        sum
    } else {
        (0..n).map(|i| luma(r[i], g[i], b[i]) as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_order(r: &[f32], g: &[f32], b: &[f32]) -> f64 {
        (0..r.len()).map(|i| luma(r[i], g[i], b[i]) as f64).sum()
    }

    /// A small deterministic generator (no dependency): values in [0, 1).
    fn values(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }

    #[test]
    fn lanes_give_the_in_order_sum_bit_for_bit() {
        for (seed, n) in [(1, 224 * 224), (2, 1001), (3, 7), (4, 0), (5, 100 * 37)] {
            let (r, g, b) = (values(seed, n), values(seed + 10, n), values(seed + 20, n));
            assert_eq!(luma_sum(&r, &g, &b).to_bits(), in_order(&r, &g, &b).to_bits(), "{n}");
        }
    }

    #[test]
    fn tiny_terms_fall_back_to_pixel_order() {
        // Terms far apart in magnitude: the lanes' sum would round differently.
        let n = 224 * 224;
        let mut r = values(7, n);
        for (i, v) in r.iter_mut().enumerate() {
            if i % 3 == 0 {
                *v = 1e-9 * (i % 17) as f32;
            }
        }
        let (g, b) = (r.clone(), r.clone());
        assert_eq!(luma_sum(&r, &g, &b).to_bits(), in_order(&r, &g, &b).to_bits());
        let zeros = vec![0.0; 50];
        assert_eq!(luma_sum(&zeros, &zeros, &zeros), 0.0);
    }
}
