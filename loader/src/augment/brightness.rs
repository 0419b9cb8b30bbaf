//! `adjust_brightness`: x·f, clamped to [0, 1].

use super::StyleOp;
use crate::planar::Planar;

pub struct Brightness(pub f32);

impl StyleOp for Brightness {
    fn apply(&self, img: &mut Planar) {
        let f = self.0;
        img.data.iter_mut().for_each(|v| *v = (*v * f).clamp(0.0, 1.0));
    }
}
