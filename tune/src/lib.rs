//! `sipl tune`: hyper-parameter search over `sipl train` runs with Optuna.
//!
//! sipl owns the runs, Optuna (the Python package, in the project's venv) owns sampling,
//! pruning and storage. This crate checks everything a search needs before any trial
//! ([`space`], [`study`]), runs the small Python driver that talks to Optuna ([`driver`],
//! `python/sipl_tune.py`), and turns the study into files ([`report`], [`plots`]):
//!
//! ```text
//! DIR/space.toml  base.toml     the resolved search space and base config (checked on resume)
//! DIR/study.db                  Optuna's SQLite storage (default; any Optuna storage URL works)
//! DIR/study.json                the study's storage and name: the folder belongs to that study
//! DIR/trials/NNNN/              each trial: an ordinary, resumable `sipl train` run directory
//! DIR/trials/NNNN.log           its commands' standard error
//! DIR/trials.csv  best.toml     one row per trial; the base config with the best parameters
//! DIR/history.png importances.png
//! ```

pub mod driver;
pub mod plots;
pub mod report;
pub mod space;
pub mod storage;
pub mod study;

pub use driver::{Objective, Pruner, Request, Sampler};
pub use space::{Param, Space};

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// The search space file: unreadable, or a key or range that cannot be searched.
    #[error("search space {0}")]
    Space(String),
    /// The study folder disagrees with this command (space, base config).
    #[error("study {0}")]
    Study(String),
    /// The Python driver (Optuna) failed; its message.
    #[error("{0}")]
    Driver(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Config(#[from] sipl_train::config::ConfigError),
    #[error(transparent)]
    Plot(#[from] sipl_eval::EvalError),
}
