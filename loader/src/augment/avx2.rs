//! Three loops written with AVX2 (and F16C) intrinsics where the compiler's own code was slow,
//! each computing the same values as its portable twin, bit for bit (the same operations in the
//! same order, no FMA). Built only for x86-64 with AVX2 and F16C (the project's build target,
//! x86-64-v3, `.cargo/config.toml`); other targets run the portable loops.
//!
//! - [`TwoTaps`]: the two-tap horizontal pass of an enlarging resample (`resize.rs`).
//! - [`project_normalize_plane`] and [`project_normalize_plane_half`]: one output plane of the
//!   colour projection (`project.rs`), in f32 or rounded to bf16/f16, written with streaming
//!   stores.
//!
//! When a resample enlarges, each output reads two neighbouring source samples and eight
//! consecutive outputs start at most seven samples apart. So one block of eight reads a window
//! of nine samples: two loads and two lane permutations gather both taps of all eight, where
//! the scalar pass loads them one by one. The arithmetic is the scalar pass's, lane by lane
//! (`w0·a` then `+ w1·b`, two roundings, no FMA), so every value is the same bit for bit.

#[cfg(test)]
use std::arch::x86_64::{__m128i, _mm256_castsi256_si128};
use std::arch::x86_64::{
    __m256, __m256i, _CMP_UNORD_Q, _mm_sfence, _mm256_add_epi32, _mm256_add_ps, _mm256_and_si256,
    _mm256_blendv_epi8, _mm256_castps_si256, _mm256_cmp_ps, _mm256_cvtps_ph, _mm256_div_ps,
    _mm256_loadu_ps, _mm256_loadu_si256, _mm256_mul_ps, _mm256_or_si256, _mm256_permute4x64_epi64,
    _mm256_permutevar8x32_ps, _mm256_set_m128i, _mm256_set1_epi32, _mm256_set1_ps,
    _mm256_setr_epi8, _mm256_shuffle_epi8, _mm256_srli_epi32, _mm256_storeu_ps, _mm256_stream_ps,
    _mm256_stream_si256, _mm256_sub_ps, _mm256_unpacklo_epi64,
};

use crate::dtype::BatchDtype;

use super::project::Fence;
use super::resize::Taps;

const LANES: usize = 8;

/// The gather plan of one pass: per block of eight outputs, its first source sample and the
/// lanes' offsets from it, and the two weights of every output, de-interleaved.
pub(super) struct TwoTaps {
    first: Vec<usize>,
    offsets: Vec<[i32; LANES]>,
    w0: Vec<f32>,
    w1: Vec<f32>,
}

impl TwoTaps {
    /// The plan for `tx`, or `None` when its outputs do not have two taps each or some block of
    /// eight spans more than a nine-sample window (a reduction).
    pub(super) fn plan(tx: &Taps) -> Option<TwoTaps> {
        if tx.k != 2 {
            return None;
        }
        let blocks = tx.start.len() / LANES;
        let mut first = Vec::with_capacity(blocks);
        let mut offsets = Vec::with_capacity(blocks);
        for block in tx.start.chunks_exact(LANES) {
            let s0 = block[0];
            let mut lanes = [0i32; LANES];
            for (lane, &s) in lanes.iter_mut().zip(block) {
                let d = s.checked_sub(s0)?;
                if d >= LANES {
                    return None;
                }
                *lane = d as i32;
            }
            first.push(s0);
            offsets.push(lanes);
        }
        let (w0, w1) = tx.weights.chunks_exact(2).map(|w| (w[0], w[1])).unzip();
        Some(TwoTaps { first, offsets, w0, w1 })
    }

