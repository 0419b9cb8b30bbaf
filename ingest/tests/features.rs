//! JPEG and PNG features as libjpeg-turbo, libpng and Pillow's default loader accept them:
//! each is kept with the right pixels, or rejected with a reason naming the exact feature and
//! the image's size (ARCHITECTURE.md has the table). Inputs are built here from synthetic
//! pixels; `tests/pillow_features.rs` checks Pillow-made files against Pillow itself.

mod common;

use common::*;
use rand::{RngExt, SeedableRng};
use sipl_ingest::intake::{Rejection, decode};

fn pixels(bytes: &[u8]) -> Vec<u8> {
    decode(bytes, ANY_SIZE).unwrap_or_else(|r| panic!("rejected: {r:?}")).image.pixels
}

fn rejection(bytes: &[u8]) -> Rejection {
    match decode(bytes, ANY_SIZE) {
        Ok(d) => panic!("kept a {}x{} image", d.image.width, d.image.height),
        Err(r) => r,
    }
}

fn assert_rejected(bytes: &[u8], code: &str, words: &[&str]) -> Rejection {
    let r = rejection(bytes);
    assert_eq!(r.code, code, "{r:?}");
    for w in words {
        assert!(r.detail.contains(w), "{r:?} lacks {w:?}");
    }
    r
}

/// Mean colour of an RGB8 image.
fn mean(px: &[u8]) -> [f64; 3] {
    let n = (px.len() / 3) as f64;
    let mut m = [0.0; 3];
    for p in px.chunks(3) {
        (0..3).for_each(|c| m[c] += p[c] as f64 / n);
    }
    m
}

fn assert_close(got: [f64; 3], want: [f64; 3], tol: f64, what: &str) {
    let ok = (0..3).all(|c| (got[c] - want[c]).abs() <= tol);
    assert!(ok, "{what}: mean colour {got:?}, expected {want:?} ± {tol}");
}

