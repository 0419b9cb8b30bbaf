//! `adjust_hue`: RGB → HSV, H shifted by the factor modulo 1, HSV → RGB, with torchvision's
//! formulas (including its treatment of gray pixels and of the sector index).

use super::StyleOp;
use crate::planar::Planar;

pub struct Hue(pub f32);

impl StyleOp for Hue {
    fn apply(&self, img: &mut Planar) {
        let shift = self.0;
        let (r, g, b) = img.planes_mut();
        // Branch-free per pixel (selects, not jumps) so the loop vectorises.
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let (h, s, v) = rgb_to_hsv(*r, *g, *b);
            (*r, *g, *b) = hsv_to_rgb(py_mod(h + shift, 1.0), s, v);
        }
    }
}

/// Truncation toward zero: one `vroundps` lane-wise on x86-64-v3 (a cast through `i32`
/// saturates, which keeps the loop from vectorising). For finite pixels the values are the
/// cast's: the sign of a zero result may differ, which no caller can see (every use subtracts
/// it or compares it with `==`).
#[inline(always)]
fn trunc(x: f32) -> f32 {
    x.trunc()
}

/// Python's `%` (as `torch.remainder`) for finite a: a − floor(a/m)·m. `a - trunc(a)` is the
/// exact fmod, and adding `m` to a negative remainder is the same float operation torch does.
#[inline]
fn py_mod(a: f32, m: f32) -> f32 {
    debug_assert_eq!(m, 1.0);
    let r = a - trunc(a);
    if r < 0.0 { r + m } else { r }
}

#[inline(always)]
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let div = if eqc { 1.0 } else { cr };
    let (rc, gc, bc) = ((maxc - r) / div, (maxc - g) / div, (maxc - b) / div);
    // torchvision: red wins ties, then green, then blue.
    let hb = 4.0 + gc - rc;
    let hg = if maxc == g { 2.0 + rc - bc } else { hb };
    let h = if maxc == r { bc - gc } else { hg };
    // torch.fmod(h / 6 + 1, 1): h/6 + 1 is positive here, so fmod is x − trunc(x), exactly.
    let x = h / 6.0 + 1.0;
    (x - trunc(x), s, maxc)
}

#[inline(always)]
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let i = trunc(h * 6.0); // h ∈ [0, 1): trunc is floor
    let f = h * 6.0 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    let i = if i >= 6.0 { i - 6.0 } else { i };
    // Sector i: (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q).
    let r = if i == 1.0 {
        q
    } else if i == 2.0 || i == 3.0 {
        p
    } else if i == 4.0 {
        t
    } else {
        v
    };
    let g = if i == 0.0 {
        t
    } else if i == 1.0 || i == 2.0 {
        v
    } else if i == 3.0 {
        q
    } else {
        p
    };
    let b = if i == 2.0 {
        t
    } else if i == 3.0 || i == 4.0 {
        v
    } else if i == 5.0 {
        q
    } else {
        p
    };
    (r, g, b)
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
