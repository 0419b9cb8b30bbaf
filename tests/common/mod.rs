//! Helpers for the end-to-end CLI tests: run the real `sipl` binary and the project's Python.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn sipl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipl"))
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
