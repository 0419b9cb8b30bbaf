//! Errors of the shard format: every variant names the file (and row) that failed.

use std::path::PathBuf;

/// What can go wrong reading, writing or verifying a dataset directory.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid Arrow IPC shard: {reason}")]
    BadShard { path: PathBuf, reason: String },
    #[error("{path}: row {row}: {reason}")]
    BadRow { path: PathBuf, row: usize, reason: String },
    #[error("{path}: {reason}")]
    BadMeta { path: PathBuf, reason: String },
    #[error("{path}: format version {found}, this build reads version {expected}")]
    Version { path: PathBuf, found: u32, expected: u32 },
    #[error("{dir}: not a complete dataset (no dataset.json); was ingest interrupted?")]
    Incomplete { dir: PathBuf },
    #[error("{path}: manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
}

impl ShardError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ShardError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = ShardError> = std::result::Result<T, E>;

/// The message of a caught panic (a third-party decoder's), for an error.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("the decoder panicked")
}
