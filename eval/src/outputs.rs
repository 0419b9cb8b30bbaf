//! The files an evaluation leaves in its output folder, each written and read here and
//! nowhere else: `summary.json` ([`crate::report::DownstreamSummary`]), `knn.json`
//! ([`crate::results::KnnSummary`]), `curve.csv` (held-out accuracy after every head epoch)
//! and `tsne.json` ([`TsneSummary`]); and how every Parquet output is written
//! ([`write_parquet`]: `predictions.parquet` by `predictions.rs`, embeddings by `embed.rs`).
//!
//! JSON fields keep the order the files have always had.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::EvalError;
use crate::downstream::EpochResult;
use crate::tsne::Scores;

/// A downstream evaluation's summary.
pub const SUMMARY: &str = "summary.json";
/// A kNN evaluation's summary.
pub const KNN_SUMMARY: &str = "knn.json";
/// A downstream evaluation's accuracy curve.
pub const CURVE: &str = "curve.csv";
/// The t-SNE study's scores.
pub const TSNE: &str = "tsne.json";

/// The default output folder of an evaluation inside its run: `eval/downstream-cached`,
/// `eval/downstream-faithful`, `eval/downstream-faithful-bn-train` or `eval/knn`.
/// [`crate::report::DOWNSTREAM_DIRS`] lists them all, in the order the report looks.
pub const fn default_dir(kind: EvalKind) -> &'static str {
    match kind {
        EvalKind::Cached => "eval/downstream-cached",
        EvalKind::Faithful => "eval/downstream-faithful",
        EvalKind::FaithfulBnTrain => "eval/downstream-faithful-bn-train",
        EvalKind::Knn => "eval/knn",
    }
}

/// The kinds of evaluation that have a default folder inside a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalKind {
    /// Downstream head on cached features.
    Cached,
    /// Downstream head, features recomputed every epoch, encoder BatchNorm in eval mode.
    Faithful,
    /// The same with the encoder's BatchNorm in training mode (the authors' variant).
    FaithfulBnTrain,
    /// Weighted kNN.
    Knn,
}

/// Writes `value` as pretty JSON with a final newline (the evaluation's summaries).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), EvalError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|source| EvalError::Json { path: path.to_owned(), source })?;
    crate::plot::write_file(path, (text + "\n").as_bytes())
}

/// Reads a JSON file written by [`write_json`].
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, EvalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| EvalError::File { path: path.to_owned(), source })?;
    serde_json::from_str(&text).map_err(|source| EvalError::Json { path: path.to_owned(), source })
}

/// Writes `batch` as a zstd-compressed Parquet file (the batch's schema, with its metadata),
/// atomically: into `PATH.tmp`, renamed into place once closed, so a crash leaves the old file
/// or none, never a torn one.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), EvalError> {
    let tmp = path.with_extension("parquet.tmp");
    let parquet = |source| EvalError::Parquet { path: path.to_owned(), source };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let file = std::fs::File::create(&tmp)
        .map_err(|source| EvalError::File { path: tmp.clone(), source })?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    writer.close().map_err(parquet)?;
    std::fs::rename(&tmp, path).map_err(|source| EvalError::File { path: path.to_owned(), source })
}

/// One point of the t-SNE study's map: a row of `tsne.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TsneRow {
    pub model: String,
    /// The image's index in the dataset.
    pub image: usize,
    pub class: String,
    /// The style draw, 0 or 1.
    pub style: usize,
    pub x: f32,
    pub y: f32,
}

/// Writes `tsne.csv` (`model,image,class,style,x,y`) atomically, quoted as RFC 4180 says: a
/// model or class name holding a comma, a quote or a line break stays one cell.
pub fn write_tsne_csv(path: &Path, rows: &[TsneRow]) -> Result<(), EvalError> {
    let bad = |e: csv::Error| EvalError::Data(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(bad)?;
    }
    let bytes = w.into_inner().map_err(|e| bad(e.into_error().into()))?;
    crate::plot::write_file(path, &bytes)
}

/// Writes `curve.csv`: `epoch,train_loss,val_accuracy,seconds`, one row per head epoch
/// (accuracy as a fraction, 6 decimals; seconds of that epoch, 3 decimals).
pub fn write_curve(path: &Path, curve: &[EpochResult]) -> Result<(), EvalError> {
    let mut text = String::from("epoch,train_loss,val_accuracy,seconds\n");
    for r in curve {
        text +=
            &format!("{},{:.6},{:.6},{:.3}\n", r.epoch, r.train_loss, r.val_accuracy, r.seconds);
    }
    crate::plot::write_file(path, text.as_bytes())
}

