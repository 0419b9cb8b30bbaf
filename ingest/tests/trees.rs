//! Real-world image trees: folder link loops, hidden entries, names that are not UTF-8, empty
//! class folders and a pinned class list. Every file is listed once, every walk finishes,
//! every name is stored apart and reversibly, and every class keeps its label.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{job, write_jpeg};
use sipl_ingest::{IngestError, IngestReport, SourceKind, Split, ingest};
use sipl_shards::{Dataset, ManifestEntry, decode_path, read_manifest, verify};

/// Ingests the folder `root` into `out` (no resize), failing the test after 30 s instead of
/// hanging.
fn ingest_folder(
    root: &Path,
    out: &Path,
    classes: Option<Vec<String>>,
) -> Result<IngestReport, IngestError> {
    let mut j = job(SourceKind::Folder, root, None, out);
    (j.settings.resize, j.settings.crop, j.settings.classes) = (None, None, classes);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(ingest(&j));
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("ingest finished within 30 s")
}

fn manifest(out: &Path) -> Vec<ManifestEntry> {
    read_manifest(&out.join("manifest.parquet")).expect("manifest")
}

fn paths(out: &Path) -> Vec<String> {
    manifest(out).into_iter().map(|e| e.path).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn folder_link_loops_list_every_file_once_and_finish() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    write_jpeg(&root.join("a/one.jpg"), 16, 16, 1);
    write_jpeg(&root.join("b/two.jpg"), 16, 16, 2);
    symlink(".", root.join("a/again")).expect("link");
    let out = tmp.path().join("out1");
    let r = ingest_folder(&root, &out, None).expect("ingest");
    assert_eq!((r.meta.counts.seen, r.meta.counts.kept), (2, 2));
    assert_eq!(r.meta.classes, ["a", "b"]);
    assert_eq!(paths(&out), ["a/one.jpg", "b/two.jpg"]);
    assert!(
        r.warnings.iter().any(|w| w.contains("a/again links to the folder already listed as a")),
        "{:?}",
        r.warnings
    );

    // Two loops in one folder (this ran forever with memory growing), a link back to ROOT,
    // a second link to a folder, and a link to a folder outside ROOT (followed, once).
    symlink(".", root.join("a/x")).expect("link");
    symlink(".", root.join("a/y")).expect("link");
    symlink("..", root.join("b/up")).expect("link");
    symlink("../a", root.join("b/also-a")).expect("link");
    let outside = tmp.path().join("elsewhere");
    write_jpeg(&outside.join("three.jpg"), 16, 16, 3);
    symlink(&outside, root.join("c")).expect("link");
    symlink(&outside, root.join("d")).expect("link");
    let out = tmp.path().join("out2");
    let r = ingest_folder(&root, &out, None).expect("ingest");
    assert_eq!(paths(&out), ["a/one.jpg", "b/two.jpg", "c/three.jpg"]);
    assert_eq!(r.meta.classes, ["a", "b", "c"]);
    assert_eq!(r.meta.counts.kept, 3);
    assert_eq!(r.warnings.len(), 6, "{:?}", r.warnings);
    assert!(
        r.warnings.iter().any(|w| w.contains("b/up links to the folder already listed as ROOT"))
    );
    assert!(r.warnings.iter().any(|w| w.contains("d links to the folder already listed as c")));
    assert!(verify(&out).expect("verify").ok());
}