#[test]
fn complete_jpegs_with_trailing_bytes_are_kept_whatever_those_bytes_hold() {
    let base = jpeg_bytes(48, 40, 3);
    let want = pixels(&base);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    for file in 0..20 {
        // 150 KB of random bytes with marker look-alikes sown in: what a motion photo's video
        // or a camera's padding may hold.
        let mut tail: Vec<u8> = (0..150_000).map(|_| rng.random()).collect();
        for k in 0..12 {
            let at = rng.random_range(0..tail.len() - 12);
            let marker: &[u8] = match k % 4 {
                0 => &[0xFF, 0xDA, 0x00, 0x08],
                1 => &[0xFF, 0xD9],
                2 => &[0xFF, 0xD8, 0xFF, 0xE0],
                _ => &[0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            };
            tail[at..at + marker.len()].copy_from_slice(marker);
        }
        let file_bytes = [&base[..], &tail].concat();
        assert_eq!(pixels(&file_bytes), want, "file {file}");
    }
    // A second picture after the first (MPO, a preview appended by a camera): the first is read.
    let two = [&base[..], &jpeg_bytes(64, 64, 9)].concat();
    let d = decode(&two, ANY_SIZE).expect("kept");
    assert_eq!((d.image.width, d.image.height, d.image.pixels), (48, 40, want));
}

#[test]
fn stray_and_fill_bytes_before_markers_are_skipped_as_libjpeg_does() {
    let base = jpeg_bytes(40, 32, 5);
    let want = pixels(&base);
    let (dqt, _) = segment(&base, 0xDB);
    let (dht, _) = segment(&base, 0xC4);
    let (sos, _) = segment(&base, 0xDA);
    // Pillow: "Corrupt JPEG data: 4 extraneous bytes before marker 0xdb", image loaded.
    assert_eq!(pixels(&spliced(&base, dqt, 0, &[0, 0, 0, 0])), want);
    assert_eq!(pixels(&spliced(&base, dht, 0, b"junk\x00\x00")), want);
    assert_eq!(pixels(&spliced(&base, sos, 0, &[0x12, 0xFF, 0x00])), want);
    assert_eq!(pixels(&spliced(&base, dqt, 0, &[0xFF, 0xFF, 0xFF])), want);
}

#[test]
fn frame_types_libjpeg_lacks_are_rejected_naming_the_feature_and_the_size() {
    let base = jpeg_bytes(48, 40, 1);
    let (sof, _) = segment(&base, 0xC0);
    let mut sof1 = base.clone();
    sof1[sof + 1] = 0xC1; // extended sequential: same bitstream, kept
    assert_eq!(pixels(&sof1), pixels(&base));
    // Lossless (SOF3) and arithmetic coding (SOF9-SOF11) are decoded, as Pillow's libjpeg-turbo
    // does (tests/jpeg_layouts.rs, with files cjpeg writes); hierarchical frames are not.
    let cases = [
        (0xC5, "hierarchical JPEG (SOF5)"),
        (0xC6, "hierarchical progressive JPEG (SOF6)"),
        (0xC7, "hierarchical lossless JPEG (SOF7)"),
        (0xCD, "arithmetic-coded hierarchical JPEG (SOF13)"),
        (0xCE, "arithmetic-coded hierarchical progressive JPEG (SOF14)"),
        (0xCF, "arithmetic-coded hierarchical lossless JPEG (SOF15)"),
    ];
    for (code, name) in cases {
        let mut b = base.clone();
        b[sof + 1] = code;
        let r = assert_rejected(&b, "unsupported", &[name, "48x40"]);
        assert_eq!(r.dims, Some((48, 40)));
    }
    // Precision byte, then height: 12-bit is not 8-bit RGB; height 0 defers it to a DNL marker.
    let mut b = base.clone();
    b[sof + 4] = 12;
    assert_rejected(&b, "not-rgb", &["12-bit JPEG"]);
    let mut b = base.clone();
    b[sof + 5..sof + 7].copy_from_slice(&[0, 0]);
    assert_rejected(&b, "unsupported", &["DNL marker"]);
    // Luma sampled 3x1 and chroma 2x1: a ratio of 3/2, which libjpeg does not upsample.
    let mut b = base.clone();
    b[sof + 11] = 0x31;
    b[sof + 14] = 0x21;
    assert_rejected(&b, "unsupported", &["sampling factors 3x1,2x1", "Fractional", "48x40"]);
}

#[test]
fn the_colour_space_is_the_one_libjpeg_reads() {
    let rgb = [200u8, 40, 90];
    let base = flat_jpeg(32, 24, rgb);
    let [r, g, b] = rgb.map(f64::from);
    // The planes the encoder stored (JFIF's YCbCr): what an RGB-coded reading outputs.
    let ycc = [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ];
    let original = rgb.map(f64::from);
    let (app0, app0_len) = segment(&base, 0xE0);
    let no_jfif = spliced(&base, app0, app0_len, &[]);
    let adobe =
        |t: u8| jpeg_segment(0xEE, &[b"Adobe".as_slice(), &[0, 100, 0, 0, 0, 0, t]].concat());
    let with_ids = |bytes: &[u8], ids: [u8; 3]| {
        let mut b = bytes.to_vec();
        let (sof, _) = segment(&b, 0xC0);
        let (sos, _) = segment(&b, 0xDA);
        for i in 0..3 {
            b[sof + 10 + 3 * i] = ids[i];
            b[sos + 5 + 2 * i] = ids[i];
        }
        b
    };
    let cases: Vec<(&str, Vec<u8>, [f64; 3])> = vec![
        ("JFIF", base.clone(), original),
        ("no JFIF, ids 1 2 3", no_jfif.clone(), original),
        ("Adobe transform 0", spliced(&no_jfif, 2, 0, &adobe(0)), ycc),
        ("Adobe transform 1", spliced(&no_jfif, 2, 0, &adobe(1)), original),
        ("Adobe transform 2 on 3 components", spliced(&no_jfif, 2, 0, &adobe(2)), original),
        // Too short for a transform (libjpeg reads it from 12 bytes on), long enough for
        // Pillow's version field (a 6-byte one Pillow refuses: tests/pillow_agreement.rs).
        (
            "short Adobe segment",
            spliced(&no_jfif, 2, 0, &jpeg_segment(0xEE, b"Adobe\0\x64")),
            original,
        ),
        ("ids R G B", with_ids(&no_jfif, *b"RGB"), ycc),
        ("JFIF and ids R G B", with_ids(&base, *b"RGB"), original),
        ("JFIF and Adobe transform 0", spliced(&base, 2, 0, &adobe(0)), original),
        (
            "Adobe transform 1 and ids R G B",
            with_ids(&spliced(&no_jfif, 2, 0, &adobe(1)), *b"RGB"),
            original,
        ),
    ];
    for (what, bytes, want) in cases {
        assert_close(mean(&pixels(&bytes)), want, 2.5, what);
    }
}

#[test]
fn jpegs_without_huffman_tables_use_the_standard_ones_as_libjpeg_does() {
    let base = jpeg_bytes(40, 32, 7);
    let (segs, _) = jpeg_segments(&base);
    let mut stripped = base.clone();
    for &(code, at, len) in segs.iter().rev() {
        if code == 0xC4 {
            stripped.drain(at..at + len);
        }
    }
    assert!(stripped.len() < base.len());
    assert_eq!(pixels(&stripped), pixels(&base));
}

#[test]
fn truncation_is_one_code_for_both_formats() {
    let jpeg = jpeg_bytes(48, 40, 2);
    let r = assert_rejected(&jpeg[..20], "truncated", &["before the JPEG frame header"]);
    assert_eq!(r.dims, None);
    let (sof, sof_len) = segment(&jpeg, 0xC0);
    let r = assert_rejected(&jpeg[..sof + sof_len + 10], "truncated", &["no scan header"]);
    assert_eq!(r.dims, Some((48, 40)));
    assert_rejected(&jpeg[..jpeg.len() * 3 / 4], "truncated", &["end-of-image"]);
    // Only the end-of-image marker missing: Pillow refuses it too ("image file is truncated").
    assert_rejected(&jpeg[..jpeg.len() - 2], "truncated", &["end-of-image"]);

    let rgb: Vec<u8> = (0..24 * 16 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let png = png_file((24, 16), 8, 2, false, &[], &unfiltered(&rgb, 24 * 3));
    assert_eq!(pixels(&png), rgb);
    let idat = png.windows(4).position(|w| w == b"IDAT").expect("IDAT") - 4;
    let r = assert_rejected(&png[..20], "truncated", &["IHDR"]);
    assert_eq!(r.dims, None);
    let r = assert_rejected(&png[..idat + 8 + 300], "truncated", &["pixels"]);
    assert_eq!(r.dims, Some((24, 16)));
    // Pixels complete, the end missing (IEND, or also the checksums): Pillow loads it, so do we.
    assert_eq!(pixels(&png[..png.len() - 12]), rgb);
    assert_eq!(pixels(&png[..png.len() - 12 - 8]), rgb);
    assert_rejected(&png[..png.len() - 12 - 8 - 1], "truncated", &["pixels"]);
    assert_eq!(pixels(&[&png[..], b"trailing bytes after IEND"].concat()), rgb);
}

#[test]
fn png_features_pillow_opens_as_rgb_are_kept_with_its_pixels() {
    let (w, h) = (13usize, 9usize);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 256) as u8).collect();
    let dims = (w as u32, h as u32);
    let plain = unfiltered(&rgb, w * 3);
    let trns: (&[u8; 4], Vec<u8>) = (b"tRNS", vec![0, 1, 0, 2, 0, 3]);
    assert_eq!(pixels(&png_file(dims, 8, 2, false, &[], &plain)), rgb);
    // A transparent colour (tRNS): Pillow opens mode RGB with info["transparency"].
    assert_eq!(pixels(&png_file(dims, 8, 2, false, std::slice::from_ref(&trns), &plain)), rgb);
    // 16-bit RGB: Pillow opens mode RGB, keeping each sample's high byte.
    let rgb16: Vec<u8> = rgb.iter().flat_map(|&v| [v, v ^ 0x5A]).collect();
    let rows16 = unfiltered(&rgb16, w * 6);
    assert_eq!(pixels(&png_file(dims, 16, 2, false, &[], &rows16)), rgb);
    assert_eq!(pixels(&png_file(dims, 16, 2, false, &[trns], &rows16)), rgb);
    // Adam7 interlacing.
    assert_eq!(pixels(&png_file(dims, 8, 2, true, &[], &adam7(w, h, &rgb))), rgb);
    // Palette images without transparency (Pillow: mode P; convert("RGB") gives these pixels).
    let palette: Vec<u8> = (0..16u8).flat_map(|i| [i * 16, 255 - i * 16, i * 7]).collect();
    for depth in [1u8, 2, 4, 8] {
        let per_byte = 8 / depth as usize;
        let index = |x: usize, y: usize| ((x + 3 * y) % (1usize << depth).min(16)) as u8;
        let mut rows = Vec::new();
        let mut want = Vec::new();
        for y in 0..h {
            rows.push(0);
            let mut packed = vec![0u8; w.div_ceil(per_byte)];
            for x in 0..w {
                let i = index(x, y);
                packed[x / per_byte] |= i << (8 - depth as usize * (x % per_byte + 1));
                want.extend_from_slice(&palette[i as usize * 3..i as usize * 3 + 3]);
            }
            rows.extend(packed);
        }
        let file = png_file(dims, depth, 3, false, &[(b"PLTE", palette.clone())], &rows);
        assert_eq!(pixels(&file), want, "{depth}-bit palette");
    }
    // Damaged image-data checksums: Pillow does not check them and loads the picture.
    let good = png_file(dims, 8, 2, false, &[], &plain);
    let idat = good.windows(4).position(|x| x == b"IDAT").expect("IDAT") - 4;
    let len = u32::from_be_bytes(good[idat..idat + 4].try_into().expect("4")) as usize;
    let mut bad_crc = good.clone();
    bad_crc[idat + 8 + len] ^= 0xFF;
    assert_eq!(pixels(&bad_crc), rgb);
}

