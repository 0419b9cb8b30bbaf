//! torchvision's `AutoAugment(AutoAugmentPolicy.IMAGENET)` on interleaved RGB u8 images.
//!
//! Source of truth: torchvision 0.26, `transforms/autoaugment.py` (the 25 sub-policies, the 10-bin
//! magnitude tables, how `forward` draws) and `transforms/_functional_tensor.py` (the ops, tensor
//! path), with the transform's defaults: uint8 input, `InterpolationMode.NEAREST`, `fill=None`
//! (zeros outside the image). Images here are HWC, `len == 3 * width * height`; torchvision's are
//! CHW, which changes the memory walk, not the arithmetic.
//!
//! **Matched exactly** (every golden of `eval/tests/goldens/make_autoaugment_goldens.py`, checked
//! by `eval/tests/autoaugment.rs`): all ten ops the policy uses. The float ops redo torch's float32
//! arithmetic step by step and in its order: scalars rounded to f32 as torch's CPU kernels round
//! them, float-to-uint8 casts truncating, `1 / x * 255` for autocontrast's `255 / (max - min)`
//! (Python's `int / tensor` is `reciprocal() * int`). Rotate and ShearX build the inverse affine
//! matrix in f64 as torchvision does, the affine grid in unfused f32 as torch's `bmm` does, and
//! unnormalise with one fused multiply-add as torch's vectorised (AVX2/AVX-512) `grid_sample`
//! does; rounding is half to even, so ties land where torch's do. Sharpness' blur rounds the
//! exact `sum / 13` (never a tie, so torch's f32 convolution rounds the same way).
//!
//! **Not matched bit for bit**: Contrast's mean takes the exact integer sum of the grayscale image;
//! torch sums in f32, exact while partial sums stay below 2^24 (every image up to 65,793 pixels,
//! and in practice larger ones), so beyond that the mean may differ in its last bit. torch run
//! with `ATEN_CPU_CAPABILITY=default` (no SIMD) unnormalises unfused and so itself differs from
//! this on a few tie pixels of larger images. The random stream is rand's, not torch's; the
//! distribution is torchvision's, down to the 24-bit uniform compared with `<=`, so the policy's
//! `("Equalize", 0.0, None)` still fires with probability 2^-24 as in torchvision.

use rand::{Rng, RngExt};

/// One AutoAugment operation with its magnitude already resolved (sign included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Keep the top `bits` bits of every byte; `bits` is truncated to an integer as torchvision's
    /// `int(magnitude)` does (and 0 or anything outside 1..=8 clears the byte).
    Posterize(f32),
    /// Rotate by this many degrees, counter-clockwise about the image centre.
    Rotate(f32),
    /// Invert every byte `>= threshold`.
    Solarize(f32),
    /// Stretch each channel's range to 0..=255.
    AutoContrast,
    /// Histogram-equalise each channel.
    Equalize,
    /// `255 - v` for every byte.
    Invert,
    /// `adjust_saturation(1 + m)`: blend with the grayscale image.
    Color(f32),
    /// `adjust_contrast(1 + m)`: blend with the grayscale mean.
    Contrast(f32),
    /// `adjust_sharpness(1 + m)`: blend with a 3×3 smoothed image.
    Sharpness(f32),
    /// Shear along x by `m` (an x-shift of `m` pixels per row), about the top-left corner.
    ShearX(f32),
}

/// torchvision's `_augmentation_space(10, …)` as float32, for the ops the policy uses (none of
/// them depends on the image size; only TranslateX/Y do, and the ImageNet policy has neither).
const ENHANCE: [f32; 10] =
    [0.0, 0.099999994, 0.19999999, 0.29999998, 0.39999998, 0.5, 0.6, 0.7, 0.79999995, 0.9];
const SHEAR: [f32; 10] = [
    0.0,
    0.033333335,
    0.06666667,
    0.10000001,
    0.13333334,
    0.16666667,
    0.2,
    0.23333335,
    0.26666668,
    0.3,
];
const ROTATE: [f32; 10] =
    [0.0, 3.3333333, 6.6666665, 10.0, 13.333333, 16.666668, 20.0, 23.333334, 26.666666, 30.0];
const SOLARIZE: [f32; 10] =
    [255.0, 226.66667, 198.33333, 170.0, 141.66666, 113.333336, 85.0, 56.666668, 28.333334, 0.0];
const POSTERIZE: [f32; 10] = [8.0, 8.0, 7.0, 7.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0];

