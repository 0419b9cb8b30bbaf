//! One module per subcommand.

pub mod bench;
pub mod embed;
pub mod eval;
pub mod export;
pub mod ingest;
pub mod knn;
pub mod launch;
pub mod preview;
pub mod report;
pub mod shards;
pub mod soak;
pub mod synth;
pub mod train;
pub mod tsne;
pub mod tune;

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// An output folder given by `option`: absent (it is made when the work is done) or a
/// folder, never an existing file. Checked before any work.
pub fn output_dir(option: &str, path: &std::path::Path) -> Result<(), sipl_limits::RangeError> {
    match path.exists() && !path.is_dir() {
        true => Err(sipl_limits::RangeError::new(option, path.display(), "a folder")
            .note("it is an existing file")),
        false => Ok(()),
    }
}

/// An output file given by `option`: not a folder, and in a folder that exists. Checked
/// before any work, so that a long computation never ends on an unwritable path.
pub fn output_file(option: &str, path: &std::path::Path) -> Result<(), sipl_limits::RangeError> {
    let bad = |why: String| {
        Err(sipl_limits::RangeError::new(option, path.display(), "a file in an existing folder")
            .note(why))
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if path.is_dir() {
        return bad("it is a folder".into());
    }
    match parent {
        Some(p) if !p.is_dir() => bad(format!("{} is not a folder", p.display())),
        _ => Ok(()),
    }
}
