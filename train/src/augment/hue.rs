//! `adjust_hue`: RGB → HSV, H shifted by the factor modulo 1, HSV → RGB, with torchvision's
//! formulas (including its treatment of gray pixels and of the sector index).

use super::StyleOp;
use crate::planar::Planar;

pub struct Hue(pub f32);

impl StyleOp for Hue {
    fn apply(&self, img: &mut Planar) {
        let shift = self.0;
        let (r, g, b) = img.planes_mut();
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let (h, s, v) = rgb_to_hsv(*r, *g, *b);
            (*r, *g, *b) = hsv_to_rgb(py_mod(h + shift, 1.0), s, v);
        }
    }
}

/// Python's `%` on floats (result has the sign of the divisor), as `torch.remainder`.
fn py_mod(a: f32, m: f32) -> f32 {
    let r = a % m;
    if r < 0.0 { r + m } else { r }
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let div = if eqc { 1.0 } else { cr };
    let (rc, gc, bc) = ((maxc - r) / div, (maxc - g) / div, (maxc - b) / div);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    // torch.fmod(h / 6 + 1, 1): h/6 + 1 is positive here, so fmod is the plain remainder.
    ((h / 6.0 + 1.0) % 1.0, s, maxc)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (i as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip() {
        for rgb in [(0.2, 0.5, 0.9), (0.9, 0.1, 0.1), (0.3, 0.3, 0.3), (0.0, 1.0, 0.5)] {
            let (h, s, v) = rgb_to_hsv(rgb.0, rgb.1, rgb.2);
            let back = hsv_to_rgb(h, s, v);
            assert!(
                (back.0 - rgb.0).abs() < 1e-6
                    && (back.1 - rgb.1).abs() < 1e-6
                    && (back.2 - rgb.2).abs() < 1e-6
            );
        }
        assert_eq!(py_mod(-0.25, 1.0), 0.75);
    }
}
