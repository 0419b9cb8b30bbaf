//! Error messages a user can act on: a sweep of bad inputs over the commands, each refused with
//! a message that shows no Rust debug output (`Some(2)`, `Os { code: … }`), says each cause
//! once, names the right thing, and does not contradict itself.

mod common;

use std::path::Path;

use common::{run, s};

/// What no message may hold: Rust's `Debug` forms of options, I/O errors and devices.
const DEBUG_FORMS: [&str; 7] = ["Some(", "None)", "Os {", "Custom {", "kind: ", "Cuda(", "Cpu"];

/// Runs `sipl ARGS`, which must fail, and checks its message; returns stderr.
fn refused(args: &[&str]) -> String {
    let (ok, out, err) = run(args);
    assert!(!ok, "accepted: sipl {}\n{out}{err}", args.join(" "));
    for form in DEBUG_FORMS {
        assert!(!err.contains(form), "debug output {form:?} in: sipl {}\n{err}", args.join(" "));
    }
    let lines: Vec<&str> = err.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(cause) = line.trim().strip_prefix("caused by: ") {
            let said = lines[..i].join("\n");
            assert!(!said.contains(cause), "a cause said twice:\n{err}");
        }
    }
    let errors = lines.iter().filter(|l| l.starts_with("error: ")).count();
    assert_eq!(errors, 1, "sipl {}: {err}", args.join(" "));
    err
}

fn synth(dir: &Path, classes: &str, size: &str) -> std::path::PathBuf {
    let images = dir.join(format!("images-{classes}-{size}"));
    let (ok, _, err) = run(&[
        "synth",
        "--out",
        s(&images),
        "--classes",
        classes,
        "--per-class",
        "4",
        "--size",
        size,
    ]);
    assert!(ok, "{err}");
    images
}

fn ingest(images: &Path, out: &Path, side: &str) {
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(images),
        "--out",
        s(out),
        "--resize",
        side,
        "--crop",
        side,
        "-q",
    ]);
    assert!(ok, "{err}");
}

fn train_on(data: &Path, run_dir: &Path) -> Vec<String> {
    let config = common::repo().join("configs/smoke-siplv1.toml");
    [
        "train",
        "--config",
        s(&config),
        "-q",
        "--set",
        &format!("data.path={}", s(data)),
        "--set",
        "optim.batch_size=2",
        "--run-dir",
        s(run_dir),
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn bad_inputs_get_messages_without_debug_output_repeated_causes_or_contradictions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let three = t.join("three");
    ingest(&synth(t, "3", "32"), &three, "32");

    // A label beyond the head: the label itself, not `Some(2)`.
    let err = refused(&[
        "eval",
        "downstream",
        "--random-init",
        "--data",
        s(&three),
        "--classes",
        "2",
        "--stratified",
        "0.25",
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--device",
        "cpu",
        "-q",
        "--out",
        s(&t.join("down")),
    ]);
    assert!(err.contains("label 2 does not fit a head over 2 classes"), "{err}");

    // A path through a file: the OS error once.
    let file = t.join("file");
    std::fs::write(&file, "x").expect("write");
    let err = refused(&strs(&train_on(&three, &file.join("run"))));
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    let err =
        refused(&["train", "--config", s(&t.join("missing.toml")), "--run-dir", s(&t.join("r"))]);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    // Images of one square size too small for the grid: said as such, not as a size mismatch.
    let tiny = t.join("tiny");
    ingest(&synth(t, "2", "16"), &tiny, "8");
    let err = refused(&strs(&train_on(&tiny, &t.join("tiny-run"))));
    assert!(err.contains("are 8x8") && err.contains("too small for the 3x3 patch grid"), "{err}");
    assert!(!err.contains("one size"), "{err}");

    // An ingest that keeps no image fails, and training on its result says it is empty.
    let junk = t.join("junk");
    std::fs::create_dir_all(junk.join("a")).expect("mkdir");
    std::fs::write(junk.join("a/x.jpg"), "not a jpeg").expect("write");
    let empty = t.join("empty");
    let err = refused(&["ingest", "folder", s(&junk), "--out", s(&empty), "-q"]);
    assert!(err.contains("no image kept of 1 seen"), "{err}");
    let err = refused(&strs(&train_on(&empty, &t.join("empty-run"))));
    assert!(err.contains("holds no image"), "{err}");
    assert!(!err.contains("val_fraction"), "{err}");

    // A sweep of other refusals, checked for the same patterns.
    refused(&["eval", "knn", "--random-init", "--data", s(&three), "--k", "5", "--out", s(t)]);
    refused(&["eval", "knn", "--run", s(&three), "--data", s(&three)]);
    refused(&["export", "--run", s(&file), "--out", s(&t.join("e.safetensors"))]);
    refused(&["report", s(&three), "--out", s(&t.join("rep"))]);
    refused(&["ingest", "folder", s(&t.join("nowhere")), "--out", s(&t.join("o"))]);
    refused(&["shards", "verify", s(&file)]);
    refused(&["preview", s(&tiny), "--out", s(&t.join("p.png"))]);
    refused(&["bench", "step", "--device", "cuda:7"]);
}