#[test]
fn hidden_names_and_special_files_do_not_become_classes_or_hang() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    write_jpeg(&root.join("cat/a.jpg"), 16, 16, 1);
    write_jpeg(&root.join("dog/b.jpg"), 16, 16, 2);
    std::fs::create_dir_all(root.join(".ipynb_checkpoints")).expect("mkdir");
    std::fs::write(root.join("cat/._a.jpg"), b"\0\x05\x16\x07 AppleDouble").expect("write");
    std::fs::write(root.join(".DS_Store"), b"Bud1").expect("write");
    // torchvision's other image extensions are seen, and rejected naming the format.
    let mut bmp = vec![0u8; 60];
    bmp[..2].copy_from_slice(b"BM");
    bmp[18..26].copy_from_slice(&[20, 0, 0, 0, 10, 0, 0, 0]);
    std::fs::write(root.join("cat/b.BMP"), bmp).expect("write");
    // A FIFO named like an image: reading it would block forever.
    let fifo = root.join("dog/pipe.jpg");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let out = tmp.path().join("out");
    let r = ingest_folder(&root, &out, None).expect("ingest");
    assert_eq!(r.meta.classes, ["cat", "dog"]);
    let m = manifest(&out);
    let got: Vec<(&str, Option<&str>)> =
        m.iter().map(|e| (e.path.as_str(), e.reason_code.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("cat/a.jpg", None),
            ("cat/b.BMP", Some("unsupported")),
            ("dog/b.jpg", None),
            ("dog/pipe.jpg", Some("unreadable"))
        ]
    );
    assert!(m[1].reason.as_deref().is_some_and(|r| r.contains("20x10 BMP image")), "{m:?}");
    assert!(
        m[3].reason.as_deref().is_some_and(|r| r.contains("not a regular file (a FIFO)")),
        "{m:?}"
    );
    assert!(r.warnings.iter().any(|w| w.contains("skipped 2 hidden")), "{:?}", r.warnings);
}

#[test]
fn names_that_are_not_utf8_are_read_and_stored_apart_and_reversibly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    let name = |bytes: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(bytes));
    // Latin-1 "café"/"cafè", a Latin-1 class folder, a literal backslash, and the text
    // "caf\xe9" that must not collide with the Latin-1 name.
    let files: [(&[u8], u8); 5] = [
        (b"cls/caf\xe9.jpg", 1),
        (b"cls/caf\xe8.jpg", 2),
        (b"cls/caf\\xe9.jpg", 3),
        (b"cls/a\\b.jpg", 4),
        (b"na\xefve/x.jpg", 5),
    ];
    for (bytes, seed) in files {
        write_jpeg(&root.join(name(bytes)), 16, 16, seed);
    }
    let out = tmp.path().join("out");
    let r = ingest_folder(&root, &out, None).expect("ingest");
    assert_eq!((r.meta.counts.seen, r.meta.counts.kept), (5, 5));
    assert_eq!(r.meta.classes, ["cls", "na\\xefve"]);
    let m = manifest(&out);
    let stored: Vec<&str> = m.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        stored,
        [
            "cls/a\\\\b.jpg",
            "cls/caf\\\\xe9.jpg",
            "cls/caf\\xe8.jpg",
            "cls/caf\\xe9.jpg",
            "na\\xefve/x.jpg"
        ]
    );
    let ds = Dataset::open(&out).expect("open");
    let mut rgb = Vec::new();
    for (i, e) in m.iter().enumerate() {
        // The stored name leads back to the very file, whose pixels are those stored.
        let real = root.join(decode_path(&e.path).expect("well-formed"));
        assert!(files.iter().any(|(b, _)| root.join(name(b)) == real), "{}", real.display());
        let rec = ds.decode_into(i, &mut rgb).expect("decode");
        assert_eq!(rec.path, e.path);
        let source = std::fs::read(&real).expect("the stored name opens the file");
        let want = sipl_ingest::intake::decode_rgb(&source, common::ANY_SIZE).expect("decode");
        assert_eq!(rgb, want.pixels, "{}", e.path);
    }
    assert!(verify(&out).expect("verify").ok());
}

