//! The JPEG marker walk up to the first scan, as Pillow's `Image.open` makes it before any
//! pixel is decoded: the frame (type, precision, size, components), the EXIF orientation, and
//! the structural faults that stop Pillow from opening a file at all.
//!
//! Everything after the first scan header (the entropy-coded data, later scans, the
//! end-of-image marker, whatever trails the image) is libjpeg's to judge
//! ([`crate::libjpeg`]). The walk reads as Pillow's parser does: stray bytes between markers
//! are skipped, `FF` fill bytes before a marker are allowed, `FF 00`, restart, start- and
//! end-of-image markers are passed over (libjpeg judges how datastreams nest), a segment
//! whose length is under 2 is read as empty, the last frame header counts, and a marker code
//! outside `C0..=FE` stops it ("no marker found" in Pillow). It refuses what Pillow's segment
//! handlers refuse at open: a `JFIF` or `Adobe` segment too short for its version field, a
//! quantization table segment shorter than its tables, a Photoshop resource block cut inside a
//! resource name, and an ICC profile segment before the frame too short for its count.

/// One frame component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Sampling factors.
    pub h: u8,
    pub v: u8,
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

/// What the walk found before the first scan's data.
#[derive(Debug, Clone, Default)]
pub struct JpegInfo {
    pub frame: Option<Frame>,
    /// EXIF orientation (1..=8) from the first APP1 `Exif` segment.
    pub orientation: Option<u8>,
    /// A scan header was reached (`false`: the file ends first).
    pub scan: bool,
}

pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Walks the markers up to the first scan header. `Err` describes a structure Pillow does not
/// open; a file that ends first is `Ok` with `scan == false` (and `frame` when the frame
/// header was read).
pub fn read(bytes: &[u8]) -> Result<JpegInfo, String> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("no start-of-image marker".into());
    }
    let mut info = JpegInfo::default();
    // The smallest (in byte order) ICC profile segment since the last frame header.
    let mut icc: Option<&[u8]> = None;
    let mut pos = 2;
    loop {
        // The next marker: stray bytes, then fill bytes, then the code.
        pos += bytes[pos..].iter().position(|&b| b == 0xFF).unwrap_or(bytes.len() - pos);
        pos += bytes[pos..].iter().take_while(|&&b| b == 0xFF).count();
        let Some(&code) = bytes.get(pos) else { return Ok(info) };
        pos += 1;
        match code {
            // `FF 00` outside a scan is stray data; JPG (C8) has no length for Pillow.
            0x00 | 0xC8 | 0xD0..=0xD9 => continue,
            0x01..=0xBF => {
                return Err(format!(
                    "marker FF{code:02X} before the first scan (not a JPEG marker)"
                ));
            }
            _ => {}
        }
        let Some(len) = bytes.get(pos..pos + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return Ok(info);
        };
        // Pillow reads a length under 2 as an empty segment and goes on after it.
        let len = len.max(2);
        let Some(seg) = bytes.get(pos + 2..pos + len) else { return Ok(info) };
        match code {
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xCC) => {
                if let Some(first) = icc.take()
                    && first.len() < 14
                {
                    return Err(format!(
                        "ICC profile segment of {} bytes (its count is byte 13)",
                        first.len()
                    ));
                }
                info.frame = Some(frame(code, seg)?);
            }
            0xDA => {
                let Some(frame) = &info.frame else {
                    return Err("scan before frame header".into());
                };
                let n = *seg.first().unwrap_or(&0) as usize;
                if n == 0 || n > frame.components.len() || seg.len() < 1 + 2 * n + 3 {
                    return Err("malformed scan header".into());
                }
                info.scan = true;
                return Ok(info);
            }
            0xDB => quantization_tables(seg)?,
            0xE0 if seg.starts_with(b"JFIF") && seg.len() < 7 => {
                return Err(format!(
                    "JFIF segment of {} bytes (its version is bytes 5-6)",
                    seg.len()
                ));
            }
            0xE1 if seg.starts_with(b"Exif\0\0") && info.orientation.is_none() => {
                info.orientation = crate::exif::orientation(&seg[6..]);
            }
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") => {
                icc = Some(icc.map_or(seg, |i| i.min(seg)));
            }
            0xED if seg.starts_with(b"Photoshop 3.0\0") => photoshop_resources(seg)?,
            0xEE if seg.starts_with(b"Adobe") && seg.len() < 7 => {
                return Err(format!(
                    "Adobe segment of {} bytes (its version is bytes 5-6)",
                    seg.len()
                ));
            }
            _ => {}
        }
        pos += len;
    }
}

