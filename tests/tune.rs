//! `sipl tune` end to end: bad spaces and storages refused before any trial, a study with
//! failing trials, NaN trials, SIGINT and kill -9 with resume, and two tuners sharing a real
//! PostgreSQL study. Trials train SIPLv1 on 48 tiny images for two short epochs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, s, sipl, sipl_with_faults, text};

/// A 48-image 32² set and a base config: 2 epochs of 5 steps, checkpoints at epoch ends only.
fn setup(dir: &Path) -> PathBuf {
    let (config, _) = common::setup_tiny_training(dir);
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("epochs = 3\nmax_steps = 12\n", "epochs = 2\n")
        .replace("checkpoint_every = 2\n", "checkpoint_every = 1000\n")
        .replace("log_every = 1\n", "log_every = 5\n");
    let base = dir.join("base.toml");
    std::fs::write(&base, text).expect("base");
    base
}

fn space(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("space.toml");
    std::fs::write(&p, text).expect("space");
    p
}

const LR: &str = "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\nlog = true\n";

fn tune(base: &Path, space: &Path, study: &Path, extra: &[&str]) -> Command {
    let mut c = sipl();
    c.args(["tune", "--config", s(base), "--space", s(space), "--study", s(study), "-q"]);
    c.args(extra);
    c
}

/// trials.csv as rows of (number, state, the other cells by column name).
fn rows(study: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(study.join("trials.csv")).expect("trials.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|l| {
            // The error cell (last) may hold commas inside quotes.
            let cells: Vec<&str> = l.splitn(header.len(), ',').collect();
            header.iter().zip(cells).map(|(h, c)| (h.to_string(), c.to_string())).collect()
        })
        .collect()
}

fn states(study: &Path) -> Vec<String> {
    rows(study).iter().map(|r| r["state"].clone()).collect()
}

#[test]
fn bad_spaces_flags_and_storages_are_refused_before_the_study() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let study = dir.path().join("study");
    let missing = format!("data.path={}", s(&dir.path().join("missing")));
    let ds = dir.path().join("ds");
    let cases: [(&str, &[&str], &str); 14] = [
        ("[optim.lrr]\ntype = \"float\"\nlow = 0.1\nhigh = 0.2\n", &[], "optim.lrr"),
        ("[optim.lr]\ntype = \"float\"\nlow = 1e-3\nhigh = 1e-5\n", &[], "inverted"),
        (
            "[optim.lr]\ntype = \"float\"\nlow = 0.0\nhigh = 1e-3\nlog = true\n",
            &[],
            "log = true needs low > 0",
        ),
        (
            "[model.scheme]\ntype = \"categorical\"\nchoices = []\n",
            &[],
            "model.scheme: choices = []",
        ),
        (
            "[optim.batch_size]\ntype = \"int\"\nlow = 9\nhigh = 15\npower_of_two = true\n",
            &[],
            "empty",
        ),
        (LR, &["--trials", "0"], "--trials"),
        (LR, &["--storage", "redis://localhost/0"], "--storage"),
        (LR, &["--objective", "downstream"], "--eval-data"),
        (LR, &["--timeout", "5 parsecs"], "--timeout"),
        (LR, &["--devices", "cuda:99"], "--devices cuda:99: device cuda:99 does not exist"),
        (LR, &["--set", &missing], "data.path = "),
        (
            LR,
            &["--objective", "downstream", "--eval-data", s(&ds), "--eval-arg=--bogus"],
            "--eval-arg: `sipl eval downstream` refuses \"--bogus\"",
        ),
        (
            "[optim.lrr]\ntype = \"float\"\nlow = 0.1\nhigh = 0.2\n",
            &[],
            "optim.lrr: not a config key",
        ),
        ("lr = 3\n", &[], "such as [optim.lr]"),
    ];
    for (text, extra, want) in cases {
        let sp = space(dir.path(), text);
        let (ok, _, err) = text_of(tune(&base, &sp, &study, extra));
        assert!(!ok && err.contains(want), "{text:?} {extra:?}: {err}");
        assert!(!study.exists(), "{text:?} {extra:?}: nothing written");
    }
    // A storage that cannot be reached (nothing listens on port 1): the error names the
    // storage, and no trial starts.
    let sp = space(dir.path(), LR);
    let url = "postgresql://sipl@127.0.0.1:1/sipl";
    let (ok, _, err) = text_of(tune(&base, &sp, &study, &["--storage", url]));
    assert!(
        !ok && err.contains("storage postgresql://sipl@127.0.0.1:1/sipl: cannot open it"),
        "{err}"
    );
    assert!(!study.exists(), "no study folder is left to refuse a later start");
    // Neither --report nor a resume on a folder without a study.
    let (ok, _, err) = run(&["tune", "--study", s(&study), "--report"]);
    assert!(!ok && err.contains("holds no study"), "{err}");
    // A study resumed with another space is refused unless --force.
    let sp2 =
        space(dir.path(), &format!("{LR}[model.alpha]\ntype = \"float\"\nlow = 1.0\nhigh = 5.0\n"));
    std::fs::create_dir_all(&study).expect("dir");
    std::fs::write(study.join("space.toml"), "[optim.lr]\n").expect("old space");
    let (ok, _, err) = text_of(tune(&base, &sp2, &study, &["--trials", "1"]));
    assert!(!ok && err.contains("another search space (model.alpha.high: - -> 5.0"), "{err}");
}

