//! Every on-disk name and layout of a dataset directory, and the format version, in one place.
//!
//! ```text
//! DIR/dataset.json              written last: its presence marks the set complete
//! DIR/manifest.parquet          one row per source file seen, kept or not
//! DIR/shards/shard-00000.arrow  Arrow IPC file, one row per kept image
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

/// Bumped whenever a reader of the previous version would misread a directory. Additions that
/// older readers refuse loudly (the manifest's `orientation` column) or read correctly (escaped
/// non-UTF-8 names in `path`, see [`crate::names`]) keep it; this version reads both the
/// 10-column manifests written before `orientation` and the 11-column ones.
pub const FORMAT_VERSION: u32 = 1;

pub const DATASET_FILE: &str = "dataset.json";
pub const MANIFEST_FILE: &str = "manifest.parquet";
pub const SHARD_DIR: &str = "shards";
/// Suffix of a file still being written; a complete file is renamed without it.
pub const TMP_SUFFIX: &str = ".tmp";

/// Column names of a shard.
pub mod col {
    pub const ID: &str = "id";
    /// The source file relative to the ingest root, `/`-separated, stored as reversible UTF-8
    /// ([`crate::names`]).
    pub const PATH: &str = "path";
    pub const LABEL: &str = "label";
    pub const HEIGHT: &str = "height";
    pub const WIDTH: &str = "width";
    pub const PIXELS: &str = "pixels";
    pub const CHECKSUM: &str = "checksum";
}

/// `shards/shard-NNNNN.arrow`, relative to the dataset directory.
pub fn shard_rel_path(index: usize) -> String {
    format!("{SHARD_DIR}/shard-{index:05}.arrow")
}

pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}

/// The schema of every shard. `pixels` is a zstd frame of the RGB8 image in row-major HWC order;
/// `checksum` is the xxh3-64 of those raw (decompressed) pixels, so it vouches for the whole
/// path from encoder to decoder.
pub fn shard_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(col::ID, DataType::UInt64, false),
        Field::new(col::PATH, DataType::Utf8, false),
        Field::new(col::LABEL, DataType::Int32, true),
        Field::new(col::HEIGHT, DataType::UInt32, false),
        Field::new(col::WIDTH, DataType::UInt32, false),
        Field::new(col::PIXELS, DataType::Binary, false),
        Field::new(col::CHECKSUM, DataType::UInt64, false),
    ]))
}

/// The checksum stored per row: xxh3-64 of the raw RGB8 pixels.
pub fn pixel_checksum(rgb: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(rgb)
}

/// The xxh3-64 of `bytes` as 16 hex digits: the form of every hash sipl records (files in
/// `dataset.json`, checkpoint manifests, config and held-out-set fingerprints).
pub fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}
