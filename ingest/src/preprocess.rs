//! The deterministic part of the paper's pre-processing, done once at ingest with torchvision's
//! semantics: `Resize(n)` (shorter side to n, bilinear with antialiasing, the longer side
//! truncated as torchvision does) then `CenterCrop(c)` (offsets rounded half-to-even, as
//! Python's `round`).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::intake::RgbImage;

/// Output size of torchvision `Resize(short)` for a `width`×`height` input.
pub fn resized_size(width: u32, height: u32, short: u32) -> (u32, u32) {
    let (s, l) = (width.min(height) as u64, width.max(height) as u64);
    let long = (short as u64 * l / s) as u32; // int(size * long / short): truncation
    if width <= height { (short, long) } else { (long, short) }
}

/// Shorter side to `short`, bilinear with antialiasing (PIL's convolution, support scaled by
/// the reduction factor — torchvision's `antialias=True`).
pub fn resize_shorter(img: &RgbImage, short: u32) -> RgbImage {
    let (w, h) = resized_size(img.width, img.height, short);
    if (w, h) == (img.width, img.height) {
        return img.clone();
    }
    let src = ImageRef::new(img.width, img.height, &img.pixels, PixelType::U8x3)
        .expect("RgbImage holds width*height*3 bytes");
    let mut dst = Image::new(w, h, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src, &mut dst, &options).expect("same pixel type on both sides");
    RgbImage { width: w, height: h, pixels: dst.into_vec() }
}

/// torchvision `CenterCrop(size)` on an image at least `size` on both sides.
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    assert!(img.width >= size && img.height >= size, "crop larger than image");
    let top = ((img.height - size) as f64 / 2.0).round_ties_even() as usize;
    let left = ((img.width - size) as f64 / 2.0).round_ties_even() as usize;
    let (w, s) = (img.width as usize, size as usize);
    let mut pixels = Vec::with_capacity(s * s * 3);
    for y in top..top + s {
        let row = (y * w + left) * 3;
        pixels.extend_from_slice(&img.pixels[row..row + s * 3]);
    }
    RgbImage { width: size, height: size, pixels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_matches_torchvision() {
        // torchvision: Resize(256) on 500x375 (w x h) gives 341x256.
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(68, 121, 256), (256, 455));
    }

    #[test]
    fn center_crop_rounds_half_to_even() {
        assert_eq!(58.5f64.round_ties_even(), 58.0);
        assert_eq!(57.5f64.round_ties_even(), 58.0);
        assert_eq!(16.0f64.round_ties_even(), 16.0);
        let img = RgbImage { width: 5, height: 4, pixels: (0..60).collect() };
        // (5-2)/2 = 1.5 -> 2 ; (4-2)/2 = 1
        let c = center_crop(&img, 2);
        assert_eq!(c.pixels[..3], img.pixels[(5 + 2) * 3..(5 + 2) * 3 + 3]);
    }

    #[test]
    fn resize_keeps_a_flat_image_flat() {
        let img = RgbImage { width: 100, height: 80, pixels: [10u8, 200, 30].repeat(8000) };
        let r = resize_shorter(&img, 32);
        assert_eq!((r.width, r.height), (40, 32));
        assert!(r.pixels.chunks(3).all(|p| p == [10, 200, 30]));
    }
}
