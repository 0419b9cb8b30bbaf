//! Helpers shared by the ingest integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sipl_ingest::{IngestJob, IngestSettings, SourceKind, Split};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bad-images")
}

pub fn write_jpeg(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 5) as u8 ^ seed, (y * 3) as u8, seed.wrapping_mul(7)])
    });
    img.save_with_format(path, image::ImageFormat::Jpeg).expect("write jpeg");
}

pub fn job(kind: SourceKind, root: &Path, split: Option<Split>, out: &Path) -> IngestJob {
    IngestJob {
        settings: IngestSettings::defaults(kind, root, split).expect("settings"),
        out: out.to_owned(),
        threads: Some(2),
        force: false,
        progress: false,
    }
}

/// Every file under `dir` with its bytes, sorted by path.
pub fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// A baseline JPEG of a `w`×`h` gradient, as `write_jpeg` writes it (JFIF, standard tables).
pub fn jpeg_bytes(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 5) as u8 ^ seed, (y * 3) as u8, seed.wrapping_mul(7)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode");
    out.into_inner()
}

/// A baseline JPEG of one flat colour.
pub fn flat_jpeg(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode");
    out.into_inner()
}

/// (code, offset of its FF, whole length including FF code) of each marker segment before the
/// first scan's data, and the offset where that data begins.
pub fn jpeg_segments(b: &[u8]) -> (Vec<(u8, usize, usize)>, usize) {
    let mut out = vec![(0xD8, 0, 2)];
    let mut pos = 2;
    loop {
        assert_eq!(b[pos], 0xFF, "marker expected at {pos}");
        let code = b[pos + 1];
        let len = u16::from_be_bytes([b[pos + 2], b[pos + 3]]) as usize;
        out.push((code, pos, len + 2));
        pos += len + 2;
        if code == 0xDA {
            return (out, pos);
        }
    }
}

/// Offset of the first segment with marker `code`.
pub fn segment(b: &[u8], code: u8) -> (usize, usize) {
    let (segs, _) = jpeg_segments(b);
    let (_, at, len) = *segs.iter().find(|s| s.0 == code).expect("segment present");
    (at, len)
}

/// `b` with `insert` placed at `at`.
pub fn spliced(b: &[u8], at: usize, remove: usize, insert: &[u8]) -> Vec<u8> {
    [&b[..at], insert, &b[at + remove..]].concat()
}

/// A marker segment: FF code, length, data.
pub fn jpeg_segment(code: u8, data: &[u8]) -> Vec<u8> {
    let len = (data.len() + 2) as u16;
    [&[0xFF, code][..], &len.to_be_bytes(), data].concat()
}

/// A TIFF structure holding only an orientation tag (big-endian), as in EXIF.
pub fn tiff_orientation(value: u16) -> Vec<u8> {
    let mut t = b"MM\0*".to_vec();
    t.extend(8u32.to_be_bytes());
    t.extend(1u16.to_be_bytes());
    t.extend(0x0112u16.to_be_bytes());
    t.extend(3u16.to_be_bytes());
    t.extend(1u32.to_be_bytes());
    t.extend(value.to_be_bytes());
    t.extend([0, 0]);
    t.extend(0u32.to_be_bytes());
    t
}

/// A PNG chunk with its CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let body = [&kind[..], data].concat();
    let crc = sipl_ingest::png_header::crc32(&body);
    [&(data.len() as u32).to_be_bytes()[..], &body, &crc.to_be_bytes()].concat()
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> =
        if data.is_empty() { vec![&[]] } else { data.chunks(65_535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

/// A PNG: IHDR (`depth`, `colour` type, interlace flag), the `before` chunks, one IDAT of
/// `scanlines` (already filtered), IEND.
pub fn png_file(
    (w, h): (u32, u32),
    depth: u8,
    colour: u8,
    interlaced: bool,
    before: &[(&[u8; 4], Vec<u8>)],
    scanlines: &[u8],
) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, colour, 0, 0, u8::from(interlaced)]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    for (kind, data) in before {
        out.extend(png_chunk(kind, data));
    }
    out.extend(png_chunk(b"IDAT", &zlib_stored(scanlines)));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// Rows of `row_bytes` bytes each with filter type 0 in front.
pub fn unfiltered(data: &[u8], row_bytes: usize) -> Vec<u8> {
    data.chunks(row_bytes).flat_map(|r| std::iter::once(0).chain(r.iter().copied())).collect()
}

/// RGB8 pixels (`w`×`h`×3) as Adam7-interlaced scanlines.
pub fn adam7(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut out = Vec::new();
    for (x0, y0, dx, dy) in passes {
        let xs: Vec<usize> = (x0..w).step_by(dx).collect();
        if xs.is_empty() {
            continue;
        }
        for y in (y0..h).step_by(dy) {
            out.push(0);
            for &x in &xs {
                out.extend_from_slice(&rgb[(y * w + x) * 3..(y * w + x) * 3 + 3]);
            }
        }
    }
    out
}

pub const ANY_SIZE: sipl_ingest::intake::IntakeLimits =
    sipl_ingest::intake::IntakeLimits { min_side: 1, max_pixels: 1 << 26 };
