//! Decoding one source file into RGB8 pixels, or a recorded reason why not.
//!
//! The non-RGB filter (SPEC "Data"): an image is kept only if it is 8-bit with exactly three
//! colour channels. Grayscale, grayscale+alpha, RGBA, CMYK, 16-bit and anything else is
//! rejected with its reason. Dimensions are read from the header and checked before any pixel
//! buffer is allocated.

use std::io::Cursor;

use image::{ColorType, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::jpeg_header;

/// Why a source file was not kept. `code` is stable and machine-readable; `detail` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub detail: String,
    /// Source dimensions, when the header could be read.
    pub dims: Option<(u32, u32)>,
}

impl Rejection {
    fn new(code: &'static str, detail: impl Into<String>, dims: Option<(u32, u32)>) -> Self {
        Rejection { code, detail: detail.into(), dims }
    }
}

/// Reason codes, as written to the manifest.
pub mod code {
    pub const UNREADABLE: &str = "unreadable";
    pub const EMPTY: &str = "empty-file";
    pub const NOT_AN_IMAGE: &str = "not-an-image";
    pub const CORRUPT: &str = "corrupt";
    pub const TRUNCATED: &str = "truncated";
    pub const NOT_RGB: &str = "not-rgb";
    pub const TOO_SMALL: &str = "too-small";
    pub const TOO_LARGE: &str = "too-large";
}

/// Size limits applied before decoding.
#[derive(Debug, Clone, Copy)]
pub struct IntakeLimits {
    /// Shorter side below this is rejected.
    pub min_side: u32,
    /// width × height above this is rejected before allocating.
    pub max_pixels: u64,
}

/// A decoded RGB8 image, HWC.
#[derive(Debug, Clone)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decodes `bytes` (a whole file) to RGB8 or says why it is rejected.
pub fn decode_rgb(bytes: &[u8], limits: IntakeLimits) -> Result<RgbImage, Rejection> {
    if bytes.is_empty() {
        return Err(Rejection::new(code::EMPTY, "zero-byte file", None));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Rejection::new(code::UNREADABLE, e.to_string(), None))?;
    // Our own limits are checked on the header below, before the pixel buffer exists.
    reader.no_limits();
    let format = reader.format().ok_or_else(|| {
        Rejection::new(code::NOT_AN_IMAGE, "content is not a recognised image format", None)
    })?;
    if format == ImageFormat::Jpeg {
        check_jpeg(bytes, limits)?;
    }
    let mut decoder =
        reader.into_decoder().map_err(|e| Rejection::new(code::CORRUPT, e.to_string(), None))?;
    let (width, height) = decoder.dimensions();
    let dims = Some((width, height));
    check_size(width, height, limits)?;
    let color = decoder.color_type();
    if color != ColorType::Rgb8 {
        return Err(Rejection::new(code::NOT_RGB, describe(color), dims));
    }
    let mut caps = Limits::default();
    caps.max_alloc = Some(limits.max_pixels.saturating_mul(4).max(1 << 20));
    decoder.set_limits(caps).map_err(|e| Rejection::new(code::TOO_LARGE, e.to_string(), dims))?;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    decoder
        .read_image(&mut pixels)
        .map_err(|e| Rejection::new(code::CORRUPT, e.to_string(), dims))?;
    Ok(RgbImage { width, height, pixels })
}

/// JPEG checks the decoder does not make: CMYK/YCCK and precision from the frame header, and
/// truncation (the decoder pads a cut-off scan with grey instead of failing).
fn check_jpeg(bytes: &[u8], limits: IntakeLimits) -> Result<(), Rejection> {
    let frame =
        jpeg_header::read_frame(bytes).map_err(|e| Rejection::new(code::CORRUPT, e, None))?;
    let dims = Some((frame.width as u32, frame.height as u32));
    check_size(frame.width as u32, frame.height as u32, limits)?;
    match frame.components {
        3 => {}
        1 => return Err(Rejection::new(code::NOT_RGB, "grayscale JPEG (1 component)", dims)),
        4 => return Err(Rejection::new(code::NOT_RGB, "CMYK/YCCK JPEG (4 components)", dims)),
        n => return Err(Rejection::new(code::NOT_RGB, format!("JPEG with {n} components"), dims)),
    }
    if frame.precision != 8 {
        let detail = format!("{}-bit JPEG", frame.precision);
        return Err(Rejection::new(code::NOT_RGB, detail, dims));
    }
    if !frame.complete {
        return Err(Rejection::new(
            code::TRUNCATED,
            "JPEG data ends before its end-of-image marker",
            dims,
        ));
    }
    Ok(())
}

fn check_size(width: u32, height: u32, limits: IntakeLimits) -> Result<(), Rejection> {
    let dims = Some((width, height));
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        let detail = format!("{width}x{height} exceeds the {} pixel limit", limits.max_pixels);
        return Err(Rejection::new(code::TOO_LARGE, detail, dims));
    }
    if width.min(height) < limits.min_side {
        let detail = format!("{width}x{height} is below the {} px minimum side", limits.min_side);
        return Err(Rejection::new(code::TOO_SMALL, detail, dims));
    }
    Ok(())
}

fn describe(color: ColorType) -> String {
    match color {
        ColorType::L8 => "grayscale (L8)".into(),
        ColorType::La8 => "grayscale with alpha (LA8)".into(),
        ColorType::Rgba8 => "RGB with alpha (RGBA8)".into(),
        ColorType::L16 => "16-bit grayscale (L16)".into(),
        ColorType::La16 => "16-bit grayscale with alpha (LA16)".into(),
        ColorType::Rgb16 => "16-bit RGB (RGB16)".into(),
        ColorType::Rgba16 => "16-bit RGB with alpha (RGBA16)".into(),
        other => format!("unsupported colour type {other:?}"),
    }
}
