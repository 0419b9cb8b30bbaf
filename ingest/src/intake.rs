//! Decoding one source file into RGB8 pixels, or a recorded reason why not.
//!
//! The rule: an image that Pillow's default loader (`Image.open`) opens as an RGB image is kept
//! with the pixels Pillow gives (up to the two JPEG decoders' rounding), or rejected with a
//! reason that names the exact feature sipl lacks; the non-RGB filter (METHOD.md "Data") rejects
//! the rest with `not-rgb`. ARCHITECTURE.md has the table of JPEG and PNG features and what
//! becomes of each. Sizes are checked on the header before any pixel buffer is allocated.
//! EXIF orientation is recorded, never applied (as `Image.open`).

use std::io::Cursor;

use image::{ColorType, ImageDecoder, ImageReader, Limits};

use crate::jpeg_header::{self, JpegInfo};
use crate::png_header::{self, PngProblem};

/// Why a source file was not kept. `code` is stable and machine-readable; `detail` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub detail: String,
    /// Source dimensions, when the header could be read.
    pub dims: Option<(u32, u32)>,
    /// EXIF orientation, when the header could be read and has one.
    pub orientation: Option<u8>,
}

impl Rejection {
    fn new(code: &'static str, detail: impl Into<String>, dims: Option<(u32, u32)>) -> Self {
        Rejection { code, detail: detail.into(), dims, orientation: None }
    }

    /// `feature`, with the image's size when known, as an `unsupported` rejection.
    fn unsupported(feature: &str, dims: Option<(u32, u32)>) -> Self {
        let detail = match dims {
            Some((w, h)) => format!("{w}x{h} {feature}: not supported"),
            None => format!("{feature}: not supported"),
        };
        Rejection::new(code::UNSUPPORTED, detail, dims)
    }
}

/// Reason codes, as written to the manifest. One vocabulary for every format.
pub mod code {
    /// The file could not be read (a dangling link, no permission, not a regular file).
    pub const UNREADABLE: &str = "unreadable";
    pub const EMPTY: &str = "empty-file";
    /// Not a format sipl or Pillow recognises.
    pub const NOT_AN_IMAGE: &str = "not-an-image";
    /// A well-formed image using something sipl does not decode; the detail names it and the
    /// image's size (arithmetic-coded or lossless JPEG, a WebP or BMP file, ...).
    pub const UNSUPPORTED: &str = "unsupported";
    /// Damaged data: a malformed header, a checksum mismatch before the image data, a broken
    /// compressed stream.
    pub const CORRUPT: &str = "corrupt";
    /// The file ends before its image does (JPEG: before the end-of-image marker after its
    /// last scan; PNG: before its pixel data is complete).
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

/// A kept image and what its header said besides.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: RgbImage,
    /// EXIF orientation (1..=8), recorded, not applied.
    pub orientation: Option<u8>,
}

/// Decodes `bytes` (a whole file) to RGB8 or says why it is rejected.
pub fn decode_rgb(bytes: &[u8], limits: IntakeLimits) -> Result<RgbImage, Rejection> {
    decode(bytes, limits).map(|d| d.image)
}

/// Decodes `bytes` (a whole file) to RGB8 with its orientation, or says why it is rejected.
pub fn decode(bytes: &[u8], limits: IntakeLimits) -> Result<Decoded, Rejection> {
    if bytes.is_empty() {
        return Err(Rejection::new(code::EMPTY, "zero-byte file", None));
    }
    if jpeg_header::is_jpeg(bytes) {
        return decode_jpeg(bytes, limits);
    }
    if bytes.starts_with(png_header::SIGNATURE) {
        return decode_png(bytes, limits);
    }
    match crate::formats::sniff(bytes) {
        Some((format, dims)) => {
            let feature = format!("{format} image (sipl reads JPEG and PNG)");
            Err(Rejection::unsupported(&feature, dims))
        }
        None => Err(Rejection::new(
            code::NOT_AN_IMAGE,
            "content is not a recognised image format",
            None,
        )),
    }
}

