//! `sipl bench soak DATA --minutes 10`: the loader for a long time under a misbehaving
//! consumer. The consumer stalls now and then (the workers wait for tickets), drops
//! streams mid-epoch and restarts at another (epoch, batch). Resident memory is reported over
//! time. A watchdog ends the process when no batch arrives for `--hang-seconds` (a deadlock),
//! and the run fails when memory grows beyond `--max-growth-mib` after warm-up (the second
//! report).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use rand::{RngExt, SeedableRng};
use sipl_loader::scheme::Scheme;
use sipl_loader::{Loader, LoaderConfig};
use sipl_shards::Dataset;

#[derive(Args)]
pub struct SoakArgs {
    data: PathBuf,
    #[arg(long, default_value = "siplv1")]
    scheme: Scheme,
    /// How long to run, in (0, 1440] minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Worker threads, in [1, 4 × this machine's cores] (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Samples per batch, in [1, 65536], and small enough that the loader's batch buffers fit
    /// in half of this machine's memory.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Side of an output patch, in [8, 1024] (default: the stored image size).
    #[arg(long)]
    patch_size: Option<usize>,
    /// Seconds between memory reports, in (0, 3600].
    #[arg(long, default_value_t = 30.0)]
    report_seconds: f64,
    /// The consumer stalls for this long about once every 100 batches, in [0, 3600] seconds.
    #[arg(long, default_value_t = 3.0)]
    stall_seconds: f64,
    /// No batch for this long counts as a deadlock, in [1, 86400] seconds.
    #[arg(long, default_value_t = 120)]
    hang_seconds: u64,
    /// Resident memory may grow this much from the second report to the peak after it, in
    /// [0, 1048576] MiB.
    #[arg(long, default_value_t = 64.0)]
    max_growth_mib: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Every flag against its range, before any work.
fn check(a: &SoakArgs) -> Result<(), sipl_limits::RangeError> {
    use sipl_limits::Reals;
    Reals::open_closed(0.0, 1440.0).check("--minutes", a.minutes)?;
    if let Some(w) = a.workers {
        sipl_limits::check_worker_threads("--workers", w)?;
    }
    sipl_limits::BATCH.check("--batch", a.batch)?;
    sipl_limits::PATCH_SIZE.check_opt("--patch-size", a.patch_size)?;
    Reals::open_closed(0.0, 3600.0).check("--report-seconds", a.report_seconds)?;
    Reals::closed(0.0, 3600.0).check("--stall-seconds", a.stall_seconds)?;
    sipl_limits::TIMEOUT_S.check("--hang-seconds", a.hang_seconds)?;
    Reals::closed(0.0, 1_048_576.0).check("--max-growth-mib", a.max_growth_mib)?;
    Ok(())
}

pub fn run(a: SoakArgs) -> anyhow::Result<()> {
    check(&a)?;
    let ds = Arc::new(Dataset::open(&a.data)?);
    let mut cfg = LoaderConfig::new(a.scheme, a.batch);
    cfg.workers = a.workers.unwrap_or(cfg.workers);
    cfg.patch_size = a.patch_size;
    // As training: a stream read to its epoch's end parks its workers, which a next stream from
    // batch 0 of the next epoch takes over and any other stops.
    cfg.run_on = true;
    let loader = Loader::new(ds, cfg).map_err(|e| e.for_batch_option("--batch"))?;
    let per_epoch = loader.batches_per_epoch();
    let start = Instant::now();
    let progress = Arc::new(AtomicU64::new(0));
    watchdog(progress.clone(), start, Duration::from_secs(a.hang_seconds));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let end = Duration::from_secs_f64(a.minutes * 60.0);
    let (mut batches, mut samples, mut stalls, mut restarts) = (0u64, 0u64, 0u64, 0u64);
    let mut reports: Vec<(f64, f64)> = Vec::new();
    let mut next_report = 0.0;
    let mut window = (Instant::now(), 0u64);
    println!("  time   batches  samples/s  stalls  restarts  anon RSS MiB");
    let mut epoch = 0u64;
    while start.elapsed() < end {
        // A stream from a random batch, dropped after a random number of batches.
        let first = rng.random_range(0..per_epoch);
        let take = rng.random_range(1..=per_epoch - first);
        for batch in loader.epoch(epoch, first).take(take) {
            let batch = batch?;
            batches += 1;
            samples += batch.batch_size as u64;
            progress.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            if rng.random_range(0..100) == 0 {
                stalls += 1;
                std::thread::sleep(Duration::from_secs_f64(a.stall_seconds));
            }
            let t = start.elapsed().as_secs_f64();
            if t >= next_report {
                let rss = current_rss_mib().unwrap_or(f64::NAN);
                let rate = (samples - window.1) as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                println!("{t:6.0}s {batches:9} {rate:10.1} {stalls:7} {restarts:9} {rss:8.1}");
                reports.push((t, rss));
                (window, next_report) = ((Instant::now(), samples), t + a.report_seconds);
            }
            if start.elapsed() >= end {
                break;
            }
        }
        restarts += 1;
        epoch += 1;
    }
    let rss = current_rss_mib().unwrap_or(f64::NAN);
    reports.push((start.elapsed().as_secs_f64(), rss));
    if reports.iter().any(|r| !r.1.is_finite()) {
        bail!("could not read this process's resident memory from /proc/self/status");
    }
    // The baseline is the second report: the first comes before buffers and pools fill.
    let Some(&(_, first)) = reports.get(1).filter(|_| reports.len() >= 3) else {
        bail!("too short to judge memory: fewer than 3 reports (lower --report-seconds)");
    };
    let peak = reports[1..].iter().map(|r| r.1).fold(f64::MIN, f64::max);
    println!(
        "{batches} batches, {stalls} stalls, {restarts} restarts in {:.1} min; anonymous RSS {first:.1} MiB after warm-up, {rss:.1} at the end, peak {peak:.1}",
        start.elapsed().as_secs_f64() / 60.0
    );
    let growth = peak - first;
    if growth > a.max_growth_mib {
        bail!("resident memory grew {growth:.1} MiB (limit {} MiB)", a.max_growth_mib);
    }
    println!(
        "no deadlock, memory growth {growth:.1} MiB at the peak (limit {} MiB)",
        a.max_growth_mib
    );
    Ok(())
}

/// Ends the process with status 3 when no batch has arrived for `limit`.
fn watchdog(progress: Arc<AtomicU64>, start: Instant, limit: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let last = Duration::from_millis(progress.load(Ordering::Relaxed));
            let idle = start.elapsed().saturating_sub(last);
            if idle > limit {
                eprintln!("error: no batch for {} s: the loader is stuck", idle.as_secs());
                std::process::exit(3);
            }
        }
    });
}

/// Anonymous resident memory of this process now (Linux `RssAnon`: heap and buffers, not the
/// memory-mapped shard pages, which the kernel may keep or drop as it likes).
fn current_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
