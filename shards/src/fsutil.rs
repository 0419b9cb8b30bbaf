//! Atomic file publication: write under a temporary name, fsync, rename, fsync the directory.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, ShardError};

/// Renames a finished, fsynced `tmp` to `path` and makes the rename durable.
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|e| ShardError::io(path, e))?;
    if let Some(dir) = path.parent() {
        // A directory fsync makes the rename itself survive a power loss.
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| ShardError::io(dir, e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = crate::format::tmp_path(path);
    let file = File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
    use std::io::Write;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(bytes).map_err(|e| ShardError::io(&tmp, e))?;
    let file = w.into_inner().map_err(|e| ShardError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| ShardError::io(&tmp, e))?;
    commit(&tmp, path)
}

/// A writer that counts and hashes (xxh3-64, as [`crate::format::xxh3_hex`]) what passes
/// through it, so a file's size and hash come from writing it, not from reading it back.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: xxhash_rust::xxh3::Xxh3::new(), bytes: 0 }
    }

    /// The inner writer, the byte count and the hash in `xxh3_hex`'s format.
    pub(crate) fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, format!("{:016x}", self.hasher.digest()))
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
