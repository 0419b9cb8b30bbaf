//! `dataset.json`: what a complete dataset directory holds and how it was made. Written last.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, ShardError};
use crate::format::{DATASET_FILE, FORMAT_VERSION};
use crate::writer::ShardInfo;

/// A file recorded with its size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub file: String,
    pub bytes: u64,
    pub xxh3: String,
}

/// Counts over every source file the ingest saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub seen: usize,
    pub kept: usize,
    pub rejected: usize,
    /// Rejections per reason code (`not-rgb`, `truncated`, ...).
    pub rejected_by_reason: BTreeMap<String, usize>,
}

/// The contents of `dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub format_version: u32,
    pub created_by: String,
    /// The settings that produced the set (source, preprocessing, compression, shard size),
    /// owned by the ingest side; the shard format only stores and compares them.
    pub settings: serde_json::Value,
    /// Hash of `settings`: a later run with other settings must not overwrite this set.
    pub settings_fingerprint: String,
    /// `classes[label]` is the class name (e.g. a WordNet id); empty when unlabelled.
    pub classes: Vec<String>,
    pub counts: Counts,
    /// Bytes of the kept and rejected source files together.
    pub source_bytes: u64,
    pub shards: Vec<ShardInfo>,
    pub manifest: FileInfo,
}

impl DatasetMeta {
    pub fn new(settings: serde_json::Value) -> Self {
        DatasetMeta {
            format_version: FORMAT_VERSION,
            created_by: format!("sipl-shards {}", env!("CARGO_PKG_VERSION")),
            settings_fingerprint: fingerprint(&settings),
            settings,
            classes: Vec::new(),
            counts: Counts::default(),
            source_bytes: 0,
            shards: Vec::new(),
            manifest: FileInfo { file: String::new(), bytes: 0, xxh3: String::new() },
        }
    }

    /// Reads `DIR/dataset.json`; a missing file means the set is incomplete.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(DATASET_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ShardError::Incomplete { dir: dir.to_owned() });
            }
            Err(e) => return Err(ShardError::io(&path, e)),
        };
        let version: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ShardError::BadMeta { path: path.clone(), reason: e.to_string() })?;
        let found = version.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(ShardError::Version { path, found, expected: FORMAT_VERSION });
        }
        serde_json::from_value(version)
            .map_err(|e| ShardError::BadMeta { path, reason: e.to_string() })
    }

    /// Writes `DIR/dataset.json` atomically; call it after everything else is on disk.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| ShardError::BadMeta {
            path: dir.join(DATASET_FILE),
            reason: e.to_string(),
        })?;
        text.push('\n');
        crate::fsutil::write_atomic(&dir.join(DATASET_FILE), text.as_bytes())
    }

    pub fn total_rows(&self) -> usize {
        self.shards.iter().map(|s| s.rows).sum()
    }

    pub fn shard_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }
}

/// A dataset's identity: the xxh3-64 (hex) of its `dataset.json` bytes. `dataset.json` lists
/// the size and hash of every shard and of the manifest, so any re-ingest that changes what
/// the set holds (other images, other settings, other labels) changes it.
pub fn identity(dir: &Path) -> Result<String> {
    let path = dir.join(DATASET_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(crate::format::xxh3_hex(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ShardError::Incomplete { dir: dir.to_owned() })
        }
        Err(e) => Err(ShardError::io(&path, e)),
    }
}

/// A stable hash of a settings value (serde_json keeps object keys sorted).
pub fn fingerprint(settings: &serde_json::Value) -> String {
    crate::format::xxh3_hex(settings.to_string().as_bytes())
}
