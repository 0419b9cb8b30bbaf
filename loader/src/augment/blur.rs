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
        let mut tmp = vec![0.0f32; h * w];
        let mut col = vec![0.0f32; h];
        let mut col_out = vec![0.0f32; h];
        for c in 0..3 {
            let plane = &mut img.data[c * h * w..][..h * w];
            for (src, dst) in plane.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
                filter_line(src, dst, &taps);
            }
            // Vertical pass, one column at a time through a contiguous buffer.
            for x in 0..w {
                for y in 0..h {
                    col[y] = tmp[y * w + x];
                }
                filter_line(&col, &mut col_out, &taps);
                for y in 0..h {
                    plane[y * w + x] = col_out[y];
                }
            }
        }
    }
}

/// Convolves one line with reflect padding: a tight loop inside, `reflect` only at the ends.
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
    for (i, d) in dst.iter_mut().enumerate().take(n - r).skip(r) {
        let base = i - r;
        *d = taps.iter().map(|(o, k)| k * src[(base as isize + r as isize + o) as usize]).sum();
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
