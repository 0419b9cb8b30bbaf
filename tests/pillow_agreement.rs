//! Never silently wrong: generated files are decoded by sipl and by the venv's Pillow. Every
//! file Pillow keeps as RGB, sipl keeps with exactly Pillow's pixels; every file Pillow refuses,
//! sipl refuses, `truncated` where Pillow says the file is truncated. The JPEGs are photos
//! re-encoded by libjpeg-turbo's `cjpeg` in every scan layout, sampling and entropy coding it
//! writes, at odd sizes, then cut short or followed by other markers; the PNGs
//! (`interop/make_png_variants.py`) probe Pillow's chunk rules. None is committed.
//!
//! The photos are the first ImageNet samples of `$SIPL_DATA` (`make test` sets it); without it
//! a synthetic picture stands in, and the test says so.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python, repo, text};
use sipl_ingest::intake::{IntakeLimits, RgbImage, decode};

const ANY_SIZE: IntakeLimits = IntakeLimits { min_side: 1, max_pixels: 1 << 30 };

/// Samplings, as `cjpeg -sample` takes them: 4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, 4:1:0, factors
/// of 3 each way, and chroma planes sampled unlike each other.
const SAMPLINGS: [&str; 10] =
    ["1x1", "2x1", "2x2", "1x2", "4x1", "4x2", "3x1", "1x3", "2x2,2x1,1x2", "2x2,1x1,2x2"];

/// Scan layouts: `None` is cjpeg's interleaved default; the others are `-scans` scripts.
const SCANS: [(&str, Option<&str>); 6] = [
    ("interleaved", None),
    ("separate", Some("0;\n1;\n2;\n")),
    ("separate-reversed", Some("2;\n0;\n1;\n")),
    ("luma-then-chroma", Some("0;\n1,2;\n")),
    ("progressive", Some("")),
    (
        "progressive-separate",
        Some(
            "0: 0-0, 0, 0;\n1: 0-0, 0, 0;\n2: 0-0, 0, 0;\n0: 1-63, 0, 0;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n",
        ),
    ),
];

/// Entropy coding and stream options.
const CODINGS: [(&str, &[&str]); 5] = [
    ("huffman", &[]),
    ("optimised", &["-optimize"]),
    ("arithmetic", &["-arithmetic"]),
    ("restart-rows", &["-restart", "1"]),
    ("restart-blocks-q100", &["-restart", "3B", "-quality", "100"]),
];

fn cjpeg() -> PathBuf {
    let tool = Path::new(sipl_ingest::libjpeg::TOOLS_DIR).join("cjpeg");
    assert!(tool.exists(), "{} missing: the libjpeg-turbo build installs it", tool.display());
    tool
}

/// The photos to re-encode, as RGB8.
fn photos() -> Vec<RgbImage> {
    let Ok(root) = std::env::var("SIPL_DATA") else {
        eprintln!("SIPL_DATA not set: a synthetic picture stands in for the photos");
        let img = sipl_ingest::synth::synth_image(3, 8, 203, 5);
        let (width, height) = img.dimensions();
        return vec![RgbImage { width, height, pixels: img.into_raw() }];
    };
    let dir = Path::new(&root).join("imagenet-sample-images/imagenet-sample-images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (`make test-data` unpacks it)", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .take(2)
        .map(|f| decode(&std::fs::read(f).expect("read"), ANY_SIZE).expect("photo").image)
        .collect()
}

fn ppm(img: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> Vec<u8> {
    let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
    for y in y0..y0 + h {
        let row = (y * img.width + x0) as usize * 3;
        out.extend_from_slice(&img.pixels[row..row + w as usize * 3]);
    }
    out
}

/// Encodes `input` (a PPM file) with `cjpeg` and `args` into `out`; `false` when cjpeg refuses
/// the combination.
fn encode(dir: &Path, input: &Path, args: &[String], out: &Path) -> bool {
    let mut cmd = Command::new(cjpeg());
    cmd.args(args).arg("-outfile").arg(out).arg(input).current_dir(dir);
    let status = cmd.output().expect("run cjpeg");
    status.status.success()
}

fn layout_args(
    dir: &Path,
    sampling: &str,
    (scan_name, scans): (&str, Option<&str>),
    coding: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec!["-sample".into(), sampling.into()];
    match scans {
        None => {}
        Some("") => args.push("-progressive".into()),
        Some(script) => {
            let file = dir.join(format!("scans-{scan_name}.txt"));
            std::fs::write(&file, script).expect("scan script");
            args.extend(["-scans".into(), file.to_string_lossy().into_owned()]);
        }
    }
    args.extend(coding.iter().map(|s| s.to_string()));
    args
}

/// What Pillow made of each file of `dir`: (mode, error), and its RGB pixels in `FILE.rgb`.
fn pillow(dir: &Path) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let script = repo().join("tests/interop/pillow_decode.py");
    let (ok, stdout, err) = text(python().arg(script).arg(dir).output().expect("python"));
    assert!(ok, "{stdout}{err}");
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            (s("file").expect("file"), (s("mode"), s("error")))
        })
        .collect()
}

