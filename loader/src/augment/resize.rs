//! Bilinear resampling with torchvision's `antialias=True` semantics (PyTorch's
//! `_upsample_bilinear2d_aa`, which follows Pillow): a triangle filter whose support widens by
//! the reduction factor when shrinking. For enlarging — every resize of the patch pipeline — it
//! equals plain bilinear interpolation with `align_corners=False`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::planar::Planar;

/// Filter taps of one axis, flat: output `i` reads `k` source samples from `start[i]` with
/// weights `weights[i * k..][..k]` (zero-padded).
pub(super) struct Taps {
    pub(super) k: usize,
    pub(super) start: Vec<usize>,
    pub(super) weights: Vec<f32>,
    /// The AVX2 gather plan of a two-tap pass, made once with the taps (so cached with them).
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    two: Option<super::avx2::TwoTaps>,
}

fn taps(input: usize, output: usize) -> Taps {
    let scale = input as f64 / output as f64;
    let support = scale.max(1.0); // bilinear: radius 1, widened when shrinking
    let mut rows: Vec<(usize, Vec<f64>)> = Vec::with_capacity(output);
    for i in 0..output {
        let center = (i as f64 + 0.5) * scale;
        let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
        let hi = ((center + support + 0.5).floor() as usize).min(input);
        let mut w: Vec<f64> = (lo..hi)
            .map(|j| (1.0 - ((j as f64 - center + 0.5) / support).abs()).max(0.0))
            .collect();
        let total: f64 = w.iter().sum();
        if total > 0.0 {
            w.iter_mut().for_each(|v| *v /= total);
        }
        rows.push((lo, w));
    }
    let k = rows.iter().map(|r| r.1.len()).max().unwrap_or(1).max(1);
    let mut start = Vec::with_capacity(output);
    let mut weights = vec![0.0f32; output * k];
    for (i, (lo, w)) in rows.into_iter().enumerate() {
        // Keep the window inside the input: shift it left and pad with zero weights.
        let s = lo.min(input.saturating_sub(k));
        for (j, v) in w.into_iter().enumerate() {
            weights[i * k + (lo - s) + j] = v as f32;
        }
        start.push(s);
    }
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c")),
        allow(unused_mut)
    )]
    let mut taps = Taps {
        k,
        start,
        weights,
        #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
        two: None,
    };
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    {
        taps.two = super::avx2::TwoTaps::plan(&taps);
    }
    taps
}

thread_local! {
    /// Each worker's taps by (input, output) size. A sample's resizes take few sizes: the
    /// jitter window's, and the crop sides of the random resized crop, all to the patch size; so
    /// the cache holds at most about one entry per crop side (a few hundred KiB at 224²).
    static TAPS: RefCell<HashMap<(usize, usize), Rc<Taps>>> = RefCell::new(HashMap::new());
}

/// [`taps`], computed once per worker and size pair.
fn cached_taps(input: usize, output: usize) -> Rc<Taps> {
    TAPS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear(); // an unusual caller with many sizes: stay bounded
        }
        cache.entry((input, output)).or_insert_with(|| Rc::new(taps(input, output))).clone()
    })
}

/// Resizes `src` to `height`×`width`.
pub fn resize(src: &Planar, height: usize, width: usize) -> Planar {
    resize_window(src, (0, 0, src.height, src.width), height, width)
}

/// Resizes the window (top, left, h, w) of `src` to `height`×`width` without copying it first
/// (torchvision `resized_crop`).
pub fn resize_window(
    src: &Planar,
    (top, left, h, w): (usize, usize, usize, usize),
    height: usize,
    width: usize,
) -> Planar {
    assert!(top + h <= src.height && left + w <= src.width, "window inside image");
    if (h, w) == (height, width) {
        return src.crop(top, left, h, w);
    }
    let (tx, ty) = (cached_taps(w, width), cached_taps(h, height));
    resample(src, (top, left, h, w), &tx, &ty)
}

/// One row's horizontal pass for taps of `K` weights (a fixed-size dot product the compiler
/// unrolls): appends `tx.start.len()` values to `out`. The sum runs in tap order from the
/// first product, as [`horizontal_any`]'s does.
fn horizontal<const K: usize>(row: &[f32], tx: &Taps, out: &mut Vec<f32>) {
    out.extend(tx.start.iter().zip(tx.weights.chunks_exact(K)).map(|(&s, k)| {
        // Arrays of the const length: the tap loop is unrolled, no bounds checks inside.
        let k: &[f32; K] = k.try_into().expect("K weights per output");
        let s: &[f32; K] = row[s..s + K].try_into().expect("K samples per output");
        let mut acc = k[0] * s[0];
        for j in 1..K {
            acc += k[j] * s[j];
        }
        acc
    }));
}

/// [`horizontal`] for any number of taps.
fn horizontal_any(row: &[f32], tx: &Taps, out: &mut Vec<f32>) {
    out.extend(
        tx.start
            .iter()
            .zip(tx.weights.chunks_exact(tx.k))
            .map(|(&s, k)| k.iter().zip(&row[s..][..tx.k]).map(|(a, b)| a * b).sum::<f32>()),
    );
}

