//! Bilinear resampling with torchvision's `antialias=True` semantics (PyTorch's
//! `_upsample_bilinear2d_aa`, which follows Pillow): a triangle filter whose support widens by
//! the reduction factor when shrinking. For enlarging — every resize of the patch pipeline — it
//! equals plain bilinear interpolation with `align_corners=False`.

use crate::planar::Planar;

/// Per output index: the first source index and the normalised weights.
struct Taps {
    start: Vec<usize>,
    weights: Vec<Vec<f32>>,
}

fn taps(input: usize, output: usize) -> Taps {
    let scale = input as f64 / output as f64;
    let support_scale = scale.max(1.0);
    let support = support_scale; // bilinear: radius 1, widened when shrinking
    let mut start = Vec::with_capacity(output);
    let mut weights = Vec::with_capacity(output);
    for i in 0..output {
        let center = (i as f64 + 0.5) * scale;
        let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
        let hi = ((center + support + 0.5).floor() as usize).min(input);
        let mut w: Vec<f64> = (lo..hi)
            .map(|j| {
                let x = (j as f64 - center + 0.5) / support_scale;
                (1.0 - x.abs()).max(0.0)
            })
            .collect();
        let total: f64 = w.iter().sum();
        if total > 0.0 {
            w.iter_mut().for_each(|v| *v /= total);
        }
        start.push(lo);
        weights.push(w.into_iter().map(|v| v as f32).collect());
    }
    Taps { start, weights }
}

/// Resizes `src` to `height`×`width`.
pub fn resize(src: &Planar, height: usize, width: usize) -> Planar {
    if (src.height, src.width) == (height, width) {
        return src.clone();
    }
    let (tx, ty) = (taps(src.width, width), taps(src.height, height));
    // Horizontal pass into (src.height × width), then vertical into (height × width).
    let mut mid = vec![0.0f32; 3 * src.height * width];
    for c in 0..3 {
        for y in 0..src.height {
            let row = &src.data[c * src.plane_len() + y * src.width..][..src.width];
            let out = &mut mid[(c * src.height + y) * width..][..width];
            for (x, o) in out.iter_mut().enumerate() {
                let s = &row[tx.start[x]..];
                *o = tx.weights[x].iter().zip(s).map(|(w, v)| w * v).sum();
            }
        }
    }
    let mut dst = Planar::zeros(height, width);
    for c in 0..3 {
        let plane = &mid[c * src.height * width..][..src.height * width];
        for y in 0..height {
            let out = &mut dst.data[c * height * width + y * width..][..width];
            out.fill(0.0);
            for (k, w) in ty.weights[y].iter().enumerate() {
                let row = &plane[(ty.start[y] + k) * width..][..width];
                out.iter_mut().zip(row).for_each(|(o, v)| *o += w * v);
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
        for (i, o) in [(10, 3), (3, 10), (7, 7)] {
            let t = taps(i, o);
            for w in &t.weights {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }
}
