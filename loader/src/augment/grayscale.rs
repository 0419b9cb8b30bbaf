//! `rgb_to_grayscale(num_output_channels=3)`: luma (torchvision's 0.2989/0.587/0.114) in all
//! three channels.

use super::StyleOp;
use crate::planar::{LUMA, Planar};

pub struct Grayscale;

impl StyleOp for Grayscale {
    fn apply(&self, img: &mut Planar) {
        let (r, g, b) = img.planes_mut();
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let l = LUMA[0] * *r + LUMA[1] * *g + LUMA[2] * *b;
            (*r, *g, *b) = (l, l, l);
        }
    }
}