    /// Appends the pass over `row` to `out`: what `horizontal::<2>` appends, value for value,
    /// each written once.
    pub(super) fn run(&self, row: &[f32], tx: &Taps, out: &mut Vec<f32>) {
        out.reserve(tx.start.len());
        let mut done = 0;
        for (b, (&s0, lanes)) in self.first.iter().zip(&self.offsets).enumerate() {
            let window = match row.get(s0..s0 + LANES + 1) {
                Some(w) => w,
                None => break, // the window leaves the row: the rest goes scalar
            };
            let o = b * LANES;
            let mut dst = [0.0f32; LANES];
            block(window, lanes, &self.w0[o..o + LANES], &self.w1[o..o + LANES], &mut dst);
            out.extend_from_slice(&dst);
            done = o + LANES;
        }
        let rest = tx.start[done..].iter().zip(tx.weights[2 * done..].chunks_exact(2));
        out.extend(rest.map(|(&s, w)| {
            let acc = w[0] * row[s];
            acc + w[1] * row[s + 1]
        }));
    }
}

/// Eight outputs: lane l reads `window[lanes[l]]` and `window[lanes[l] + 1]`.
#[inline(always)]
fn block(window: &[f32], lanes: &[i32; LANES], w0: &[f32], w1: &[f32], dst: &mut [f32; LANES]) {
    assert!(window.len() > LANES && w0.len() == LANES && w1.len() == LANES);
    // SAFETY: every pointer below reads or writes eight f32 (or i32) inside a slice or array of
    // at least that length (checked above: the window holds nine samples); AVX2 and F16C are
    // enabled at compile time (this module is built only with them).
    unsafe {
        let idx: __m256i = _mm256_loadu_si256(lanes.as_ptr().cast());
        let here: __m256 = _mm256_loadu_ps(window.as_ptr());
        let next: __m256 = _mm256_loadu_ps(window.as_ptr().add(1));
        let a = _mm256_permutevar8x32_ps(here, idx);
        let b = _mm256_permutevar8x32_ps(next, idx);
        let acc = _mm256_mul_ps(_mm256_loadu_ps(w0.as_ptr()), a);
        let sum = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(w1.as_ptr()), b));
        _mm256_storeu_ps(dst.as_mut_ptr(), sum);
    }
}

/// The planes, projection row and normalisation one output plane is computed from.
type Planes<'a> = (&'a [f32], &'a [f32], &'a [f32]);

/// Value `i` of the plane, one at a time: `(k0·r + k1·g + k2·b − mean) / std`, the portable
/// loop's operations in its order.
#[inline(always)]
fn projected((r, g, b): Planes, k: [f32; 3], (mean, std): (f32, f32), i: usize) -> f32 {
    (k[0] * r[i] + k[1] * g[i] + k[2] * b[i] - mean) / std
}

/// [`projected`] for eight values at once, from `i`: the same operations, lane by lane.
///
/// # Safety
/// `i + 8` is at most the length of each plane.
#[inline(always)]
unsafe fn projected8((r, g, b): Planes, k: [f32; 3], (mean, std): (f32, f32), i: usize) -> __m256 {
    // SAFETY: the caller keeps the eight loads inside the planes; AVX2 is enabled at compile
    // time (this module is built only with it).
    unsafe {
        let x = _mm256_add_ps(
            _mm256_add_ps(
                _mm256_mul_ps(_mm256_set1_ps(k[0]), _mm256_loadu_ps(r.as_ptr().add(i))),
                _mm256_mul_ps(_mm256_set1_ps(k[1]), _mm256_loadu_ps(g.as_ptr().add(i))),
            ),
            _mm256_mul_ps(_mm256_set1_ps(k[2]), _mm256_loadu_ps(b.as_ptr().add(i))),
        );
        _mm256_div_ps(_mm256_sub_ps(x, _mm256_set1_ps(mean)), _mm256_set1_ps(std))
    }
}

/// Where the aligned body of a plane of `n` values starts and ends: values before `head` and
/// from `body` on go one by one, so that every streaming store of `lanes` values is
/// `align`-byte aligned.
fn aligned_body<T>(dst: &[T], align: usize, lanes: usize) -> (usize, usize) {
    let n = dst.len();
    let head = dst.as_ptr().align_offset(align).min(n);
    (head, head + (n - head) / lanes * lanes)
}

