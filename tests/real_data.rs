//! Acceptance on the real images of ../shared/data, unpacked by `make test-data` into
//! `$SIPL_DATA`. `make test` always sets it; a plain `cargo test` without it skips these
//! (saying so), and a set but empty `$SIPL_DATA` fails.

mod common;

use std::path::PathBuf;

use common::{check_with_pyarrow, run, s};
use sipl_shards::{DatasetMeta, read_manifest};

fn data(name: &str) -> Option<PathBuf> {
    let Ok(root) = std::env::var("SIPL_DATA") else {
        eprintln!("SIPL_DATA not set: skipping real-data test (run `make test`)");
        return None;
    };
    let p = PathBuf::from(root).join(name);
    assert!(p.exists(), "{} missing: `make test-data` unpacks it", p.display());
    Some(p)
}

fn ingest(args: &[&str]) -> String {
    let (ok, stdout, err) = run(args);
    assert!(ok, "{stdout}{err}");
    println!("{stdout}");
    let (ok, v, err) = run(&["shards", "verify", args[4]]);
    assert!(ok, "{v}{err}");
    stdout
}

#[test]
fn tiny_val_keeps_9832_rejects_168_and_matches_pillow() {
    let Some(root) = data("tiny-imagenet-200-val/tiny-imagenet-200") else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("tiny-val");
    ingest(&["ingest", "tiny-imagenet", s(&root), "--out", s(&out), "--split", "val", "-q"]);
    let meta = DatasetMeta::load(&out).expect("meta");
    assert_eq!((meta.counts.kept, meta.counts.rejected), (9832, 168));
    assert_eq!(meta.counts.rejected_by_reason.get("not-rgb"), Some(&168));
    assert_eq!(meta.classes.len(), 200);
    let manifest = read_manifest(&out.join("manifest.parquet")).expect("manifest");
    assert!(
        manifest
            .iter()
            .filter(|e| !e.kept)
            .all(|e| e.reason.as_deref().is_some_and(|r| r.contains("grayscale")))
    );
    assert_eq!(manifest[0].path, "val/images/val_0.JPEG");
    let report = check_with_pyarrow(&out, Some(&root));
    println!("pillow comparison: {report}");
    assert_eq!(report["rows"], 9832);
    // Stored as decoded: every pixel is Pillow's (the same libjpeg-turbo, driven alike).
    assert_eq!(
        (report["images_differing"].as_u64(), report["max_abs_diff"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn tiny_train100_and_test_ingest_and_verify() {
    let Some(train) = data("tiny-imagenet-200-train100/tiny-imagenet-200") else { return };
    let Some(test) = data("tiny-imagenet-200-test/tiny-imagenet-200") else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    for (root, split) in [(train, "train"), (test, "test")] {
        let out = tmp.path().join(split);
        ingest(&["ingest", "tiny-imagenet", s(&root), "--out", s(&out), "--split", split, "-q"]);
        let c = DatasetMeta::load(&out).expect("meta").counts;
        assert_eq!(c.seen, if split == "train" { 20_000 } else { 10_000 });
        assert!(c.kept > c.seen * 97 / 100, "{c:?}");
        assert_eq!(c.rejected, c.rejected_by_reason.get("not-rgb").copied().unwrap_or(0), "{c:?}");
    }
}

#[test]
fn imagenet_sample_images_via_folder_match_pillow_and_torchvision_preprocessing() {
    let Some(root) = data("imagenet-sample-images/imagenet-sample-images") else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("sample");
    ingest(&["ingest", "folder", s(&root), "--out", s(&out), "-q"]);
    let meta = DatasetMeta::load(&out).expect("meta");
    assert_eq!(meta.counts.seen, 1000);
    assert!(meta.counts.kept > 950, "{:?}", meta.counts);
    let report = check_with_pyarrow(&out, Some(&root));
    println!("pillow comparison: {report}");
    assert_eq!(report["rows"], meta.counts.kept);
}