/// Compares sipl with Pillow on every JPEG and PNG of `dir`; returns (kept, refused) counts.
fn compare(dir: &Path) -> (usize, usize) {
    let verdicts = pillow(dir);
    let (mut kept, mut refused, mut wrong) = (0, 0, Vec::new());
    for (file, (mode, error)) in &verdicts {
        if !file.ends_with(".jpg") && !file.ends_with(".png") {
            continue;
        }
        let bytes = std::fs::read(dir.join(file)).expect("read");
        let ours = decode(&bytes, ANY_SIZE);
        match (mode.as_deref(), error, ours) {
            (Some("RGB"), None, Ok(d)) => {
                let want = std::fs::read(dir.join(format!("{file}.rgb"))).expect("Pillow's pixels");
                if d.image.pixels != want {
                    let max = d.image.pixels.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
                    let n = d.image.pixels.iter().zip(&want).filter(|(a, b)| a != b).count();
                    wrong.push(format!(
                        "{file}: {n} samples differ from Pillow's, by up to {max:?}"
                    ));
                }
                kept += 1;
            }
            (Some("RGB"), None, Err(r)) => {
                wrong.push(format!("{file}: Pillow keeps it, sipl {r:?}"))
            }
            (_, _, Ok(_)) => {
                wrong.push(format!("{file}: Pillow {mode:?} {error:?}, sipl keeps it"))
            }
            (_, Some(e), Err(r)) if e.contains("truncated") && r.code != "truncated" => {
                wrong.push(format!("{file}: Pillow {e}, sipl {r:?}"));
            }
            (_, _, Err(r))
                if error.as_deref().is_some_and(|e| e.contains("broken data stream"))
                    && r.code != "corrupt" =>
            {
                wrong.push(format!("{file}: Pillow {error:?}, sipl {r:?}"));
            }
            (_, _, Err(_)) => refused += 1,
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} files differ from Pillow:\n{}",
        wrong.len(),
        verdicts.len(),
        wrong.join("\n")
    );
    (kept, refused)
}

#[test]
fn every_layout_cjpeg_writes_is_kept_with_pillows_pixels() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let photos = photos();
    let (mut made, mut refused_by_cjpeg) = (0, Vec::new());
    for (p, photo) in photos.iter().enumerate() {
        let input = dir.join(format!("photo{p}.ppm"));
        std::fs::write(&input, ppm(photo, 0, 0, photo.width, photo.height)).expect("ppm");
        for sampling in SAMPLINGS {
            for (scan_name, scans) in SCANS {
                for (coding_name, coding) in CODINGS {
                    let args = layout_args(dir, sampling, (scan_name, scans), coding);
                    let name = format!(
                        "p{p}-{}-{scan_name}-{coding_name}.jpg",
                        sampling.replace(',', "_")
                    );
                    if encode(dir, &input, &args, &dir.join(&name)) {
                        made += 1;
                    } else {
                        refused_by_cjpeg.push(name);
                    }
                }
            }
        }
        for extra in [
            &["-rgb"][..],
            &["-grayscale"],
            &["-lossless", "1"],
            &["-lossless", "7,2"],
            &["-dct", "float", "-quality", "95"],
        ] {
            let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            let name = format!("p{p}-extra-{}.jpg", extra.join("").replace(',', "_"));
            assert!(encode(dir, &input, &args, &dir.join(&name)), "cjpeg {extra:?}");
            made += 1;
        }
    }
    // cjpeg writes every one of these combinations.
    assert!(refused_by_cjpeg.is_empty(), "cjpeg refused {refused_by_cjpeg:?}");
    let (kept, refused) = compare(dir);
    println!("{made} files: {kept} kept with Pillow's pixels, {refused} refused by both");
    // Only the grayscale ones are not RGB.
    assert_eq!((kept, refused), (made - photos.len(), photos.len()));
}