#[test]
fn empty_class_folders_keep_every_label() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (train, val) = (tmp.path().join("train"), tmp.path().join("val"));
    for (i, class) in ["cat", "dog", "fox"].iter().enumerate() {
        write_jpeg(&train.join(class).join("1.jpg"), 16, 16, i as u8);
    }
    write_jpeg(&val.join("cat/1.jpg"), 16, 16, 7);
    write_jpeg(&val.join("fox/1.jpg"), 16, 16, 8);
    std::fs::create_dir_all(val.join("dog")).expect("empty dog/");
    let t = ingest_folder(&train, &tmp.path().join("t"), None).expect("train");
    let v = ingest_folder(&val, &tmp.path().join("v"), None).expect("val");
    assert_eq!(t.meta.classes, ["cat", "dog", "fox"]);
    assert_eq!(v.meta.classes, ["cat", "dog", "fox"]);
    let label = |out: &str, path: &str| {
        manifest(&tmp.path().join(out)).into_iter().find(|e| e.path == path).and_then(|e| e.label)
    };
    assert_eq!(label("t", "fox/1.jpg"), Some(2));
    assert_eq!(label("v", "fox/1.jpg"), Some(2));
    assert!(
        v.warnings.iter().any(|w| w.contains("1 of 3 classes have no kept image")
            && w.contains("dog (no image files)")),
        "{:?}",
        v.warnings
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);

    // Every image of a class rejected: the class and its label stay.
    let val2 = tmp.path().join("val2");
    write_jpeg(&val2.join("cat/1.jpg"), 16, 16, 7);
    std::fs::create_dir_all(val2.join("dog")).expect("mkdir");
    std::fs::write(val2.join("dog/1.jpg"), "not a picture").expect("write");
    std::fs::write(val2.join("dog/2.jpg"), "").expect("write");
    write_jpeg(&val2.join("fox/1.jpg"), 16, 16, 8);
    let v2 = ingest_folder(&val2, &tmp.path().join("v2"), None).expect("val2");
    assert_eq!(v2.meta.classes, ["cat", "dog", "fox"]);
    assert_eq!(label("v2", "fox/1.jpg"), Some(2));
    assert!(
        v2.warnings.iter().any(|w| w.contains("dog (2 image(s), all rejected)")),
        "{:?}",
        v2.warnings
    );

    // A folder that only groups folders is not a class; an empty leaf below it is.
    let nested = tmp.path().join("nested");
    write_jpeg(&nested.join("animals/cat/1.jpg"), 16, 16, 1);
    std::fs::create_dir_all(nested.join("animals/dog")).expect("mkdir");
    let n = ingest_folder(&nested, &tmp.path().join("n"), None).expect("nested");
    assert_eq!(n.meta.classes, ["animals/cat", "animals/dog"]);
}

#[test]
fn a_pinned_class_list_fixes_labels_across_separately_ingested_sets() {
    let tmp = tempfile::tempdir().expect("tmp");
    let val = tmp.path().join("val");
    write_jpeg(&val.join("cat/1.jpg"), 16, 16, 1);
    write_jpeg(&val.join("fox/1.jpg"), 16, 16, 2);
    let pinned = strs(&["fox", "cat", "dog"]);
    let out = tmp.path().join("v");
    let r = ingest_folder(&val, &out, Some(pinned.clone())).expect("ingest");
    assert_eq!(r.meta.classes, pinned);
    let labels: Vec<(String, Option<i32>)> =
        manifest(&out).into_iter().map(|e| (e.path, e.label)).collect();
    assert_eq!(labels, [("cat/1.jpg".into(), Some(1)), ("fox/1.jpg".into(), Some(0))]);
    assert!(r.warnings.iter().any(|w| w.contains("dog (no image files)")), "{:?}", r.warnings);
    assert_eq!(r.meta.settings["classes"], serde_json::json!(pinned));

    // A class folder the list lacks is refused, naming it; nothing is written.
    write_jpeg(&val.join("wolf/1.jpg"), 16, 16, 3);
    let out2 = tmp.path().join("v2");
    let err = ingest_folder(&val, &out2, Some(pinned.clone())).expect_err("wolf is not listed");
    assert!(
        err.to_string().contains("class folder \"wolf\" is not in the --classes file"),
        "{err}"
    );
    assert!(!out2.join("dataset.json").exists());

    // Malformed lists and layouts without named classes.
    let err = ingest_folder(&val, &out2, Some(strs(&["cat", "cat"]))).expect_err("duplicate");
    assert!(err.to_string().contains("names \"cat\" twice"), "{err}");
    let err = ingest_folder(&val, &out2, Some(Vec::new())).expect_err("empty");
    assert!(err.to_string().contains("names no class"), "{err}");
    let mut j = job(SourceKind::ImagenetVal, &val, None, &out2);
    j.settings.classes = Some(pinned);
    let err = ingest(&j).expect_err("imagenet-val");
    assert!(err.to_string().contains("--classes applies to the folder layout"), "{err}");
}

