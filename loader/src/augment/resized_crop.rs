//! `resized_crop`: the (top, left, height, width) window, bilinear-resized to size×size
//! (the first step of RandomResizedCrop; parameters drawn in `params.rs`).

use super::StyleOp;
use super::resize::resize_window;
use crate::planar::Planar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResizedCrop {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
    pub size: usize,
}

impl ResizedCrop {
    /// The crop of `img`, resized: a new image (`apply` without copying `img` first).
    pub fn of(&self, img: &Planar) -> Planar {
        let window = (self.top, self.left, self.height, self.width);
        resize_window(img, window, self.size, self.size)
    }
}

impl StyleOp for ResizedCrop {
    fn apply(&self, img: &mut Planar) {
        let old = std::mem::replace(img, self.of(img));
        crate::planar::give_buffer(old.data);
    }
}
