//! `manifest.parquet`: one row per source file seen, kept or not, and why not.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray, UInt8Array,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, UInt8Type, UInt32Type, UInt64Type};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Result, ShardError};
use crate::fsutil::HashingWriter;
use crate::meta::FileInfo;

/// One source file and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative to the ingest root, `/`-separated, reversible UTF-8 ([`crate::names`]).
    pub path: String,
    pub kept: bool,
    /// Machine-readable rejection code (`not-rgb`, `truncated`, ...); `None` when kept.
    pub reason_code: Option<String>,
    /// Human-readable rejection detail; `None` when kept.
    pub reason: Option<String>,
    pub label: Option<i32>,
    /// Size of the source image (before preprocessing), when its header could be read.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Where the kept image is stored.
    pub shard: Option<u32>,
    pub row: Option<u32>,
    /// Size of the source file in bytes.
    pub source_bytes: u64,
    /// The EXIF orientation tag (1..=8) when the file has one (JPEG APP1 or PNG eXIf). Recorded
    /// only: pixels are stored as coded, never rotated (as Pillow's `Image.open`).
    pub orientation: Option<u8>,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("kept", DataType::Boolean, false),
        Field::new("reason_code", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("label", DataType::Int32, true),
        Field::new("width", DataType::UInt32, true),
        Field::new("height", DataType::UInt32, true),
        Field::new("shard", DataType::UInt32, true),
        Field::new("row", DataType::UInt32, true),
        Field::new("source_bytes", DataType::UInt64, false),
        Field::new("orientation", DataType::UInt8, true),
    ]))
}

/// Columns of manifests written before `orientation` existed; still read.
const COLUMNS_WITHOUT_ORIENTATION: usize = 10;

/// Writes the manifest to `path` atomically; returns its name, size and hash for
/// `dataset.json`.
pub fn write_manifest(path: &Path, entries: &[ManifestEntry]) -> Result<FileInfo> {
    let bad = |e: parquet::errors::ParquetError| ShardError::Manifest {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let s =
        |f: fn(&ManifestEntry) -> Option<&str>| -> StringArray { entries.iter().map(f).collect() };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(entries.iter().map(|e| &e.path))),
        Arc::new(BooleanArray::from(entries.iter().map(|e| e.kept).collect::<Vec<_>>())),
        Arc::new(s(|e| e.reason_code.as_deref())),
        Arc::new(s(|e| e.reason.as_deref())),
        Arc::new(entries.iter().map(|e| e.label).collect::<Int32Array>()),
        Arc::new(entries.iter().map(|e| e.width).collect::<UInt32Array>()),
        Arc::new(entries.iter().map(|e| e.height).collect::<UInt32Array>()),
        Arc::new(entries.iter().map(|e| e.shard).collect::<UInt32Array>()),
        Arc::new(entries.iter().map(|e| e.row).collect::<UInt32Array>()),
        Arc::new(UInt64Array::from_iter_values(entries.iter().map(|e| e.source_bytes))),
        Arc::new(entries.iter().map(|e| e.orientation).collect::<UInt8Array>()),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(|e| bad(e.into()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let tmp = crate::format::tmp_path(path);
    let file = File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
    let mut writer =
        ArrowWriter::try_new(HashingWriter::new(file), schema(), Some(props)).map_err(bad)?;
    writer.write(&batch).map_err(bad)?;
    let (file, bytes, xxh3) = writer.into_inner().map_err(bad)?.finish();
    file.sync_all().map_err(|e| ShardError::io(&tmp, e))?;
    crate::fsutil::commit(&tmp, path)?;
    let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(FileInfo { file: name, bytes, xxh3 })
}

/// Reads a manifest written by [`write_manifest`].
///
/// A damaged file is an error, never a crash: the parquet decoder panics on some corrupt pages
/// (found by `tests/fuzz.rs`), so reading runs under `catch_unwind`.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    std::panic::catch_unwind(|| read_manifest_unguarded(path)).unwrap_or_else(|panic| {
        Err(ShardError::Manifest {
            path: path.to_owned(),
            reason: format!("malformed Parquet: {}", crate::error::panic_message(&panic)),
        })
    })
}

fn read_manifest_unguarded(path: &Path) -> Result<Vec<ManifestEntry>> {
    let bad = |reason: String| ShardError::Manifest { path: path.to_owned(), reason };
    let file = File::open(path).map_err(|e| ShardError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let want = schema();
        let fields = batch.schema().fields().clone();
        let older = fields.len() == COLUMNS_WITHOUT_ORIENTATION
            && fields.iter().zip(want.fields().iter()).all(|(a, b)| a == b);
        if fields != *want.fields() && !older {
            return Err(bad(format!("unexpected schema {:?}", batch.schema())));
        }
        let orientation = (!older).then(|| batch.column(10).as_primitive::<UInt8Type>().clone());
        let c = |i: usize| batch.column(i);
        let (paths, kept) = (c(0).as_string::<i32>(), c(1).as_boolean());
        let (codes, reasons) = (c(2).as_string::<i32>(), c(3).as_string::<i32>());
        let labels = c(4).as_primitive::<Int32Type>();
        let (widths, heights) =
            (c(5).as_primitive::<UInt32Type>(), c(6).as_primitive::<UInt32Type>());
        let (shards, rows) = (c(7).as_primitive::<UInt32Type>(), c(8).as_primitive::<UInt32Type>());
        let sizes = c(9).as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            let opt_s = |a: &StringArray| a.is_valid(i).then(|| a.value(i).to_owned());
            let opt_u = |a: &UInt32Array| a.is_valid(i).then(|| a.value(i));
            out.push(ManifestEntry {
                path: paths.value(i).to_owned(),
                kept: kept.value(i),
                reason_code: opt_s(codes),
                reason: opt_s(reasons),
                label: labels.is_valid(i).then(|| labels.value(i)),
                width: opt_u(widths),
                height: opt_u(heights),
                shard: opt_u(shards),
                row: opt_u(rows),
                source_bytes: sizes.value(i),
                orientation: orientation.as_ref().and_then(|o| o.is_valid(i).then(|| o.value(i))),
            });
        }
    }
    Ok(out)
}
