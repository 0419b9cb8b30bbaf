//! `sipl synth`: a procedural image set, deterministic by seed, with no download.
//!
//! Each image has *spatial* structure, so the relative position of two patches is learnable
//! (a sky-to-ground gradient from top to bottom, light falling from the left, a horizon line),
//! and *class* structure, so downstream accuracy means something (each class has its own
//! object shape and stripe texture; colour, size and place are drawn per image).

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sipl_limits::Ints;

use crate::error::{IngestError, Result};

#[derive(Debug, Clone, Copy)]
pub struct SynthSpec {
    pub classes: usize,
    pub per_class: usize,
    pub size: u32,
    pub seed: u64,
}

/// Distinct classes: 4 shapes × 12 textures (3 stripe frequencies × 4 orientations); a 49th
/// class would look exactly like the first.
pub const CLASSES: Ints = Ints::new(1, 48);
/// Images per class (`--per-class`).
pub const PER_CLASS: Ints = Ints::new(1, 100_000);
/// Image side in pixels (`--size`): below 16 the shapes and stripes do not resolve.
pub const SIZE: Ints = Ints::new(16, 4096);

impl SynthSpec {
    /// Checks every value against its range, named as `sipl synth`'s flags.
    pub fn validate(&self) -> Result<()> {
        CLASSES
            .check("--classes", self.classes)
            .map_err(|e| e.note("4 shapes × 12 textures; beyond that classes repeat"))?;
        PER_CLASS.check("--per-class", self.per_class)?;
        SIZE.check("--size", self.size)?;
        Ok(())
    }
}

/// Writes `OUT/class_KK/img_NNNNN.png`; returns the number of images written.
pub fn write_synth(out: &Path, spec: SynthSpec) -> Result<usize> {
    spec.validate()?;
    let mut n = 0;
    for class in 0..spec.classes {
        let dir = out.join(format!("class_{class:02}"));
        std::fs::create_dir_all(&dir).map_err(|e| IngestError::io(&dir, e))?;
        for i in 0..spec.per_class {
            let seed =
                spec.seed ^ ((class as u64) << 32 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let img = synth_image(class, spec.classes, spec.size, seed);
            let path = dir.join(format!("img_{i:05}.png"));
            img.save(&path).map_err(|e| IngestError::io(&path, std::io::Error::other(e)))?;
            n += 1;
        }
    }
    Ok(n)
}

/// One image of `class` (of `classes`), `size`×`size`.
///
/// The class fixes the object's *shape* (disc, square, ring, diamond: `class % 4`) and its
/// *texture* (stripe frequency and orientation: `class / 4`); its colour, size, place and
/// stripe phase are drawn per image, so colour says nothing about the class (the style
/// augmentation randomises colour anyway) and neither does position.
pub fn synth_image(class: usize, classes: usize, size: u32, seed: u64) -> image::RgbImage {
    let _ = classes;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = size as f32;
    let horizon = rng.random_range(0.45..0.65) * s;
    let sky =
        [rng.random_range(0.45..0.7), rng.random_range(0.6..0.8), rng.random_range(0.85..1.0)];
    let ground =
        [rng.random_range(0.3..0.5), rng.random_range(0.25..0.4), rng.random_range(0.1..0.2)];
    let colour = hsv(rng.random_range(0.0..1.0), rng.random_range(0.5..0.9), 0.9);
    let shape = class % 4;
    let texture = class / 4;
    let freq = 2.0 + (texture % 3) as f32 * 2.0;
    let angle = (texture % 4) as f32 * std::f32::consts::FRAC_PI_4;
    let (ca, sa) = (angle.cos(), angle.sin());
    let radius = rng.random_range(0.18..0.26) * s;
    let (cx, cy) = (rng.random_range(0.3..0.7) * s, rng.random_range(0.3..0.7) * s);
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    image::RgbImage::from_fn(size, size, |x, y| {
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        // Background: sky above the horizon, ground below, lit from the left.
        let light = 1.1 - 0.35 * fx / s;
        let mut px = if fy < horizon {
            let t = fy / horizon;
            sky.map(|c| c * (1.0 - 0.3 * t))
        } else {
            let t = (fy - horizon) / (s - horizon);
            ground.map(|c| c * (1.0 - 0.4 * t))
        };
        let (dx, dy) = (fx - cx, fy - cy);
        let r = (dx * dx + dy * dy).sqrt();
        let inside = match shape {
            0 => r < radius,
            1 => dx.abs() < radius * 0.9 && dy.abs() < radius * 0.9,
            2 => r < radius && r > radius * 0.55,
            _ => dx.abs() + dy.abs() < radius * 1.3,
        };
        if inside {
            let along = (dx * ca + dy * sa) / radius;
            let stripes = (along * freq * std::f32::consts::PI + phase).sin();
            let texture = if stripes > 0.0 { 1.0 } else { 0.45 };
            px = colour.map(|c| c * texture);
        }
        let noise: f32 = rng.random_range(-0.03..0.03);
        image::Rgb(px.map(|c| ((c * light + noise).clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    match i as i32 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}
