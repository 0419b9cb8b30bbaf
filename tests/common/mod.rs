//! Helpers for the end-to-end CLI tests: run the real `sipl` binary and the project's Python.
#![allow(dead_code)]

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub fn sipl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipl"))
}

/// `sipl` with faults injected into training from `SIPL_FAULT_*` variables (see
/// src/bin/sipl-fault-harness.rs); the user's binary reads none of them.
pub fn sipl_with_faults(faults: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sipl-fault-harness"));
    c.envs(faults.iter().copied());
    c
}

/// Runs `sipl ARGS`, returning (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = sipl().args(args).output().expect("spawn sipl");
    text(out)
}

pub fn text(out: Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's virtual environment Python (made by `make setup`).
pub fn python() -> Command {
    let py = repo().join(".venv/bin/python");
    assert!(py.exists(), "{} missing: run `make setup` first", py.display());
    Command::new(py)
}

/// Checks a dataset with pyarrow and Pillow only; returns the script's JSON report.
pub fn check_with_pyarrow(dir: &Path, root: Option<&Path>) -> serde_json::Value {
    let mut cmd = python();
    cmd.arg(repo().join("tests/interop/check_dataset.py")).arg(dir);
    if let Some(r) = root {
        cmd.arg("--root").arg(r);
    }
    let (ok, stdout, stderr) = text(cmd.output().expect("spawn python"));
    assert!(ok, "pyarrow check failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).expect("json report")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A 48-image 32² dataset and a config training SIPLv1 on it for 12 steps (3 epochs); the
/// `sipl train` arguments without `--run-dir`.
pub fn setup_tiny_training(dir: &Path) -> (PathBuf, Vec<String>) {
    let images = dir.join("images");
    let (ok, _, err) =
        run(&["synth", "--out", s(&images), "--classes", "2", "--per-class", "24", "--size", "40"]);
    assert!(ok, "{err}");
    let data = dir.join("ds");
    let (ok, _, err) =
        run(&["ingest", "folder", s(&images), "--out", s(&data), "--resize", "32", "--crop", "32"]);
    assert!(ok, "{err}");
    let config = dir.join("tiny.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\npath = {:?}\nval_fraction = 0.125\nworkers = 1\n[model]\nscheme = \"siplv1\"\n\
             [optim]\nlr = 1e-4\nbatch_size = 8\nepochs = 3\nmax_steps = 12\n\
             [run]\ndevice = \"cpu\"\ncheckpoint_every = 2\nkeep_checkpoints = 2\nlog_every = 1\nthreads = 1\n",
            s(&data)
        ),
    )
    .expect("config");
    let args = vec!["train".into(), "--config".into(), s(&config).into(), "-q".into()];
    (config, args)
}

/// `sipl ARGS --run-dir RUN EXTRA`.
pub fn train_in(args: &[String], run_dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let out =
        sipl().args(args).args(["--run-dir", s(run_dir)]).args(extra).output().expect("spawn");
    text(out)
}

/// Waits until the run's checkpoint of `step` exists; fails if training ends first or takes
/// more than 120 s.
pub fn wait_for_checkpoint(child: &mut Child, run_dir: &Path, step: u64) {
    let want = run_dir.join(format!("checkpoints/step-{step:09}"));
    let start = Instant::now();
    while !want.exists() {
        assert!(child.try_wait().expect("wait").is_none(), "training ended before the checkpoint");
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The names in `RUN/checkpoints/`, sorted.
pub fn checkpoint_dirs(run_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run_dir.join("checkpoints"))
        .expect("checkpoints")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The bytes of `RUN/final.safetensors`.
pub fn final_weights(run_dir: &Path) -> Vec<u8> {
    std::fs::read(run_dir.join("final.safetensors")).expect("final weights")
}