#[test]
fn an_animated_png_is_read_as_its_default_image() {
    let (w, h) = (8u32, 6u32);
    let frame = |v: u8| vec![v; (w * h * 3) as usize];
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_animated(2, 0).expect("animated");
        let mut writer = enc.write_header().expect("header");
        writer.write_image_data(&frame(40)).expect("frame 0");
        writer.write_image_data(&frame(200)).expect("frame 1");
        writer.finish().expect("finish");
    }
    assert_eq!(pixels(&out), frame(40));
}

#[test]
fn png_colour_types_that_are_not_rgb_are_rejected_naming_them() {
    let dims = (8u32, 8u32);
    let rows = |bytes_per_row: usize| unfiltered(&vec![9u8; bytes_per_row * 8], bytes_per_row);
    type Chunks<'a> = Vec<(&'a [u8; 4], Vec<u8>)>;
    let cases: Vec<(u8, u8, usize, Chunks, &str)> = vec![
        (1, 0, 1, vec![], "1-bit grayscale PNG"),
        (8, 0, 8, vec![], "8-bit grayscale PNG"),
        (16, 0, 16, vec![], "16-bit grayscale PNG"),
        (8, 4, 16, vec![], "8-bit grayscale with alpha PNG"),
        (8, 6, 32, vec![], "8-bit RGB with alpha (RGBA) PNG"),
        (16, 6, 64, vec![], "16-bit RGB with alpha (RGBA) PNG"),
        (
            8,
            3,
            8,
            vec![(b"PLTE", vec![9; 30]), (b"tRNS", vec![0])],
            "palette PNG with transparency",
        ),
    ];
    for (depth, colour, row, before, words) in cases {
        let r = assert_rejected(
            &png_file(dims, depth, colour, false, &before, &rows(row)),
            "not-rgb",
            &[words],
        );
        assert_eq!(r.dims, Some(dims));
    }
    // A damaged header chunk (Pillow: "broken PNG file") and broken compressed data.
    let good = png_file(dims, 8, 2, false, &[], &rows(24));
    let mut bad_ihdr = good.clone();
    bad_ihdr[20] ^= 1;
    assert_rejected(&bad_ihdr, "corrupt", &["IHDR", "checksum"]);
    let idat = good.windows(4).position(|x| x == b"IDAT").expect("IDAT") + 4;
    let mut bad_zlib = good.clone();
    bad_zlib[idat + 2] = 0x07; // an invalid deflate block type
    assert_rejected(&bad_zlib, "corrupt", &[]);
}

