//! The style augmentation A and the patch post-processing, one op per file behind
//! [`StyleOp`], each checked against torchvision 0.26 by the goldens in `tests/goldens/`.

#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
mod avx2;
mod blur;
mod brightness;
mod contrast;
mod grayscale;
mod hue;
pub mod params;
mod project;
pub mod resize;
mod resized_crop;
mod saturation;
mod solarize;

pub use blur::GaussianBlur;
pub use brightness::Brightness;
pub use contrast::Contrast;
pub use grayscale::Grayscale;
pub use hue::Hue;
pub use params::{ColourParams, StyleConfig, draw_crop};
pub use project::{
    MEAN, ProjectNormalize, STD, project_normalize_half_into, project_normalize_into,
    project_normalize_row_half_into, project_normalize_row_into, store_fence,
};
pub use resized_crop::ResizedCrop;
pub use saturation::Saturation;
pub use solarize::Solarize;

use crate::planar::Planar;

/// One deterministic image operation (its random parameters are drawn beforehand).
pub trait StyleOp {
    fn apply(&self, img: &mut Planar);
}

/// Applies A with fixed parameters: resized crop, the four jitter ops in `colour.order`,
/// optional grayscale, blur, optional solarize (the order of METHOD.md and of the authors' code).
pub fn apply_style(img: &mut Planar, crop: &ResizedCrop, colour: &ColourParams, cfg: &StyleConfig) {
    crop.apply(img);
    apply_colour(img, colour, cfg);
}

/// The style ops of A after the crop: jitter in `colour.order`, optional grayscale, blur,
/// optional solarize (the t-SNE study's "style transforms only").
pub fn apply_colour(img: &mut Planar, colour: &ColourParams, cfg: &StyleConfig) {
    for op in colour.order {
        match op {
            0 => Brightness(colour.brightness).apply(img),
            1 => Contrast(colour.contrast).apply(img),
            2 => Saturation(colour.saturation).apply(img),
            _ => Hue(colour.hue).apply(img),
        }
    }
    if colour.grayscale {
        Grayscale.apply(img);
    }
    GaussianBlur { kernel_size: cfg.blur_kernel, sigma: colour.sigma }.apply(img);
    if colour.solarize {
        Solarize(cfg.solarize_threshold).apply(img);
    }
}
