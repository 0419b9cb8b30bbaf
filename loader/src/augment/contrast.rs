//! `adjust_contrast`: blend with the mean of the grayscale image, clamped to [0, 1].

use super::StyleOp;
use crate::planar::{LUMA, Planar};

pub struct Contrast(pub f32);

impl StyleOp for Contrast {
    fn apply(&self, img: &mut Planar) {
        let n = img.plane_len();
        let (r, g, b) = img.planes_mut();
        let sum: f64 =
            (0..n).map(|i| (LUMA[0] * r[i] + LUMA[1] * g[i] + LUMA[2] * b[i]) as f64).sum();
        let mean = (sum / n as f64) as f32;
        let (f, rest) = (self.0, (1.0 - self.0) * mean);
        img.data.iter_mut().for_each(|v| *v = (f * *v + rest).clamp(0.0, 1.0));
    }
}
