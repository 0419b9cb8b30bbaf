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
