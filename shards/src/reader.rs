//! Reads a shard zero-copy from a memory map: Arrow arrays point straight into the mapped file.

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BinaryArray, Int32Array, StringArray, UInt32Array, UInt64Array,
};
use arrow::buffer::Buffer;
use arrow::datatypes::{Int32Type, UInt32Type, UInt64Type};
use arrow::ipc::convert::try_fb_to_schema;
use arrow::ipc::reader::{FileDecoder, read_footer_length};
use arrow::ipc::{Block, root_as_footer};
use arrow::record_batch::RecordBatch;

use crate::error::{Result, ShardError};
use crate::format::{col, pixel_checksum, shard_schema};

/// The fields of one stored image, borrowed from the map.
#[derive(Debug, Clone, Copy)]
pub struct ImageRecord<'a> {
    pub id: u64,
    pub path: &'a str,
    pub label: Option<i32>,
    pub height: u32,
    pub width: u32,
    pub pixels_zstd: &'a [u8],
    pub checksum: u64,
}

impl ImageRecord<'_> {
    pub fn raw_len(&self) -> usize {
        self.height as usize * self.width as usize * 3
    }
}

struct Columns {
    ids: UInt64Array,
    paths: StringArray,
    labels: Int32Array,
    heights: UInt32Array,
    widths: UInt32Array,
    pixels: BinaryArray,
    sums: UInt64Array,
}

/// A memory-mapped shard. Cheap to clone-by-`Arc` and to share across threads.
pub struct ShardReader {
    path: PathBuf,
    batches: Vec<Columns>,
    /// `starts[i]` = index of the first row of batch `i`; last entry = total rows.
    starts: Vec<usize>,
}

impl ShardReader {
    /// Maps `path` and decodes its footer and record batches without copying pixel data.
    ///
    /// A damaged file is an error, never a crash: arrow-rs's IPC decoder panics on some
    /// malformed buffer offsets (found by `tests/fuzz.rs`), so decoding runs under
    /// `catch_unwind` and such a panic becomes [`ShardError::BadShard`].
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = map_file(path)?;
        let buffer = Buffer::from(bytes);
        let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| Self::decode(path, &buffer)));
        decoded.unwrap_or_else(|panic| {
            Err(ShardError::BadShard {
                path: path.to_owned(),
                reason: format!("malformed Arrow IPC: {}", crate::error::panic_message(&panic)),
            })
        })
    }

    fn decode(path: &Path, buffer: &Buffer) -> Result<Self> {
        let bad = |reason: String| ShardError::BadShard { path: path.to_owned(), reason };
        let n = buffer.len();
        if n < 10 {
            return Err(bad(format!("file is {n} bytes, too short for Arrow IPC")));
        }
        let trailer: [u8; 10] =
            buffer[n - 10..].try_into().map_err(|_| bad("short trailer".into()))?;
        let footer_len = read_footer_length(trailer).map_err(|e| bad(e.to_string()))?;
        if footer_len + 10 > n {
            return Err(bad("footer length exceeds the file".into()));
        }
        let footer =
            root_as_footer(&buffer[n - 10 - footer_len..n - 10]).map_err(|e| bad(e.to_string()))?;
        let fb_schema = footer.schema().ok_or_else(|| bad("footer has no schema".into()))?;
        let schema = try_fb_to_schema(fb_schema).map_err(|e| bad(e.to_string()))?;
        if schema.fields() != shard_schema().fields() {
            return Err(bad(format!("unexpected schema {schema:?}")));
        }
        let mut decoder =
            FileDecoder::new(Arc::new(schema), footer.version()).with_require_alignment(true);
        for block in footer.dictionaries().iter().flatten() {
            let data = block_data(buffer, block).ok_or_else(|| bad("block outside file".into()))?;
            decoder.read_dictionary(block, &data).map_err(|e| bad(e.to_string()))?;
        }
        let mut batches = Vec::new();
        let mut starts = vec![0];
        for block in footer.recordBatches().iter().flatten() {
            let data = block_data(buffer, block).ok_or_else(|| bad("block outside file".into()))?;
            let batch = decoder
                .read_record_batch(block, &data)
                .map_err(|e| bad(e.to_string()))?
                .ok_or_else(|| bad("empty record batch block".into()))?;
            let rows = batch.num_rows();
            batches.push(columns(&batch).map_err(bad)?);
            starts.push(starts[starts.len() - 1] + rows);
        }
        Ok(ShardReader { path: path.to_owned(), batches, starts })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored fields of row `row` (no decompression).
    pub fn record(&self, row: usize) -> Result<ImageRecord<'_>> {
        if row >= self.len() {
            return Err(self.bad_row(row, format!("out of range ({} rows)", self.len())));
        }
        let b = self.starts.partition_point(|&s| s <= row) - 1;
        let c = &self.batches[b];
        let i = row - self.starts[b];
        Ok(ImageRecord {
            id: c.ids.value(i),
            path: c.paths.value(i),
            label: c.labels.is_valid(i).then(|| c.labels.value(i)),
            height: c.heights.value(i),
            width: c.widths.value(i),
            pixels_zstd: c.pixels.value(i),
            checksum: c.sums.value(i),
        })
    }

    /// Decompresses row `row` into `out` (resized to `height * width * 3`) and checks its
    /// checksum. Returns the record for its metadata.
    pub fn decode_into(&self, row: usize, out: &mut Vec<u8>) -> Result<ImageRecord<'_>> {
        let rec = self.record(row)?;
        // The frame states its decompressed size: check it before allocating, so a damaged
        // height or width cannot ask for gigabytes.
        match zstd::zstd_safe::get_frame_content_size(rec.pixels_zstd) {
            Ok(Some(n)) if n == rec.raw_len() as u64 => {}
            Ok(Some(n)) => {
                return Err(self.bad_row(
                    row,
                    format!(
                        "pixels decompress to {n} bytes, but {}x{}x3 is {}",
                        rec.height,
                        rec.width,
                        rec.raw_len()
                    ),
                ));
            }
            _ => return Err(self.bad_row(row, "pixels are not a sized zstd frame".into())),
        }
        out.resize(rec.raw_len(), 0);
        let n = DECOMPRESSOR
            .with(|d| match &mut *d.borrow_mut() {
                Some(d) => d.decompress_to_buffer(rec.pixels_zstd, out.as_mut_slice()),
                None => zstd::bulk::decompress_to_buffer(rec.pixels_zstd, out.as_mut_slice()),
            })
            .map_err(|e| self.bad_row(row, format!("pixels do not decompress: {e}")))?;
        if n != rec.raw_len() {
            return Err(self.bad_row(
                row,
                format!("pixels decompress to {n} bytes, expected {}", rec.raw_len()),
            ));
        }
        if pixel_checksum(out) != rec.checksum {
            return Err(self.bad_row(row, "pixel checksum mismatch".into()));
        }
        Ok(rec)
    }

    fn bad_row(&self, row: usize, reason: String) -> ShardError {
        ShardError::BadRow { path: self.path.clone(), row, reason }
    }
}

