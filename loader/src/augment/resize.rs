//! Bilinear resampling with torchvision's `antialias=True` semantics (PyTorch's
//! `_upsample_bilinear2d_aa`, which follows Pillow): a triangle filter whose support widens by
//! the reduction factor when shrinking. For enlarging — every resize of the patch pipeline — it
//! equals plain bilinear interpolation with `align_corners=False`.

use crate::planar::Planar;

/// Filter taps of one axis, flat: output `i` reads `k` source samples from `start[i]` with
/// weights `weights[i * k..][..k]` (zero-padded).
struct Taps {
    k: usize,
    start: Vec<usize>,
    weights: Vec<f32>,
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
    Taps { k, start, weights }
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
    let (tx, ty) = (taps(w, width), taps(h, height));
    // Horizontal pass into (h × width), then vertical into (height × width).
    let mut mid = vec![0.0f32; 3 * h * width];
    for c in 0..3 {
        for y in 0..h {
            let row = &src.data[c * src.plane_len() + (top + y) * src.width + left..][..w];
            let out = &mut mid[(c * h + y) * width..][..width];
            for (x, o) in out.iter_mut().enumerate() {
                let s = &row[tx.start[x]..][..tx.k];
                let k = &tx.weights[x * tx.k..][..tx.k];
                *o = k.iter().zip(s).map(|(a, b)| a * b).sum();
            }
        }
    }
    let mut dst = Planar::zeros(height, width);
    for c in 0..3 {
        let plane = &mid[c * h * width..][..h * width];
        for y in 0..height {
            let out = &mut dst.data[c * height * width + y * width..][..width];
            for j in 0..ty.k {
                let wgt = ty.weights[y * ty.k + j];
                let row = &plane[(ty.start[y] + j) * width..][..width];
                out.iter_mut().zip(row).for_each(|(o, v)| *o += wgt * v);
            }
        }
    }
    dst
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
}
