//! The online downstream monitor of `sipl train` end to end on a tiny set: it changes nothing
//! the run trains (on or off, added on resume, killed and resumed: the same weights bit for
//! bit), its last figure is `sipl eval knn`'s on the final weights, `run.best_by = "monitor"`
//! keeps the encoder of its best figure, TensorBoard reads every scalar once after a kill,
//! a log file gets plain progress lines, and bad monitor sets are refused before the run
//! directory exists.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{
    python, repo, run, s, setup_tiny_training, sipl, text, train_in, wait_for_checkpoint,
};
use sipl_train::trainer::metrics::{self, MetricsLine};

/// A labelled monitor set apart from the training images: 2 classes × 16 at 32².
fn monitor_set(dir: &Path) -> std::path::PathBuf {
    let images = dir.join("monitor-images");
    let (ok, _, err) = run(&[
        "synth",
        "--out",
        s(&images),
        "--classes",
        "2",
        "--per-class",
        "16",
        "--size",
        "40",
        "--seed",
        "1",
    ]);
    assert!(ok, "{err}");
    let data = dir.join("monitor");
    let (ok, _, err) =
        run(&["ingest", "folder", s(&images), "--out", s(&data), "--resize", "32", "--crop", "32"]);
    assert!(ok, "{err}");
    data
}

/// `--set` flags of a monitor on `data`.
fn monitor_sets(data: &Path) -> Vec<String> {
    [
        format!("monitor.data={}", s(data)),
        "monitor.input_size=32".into(),
        "monitor.k=3".into(),
        "monitor.stratified=0.25".into(),
        "monitor.batch=16".into(),
        "run.best_by=monitor".into(),
    ]
    .into_iter()
    .flat_map(|v| ["--set".to_owned(), v])
    .collect()
}

fn monitor_lines(run_dir: &Path) -> Vec<metrics::MonitorLine> {
    metrics::monitors(&metrics::read(run_dir)).cloned().collect()
}

