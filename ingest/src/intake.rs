//! Decoding one source file into RGB8 pixels, or a recorded reason why not.
//!
//! The rule: an image that Pillow's default loader (`Image.open`) opens as an RGB image is kept
//! with the pixels Pillow gives (JPEG through the same libjpeg-turbo, PNG exactly), or rejected
//! with a reason that names the exact feature sipl lacks; the non-RGB filter (METHOD.md "Data") rejects
//! the rest with `not-rgb`. ARCHITECTURE.md has the table of JPEG and PNG features and what
//! becomes of each. Sizes are checked on the header before any pixel buffer is allocated.
//! EXIF orientation is recorded, never applied (as `Image.open`).

use std::io::Cursor;

use crate::jpeg_header::{self, JpegInfo};
use crate::libjpeg;
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
    let image = decode_with_libjpeg(bytes, frame, dims).map_err(with_orientation)?;
    Ok(Decoded { image, orientation })
}

/// What Pillow decides from the headers before it decodes, in the order a reader would want
/// them named; libjpeg judges the rest.
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
    if !info.scan {
        let detail = "the file ends before the JPEG image data (no scan header)";
        return Err(Rejection::new(code::TRUNCATED, detail, dims));
    }
    Ok(())
}

/// Decodes a checked JPEG through libjpeg-turbo (as Pillow does) into RGB8.
fn decode_with_libjpeg(
    bytes: &[u8],
    frame: &jpeg_header::Frame,
    dims: Option<(u32, u32)>,
) -> Result<RgbImage, Rejection> {
    let failed = |f: libjpeg::Failure| match f {
        libjpeg::Failure::Truncated { rows } => {
            let h = frame.height;
            let detail = if rows == 0 {
                "JPEG data ends before its end-of-image marker (no row complete)".to_string()
            } else {
                format!("JPEG data ends before its end-of-image marker ({rows} of {h} rows)")
            };
            Rejection::new(code::TRUNCATED, detail, dims)
        }
        libjpeg::Failure::UnsupportedFrame { sof } => {
            Rejection::unsupported(jpeg_header::frame_name(sof), dims)
        }
        libjpeg::Failure::Unsupported(why) => {
            // The sampling factors are named only when libjpeg's reason is about them.
            let name = jpeg_header::frame_name(frame.sof);
            let feature = match why.contains("sampling") {
                true => format!("{name} with {} (libjpeg: {why})", sampling(frame)),
                false => format!("{name} (libjpeg: {why})"),
            };
            Rejection::unsupported(&feature, dims)
        }
        libjpeg::Failure::Corrupt(why) => Rejection::new(code::CORRUPT, why, dims),
    };
    let decoder = libjpeg::Decoder::new(bytes).map_err(failed)?;
    let header = decoder.header();
    if header.components != 3 {
        let detail = format!("JPEG with {} components", header.components);
        return Err(Rejection::new(code::NOT_RGB, detail, dims));
    }
    let (width, height) = (header.width, header.height);
    if dims != Some((width, height)) {
        // The walk read another frame header than libjpeg (one datastream after another).
        let detail = format!("libjpeg reads {width}x{height}, the frame header says otherwise");
        return Err(Rejection::new(code::CORRUPT, detail, dims));
    }
    let pixels = decoder.decode_rgb().map_err(failed)?;
    Ok(RgbImage { width, height, pixels })
}

/// The sampling factors of a frame, `HxV` per component, as a reader names a layout.
fn sampling(frame: &jpeg_header::Frame) -> String {
    let f: Vec<String> = frame.components.iter().map(|c| format!("{}x{}", c.h, c.v)).collect();
    format!("sampling factors {}", f.join(","))
}

fn decode_png(bytes: &[u8], limits: IntakeLimits) -> Result<Decoded, Rejection> {
    let header = png_header::read(bytes).map_err(|p| match p {
        PngProblem::Truncated(why, dims) => Rejection::new(code::TRUNCATED, why, dims),
        PngProblem::Corrupt(why, dims) => Rejection::new(code::CORRUPT, why, dims),
        PngProblem::TooLarge(why, dims) => Rejection::new(code::TOO_LARGE, why, dims),
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
    let pixels = png_pixels(&stream, cut, png_limits, &reject)?;
    // Pillow stops reading image data once the pixels are complete and reads what follows as
    // chunks: an IDAT the file cuts short after that point is a cut chunk, and refused.
    if cut
        && let Some(earlier) = png_header::without_cut_idat(bytes)
        && png_pixels(&png_header::decoder_bytes(earlier).0, false, png_limits, &reject).is_ok()
    {
        let why = "the file ends inside an IDAT chunk that follows the complete image data";
        return Err(reject(code::TRUNCATED, why.into()));
    }
    if pixels.len() != width as usize * height as usize * 3 {
        return Err(reject(
            code::CORRUPT,
            format!("{} bytes of pixels for {width}x{height}", pixels.len()),
        ));
    }
    Ok(Decoded { image: RgbImage { width, height, pixels }, orientation })
}

/// Decodes the pixels of a PNG stream prepared by [`png_header::decoder_bytes`] (`cut`: its
/// image data was cut short) into RGB8.
fn png_pixels(
    stream: &[u8],
    cut: bool,
    png_limits: png::Limits,
    reject: &dyn Fn(&'static str, String) -> Rejection,
) -> Result<Vec<u8>, Rejection> {
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(stream), png_limits);
    // The chunks before the image data were checked by the walk; the image data's checksums
    // are not checked, as Pillow does not.
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
    match (frame.color_type, frame.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => Ok(buf),
        // 16-bit samples are big-endian: Pillow keeps the high byte of each.
        (png::ColorType::Rgb, png::BitDepth::Sixteen) => {
            Ok(buf.iter().step_by(2).copied().collect())
        }
        (c, d) => Err(reject(code::NOT_RGB, describe_png(c, d))),
    }
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
