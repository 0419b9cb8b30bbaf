//! `RUN/metrics.jsonl`, typed: one JSON object per line, a [`TrainLine`] every `run.log_every`
//! steps and a [`ValidationLine`] after every validation. The trainer writes these types (via
//! `run_dir::Metrics`) and everything that reads a run's metrics (progress, `sipl report`,
//! `sipl bench train`, the tests) reads them back through [`read`], never by key.
//!
//! Fields are declared in alphabetical order, the order the lines have always had.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name inside a run directory.
pub const METRICS: &str = "metrics.jsonl";

/// The training steps since the previous line, averaged over those steps (this rank's share
/// of each step; `samples_per_s` counts every rank's samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainLine {
    /// Pretext accuracy of the steps' localization problems, in [0, 1].
    pub accuracy: f64,
    /// Cross-entropy of each localization problem of a sample (one for OPL, two for SIPL).
    pub ce: Vec<f64>,
    pub epoch: u64,
    /// The total loss: the cross-entropies plus α × symKL.
    pub loss: f64,
    pub lr: f64,
    /// Training throughput since the previous line, all ranks.
    pub samples_per_s: f64,
    /// The step that closed the window (1-based).
    pub step: u64,
    /// The symmetric KL between the two problems' predictions (0 for OPL).
    pub sym_kl: f64,
}

/// Pretext accuracy on the validation images, after an epoch (or at the run's end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationLine {
    /// Epochs completed.
    pub epoch: u64,
    pub step: u64,
    /// In [0, 1].
    pub val_accuracy: f64,
    /// Predictions counted (images × problems per sample), for a binomial interval; absent
    /// in runs made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_predictions: Option<u64>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricsLine {
    Validation(ValidationLine),
    Train(TrainLine),
}

impl MetricsLine {
    pub fn step(&self) -> u64 {
        match self {
            MetricsLine::Validation(v) => v.step,
            MetricsLine::Train(t) => t.step,
        }
    }

    /// The line as written: one JSON object, no newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("metrics lines serialise")
    }
}

/// The lines of a metrics file's text, in order. A line that does not parse (one cut short
/// by a crash, or from a newer sipl) is skipped.
pub fn parse(text: &str) -> Vec<MetricsLine> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The lines of `RUN/metrics.jsonl`; none when the file does not exist or cannot be read.
pub fn read(run: &Path) -> Vec<MetricsLine> {
    parse(&std::fs::read_to_string(run.join(METRICS)).unwrap_or_default())
}

/// The validation lines of `lines`, in order.
pub fn validations(lines: &[MetricsLine]) -> impl Iterator<Item = &ValidationLine> {
    lines.iter().filter_map(|l| match l {
        MetricsLine::Validation(v) => Some(v),
        MetricsLine::Train(_) => None,
    })
}

/// The training lines of `lines`, in order.
pub fn train_lines(lines: &[MetricsLine]) -> impl Iterator<Item = &TrainLine> {
    lines.iter().filter_map(|l| match l {
        MetricsLine::Train(t) => Some(t),
        MetricsLine::Validation(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_bytes_and_read_back_typed() {
        // What the trainer has always written (keys in alphabetical order).
        let text = "{\"accuracy\":0.5,\"ce\":[2.0,2.5],\"epoch\":0,\"loss\":4.75,\"lr\":0.00005,\
                    \"samples_per_s\":12.5,\"step\":20,\"sym_kl\":0.05}\n\
                    {\"epoch\":1,\"step\":25,\"val_accuracy\":0.25,\"val_predictions\":128}\n\
                    {\"epoch\":1,\"step\":25,\"val_accuracy\":0.25}\n{\"step\":3";
        let lines = parse(text);
        assert_eq!(lines.len(), 3, "the cut line is skipped");
        let text_lines: Vec<&str> = text.lines().collect();
        for (line, original) in lines.iter().zip(&text_lines) {
            assert_eq!(&line.to_json(), original);
        }
        assert_eq!(train_lines(&lines).map(|t| t.ce.len()).collect::<Vec<_>>(), [2]);
        let v: Vec<_> = validations(&lines).map(|v| v.val_predictions).collect();
        assert_eq!(v, [Some(128), None]);
        assert_eq!(lines.iter().map(MetricsLine::step).collect::<Vec<_>>(), [20, 25, 25]);
    }
}
