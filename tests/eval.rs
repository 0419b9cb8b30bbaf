//! `sipl eval downstream` on a tiny labelled set, and the bad inputs the evaluation issue lists
//! so far: an unlabelled set, a run without weights, weights of another model.

mod common;

use common::{run, s};

fn dataset(dir: &std::path::Path, labelled: bool) -> std::path::PathBuf {
    let images = dir.join("images");
    let (ok, _, err) =
        run(&["synth", "--out", s(&images), "--classes", "3", "--per-class", "8", "--size", "32"]);
    assert!(ok, "{err}");
    let root = if labelled { images.clone() } else { images.join("class_00") };
    let data = dir.join(if labelled { "ds" } else { "unlabelled" });
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&root),
        "--out",
        s(&data),
        "--resize",
        "none",
        "--crop",
        "none",
    ]);
    assert!(ok, "{err}");
    data
}

#[test]
fn downstream_head_on_a_random_encoder_writes_the_curve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true);
    let out = tmp.path().join("eval");
    let (ok, stdout, err) = run(&[
        "eval",
        "downstream",
        "--random-init",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--stratified",
        "0.25",
        "--epochs",
        "4",
        "--input-size",
        "32",
        "--batch",
        "8",
        "--device",
        "cpu",
    ]);
    assert!(ok && stdout.contains("best held-out accuracy"), "{stdout}{err}");
    let csv = std::fs::read_to_string(out.join("curve.csv")).expect("csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "epoch,train_loss,val_accuracy");
    assert_eq!(rows.len(), 5);
    for r in &rows[1..] {
        let acc: f64 = r.split(',').nth(2).expect("acc").parse().expect("number");
        assert!((0.0..=1.0).contains(&acc), "{r}");
    }
}

#[test]
fn bad_evaluation_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true);
    let unlabelled = dataset(&tmp.path().join("u"), false);
    let out = tmp.path().join("eval");
    let base = [
        "eval",
        "downstream",
        "--out",
        s(&out),
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--device",
        "cpu",
    ];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        run(&v)
    };
    let (ok, _, err) = with(&["--random-init", "--data", s(&unlabelled), "--stratified", "0.25"]);
    assert!(!ok && err.contains("no class labels"), "{err}");
    let empty_run = tmp.path().join("run");
    std::fs::create_dir_all(&empty_run).expect("mkdir");
    let (ok, _, err) = with(&["--run", s(&empty_run), "--data", s(&data)]);
    assert!(!ok && err.contains("no best.safetensors"), "{err}");
    let foreign = tmp.path().join("x.safetensors");
    std::fs::write(&foreign, b"not safetensors at all").expect("write");
    let (ok, _, err) =
        with(&["--weights", s(&foreign), "--data", s(&data), "--stratified", "0.25"]);
    assert!(!ok && err.contains("x.safetensors"), "{err}");
    let (ok, _, err) = with(&["--random-init", "--data", s(&data), "--train-images", "24"]);
    assert!(!ok && err.contains("must leave held-out images"), "{err}");
    let (ok, _, err) = with(&["--data", s(&data)]);
    assert!(!ok && err.contains("--random-init"), "{err}");
}
