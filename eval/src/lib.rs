//! The evaluation side of sipl: frozen pretext encoders put to use outside the pretext task.
//!
//! [`export`] (a torchvision-compatible ResNet-18 state dict from a run), [`downstream`] (the
//! classification head on frozen features, cached or faithful), [`knn`], [`embed`], [`tsne`]
//! (the style-invariance study), [`stats`] (intervals and paired tests) and [`report`] (Table 4
//! and the figures). [`outputs`] owns the files an evaluation writes. From `sipl-train` this
//! crate uses the model, checkpoints, Adam, a run's config and its metrics.
//!
//! ```no_run
//! # fn main() -> Result<(), sipl_eval::EvalError> {
//! let weights = sipl_eval::export::run_weights("runs/siplv1".as_ref(), sipl_eval::export::Which::Best)?;
//! sipl_eval::export::export_encoder(&weights, "encoder.safetensors".as_ref())?;
//! # Ok(()) }
//! ```

pub mod autoaugment;
pub mod downstream;
pub mod embed;
pub mod export;
pub mod features;
pub mod knn;
pub mod monitor;
pub mod monitor_report;
pub mod outputs;
pub mod plot;
pub mod predictions;
pub mod report;
mod report_md;
pub mod results;
pub mod split;
pub mod stats;
pub mod tsne;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("run directory {path}: {reason}")]
    Run { path: PathBuf, reason: String },
    #[error(transparent)]
    Checkpoint(#[from] sipl_train::checkpoint::CheckpointError),
    /// A shard or dataset that cannot be read (names the file and row).
    #[error(transparent)]
    Shard(#[from] sipl_shards::ShardError),
    #[error("data: {0}")]
    Data(String),
    /// A file that cannot be read or written.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file that does not parse as what it should hold.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A Parquet file that cannot be written or read.
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A file whose content is not in its format.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("plot: {0}")]
    Plot(String),
    /// An option outside its range (named as `sipl eval` names it).
    #[error(transparent)]
    Range(#[from] sipl_limits::RangeError),
    #[error(
        "the head's training loss is {value} in epoch {epoch}: stopping (no accuracy is reported for a diverged head; lower --lr)"
    )]
    NonFinite { epoch: usize, value: f64 },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