/// Orders every streaming store made so far before any later store (`sfence`).
pub(super) fn store_fence() {
    // SAFETY: `sfence` has no operands and no preconditions (SSE, part of x86-64).
    unsafe { _mm_sfence() }
}

/// Output plane `c` of the projection and normalisation: `dst[i] = (k·(r, g, b)[i] − mean) / std`
/// with the portable loop's operations in its order (`(k0·r + k1·g) + k2·b`, then the
/// subtraction and a true division).
///
/// A batch buffer is hundreds of megabytes, far beyond the caches, so the plane is written with
/// streaming stores: no read of the destination before the write, no eviction of the image the
/// worker is still using. A fence at the end orders them before the batch is handed on
/// (`Fence::Now`), or the caller fences once after many rows (`Fence::Later`: a fence per
/// 224-value row made the row-by-row writer twice as slow).
pub(super) fn project_normalize_plane(
    planes: Planes,
    k: [f32; 3],
    norm: (f32, f32),
    dst: &mut [f32],
    fence: Fence,
) {
    let n = dst.len();
    assert!(planes.0.len() == n && planes.1.len() == n && planes.2.len() == n, "plane sizes");
    let (head, body) = aligned_body(dst, 32, LANES);
    for (i, d) in dst.iter_mut().enumerate().take(head) {
        *d = projected(planes, k, norm, i);
    }
    // SAFETY: every load reads eight f32 at `i` < `body` ≤ n of planes of length n; every
    // store writes eight f32 at `i` inside `dst`, 32-byte aligned (from `head` on, in steps of
    // 32 bytes). The fence completes the streaming stores.
    unsafe {
        for i in (head..body).step_by(LANES) {
            _mm256_stream_ps(dst.as_mut_ptr().add(i), projected8(planes, k, norm, i));
        }
        if fence == Fence::Now {
            _mm_sfence();
        }
    }
    for (i, d) in dst.iter_mut().enumerate().skip(body) {
        *d = projected(planes, k, norm, i);
    }
}

/// [`project_normalize_plane`] rounded to `dtype` (bf16 or f16; nearest, ties to even, as
/// `half::bf16::from_f32`/`half::f16::from_f32`), stored as bits with streaming stores of
/// sixteen values (32 bytes).
pub(super) fn project_normalize_plane_half(
    planes: Planes,
    k: [f32; 3],
    norm: (f32, f32),
    dtype: BatchDtype,
    dst: &mut [u16],
    fence: Fence,
) {
    let n = dst.len();
    assert!(planes.0.len() == n && planes.1.len() == n && planes.2.len() == n, "plane sizes");
    assert!(dtype != BatchDtype::F32, "a half type");
    let (head, body) = aligned_body(dst, 32, 2 * LANES);
    for (i, d) in dst.iter_mut().enumerate().take(head) {
        *d = dtype.half_bits(projected(planes, k, norm, i));
    }
    // SAFETY: as in `project_normalize_plane`; each store writes sixteen u16 (32 bytes) at `i`
    // inside `dst`, 32-byte aligned from `head` on; `_mm256_cvtps_ph` needs F16C, which this
    // module is built with.
    unsafe {
        let (out, body) = (dst.as_mut_ptr(), head..body);
        if dtype == BatchDtype::Bf16 {
            stream_halves(planes, k, norm, out, body, |a, b| {
                high_halves(bf16_words(a), bf16_words(b))
            });
        } else {
            stream_halves(planes, k, norm, out, body, |a, b| {
                _mm256_set_m128i(_mm256_cvtps_ph::<0>(b), _mm256_cvtps_ph::<0>(a))
            });
        }
        if fence == Fence::Now {
            _mm_sfence();
        }
    }
    for (i, d) in dst.iter_mut().enumerate().skip(body) {
        *d = dtype.half_bits(projected(planes, k, norm, i));
    }
}

