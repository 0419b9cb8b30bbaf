//! `sipl embed`: every image's embedding to Parquet (id, path, label, embedding as a
//! fixed-size list of 1000 float32), readable by pyarrow, polars or duckdb.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use sipl_shards::Dataset;
use tch::Device;

use crate::EvalError;
use crate::features::Encoder;

/// Embeds every image of `ds` and writes `out`; returns the number of rows.
pub fn write_embeddings(
    encoder: &Encoder,
    ds: &Dataset,
    out: &Path,
    input_size: usize,
    batch: usize,
) -> Result<usize, EvalError> {
    let n = ds.len();
    let indices: Vec<usize> = (0..n).collect();
    let emb = encoder.embed(ds, &indices, input_size, batch)?.to_device(Device::Cpu).contiguous();
    let dim = emb.size().get(1).copied().unwrap_or(0) as i32;
    let flat: Vec<f32> = Vec::<f32>::try_from(emb.view([-1]))?;
    let (mut ids, mut paths, mut labels) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let r = ds.record(i)?;
        ids.push(r.id);
        paths.push(r.path.to_owned());
        labels.push(r.label);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("label", DataType::Int32, true),
        Field::new("embedding", DataType::FixedSizeList(item.clone(), dim), false),
    ]));
    let bad = |e: String| EvalError::Data(format!("{}: {e}", out.display()));
    let list = FixedSizeListArray::try_new(item, dim, Arc::new(Float32Array::from(flat)), None)
        .map_err(|e| bad(e.to_string()))?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids)),
        Arc::new(StringArray::from(paths)),
        Arc::new(Int32Array::from(labels)),
        Arc::new(list),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| bad(e.to_string()))?;
    crate::outputs::write_parquet(out, &batch)?;
    Ok(n)
}