fn decode_jpeg(bytes: &[u8], limits: IntakeLimits) -> Result<Decoded, Rejection> {
    let info = jpeg_header::read(bytes).map_err(|e| Rejection::new(code::CORRUPT, e, None))?;
    let orientation = info.orientation;
    let with_orientation = |mut r: Rejection| {
        r.orientation = orientation;
        r
    };
    check_jpeg(&info, limits).map_err(with_orientation)?;
    let frame = info.frame.as_ref().expect("checked");
    let dims = Some((frame.width as u32, frame.height as u32));
    let stream = info.decoder_bytes(bytes);
    let image = decode_with_image(&stream, limits, dims).map_err(with_orientation)?;
    Ok(Decoded { image, orientation })
}

/// JPEG checks the decoder does not make, in the order a reader would want them named.
fn check_jpeg(info: &JpegInfo, limits: IntakeLimits) -> Result<(), Rejection> {
    let Some(frame) = &info.frame else {
        let detail = "the file ends before the JPEG frame header";
        return Err(Rejection::new(code::TRUNCATED, detail, None));
    };
    let dims = Some((frame.width as u32, frame.height as u32));
    if frame.width == 0 {
        return Err(Rejection::new(code::CORRUPT, "JPEG frame of width 0", dims));
    }
    if frame.height == 0 {
        return Err(Rejection::unsupported("JPEG whose height is given by a DNL marker", dims));
    }
    check_size(frame.width as u32, frame.height as u32, limits)?;
    if let Some(feature) = jpeg_header::unsupported_frame(frame.sof) {
        return Err(Rejection::unsupported(feature, dims));
    }
    match frame.components.len() {
        3 => {}
        1 => return Err(Rejection::new(code::NOT_RGB, "grayscale JPEG (1 component)", dims)),
        4 => return Err(Rejection::new(code::NOT_RGB, "CMYK/YCCK JPEG (4 components)", dims)),
        n => return Err(Rejection::new(code::NOT_RGB, format!("JPEG with {n} components"), dims)),
    }
    if frame.precision != 8 {
        let detail = format!("{}-bit JPEG", frame.precision);
        return Err(Rejection::new(code::NOT_RGB, detail, dims));
    }
    if let Some(c) = frame.components.iter().find(|c| c.h == 0 || c.v == 0) {
        let detail = format!("sampling factor {}x{} in the frame header", c.h, c.v);
        return Err(Rejection::new(code::CORRUPT, detail, dims));
    }
    if let Some(c) = frame.components.iter().find(|c| !c.h.is_power_of_two()) {
        let feature = format!("JPEG with horizontal sampling factor {} (of {}x{})", c.h, c.h, c.v);
        return Err(Rejection::unsupported(&feature, dims));
    }
    if info.end.is_none() {
        let detail = "JPEG data ends before its end-of-image marker";
        return Err(Rejection::new(code::TRUNCATED, detail, dims));
    }
    Ok(())
}

/// Decodes a checked JPEG stream through `image` (zune-jpeg); it must come out as RGB8.
fn decode_with_image(
    stream: &[u8],
    limits: IntakeLimits,
    dims: Option<(u32, u32)>,
) -> Result<RgbImage, Rejection> {
    let mut reader = ImageReader::with_format(Cursor::new(stream), image::ImageFormat::Jpeg);
    // Our own limits were checked on the header, before the pixel buffer exists.
    reader.no_limits();
    let corrupt = |e: image::ImageError| Rejection::new(code::CORRUPT, e.to_string(), dims);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    if color != ColorType::Rgb8 {
        return Err(Rejection::new(code::NOT_RGB, describe(color), dims));
    }
    let mut caps = Limits::default();
    caps.max_alloc = Some(limits.max_pixels.saturating_mul(4).max(1 << 20));
    decoder.set_limits(caps).map_err(|e| Rejection::new(code::TOO_LARGE, e.to_string(), dims))?;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    decoder.read_image(&mut pixels).map_err(corrupt)?;
    Ok(RgbImage { width, height, pixels })
}

