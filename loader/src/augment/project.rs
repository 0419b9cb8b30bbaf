//! Colour projection then normalisation, the last step of every patch (METHOD.md "Colour projection
//! and normalisation"): x' = B·x with B = I − a/6, a = [[1,−2,1],[−2,4,−2],[1,−2,1]] (removes
//! chromatic-aberration cues), then (x' − mean) / std with ImageNet's statistics.

use super::StyleOp;
use crate::dtype::BatchDtype;
use crate::planar::Planar;

pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// B = I − a/6.
pub fn projection() -> [[f32; 3]; 3] {
    let a = [[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]];
    let mut b = [[0.0f32; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            b[i][j] = if i == j { 1.0 } else { 0.0 } - a[i][j] / 6.0;
        }
    }
    b
}

/// Writes the projected, normalised CHW image into `out` (length `3 * h * w`): straight into
/// a batch buffer, no intermediate copy.
pub fn project_normalize_into(img: &Planar, out: &mut [f32]) {
    each_plane(img, out, |planes, k, norm, dst| {
        project_normalize_f32(planes, k, norm, dst, Fence::Now)
    });
}

/// [`project_normalize_into`] for one row: `rows` holds row `y` of the three input planes
/// (`width` values each) and `out` the whole CHW output (`3 * height * width` values), of
/// which row `y` of each plane is written, with the values the whole-image call writes there.
/// The caller calls [`store_fence`] after the last row, before the output is handed on.
pub fn project_normalize_row_into(rows: [&[f32]; 3], y: usize, out: &mut [f32]) {
    each_row(rows, y, out, |planes, k, norm, dst| {
        project_normalize_f32(planes, k, norm, dst, Fence::Later)
    });
}

/// [`project_normalize_row_into`] for a half batch (as [`project_normalize_half_into`]).
pub fn project_normalize_row_half_into(
    rows: [&[f32]; 3],
    y: usize,
    dtype: BatchDtype,
    out: &mut [u16],
) {
    each_row(rows, y, out, |planes, k, norm, dst| {
        project_normalize_plane_half(planes, k, norm, dtype, dst, Fence::Later);
    });
}

/// Orders the streaming stores of the row-by-row calls before the batch is handed to another
/// thread (`sfence` where the AVX2 kernels stream; nothing otherwise).
pub fn store_fence() {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    super::avx2::store_fence();
}

/// Whether a streaming-store kernel ends with a store fence (the portable loops store plainly
/// and ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fence {
    /// Fence before returning.
    Now,
    /// The caller calls [`store_fence`] before the memory is handed to another thread.
    Later,
}

/// One output plane (or row) in f32: the AVX2 kernel where the build has it, else the
/// portable loop (the same values).
fn project_normalize_f32(
    planes: (&[f32], &[f32], &[f32]),
    k: [f32; 3],
    norm: (f32, f32),
    dst: &mut [f32],
    fence: Fence,
) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    super::avx2::project_normalize_plane(planes, k, norm, dst, fence);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c")))]
    {
        let _ = fence; // plain stores
        project_normalize_plane(planes, k, norm, dst);
    }
}

/// [`project_normalize_into`] for a half batch: the same f32 values, each rounded to `dtype`
/// (nearest, ties to even) and stored as its bits.
pub fn project_normalize_half_into(img: &Planar, dtype: BatchDtype, out: &mut [u16]) {
    each_plane(img, out, |planes, k, norm, dst| {
        project_normalize_plane_half(planes, k, norm, dtype, dst, Fence::Now);
    });
}

/// Calls `plane` once per output plane c of `img`: the three input planes, row c of B, plane
/// c's (mean, std), and plane c of `out` (which holds `3 * h * w` values).
fn each_plane<T>(
    img: &Planar,
    out: &mut [T],
    mut plane: impl FnMut((&[f32], &[f32], &[f32]), [f32; 3], (f32, f32), &mut [T]),
) {
    let n = img.plane_len();
    assert_eq!(out.len(), 3 * n, "output slice size");
    let b = projection();
    let (r, rest) = img.data.split_at(n);
    let (g, bl) = rest.split_at(n);
    for c in 0..3 {
        plane((r, g, bl), b[c], (MEAN[c], STD[c]), &mut out[c * n..][..n]);
    }
}