fn text_of(mut c: Command) -> (bool, String, String) {
    text(c.output().expect("spawn sipl tune"))
}

#[test]
fn a_study_records_failed_trials_goes_on_and_reports() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    // 48 images: data.train_images = 100 passes the config's own checks but not the data's,
    // so those trials fail naming the key; the others complete.
    let sp = space(
        dir.path(),
        &format!("{LR}[data.train_images]\ntype = \"categorical\"\nchoices = [40, 100]\n"),
    );
    let study = dir.path().join("study");
    let args = ["--trials", "4", "--pruner", "none", "--sampler", "random", "--seed", "3"];
    let (ok, out, err) = text_of(tune(&base, &sp, &study, &args));
    assert!(ok, "{out}\n{err}");
    let rows = rows(&study);
    assert_eq!(rows.len(), 4, "{rows:?}");
    let mut seen = (0, 0);
    for r in &rows {
        match r["data.train_images"].as_str() {
            "100" => {
                assert_eq!(r["state"], "FAIL", "{r:?}");
                assert!(r["error"].contains("data.train_images"), "{r:?}");
                seen.0 += 1;
            }
            _ => {
                assert_eq!(r["state"], "COMPLETE", "{r:?}");
                assert_eq!(r["epochs"], "2", "{r:?}");
                seen.1 += 1;
            }
        }
    }
    assert!(seen.0 > 0 && seen.1 > 0, "both kinds drawn: {rows:?}");
    assert!(out.contains("4 trials:"), "{out}");
    // best.toml is the base with the best parameters: a config `sipl train` reads.
    let best = std::fs::read_to_string(study.join("best.toml")).expect("best.toml");
    let rerun = dir.path().join("rerun");
    let best_path = study.join("best.toml");
    let (ok, _, err) = run(&[
        "train",
        "--config",
        s(&best_path),
        "--set",
        "optim.max_steps=1",
        "--run-dir",
        s(&rerun),
        "-q",
    ]);
    assert!(ok, "{err}");
    assert!(best.contains("train_images = 40"), "{best}");
    assert!(study.join("history.png").exists());
    // --report rewrites the reports from the storage alone.
    std::fs::remove_file(study.join("trials.csv")).expect("rm");
    let (ok, out, err) = run(&["tune", "--study", s(&study), "--report", "-q"]);
    assert!(ok && out.contains("4 trials"), "{out}\n{err}");
    assert_eq!(self::rows(&study).len(), 4);
}

#[test]
fn trials_that_diverge_to_nan_fail_and_the_study_completes() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let sp = space(dir.path(), LR);
    let study = dir.path().join("study");
    let out = sipl_with_faults(&[("SIPL_FAULT_NAN_AT_STEP", "3")])
        .args(["tune", "--config", s(&base), "--space", s(&sp), "--study", s(&study), "-q"])
        .args(["--trials", "2"])
        .output()
        .expect("spawn");
    let (ok, out, err) = text(out);
    // The study is recorded and reported, and a tuner whose every trial failed says so.
    let want = "every trial this tuner ran failed; the first error: loss is NaN at step";
    assert!(!ok && err.contains(want), "{out}\n{err}");
    for r in rows(&study) {
        assert_eq!(r["state"], "FAIL", "{r:?}");
        assert!(r["error"].contains("loss is NaN at step"), "{r:?}");
    }
    assert!(out.contains("2 failed"), "{out}");
}

