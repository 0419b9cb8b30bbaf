//! `gaussian_blur` with torchvision's kernel (23 taps from `linspace(-11, 11)`, normalised)
//! and reflect padding, applied as two separable passes.
//!
//! Taps whose weight is below 1e-10 are dropped: they cannot move a float32 result in [0, 1]
//! by a representable amount that matters (at the paper's σ ≤ 0.2 the ±1 taps weigh below 4e-6
//! and every tap beyond ±1 below 2e-22, so three taps remain; METHOD.md "Style augmentation").

use super::StyleOp;
use crate::planar::Planar;

pub struct GaussianBlur {
    pub kernel_size: usize,
    pub sigma: f32,
}

/// The kept taps as (offset, weight), from torchvision's full normalised kernel.
pub fn kernel(kernel_size: usize, sigma: f32) -> Vec<(isize, f32)> {
    let half = (kernel_size / 2) as isize;
    let pdf: Vec<f32> = (-half..=half)
        .map(|x| {
            let z = x as f32 / sigma;
            (-0.5 * z * z).exp()
        })
        .collect();
    let total: f32 = pdf.iter().sum();
    (-half..=half).zip(pdf).map(|(x, p)| (x, p / total)).filter(|(_, w)| *w >= 1e-10).collect()
}

fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * (n - 1) - i };
    }
    i as usize
}

impl StyleOp for GaussianBlur {
    fn apply(&self, img: &mut Planar) {
        let taps = kernel(self.kernel_size, self.sigma);
        if taps.len() == 1 {
            return; // a single tap of weight 1: the identity
        }
        let (h, w) = (img.height, img.width);
        let mut tmp = crate::planar::take_buffer(h * w);
        tmp.resize(h * w, 0.0);
        for c in 0..3 {
            let plane = &mut img.data[c * h * w..][..h * w];
            for (src, dst) in plane.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
                filter_line(src, dst, &taps);
            }
            // Vertical pass a whole row at a time: output row y sums the taps' source rows
            // (reflected at the edges) in tap order, which vectorises across the row and gives
            // each value the same sum, in the same order, as a column-wise pass.
            for (y, out) in plane.chunks_exact_mut(w).enumerate() {
                let row = |o: isize| &tmp[reflect(y as isize + o, h) * w..][..w];
                let (o0, k0) = taps[0];
                out.iter_mut().zip(row(o0)).for_each(|(d, s)| *d = k0 * s);
                for &(o, k) in &taps[1..] {
                    out.iter_mut().zip(row(o)).for_each(|(d, s)| *d += k * s);
                }
            }
        }
        crate::planar::give_buffer(tmp);
    }
}

/// Convolves one line with reflect padding: `reflect` only at the ends; inside, each tap adds
/// its shifted slice of the line in tap order (the same sum, in the same order, per value).
fn filter_line(src: &[f32], dst: &mut [f32], taps: &[(isize, f32)]) {
    let n = src.len();
    let r = taps.iter().map(|t| t.0.unsigned_abs()).max().unwrap_or(0);
    let at =
        |i: usize| -> f32 { taps.iter().map(|(o, k)| k * src[reflect(i as isize + o, n)]).sum() };
    if n <= 2 * r {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = at(i);
        }
        return;
    }
    for i in (0..r).chain(n - r..n) {
        dst[i] = at(i);
    }
    let inner = &mut dst[r..n - r];
    let shifted = |o: isize| &src[(r as isize + o) as usize..][..n - 2 * r];
    let (o0, k0) = taps[0];
    inner.iter_mut().zip(shifted(o0)).for_each(|(d, s)| *d = k0 * s);
    for &(o, k) in &taps[1..] {
        inner.iter_mut().zip(shifted(o)).for_each(|(d, s)| *d += k * s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_sigmas_keep_three_taps_or_one() {
        assert_eq!(kernel(23, 0.2).len(), 3);
        assert_eq!(kernel(23, 1e-10), vec![(0, 1.0)]);
        let k = kernel(23, 0.2);
        assert!(k[0].1 < 4e-6 && k[0].1 > 3e-6);
        assert_eq!(kernel(23, 3.0).len(), 23);
    }

    #[test]
    fn reflect_padding() {
        assert_eq!(reflect(-1, 5), 1);
        assert_eq!(reflect(5, 5), 3);
        assert_eq!(reflect(-12, 5), 4);
    }
}