#[test]
fn tiny_imagenet_train_and_val_label_alike_through_wnids_txt() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("tiny-imagenet-200");
    // wnids.txt lists three classes; train has no n02 folder, val has no n03 image.
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("wnids.txt"), "n03\nn01\nn02\n").expect("wnids");
    for wnid in ["n01", "n03"] {
        write_jpeg(&root.join(format!("train/{wnid}/images/{wnid}_0.JPEG")), 16, 16, 1);
    }
    write_jpeg(&root.join("val/images/val_0.JPEG"), 16, 16, 1);
    write_jpeg(&root.join("val/images/val_1.JPEG"), 16, 16, 2);
    std::fs::write(
        root.join("val/val_annotations.txt"),
        "val_0.JPEG\tn02\t0\t0\t1\t1\nval_1.JPEG\tn01\t0\t0\t1\t1\n",
    )
    .expect("ann");
    let mut labels = Vec::new();
    for split in [Split::Train, Split::Val] {
        let out = tmp.path().join(format!("{split:?}"));
        let mut j = job(SourceKind::TinyImagenet, &root, Some(split), &out);
        j.settings.min_side = 1;
        let r = ingest(&j).expect("ingest");
        assert_eq!(r.meta.classes, ["n01", "n02", "n03"]);
        labels.push(manifest(&out).into_iter().map(|e| (e.path, e.label)).collect::<Vec<_>>());
    }
    assert_eq!(
        labels[0],
        [
            ("train/n01/images/n01_0.JPEG".into(), Some(0)),
            ("train/n03/images/n03_0.JPEG".into(), Some(2))
        ]
    );
    assert_eq!(
        labels[1],
        [("val/images/val_0.JPEG".into(), Some(1)), ("val/images/val_1.JPEG".into(), Some(0))]
    );
    // A train folder wnids.txt does not list is an error naming both.
    write_jpeg(&root.join("train/n09/images/n09_0.JPEG"), 16, 16, 1);
    let err =
        ingest(&job(SourceKind::TinyImagenet, &root, Some(Split::Train), &tmp.path().join("x")))
            .expect_err("n09");
    assert!(
        err.to_string().contains("class \"n09\" is not in")
            && err.to_string().contains("wnids.txt"),
        "{err}"
    );
}

#[test]
fn a_folder_deeper_than_path_max_is_reported_not_left_out_silently() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    write_jpeg(&root.join("top/one.jpg"), 16, 16, 1);
    // 20 folders of 250-character names: the last ones' paths pass PATH_MAX (4096 bytes), so
    // they are made by a shell walking down with relative steps.
    let script = format!(
        "set -P; cd '{}' && for i in $(seq 20); do d=$(printf 'd%.0s' $(seq 250)); \
         mkdir $d && cd $d || exit 1; done && cp '{}' deep.jpg",
        root.display(),
        root.join("top/one.jpg").display()
    );
    let status = std::process::Command::new("bash").args(["-c", &script]).status().expect("bash");
    assert!(status.success());
    let out = tmp.path().join("out");
    let r = ingest_folder(&root, &out, None).expect("ingest");
    assert_eq!(r.meta.counts.kept, 1);
    let unreachable: Vec<&String> =
        r.warnings.iter().filter(|w| w.contains("cannot be listed")).collect();
    assert_eq!(unreachable.len(), 1, "{:?}", r.warnings);
    assert!(
        unreachable[0].contains("the images below it are not in the dataset"),
        "{unreachable:?}"
    );
}