#[test]
fn odd_sizes_from_1x1_to_17x17_are_kept_with_pillows_pixels() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let photo = &photos()[0];
    let mut sizes: Vec<(u32, u32)> =
        (1..=17u32).flat_map(|w| [(w, w), (w, (w * 7) % 17 + 1)]).collect();
    sizes.dedup();
    let mut made = 0;
    for (w, h) in sizes {
        {
            let input = dir.join(format!("crop-{w}x{h}.ppm"));
            std::fs::write(&input, ppm(photo, 40 + w, 30 + h, w, h)).expect("ppm");
            for sampling in SAMPLINGS {
                for (scan_name, scans) in [SCANS[0], SCANS[1], SCANS[4]] {
                    let args = layout_args(dir, sampling, (scan_name, scans), &[]);
                    let name = format!("{w}x{h}-{}-{scan_name}.jpg", sampling.replace(',', "_"));
                    assert!(encode(dir, &input, &args, &dir.join(&name)), "cjpeg {name}");
                    made += 1;
                }
            }
        }
    }
    let (kept, refused) = compare(dir);
    println!("{made} files: {kept} kept with Pillow's pixels");
    assert_eq!((kept, refused), (made, 0));
}

/// The end of the last scan's entropy-coded data (the offset of the end-of-image marker).
fn eoi(bytes: &[u8]) -> usize {
    assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9], "cjpeg ends its files with EOI");
    bytes.len() - 2
}

