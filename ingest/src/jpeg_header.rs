//! The JPEG marker walk: what a file is (frame type, precision, size, components, the markers
//! that decide its colour space, EXIF orientation) and where its image ends.
//!
//! The decoder we use converts CMYK to RGB, pads a cut-off scan with grey, and decides colour
//! spaces by other rules than libjpeg, so intake judges a JPEG from this walk and hands the
//! decoder only this image's own bytes ([`JpegInfo::decoder_bytes`]).
//!
//! The walk reads as libjpeg does: stray bytes between markers are skipped (libjpeg warns
//! "extraneous bytes before marker" and decodes), `FF` fill bytes before a marker are allowed,
//! a scan's entropy-coded data runs to the next marker that is neither a restart marker nor a
//! stuffed `FF 00`, and the image ends at the end-of-image marker after its last scan. What
//! follows (a phone's motion-photo video, the second picture of an MPO file, padding) is not
//! part of it, whatever bytes it holds.

use std::borrow::Cow;
use std::ops::Range;

/// One frame component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub id: u8,
    /// Sampling factors.
    pub h: u8,
    pub v: u8,
    /// Offset of the id byte in the file.
    id_at: usize,
}

/// The frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The start-of-frame marker's code: 0xC0 baseline, 0xC1 extended sequential, 0xC2
    /// progressive, 0xC3 lossless, 0xC5..0xC7 hierarchical, 0xC9.. arithmetic-coded.
    pub sof: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: Vec<Component>,
}

/// The colour space of a three-component JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    YCbCr,
    /// Coded as R, G, B without colour transform.
    Rgb,
}

/// What the walk found.
#[derive(Debug, Clone, Default)]
pub struct JpegInfo {
    pub frame: Option<Frame>,
    /// An APP0 `JFIF` segment.
    pub jfif: bool,
    /// The colour transform of an APP14 `Adobe` segment.
    pub adobe_transform: Option<u8>,
    /// EXIF orientation (1..=8) from an APP1 `Exif` segment.
    pub orientation: Option<u8>,
    /// At least one Huffman table segment (Motion-JPEG frames omit them and rely on the
    /// standard tables).
    pub huffman_tables: bool,
    /// Stray bytes skipped between markers.
    pub extraneous: usize,
    pub scans: usize,
    /// Offset just past this image's end-of-image marker; `None`: the file ends first.
    pub end: Option<usize>,
    /// What makes up the image, in order, without stray bytes: markers with their segments and
    /// entropy-coded data.
    pieces: Vec<Range<usize>>,
    /// The pieces that are APP14 `Adobe` segments.
    adobe: Vec<Range<usize>>,
    /// Offsets of the component selectors of every scan header.
    selectors: Vec<usize>,
}

pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Walks the whole image. `Err` describes a malformed structure; a file that ends early is
/// `Ok` with `end == None` (and `frame` when the frame header was read).
pub fn read(bytes: &[u8]) -> Result<JpegInfo, String> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("no start-of-image marker".into());
    }
    let mut info = JpegInfo::default();
    info.pieces.push(0..2); // SOI
    let mut pos = 2;
    loop {
        // The next marker: stray bytes, then fill bytes, then the code.
        let from = pos;
        pos += bytes[pos..].iter().position(|&b| b == 0xFF).unwrap_or(bytes.len() - pos);
        info.extraneous += pos - from;
        pos += bytes[pos..].iter().take_while(|&&b| b == 0xFF).count();
        let Some(&code) = bytes.get(pos) else { return Ok(info) };
        let marker = pos - 1..pos + 1;
        pos += 1;
        match code {
            // `FF 00` outside a scan is stray data to libjpeg too.
            0x00 => {
                info.extraneous += 2;
                continue;
            }
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 => return Err("a second start-of-image marker inside the image".into()),
            0xD9 if info.scans == 0 => return Err("end of image before any scan".into()),
            0xD9 => {
                info.pieces.push(marker);
                info.end = Some(pos);
                return Ok(info);
            }
            _ => {}
        }
        let Some(len) = bytes.get(pos..pos + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return Ok(info);
        };
        if len < 2 {
            return Err(format!("segment FF{code:02X} has length {len}"));
        }
        let Some(seg) = bytes.get(pos + 2..pos + len) else { return Ok(info) };
        let whole = marker.start..pos + len;
        match code {
            0xC4 => info.huffman_tables = true,
            0xC0..=0xCF if !matches!(code, 0xC8 | 0xCC) => {
                if info.frame.is_some() {
                    return Err("a second frame header".into());
                }
                info.frame = Some(frame(code, seg, pos + 2)?);
            }
            0xDA => {
                let Some(frame) = &info.frame else {
                    return Err("scan before frame header".into());
                };
                let n = *seg.first().unwrap_or(&0) as usize;
                if n == 0 || n > frame.components.len() || seg.len() < 1 + 2 * n + 3 {
                    return Err("malformed scan header".into());
                }
                info.selectors.extend((0..n).map(|i| pos + 3 + 2 * i));
            }
            0xE0 if seg.starts_with(b"JFIF\0") => info.jfif = true,
            0xE1 if seg.starts_with(b"Exif\0\0") && info.orientation.is_none() => {
                info.orientation = crate::exif::orientation(&seg[6..]);
            }
            0xEE if seg.starts_with(b"Adobe") => {
                // libjpeg reads the transform from segments of 12 bytes or more only.
                if seg.len() >= 12 {
                    info.adobe_transform = Some(seg[11]);
                }
                info.adobe.push(whole.clone());
            }
            _ => {}
        }
        info.pieces.push(whole);
        pos += len;
        if code == 0xDA {
            let start = pos;
            // Entropy-coded data: FF is followed by 00 (stuffing), a restart marker or fill.
            loop {
                let Some(ff) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
                    return Ok(info);
                };
                pos += ff;
                match bytes.get(pos + 1) {
                    None => return Ok(info),
                    Some(0x00 | 0xD0..=0xD7) => pos += 2,
                    Some(0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
            info.pieces.push(start..pos);
            info.scans += 1;
        }
    }
}

fn frame(sof: u8, seg: &[u8], at: usize) -> Result<Frame, String> {
    if seg.len() < 6 {
        return Err("short frame header".into());
    }
    let n = seg[5] as usize;
    if n == 0 || seg.len() < 6 + 3 * n {
        return Err(format!("frame header too short for {n} components"));
    }
    let components = (0..n)
        .map(|i| {
            let c = &seg[6 + 3 * i..9 + 3 * i];
            Component { id: c[0], h: c[1] >> 4, v: c[1] & 15, id_at: at + 6 + 3 * i }
        })
        .collect();
    Ok(Frame {
        sof,
        precision: seg[0],
        height: u16::from_be_bytes([seg[1], seg[2]]),
        width: u16::from_be_bytes([seg[3], seg[4]]),
        components,
    })
}

/// Component ids libjpeg reads as "coded as RGB": ASCII R, G, B.
const RGB_IDS: [u8; 3] = *b"RGB";

impl JpegInfo {
    /// The colour space libjpeg (and so Pillow) gives a three-component image: JFIF means
    /// YCbCr; else an Adobe segment's transform decides (0: RGB); else the component ids
    /// (`R`,`G`,`B`: RGB); else YCbCr.
    pub fn colour(&self) -> Colour {
        if self.jfif {
            return Colour::YCbCr;
        }
        match self.adobe_transform {
            Some(0) => Colour::Rgb,
            Some(_) => Colour::YCbCr,
            None if self.ids() == Some(RGB_IDS) => Colour::Rgb,
            None => Colour::YCbCr,
        }
    }

    fn ids(&self) -> Option<[u8; 3]> {
        let c = &self.frame.as_ref()?.components;
        (c.len() == 3).then(|| [c[0].id, c[1].id, c[2].id])
    }

    /// The bytes to hand the decoder (zune-jpeg) so that it decodes what libjpeg would: this
    /// image only (no trailing data, no stray bytes), and, for a three-component image with an
    /// Adobe segment or with colour-space rules that differ from libjpeg's (zune-jpeg reads
    /// Adobe transform 0 as CMYK, and `R`,`G`,`B` ids as RGB even under JFIF), without Adobe
    /// segments and with component ids that say the colour space libjpeg chose (the decoder
    /// then goes by the ids alone). A file without Huffman tables gets the Motion-JPEG marker that makes
    /// the decoder use the standard tables, as libjpeg does.
    pub fn decoder_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(end) = self.end else { return Cow::Borrowed(bytes) };
        let colour = self.colour();
        let ids = self.ids();
        let recolour = ids.is_some()
            && ((ids == Some(RGB_IDS)) != (colour == Colour::Rgb) || !self.adobe.is_empty());
        if self.extraneous == 0 && !recolour && self.huffman_tables {
            return Cow::Borrowed(&bytes[..end]);
        }
        let mut src = Cow::Borrowed(bytes);
        if let (true, Some(old), Some(frame)) = (recolour, ids, &self.frame) {
            let new = if colour == Colour::Rgb { RGB_IDS } else { [1, 2, 3] };
            let b = src.to_mut();
            for (c, n) in frame.components.iter().zip(new) {
                b[c.id_at] = n;
            }
            for &s in &self.selectors {
                if let Some(i) = old.iter().position(|&o| o == b[s]) {
                    b[s] = new[i];
                }
            }
        }
        let mut out = Vec::with_capacity(end + 9);
        for (i, piece) in self.pieces.iter().enumerate() {
            if recolour && self.adobe.contains(piece) {
                continue;
            }
            out.extend_from_slice(&src[piece.clone()]);
            if i == 0 && !self.huffman_tables {
                // APP0 "AVI1": zune-jpeg then fills in the standard (Motion-JPEG) tables.
                out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0]);
            }
        }
        Cow::Owned(out)
    }
}