/// Spawns `sipl tune` in its own process group and waits until trial 0 has its first
/// epoch checkpoint.
fn start_and_wait_for_checkpoint(base: &Path, sp: &Path, study: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut c = tune(base, sp, study, &["--trials", "2", "--pruner", "none"]);
    c.process_group(0).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn");
    let ckpt = study.join("trials/0000/checkpoints");
    let start = Instant::now();
    // A finished checkpoint: renamed into place, no `.tmp` left on it.
    let done = |d: std::fs::ReadDir| {
        d.flatten().any(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
    };
    while !std::fs::read_dir(&ckpt).is_ok_and(done) {
        assert!(child.try_wait().expect("wait").is_none(), "the tuner ended first");
        assert!(start.elapsed() < Duration::from_secs(180), "no checkpoint in 180 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn resumed(study: &Path, trial: &str) -> bool {
    std::fs::read_to_string(study.join(format!("trials/{trial}.log")))
        .expect("trial log")
        .contains("resuming from")
}

#[test]
fn sigint_leaves_the_trial_resumable_and_the_same_command_finishes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let sp = space(dir.path(), LR);
    let study = dir.path().join("study");
    let mut child = start_and_wait_for_checkpoint(&base, &sp, &study);
    // SIGINT to the tuner alone (not its group): it passes it on.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
    assert_eq!(states(&study), ["INTERRUPTED"]);
    // The study folder remembers its space, base config and storage.
    let (ok, out, err) =
        run(&["tune", "--study", s(&study), "--trials", "2", "--pruner", "none", "-q"]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(states(&study), ["COMPLETE", "COMPLETE"]);
    assert!(resumed(&study, "0000"), "trial 0 resumed from its checkpoint");
}

#[test]
fn kill_9_of_everything_then_the_same_command_resumes_the_trial() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let sp = space(dir.path(), LR);
    let study = dir.path().join("study");
    let mut child = start_and_wait_for_checkpoint(&base, &sp, &study);
    // A machine loss: the tuner, its driver and the run, all at once.
    // SAFETY: kill(2) on our own child's process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    let (ok, out, err) = text_of(tune(&base, &sp, &study, &["--trials", "2", "--pruner", "none"]));
    assert!(ok, "{out}\n{err}");
    assert_eq!(states(&study), ["COMPLETE", "COMPLETE"], "exactly 2 finished trials");
    assert!(resumed(&study, "0000"), "trial 0 resumed from its checkpoint, not from zero");
}

#[test]
fn two_tuners_share_a_postgresql_study_without_running_a_trial_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(pg) = common::postgres::PgServer::start(dir.path()) else {
        eprintln!("skipped: no PostgreSQL on this machine (make test installs it)");
        return;
    };
    let base = setup(dir.path());
    let sp = space(dir.path(), LR);
    // Two "machines": each its own study folder, one study in the database.
    let studies = [dir.path().join("a"), dir.path().join("b")];
    let children: Vec<_> = studies
        .iter()
        .enumerate()
        .map(|(i, study)| {
            let seed = i.to_string();
            let args = ["--storage", &pg.url, "--study-name", "shared", "--trials", "4"];
            tune(&base, &sp, study, &args)
                .args(["--seed", &seed, "--pruner", "none"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let (ok, out, err) = text(c.wait_with_output().expect("wait"));
        assert!(ok, "{out}\n{err}");
    }
    let (ok, out, err) = run(&[
        "tune",
        "--study",
        s(&studies[0]),
        "--report",
        "--storage",
        &pg.url,
        "--study-name",
        "shared",
        "-q",
    ]);
    assert!(ok, "{out}\n{err}");
    let rows = rows(&studies[0]);
    let numbers: Vec<&str> = rows.iter().map(|r| r["number"].as_str()).collect();
    assert_eq!(numbers, ["0", "1", "2", "3"], "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "COMPLETE"), "{rows:?}");
    // Each trial ran in exactly one of the two folders.
    for n in 0..4 {
        let ran: Vec<bool> = studies
            .iter()
            .map(|st| st.join(format!("trials/{n:04}/metrics.jsonl")).exists())
            .collect();
        assert_eq!(ran.iter().filter(|r| **r).count(), 1, "trial {n}: {ran:?}");
    }
    drop(pg);
}

#[test]
fn the_drivers_python_passes_its_unit_tests() {
    let out = common::python()
        .args(["-m", "unittest", "-q", "test_sipl_tune"])
        .current_dir(common::repo().join("tune/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("spawn python");
    let (ok, out, err) = text(out);
    assert!(ok, "{out}\n{err}");
}

#[test]
fn the_epoch_handshake_stops_a_run_at_the_epoch_boundary_checkpointed() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let run_dir = dir.path().join("run");
    let spawn = || {
        sipl()
            .args(["train", "--config", s(&base), "--run-dir", s(&run_dir), "-q"])
            .args(["--epoch-handshake", "--set", "run.checkpoint_each_epoch=false"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let mut child = spawn();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let v: serde_json::Value = serde_json::from_str(&first).expect("a JSON validation line");
    assert_eq!((v["epoch"].as_u64(), v["step"].as_u64()), (Some(1), Some(5)), "{first}");
    child.stdin.take().expect("stdin").write_all(b"stop\n").expect("answer");
    let (ok, _, err) = text(child.wait_with_output().expect("wait"));
    assert!(ok, "{err}");
    // Stopped after epoch 1, with a checkpoint there even though epochs do not checkpoint.
    assert_eq!(common::checkpoint_dirs(&run_dir), ["step-000000005"]);
    // Resumed with `continue` answers, it runs to its end from that checkpoint.
    let mut child = spawn();
    child.stdin.take().expect("stdin").write_all(b"continue\ncontinue\n").expect("answer");
    let (ok, out, err) = text(child.wait_with_output().expect("wait"));
    assert!(
        ok && err.contains("resuming from") && out.contains("done after 10 steps"),
        "{out}\n{err}"
    );
    // An answer that is neither is an error, not a guess.
    let other = dir.path().join("other");
    let mut child = sipl()
        .args(["train", "--config", s(&base), "--run-dir", s(&other), "-q", "--epoch-handshake"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"maybe\n").expect("answer");
    let (ok, _, err) = text(child.wait_with_output().expect("wait"));
    assert!(!ok && err.contains("expected `continue` or `stop`, read \"maybe\""), "{err}");
}

#[test]
fn a_downstream_search_on_two_cpu_slots_with_a_journal_storage() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let sp = space(dir.path(), LR);
    let study = dir.path().join("study");
    let journal = dir.path().join("journal.log");
    let storage = format!("journal:{}", s(&journal));
    let eval_data = dir.path().join("ds");
    let args = [
        "--trials",
        "2",
        "--devices",
        "cpu,cpu",
        "--storage",
        &storage,
        "--objective",
        "downstream",
        "--eval-data",
        s(&eval_data),
        "--eval-arg=--epochs=2",
        "--eval-arg=--input-size=32",
        "--eval-arg=--stratified=0.5",
        "--pruner",
        "none",
    ];
    let (ok, out, err) = text_of(tune(&base, &sp, &study, &args));
    assert!(ok, "{out}\n{err}");
    assert!(journal.exists(), "the study is in the journal file");
    let rows = rows(&study);
    assert_eq!(rows.len(), 2);
    for (n, r) in rows.iter().enumerate() {
        assert_eq!(r["state"], "COMPLETE", "{r:?}");
        // The value is the downstream evaluation's best held-out accuracy.
        let summary = study.join(format!("trials/{n:04}/eval/downstream-cached/summary.json"));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(summary).expect("summary"))
                .expect("json");
        let value: f64 = r["value"].parse().expect("a value");
        assert_eq!(Some(value), summary["best_val_accuracy"].as_f64(), "{r:?}");
    }
    assert!(out.contains("downstream objective"), "{out}");
}

#[test]
fn a_monitor_search_prunes_and_scores_on_the_monitors_knn_accuracy() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = setup(dir.path());
    let sp = space(dir.path(), LR);
    // Without [monitor] in the base config the objective is refused before any trial.
    let refused = dir.path().join("refused");
    let (ok, _, err) = text_of(tune(&base, &sp, &refused, &["--objective", "monitor"]));
    assert!(!ok && err.contains("[monitor]"), "{err}");
    assert!(!refused.join("trials").exists());
    // The training set itself, labelled, as the monitor set.
    let ds = dir.path().join("ds");
    let monitored = std::fs::read_to_string(&base).expect("base")
        + &format!(
            "[monitor]\ndata = {:?}\ninput_size = 32\nk = 3\nstratified = 0.25\nbatch = 16\n",
            s(&ds)
        );
    std::fs::write(&base, monitored).expect("base");
    let study = dir.path().join("study");
    let args = ["--trials", "2", "--objective", "monitor", "--pruner", "median"];
    let (ok, out, err) = text_of(tune(&base, &sp, &study, &args));
    assert!(ok, "{out}\n{err}");
    for (n, r) in rows(&study).iter().enumerate() {
        assert_eq!(r["state"], "COMPLETE", "{r:?}");
        let lines = sipl_train::trainer::metrics::read(&study.join(format!("trials/{n:04}")));
        // The step-0 figure (the untrained encoder's) is a baseline, not a candidate.
        let best = sipl_train::trainer::metrics::monitors(&lines)
            .filter(|m| m.step > 0)
            .map(|m| m.knn_accuracy)
            .fold(f64::NAN, f64::max);
        let value: f64 = r["value"].parse().expect("a value");
        assert_eq!(value, best, "the trial's value is its monitor's best: {r:?}");
    }
    assert!(out.contains("monitor objective"), "{out}");
}
