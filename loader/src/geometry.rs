//! Patch geometry (METHOD.md "Patch geometry"): a 3×3 grid over the S×S image; from a cell, a
//! centre crop leaves a gap, a random crop adds jitter, and the patch is resized to the output
//! size. Every size derives from S, so tests run the same code at S = 32.

use rand::{Rng, RngExt};

use crate::planar::Planar;

/// Neighbour cells for labels 0..8, row-major around the centre (1, 1).
pub const NEIGHBOURS: [(usize, usize); 8] =
    [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Side of the stored (square) image, S.
    pub image: usize,
    /// Grid cell side, S div 3.
    pub cell: usize,
    /// Side after the gap's centre crop, cell − (S div 4) div 4.
    pub gap: usize,
    /// Side of the jittered random crop, S div 4.
    pub jitter: usize,
    /// Side of an output patch.
    pub out: usize,
}

impl Geometry {
    /// The paper's geometry for an S×S image, patches resized to `out` (the paper: S).
    pub fn new(image: usize, out: usize) -> Result<Self, String> {
        let (cell, jitter) = (image / 3, image / 4);
        let gap = cell.saturating_sub(jitter / 4);
        if image < 12 || jitter == 0 || gap < jitter || out == 0 {
            return Err(format!(
                "image size {image} is too small for the 3x3 patch grid (need at least 12 px)"
            ));
        }
        Ok(Geometry { image, cell, gap, jitter, out })
    }

    /// Top-left corner of the jitter window inside a cell, before the random offset.
    fn gap_offset(&self) -> usize {
        ((self.cell - self.gap) as f64 / 2.0).round_ties_even() as usize
    }

    /// Cuts the jitter window of `cell` (row, col) from an RGB8 HWC S×S image: gap, jitter
    /// (drawn from `rng`), /255; jitter × jitter. Resized to `out` it is the cell's patch.
    pub fn window(&self, rgb: &[u8], (row, col): (usize, usize), rng: &mut impl Rng) -> Planar {
        let slack = self.gap - self.jitter;
        let dy = rng.random_range(0..=slack);
        let dx = rng.random_range(0..=slack);
        let top = row * self.cell + self.gap_offset() + dy;
        let left = col * self.cell + self.gap_offset() + dx;
        Planar::from_rgb8_window(rgb, self.image, (top, left), (self.jitter, self.jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_numbers() {
        let g = Geometry::new(224, 224).expect("valid");
        assert_eq!((g.cell, g.gap, g.jitter, g.gap_offset()), (74, 60, 56, 7));
        let small = Geometry::new(32, 32).expect("valid");
        assert_eq!((small.cell, small.gap, small.jitter), (10, 8, 8));
        assert!(Geometry::new(8, 8).is_err());
    }
}
