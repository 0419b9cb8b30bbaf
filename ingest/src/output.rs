//! The output directory's life cycle: refuse to clobber a dataset made with other settings,
//! recognise a finished one, and restart cleanly after an interrupted run.
//!
//! While a run is in progress, `ingest.json` holds its settings; `dataset.json` is written
//! last and `ingest.json` removed after it, so a directory with `dataset.json` is complete.

use std::path::Path;

use sipl_shards::format::{DATASET_FILE, MANIFEST_FILE, SHARD_DIR};
use sipl_shards::{DatasetMeta, fingerprint};

use crate::error::{IngestError, Result};

/// The in-progress marker.
pub const PROGRESS_FILE: &str = "ingest.json";

/// What to do with the output directory.
#[derive(Debug)]
pub enum Prepared {
    /// A complete dataset with the same settings is already there: nothing to do.
    AlreadyComplete(Box<DatasetMeta>),
    /// The directory is ready and marked in progress.
    Ready,
}

/// Readies `out` for a run with `settings`.
pub fn prepare(out: &Path, settings: &serde_json::Value, force: bool) -> Result<Prepared> {
    let err = |reason: String| IngestError::Output { path: out.to_owned(), reason };
    if out.exists() && !out.is_dir() {
        return Err(err("exists and is not a directory".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| IngestError::io(out, e))?;
    let ours = [DATASET_FILE, MANIFEST_FILE, SHARD_DIR, PROGRESS_FILE];
    let foreign: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| IngestError::io(out, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !ours.contains(&n.as_str()) && !n.ends_with(".tmp"))
        .collect();
    if !foreign.is_empty() {
        return Err(err(format!(
            "holds files that are not a sipl dataset ({}); choose an empty or new directory",
            foreign.join(", ")
        )));
    }
    let wanted = fingerprint(settings);
    if out.join(DATASET_FILE).exists() {
        let meta = DatasetMeta::load(out)?;
        let same = meta.settings_fingerprint == wanted || same_pixels(&meta.settings, settings);
        if same && !force {
            return Ok(Prepared::AlreadyComplete(Box::new(meta)));
        }
        if !force {
            return Err(err(format!(
                "holds a complete dataset made with other settings ({}); pass --force to replace it",
                differences(&meta.settings, settings)
            )));
        }
    } else if let Ok(text) = std::fs::read_to_string(out.join(PROGRESS_FILE)) {
        let previous: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if fingerprint(&previous) != wanted && !same_pixels(&previous, settings) && !force {
            return Err(err(format!(
                "holds an interrupted ingest with other settings ({}); pass --force to replace it",
                differences(&previous, settings)
            )));
        }
    } else if (out.join(SHARD_DIR).exists() || out.join(MANIFEST_FILE).exists()) && !force {
        return Err(err("holds shards of unknown origin; pass --force to replace them".into()));
    }
    clear(out)?;
    let text = serde_json::to_string_pretty(settings).expect("settings serialise");
    sipl_shards::write_atomic(&out.join(PROGRESS_FILE), text.as_bytes())?;
    std::fs::create_dir_all(out.join(SHARD_DIR)).map_err(|e| IngestError::io(out, e))?;
    Ok(Prepared::Ready)
}

/// Removes our files, `dataset.json` first so the directory stops claiming completeness.
fn clear(out: &Path) -> Result<()> {
    for name in [DATASET_FILE, MANIFEST_FILE, PROGRESS_FILE] {
        let p = out.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| IngestError::io(&p, e))?;
        }
    }
    let shards = out.join(SHARD_DIR);
    if shards.exists() {
        std::fs::remove_dir_all(&shards).map_err(|e| IngestError::io(&shards, e))?;
    }
    Ok(())
}

/// Marks the run finished (after `dataset.json` is on disk).
pub fn finish(out: &Path) -> Result<()> {
    let p = out.join(PROGRESS_FILE);
    std::fs::remove_file(&p).map_err(|e| IngestError::io(&p, e))
}

/// Settings that change how the pixels are stored, not which pixels: a set made with other
/// values of these alone reads back the same, so it counts as complete (`--force` rewrites
/// it). The zstd level's default changed from 3 to 1 for decompression speed; sets made at 3
/// stay complete.
const STORAGE_ONLY: [&str; 1] = ["zstd_level"];

/// Whether two settings records differ at most in [`STORAGE_ONLY`] fields.
fn same_pixels(old: &serde_json::Value, new: &serde_json::Value) -> bool {
    let content = |v: &serde_json::Value| {
        let mut m = v.as_object().cloned();
        m.iter_mut().for_each(|m| STORAGE_ONLY.iter().for_each(|k| drop(m.remove(*k))));
        // A root recorded by an earlier sipl as written (`img/`) is the same root.
        if let Some(root) = m.as_mut().and_then(|m| m.get_mut("root"))
            && let Some(text) = root.as_str()
            && let Ok(normal) = crate::settings::normal_root(std::path::Path::new(text))
        {
            *root = serde_json::Value::String(normal.to_string_lossy().into_owned());
        }
        m
    };
    let old = content(old);
    old.is_some() && old == content(new)
}

/// "resize: 256 -> 64, crop: 224 -> 64" for the fields that differ.
fn differences(old: &serde_json::Value, new: &serde_json::Value) -> String {
    use sipl_limits::changes::{changes, describe};
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return "unreadable settings".into();
    };
    let pairs = |m: &serde_json::Map<String, serde_json::Value>| -> Vec<(String, String)> {
        m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    };
    describe(&changes(&pairs(o), &pairs(n)), "format changed")
}
