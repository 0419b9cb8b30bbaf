//! sipl's dataset format: compressed, memory-mapped, checksummed Arrow shards.
//!
//! A dataset directory holds `shards/shard-NNNNN.arrow` (Arrow IPC, one row per kept image:
//! id, source path, label, height, width, zstd-compressed RGB8 pixels, checksum; paths are
//! reversible UTF-8 text, see [`names`]),
//! `manifest.parquet` (one row per source file seen, kept or not and why) and `dataset.json`
//! (settings, counts, per-file sizes and hashes), written last so that its presence marks the
//! set complete. Both Arrow files open in pyarrow, polars or duckdb without this crate.
//!
//! ```no_run
//! # fn main() -> Result<(), sipl_shards::ShardError> {
//! let ds = sipl_shards::Dataset::open(std::path::Path::new("data/tiny-val"))?;
//! let mut rgb = Vec::new();
//! let rec = ds.decode_into(0, &mut rgb)?; // checksum-checked RGB8, HWC
//! println!("{} is {}x{}, label {:?}", rec.path, rec.width, rec.height, rec.label);
//! # Ok(()) }
//! ```
//!
//! This crate hands out bytes and images, never tensors, and builds without libtorch.

mod dataset;
mod error;
pub mod format;
mod fsutil;
mod manifest;
mod meta;
pub mod names;
mod reader;
mod verify;
mod writer;

pub use dataset::Dataset;
pub use error::{Result, ShardError};
pub use format::{FORMAT_VERSION, pixel_checksum, xxh3_hex};
pub use fsutil::write_atomic;
pub use manifest::{ManifestEntry, read_manifest, write_manifest};
pub use meta::{Counts, DatasetMeta, FileInfo, fingerprint, identity};
pub use names::{decode_path, encode_path};
pub use reader::{ImageRecord, ShardReader};
pub use verify::{VerifyReport, verify};
pub use writer::{EncodedImage, ShardInfo, ShardWriter};

// `ShardReader::open` and `read_manifest` turn third-party decoder panics into errors with
// `catch_unwind`, which does nothing when panics abort.
#[cfg(panic = "abort")]
compile_error!(
    "sipl-shards relies on unwinding to contain decoder panics; do not build with panic = \"abort\""
);
