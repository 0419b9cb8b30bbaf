//! One module per subcommand.

pub mod bench;
pub mod embed;
pub mod eval;
pub mod export;
pub mod ingest;
pub mod knn;
pub mod launch;
pub mod outputs;
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
