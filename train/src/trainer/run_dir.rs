//! The run directory: the resolved config (saved once, compared on resume), the identity of
//! the dataset it trains on (compared on resume), `metrics.jsonl` (cut back to the resumed
//! step so a resumed run reads as one), and weight files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;
use super::metrics::{self, METRICS, MetricsLine};
use crate::config::TrainConfig;

pub const CONFIG: &str = "config.toml";
/// The dataset a run trains on: its path and identity (the hash of its `dataset.json`).
pub const DATASET: &str = "data.json";
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

/// The dataset a run trains on, as `RUN/data.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatasetRecord {
    pub path: PathBuf,
    /// [`sipl_shards::identity`]: the xxh3-64 of the set's `dataset.json`.
    pub identity: String,
    pub images: usize,
}

/// What claiming a run directory found.
pub struct Claim {
    pub lock: RunLock,
    /// The run was made on another dataset and `--force` continues it on this one.
    pub dataset_replaced: bool,
}

/// Locks the run directory, then saves `config` as `RUN/config.toml` and `data` as
/// `RUN/data.json`, or checks them against the ones already there: a different trajectory
/// or a different dataset (same path re-ingested with other images, or another path) is
/// refused unless `force`.
pub fn claim(
    run: &Path,
    config: &TrainConfig,
    data: &DatasetRecord,
    force: bool,
) -> Result<Claim, TrainError> {
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
    let dataset_replaced = check_dataset(run, data, force)?;
    sipl_shards::write_atomic(&path, config.to_toml().as_bytes())
        .map_err(|e| TrainError::RunDir { path, reason: e.to_string() })?;
    let record = run.join(DATASET);
    let text = serde_json::to_string_pretty(data).expect("record serialises") + "\n";
    sipl_shards::write_atomic(&record, text.as_bytes())
        .map_err(|e| TrainError::RunDir { path: record, reason: e.to_string() })?;
    Ok(Claim { lock: held, dataset_replaced })
}

/// Compares `data` with the dataset the run recorded; true when it differs and `force` lets
/// the run continue. A run directory from before the record existed is taken as it is.
fn check_dataset(run: &Path, data: &DatasetRecord, force: bool) -> Result<bool, TrainError> {
    let path = run.join(DATASET);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(false) };
    let old: DatasetRecord = serde_json::from_str(&text).map_err(|e| TrainError::RunDir {
        path: path.clone(),
        reason: format!("unreadable dataset record: {e}"),
    })?;
    if old.identity == data.identity {
        return Ok(false);
    }
    if force {
        return Ok(true);
    }
    Err(TrainError::RunDir {
        path: run.to_owned(),
        reason: format!(
            "was trained on another dataset: {} (identity {}, {} images), and data.path is now {} \
             (identity {}, {} images); its split, sample order and best validation accuracy \
             belong to the first. Train on that dataset, use a new --run-dir, or pass --force to \
             continue on this one (best validation accuracy then starts over)",
            old.path.display(),
            old.identity,
            old.images,
            data.path.display(),
            data.identity,
            data.images
        ),
    })
}

/// The settings of `b` that differ from `a`'s, `optim.lr: 5e-5 -> 0.001`.
fn differences(a: &TrainConfig, b: &TrainConfig) -> String {
    use sipl_limits::changes::{changes, describe, settings_of_text};
    let (a, b) = (settings_of_text(&a.to_toml()), settings_of_text(&b.to_toml()));
    describe(&changes(&a, &b), "settings differ")
}

/// Appends metric lines; on open, drops lines past `keep_through_step`.
pub struct Metrics {
    file: std::fs::File,
    path: PathBuf,
}

impl Metrics {
    pub fn open(run: &Path, keep_through_step: u64) -> Result<Self, TrainError> {
        let path = run.join(METRICS);
        let kept: String = metrics::read(run)
            .iter()
            .filter(|l| l.step() <= keep_through_step)
            .map(|l| format!("{}\n", l.to_json()))
            .collect();
        sipl_shards::write_atomic(&path, kept.as_bytes())
            .map_err(|e| TrainError::RunDir { path: path.clone(), reason: e.to_string() })?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(Metrics { file, path })
    }

    pub fn write(&mut self, line: &MetricsLine) -> Result<(), TrainError> {
        writeln!(self.file, "{}", line.to_json()).map_err(|e| TrainError::io(&self.path, e))
    }
}
