//! `RUN/metrics.jsonl`, typed: one JSON object per line, a [`TrainLine`] every `run.log_every`
//! steps, a [`ValidationLine`] after every validation and, with a `[monitor]`, a
//! [`MonitorLine`] after every `monitor.every` epochs and at the run's end. The trainer writes these types (via
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

/// The online downstream monitor after an epoch (or at the run's end): weighted kNN accuracy
/// of the current encoder on the monitor set's held-out images, by the code and protocol of
/// `sipl eval knn` (`[monitor]`, `sipl_eval::monitor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorLine {
    /// Epochs completed.
    pub epoch: u64,
    /// `knn_correct / knn_held_out`, in [0, 1].
    pub knn_accuracy: f64,
    /// Held-out images the kNN vote classified right.
    pub knn_correct: u64,
    /// Held-out images classified.
    pub knn_held_out: u64,
    /// The upper end of the 95% Wilson score interval of `knn_accuracy`.
    pub knn_high: f64,
    /// The neighbourhood size.
    pub knn_k: u64,
    /// The lower end of the 95% Wilson score interval of `knn_accuracy`.
    pub knn_low: f64,
    /// Labelled images the held-out ones are compared with.
    pub knn_train_images: u64,
    /// Wall time of the measurement (embedding both parts and the vote), in seconds.
    pub monitor_seconds: f64,
    pub step: u64,
}

/// One line of `metrics.jsonl`. Untagged: a line is the first variant whose required fields
/// it has (`knn_accuracy`, `val_accuracy`, else a training line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricsLine {
    Monitor(MonitorLine),
    Validation(ValidationLine),
    Train(TrainLine),
}

impl MetricsLine {
    pub fn step(&self) -> u64 {
        match self {
            MetricsLine::Monitor(m) => m.step,
            MetricsLine::Validation(v) => v.step,
            MetricsLine::Train(t) => t.step,
        }
    }

    /// The line's scalars under their TensorBoard tags: `train/…` (loss, its terms,
    /// pretext accuracy, learning rate, samples/s), `val/accuracy`, `monitor/knn_accuracy`
    /// (with its interval). Values as in the JSON line.
    pub fn scalars(&self) -> Vec<(String, f64)> {
        match self {
            MetricsLine::Train(t) => {
                let mut v = vec![
                    ("train/loss".to_owned(), t.loss),
                    ("train/accuracy".to_owned(), t.accuracy),
                    ("train/sym_kl".to_owned(), t.sym_kl),
                    ("train/lr".to_owned(), t.lr),
                    ("train/samples_per_s".to_owned(), t.samples_per_s),
                ];
                v.extend(t.ce.iter().enumerate().map(|(i, c)| (format!("train/ce{i}"), *c)));
                v
            }
            MetricsLine::Validation(l) => vec![("val/accuracy".to_owned(), l.val_accuracy)],
            MetricsLine::Monitor(m) => vec![
                ("monitor/knn_accuracy".to_owned(), m.knn_accuracy),
                ("monitor/knn_low".to_owned(), m.knn_low),
                ("monitor/knn_high".to_owned(), m.knn_high),
            ],
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
        _ => None,
    })
}

/// The monitor lines of `lines`, in order.
pub fn monitors(lines: &[MetricsLine]) -> impl Iterator<Item = &MonitorLine> {
    lines.iter().filter_map(|l| match l {
        MetricsLine::Monitor(m) => Some(m),
        _ => None,
    })
}

/// The training lines of `lines`, in order.
pub fn train_lines(lines: &[MetricsLine]) -> impl Iterator<Item = &TrainLine> {
    lines.iter().filter_map(|l| match l {
        MetricsLine::Train(t) => Some(t),
        _ => None,
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
                    {\"epoch\":1,\"step\":25,\"val_accuracy\":0.25}\n\
                    {\"epoch\":1,\"knn_accuracy\":0.75,\"knn_correct\":3,\"knn_held_out\":4,\
                    \"knn_high\":0.95,\"knn_k\":20,\"knn_low\":0.3,\"knn_train_images\":12,\
                    \"monitor_seconds\":0.5,\"step\":25}\n{\"step\":3";
        let lines = parse(text);
        assert_eq!(lines.len(), 4, "the cut line is skipped");
        let text_lines: Vec<&str> = text.lines().collect();
        for (line, original) in lines.iter().zip(&text_lines) {
            assert_eq!(&line.to_json(), original);
        }
        assert_eq!(train_lines(&lines).map(|t| t.ce.len()).collect::<Vec<_>>(), [2]);
        let v: Vec<_> = validations(&lines).map(|v| v.val_predictions).collect();
        assert_eq!(v, [Some(128), None]);
        assert_eq!(lines.iter().map(MetricsLine::step).collect::<Vec<_>>(), [20, 25, 25, 25]);
        assert_eq!(monitors(&lines).map(|m| m.knn_correct).collect::<Vec<_>>(), [3]);
    }
}
