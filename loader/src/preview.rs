//! A contact sheet of samples, what a user looks at before trusting a run: per row, the image
//! with its 3×3 grid (centre cell in white, the neighbour of the label in yellow), a glyph of
//! the label's position, then every view of the sample before colour projection.

use image::{Rgb, RgbImage, imageops};
use rand::Rng;

use crate::geometry::NEIGHBOURS;
use crate::planar::Planar;
use crate::scheme::SampleSpec;

const PAD: u32 = 4;

/// Renders `rgb` images (S×S RGB8) as rows of a sheet; `tile` is the displayed side of each
/// picture. Returns the sheet and the label of each row.
pub fn contact_sheet(
    spec: &SampleSpec,
    images: &[Vec<u8>],
    tile: u32,
    rng: &mut impl Rng,
) -> (RgbImage, Vec<u8>) {
    let views = spec.scheme.views() as u32;
    let width = PAD + (tile + PAD) * (2 + views);
    let height = PAD + (tile + PAD) * images.len() as u32;
    let mut sheet = RgbImage::from_pixel(width, height, Rgb([32, 32, 32]));
    let mut labels = Vec::new();
    for (row, rgb) in images.iter().enumerate() {
        let sample = spec.patches(rgb, rng);
        labels.push(sample.label);
        let y = PAD + row as u32 * (tile + PAD);
        let s = spec.geometry.image as u32;
        let img = RgbImage::from_raw(s, s, rgb.clone()).expect("S×S RGB8 image");
        let mut shown = imageops::resize(&img, tile, tile, imageops::FilterType::Triangle);
        draw_grid(&mut shown, spec, sample.label);
        imageops::replace(&mut sheet, &shown, PAD as i64, y as i64);
        imageops::replace(
            &mut sheet,
            &glyph(sample.label, tile),
            (PAD * 2 + tile) as i64,
            y as i64,
        );
        for (v, view) in sample.views.iter().enumerate() {
            let x = PAD + (tile + PAD) * (2 + v as u32);
            let pic = imageops::resize(&to_rgb8(view), tile, tile, imageops::FilterType::Triangle);
            imageops::replace(&mut sheet, &pic, x as i64, y as i64);
        }
    }
    (sheet, labels)
}

fn to_rgb8(p: &Planar) -> RgbImage {
    let n = p.plane_len();
    RgbImage::from_fn(p.width as u32, p.height as u32, |x, y| {
        let i = y as usize * p.width + x as usize;
        Rgb([0, 1, 2].map(|c| (p.data[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// Outlines the grid cells on the displayed image.
fn draw_grid(img: &mut RgbImage, spec: &SampleSpec, label: u8) {
    let scale = img.width() as f32 / spec.geometry.image as f32;
    let cell = spec.geometry.cell as f32 * scale;
    let mut outline = |(r, c): (usize, usize), colour: Rgb<u8>| {
        let (x0, y0) = ((c as f32 * cell) as u32, (r as f32 * cell) as u32);
        let x1 = ((c as f32 + 1.0) * cell) as u32 - 1;
        let y1 = ((r as f32 + 1.0) * cell) as u32 - 1;
        for t in x0..=x1.min(img.width() - 1) {
            img.put_pixel(t, y0, colour);
            img.put_pixel(t, y1.min(img.height() - 1), colour);
        }
        for t in y0..=y1.min(img.height() - 1) {
            img.put_pixel(x0, t, colour);
            img.put_pixel(x1.min(img.width() - 1), t, colour);
        }
    };
    for r in 0..3 {
        for c in 0..3 {
            outline((r, c), Rgb([90, 90, 90]));
        }
    }
    outline((1, 1), Rgb([255, 255, 255]));
    outline(NEIGHBOURS[label as usize], Rgb([255, 210, 0]));
}

/// A 3×3 glyph: the centre white, the labelled neighbour yellow.
fn glyph(label: u8, tile: u32) -> RgbImage {
    let cell = tile / 3;
    RgbImage::from_fn(tile, tile, |x, y| {
        let (r, c) = ((y / cell.max(1)).min(2) as usize, (x / cell.max(1)).min(2) as usize);
        let border = x % cell.max(1) < 2 || y % cell.max(1) < 2;
        if border {
            Rgb([32, 32, 32])
        } else if (r, c) == (1, 1) {
            Rgb([255, 255, 255])
        } else if (r, c) == NEIGHBOURS[label as usize] {
            Rgb([255, 210, 0])
        } else {
            Rgb([80, 80, 80])
        }
    })
}