fn decode_png(bytes: &[u8], limits: IntakeLimits) -> Result<Decoded, Rejection> {
    let header = png_header::read(bytes).map_err(|p| match p {
        PngProblem::Truncated(why, dims) => Rejection::new(code::TRUNCATED, why, dims),
        PngProblem::Corrupt(why, dims) => Rejection::new(code::CORRUPT, why, dims),
    })?;
    let (width, height, orientation) = (header.width, header.height, header.orientation);
    let dims = Some((width, height));
    let with_orientation = |mut r: Rejection| {
        r.orientation = orientation;
        r
    };
    let reject =
        |code: &'static str, detail: String| with_orientation(Rejection::new(code, detail, dims));
    check_size(width, height, limits).map_err(with_orientation)?;
    let budget = limits.max_pixels.saturating_mul(8).max(1 << 20);
    let png_limits = png::Limits { bytes: usize::try_from(budget).unwrap_or(usize::MAX) };
    let (stream, cut) = png_header::decoder_bytes(bytes);
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(&stream[..]), png_limits);
    // The chunks before the image data were checked above; the image data's checksums are not
    // checked, as Pillow does not.
    decoder.ignore_checksums(true);
    decoder.set_ignore_text_chunk(true);
    let png_error = |e: png::DecodingError| match e {
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            reject(code::TRUNCATED, "PNG data ends before its pixels are complete".into())
        }
        // The image data was cut: whatever the decoder then says, the file is truncated.
        _ if cut => reject(code::TRUNCATED, "PNG data ends before its pixels are complete".into()),
        png::DecodingError::LimitsExceeded => reject(code::TOO_LARGE, e.to_string()),
        e => reject(code::CORRUPT, e.to_string()),
    };
    let head = decoder.read_header_info().map_err(png_error)?;
    let (colour, depth) = (head.color_type, head.bit_depth);
    let transformations = match colour {
        png::ColorType::Rgb => png::Transformations::IDENTITY,
        png::ColorType::Indexed => png::Transformations::EXPAND,
        _ => return Err(reject(code::NOT_RGB, describe_png(colour, depth))),
    };
    decoder.set_transformations(transformations);
    let mut reader = decoder.read_info().map_err(png_error)?;
    if colour == png::ColorType::Indexed && reader.info().trns.is_some() {
        return Err(reject(code::NOT_RGB, "palette PNG with transparency (tRNS)".into()));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| reject(code::TOO_LARGE, "decoded size does not fit in memory".into()))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(png_error)?;
    buf.truncate(frame.buffer_size());
    let pixels = match (frame.color_type, frame.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => buf,
        // 16-bit samples are big-endian: Pillow keeps the high byte of each.
        (png::ColorType::Rgb, png::BitDepth::Sixteen) => buf.iter().step_by(2).copied().collect(),
        (c, d) => return Err(reject(code::NOT_RGB, describe_png(c, d))),
    };
    if pixels.len() != width as usize * height as usize * 3 {
        return Err(reject(
            code::CORRUPT,
            format!("{} bytes of pixels for {width}x{height}", pixels.len()),
        ));
    }
    Ok(Decoded { image: RgbImage { width, height, pixels }, orientation })
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
        other => format!("unsupported colour type {other:?}"),
    }
}

fn describe_png(colour: png::ColorType, depth: png::BitDepth) -> String {
    let bits = depth as u8;
    match colour {
        png::ColorType::Grayscale => format!("{bits}-bit grayscale PNG"),
        png::ColorType::GrayscaleAlpha => format!("{bits}-bit grayscale with alpha PNG"),
        png::ColorType::Rgba => format!("{bits}-bit RGB with alpha (RGBA) PNG"),
        png::ColorType::Rgb => format!("{bits}-bit RGB PNG"),
        png::ColorType::Indexed => format!("{bits}-bit palette PNG"),
    }
}
