//! A PNG chunk walk up to the image data: the checks Pillow makes there and the png decoder is
//! told to skip, and the EXIF orientation.
//!
//! Pillow verifies the checksum (CRC) of every chunk before the image data and refuses a file
//! with a damaged one, but does not check the image data's own checksums (IDAT CRCs, the zlib
//! Adler-32): a picture whose pixels decode is loaded. Intake does the same: this walk checks
//! the chunks before the first `IDAT`, and the decoder runs with checksums off.

/// What the chunks before the image data say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PngHeader {
    pub width: u32,
    pub height: u32,
    /// EXIF orientation (1..=8) from an `eXIf` chunk.
    pub orientation: Option<u8>,
}

/// Why the walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PngProblem {
    /// The file ends before its image data; the size when `IHDR` was read.
    Truncated(String, Option<(u32, u32)>),
    Corrupt(String, Option<(u32, u32)>),
}

pub const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Walks the chunks of a PNG (`bytes` starts with [`SIGNATURE`]) up to the first `IDAT`.
pub fn read(bytes: &[u8]) -> Result<PngHeader, PngProblem> {
    let mut pos = SIGNATURE.len();
    let mut header: Option<PngHeader> = None;
    loop {
        let dims = header.as_ref().map(|h| (h.width, h.height));
        let Some(head) = bytes.get(pos..pos + 8) else {
            return Err(PngProblem::Truncated("the file ends before the image data".into(), dims));
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let name = String::from_utf8_lossy(&kind).into_owned();
        if &kind == b"IDAT" {
            return header.ok_or_else(|| {
                PngProblem::Corrupt("image data before the IHDR chunk".into(), None)
            });
        }
        let Some(chunk) = bytes.get(pos + 4..pos + 8 + len) else {
            let why = format!("the file ends inside its {name} chunk");
            return Err(PngProblem::Truncated(why, dims));
        };
        let Some(stored) = bytes.get(pos + 8 + len..pos + 12 + len) else {
            let why = format!("the file ends inside its {name} chunk");
            return Err(PngProblem::Truncated(why, dims));
        };
        if crc32(chunk) != u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]) {
            let why = format!("damaged {name} chunk (checksum mismatch)");
            return Err(PngProblem::Corrupt(why, dims));
        }
        let data = &chunk[4..];
        match &kind {
            b"IHDR" if data.len() >= 8 => {
                let be =
                    |p: usize| u32::from_be_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]);
                header = Some(PngHeader { width: be(0), height: be(4), orientation: None });
            }
            b"eXIf" => {
                if let Some(h) = header.as_mut() {
                    h.orientation = h.orientation.or_else(|| crate::exif::orientation(data));
                }
            }
            b"IEND" => return Err(PngProblem::Corrupt("no image data (IDAT)".into(), dims)),
            _ => {}
        }
        if header.is_none() {
            return Err(PngProblem::Corrupt("the first chunk is not a valid IHDR".into(), None));
        }
        pos += 12 + len;
    }
}

const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

/// The bytes to hand the png decoder, and whether the image data was cut short.
///
/// Pillow loads a PNG whose pixels are all there even when the file ends early (no `IEND`,
/// or the last `IDAT` cut inside its checksums); the png decoder wants the chunk structure
/// complete. So: up to and including `IEND` (trailing bytes dropped); a file that ends after a
/// whole chunk gets an `IEND`; a last `IDAT` cut inside gets its length fixed to what is there
/// (its checksum is not checked) and an `IEND`; a cut chunk of another kind is dropped.
pub fn decoder_bytes(bytes: &[u8]) -> (std::borrow::Cow<'_, [u8]>, bool) {
    let mut pos = SIGNATURE.len();
    loop {
        let Some(head) = bytes.get(pos..pos + 8) else {
            return ([&bytes[..pos], &IEND[..]].concat().into(), false);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = pos.saturating_add(12).saturating_add(len);
        if &head[4..8] == b"IEND" {
            return (bytes[..end.min(bytes.len())].into(), false);
        }
        if end <= bytes.len() {
            pos = end;
            continue;
        }
        if &head[4..8] != b"IDAT" {
            return ([&bytes[..pos], &IEND[..]].concat().into(), false);
        }
        let data = &bytes[(pos + 8).min(bytes.len())..bytes.len().min(pos + 8 + len)];
        let mut out = bytes[..pos].to_vec();
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(b"IDAT");
        out.extend_from_slice(data);
        out.extend([0; 4]);
        out.extend(IEND);
        return (out.into(), data.len() < len);
    }
}

/// CRC-32 (ISO-HDLC, as PNG and zlib use it) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, e) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    !bytes.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }
}