/// Resizes all of `src` to `height`×`width` one output row at a time, handing `row(y, [r, g,
/// b])` the three planes' row `y` (`width` values each): the values [`resize`] computes, bit
/// for bit, without the whole output image ever existing (its consumer, the projection into
/// the batch, then reads them from the cache).
pub fn resize_rows(
    src: &Planar,
    height: usize,
    width: usize,
    mut row: impl FnMut(usize, [&[f32]; 3]),
) {
    let (h, w, n) = (src.height, src.width, src.plane_len());
    if (h, w) == (height, width) {
        for y in 0..h {
            row(y, [0, 1, 2].map(|c| &src.data[c * n + y * w..][..w]));
        }
        return;
    }
    let (tx, ty) = (cached_taps(w, width), cached_taps(h, height));
    let mid = horizontal_pass(src, (0, 0, h, w), &tx);
    let mut rows = vec![0.0f32; 3 * width];
    for y in 0..height {
        for (c, out) in rows.chunks_exact_mut(width).enumerate() {
            let plane = &mid[c * h * width..][..h * width];
            let first = &plane[ty.start[y] * width..][..width];
            let w0 = ty.weights[y * ty.k];
            out.iter_mut().zip(first).for_each(|(o, v)| *o = w0 * v);
            add_taps(out, plane, &ty, y);
        }
        let (r, gb) = rows.split_at(width);
        let (g, b) = gb.split_at(width);
        row(y, [r, g, b]);
    }
    crate::planar::give_buffer(mid);
}

/// Adds the vertical taps after the first of output row `y` to `out` (`plane` is one plane of
/// the horizontal pass), in tap order.
fn add_taps(out: &mut [f32], plane: &[f32], ty: &Taps, y: usize) {
    let width = out.len();
    for j in 1..ty.k {
        let wgt = ty.weights[y * ty.k + j];
        let row = &plane[(ty.start[y] + j) * width..][..width];
        out.iter_mut().zip(row).for_each(|(o, v)| *o += wgt * v);
    }
}

/// The horizontal pass of the window (top, left, h, w): h rows of `tx`'s outputs per plane.
fn horizontal_pass(
    src: &Planar,
    (top, left, h, w): (usize, usize, usize, usize),
    tx: &Taps,
) -> Vec<f32> {
    let width = tx.start.len();
    let mut mid = crate::planar::take_buffer(3 * h * width);
    let horizontal = match tx.k {
        1 => horizontal::<1>,
        2 => horizontal::<2>,
        3 => horizontal::<3>,
        4 => horizontal::<4>,
        _ => horizontal_any,
    };
    for c in 0..3 {
        for y in 0..h {
            let row = &src.data[c * src.plane_len() + (top + y) * src.width + left..][..w];
            #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
            if let Some(plan) = &tx.two {
                plan.run(row, tx, &mut mid);
                continue;
            }
            horizontal(row, tx, &mut mid);
        }
    }
    mid
}

/// The separable resample of the window (top, left, h, w) with the given taps: horizontal
/// into h × `tx`'s outputs, then vertical. Every output value is written once (no zero-fill):
/// the first tap's product, then the other taps added in order, the same sum as accumulating
/// from zero (all values and weights are non-negative).
fn resample(
    src: &Planar,
    (top, left, h, w): (usize, usize, usize, usize),
    tx: &Taps,
    ty: &Taps,
) -> Planar {
    let (height, width) = (ty.start.len(), tx.start.len());
    let mid = horizontal_pass(src, (top, left, h, w), tx);
    let mut data = crate::planar::take_buffer(3 * height * width);
    for c in 0..3 {
        let plane = &mid[c * h * width..][..h * width];
        for y in 0..height {
            let w0 = ty.weights[y * ty.k];
            let at = data.len();
            data.extend(plane[ty.start[y] * width..][..width].iter().map(|v| w0 * v));
            add_taps(&mut data[at..], plane, ty, y);
        }
    }
    crate::planar::give_buffer(mid);
    Planar::from_chw(height, width, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enlarging_is_align_corners_false_bilinear() {
        // 2 -> 4: outputs sample at source coordinates -0.25, 0.25, 0.75, 1.25 (clamped).
        let src = Planar::from_chw(1, 2, vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        let out = resize(&src, 1, 4);
        let want = [0.0, 0.25, 0.75, 1.0];
        for (o, w) in out.data[..4].iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{:?}", out.data);
        }
    }

    #[test]
    fn same_size_is_identity_and_weights_sum_to_one() {
        let src = Planar::from_chw(3, 5, (0..45).map(|v| v as f32 / 45.0).collect());
        assert_eq!(resize(&src, 3, 5), src);
        for (i, o) in [(10, 3), (3, 10), (7, 7), (56, 224), (224, 100)] {
            let t = taps(i, o);
            for x in 0..o {
                let w = &t.weights[x * t.k..][..t.k];
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                assert!(t.start[x] + t.k <= i);
            }
        }
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    #[test]
    fn the_avx2_two_tap_pass_equals_the_portable_one_bit_for_bit() {
        for (input, output) in [(56, 224), (111, 224), (223, 224), (5, 13), (32, 32 + 7)] {
            let tx = taps(input, output);
            let plan = tx.two.as_ref().expect("enlarging: a two-tap plan, made with the taps");
            let row: Vec<f32> = (0..input).map(|i| ((i * 7919) % 251) as f32 / 250.0).collect();
            let (mut want, mut got) = (vec![1.0], vec![1.0]); // appended after a value
            horizontal::<2>(&row, &tx, &mut want);
            plan.run(&row, &tx, &mut got);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{input} -> {output}");
        }
        assert!(taps(224, 100).two.is_none(), "a reduction");
    }
}
