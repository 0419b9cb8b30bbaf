//! The few TIFF/EXIF fields intake reads: the orientation tag of a JPEG's APP1 `Exif` segment
//! or a PNG's `eXIf` chunk, and the size of a TIFF file named like an image.

/// Tag 0x0112, Orientation.
const ORIENTATION: u16 = 0x0112;
const IMAGE_WIDTH: u16 = 0x0100;
const IMAGE_LENGTH: u16 = 0x0101;

/// The orientation (1..=8) in the first image directory of a TIFF structure, if it has a
/// valid one.
pub fn orientation(tiff: &[u8]) -> Option<u8> {
    match first_ifd_value(tiff, ORIENTATION)? {
        v @ 1..=8 => Some(v as u8),
        _ => None,
    }
}

/// Width and height from the first image directory of a TIFF file.
pub fn tiff_size(tiff: &[u8]) -> Option<(u32, u32)> {
    Some((first_ifd_value(tiff, IMAGE_WIDTH)?, first_ifd_value(tiff, IMAGE_LENGTH)?))
}

/// The SHORT or LONG value of `tag` in the first directory (`None` when absent or malformed).
fn first_ifd_value(tiff: &[u8], tag: u16) -> Option<u32> {
    let little = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |p: usize| {
        let b = tiff.get(p..p + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |p: usize| {
        let b: [u8; 4] = tiff.get(p..p + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let ifd = u32_at(4)? as usize;
    let entries = u16_at(ifd)? as usize;
    (0..entries).find_map(|i| {
        let e = ifd + 2 + 12 * i;
        if u16_at(e)? != tag || u32_at(e + 4)? != 1 {
            return None;
        }
        match u16_at(e + 2)? {
            3 => u16_at(e + 8).map(u32::from),
            4 => u32_at(e + 8),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-entry TIFF directory holding `tag` = `value` (SHORT).
    fn tiff_with(little: bool, tag: u16, value: u16) -> Vec<u8> {
        let w16 = |v: u16| if little { v.to_le_bytes() } else { v.to_be_bytes() };
        let w32 = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut t = if little { b"II*\0".to_vec() } else { b"MM\0*".to_vec() };
        t.extend(w32(8));
        t.extend(w16(1));
        t.extend(w16(tag));
        t.extend(w16(3));
        t.extend(w32(1));
        t.extend(w16(value));
        t.extend([0, 0]);
        t.extend(w32(0));
        t
    }

    #[test]
    fn reads_the_orientation_in_either_byte_order() {
        assert_eq!(orientation(&tiff_with(true, ORIENTATION, 6)), Some(6));
        assert_eq!(orientation(&tiff_with(false, ORIENTATION, 8)), Some(8));
        assert_eq!(orientation(&tiff_with(false, ORIENTATION, 9)), None);
        assert_eq!(orientation(&tiff_with(true, 0x010F, 6)), None);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), None);
        assert_eq!(orientation(b""), None);
    }
}
