//! `solarize`: x ≥ threshold becomes 1 − x.

use super::StyleOp;
use crate::planar::Planar;

pub struct Solarize(pub f32);

impl StyleOp for Solarize {
    fn apply(&self, img: &mut Planar) {
        let t = self.0;
        img.data.iter_mut().for_each(|v| {
            if *v >= t {
                *v = 1.0 - *v
            }
        });
    }
}
