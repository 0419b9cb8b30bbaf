//! Results as the paper shows them: the Table 4 rows (pretext best validation accuracy,
//! downstream best and final held-out accuracy) in Markdown, the accuracy curves of every run
//! overlaid (Figure 3) and the t-SNE panels (Figure 4), all from what `sipl train`,
//! `sipl eval downstream` and `sipl eval tsne` left on disk.
//!
//! Where it looks: `RUN/config.toml` (scheme, seed), `RUN/metrics.jsonl` (`val_accuracy`
//! lines), the evaluation folders of [`DOWNSTREAM_DIRS`] inside each run (`summary.json` or
//! `knn.json`, `curve.csv`, `predictions.parquet`); baselines are evaluation output folders;
//! the t-SNE folder holds `tsne.png` and `tsne.json`. The rendering is in `report_md.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EvalError;
use crate::downstream::EpochResult;

use crate::outputs::{EvalKind, default_dir};
pub use crate::outputs::{SUMMARY, read_curve};
/// Evaluation output folders looked for inside a run, in this order.
pub const DOWNSTREAM_DIRS: [&str; 4] = [
    default_dir(EvalKind::Cached),
    default_dir(EvalKind::Faithful),
    default_dir(EvalKind::FaithfulBnTrain),
    default_dir(EvalKind::Knn),
];

/// What one `sipl eval downstream` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownstreamSummary {
    pub name: String,
    /// The encoder weights (absent for a random-initialised encoder).
    #[serde(with = "sipl_shards::names::stored_path::option", default)]
    pub weights: Option<PathBuf>,
    pub mode: String,
    pub linear_probe: bool,
    pub train_images: usize,
    pub held_out_images: usize,
    pub epochs: usize,
    pub best_val_accuracy: f64,
    pub best_epoch: usize,
    pub final_val_accuracy: f64,
    /// Seconds spent computing features outside the epochs (all of them in cached mode).
    pub feature_seconds: f64,
    pub total_seconds: f64,
    /// The evaluation's seed (head initialisation and shuffle; a random encoder's draw).
    #[serde(default)]
    pub seed: Option<i64>,
    /// How the held-out images were chosen, e.g. "first 9000" or "stratified 0.25, seed 0".
    #[serde(default)]
    pub split: Option<String>,
    /// Fingerprint of the held-out images (`predictions::held_out_fingerprint`): evaluations
    /// are compared image by image only when theirs agree.
    #[serde(default)]
    pub held_out: Option<String>,
    /// The encoder's BatchNorm mode while the head trained: "eval" (default) or "train".
    #[serde(default)]
    pub encoder_bn: Option<String>,
    /// The dataset evaluated; absent in summaries written before it was recorded.
    #[serde(default)]
    pub dataset: Option<EvaluatedDataset>,
}

/// Which dataset an evaluation ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluatedDataset {
    #[serde(with = "sipl_shards::names::stored_path")]
    pub path: PathBuf,
    /// `sipl_shards::identity`: the xxh3-64 of the set's `dataset.json`.
    pub identity: String,
}

impl DownstreamSummary {
    pub fn new(
        name: &str,
        weights: Option<&Path>,
        mode: &str,
        linear_probe: bool,
        (train_images, held_out_images): (usize, usize),
        curve: &[EpochResult],
        (feature_seconds, total_seconds): (f64, f64),
    ) -> Self {
        let best = curve.iter().fold(None::<&EpochResult>, |b, r| match b {
            Some(b) if b.val_accuracy >= r.val_accuracy => Some(b),
            _ => Some(r),
        });
        DownstreamSummary {
            name: name.to_owned(),
            weights: weights.map(Path::to_owned),
            mode: mode.to_owned(),
            linear_probe,
            train_images,
            held_out_images,
            epochs: curve.len(),
            best_val_accuracy: best.map_or(0.0, |b| b.val_accuracy),
            best_epoch: best.map_or(0, |b| b.epoch),
            final_val_accuracy: curve.last().map_or(0.0, |r| r.val_accuracy),
            feature_seconds,
            total_seconds,
            seed: None,
            split: None,
            held_out: None,
            encoder_bn: None,
            dataset: None,
        }
    }

