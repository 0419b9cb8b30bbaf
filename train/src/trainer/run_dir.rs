//! The run directory: the resolved config (saved once, compared on resume), `metrics.jsonl`
//! (cut back to the resumed step so a resumed run reads as one), and weight files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;
use crate::config::TrainConfig;

pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.jsonl";
const LOCK: &str = ".lock";

/// An exclusive lock on a run directory (an advisory `flock` on `RUN/.lock`, which the
/// kernel releases when the process dies, even by SIGKILL). Held for the whole run. Like any
/// `flock`, it does not reach across machines on file systems without lock support (NFS
/// mounted `nolock`).
pub struct RunLock {
    _file: std::fs::File,
}

/// Takes the run directory's lock, or fails naming the process that holds it: two trainers
/// writing one directory would interleave checkpoints and metrics.
fn lock(run: &Path) -> Result<RunLock, TrainError> {
    let path = run.join(LOCK);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| TrainError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = if holder.trim().is_empty() { "unknown" } else { holder.trim() };
            return Err(TrainError::RunDir {
                path: run.to_owned(),
                reason: format!(
                    "is in use by another `sipl train` (pid {holder}); wait for it or stop it first"
                ),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(TrainError::io(&path, e)),
    }
    file.set_len(0).map_err(|e| TrainError::io(&path, e))?;
    write!(file, "{}", std::process::id()).map_err(|e| TrainError::io(&path, e))?;
    Ok(RunLock { _file: file })
}

/// Locks the run directory, then saves `config` as `RUN/config.toml`, or checks it against
/// the one already there: a different trajectory is refused unless `force`.
pub fn claim(run: &Path, config: &TrainConfig, force: bool) -> Result<RunLock, TrainError> {
    std::fs::create_dir_all(run).map_err(|e| TrainError::io(run, e))?;
    let held = lock(run)?;
    let path = run.join(CONFIG);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let old = TrainConfig::parse(&text, &[]).map_err(|e| TrainError::RunDir {
            path: path.clone(),
            reason: format!("unreadable saved config: {e}"),
        })?;
        if old.trajectory_fingerprint() != config.trajectory_fingerprint() && !force {
            return Err(TrainError::RunDir {
                path: run.to_owned(),
                reason: format!(
                    "holds a run with another configuration ({}); resume with the same config, or pass --force",
                    differences(&old, config)
                ),
            });
        }
    }
    sipl_shards::write_atomic(&path, config.to_toml().as_bytes())
        .map_err(|e| TrainError::RunDir { path, reason: e.to_string() })?;
    Ok(held)
}

fn differences(a: &TrainConfig, b: &TrainConfig) -> String {
    let (ta, tb) = (a.to_toml(), b.to_toml());
    let la: Vec<&str> = ta.lines().collect();
    let diffs: Vec<String> = tb
        .lines()
        .filter(|l| !la.contains(l) && l.contains('='))
        .map(|l| l.trim().to_owned())
        .collect();
    if diffs.is_empty() { "settings differ".into() } else { diffs.join(", ") }
}

/// Appends metric lines; on open, drops lines past `keep_through_step`.
pub struct Metrics {
    file: std::fs::File,
    path: PathBuf,
}

impl Metrics {
    pub fn open(run: &Path, keep_through_step: u64) -> Result<Self, TrainError> {
        let path = run.join(METRICS);
        let kept: String = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s <= keep_through_step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        sipl_shards::write_atomic(&path, kept.as_bytes())
            .map_err(|e| TrainError::RunDir { path: path.clone(), reason: e.to_string() })?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(Metrics { file, path })
    }

    pub fn write(&mut self, line: serde_json::Value) -> Result<(), TrainError> {
        writeln!(self.file, "{line}").map_err(|e| TrainError::io(&self.path, e))
    }
}
