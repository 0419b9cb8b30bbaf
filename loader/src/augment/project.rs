//! Colour projection then normalisation, the last step of every patch (METHOD.md "Colour projection
//! and normalisation"): x' = B·x with B = I − a/6, a = [[1,−2,1],[−2,4,−2],[1,−2,1]] (removes
//! chromatic-aberration cues), then (x' − mean) / std with ImageNet's statistics.

use super::StyleOp;
use crate::planar::Planar;

pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// B = I − a/6.
pub fn projection() -> [[f32; 3]; 3] {
    let a = [[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]];
    let mut b = [[0.0f32; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            b[i][j] = if i == j { 1.0 } else { 0.0 } - a[i][j] / 6.0;
        }
    }
    b
}

/// Writes the projected, normalised CHW image into `out` (length `3 * h * w`): straight into
/// a batch buffer, no intermediate copy.
pub fn project_normalize_into(img: &Planar, out: &mut [f32]) {
    let n = img.plane_len();
    assert_eq!(out.len(), 3 * n, "output slice size");
    let b = projection();
    let (r, rest) = img.data.split_at(n);
    let (g, bl) = rest.split_at(n);
    for c in 0..3 {
        let (k, m, sd) = (b[c], MEAN[c], STD[c]);
        let dst = &mut out[c * n..][..n];
        // Zipped slices: no bounds checks in the loop, so it vectorises.
        for (d, ((r, g), bl)) in dst.iter_mut().zip(r.iter().zip(g).zip(bl)) {
            let x = k[0] * r + k[1] * g + k[2] * bl;
            *d = (x - m) / sd;
        }
    }
}

/// [`project_normalize_into`] as an op on an image (for tests and previews).
pub struct ProjectNormalize;

impl StyleOp for ProjectNormalize {
    fn apply(&self, img: &mut Planar) {
        let mut out = vec![0.0; img.data.len()];
        project_normalize_into(img, &mut out);
        img.data = out;
    }
}
