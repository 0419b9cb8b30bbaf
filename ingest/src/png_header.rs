//! A PNG chunk walk: the checks Pillow's PNG reader makes on the chunks, which the png decoder
//! is told to skip or does not make, and the EXIF orientation.
//!
//! Pillow verifies the checksum (CRC) of every chunk before the image data and refuses a file
//! with a damaged one, but does not check the image data's own checksums (IDAT CRCs, the zlib
//! Adler-32): a picture whose pixels decode is loaded. Intake does the same: this walk checks
//! the chunks before the first `IDAT`, and the decoder runs with checksums off. Pillow's chunk
//! handlers also refuse, before and after the image data:
//! - a chunk name that is not four letters, digits or `_` before the image data;
//! - `IHDR`, `gAMA`, `cHRM`, `sRGB`, `pHYs`, `acTL`, `fcTL`, `fdAT` and a grey or RGB `tRNS`
//!   shorter than their fields;
//! - an `iCCP`, `zTXt` or compressed `iTXt` that inflates to more than 1 MiB, an `iCCP` or
//!   `zTXt` of an unknown compression method, an `iCCP` without its method byte, and more than
//!   64 MiB of text in all;
//! - after the image data, a chunk whose header is whole but whose data the file cuts short
//!   (a cut header, like a missing `IEND`, ends the file quietly; so does the first `fcTL` of
//!   an animated PNG, where the next frame begins).

use std::io::Read;

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
    /// The file ends before its image data, or inside a chunk after it; the size when `IHDR`
    /// was read.
    Truncated(String, Option<(u32, u32)>),
    Corrupt(String, Option<(u32, u32)>),
    /// A compressed chunk inflates past Pillow's bounds.
    TooLarge(String, Option<(u32, u32)>),
}

pub const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Pillow's bound on one inflated `iCCP`, `zTXt` or `iTXt` chunk (`MAX_TEXT_CHUNK`).
pub const MAX_INFLATED_CHUNK: usize = 1 << 20;
/// Pillow's bound on the text of all chunks together (`MAX_TEXT_MEMORY`).
pub const MAX_TEXT: usize = 64 << 20;

/// A chunk name as a reader sees it: ASCII as is, other bytes escaped (`\x89`).
pub fn chunk_name(kind: &[u8]) -> String {
    kind.escape_ascii().to_string()
}

/// Walks the chunks of a PNG (`bytes` starts with [`SIGNATURE`]).
pub fn read(bytes: &[u8]) -> Result<PngHeader, PngProblem> {
    let mut pos = SIGNATURE.len();
    let mut header: Option<PngHeader> = None;
    // `None` until an IHDR is read: Pillow then checks no tRNS length.
    let mut colour_type: Option<u8> = None;
    let mut text = 0usize;
    let mut after_image = false;
    // An `acTL` before the image data announcing several frames: Pillow then stops reading at
    // the first `fcTL` after the default image's data (the next frame begins there).
    let mut animated = false;
    loop {
        let dims = header.as_ref().map(|h| (h.width, h.height));
        let Some(head) = bytes.get(pos..pos + 8) else {
            if after_image {
                return header.ok_or_else(|| unreachable_header(dims));
            }
            return Err(PngProblem::Truncated("the file ends before the image data".into(), dims));
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let name = chunk_name(&kind);
        if !kind.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            if after_image {
                return header.ok_or_else(|| unreachable_header(dims));
            }
            let why = format!("chunk name \"{name}\" is not a PNG chunk type");
            return Err(PngProblem::Corrupt(why, dims));
        }
        if after_image && (&kind == b"IEND" || (animated && &kind == b"fcTL")) {
            return header.ok_or_else(|| unreachable_header(dims));
        }
        if &kind == b"IDAT" {
            if colour_type.is_none() {
                return Err(PngProblem::Corrupt("image data before any IHDR chunk".into(), None));
            }
            if !after_image {
                // The image data, to the decoder; what follows its last chunk is checked below.
                after_image = true;
                pos = skip_image_data(bytes, pos);
                continue;
            }
        }
        let Some(data) = bytes.get(pos + 8..pos + 8 + len) else {
            let why = match after_image {
                true => format!("the file ends inside its {name} chunk, after the image data"),
                false => format!("the file ends inside its {name} chunk"),
            };
            return Err(PngProblem::Truncated(why, dims));
        };
        if !after_image {
            let Some(stored) = bytes.get(pos + 8 + len..pos + 12 + len) else {
                let why = format!("the file ends inside its {name} chunk");
                return Err(PngProblem::Truncated(why, dims));
            };
            let crc = crc32(&bytes[pos + 4..pos + 8 + len]);
            if crc != u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]) {
                let why = format!("damaged {name} chunk (checksum mismatch)");
                return Err(PngProblem::Corrupt(why, dims));
            }
        }
        if let Some(need) = min_len(&kind, colour_type)
            && data.len() < need
        {
            let why = format!("{name} chunk of {} bytes, shorter than its {need}", data.len());
            return Err(PngProblem::Corrupt(why, dims));
        }
        match &kind {
            // Pillow reads every IHDR; the last before the image data sets its size and mode.
            b"IHDR" => {
                if data[11] != 0 {
                    let why = format!("IHDR filter method {} (only 0 exists)", data[11]);
                    return Err(PngProblem::Corrupt(why, dims));
                }
                if !after_image {
                    let be = |p: usize| {
                        u32::from_be_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]])
                    };
                    let orientation = header.as_ref().and_then(|h| h.orientation);
                    header = Some(PngHeader { width: be(0), height: be(4), orientation });
                    colour_type = Some(data[9]);
                }
            }
            b"acTL" if !after_image => {
                let frames = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                animated = frames > 1 && frames <= 0x8000_0000;
            }
            b"eXIf" => {
                let h = header.get_or_insert_with(PngHeader::default);
                h.orientation = h.orientation.or_else(|| crate::exif::orientation(data));
            }
            b"iCCP" | b"zTXt" | b"iTXt" | b"tEXt" => {
                text += compressed_chunk(&kind, data).map_err(|p| p.with_dims(dims))?;
                if text > MAX_TEXT {
                    let why = format!("more than {} MiB of text chunks", MAX_TEXT >> 20);
                    return Err(PngProblem::TooLarge(why, dims));
                }
            }
            b"IEND" => return Err(PngProblem::Corrupt("no image data (IDAT)".into(), dims)),
            _ => {}
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
}

