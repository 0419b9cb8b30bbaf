//! Formats other than JPEG and PNG, recognised by their first bytes so that a file in one of
//! them (a WebP saved as `.jpg` by a web scraper, a `.bmp` in an ImageFolder tree) is rejected
//! as `unsupported`, naming its format and, where the header gives it cheaply, its size.

/// (format name, width × height) of a file sipl does not decode, when its header says what it is.
pub fn sniff(b: &[u8]) -> Option<(&'static str, Option<(u32, u32)>)> {
    let le16 = |p: usize| b.get(p..p + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as u32);
    let le32 = |p: usize| b.get(p..p + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some(("GIF", le16(6).zip(le16(8))));
    }
    if b.starts_with(b"BM") && b.len() >= 26 {
        let h = le32(22).map(|h| (h as i32).unsigned_abs());
        return Some(("BMP", le32(18).zip(h)));
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        let size = match b.get(12..16) {
            Some(b"VP8X") => b.get(24..30).map(|s| {
                let w = u32::from_le_bytes([s[0], s[1], s[2], 0]) + 1;
                (w, u32::from_le_bytes([s[3], s[4], s[5], 0]) + 1)
            }),
            Some(b"VP8 ") => le16(26).zip(le16(28)).map(|(w, h)| (w & 0x3FFF, h & 0x3FFF)),
            Some(b"VP8L") => le32(21).map(|v| ((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1)),
            _ => None,
        };
        return Some(("WebP", size));
    }
    if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        return Some(("TIFF", crate::exif::tiff_size(b)));
    }
    if b.get(4..8) == Some(b"ftyp") {
        let brand = b.get(8..12).unwrap_or_default();
        let name = match brand {
            b"avif" | b"avis" => "AVIF",
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"heim" | b"heis" => "HEIF",
            _ => return None,
        };
        return Some((name, None));
    }
    if let [b'P', kind @ b'1'..=b'7', ..] = b {
        let name = match kind {
            b'1' | b'4' => "PBM",
            b'2' | b'5' => "PGM",
            b'3' | b'6' => "PPM",
            _ => "PAM",
        };
        return Some((name, pnm_size(&b[2..])));
    }
    None
}

/// Width and height of a PNM header (after the magic): whitespace-separated, `#` comments.
fn pnm_size(rest: &[u8]) -> Option<(u32, u32)> {
    let text = String::from_utf8_lossy(&rest[..rest.len().min(256)]);
    let mut numbers = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .map(|t| t.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_other_formats_and_their_sizes() {
        let mut gif = b"GIF89a".to_vec();
        gif.extend([40, 0, 30, 0, 0, 0, 0]);
        assert_eq!(sniff(&gif), Some(("GIF", Some((40, 30)))));
        let mut bmp = vec![0u8; 54];
        bmp[..2].copy_from_slice(b"BM");
        bmp[18..22].copy_from_slice(&64u32.to_le_bytes());
        bmp[22..26].copy_from_slice(&(-48i32).to_le_bytes());
        assert_eq!(sniff(&bmp), Some(("BMP", Some((64, 48)))));
        assert_eq!(sniff(b"P6\n# made by hand\n12 7\n255\n"), Some(("PPM", Some((12, 7)))));
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.extend([0u8; 8]);
        webp.extend([99, 0, 0, 49, 0, 0]);
        assert_eq!(sniff(&webp), Some(("WebP", Some((100, 50)))));
        assert_eq!(sniff(b"\0\0\0\x1cftypheic"), Some(("HEIF", None)));
        assert_eq!(sniff(b"just text"), None);
    }
}