#[derive(Clone, Copy)]
enum Kind {
    Posterize,
    Rotate,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
    Color,
    Contrast,
    Sharpness,
    ShearX,
}

/// One `(op, probability, magnitude bin)` of a sub-policy; the bin is unused where torchvision
/// has `None`.
type Step = (Kind, f32, usize);

/// `AutoAugment._get_policies(AutoAugmentPolicy.IMAGENET)`, in torchvision's order.
#[rustfmt::skip]
const POLICY: [[Step; 2]; 25] = {
    use Kind::*;
    [
        [(Posterize, 0.4, 8), (Rotate, 0.6, 9)],
        [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
        [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
        [(Posterize, 0.6, 7), (Posterize, 0.6, 6)],
        [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
        [(Equalize, 0.4, 0), (Rotate, 0.8, 8)],
        [(Solarize, 0.6, 3), (Equalize, 0.6, 0)],
        [(Posterize, 0.8, 5), (Equalize, 1.0, 0)],
        [(Rotate, 0.2, 3), (Solarize, 0.6, 8)],
        [(Equalize, 0.6, 0), (Posterize, 0.4, 6)],
        [(Rotate, 0.8, 8), (Color, 0.4, 0)],
        [(Rotate, 0.4, 9), (Equalize, 0.6, 0)],
        [(Equalize, 0.0, 0), (Equalize, 0.8, 0)],
        [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
        [(Color, 0.6, 4), (Contrast, 1.0, 8)],
        [(Rotate, 0.8, 8), (Color, 1.0, 2)],
        [(Color, 0.8, 8), (Solarize, 0.8, 7)],
        [(Sharpness, 0.4, 7), (Invert, 0.6, 0)],
        [(ShearX, 0.6, 5), (Equalize, 1.0, 0)],
        [(Color, 0.4, 0), (Equalize, 0.6, 0)],
        [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
        [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
        [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
        [(Color, 0.6, 4), (Contrast, 1.0, 8)],
        [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
    ]
};

/// The op a policy step resolves to; `negative` flips signed magnitudes (torchvision negates
/// when its sign draw is 0, i.e. with probability 1/2).
fn resolve(kind: Kind, bin: usize, negative: bool) -> Op {
    let signed = |table: &[f32; 10]| if negative { -table[bin] } else { table[bin] };
    match kind {
        Kind::Posterize => Op::Posterize(POSTERIZE[bin]),
        Kind::Rotate => Op::Rotate(signed(&ROTATE)),
        Kind::Solarize => Op::Solarize(SOLARIZE[bin]),
        Kind::AutoContrast => Op::AutoContrast,
        Kind::Equalize => Op::Equalize,
        Kind::Invert => Op::Invert,
        Kind::Color => Op::Color(signed(&ENHANCE)),
        Kind::Contrast => Op::Contrast(signed(&ENHANCE)),
        Kind::Sharpness => Op::Sharpness(signed(&ENHANCE)),
        Kind::ShearX => Op::ShearX(signed(&SHEAR)),
    }
}

/// `torch.rand` for float32: uniform on the multiples of 2^-24 in [0, 1).
fn uniform24(rng: &mut impl Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The ops one AutoAugment call applies, drawn as torchvision draws them: a sub-policy uniformly
/// among the 25, each of its two ops applied with its probability, signed magnitudes negated with
/// probability 1/2, magnitudes from torchvision's 10-bin tables for this image size.
pub fn sample_ops(width: usize, height: usize, rng: &mut impl Rng) -> Vec<Op> {
    // The size only enters TranslateX/Y's tables, which the ImageNet policy does not use.
    let _ = (width, height);
    let sub_policy = &POLICY[rng.random_range(0..POLICY.len())];
    let mut ops = Vec::with_capacity(2);
    for &(kind, p, bin) in sub_policy {
        // Drawn for every step, as torchvision draws `probs` and `signs` for both.
        let u = uniform24(rng);
        let negative = rng.random::<bool>();
        if u <= p {
            ops.push(resolve(kind, bin, negative));
        }
    }
    ops
}

/// sample_ops then apply_op for each, in place.
pub fn autoaugment_imagenet(rgb: &mut [u8], width: usize, height: usize, rng: &mut impl Rng) {
    for op in sample_ops(width, height, rng) {
        apply_op(rgb, width, height, op);
    }
}

/// Applies one op to an interleaved RGB u8 image (HWC, len = 3*width*height), in place.
///
/// # Panics
/// If `rgb.len() != 3 * width * height`.
pub fn apply_op(rgb: &mut [u8], width: usize, height: usize, op: Op) {
    assert_eq!(rgb.len(), 3 * width * height, "apply_op: {width}x{height} RGB needs 3·w·h bytes");
    match op {
        Op::Posterize(bits) => {
            // torchvision masks with -2^(8 - bits) cast to uint8.
            let mask = (0xFF00_u16 >> (bits as i32).clamp(0, 8)) as u8;
            rgb.iter_mut().for_each(|v| *v &= mask);
        }
        Op::Solarize(threshold) => {
            // uint8 >= Python float compares in float32.
            for v in rgb.iter_mut() {
                if f32::from(*v) >= threshold {
                    *v = 255 - *v;
                }
            }
        }
        Op::Invert => rgb.iter_mut().for_each(|v| *v = 255 - *v),
        Op::AutoContrast => (0..3).for_each(|c| autocontrast_channel(rgb, c)),
        Op::Equalize => (0..3).for_each(|c| equalize_channel(rgb, c)),
        Op::Color(m) => {
            let gray = grayscale(rgb);
            blend(rgb, m, |i| f32::from(gray[i / 3]));
        }
        Op::Contrast(m) => {
            let gray = grayscale(rgb);
            let sum: u64 = gray.iter().map(|&g| u64::from(g)).sum();
            // torch: f32 sum, then `div_` by the element count.
            let mean = sum as f32 / (width * height) as f32;
            blend(rgb, m, |_| mean);
        }
        Op::Sharpness(m) => {
            if width > 2 && height > 2 {
                let blurred = smoothed(rgb, width, height);
                blend(rgb, m, |i| f32::from(blurred[i]));
            }
        }
        Op::Rotate(degrees) => {
            // F.rotate: centre (0, 0) is the image centre; the matrix takes -angle.
            let matrix = inverse_affine_matrix([0.0, 0.0], -f64::from(degrees), [0.0, 0.0]);
            warp_nearest(rgb, width, height, matrix);
        }
        Op::ShearX(m) => {
            // _apply_op: shear angle `degrees(atan(m))`, center=[0, 0] (top-left), which F.affine
            // moves to centre-relative coordinates as `c - size * 0.5`.
            let shear = f64::from(m).atan().to_degrees();
            let center = [-(width as f64 * 0.5), -(height as f64 * 0.5)];
            warp_nearest(rgb, width, height, inverse_affine_matrix(center, 0.0, [shear, 0.0]));
        }
    }
}

/// `_blend(img, other, 1 + m)`: `ratio * img + (1 - ratio) * other` in float32 (both scalars
/// computed in f64 by Python, then rounded to f32 by torch), clamped, truncated to uint8.
fn blend(rgb: &mut [u8], m: f32, other: impl Fn(usize) -> f32) {
    let ratio = 1.0 + f64::from(m);
    let (a, b) = (ratio as f32, (1.0 - ratio) as f32);
    for (i, v) in rgb.iter_mut().enumerate() {
        let x = a * f32::from(*v) + b * other(i);
        *v = x.clamp(0.0, 255.0) as u8;
    }
}

/// `rgb_to_grayscale`: `0.2989 r + 0.587 g + 0.114 b` in float32, truncated to uint8 (so white
/// maps to 254: the weights sum to 0.9999).
fn grayscale(rgb: &[u8]) -> Vec<u8> {
    const WEIGHTS: [f32; 3] = [0.2989_f64 as f32, 0.587_f64 as f32, 0.114_f64 as f32];
    rgb.chunks_exact(3)
        .map(|p| {
            let [r, g, b] = [0, 1, 2].map(|c| WEIGHTS[c] * f32::from(p[c]));
            (r + g + b) as u8
        })
        .collect()
}

/// `_blurred_degenerate_image`: the 3×3 kernel [1 1 1; 1 5 1; 1 1 1] / 13 on the interior,
/// rounded; the one-pixel border keeps the input. The exact `sum / 13` is never a tie (2·sum
/// would have to be an odd multiple of 13), so rounding it matches torch's f32 convolution.
fn smoothed(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut out = rgb.to_vec();
    let at = |y: usize, x: usize, c: usize| u32::from(rgb[(y * width + x) * 3 + c]);
    for y in 1..height - 1 {
        for x in 1..width - 1 {
            for c in 0..3 {
                let mut sum = 4 * at(y, x, c);
                for (dy, dx) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dy, dx))) {
                    sum += at(y + dy - 1, x + dx - 1, c);
                }
                out[(y * width + x) * 3 + c] = ((2 * sum + 13) / 26) as u8;
            }
        }
    }
    out
}

/// `autocontrast` on one channel: `(v - min) * scale`, scale `255 / (max - min)` computed as torch
/// does (`reciprocal() * 255`), identity where `max == min`.
fn autocontrast_channel(rgb: &mut [u8], c: usize) {
    let channel = || rgb[c..].iter().step_by(3).copied();
    let (Some(lo), Some(hi)) = (channel().min(), channel().max()) else { return };
    if lo == hi {
        return;
    }
    let (lo, hi) = (f32::from(lo), f32::from(hi));
    let scale = (1.0 / (hi - lo)) * 255.0;
    for v in rgb[c..].iter_mut().step_by(3) {
        *v = ((f32::from(*v) - lo) * scale).clamp(0.0, 255.0) as u8;
    }
}

/// `_scale_channel` (equalize) on one channel: step = (pixels outside the brightest occupied bin)
/// / 255; nothing happens when that is 0; otherwise each value maps to
/// `(count below it + step / 2) / step`, all integer.
fn equalize_channel(rgb: &mut [u8], c: usize) {
    let mut hist = [0_u64; 256];
    rgb[c..].iter().step_by(3).for_each(|&v| hist[usize::from(v)] += 1);
    let Some(last) = hist.iter().rposition(|&n| n != 0) else { return };
    let step = hist[..last].iter().sum::<u64>() / 255;
    if step == 0 {
        return;
    }
    let mut lut = [0_u8; 256];
    let mut below = 0;
    for (entry, &n) in lut.iter_mut().zip(&hist) {
        *entry = ((below + step / 2) / step).min(255) as u8;
        below += n;
    }
    rgb[c..].iter_mut().step_by(3).for_each(|v| *v = lut[usize::from(*v)]);
}

/// torchvision's `_get_inverse_affine_matrix(center, angle, [0, 0], 1.0, shear)`, in f64 with
/// Python's operation order (translate 0 and scale 1 in every op used here).
fn inverse_affine_matrix(center: [f64; 2], angle: f64, shear: [f64; 2]) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - 0.0) + m[1] * (-cy - 0.0);
    m[5] += m[3] * (-cx - 0.0) + m[4] * (-cy - 0.0);
    m[2] += cx;
    m[5] += cy;
    m
}

/// `_gen_affine_grid` + `grid_sample(mode="nearest", padding_mode="zeros", align_corners=False)`
/// in float32, as torch's CPU kernels compute them: the output pixel centre (centred coordinates),
/// times θᵀ / [w/2, h/2] (unfused, as the `bmm` does it), unnormalised by `(g + 1) * size/2 - 0.5`
/// with one rounding, rounded half to even; sources outside the image give 0.
fn warp_nearest(rgb: &mut [u8], width: usize, height: usize, matrix: [f64; 6]) {
    let theta = matrix.map(|v| v as f32);
    let (half_w, half_h) = ((0.5 * width as f64) as f32, (0.5 * height as f64) as f32);
    let rx = [theta[0] / half_w, theta[1] / half_w, theta[2] / half_w];
    let ry = [theta[3] / half_h, theta[4] / half_h, theta[5] / half_h];
    let (size_x, size_y) = (width as f32, height as f32);
    let source = |g: f32, size: f32| {
        // Fused, as torch's vectorised CPU kernel computes it: unfused f32 lands exactly on .5
        // for some pixels of larger images (see the wide_8x97 golden) and rounds the other way.
        let i = (g + 1.0).mul_add(size / 2.0, -0.5).round_ties_even();
        (i >= 0.0 && i < size).then_some(i as usize)
    };
    let mut out = vec![0_u8; rgb.len()];
    for y in 0..height {
        let gy_base = (-(height as f64) * 0.5 + 0.5 + y as f64) as f32;
        for x in 0..width {
            let gx_base = (-(width as f64) * 0.5 + 0.5 + x as f64) as f32;
            let gx = (gx_base * rx[0] + gy_base * rx[1]) + rx[2];
            let gy = (gx_base * ry[0] + gy_base * ry[1]) + ry[2];
            if let (Some(sx), Some(sy)) = (source(gx, size_x), source(gy, size_y)) {
                let (dst, src) = ((y * width + x) * 3, (sy * width + sx) * 3);
                out[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
            }
        }
    }
    rgb.copy_from_slice(&out);
}