    /// Reads `DIR/summary.json`.
    pub fn read(dir: &Path) -> Result<Self, EvalError> {
        crate::outputs::read_json(&dir.join(SUMMARY))
    }

    /// Writes `DIR/summary.json`.
    pub fn write(&self, dir: &Path) -> Result<(), EvalError> {
        crate::outputs::write_json(&dir.join(SUMMARY), self)
    }
}

/// The paper's Table 4 (pretext, downstream best validation accuracy %), by scheme.
pub fn paper_row(scheme: &str) -> Option<(f64, f64)> {
    match scheme {
        "opl" => Some((50.5, 13.3)),
        "siplv1" => Some((35.4, 16.8)),
        "siplv2" => Some((35.9, 16.5)),
        "siplv3" => Some((32.0, 15.3)),
        _ => None,
    }
}

/// One pretext run's pretext side.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub name: String,
    pub dir: PathBuf,
    pub scheme: String,
    pub seed: u64,
    /// The run's config apart from its seed and stopping point: runs that agree on it are
    /// seeds of one model.
    pub group: String,
    pub pretext_best: Option<f64>,
    /// Predictions counted by the best validation (for its binomial interval; absent in
    /// metrics written before it was recorded).
    pub pretext_best_n: Option<u64>,
    pub steps: Option<u64>,
}

/// A run's display name: its folder's name (of the resolved path, so `.` and `runs/x/` work).
pub fn run_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// Reads a run directory's config and metrics.
pub fn read_run(dir: &Path) -> Result<RunInfo, EvalError> {
    let bad = |why: String| EvalError::Run { path: dir.to_owned(), reason: why };
    if !dir.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let config = std::fs::read_to_string(dir.join(sipl_train::trainer::CONFIG))
        .map_err(|e| bad(format!("no readable config.toml ({e}): not a `sipl train` run")))?;
    let cfg = sipl_train::config::TrainConfig::parse(&config, &[])
        .map_err(|e| bad(format!("config.toml: {e}")))?;
    let metrics = sipl_train::trainer::metrics::read(dir);
    let (mut best, mut best_n) = (None::<f64>, None::<u64>);
    for v in sipl_train::trainer::metrics::validations(&metrics) {
        if best.is_none_or(|b| v.val_accuracy > b) {
            (best, best_n) = (Some(v.val_accuracy), v.val_predictions);
        }
    }
    let steps = metrics.iter().map(|l| l.step()).max();
    let mut rest = cfg.clone();
    rest.run.seed = 0;
    let group = format!(
        "{}epochs = {}, max_steps = {:?}",
        rest.trajectory_toml(),
        cfg.optim.epochs,
        cfg.optim.max_steps
    );
    Ok(RunInfo {
        name: run_name(dir),
        dir: dir.to_owned(),
        scheme: cfg.model.scheme.name().to_owned(),
        seed: cfg.run.seed,
        group,
        pretext_best: best,
        pretext_best_n: best_n,
        steps,
    })
}

pub use crate::report_md::{Report, report};
/// The t-SNE scores as a Markdown table, from `tsne.json`.
pub(crate) fn tsne_table(dir: &Path) -> Result<String, EvalError> {
    let t: crate::outputs::TsneSummary =
        crate::outputs::read_json(&dir.join(crate::outputs::TSNE))?;
    let mut md = String::from(
        "| model | twin-NN, embedding | twin-NN, map | class silhouette | style silhouette | class − style |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for m in &t.models {
        let s = &m.scores;
        writeln!(
            md,
            "| {} | {:.1}% | {:.1}% | {:.3} | {:.3} | {:+.3} |",
            m.name,
            100.0 * s.twin_nn_embedding,
            100.0 * s.twin_nn_map,
            s.class_silhouette,
            s.style_silhouette,
            s.separability
        )
        .expect("string");
    }
    Ok(md)
}
