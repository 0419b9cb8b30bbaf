//! End-to-end tests of the `sipl` binary: the demo flow, corruption, bad roots, and an ingest
//! killed midway then run again.

mod common;

use std::time::{Duration, Instant};

use common::{check_with_pyarrow, run, s, sipl};

fn synth(dir: &std::path::Path, per_class: &str, size: &str) {
    let (ok, _, err) = run(&[
        "synth",
        "--out",
        s(dir),
        "--classes",
        "4",
        "--per-class",
        per_class,
        "--size",
        size,
    ]);
    assert!(ok, "{err}");
}

#[test]
fn synth_ingest_verify_inspect_dump_and_read_with_pyarrow() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (images, out) = (tmp.path().join("images"), tmp.path().join("ds"));
    synth(&images, "6", "48");
    let (ok, stdout, err) = run(&[
        "ingest",
        "folder",
        s(&images),
        "--out",
        s(&out),
        "--resize",
        "40",
        "--crop",
        "32",
        "-q",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("kept 24 of 24"), "{stdout}");
    assert!(stdout.contains("images/s"), "{stdout}");
    let (ok, stdout, err) = run(&["shards", "verify", s(&out)]);
    assert!(ok && stdout.contains("verified 24 images"), "{stdout}{err}");
    let (ok, stdout, _) = run(&["shards", "inspect", s(&out)]);
    assert!(ok && stdout.contains("24 kept of 24") && stdout.contains("32x32: 24"), "{stdout}");
    let png = tmp.path().join("one.png");
    let (ok, stdout, err) = run(&["shards", "inspect", s(&out), "--dump", "5", s(&png)]);
    assert!(ok, "{stdout}{err}");
    let dumped = image::open(&png).expect("png").to_rgb8();
    assert_eq!(dumped.dimensions(), (32, 32));
    let ds = sipl_shards::Dataset::open(&out).expect("open");
    let mut rgb = Vec::new();
    ds.decode_into(5, &mut rgb).expect("decode");
    assert_eq!(dumped.into_raw(), rgb);
    let report = check_with_pyarrow(&out, Some(&images));
    assert_eq!(report["rows"], 24);
    let mad = report["mad_per_channel"].as_array().expect("mad");
    assert!(mad.iter().all(|m| m.as_f64().expect("f64") < 1.0), "{report}");
}

#[test]
fn verify_fails_loudly_on_a_corrupted_shard() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (images, out) = (tmp.path().join("images"), tmp.path().join("ds"));
    synth(&images, "3", "32");
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&images),
        "--out",
        s(&out),
        "--resize",
        "none",
        "--crop",
        "none",
    ]);
    assert!(ok, "{err}");
    let shard = out.join("shards/shard-00000.arrow");
    let mut bytes = std::fs::read(&shard).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&shard, bytes).expect("write");
    let (ok, _, err) = run(&["shards", "verify", s(&out)]);
    assert!(!ok, "verify must fail");
    assert!(err.contains("shards/shard-00000.arrow"), "{err}");
    assert!(err.contains("problem(s) found"), "{err}");
}

#[test]
fn a_missing_root_fails_with_a_clear_message() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("ds");
    let (ok, _, err) = run(&["ingest", "folder", "/no/such/place", "--out", s(&out)]);
    assert!(!ok);
    assert!(err.contains("error: input root /no/such/place"), "{err}");
    assert!(!out.join("dataset.json").exists());
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let (ok, _, err) = run(&["ingest", "tiny-imagenet", s(&root), "--out", s(&out)]);
    assert!(!ok && err.contains("--split"), "{err}");
    let (ok, _, err) = run(&["ingest", "folder", s(&root), "--out", s(&out), "--resize", "big"]);
    assert!(!ok && err.contains("--resize = \"big\": must be N or none"), "{err}");
}

#[test]
fn ingest_killed_midway_then_rerun_is_complete_and_identical() {
    let tmp = tempfile::tempdir().expect("tmp");
    let images = tmp.path().join("images");
    synth(&images, "60", "160");
    let args = |out: &std::path::Path| {
        vec![
            "ingest".to_owned(),
            "folder".into(),
            s(&images).into(),
            "--out".into(),
            s(out).into(),
            "--shard-images".into(),
            "10".into(),
            "--threads".into(),
            "1".into(),
            "-q".into(),
        ]
    };
    let reference = tmp.path().join("reference");
    let (ok, _, err) = common::text(sipl().args(args(&reference)).output().expect("run"));
    assert!(ok, "{err}");

    let out = tmp.path().join("ds");
    let mut child = sipl().args(args(&out)).spawn().expect("spawn");
    let start = Instant::now();
    while !out.join("shards/shard-00002.arrow").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "ingest made no progress");
        assert!(child.try_wait().expect("wait").is_none(), "ingest finished before the kill");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(!out.join("dataset.json").exists(), "a killed run must not claim completeness");
    let (ok, _, err) = run(&["shards", "verify", s(&out)]);
    assert!(!ok && err.contains("not a complete dataset"), "{err}");

    let (ok, _, err) = common::text(sipl().args(args(&out)).output().expect("rerun"));
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["shards", "verify", s(&out)]);
    assert!(ok, "{err}");
    for name in
        ["dataset.json", "manifest.parquet", "shards/shard-00000.arrow", "shards/shard-00023.arrow"]
    {
        assert_eq!(
            std::fs::read(out.join(name)).expect("out"),
            std::fs::read(reference.join(name)).expect("ref"),
            "{name}"
        );
    }
    assert!(!out.join("ingest.json").exists());
}