/// The aligned body of [`project_normalize_plane_half`]: sixteen values per step, `round`ed to
/// sixteen u16 and streamed to `out` (one loop per rounding, inlined: no per-step branch).
///
/// # Safety
/// `body` steps by sixteen inside the planes and `out`'s `dst`, with `out + body.start`
/// 32-byte aligned.
#[inline(always)]
unsafe fn stream_halves(
    planes: Planes,
    k: [f32; 3],
    norm: (f32, f32),
    out: *mut u16,
    body: std::ops::Range<usize>,
    round: impl Fn(__m256, __m256) -> __m256i,
) {
    for i in body.step_by(2 * LANES) {
        // SAFETY: the caller keeps `i + 16` inside the planes and `dst`, 32-byte aligned.
        unsafe {
            let (a, b) = (projected8(planes, k, norm, i), projected8(planes, k, norm, i + LANES));
            _mm256_stream_si256(out.add(i).cast(), round(a, b));
        }
    }
}

/// Eight f32 as 32-bit words whose upper halves are their bf16 bits: `x + 0x7fff + lsb`
/// (nearest, ties to even; infinities stay infinite), and a NaN quietened as `x | 0x40 << 16`,
/// as `half::bf16::from_f32` does.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn bf16_words(v: __m256) -> __m256i {
    let x = _mm256_castps_si256(v);
    let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(1));
    let rounded = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb);
    let quiet = _mm256_or_si256(x, _mm256_set1_epi32(0x40 << 16));
    let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    _mm256_blendv_epi8(rounded, quiet, nan)
}

/// The upper halves of the eight words of `a`, then of `b`, as sixteen u16 in order: one byte
/// shuffle each gathers a 128-bit lane's four halves, and one unpack and one permutation put
/// the four groups in order.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn high_halves(a: __m256i, b: __m256i) -> __m256i {
    let pick = _mm256_setr_epi8(
        2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, //
        2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let (a, b) = (_mm256_shuffle_epi8(a, pick), _mm256_shuffle_epi8(b, pick));
    // 64-bit groups: [a0-3, b0-3 | a4-7, b4-7] -> [a0-3, a4-7, b0-3, b4-7].
    _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_unpacklo_epi64(a, b))
}

/// Eight f32 rounded to bf16 bits (as [`bf16_words`]), for the lanes test.
#[cfg(test)]
#[target_feature(enable = "avx2,f16c")]
fn bf16_bits(v: __m256) -> __m128i {
    let words = bf16_words(v);
    _mm256_castsi256_si128(high_halves(words, words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_round_to_half_types_as_the_half_crate_does() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -2.5,
            1.0 + 2f32.powi(-8),
            1.0 + 3.0 * 2f32.powi(-8),
            65504.0,
            65520.0,
            1e-8,
            -1e-30,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001),
            f32::from_bits(0xffc1_2345),
        ];
        let mut s = 12345u32;
        values.extend((0..4000).map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            f32::from_bits(s)
        }));
        values.resize(values.len().div_ceil(LANES) * LANES, 0.5);
        for chunk in values.chunks_exact(LANES) {
            // SAFETY: eight f32 read from and eight u16 written to arrays of eight.
            let (bf, f16) = unsafe {
                let v = _mm256_loadu_ps(chunk.as_ptr());
                let mut out = ([0u16; LANES], [0u16; LANES]);
                std::arch::x86_64::_mm_storeu_si128(out.0.as_mut_ptr().cast(), bf16_bits(v));
                std::arch::x86_64::_mm_storeu_si128(
                    out.1.as_mut_ptr().cast(),
                    _mm256_cvtps_ph::<0>(v),
                );
                out
            };
            for (l, &x) in chunk.iter().enumerate() {
                assert_eq!(
                    bf[l],
                    half::bf16::from_f32(x).to_bits(),
                    "bf16 of {x:e} ({:#x})",
                    x.to_bits()
                );
                assert_eq!(
                    f16[l],
                    half::f16::from_f32(x).to_bits(),
                    "f16 of {x:e} ({:#x})",
                    x.to_bits()
                );
            }
        }
    }
}
