//! The metrics window: loss terms and accuracy summed on the device between log lines, so a
//! step never waits for the host; read (one sync) only for a log line or a checkpoint.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::TrainError;
use super::metrics::TrainLine;
use crate::checkpoint::TrainerState;

/// Loss and accuracy summed on the device between log lines (no per-step host sync).
pub(super) struct Window {
    loss: Tensor,
    ce: Vec<Tensor>,
    kl: Tensor,
    right: Tensor,
    problems: i64,
    steps: u64,
    since: Instant,
    samples: usize,
}

impl Window {
    pub(super) fn new(device: Device) -> Self {
        let z = || Tensor::zeros([], (Kind::Float, device));
        Window {
            loss: z(),
            ce: Vec::new(),
            kl: z(),
            right: Tensor::zeros([], (Kind::Int64, device)),
            problems: 0,
            steps: 0,
            since: Instant::now(),
            samples: 0,
        }
    }

    pub(super) fn add(
        &mut self,
        total: &Tensor,
        ce: &[Tensor],
        kl: &Tensor,
        logits: &[Tensor],
        y: &Tensor,
        n: usize,
    ) {
        self.loss += total;
        if self.ce.len() != ce.len() {
            self.ce = ce.iter().map(|t| t.detach().zeros_like()).collect();
        }
        for (a, b) in self.ce.iter_mut().zip(ce) {
            *a += b.detach();
        }
        self.kl += kl.detach();
        self.right += crate::model::correct_on_device(logits, y);
        self.problems += (logits.len() * n) as i64;
        self.steps += 1;
        self.samples += n;
    }

    pub(super) fn check_finite(&self, step: u64) -> Result<(), TrainError> {
        let v = self.loss.double_value(&[]);
        if v.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { step, value: v }) }
    }

    /// A metrics line for the steps since the last one; resets the window. The trainer checks
    /// the loss is finite first (on every rank at once).
    pub(super) fn flush(&mut self, state: &TrainerState, lr: f64) -> TrainLine {
        let k = self.steps.max(1) as f64;
        let line = TrainLine {
            accuracy: self.right.int64_value(&[]) as f64 / self.problems.max(1) as f64,
            ce: self.ce.iter().map(|t| t.double_value(&[]) / k).collect(),
            epoch: state.epoch,
            loss: self.loss.double_value(&[]) / k,
            lr,
            samples_per_s: self.samples as f64 / self.since.elapsed().as_secs_f64().max(1e-9),
            step: state.step,
            sym_kl: self.kl.double_value(&[]) / k,
        };
        let device = self.loss.device();
        *self = Window::new(device);
        line
    }
}
