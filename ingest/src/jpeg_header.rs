//! A JPEG marker walk: component count and precision from the frame header, and whether the
//! file reaches its end-of-image marker. The decoder we use converts CMYK to RGB and pads
//! truncated scans with grey, so the non-RGB filter and the truncation check read the
//! bitstream themselves.

/// What the frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegFrame {
    pub components: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    /// An end-of-image marker follows the last start-of-scan (false: the file is truncated).
    pub complete: bool,
}

pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Walks the markers up to the first scan. `Err` describes a malformed header.
pub fn read_frame(bytes: &[u8]) -> Result<JpegFrame, String> {
    let mut pos = 2; // after SOI
    let mut frame = None;
    loop {
        // Markers are 0xFF, optional fill 0xFF bytes, then the code.
        if bytes.get(pos) != Some(&0xFF) {
            return Err(format!("expected a marker at byte {pos}"));
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let code = *bytes.get(pos).ok_or("file ends inside the header")?;
        pos += 1;
        if matches!(code, 0xD0..=0xD7 | 0x01) {
            continue;
        }
        if code == 0xD9 {
            return Err("end of image before any scan".into());
        }
        let len = match bytes.get(pos..pos + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
            None => return Err("file ends inside the header".into()),
        };
        if len < 2 || pos + len > bytes.len() {
            return Err(format!("segment 0xFF{code:02X} runs past the end of the file"));
        }
        let seg = &bytes[pos + 2..pos + len];
        let is_sof = matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            if seg.len() < 6 {
                return Err("short frame header".into());
            }
            frame = Some((
                seg[0],
                u16::from_be_bytes([seg[1], seg[2]]),
                u16::from_be_bytes([seg[3], seg[4]]),
                seg[5],
            ));
        }
        if code == 0xDA {
            let (precision, height, width, components) = frame.ok_or("scan before frame header")?;
            // Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker,
            // so an EOI after the last SOS belongs to this image.
            let last_sos = find_last(bytes, 0xDA).unwrap_or(pos);
            let complete = find_last(bytes, 0xD9).is_some_and(|eoi| eoi > last_sos);
            return Ok(JpegFrame { components, precision, width, height, complete });
        }
        pos += len;
    }
}

fn find_last(bytes: &[u8], code: u8) -> Option<usize> {
    bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == code)
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
        let f = read_frame(&jpeg(40, 30)).expect("valid");
        assert_eq!((f.width, f.height, f.components, f.precision), (40, 30, 3, 8));
        assert!(f.complete);
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = jpeg(64, 64);
        let f = read_frame(&bytes[..bytes.len() * 2 / 3]).expect("header intact");
        assert!(!f.complete);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read_frame(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]).is_err());
        assert!(read_frame(&[0xFF, 0xD8, 0x12, 0x34]).is_err());
    }
}