/// `sipl eval knn` with the monitor's settings on `weights`: (correct, held out) at k = 3.
fn eval_knn(weights: &Path, data: &Path, out: &Path) -> (u64, u64) {
    let (ok, stdout, err) = run(&[
        "eval",
        "knn",
        "--weights",
        s(weights),
        "--data",
        s(data),
        "--stratified",
        "0.25",
        "--k",
        "3,200",
        "--input-size",
        "32",
        "--batch",
        "16",
        "--device",
        "cpu",
        "--out",
        s(out),
        "-q",
    ]);
    assert!(ok, "{stdout}{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("knn.json")).expect("knn.json"))
            .expect("json");
    let n = summary["held_out_images"].as_u64().expect("held out");
    let acc = summary["accuracy"][0].as_f64().expect("accuracy");
    ((acc * n as f64).round() as u64, n)
}

#[test]
fn the_monitor_changes_nothing_resumes_exactly_and_equals_eval_knn() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let data = monitor_set(tmp.path());
    let sets = monitor_sets(&data);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    // Uninterrupted, monitor on, stderr a file: plain progress lines.
    let reference = tmp.path().join("reference");
    let loud: Vec<String> = args.iter().filter(|a| *a != "-q").cloned().collect();
    let (ok, stdout, err) = train_in(&loud, &reference, &sets);
    assert!(ok, "{stdout}{err}");
    for want in ["step 1/12 (8%) epoch 0 loss", "pretext val accuracy", "monitor kNN (k = 3)"] {
        assert!(err.contains(want), "no {want:?} in the log:\n{err}");
    }
    assert!(stdout.contains("monitor kNN (k = 3)"), "{stdout}");
    let want = std::fs::read(reference.join("final.safetensors")).expect("final");
    let lines = monitor_lines(&reference);
    // 42 training images, batches of 8: 5 steps an epoch; the random encoder at step 0, epochs
    // end at 5 and 10, the run at 12.
    assert_eq!(lines.iter().map(|l| l.step).collect::<Vec<_>>(), [0, 5, 10, 12], "{lines:?}");
    let last = lines.last().expect("a monitor line");
    assert_eq!((last.knn_held_out, last.knn_train_images, last.knn_k), (8, 24, 3), "{last:?}");
    assert!(last.knn_low <= last.knn_accuracy && last.knn_accuracy <= last.knn_high);
    // The last figure is `sipl eval knn`'s on the final weights, image for image.
    let knn = tmp.path().join("knn-final");
    assert_eq!(eval_knn(&reference.join("final.safetensors"), &data, &knn), (last.knn_correct, 8));
    // best_by = "monitor": best.safetensors is the encoder of the first best figure after the
    // first step (the step-0 figure is the random encoder's, a baseline).
    let best = lines.iter().filter(|l| l.step > 0).map(|l| l.knn_correct).max().expect("best");
    let knn = tmp.path().join("knn-best");
    assert_eq!(eval_knn(&reference.join("best.safetensors"), &data, &knn).0, best);

    // The report draws the monitor's curve against the random encoder's line.
    let report = tmp.path().join("report");
    let (ok, stdout, err) = run(&["report", s(&reference), "--out", s(&report)]);
    assert!(ok, "{stdout}{err}");
    let md = std::fs::read_to_string(report.join("report.md")).expect("report.md");
    assert!(md.contains("## Monitor") && md.contains("reference − random encoder"), "{md}");
    assert!(report.join("monitor.png").is_file());

    // Monitor off until a kill, then added on resume: the same weights, and the log says so.
    let added = tmp.path().join("added");
    let mut child = sipl().args(&args).args(["--run-dir", s(&added)]).spawn().expect("spawn");
    wait_for_checkpoint(&mut child, &added, 4);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let (ok, stdout, err) = train_in(&args, &added, &sets);
    assert!(ok, "{stdout}{err}");
    assert!(err.contains("[monitor] added since the run started"), "{err}");
    assert!(std::fs::read(added.join("final.safetensors")).expect("final") == want);

    // Run again once finished: the last validation and monitor lines are measured again,
    // not added (the final checkpoint was taken before them).
    let (ok, stdout, err) = train_in(&args, &reference, &sets);
    assert!(ok, "{stdout}{err}");
    check_once(&reference, &lines);

    // Monitor on, killed inside its first checkpoint (so it starts over from step 0) or after
    // a later one, resumed: the same weights, every line and every TensorBoard scalar once.
    for (k, kill) in ["first checkpoint", "after step 8"].into_iter().enumerate() {
        let killed = tmp.path().join(format!("killed{k}"));
        let mut child = match k {
            0 => common::sipl_with_faults(&[("SIPL_FAULT_KILL_IN_CHECKPOINT", "2")]),
            _ => sipl(),
        };
        let child = child.args(&args).args(["--run-dir", s(&killed)]).args(&sets);
        let mut child = child.spawn().expect("spawn");
        if k == 1 {
            wait_for_checkpoint(&mut child, &killed, 8);
            std::thread::sleep(Duration::from_millis(50));
            child.kill().expect("SIGKILL");
        }
        child.wait().expect("reap");
        assert!(!killed.join("final.safetensors").exists(), "{kill}: the run finished");
        let (ok, stdout, err) = train_in(&args, &killed, &sets);
        assert!(ok, "{kill}: {stdout}{err}");
        assert!(std::fs::read(killed.join("final.safetensors")).expect("final") == want, "{kill}");
        check_once(&killed, &lines);
    }
}

/// `run_dir` holds `lines` (the uninterrupted run's monitor lines) once each, and TensorBoard
/// reads each scalar of its `metrics.jsonl` exactly once, at its step, with its value.
fn check_once(run_dir: &Path, lines: &[metrics::MonitorLine]) {
    assert_eq!(monitor_lines(run_dir), lines_without_time(lines, &monitor_lines(run_dir)));
    let all = metrics::read(run_dir);
    let mut keys: Vec<(u64, String)> = all.iter().map(|l| (l.step(), kind(l))).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a metrics line repeated in {}", run_dir.display());
    let events = read_events(&run_dir.join("tb"));
    let mut expected: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for line in &all {
        for (tag, v) in line.scalars() {
            expected.entry(tag).or_default().push((line.step(), v));
        }
    }
    assert!(expected.contains_key("monitor/knn_accuracy") && expected.contains_key("train/loss"));
    for (tag, want) in &expected {
        let got = events.get(tag).unwrap_or_else(|| panic!("no {tag} in {:?}", events.keys()));
        let steps: Vec<u64> = got.iter().map(|p| p.0).collect();
        assert_eq!(steps, want.iter().map(|p| p.0).collect::<Vec<_>>(), "{tag}: steps");
        for ((step, g), (_, w)) in got.iter().zip(want) {
            // Event scalars are float32.
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{tag} at {step}: {g} vs {w}");
        }
    }
}

fn kind(l: &MetricsLine) -> String {
    match l {
        MetricsLine::Train(_) => "train",
        MetricsLine::Validation(_) => "validation",
        MetricsLine::Monitor(_) => "monitor",
    }
    .into()
}

/// `want` with the measurement times of `got` (the only field that differs between runs).
fn lines_without_time(
    want: &[metrics::MonitorLine],
    got: &[metrics::MonitorLine],
) -> Vec<metrics::MonitorLine> {
    want.iter()
        .zip(got.iter().map(|g| g.monitor_seconds).chain(std::iter::repeat(0.0)))
        .map(|(w, t)| metrics::MonitorLine { monitor_seconds: t, ..w.clone() })
        .collect()
}