#[test]
fn other_formats_named_like_images_are_unsupported_with_their_size() {
    let mut gif = b"GIF89a".to_vec();
    gif.extend([40, 0, 30, 0, 0x80, 0, 0]);
    let r = assert_rejected(&gif, "unsupported", &["GIF image", "40x30", "reads JPEG and PNG"]);
    assert_eq!(r.dims, Some((40, 30)));
    let mut bmp = vec![0u8; 60];
    bmp[..2].copy_from_slice(b"BM");
    bmp[18..22].copy_from_slice(&64u32.to_le_bytes());
    bmp[22..26].copy_from_slice(&48u32.to_le_bytes());
    assert_rejected(&bmp, "unsupported", &["BMP image", "64x48"]);
    assert_rejected(
        b"RIFF\x10\0\0\0WEBPVP8L\x05\0\0\0\x2f\x09\x40\x02\0",
        "unsupported",
        &["WebP"],
    );
    assert_rejected(b"plain text", "not-an-image", &[]);
}

#[test]
fn exif_orientation_is_recorded_and_not_applied() {
    let base = jpeg_bytes(48, 40, 4);
    let exif = jpeg_segment(0xE1, &[b"Exif\0\0".as_slice(), &tiff_orientation(6)].concat());
    let rotated = spliced(&base, 2, 0, &exif);
    let d = decode(&rotated, ANY_SIZE).expect("kept");
    assert_eq!(d.orientation, Some(6));
    assert_eq!((d.image.width, d.image.height), (48, 40), "stored as coded, not rotated");
    assert_eq!(d.image.pixels, pixels(&base));
    assert_eq!(decode(&base, ANY_SIZE).expect("kept").orientation, None);
    let rgb = vec![77u8; 8 * 8 * 3];
    let png =
        png_file((8, 8), 8, 2, false, &[(b"eXIf", tiff_orientation(3))], &unfiltered(&rgb, 24));
    assert_eq!(decode(&png, ANY_SIZE).expect("kept").orientation, Some(3));
    // Recorded for a rejected image whose header was read, too.
    let mut gray = spliced(&base, 2, 0, &exif);
    let (sof, _) = segment(&gray, 0xC0);
    gray[sof + 1] = 0xC5;
    assert_eq!(rejection(&gray).orientation, Some(6));
}