/// Writes the curve as TensorBoard scalars in `dir/tb/downstream/`
/// (`downstream/held_out_accuracy`, `downstream/train_loss`, step = head epoch), replacing the
/// event files of an earlier evaluation into `dir` (and only those: a folder of its own), so
/// that `tensorboard --logdir runs` shows it beside the run.
pub fn write_curve_events(dir: &Path, curve: &[EpochResult]) -> Result<(), EvalError> {
    use sipl_train::tensorboard::{EventWriter, TB_DIR};
    let tb = dir.join(TB_DIR).join("downstream");
    let file = |path: &Path| {
        let path = path.to_owned();
        move |source| EvalError::File { path, source }
    };
    if let Ok(entries) = std::fs::read_dir(&tb) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().contains("tfevents") {
                std::fs::remove_file(e.path()).map_err(file(&e.path()))?;
            }
        }
    }
    let mut w = EventWriter::create(&tb, None).map_err(file(&tb))?;
    for r in curve {
        let values = [
            ("downstream/held_out_accuracy", r.val_accuracy),
            ("downstream/train_loss", r.train_loss),
        ];
        w.scalars(r.epoch as u64, &values).map_err(file(w.path()))?;
    }
    Ok(())
}

/// The (epoch, held-out accuracy) pairs of a `curve.csv`, by its header's column names.
pub fn read_curve(path: &Path) -> Result<Vec<(f64, f64)>, EvalError> {
    let bad = |reason: String| EvalError::Format { path: path.to_owned(), reason };
    let text = std::fs::read_to_string(path)
        .map_err(|source| EvalError::File { path: path.to_owned(), source })?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(e), Some(a)) = (col("epoch"), col("val_accuracy")) else {
        return Err(bad("no epoch / val_accuracy columns".into()));
    };
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok());
            num(e).zip(num(a)).ok_or_else(|| bad(format!("line {} is not a curve row", i + 2)))
        })
        .collect()
}

/// `tsne.json`: the study's settings and every model's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TsneSummary {
    /// The two class names.
    pub classes: Vec<String>,
    pub models: Vec<TsneModel>,
    pub per_class: usize,
    pub perplexity: f32,
    pub seed: u64,
    /// The two style draws' colour parameters, as text.
    pub styles: Vec<String>,
}

/// One encoder's scores in the t-SNE study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TsneModel {
    pub name: String,
    pub scores: Scores,
    /// Its weight file; absent for a random-initialised encoder.
    #[serde(with = "sipl_shards::names::stored_path::option", default)]
    pub weights: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_and_tsne_summaries_read_back_what_was_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let curve = [
            EpochResult { epoch: 1, train_loss: 2.5, val_accuracy: 0.25, seconds: 1.5 },
            EpochResult { epoch: 2, train_loss: 2.0, val_accuracy: 0.375, seconds: 1.25 },
        ];
        let path = dir.path().join(CURVE);
        write_curve(&path, &curve).expect("write");
        assert_eq!(read_curve(&path).expect("read"), [(1.0, 0.25), (2.0, 0.375)]);
        std::fs::write(&path, "epoch,val_accuracy\n1,x\n").expect("write");
        let e = read_curve(&path).expect_err("bad row");
        assert!(e.to_string().contains("line 2 is not a curve row"), "{e}");
        let scores = Scores {
            twin_nn_embedding: 0.5,
            twin_nn_map: 0.25,
            class_silhouette: 0.125,
            style_silhouette: 0.0625,
            separability: 0.0625,
        };
        let t = TsneSummary {
            classes: vec!["a".into(), "b".into()],
            models: vec![TsneModel { name: "random init".into(), scores, weights: None }],
            per_class: 4,
            perplexity: 5.0,
            seed: 0,
            styles: vec!["s1".into(), "s2".into()],
        };
        let path = dir.path().join(TSNE);
        write_json(&path, &t).expect("write");
        assert_eq!(read_json::<TsneSummary>(&path).expect("read"), t);
        let text = std::fs::read_to_string(&path).expect("text");
        let keys: Vec<usize> = ["classes", "models", "per_class", "perplexity", "seed", "styles"]
            .iter()
            .map(|k| text.find(&format!("\"{k}\"")).expect("key"))
            .collect();
        assert!(keys.is_sorted(), "keys in the file's order: {text}");
        let e = read_json::<TsneSummary>(&dir.path().join("none.json")).expect_err("missing");
        assert!(e.to_string().contains("none.json"), "{e}");
    }
}
