//! A complete dataset directory opened for reading: metadata plus every shard, mapped.

use std::path::{Path, PathBuf};

use crate::error::{Result, ShardError};
use crate::meta::DatasetMeta;
use crate::reader::{ImageRecord, ShardReader};

/// An opened dataset. Images are addressed by a global index `0..len()` in storage order
/// (which is the ingest's source order), or by `id` (equal to the index).
pub struct Dataset {
    dir: PathBuf,
    meta: DatasetMeta,
    identity: String,
    shards: Vec<ShardReader>,
    /// `starts[s]` = global index of the first row of shard `s`; last entry = total.
    starts: Vec<usize>,
}

impl Dataset {
    /// Opens `dir`; fails if it is incomplete or its shards disagree with `dataset.json` in
    /// row counts or first ids (so a `dataset.json` naming the wrong file for a shard is not
    /// read silently; full checksums are `verify`'s job).
    pub fn open(dir: &Path) -> Result<Self> {
        let identity = crate::meta::identity(dir)?;
        let meta = DatasetMeta::load(dir)?;
        let mut shards = Vec::with_capacity(meta.shards.len());
        let mut starts = vec![0];
        for info in &meta.shards {
            let reader = ShardReader::open(&dir.join(&info.file))?;
            if reader.len() != info.rows {
                return Err(ShardError::BadShard {
                    path: reader.path().to_owned(),
                    reason: format!("{} rows, dataset.json says {}", reader.len(), info.rows),
                });
            }
            if let Some(first) = (!reader.is_empty()).then(|| reader.record(0)).transpose()?
                && first.id != info.first_id
            {
                return Err(ShardError::BadShard {
                    path: reader.path().to_owned(),
                    reason: format!(
                        "first id {}, dataset.json says {}: not the shard it names",
                        first.id, info.first_id
                    ),
                });
            }
            starts.push(starts[starts.len() - 1] + reader.len());
            shards.push(reader);
        }
        Ok(Dataset { dir: dir.to_owned(), meta, identity, shards, starts })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    /// The set's identity ([`crate::identity`]): the hash of its `dataset.json` when opened.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn shards(&self) -> &[ShardReader] {
        &self.shards
    }

    pub fn len(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (shard, row) of global index `index`.
    pub fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len() {
            return None;
        }
        let s = self.starts.partition_point(|&x| x <= index) - 1;
        Some((s, index - self.starts[s]))
    }

    pub fn record(&self, index: usize) -> Result<ImageRecord<'_>> {
        let (s, r) = self.locate(index).ok_or_else(|| self.out_of_range(index))?;
        self.shards[s].record(r)
    }

    /// Decompresses image `index` into `out` (RGB8, HWC), checksum-checked.
    pub fn decode_into(&self, index: usize, out: &mut Vec<u8>) -> Result<ImageRecord<'_>> {
        let (s, r) = self.locate(index).ok_or_else(|| self.out_of_range(index))?;
        self.shards[s].decode_into(r, out)
    }

    fn out_of_range(&self, index: usize) -> ShardError {
        ShardError::BadMeta {
            path: self.dir.clone(),
            reason: format!("image index {index} out of range ({} images)", self.len()),
        }
    }
}
