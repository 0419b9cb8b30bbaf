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