/// Calls `plane` once per output plane c for one row: row `y` of the three input planes,
/// row c of B, plane c's (mean, std), and row `y` of plane c of `out` (`3 * height * width`
/// values, width the rows' length).
fn each_row<T>(
    [r, g, b]: [&[f32]; 3],
    y: usize,
    out: &mut [T],
    mut plane: impl FnMut((&[f32], &[f32], &[f32]), [f32; 3], (f32, f32), &mut [T]),
) {
    let (width, n) = (r.len(), out.len() / 3);
    assert!(g.len() == width && b.len() == width && (y + 1) * width <= n, "row inside the output");
    let bm = projection();
    for c in 0..3 {
        plane((r, g, b), bm[c], (MEAN[c], STD[c]), &mut out[c * n + y * width..][..width]);
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
use super::avx2::project_normalize_plane_half;

/// [`project_normalize_plane`] rounded to `dtype`, a chunk at a time (the portable loop).
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c")))]
fn project_normalize_plane_half(
    (r, g, b): (&[f32], &[f32], &[f32]),
    k: [f32; 3],
    norm: (f32, f32),
    dtype: BatchDtype,
    dst: &mut [u16],
    _fence: Fence, // plain stores
) {
    const CHUNK: usize = 1024;
    let mut values = [0.0f32; CHUNK];
    for (start, bits) in (0..dst.len()).step_by(CHUNK).zip(dst.chunks_mut(CHUNK)) {
        let span = start..start + bits.len();
        let v = &mut values[..bits.len()];
        project_normalize_plane((&r[span.clone()], &g[span.clone()], &b[span]), k, norm, v);
        bits.iter_mut().zip(v.iter()).for_each(|(o, &x)| *o = dtype.half_bits(x));
    }
}

/// Output plane `c`: `dst[i] = (k·(r, g, b)[i] − mean) / std` (the portable loop; on x86-64
/// with AVX2, `avx2.rs` computes the same values with streaming stores).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c", not(test)),
    allow(dead_code)
)]
fn project_normalize_plane(
    (r, g, b): (&[f32], &[f32], &[f32]),
    k: [f32; 3],
    (mean, std): (f32, f32),
    dst: &mut [f32],
) {
    // Zipped slices: no bounds checks in the loop, so it vectorises.
    for (d, ((r, g), b)) in dst.iter_mut().zip(r.iter().zip(g).zip(b)) {
        let x = k[0] * r + k[1] * g + k[2] * b;
        *d = (x - mean) / std;
    }
}

/// [`project_normalize_into`] as an op on an image (for tests and previews).
pub struct ProjectNormalize;

impl StyleOp for ProjectNormalize {
    fn apply(&self, img: &mut Planar) {
        let mut out = vec![0.0; img.data.len()];
        project_normalize_into(img, &mut out);
        img.data = out;
    }
}

#[cfg(all(test, target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
mod tests {
    use super::*;

    #[test]
    fn the_avx2_plane_equals_the_portable_one_bit_for_bit() {
        // Odd lengths and offsets: an unaligned head, a body and a tail.
        let values = |seed: u32, n: usize| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 10007) as f32 / 10006.0)
                .collect()
        };
        for (n, skip) in [(224 * 224, 0), (1001, 3), (7, 1), (0, 0)] {
            let (r, g, b) = (values(1, n), values(2, n), values(3, n));
            let (mut want, mut got) = (vec![0.0; n + skip], vec![0.0; n + skip]);
            let k = projection()[1];
            project_normalize_plane((&r, &g, &b), k, (MEAN[1], STD[1]), &mut want[skip..]);
            super::super::avx2::project_normalize_plane(
                (&r, &g, &b),
                k,
                (MEAN[1], STD[1]),
                &mut got[skip..],
                Fence::Now,
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "n = {n}");
            for dtype in [BatchDtype::Bf16, BatchDtype::F16] {
                let mut halves = vec![0u16; n + skip];
                let k3 = (MEAN[1], STD[1]);
                let halves_out = &mut halves[skip..];
                project_normalize_plane_half((&r, &g, &b), k, k3, dtype, halves_out, Fence::Now);
                let rounded: Vec<u16> = want[skip..].iter().map(|&x| dtype.half_bits(x)).collect();
                assert_eq!(halves[skip..], rounded[..], "{dtype}, n = {n}");
            }
        }
    }
}