#[test]
fn help_names_every_source() {
    let (ok, stdout, _) = run(&["ingest", "--help"]);
    assert!(ok);
    for word in ["imagenet-val", "tiny-imagenet", "folder", "--resize", "--zstd-level", "--force"] {
        assert!(stdout.contains(word), "{word} missing from help:\n{stdout}");
    }
}

#[test]
fn preview_and_loader_bench_run_on_a_small_dataset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (images, out) = (tmp.path().join("images"), tmp.path().join("ds"));
    synth(&images, "4", "48");
    let (ok, _, err) =
        run(&["ingest", "folder", s(&images), "--out", s(&out), "--resize", "32", "--crop", "32"]);
    assert!(ok, "{err}");
    let sheet = tmp.path().join("sheet.png");
    let (ok, stdout, err) = run(&[
        "preview",
        s(&out),
        "--scheme",
        "siplv2",
        "--out",
        s(&sheet),
        "--samples",
        "3",
        "--tile",
        "40",
    ]);
    assert!(ok, "{stdout}{err}");
    let img = image::open(&sheet).expect("sheet").to_rgb8();
    // 4 px padding; per row: image, label glyph, 4 views.
    assert_eq!(img.dimensions(), (4 + 44 * 6, 4 + 44 * 3));
    let (ok, stdout, err) = run(&[
        "bench",
        "loader",
        s(&out),
        "--scheme",
        "siplv1",
        "--workers",
        "2",
        "--seconds",
        "0.5",
        "--batch",
        "4",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert!(v["samples_per_s"].as_f64().expect("rate") > 0.0, "{v}");
    assert_eq!(v["patch_size"], 32);
    let (ok, _, err) = run(&["preview", s(&out), "--scheme", "siplv9", "--out", s(&sheet)]);
    assert!(!ok && err.contains("unknown scheme"), "{err}");
    let (ok, _, err) = run(&["bench", "loader", s(&out), "--batch", "100", "--seconds", "1"]);
    assert!(!ok && err.contains("fewer than one batch of 100"), "{err}");
    // A few seconds of the soak: stalls and restarts, memory reports, the verdict.
    let (ok, stdout, err) = run(&[
        "bench",
        "soak",
        s(&out),
        "--minutes",
        "0.08",
        "--batch",
        "4",
        "--workers",
        "2",
        "--report-seconds",
        "1",
        "--stall-seconds",
        "0.1",
    ]);
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("no deadlock, memory growth"), "{stdout}");
    assert!(stdout.lines().filter(|l| l.trim_end().ends_with(char::is_numeric)).count() >= 3);
}

#[test]
fn latin1_names_empty_classes_and_a_pinned_class_list_through_the_cli_and_pyarrow() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("images");
    let file = |bytes: &[u8]| root.join(std::ffi::OsStr::from_bytes(bytes));
    for (i, name) in [&b"cat/caf\xe9.jpg"[..], b"cat/caf\xe8.jpg", b"fox/x.jpg"].iter().enumerate()
    {
        let path = file(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        image::RgbImage::from_fn(24, 20, |x, y| {
            image::Rgb([x as u8 * 9, y as u8 * 11, i as u8 * 80])
        })
        .save_with_format(&path, image::ImageFormat::Jpeg)
        .expect("jpeg");
    }
    std::fs::create_dir_all(root.join("dog")).expect("empty class folder");
    let classes = tmp.path().join("classes.txt");
    std::fs::write(&classes, "cat\ndog\nfox\n").expect("classes");
    let out = tmp.path().join("ds");
    let args = |out: &std::path::Path, classes: &std::path::Path| {
        vec![
            "ingest".to_owned(),
            "folder".into(),
            s(&root).into(),
            "--out".into(),
            s(out).into(),
            "--classes".into(),
            s(classes).into(),
            "--resize".into(),
            "none".into(),
            "--crop".into(),
            "none".into(),
        ]
    };
    let (ok, stdout, err) = common::text(sipl().args(args(&out, &classes)).output().expect("run"));
    assert!(ok && stdout.contains("kept 3 of 3"), "{stdout}{err}");
    assert!(
        err.contains("warning: 1 of 3 classes have no kept image") && err.contains("dog"),
        "{err}"
    );
    let meta = sipl_shards::DatasetMeta::load(&out).expect("meta");
    assert_eq!(meta.classes, ["cat", "dog", "fox"]);
    // pyarrow reads the stored names, maps them back to the files' bytes and Pillow opens them.
    let report = check_with_pyarrow(&out, Some(&root));
    assert_eq!(report["rows"], 3, "{report}");
    let missing = tmp.path().join("no-such-list.txt");
    let (ok, _, err) =
        common::text(sipl().args(args(&tmp.path().join("ds2"), &missing)).output().expect("run"));
    assert!(!ok && err.contains("no-such-list.txt"), "{err}");
}
