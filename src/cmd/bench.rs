//! `sipl bench loader DATA --scheme S --workers N --seconds T`: samples/s and time per stage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand};
use sipl_shards::Dataset;
use sipl_train::loader::{Loader, LoaderConfig};
use sipl_train::scheme::Scheme;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Measure the sample stream alone (no training).
    Loader(LoaderBenchArgs),
}

#[derive(Args)]
pub struct LoaderBenchArgs {
    data: PathBuf,
    #[arg(long, default_value = "siplv1")]
    scheme: Scheme,
    /// Worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 2)]
    prefetch: usize,
    /// Side of an output patch (default: the stored image size).
    #[arg(long)]
    patch_size: Option<usize>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Loader(a) = c;
    let ds = Arc::new(Dataset::open(&a.data)?);
    let mut cfg = LoaderConfig::new(a.scheme, a.batch);
    cfg.workers = a.workers.unwrap_or(cfg.workers);
    cfg.prefetch = a.prefetch;
    cfg.patch_size = a.patch_size;
    let loader = Loader::new(ds, cfg)?;
    let start = Instant::now();
    let (mut samples, mut batches, mut epoch) = (0usize, 0usize, 0u64);
    let mut wait = std::time::Duration::ZERO;
    'outer: loop {
        let mut stream = loader.epoch(epoch, 0);
        loop {
            let t = Instant::now();
            let Some(batch) = stream.next() else { break };
            wait += t.elapsed();
            let batch = batch?;
            samples += batch.batch_size;
            batches += 1;
            if start.elapsed().as_secs_f64() >= a.seconds {
                break 'outer;
            }
        }
        epoch += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let st = loader.stats();
    let worker_secs = (st.decode() + st.build() + st.queue_wait()).as_secs_f64().max(1e-9);
    let rss = peak_rss_mib();
    let sps = samples as f64 / secs;
    let per = st.samples().max(1) as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "scheme": a.scheme.name(), "workers": cfg.workers, "batch": a.batch,
                "patch_size": loader.spec().geometry.out, "samples": samples, "batches": batches,
                "seconds": secs, "samples_per_s": sps,
                "decode_ms_per_sample": st.decode().as_secs_f64() * 1e3 / per,
                "build_ms_per_sample": st.build().as_secs_f64() * 1e3 / per,
                "worker_queue_wait_fraction": st.queue_wait().as_secs_f64() / worker_secs,
                "consumer_wait_fraction": wait.as_secs_f64() / secs,
                "peak_rss_mib": rss,
            })
        );
        return Ok(());
    }
    println!(
        "{}: {samples} samples in {secs:.1} s = {sps:.1} samples/s ({} workers, batch {}, patches {}²)",
        a.scheme,
        cfg.workers,
        a.batch,
        loader.spec().geometry.out
    );
    println!(
        "per sample (worker time): decode {:.3} ms, build (patches, style, projection) {:.3} ms",
        st.decode().as_secs_f64() * 1e3 / per,
        st.build().as_secs_f64() * 1e3 / per
    );
    println!(
        "workers blocked on a full queue {:.0}% of their time; consumer waited {:.0}% of the run",
        100.0 * st.queue_wait().as_secs_f64() / worker_secs,
        100.0 * wait.as_secs_f64() / secs
    );
    if let Some(r) = rss {
        println!("peak RSS {r:.0} MiB");
    }
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