/// Pillow's reading of a quantization table segment: each table is its id byte and 64
/// one-byte (id's high nibble 0) or two-byte entries.
fn quantization_tables(mut seg: &[u8]) -> Result<(), String> {
    while let Some(&id) = seg.first() {
        let need = 1 + 64 * if id >> 4 == 0 { 1 } else { 2 };
        if seg.len() < need {
            return Err(format!(
                "quantization table segment cut short ({} of {need} bytes)",
                seg.len()
            ));
        }
        seg = &seg[need..];
    }
    Ok(())
}

/// Pillow's walk over a Photoshop segment's resource blocks (`8BIM`, code, name, size, data):
/// a block cut before its name length is refused; one cut later is not.
fn photoshop_resources(seg: &[u8]) -> Result<(), String> {
    let mut at = 14;
    while seg.get(at..at + 4) == Some(b"8BIM") {
        at += 4;
        let Some(code) = seg.get(at..at + 2) else { return Ok(()) };
        let resolution_info = code == [0x03, 0xED];
        at += 2;
        let Some(&name) = seg.get(at) else {
            return Err("Photoshop segment cut inside a resource block".into());
        };
        at += 1 + name as usize;
        at += at & 1;
        let Some(size) = seg.get(at..at + 4) else { return Ok(()) };
        let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
        at += 4;
        let data = &seg[at.min(seg.len())..at.saturating_add(size).min(seg.len())];
        if resolution_info && data.len() < 14 {
            // Pillow stops reading the resources there, without error.
            return Ok(());
        }
        at = at.saturating_add(size);
        at += at & 1;
    }
    Ok(())
}

fn frame(sof: u8, seg: &[u8]) -> Result<Frame, String> {
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
            Component { h: c[1] >> 4, v: c[1] & 15 }
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

/// The name of a frame type, for a rejection that names it.
pub fn frame_name(sof: u8) -> &'static str {
    match sof {
        0xC0 => "baseline JPEG (SOF0)",
        0xC1 => "extended sequential JPEG (SOF1)",
        0xC2 => "progressive JPEG (SOF2)",
        0xC3 => "lossless JPEG (SOF3)",
        0xC5 => "hierarchical JPEG (SOF5)",
        0xC6 => "hierarchical progressive JPEG (SOF6)",
        0xC7 => "hierarchical lossless JPEG (SOF7)",
        0xC9 => "arithmetic-coded JPEG (SOF9)",
        0xCA => "arithmetic-coded progressive JPEG (SOF10)",
        0xCB => "arithmetic-coded lossless JPEG (SOF11)",
        0xCD => "arithmetic-coded hierarchical JPEG (SOF13)",
        0xCE => "arithmetic-coded hierarchical progressive JPEG (SOF14)",
        0xCF => "arithmetic-coded hierarchical lossless JPEG (SOF15)",
        _ => "JPEG of an unknown frame type",
    }
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
    fn reads_the_frame_of_a_complete_jpeg() {
        let bytes = jpeg(40, 30);
        let info = read(&bytes).expect("valid");
        let f = info.frame.clone().expect("frame");
        assert_eq!((f.width, f.height, f.components.len(), f.precision), (40, 30, 3, 8));
        assert!(info.scan);
    }

    #[test]
    fn a_file_cut_before_its_scan_is_not_an_error() {
        let bytes = jpeg(64, 64);
        let info = read(&bytes[..20]).expect("cut in the header");
        assert!(info.frame.is_none() && !info.scan);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read(&[0x12, 0x34]).is_err());
        assert!(read(&[0xFF, 0xD8, 0xFF, 0x01]).is_err());
        assert!(read(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]).is_err());
    }
}