fn unreachable_header(dims: Option<(u32, u32)>) -> PngProblem {
    PngProblem::Corrupt("image data before the IHDR chunk".into(), dims)
}

impl PngProblem {
    fn with_dims(self, dims: Option<(u32, u32)>) -> Self {
        match self {
            PngProblem::Truncated(w, _) => PngProblem::Truncated(w, dims),
            PngProblem::Corrupt(w, _) => PngProblem::Corrupt(w, dims),
            PngProblem::TooLarge(w, _) => PngProblem::TooLarge(w, dims),
        }
    }
}

/// The offset just past the run of `IDAT` chunks starting at `pos` (the file's end when one is
/// cut: the decoder judges whether its pixels are complete).
fn skip_image_data(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(head) = bytes.get(pos..pos + 8) {
        if &head[4..8] != b"IDAT" {
            return pos;
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        pos = pos.saturating_add(12).saturating_add(len);
    }
    bytes.len()
}

/// The fewest data bytes Pillow's handler of `kind` reads its fields from (`colour_type` from
/// `IHDR`, when one was read: `tRNS` holds one grey or one RGB sample, or a palette's alphas).
fn min_len(kind: &[u8; 4], colour_type: Option<u8>) -> Option<usize> {
    Some(match kind {
        b"IHDR" => 13,
        b"gAMA" => 4,
        b"cHRM" => 32,
        b"sRGB" => 1,
        b"pHYs" => 9,
        b"acTL" => 8,
        b"fcTL" => 26,
        b"fdAT" => 4,
        b"tRNS" if colour_type == Some(0) => 2,
        b"tRNS" if colour_type == Some(2) => 6,
        _ => return None,
    })
}

/// Pillow's checks of a text or ICC profile chunk; the characters of text it holds.
fn compressed_chunk(kind: &[u8; 4], data: &[u8]) -> Result<usize, PngProblem> {
    let name = chunk_name(kind);
    let unknown =
        |m: u8| PngProblem::Corrupt(format!("unknown compression method {m} in {name}"), None);
    let (key, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    match kind {
        b"iCCP" => {
            // Pillow reads the method byte after the first NUL, or the first byte when none.
            let (method, profile) = match data.iter().position(|&b| b == 0) {
                Some(i) => (data.get(i + 1).copied(), data.get(i + 2..).unwrap_or_default()),
                None => (data.first().copied(), data.get(1..).unwrap_or_default()),
            };
            let Some(method) = method else {
                return Err(PngProblem::Corrupt(
                    "iCCP chunk without its compression method".into(),
                    None,
                ));
            };
            if method != 0 {
                return Err(unknown(method));
            }
            inflate_within(profile, &name)?;
            Ok(0)
        }
        b"tEXt" => Ok(if key.is_empty() { 0 } else { rest.len() }),
        b"zTXt" => {
            let method = rest.first().copied().unwrap_or(0);
            if method != 0 {
                return Err(unknown(method));
            }
            let text = inflate_within(rest.get(1..).unwrap_or_default(), &name)?;
            Ok(if key.is_empty() { 0 } else { text.map_or(0, |t| t.len()) })
        }
        _ => {
            // iTXt: key, NUL, compression flag, method, language, NUL, translated key, NUL, text.
            let [flag, method, r @ ..] = rest else { return Ok(0) };
            let mut parts = r.splitn(3, |&b| b == 0);
            let (Some(_), Some(_), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
                return Ok(0);
            };
            let value = match (*flag, *method) {
                (0, _) => value.to_vec(),
                (_, 0) => match inflate_within(value, &name)? {
                    Some(v) => v,
                    None => return Ok(0),
                },
                _ => return Ok(0),
            };
            Ok(std::str::from_utf8(&value).map_or(0, |t| t.chars().count()))
        }
    }
}

/// Inflates a zlib stream as Pillow does, up to [`MAX_INFLATED_CHUNK`] bytes: more is
/// refused; a damaged stream is `None` (Pillow drops it quietly); a cut one gives what it holds.
fn inflate_within(stream: &[u8], name: &str) -> Result<Option<Vec<u8>>, PngProblem> {
    let mut out = Vec::new();
    let mut inflater = flate2::read::ZlibDecoder::new(stream).take(MAX_INFLATED_CHUNK as u64 + 1);
    match inflater.read_to_end(&mut out) {
        Ok(_) if out.len() > MAX_INFLATED_CHUNK => {
            let why =
                format!("{name} chunk inflates to more than {} MiB", MAX_INFLATED_CHUNK >> 20);
            Err(PngProblem::TooLarge(why, None))
        }
        Ok(_) => Ok(Some(out)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Some(out)),
        Err(_) => Ok(None),
    }
}

const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

/// The bytes to hand the png decoder, and whether the image data was cut short.
///
/// Only what defines the pixels, as Pillow reads it: the last `IHDR` before the image data
/// (13 bytes, compression method 0 and interlacing 0 or 1, as Pillow ignores the one and reads
/// any other value of the other as Adam7), the last `PLTE` and `tRNS` (cut to what Pillow
/// reads), the run of `IDAT` chunks, and an `IEND`; every other chunk, and the order Pillow
/// does not care about, stays behind. Pillow also loads a PNG whose pixels are all there when
/// the file ends early (no `IEND`, or the last `IDAT` cut inside its checksums): a cut last
/// `IDAT` is handed over with what it holds. Checksums are written as zeros (the decoder does
/// not check them, as Pillow does not check the image data's).
pub fn decoder_bytes(bytes: &[u8]) -> (Vec<u8>, bool) {
    let (mut ihdr, mut plte, mut trns) = (None, None, None);
    let mut out = SIGNATURE.to_vec();
    let (mut pos, mut in_image, mut cut) = (SIGNATURE.len(), false, false);
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = pos.saturating_add(12).saturating_add(len);
        let data = &bytes[pos + 8..bytes.len().min(pos.saturating_add(8).saturating_add(len))];
        let kind = &head[4..8];
        if kind == b"IDAT" {
            if !in_image {
                in_image = true;
                header_chunks(&mut out, ihdr, plte, trns);
            }
            cut = data.len() < len;
            chunk(&mut out, b"IDAT", data);
        } else if in_image || end > bytes.len() {
            break;
        } else {
            match kind {
                b"IHDR" if data.len() >= 13 => ihdr = Some(data),
                b"PLTE" => plte = Some(data),
                b"tRNS" => trns = Some(data),
                _ => {}
            }
        }
        if end > bytes.len() {
            break;
        }
        pos = end;
    }
    if !in_image {
        header_chunks(&mut out, ihdr, plte, trns);
    }
    out.extend(IEND);
    (out, cut)
}

/// Writes the `IHDR`, `PLTE` and `tRNS` chunks [`decoder_bytes`] hands the decoder.
fn header_chunks(out: &mut Vec<u8>, ihdr: Option<&[u8]>, plte: Option<&[u8]>, trns: Option<&[u8]>) {
    let Some(ihdr) = ihdr else { return };
    let mut head: [u8; 13] = ihdr[..13].try_into().expect("13 bytes");
    head[10] = 0;
    head[12] = head[12].min(1);
    chunk(out, b"IHDR", &head);
    let colour = head[9];
    if let Some(p) = plte {
        chunk(out, b"PLTE", p);
    }
    let keep = match colour {
        0 => 2,
        2 => 6,
        3 => plte.map_or(0, |p| p.len() / 3),
        _ => 0,
    };
    if let Some(t) = trns.filter(|_| keep > 0) {
        chunk(out, b"tRNS", &t[..t.len().min(keep)]);
    }
}

/// Appends one chunk to a stream for the decoder (checksum zero: it is not checked).
fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend([0; 4]);
}

/// The file up to the IDAT chunk it cuts short, when that chunk follows other image data
/// (`None`: no IDAT is cut, or the cut one is the first).
pub fn without_cut_idat(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = SIGNATURE.len();
    let mut idat_before = false;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = pos.saturating_add(12).saturating_add(len);
        let idat = &head[4..8] == b"IDAT";
        if end > bytes.len() {
            return (idat && idat_before).then(|| &bytes[..pos]);
        }
        idat_before = idat;
        pos = end;
    }
    None
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
