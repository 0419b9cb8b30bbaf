//! Errors that stop an ingest run (a bad *image* is not one: it is rejected and recorded).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("input root {path}: {reason}")]
    Root { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Annotations { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("output {path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error("invalid settings: {0}")]
    Settings(String),
    /// A setting outside its range, named as `sipl ingest`'s flag.
    #[error(transparent)]
    Range(#[from] sipl_limits::RangeError),
    #[error(transparent)]
    Shards(#[from] sipl_shards::ShardError),
}

impl IngestError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
