//! Writes one shard: rows accumulate in memory, then the Arrow IPC file is written under a
//! temporary name, fsynced and renamed, so a shard on disk is always complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, Int32Array, StringBuilder, UInt32Array, UInt64Array};
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ShardError};
use crate::format::{shard_rel_path, shard_schema, tmp_path};
use crate::fsutil::HashingWriter;

/// One kept image, already compressed (compression runs in parallel workers, not here).
#[derive(Debug, Clone)]
pub struct EncodedImage {
    pub path: String,
    pub label: Option<i32>,
    pub height: u32,
    pub width: u32,
    /// zstd frame of the RGB8 pixels, HWC.
    pub pixels_zstd: Vec<u8>,
    /// [`crate::pixel_checksum`] of the raw pixels.
    pub checksum: u64,
}

impl EncodedImage {
    /// Compresses `rgb` (HWC, `height * width * 3` bytes) at `level`.
    pub fn encode(
        path: String,
        label: Option<i32>,
        (height, width): (u32, u32),
        rgb: &[u8],
        level: i32,
    ) -> std::io::Result<Self> {
        debug_assert_eq!(rgb.len(), height as usize * width as usize * 3);
        Ok(EncodedImage {
            path,
            label,
            height,
            width,
            pixels_zstd: compress(rgb, level)?,
            checksum: crate::format::pixel_checksum(rgb),
        })
    }
}

/// zstd at `level` with literals stored raw: photos' pixel bytes are nearly incompressible as
/// literals (Huffman coding saved 4.5% of the size on 977 ImageNet photos) while decoding them
/// is half of a worker's time for OPL samples; raw literals decompress twice as fast. Any zstd
/// decoder reads the frames; one compression context per thread.
fn compress(rgb: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CParameter, ParamSwitch};
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut c = zstd::bulk::Compressor::new(level)?;
            c.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Disable))?;
            *slot = Some((level, c));
        }
        let (_, c) = slot.as_mut().expect("made above");
        c.compress(rgb)
    })
}

/// What `dataset.json` records of each shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Relative to the dataset directory, e.g. `shards/shard-00000.arrow`.
    pub file: String,
    pub rows: usize,
    /// `id` of the first row; ids are consecutive across shards.
    pub first_id: u64,
    pub bytes: u64,
    /// xxh3-64 of the whole file, hex.
    pub xxh3: String,
    /// Sum of the raw RGB bytes the rows decompress to.
    pub raw_bytes: u64,
}

/// Collects rows of one shard and writes it atomically.
pub struct ShardWriter {
    dir: PathBuf,
    index: usize,
    first_id: u64,
    rows: Vec<EncodedImage>,
    blob_bytes: usize,
}

impl ShardWriter {
    /// A writer for shard number `index` of the dataset in `dir`, whose first row gets `first_id`.
    pub fn new(dir: &Path, index: usize, first_id: u64) -> Self {
        ShardWriter { dir: dir.to_owned(), index, first_id, rows: Vec::new(), blob_bytes: 0 }
    }

    pub fn push(&mut self, row: EncodedImage) {
        self.blob_bytes += row.pixels_zstd.len();
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The shard number this writer produces.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Compressed pixel bytes so far (to close a shard at a target size).
    pub fn blob_bytes(&self) -> usize {
        self.blob_bytes
    }

    /// Writes `shards/shard-NNNNN.arrow` (temporary name, fsync, rename) and describes it.
    pub fn finish(self) -> Result<ShardInfo> {
        let rel = shard_rel_path(self.index);
        let path = self.dir.join(&rel);
        let tmp = tmp_path(&path);
        let batch = self
            .record_batch()
            .map_err(|e| ShardError::BadShard { path: path.clone(), reason: e.to_string() })?;
        let raw_bytes = self.rows.iter().map(|r| r.height as u64 * r.width as u64 * 3).sum();
        let (bytes, xxh3) = write_ipc(&tmp, &batch)?;
        crate::fsutil::commit(&tmp, &path)?;
        Ok(ShardInfo {
            file: rel,
            rows: self.rows.len(),
            first_id: self.first_id,
            bytes,
            xxh3,
            raw_bytes,
        })
    }

    fn record_batch(&self) -> arrow::error::Result<RecordBatch> {
        let n = self.rows.len();
        let ids = UInt64Array::from_iter_values((0..n as u64).map(|i| self.first_id + i));
        let mut paths = StringBuilder::with_capacity(n, n * 32);
        let mut pixels = BinaryBuilder::with_capacity(n, self.blob_bytes);
        for r in &self.rows {
            paths.append_value(&r.path);
            pixels.append_value(&r.pixels_zstd);
        }
        let labels: Int32Array = self.rows.iter().map(|r| r.label).collect();
        let heights = UInt32Array::from_iter_values(self.rows.iter().map(|r| r.height));
        let widths = UInt32Array::from_iter_values(self.rows.iter().map(|r| r.width));
        let sums = UInt64Array::from_iter_values(self.rows.iter().map(|r| r.checksum));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids),
            Arc::new(paths.finish()),
            Arc::new(labels),
            Arc::new(heights),
            Arc::new(widths),
            Arc::new(pixels.finish()),
            Arc::new(sums),
        ];
        RecordBatch::try_new(shard_schema(), columns)
    }
}

/// Writes and fsyncs the IPC file; returns its size and hash.
fn write_ipc(tmp: &Path, batch: &RecordBatch) -> Result<(u64, String)> {
    // An I/O failure underneath Arrow (a full disk) is reported as I/O, not as a bad shard.
    let bad = |e: arrow::error::ArrowError| match e {
        arrow::error::ArrowError::IoError(_, io) => ShardError::io(tmp, io),
        e => ShardError::BadShard { path: tmp.to_owned(), reason: e.to_string() },
    };
    let file = File::create(tmp).map_err(|e| ShardError::io(tmp, e))?;
    let out = BufWriter::new(HashingWriter::new(file));
    let mut writer = FileWriter::try_new(out, &batch.schema()).map_err(bad)?;
    writer.write(batch).map_err(bad)?;
    writer.finish().map_err(bad)?;
    let mut buf = writer.into_inner().map_err(bad)?;
    buf.flush().map_err(|e| ShardError::io(tmp, e))?;
    let hashed = buf.into_inner().map_err(|e| ShardError::io(tmp, e.into_error()))?;
    let (file, bytes, xxh3) = hashed.finish();
    file.sync_all().map_err(|e| ShardError::io(tmp, e))?;
    Ok((bytes, xxh3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_are_zstd_frames_with_raw_literals() {
        // Bytes from a 16-value alphabet without repeats: Huffman-coded literals would halve
        // them; raw literals keep their size. Any zstd decoder reads the frame back.
        let mut x = 0x9e37_79b9u32;
        let rgb: Vec<u8> = (0..64 * 64 * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 28) as u8
            })
            .collect();
        let huffman = zstd::bulk::compress(&rgb, 3).expect("compress").len();
        let e = EncodedImage::encode("a.png".into(), None, (64, 64), &rgb, 3).expect("encode");
        assert!(huffman * 10 < rgb.len() * 7, "the alphabet compresses: {huffman}");
        assert!(e.pixels_zstd.len() * 10 > rgb.len() * 9, "raw: {}", e.pixels_zstd.len());
        assert_eq!(zstd::bulk::decompress(&e.pixels_zstd, rgb.len()).expect("decode"), rgb);
    }
}