#[test]
fn cut_and_damaged_files_get_pillows_verdict() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let photo = &photos()[0];
    let input = dir.join("photo.ppm");
    std::fs::write(&input, ppm(photo, 0, 0, photo.width.min(160), photo.height.min(120)))
        .expect("ppm");
    let mut made = 0;
    for (i, (sampling, scans, coding)) in [
        ("2x2", SCANS[0], &[][..]),
        ("2x2", SCANS[1], &[]),
        ("1x2", SCANS[1], &["-restart", "1"]),
        ("2x1", SCANS[4], &[]),
        ("2x2", SCANS[5], &["-arithmetic"]),
        ("1x1", SCANS[0], &["-arithmetic"]),
    ]
    .into_iter()
    .enumerate()
    {
        let base = dir.join(format!("base{i}.jpeg"));
        assert!(encode(dir, &input, &layout_args(dir, sampling, scans, coding), &base));
        let bytes = std::fs::read(&base).expect("read");
        let end = eoi(&bytes);
        let segment = |code: u8, body: &[u8]| {
            let mut s = vec![0xFF, code];
            s.extend(((body.len() + 2) as u16).to_be_bytes());
            s.extend_from_slice(body);
            s
        };
        let cut = |n: usize| bytes[..n].to_vec();
        let after_soi = |seg: &[u8]| [&bytes[..2], seg, &bytes[2..]].concat();
        let then = |tail: &[u8]| [&bytes[..end], tail].concat();
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("whole", bytes.clone()),
            ("cut-a-third", cut(bytes.len() / 3)),
            ("cut-two-thirds", cut(bytes.len() * 2 / 3)),
            ("cut-64-before-eoi", cut(end - 64)),
            ("cut-1-before-eoi", cut(end - 1)),
            ("no-eoi", cut(end)),
            ("half-eoi", cut(end + 1)),
            ("junk-after-eoi", [&bytes[..], b"\x00\xFF\xD8\xFF\xDA trailing"].concat()),
            ("comment-instead-of-eoi", then(&segment(0xFE, b"no end here"))),
            ("comment-then-eoi", then(&[segment(0xFE, b"a note"), vec![0xFF, 0xD9]].concat())),
            ("cut-comment-instead-of-eoi", then(&segment(0xFE, b"no end here")[..6])),
            ("restart-marker-instead-of-eoi", then(&[0xFF, 0xD0])),
            ("soi-instead-of-eoi", then(&[0xFF, 0xD8, 0xFF, 0xD9])),
            ("unknown-marker-instead-of-eoi", then(&[0xFF, 0x02, 0x00, 0x04, 0, 0])),
            (
                "scan-instead-of-eoi",
                then(
                    &[&segment(0xDA, &[1, 1, 0, 0, 63, 0])[..], &[0x55; 40], &[0xFF, 0xD9]]
                        .concat(),
                ),
            ),
            ("zeroed-middle", {
                let mut b = bytes.clone();
                let m = b.len() / 2;
                b[m..m + 200].fill(0);
                b
            }),
            ("ff-run-in-data", {
                let mut b = bytes.clone();
                let m = b.len() / 2;
                b[m..m + 9].fill(0xFF);
                b
            }),
            // Past the 64 KiB block Pillow reads next, after every row: never read.
            (
                "far-junk-instead-of-eoi",
                then(&[&vec![0; 70_000][..], &[0xFF, 0x02, 0xFF, 0xD8]].concat()),
            ),
            (
                "near-junk-instead-of-eoi",
                then(&[&[0u8; 10][..], &[0xFF, 0x02, 0xFF, 0xD8]].concat()),
            ),
            // Segments Pillow's parser reads at open.
            ("tables-only-datastream-first", [&[0xFF, 0xD8, 0xFF, 0xD9][..], &bytes].concat()),
            ("tables-only-then-junk", [&[0xFF, 0xD8, 0xFF, 0xD9][..], b"junk", &bytes].concat()),
            ("two-start-markers", [&[0xFF, 0xD8][..], &bytes].concat()),
            ("app-of-length-0", after_soi(&[0xFF, 0xE5, 0x00, 0x00])),
            ("com-of-length-1", after_soi(&[0xFF, 0xFE, 0x00, 0x01])),
            ("short-jfif", after_soi(&segment(0xE0, b"JFIF\0"))),
            ("short-adobe", after_soi(&segment(0xEE, b"Adobe\0"))),
            ("adobe-without-transform", after_soi(&segment(0xEE, b"Adobe\0\x64\0\0"))),
            ("short-icc-before-frame", after_soi(&segment(0xE2, b"ICC_PROFILE\0"))),
            ("icc-before-frame", after_soi(&segment(0xE2, b"ICC_PROFILE\0\x01\x01data"))),
            ("photoshop-cut-in-block", after_soi(&segment(0xED, b"Photoshop 3.0\08BIM\x04\x04"))),
            (
                "photoshop-cut-later",
                after_soi(&segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\x00\x00\x00\x00")),
            ),
            ("short-quantization-table", after_soi(&segment(0xDB, &[0; 40]))),
            ("tem-marker", after_soi(&[0xFF, 0x01])),
        ];
        for (name, v) in variants {
            std::fs::write(dir.join(format!("{i}-{name}.jpg")), v).expect("write");
            made += 1;
        }
    }
    let (kept, refused) = compare(dir);
    println!("{made} files: {kept} kept with Pillow's pixels, {refused} refused by both");
    assert!(kept >= 6 * 8 && refused >= 6 * 12, "kept {kept}, refused {refused}");
}

#[test]
fn png_chunks_get_pillows_verdict() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = repo().join("tests/interop/make_png_variants.py");
    let (ok, stdout, err) = text(python().arg(script).arg(tmp.path()).output().expect("python"));
    assert!(ok, "{stdout}{err}");
    let (kept, refused) = compare(tmp.path());
    println!("{kept} PNGs kept with Pillow's pixels, {refused} refused by both");
    assert!(kept >= 20 && refused >= 20, "kept {kept}, refused {refused}");
}