/// `{tag: [(step, value)]}` as TensorBoard's EventAccumulator reads `dir`.
fn read_events(dir: &Path) -> BTreeMap<String, Vec<(u64, f64)>> {
    let script = repo().join("train/tests/interop/read_tb_events.py");
    let (ok, stdout, err) = text(python().arg(script).arg(dir).output().expect("python"));
    assert!(ok, "{err}");
    let json: BTreeMap<String, Vec<(u64, f64, f64)>> =
        serde_json::from_str(stdout.trim()).expect("json");
    json.into_iter().map(|(k, v)| (k, v.into_iter().map(|(s, x, _)| (s, x)).collect())).collect()
}

#[test]
fn bad_monitor_sets_are_refused_before_the_run_directory_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let data = monitor_set(tmp.path());
    // Unlabelled: images straight in the root folder.
    let flat = tmp.path().join("flat-images");
    std::fs::create_dir_all(&flat).expect("mkdir");
    for e in std::fs::read_dir(tmp.path().join("monitor-images/class_00")).expect("images") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, flat.join(p.file_name().expect("name"))).expect("copy");
    }
    let unlabelled = tmp.path().join("unlabelled");
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&flat),
        "--out",
        s(&unlabelled),
        "--resize",
        "32",
        "--crop",
        "32",
    ]);
    assert!(ok, "{err}");
    // Images of two sides.
    let mixed_images = tmp.path().join("mixed-images");
    for (size, seed) in [("32", "2"), ("40", "3")] {
        let out = tmp.path().join(format!("mixed-{size}"));
        let (ok, _, err) = run(&[
            "synth",
            "--out",
            s(&out),
            "--classes",
            "2",
            "--per-class",
            "4",
            "--size",
            size,
            "--seed",
            seed,
        ]);
        assert!(ok, "{err}");
        for class in ["class_00", "class_01"] {
            let dst = mixed_images.join(class);
            std::fs::create_dir_all(&dst).expect("mkdir");
            for e in std::fs::read_dir(out.join(class)).expect("images") {
                let p = e.expect("entry").path();
                let name = format!("{size}-{}", p.file_name().expect("name").to_string_lossy());
                std::fs::copy(&p, dst.join(name)).expect("copy");
            }
        }
    }
    let mixed = tmp.path().join("mixed");
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&mixed_images),
        "--out",
        s(&mixed),
        "--resize",
        "none",
        "--crop",
        "none",
    ]);
    assert!(ok, "{err}");
    let d = s(&data).to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![format!("monitor.data={}", s(&unlabelled))], "monitor.data"),
        (
            vec![format!("monitor.data={}", s(&mixed)), "monitor.input_size=32".into()],
            "monitor.data",
        ),
        (vec![format!("monitor.data={}", s(&tmp.path().join("nowhere")))], "monitor.data"),
        // The set is ordered by class: the first 16 are all class 0, none of the rest's class.
        (
            vec![format!("monitor.data={d}"), "monitor.train_images=16".into()],
            "monitor.train_images",
        ),
        (vec![format!("monitor.data={d}"), "monitor.k=100".into()], "monitor.k"),
        (vec![format!("monitor.data={d}"), "monitor.images=1000".into()], "monitor.images"),
        (vec![format!("monitor.data={d}"), "monitor.k=0".into()], "monitor.k"),
        (vec![format!("monitor.data={d}"), "monitor.input_size=16".into()], "monitor.input_size"),
        (vec![format!("monitor.data={d}"), "monitor.every=0".into()], "monitor.every"),
        (
            vec![
                format!("monitor.data={d}"),
                "monitor.train_images=8".into(),
                "monitor.stratified=0.5".into(),
            ],
            "monitor.stratified",
        ),
        (vec!["run.best_by=monitor".into()], "run.best_by"),
        (vec!["run.best_by=downstream".into()], "run.best_by"),
    ];
    for (i, (set, key)) in cases.into_iter().enumerate() {
        let run_dir = tmp.path().join(format!("run{i}"));
        let sets: Vec<String> = set.into_iter().flat_map(|v| ["--set".to_owned(), v]).collect();
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let (ok, stdout, err) = train_in(&args, &run_dir, &sets);
        assert!(!ok, "case {i} ({key}) ran: {stdout}{err}");
        assert!(err.contains(key), "case {i}: the error does not name {key}: {err}");
        assert!(!run_dir.exists(), "case {i}: the run directory was written");
    }
}
