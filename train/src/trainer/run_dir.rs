//! The run directory: the resolved config (saved once, compared on resume), the identity of
//! the dataset it trains on (compared on resume), `metrics.jsonl` (cut back to the resumed
//! step so a resumed run reads as one), and weight files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;
use super::metrics::{self, METRICS, MetricsLine};
use crate::config::TrainConfig;
use crate::tensorboard::{EventWriter, TB_DIR};

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
    #[serde(with = "sipl_shards::names::stored_path")]
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
    /// What changed since the saved config that a resume allows silently but says (a
    /// `[monitor]` added, removed or changed; `run.best_by`).
    pub notes: Vec<String>,
    /// `[monitor]` measures another way than the saved config's (its best starts over).
    pub monitor_changed: bool,
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
    let mut notes = Vec::new();
    let mut monitor_changed = false;
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
        notes = untracked_changes(&old, config);
        monitor_changed = old.monitor.is_some() && old.monitor != config.monitor;
    }
    let dataset_replaced = check_dataset(run, data, force)?;
    sipl_shards::write_atomic(&path, config.to_toml().as_bytes())
        .map_err(|e| TrainError::RunDir { path, reason: e.to_string() })?;
    let record = run.join(DATASET);
    let text = serde_json::to_string_pretty(data).expect("record serialises") + "\n";
    sipl_shards::write_atomic(&record, text.as_bytes())
        .map_err(|e| TrainError::RunDir { path: record, reason: e.to_string() })?;
    Ok(Claim { lock: held, dataset_replaced, notes, monitor_changed })
}

/// The changes from `old` to `new` that leave the trajectory alone, as sentences.
fn untracked_changes(old: &TrainConfig, new: &TrainConfig) -> Vec<String> {
    let mut notes = Vec::new();
    let same = "it does not change the trajectory";
    match (&old.monitor, &new.monitor) {
        (None, Some(m)) => notes.push(format!(
            "note: [monitor] added since the run started ({}; {same}): measured from here on",
            m.data.display()
        )),
        (Some(_), None) => notes.push(format!(
            "note: [monitor] removed since the run started ({same}): no more monitor lines"
        )),
        (Some(a), Some(b)) if a != b => notes.push(format!(
            "note: [monitor] changed since the run started ({same}): lines from here on are not comparable with earlier ones"
        )),
        _ => {}
    }
    if old.run.best_by != new.run.best_by {
        notes.push(format!(
            "note: run.best_by is now {} (was {}): best.safetensors is replaced at the next better figure of that kind",
            new.run.best_by.name(), old.run.best_by.name()
        ));
    }
    notes
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
    // Only what the trajectory depends on: the refusal is about those.
    let (a, b) = (settings_of_text(&a.trajectory_toml()), settings_of_text(&b.trajectory_toml()));
    describe(&changes(&a, &b), "settings differ")
}

/// Appends metric lines to `metrics.jsonl` and their scalars to TensorBoard event files in
/// `RUN/tb/`. On open, keeps what the checkpoint the run resumes from already accounts for,
/// and starts a new event file that tells TensorBoard to drop the rest.
pub struct Metrics {
    file: std::fs::File,
    path: PathBuf,
    events: EventWriter,
}

/// Where a run (re)starts: the step of its checkpoint, and whether that checkpoint was taken
/// after an epoch's end lines (its batch is 0) or before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub step: u64,
    pub at_epoch_start: bool,
    /// Epochs the checkpoint has completed (each has its validation line).
    pub epochs: u64,
    /// `run.log_every`: a training line is written at least this often.
    pub log_every: u64,
}

/// What `metrics.jsonl` lacks of what the checkpoint `r` accounts for (lines lost before they
/// reached the disk, or removed by hand), in words; `None` when nothing is missing.
pub fn missing_lines(kept: &[MetricsLine], r: Resume) -> Option<String> {
    let validated: Vec<u64> = kept
        .iter()
        .filter_map(|l| match l {
            MetricsLine::Validation(v) => Some(v.epoch),
            _ => None,
        })
        .collect();
    let epochs: Vec<String> =
        (1..=r.epochs).filter(|e| !validated.contains(e)).map(|e| e.to_string()).collect();
    let last_train = kept
        .iter()
        .filter(|l| matches!(l, MetricsLine::Train(_)))
        .map(MetricsLine::step)
        .max()
        .unwrap_or(0);
    let mut gaps = Vec::new();
    if !epochs.is_empty() {
        gaps.push(format!("the validation of epoch(s) {}", epochs.join(", ")));
    }
    if last_train + r.log_every.max(1) <= r.step {
        gaps.push(format!("the training lines after step {last_train}"));
    }
    (!gaps.is_empty()).then(|| gaps.join(" and "))
}

