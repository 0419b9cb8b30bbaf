//! sipl's event files read by TensorBoard's own reader (`EventAccumulator`, in the project's
//! venv, through `tests/interop/read_tb_events.py`): a run killed after step 10 and resumed
//! from its checkpoint at step 6 shows each step once, the resumed run's values after the
//! checkpoint and the first run's up to it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sipl_train::tensorboard::{EventWriter, TB_DIR};

const TAGS: [&str; 2] = ["train/loss", "val/accuracy"];

/// The value `tag` has at `step` in file `run` (0: first, 1: resumed): different per file.
fn value(run: u32, tag: &str, step: u64) -> f64 {
    let base = if tag == "train/loss" { 3.0 - 0.1 * step as f64 } else { 0.01 * (step - 1) as f64 };
    base + 0.5 * f64::from(run)
}

fn write(w: &mut EventWriter, run: u32, steps: std::ops::RangeInclusive<u64>) {
    for step in steps {
        let values: Vec<(&str, f64)> = TAGS.iter().map(|&t| (t, value(run, t, step))).collect();
        w.scalars(step, &values).expect("write scalars");
    }
}

/// `{tag: [(step, value)]}` as TensorBoard reads `dir`.
fn read_with_tensorboard(dir: &Path) -> BTreeMap<String, Vec<(u64, f64)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = root.join("../.venv/bin/python");
    assert!(py.exists(), "{} missing: run `make venv`", py.display());
    let out = Command::new(&py)
        .arg(root.join("tests/interop/read_tb_events.py"))
        .arg(dir)
        .output()
        .expect("spawn python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let series = json.as_object().expect("object");
    series
        .iter()
        .map(|(tag, points)| {
            let points = points.as_array().expect("points");
            let points = points
                .iter()
                .map(|p| (p[0].as_u64().expect("step"), p[1].as_f64().expect("value")))
                .collect();
            (tag.clone(), points)
        })
        .collect()
}

#[test]
fn resumed_run_replaces_the_steps_after_its_checkpoint() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("run").join(TB_DIR);
    let mut first = EventWriter::create(&dir, None).expect("first file");
    write(&mut first, 0, 1..=10);
    let mut second = EventWriter::create(&dir, Some(7)).expect("second file");
    write(&mut second, 1, 7..=12);
    assert_ne!(first.path(), second.path());
    assert!(first.path() < second.path(), "names sort in start order");
    let name = second.path().file_name().expect("name").to_string_lossy().into_owned();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    drop((first, second));

    let read = read_with_tensorboard(&dir);
    assert_eq!(read.keys().map(String::as_str).collect::<Vec<_>>(), TAGS);
    for (tag, points) in &read {
        let steps: Vec<u64> = points.iter().map(|p| p.0).collect();
        assert_eq!(steps, (1..=12).collect::<Vec<_>>(), "{tag}: each step once, in order");
        for &(step, got) in points {
            let run = if step <= 6 { 0 } else { 1 };
            let want = value(run, tag, step);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{tag} step {step}: {got}, want {want} (file {run})"
            );
        }
    }
}

#[test]
fn errors_name_the_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("file");
    let err = EventWriter::create(&blocker.join(TB_DIR), None).expect_err("a file is in the way");
    assert!(err.to_string().contains(&*blocker.to_string_lossy()), "{err}");
}
