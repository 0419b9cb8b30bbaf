//! `adjust_saturation`: per-pixel blend with the grayscale image, clamped to [0, 1].

use super::StyleOp;
use crate::planar::{LUMA, Planar};

pub struct Saturation(pub f32);

impl StyleOp for Saturation {
    fn apply(&self, img: &mut Planar) {
        let f = self.0;
        let (r, g, b) = img.planes_mut();
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let rest = (1.0 - f) * (LUMA[0] * *r + LUMA[1] * *g + LUMA[2] * *b);
            *r = (f * *r + rest).clamp(0.0, 1.0);
            *g = (f * *g + rest).clamp(0.0, 1.0);
            *b = (f * *b + rest).clamp(0.0, 1.0);
        }
    }
}