impl Metrics {
    /// `resume`: the checkpoint the run continues from; `None` for a run that starts (again)
    /// from step 0, which keeps no line of an earlier attempt.
    ///
    /// Kept: the lines before the checkpoint's step; at its step the training line, and the
    /// validation and monitor lines only when the checkpoint was taken after them (at an
    /// epoch's start). Everything dropped is measured again, identically. The new event file
    /// purges from the first step not kept, and repeats the kept lines at that step.
    pub fn open(run: &Path, resume: Option<Resume>) -> Result<Self, TrainError> {
        let path = run.join(METRICS);
        let kept: Vec<MetricsLine> = match resume {
            None => Vec::new(),
            Some(r) => metrics::read(run)
                .into_iter()
                .filter(|l| {
                    l.step() < r.step
                        || (l.step() == r.step
                            && (r.at_epoch_start || matches!(l, MetricsLine::Train(_))))
                })
                .collect(),
        };
        if let Some(gaps) = resume.and_then(|r| missing_lines(&kept, r)) {
            eprintln!(
                "warning: {} lacks {gaps}, which its checkpoint at step {} accounts for (lost \
                 before they reached the disk, or removed): the run goes on, but its curves and \
                 the pretext best a report reads from them miss those lines",
                path.display(),
                resume.map_or(0, |r| r.step)
            );
        }
        let text: String = kept.iter().map(|l| format!("{}\n", l.to_json())).collect();
        sipl_shards::write_atomic(&path, text.as_bytes())
            .map_err(|e| TrainError::RunDir { path: path.clone(), reason: e.to_string() })?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        let tb = run.join(TB_DIR);
        let earlier = std::fs::read_dir(&tb).is_ok_and(|mut d| d.next().is_some());
        let purge_from = match resume {
            Some(r) if r.at_epoch_start => Some(r.step + 1),
            Some(r) => Some(r.step),
            None => earlier.then_some(0),
        };
        let events = EventWriter::create(&tb, purge_from).map_err(|e| TrainError::io(&tb, e))?;
        let mut m = Metrics { file, path, events };
        for line in kept.iter().filter(|l| purge_from.is_some_and(|p| l.step() >= p)) {
            m.write_events(line)?;
        }
        Ok(m)
    }

    /// Flushes the lines written so far to the disk (`fdatasync`).
    pub fn sync(&self) -> Result<(), TrainError> {
        self.file.sync_data().map_err(|e| TrainError::io(&self.path, e))
    }

    pub fn write(&mut self, line: &MetricsLine) -> Result<(), TrainError> {
        writeln!(self.file, "{}", line.to_json()).map_err(|e| TrainError::io(&self.path, e))?;
        self.write_events(line)
    }

    fn write_events(&mut self, line: &MetricsLine) -> Result<(), TrainError> {
        let scalars = line.scalars();
        let values: Vec<(&str, f64)> = scalars.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.events.scalars(line.step(), &values).map_err(|e| TrainError::io(self.events.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::metrics::parse;

    #[test]
    fn missing_lines_name_the_epochs_and_steps_a_checkpoint_accounts_for() {
        let train = |step: u64| {
            format!(
                r#"{{"accuracy":0.5,"ce":[1.0],"epoch":0,"loss":1.0,"lr":0.001,"samples_per_s":1.0,"step":{step},"sym_kl":0.0}}"#
            )
        };
        let val = |epoch: u64, step: u64| {
            format!(r#"{{"epoch":{epoch},"step":{step},"val_accuracy":0.5}}"#)
        };
        let r = Resume { step: 8, at_epoch_start: false, epochs: 2, log_every: 2 };
        let whole = [train(2), train(4), val(1, 4), train(6), train(8), val(2, 8)].join("\n");
        assert_eq!(parse(&whole).len(), 6, "the lines parse");
        assert_eq!(missing_lines(&parse(&whole), r), None);
        let cut = [train(2), val(1, 4)].join("\n");
        assert_eq!(
            missing_lines(&parse(&cut), r).as_deref(),
            Some("the validation of epoch(s) 2 and the training lines after step 2")
        );
    }
}
