//! The hook through which a run watches a downstream signal while it trains. The trainer owns
//! when (every `monitor.every` epochs and at the run's end, after validation and before the
//! checkpoint) and what is recorded (a [`MonitorLine`]); what is measured is the hook's: the
//! command that starts the run fills it in (`sipl train` with `sipl_eval::monitor`'s kNN),
//! so the trainer needs nothing from the evaluation crate above it.
//!
//! A measurement must change nothing the run depends on: it reads the encoder with BatchNorm
//! in eval mode and without gradients, and draws from no random generator, so a run trains
//! the same weights with the monitor on or off and resumes bit-exactly either way.
//!
//! With several ranks every rank measures the whole monitor set (BatchNorm statistics are
//! averaged over the ranks first, so all hold the same encoder and get the same figure; no
//! collective is needed while they embed); rank 0 records it.

use tch::Device;

use super::TrainError;
use super::metrics::MonitorLine;
use crate::model::PretextModel;

/// What one measurement found: the kNN accuracy of the held-out images, with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnFigure {
    pub k: u64,
    pub correct: u64,
    pub held_out: u64,
    pub train_images: u64,
    /// The 95% Wilson score interval of `correct / held_out`.
    pub low: f64,
    pub high: f64,
}

/// A downstream measurement of the encoder being trained.
pub trait Monitor: Send {
    /// Epochs between measurements (the run's end is always measured).
    fn every(&self) -> u64;

    /// Measures `model` on `device`: BatchNorm in eval mode, no gradients, no random draw.
    ///
    /// # Errors
    /// An image of the monitor set that no longer decodes, or a device failure.
    fn measure(&mut self, model: &PretextModel, device: Device) -> Result<KnnFigure, TrainError>;
}

/// The boxed hook a [`super::TrainJob`] carries.
pub type MonitorHook = Box<dyn Monitor>;

/// The metrics line of figure `f` measured at (`epoch`, `step`) in `seconds`.
pub fn line(f: KnnFigure, epoch: u64, step: u64, seconds: f64) -> MonitorLine {
    MonitorLine {
        epoch,
        knn_accuracy: f.correct as f64 / f.held_out.max(1) as f64,
        knn_correct: f.correct,
        knn_held_out: f.held_out,
        knn_high: f.high,
        knn_k: f.k,
        knn_low: f.low,
        knn_train_images: f.train_images,
        monitor_seconds: seconds,
        step,
    }
}