thread_local! {
    /// Each thread's zstd decompression context, made once and reused for every image (a new
    /// context per image costs its allocation and set-up each time). `None` if zstd could not
    /// make one; then each image gets its own, as `zstd::bulk::decompress_to_buffer` does.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// Maps a whole file read-only.
///
/// # Safety (of the one `unsafe` here)
/// A memory map is only sound while nobody truncates or rewrites the file. Shards are never
/// modified in place: writers create a new file under a temporary name and rename it, so a
/// mapped shard keeps its bytes. Checksums catch outside tampering on read.
fn map_file(path: &Path) -> Result<bytes::Bytes> {
    let file = File::open(path).map_err(|e| ShardError::io(path, e))?;
    // SAFETY: see above; the map is read-only and shards are immutable once renamed.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ShardError::io(path, e))?;
    Ok(bytes::Bytes::from_owner(map))
}

fn block_data(buffer: &Buffer, block: &Block) -> Option<Buffer> {
    let start = usize::try_from(block.offset()).ok()?;
    let len =
        usize::try_from(block.bodyLength()).ok()? + usize::try_from(block.metaDataLength()).ok()?;
    let end = start.checked_add(len)?;
    (end <= buffer.len()).then(|| buffer.slice_with_length(start, len))
}

fn columns(batch: &RecordBatch) -> std::result::Result<Columns, String> {
    let get =
        |name: &str| batch.column_by_name(name).ok_or_else(|| format!("missing column {name}"));
    let no_nulls = |name: &str, a: &dyn Array| {
        if a.null_count() > 0 { Err(format!("column {name} has nulls")) } else { Ok(()) }
    };
    for name in [col::ID, col::PATH, col::HEIGHT, col::WIDTH, col::PIXELS, col::CHECKSUM] {
        no_nulls(name, get(name)?.as_ref())?;
    }
    Ok(Columns {
        ids: get(col::ID)?.as_primitive::<UInt64Type>().clone(),
        paths: get(col::PATH)?.as_string::<i32>().clone(),
        labels: get(col::LABEL)?.as_primitive::<Int32Type>().clone(),
        heights: get(col::HEIGHT)?.as_primitive::<UInt32Type>().clone(),
        widths: get(col::WIDTH)?.as_primitive::<UInt32Type>().clone(),
        pixels: get(col::PIXELS)?.as_binary::<i32>().clone(),
        sums: get(col::CHECKSUM)?.as_primitive::<UInt64Type>().clone(),
    })
}
