//! Keep what Pillow keeps: one Pillow-made file per JPEG/PNG feature Pillow writes
//! (`tests/interop/make_features.py`, synthetic pixels), ingested as decoded. Every file Pillow's
//! `Image.open` opens as RGB is kept with exactly Pillow's pixels, palette PNGs without
//! transparency are kept as their RGB expansion, and every other file is rejected `not-rgb`.
//! The features Pillow cannot write are built byte by byte in `ingest/tests/features.rs`;
//! `pillow_agreement.rs` compares generated JPEG layouts and damaged files with Pillow.

mod common;

use std::collections::BTreeMap;

use common::{python, repo, run, s, text};
use sipl_shards::read_manifest;

#[test]
fn every_image_pillow_opens_as_rgb_is_kept_with_pillows_pixels() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (root, out) = (tmp.path().join("features"), tmp.path().join("ds"));
    let script = repo().join("tests/interop/make_features.py");
    let (ok, stdout, err) = text(python().arg(script).arg(&root).output().expect("python"));
    assert!(ok, "{stdout}{err}");
    let pillow: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(stdout.trim()).expect("verdicts");
    assert!(pillow.len() >= 30, "{pillow:?}");
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&root),
        "--out",
        s(&out),
        "--resize",
        "none",
        "--crop",
        "none",
    ]);
    assert!(ok, "{err}");
    let manifest = read_manifest(&out.join("manifest.parquet")).expect("manifest");
    assert_eq!(manifest.len(), pillow.len());
    for e in &manifest {
        let v = &pillow[&e.path];
        let rgb = v["mode"] == "RGB" || (v["mode"] == "P" && v["transparency"] == false);
        let code = e.reason_code.as_deref();
        assert_eq!(e.kept, rgb, "{}: Pillow {v}, sipl {code:?} {:?}", e.path, e.reason);
        if !rgb {
            assert_eq!(code, Some("not-rgb"), "{}: {:?}", e.path, e.reason);
        }
    }
    let orientation = |p: &str| manifest.iter().find(|e| e.path == p).and_then(|e| e.orientation);
    assert_eq!(orientation("jpeg-exif-rotated.jpg"), Some(6));
    assert_eq!(orientation("png-rgb-exif.png"), Some(3));

    let mut check = python();
    check.arg(repo().join("tests/interop/check_dataset.py")).arg(&out);
    check.arg("--root").arg(&root).arg("--per-image");
    let (ok, stdout, err) = text(check.output().expect("python"));
    assert!(ok, "{stdout}{err}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(report["max_abs_diff"], 0, "{report}");
    let mads = report["per_image_mad"].as_object().expect("per image");
    assert_eq!(mads.len(), manifest.iter().filter(|e| e.kept).count());
    for (path, mad) in mads {
        let mad = mad.as_f64().expect("number");
        println!("{path}: mean absolute difference to Pillow {mad:.4}");
        assert_eq!(mad, 0.0, "{path}: pixels must equal Pillow's");
    }
}
