//! The evaluation side of sipl: frozen pretext encoders put to use outside the pretext task.
//!
//! So far: [`export`], a torchvision-compatible ResNet-18 state dict from a run. Downstream
//! training, embeddings and the t-SNE study arrive with the evaluation issue. This crate uses
//! `sipl-train` only through its model and checkpoint modules.
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
