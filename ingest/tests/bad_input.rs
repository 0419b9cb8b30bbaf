//! Every bad image the ingest issue lists is rejected with its reason in the manifest, the run
//! completes, and the result verifies; bad roots and annotations are clear errors.

mod common;

use std::collections::BTreeMap;

use common::{fixtures, job, write_jpeg};
use sipl_ingest::{IngestError, SourceKind, Split, ingest};
use sipl_shards::{Dataset, read_manifest, verify};

#[test]
fn each_bad_image_is_rejected_with_its_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).expect("mkdir");
    for e in std::fs::read_dir(fixtures()).expect("fixtures").flatten() {
        std::fs::copy(e.path(), root.join(e.file_name())).expect("copy");
    }
    // Unreadable: a dangling symlink (chmod 000 does not stop root, who runs CI).
    std::os::unix::fs::symlink(root.join("gone.JPEG"), root.join("unreadable.JPEG")).expect("link");
    let out = tmp.path().join("out");
    let mut j = job(SourceKind::Folder, &root, None, &out);
    j.settings.resize = None;
    j.settings.crop = None;
    let report = ingest(&j).expect("the run completes despite bad images");
    let manifest = read_manifest(&out.join("manifest.parquet")).expect("manifest");
    let by_path: BTreeMap<&str, (&Option<String>, &Option<String>)> =
        manifest.iter().map(|e| (e.path.as_str(), (&e.reason_code, &e.reason))).collect();
    let expect = [
        ("good.JPEG", None, ""),
        ("truncated.JPEG", Some("truncated"), "end-of-image"),
        ("empty.JPEG", Some("empty-file"), "zero-byte"),
        ("text.JPEG", Some("not-an-image"), "not a recognised image"),
        ("alpha.png", Some("not-rgb"), "RGBA"),
        ("cmyk.JPEG", Some("not-rgb"), "CMYK"),
        ("gray.JPEG", Some("not-rgb"), "grayscale"),
        // 16-bit RGB: Pillow opens it as 8-bit RGB (the high bytes), and so is it kept.
        ("rgb16.png", None, ""),
        ("one-pixel.png", Some("too-small"), "1x1"),
        ("huge-header.png", Some("too-large"), "100000x100000"),
        ("unreadable.JPEG", Some("unreadable"), "No such file"),
    ];
    assert_eq!(by_path.len(), expect.len(), "one manifest row per file: {by_path:?}");
    for (path, code, detail) in expect {
        let (got_code, got_reason) = by_path[path];
        assert_eq!(got_code.as_deref(), code, "{path}");
        let reason = got_reason.clone().unwrap_or_default();
        assert!(reason.contains(detail), "{path}: reason {reason:?} lacks {detail:?}");
    }
    let c = &report.meta.counts;
    assert_eq!((c.seen, c.kept, c.rejected), (11, 2, 9));
    assert!(verify(&out).expect("verify").ok());
    let good = manifest.iter().find(|e| e.path == "good.JPEG").expect("good.JPEG");
    assert_eq!((good.width, good.height), (Some(64), Some(48)));
    assert_eq!(Dataset::open(&out).expect("open").len(), 2);
}

#[test]
fn a_missing_or_unreadable_root_is_an_error_and_claims_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let missing = tmp.path().join("no-such-root");
    let err = ingest(&job(SourceKind::Folder, &missing, None, &out)).expect_err("missing root");
    assert!(matches!(err, IngestError::Root { .. }), "{err}");
    assert!(err.to_string().contains("no-such-root"), "{err}");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let err = ingest(&job(SourceKind::Folder, &file, None, &out)).expect_err("file root");
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert!(!out.join("dataset.json").exists());
}

#[test]
fn tiny_val_without_annotations_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("tiny-imagenet-200");
    write_jpeg(&root.join("val/images/val_0.JPEG"), 16, 16, 1);
    let out = tmp.path().join("out");
    let err = ingest(&job(SourceKind::TinyImagenet, &root, Some(Split::Val), &out))
        .expect_err("no annotations");
    assert!(matches!(err, IngestError::Annotations { .. }), "{err}");
    assert!(err.to_string().contains("val_annotations.txt"), "{err}");
    assert!(!out.join("dataset.json").exists());
}

#[test]
fn invalid_settings_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut j = job(SourceKind::Folder, tmp.path(), None, &tmp.path().join("o"));
    j.settings.crop = Some(300);
    let err = ingest(&j).expect_err("crop > resize");
    assert!(err.to_string().contains("--crop = 300"), "{err}");
    j.settings.crop = Some(224);
    j.settings.zstd_level = 40;
    assert!(ingest(&j).expect_err("level").to_string().contains("--zstd-level"));
}
