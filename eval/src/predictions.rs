//! `predictions.parquet`: what an evaluation predicted for every held-out image, so that two
//! encoders can be compared on the same images (paired tests) and any accuracy in a summary can
//! be recounted.
//!
//! One row per held-out image, in held-out order:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `index` | uint64 | the image's position in the dataset |
//! | `id` | uint64 | the image's id in the shards |
//! | `label` | int32 | its class |
//! | `predicted_best` | int32 | the class predicted at the best epoch (kNN: at the smaller k) |
//! | `predicted_final` | int32 | the class predicted at the final epoch (kNN: at the larger k) |
//!
//! Schema metadata (pyarrow: `table.schema.metadata`): `sipl.best_epoch`, `sipl.final_epoch` (kNN: the two k)
//! and `sipl.held_out` (the held-out set's fingerprint, [`held_out_fingerprint`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sipl_shards::Dataset;

use crate::EvalError;

/// File name beside `curve.csv` and `summary.json`.
pub const PREDICTIONS: &str = "predictions.parquet";

/// The held-out predictions of one evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PredictionTable {
    pub index: Vec<u64>,
    pub id: Vec<u64>,
    pub label: Vec<i32>,
    pub predicted_best: Vec<i32>,
    pub predicted_final: Vec<i32>,
    pub best_epoch: usize,
    pub final_epoch: usize,
    pub held_out: String,
}

impl PredictionTable {
    pub fn len(&self) -> usize {
        self.label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    /// Per image: is the best-epoch prediction right?
    pub fn right_best(&self) -> Vec<bool> {
        self.label.iter().zip(&self.predicted_best).map(|(l, p)| l == p).collect()
    }

    /// Per image: is the final-epoch prediction right?
    pub fn right_final(&self) -> Vec<bool> {
        self.label.iter().zip(&self.predicted_final).map(|(l, p)| l == p).collect()
    }

    /// Correct predictions (best, final).
    pub fn correct(&self) -> (u64, u64) {
        let count = |v: Vec<bool>| v.into_iter().filter(|&r| r).count() as u64;
        (count(self.right_best()), count(self.right_final()))
    }
}

fn data_error(path: &Path, e: impl std::fmt::Display) -> EvalError {
    EvalError::Data(format!("{}: {e}", path.display()))
}

/// xxh3-64 (hex) over the held-out images' (id, pixel checksum, label), in order: two
/// evaluations held out the same images exactly when their fingerprints agree, whatever the
/// dataset's folder is called.
pub fn held_out_fingerprint(ds: &Dataset, held: &[usize]) -> Result<String, EvalError> {
    let mut bytes = Vec::with_capacity(held.len() * 20);
    for &i in held {
        let r = ds.record(i)?;
        bytes.extend_from_slice(&r.id.to_le_bytes());
        bytes.extend_from_slice(&r.checksum.to_le_bytes());
        bytes.extend_from_slice(&r.label.unwrap_or(-1).to_le_bytes());
    }
    Ok(sipl_shards::xxh3_hex(&bytes))
}

/// The table for held-out images `held` of `ds` with their `labels` (dataset order).
pub fn table(
    ds: &Dataset,
    held: &[usize],
    labels: &[i64],
    (best_epoch, best): (usize, &[i64]),
    (final_epoch, last): (usize, &[i64]),
) -> Result<PredictionTable, EvalError> {
    let mut id = Vec::with_capacity(held.len());
    for &i in held {
        id.push(ds.record(i)?.id);
    }
    let to_i32 = |v: &[i64]| v.iter().map(|&c| c as i32).collect::<Vec<_>>();
    Ok(PredictionTable {
        index: held.iter().map(|&i| i as u64).collect(),
        id,
        label: held.iter().map(|&i| labels[i] as i32).collect(),
        predicted_best: to_i32(best),
        predicted_final: to_i32(last),
        best_epoch,
        final_epoch,
        held_out: held_out_fingerprint(ds, held)?,
    })
}

fn schema(metadata: HashMap<String, String>) -> Arc<Schema> {
    Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("index", DataType::UInt64, false),
            Field::new("id", DataType::UInt64, false),
            Field::new("label", DataType::Int32, false),
            Field::new("predicted_best", DataType::Int32, false),
            Field::new("predicted_final", DataType::Int32, false),
        ],
        metadata,
    ))
}

/// Writes `t` to `path` (a temporary name, then renamed into place).
pub fn write(t: &PredictionTable, path: &Path) -> Result<(), EvalError> {
    let n = t.len();
    if [t.index.len(), t.id.len(), t.predicted_best.len(), t.predicted_final.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Err(data_error(path, "prediction columns differ in length"));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(t.index.clone())),
        Arc::new(UInt64Array::from(t.id.clone())),
        Arc::new(Int32Array::from(t.label.clone())),
        Arc::new(Int32Array::from(t.predicted_best.clone())),
        Arc::new(Int32Array::from(t.predicted_final.clone())),
    ];
    // On the Arrow schema, so pyarrow shows it as `table.schema.metadata`.
    let metadata: HashMap<String, String> = [
        ("best_epoch", t.best_epoch.to_string()),
        ("final_epoch", t.final_epoch.to_string()),
        ("held_out", t.held_out.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("sipl.{k}"), v))
    .collect();
    let schema = schema(metadata);
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| data_error(path, e))?;
    crate::outputs::write_parquet(path, &batch)
}

/// Reads a `predictions.parquet`.
pub fn read(path: &Path) -> Result<PredictionTable, EvalError> {
    let file = File::open(path).map_err(|e| data_error(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| data_error(path, e))?;
    let meta = builder.schema().metadata().clone();
    let get = |k: &str| {
        meta.get(&format!("sipl.{k}"))
            .cloned()
            .ok_or_else(|| data_error(path, format!("no sipl.{k} in the file metadata")))
    };
    let epoch = |k: &str| -> Result<usize, EvalError> {
        get(k)?.parse().map_err(|e| data_error(path, format!("sipl.{k}: {e}")))
    };
    let mut t = PredictionTable {
        best_epoch: epoch("best_epoch")?,
        final_epoch: epoch("final_epoch")?,
        held_out: get("held_out")?,
        ..Default::default()
    };
    let reader = builder.build().map_err(|e| data_error(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| data_error(path, e))?;
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| data_error(path, format!("no column {name}")))
        };
        let u64s = |name: &str| -> Result<Vec<u64>, EvalError> {
            let c = column(name)?;
            let a = c
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| data_error(path, format!("{name} is not uint64")))?;
            Ok(a.values().to_vec())
        };
        let i32s = |name: &str| -> Result<Vec<i32>, EvalError> {
            let c = column(name)?;
            let a = c
                .as_any()
                .downcast_ref::<Int32Array>()
                .ok_or_else(|| data_error(path, format!("{name} is not int32")))?;
            if a.null_count() > 0 {
                return Err(data_error(path, format!("{name} has nulls")));
            }
            Ok(a.values().to_vec())
        };
        t.index.extend(u64s("index")?);
        t.id.extend(u64s("id")?);
        t.label.extend(i32s("label")?);
        t.predicted_best.extend(i32s("predicted_best")?);
        t.predicted_final.extend(i32s("predicted_final")?);
    }
    Ok(t)
}
