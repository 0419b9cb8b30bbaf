//! Drawing the random parameters of the style augmentation A (METHOD.md "Style augmentation"), with
//! torchvision's distributions: RandomResizedCrop's 10 tries and centre fallback, ColorJitter's
//! uniform factors in a uniformly random order, RandomGrayscale, GaussianBlur's σ,
//! RandomSolarize.

use rand::{Rng, RngExt};

use super::resized_crop::ResizedCrop;

/// The augmentation's hyper-parameters (paper values by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StyleConfig {
    pub crop_scale: (f64, f64),
    pub crop_ratio: (f64, f64),
    /// Brightness, contrast and saturation factors are uniform in [1 − j, 1 + j].
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    /// Hue shift uniform in [−hue, hue].
    pub hue: f32,
    pub grayscale_p: f64,
    pub blur_kernel: usize,
    pub blur_sigma: (f32, f32),
    pub solarize_p: f64,
    pub solarize_threshold: f32,
}

impl Default for StyleConfig {
    fn default() -> Self {
        StyleConfig {
            crop_scale: (0.32, 1.0),
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            brightness: 0.8,
            contrast: 0.8,
            saturation: 0.8,
            hue: 0.2,
            grayscale_p: 0.05,
            blur_kernel: 23,
            blur_sigma: (1e-10, 0.2),
            solarize_p: 0.2,
            solarize_threshold: 0.5,
        }
    }
}

/// The colour part of one draw of A: shared by centre and neighbour in SIPLv2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourParams {
    /// Jitter op ids in application order: 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: [u8; 4],
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
    pub grayscale: bool,
    pub sigma: f32,
    pub solarize: bool,
}

impl ColourParams {
    pub fn draw(cfg: &StyleConfig, rng: &mut impl Rng) -> Self {
        let mut order = [0u8, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, rng.random_range(0..=i)); // Fisher–Yates: uniform over the 24 orders
        }
        let brightness = factor(cfg.brightness, rng);
        let contrast = factor(cfg.contrast, rng);
        let saturation = factor(cfg.saturation, rng);
        let hue = if cfg.hue > 0.0 { rng.random_range(-cfg.hue..=cfg.hue) } else { 0.0 };
        let grayscale = rng.random_bool(cfg.grayscale_p);
        let sigma = rng.random_range(cfg.blur_sigma.0..=cfg.blur_sigma.1);
        let solarize = rng.random_bool(cfg.solarize_p);
        ColourParams { order, brightness, contrast, saturation, hue, grayscale, sigma, solarize }
    }
}

/// A jitter factor uniform in [1 − j, 1 + j] (1 when the op is off).
fn factor(j: f32, rng: &mut impl Rng) -> f32 {
    if j > 0.0 { rng.random_range(1.0 - j..=1.0 + j) } else { 1.0 }
}

/// RandomResizedCrop.get_params on a `size`×`size` image, output `size`×`size`.
pub fn draw_crop(cfg: &StyleConfig, size: usize, rng: &mut impl Rng) -> ResizedCrop {
    let area = (size * size) as f64;
    let (lr0, lr1) = (cfg.crop_ratio.0.ln(), cfg.crop_ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(cfg.crop_scale.0..=cfg.crop_scale.1);
        let ratio = rng.random_range(lr0..=lr1).exp();
        let w = (target * ratio).sqrt().round_ties_even() as usize;
        let h = (target / ratio).sqrt().round_ties_even() as usize;
        if 0 < w && w <= size && 0 < h && h <= size {
            let top = rng.random_range(0..=size - h);
            let left = rng.random_range(0..=size - w);
            return ResizedCrop { top, left, height: h, width: w, size };
        }
    }
    // Fallback: the whole (square) image, whose ratio 1 lies inside the ratio range.
    ResizedCrop { top: 0, left: 0, height: size, width: size, size }
}