/// The name of a frame type sipl's decoder does not read (`None`: baseline, extended
/// sequential and progressive Huffman-coded DCT, which it does).
pub fn unsupported_frame(sof: u8) -> Option<&'static str> {
    Some(match sof {
        0xC0..=0xC2 => return None,
        0xC3 => "lossless JPEG (SOF3)",
        0xC5 => "hierarchical JPEG (SOF5)",
        0xC6 => "hierarchical progressive JPEG (SOF6)",
        0xC7 => "hierarchical lossless JPEG (SOF7)",
        0xC9 => "arithmetic-coded JPEG (SOF9)",
        0xCA => "arithmetic-coded progressive JPEG (SOF10)",
        0xCB => "arithmetic-coded lossless JPEG (SOF11)",
        0xCD => "arithmetic-coded hierarchical JPEG (SOF13)",
        0xCE => "arithmetic-coded hierarchical progressive JPEG (SOF14)",
        _ => "arithmetic-coded hierarchical lossless JPEG (SOF15)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode");
        out.into_inner()
    }

    #[test]
    fn reads_frame_of_a_complete_jpeg() {
        let bytes = jpeg(40, 30);
        let info = read(&bytes).expect("valid");
        let f = info.frame.clone().expect("frame");
        assert_eq!((f.width, f.height, f.components.len(), f.precision), (40, 30, 3, 8));
        assert_eq!(info.end, Some(bytes.len()));
        assert_eq!((info.scans, info.extraneous, info.colour()), (1, 0, Colour::YCbCr));
        assert!(matches!(info.decoder_bytes(&bytes), Cow::Borrowed(b) if b.len() == bytes.len()));
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = jpeg(64, 64);
        let info = read(&bytes[..bytes.len() * 2 / 3]).expect("header intact");
        assert!(info.frame.is_some());
        assert_eq!(info.end, None);
        let info = read(&bytes[..20]).expect("cut in the header");
        assert!(info.frame.is_none() && info.end.is_none());
    }

    #[test]
    fn trailing_markers_do_not_move_the_end() {
        let bytes = jpeg(32, 32);
        let mut long = bytes.clone();
        long.extend([0xFF, 0xDA, 0x00, 0x08, 1, 2, 3, 0xFF, 0xD9, 0x12, 0xFF]);
        assert_eq!(read(&long).expect("valid").end, Some(bytes.len()));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read(&[0x12, 0x34]).is_err());
        assert!(read(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
        assert!(read(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]).is_err());
    }
}
