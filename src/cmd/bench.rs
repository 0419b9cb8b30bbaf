//! `sipl bench loader DATA --scheme S --workers N --seconds T`: samples/s and time per stage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand};
use sipl_limits::{Ints, Reals};
use sipl_loader::scheme::Scheme;
use sipl_loader::{BatchDtype, Loader, LoaderConfig};
use sipl_shards::Dataset;
use sipl_train::trainer::metrics::MetricsLine;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Measure the sample stream alone (no training).
    Loader(LoaderBenchArgs),
    /// ResNet-18 train step alone on random data (forward, backward, Adam): images/s.
    Step(StepBenchArgs),
    /// Training end to end (loader, model, loss, Adam) from a config: samples/s.
    Train(TrainBenchArgs),
    /// The loader for minutes under a stalling, restarting consumer: memory over time, and a
    /// watchdog for deadlocks.
    Soak(super::soak::SoakArgs),
}

#[derive(Args)]
pub struct StepBenchArgs {
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: sipl_train::DeviceSpec,
    /// Images per step, in [1, 65536], and small enough that a step fits in half of this
    /// machine's memory on the CPU.
    #[arg(long, default_value_t = 192)]
    batch: i64,
    /// Image side, in [32, 1024].
    #[arg(long, default_value_t = 224)]
    size: i64,
    /// Timed steps, in [1, 1000000].
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first, in [0, 1000000].
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// channels_last (default: on for CUDA).
    #[arg(long)]
    channels_last: Option<bool>,
    /// bf16 autocast around forward and loss.
    #[arg(long)]
    amp: bool,
    /// Adam through PyTorch's fused kernel (default: on for CUDA, off for CPU).
    #[arg(long)]
    fused: Option<bool>,
}

#[derive(Args)]
pub struct TrainBenchArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
    /// Timed steps, in [1, 1000000], rounded up to whole windows.
    #[arg(long, default_value_t = 50)]
    steps: u64,
    /// Untimed steps before the first timed window, in [0, 1000000], rounded up to whole
    /// windows. Default: the loader's depth, data.workers × (prefetch + 1) batches: the
    /// batches it builds ahead while the model starts, which a timed window would otherwise
    /// count at the device's speed rather than the pipeline's.
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// Steps per measured window (one metrics line each, one printed rate each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
}

#[derive(Args)]
pub struct LoaderBenchArgs {
    data: PathBuf,
    #[arg(long, default_value = "siplv1")]
    scheme: Scheme,
    /// Worker threads, in [1, 4 × this machine's cores] (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// How long to measure, in (0, 86400] seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Samples per batch, in [1, 65536], and small enough that the loader's batch buffers fit
    /// in half of this machine's memory.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Finished batches each worker may queue ahead, in [1, 64].
    #[arg(long, default_value_t = 2)]
    prefetch: usize,
    /// Side of an output patch, in [8, 1024] (default: the stored image size).
    #[arg(long)]
    patch_size: Option<usize>,
    /// Element type of the batch pixels: f32, bf16 or f16 (training's `data.batch_dtype`).
    #[arg(long, default_value = "f32")]
    batch_dtype: BatchDtype,
    /// Batches taken before the timing starts, in [0, 1000000] (default: one per batch buffer
    /// of the pool, workers × (prefetch + 1) + 2, so that first-touching them is not timed).
    #[arg(long)]
    warmup_batches: Option<usize>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Loader(a) => loader(a),
        BenchCommand::Step(a) => step(a),
        BenchCommand::Train(a) => train(a),
        BenchCommand::Soak(a) => super::soak::run(a),
    }
}

/// Timed or untimed steps of a benchmark.
const BENCH_STEPS: Ints = Ints::new(1, 1_000_000);
/// How long a loader benchmark or soak may run, in seconds: up to a day.
pub const BENCH_SECONDS: Reals = Reals::open_closed(0.0, 86_400.0);

fn step(a: StepBenchArgs) -> anyhow::Result<()> {
    sipl_limits::BATCH.check("--batch", a.batch)?;
    sipl_limits::INPUT_SIZE.check("--size", a.size)?;
    BENCH_STEPS.check("--steps", a.steps)?;
    Ints::new(0, BENCH_STEPS.max).check("--warmup", a.warmup)?;
    let device = a.device.resolve()?;
    let bytes = sipl_train::model::train_step_bytes(a.batch as u64, a.size as u64, device);
    let what = format!(
        "ResNet-18 train steps of {} images at {}² on {}",
        a.batch,
        a.size,
        sipl_train::device::device_name(device)
    );
    sipl_limits::check_memory("--batch", a.batch, bytes, &what)?;
    let ips = sipl_train::bench::resnet_step(
        device,
        (a.batch, a.size),
        (a.steps, a.warmup),
        a.channels_last,
        (a.amp, a.fused),
    )?;
    let fused = a.fused.unwrap_or(device.is_cuda());
    println!(
        "resnet18 train step on {}: {ips:.1} images/s (batch {}, {}², {} timed steps, bf16 autocast {}, fused Adam {fused})",
        sipl_train::device::device_name(device),
        a.batch,
        a.size,
        a.steps,
        a.amp
    );
    Ok(())
}

fn train(a: TrainBenchArgs) -> anyhow::Result<()> {
    use sipl_train::config::TrainConfig;
    BENCH_STEPS.check("--steps", a.steps)?;
    Ints::new(0, BENCH_STEPS.max).check_opt("--warmup-steps", a.warmup_steps)?;
    let window = a.window;
    let timed = a.steps.div_ceil(window) * window;
    // The loader's depth: each worker's queue of `prefetch` finished batches plus the one it
    // holds while the queue is full.
    let depth = |config: &TrainConfig| {
        let prefetch = LoaderConfig::new(config.model.scheme, config.optim.batch_size).prefetch;
        (config.data.workers * (prefetch + 1)) as u64
    };
    let warmup_of = |config: &TrainConfig| {
        a.warmup_steps.unwrap_or_else(|| depth(config)).div_ceil(window) * window
    };
    // The warm-up depends on data.workers, which --set may change: read the config once for it.
    let warmup = warmup_of(&TrainConfig::load(&a.config, &a.sets)?);
    let mut sets = a.sets.clone();
    // No checkpoints inside the measurement (one is ~240 MB, and small sets end epochs often).
    sets.extend([
        format!("optim.max_steps={}", warmup + timed),
        "optim.epochs=1000000".into(),
        "run.checkpoint_every=1000000000".into(),
        "run.checkpoint_each_epoch=false".into(),
        format!("run.log_every={window}"),
    ]);
    let config = TrainConfig::load(&a.config, &sets)?;
    let tmp = std::env::temp_dir().join(format!("sipl-bench-train-{}", std::process::id()));
    let launch = sipl_train::dist::Launch::from_env()?;
    let world = launch.as_ref().map_or(1, |l| l.world);
    let job = sipl_train::trainer::TrainJob {
        config: config.clone(),
        run_dir: tmp.clone(),
        force: true,
        progress: sipl_train::trainer::Progress::Off,
        stop: Default::default(),
        // RANK/WORLD_SIZE set: the timed run is one rank of a distributed run (the GPU check
        // times world size 1 through NCCL this way).
        launch,
        faults: sipl_train::faults::FaultPlan::none(),
        after_epoch: None,
        monitor: None,
    };
    let result = sipl_train::trainer::train(job);
    let metrics = sipl_train::trainer::metrics::read(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    let windows: Vec<TimedWindow> =
        timed_windows(&metrics).into_iter().filter(|w| w.last_step > warmup).collect();
    anyhow::ensure!(!windows.is_empty(), "no timed window: raise --steps");
    let samples_per_window = (window as usize * config.optim.batch_size * world) as f64;
    for (i, w) in windows.iter().enumerate() {
        println!(
            "window {} (steps {}-{}): {:.1} samples/s{}",
            i + 1,
            w.last_step + 1 - window,
            w.last_step,
            w.samples_per_s,
            if w.after_epoch_end { " (an epoch ended inside: validation included)" } else { "" }
        );
    }
    // Every window holds the same number of samples: total samples over total seconds.
    let seconds: f64 = windows.iter().map(|w| samples_per_window / w.samples_per_s).sum();
    let samples = samples_per_window * windows.len() as f64;
    let crossed: Vec<String> = (windows.iter().enumerate())
        .filter(|(_, w)| w.after_epoch_end)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !crossed.is_empty() {
        eprintln!(
            "warning: an epoch ended inside timed window(s) {}: its validation and the loader's restart are in the figure; use more training images or fewer steps",
            crossed.join(", ")
        );
    }
    println!(
        "{} training end to end on {}: {:.1} samples/s ({samples:.0} samples in {seconds:.2} s; batch {}, {} timed steps after {warmup} untimed, windows of {window})",
        config.model.scheme,
        config.run.device,
        samples / seconds,
        config.optim.batch_size,
        windows.len() as u64 * window,
    );
    Ok(())
}

/// One metrics window of a benchmark run.
struct TimedWindow {
    /// The step that closed it.
    last_step: u64,
    samples_per_s: f64,
    /// A validation line came between the previous window and this one: an epoch ended
    /// inside it.
    after_epoch_end: bool,
}

/// The training windows of a metrics file, in order (validation lines mark the window they
/// fell into).
fn timed_windows(metrics: &[MetricsLine]) -> Vec<TimedWindow> {
    let mut out = Vec::new();
    let mut validated = false;
    for line in metrics {
        match line {
            MetricsLine::Validation(_) | MetricsLine::Monitor(_) => validated = true,
            MetricsLine::Train(t) => {
                out.push(TimedWindow {
                    last_step: t.step,
                    samples_per_s: t.samples_per_s,
                    after_epoch_end: validated,
                });
                validated = false;
            }
        }
    }
    out
}

fn loader(a: LoaderBenchArgs) -> anyhow::Result<()> {
    if let Some(w) = a.workers {
        sipl_limits::check_worker_threads("--workers", w)?;
    }
    BENCH_SECONDS.check("--seconds", a.seconds)?;
    sipl_limits::BATCH.check("--batch", a.batch)?;
    sipl_limits::PREFETCH.check("--prefetch", a.prefetch)?;
    sipl_limits::PATCH_SIZE.check_opt("--patch-size", a.patch_size)?;
    Ints::new(0, BENCH_STEPS.max).check_opt("--warmup-batches", a.warmup_batches)?;
    let ds = Arc::new(Dataset::open(&a.data)?);
    let mut cfg = LoaderConfig::new(a.scheme, a.batch);
    cfg.workers = a.workers.unwrap_or(cfg.workers);
    cfg.prefetch = a.prefetch;
    cfg.patch_size = a.patch_size;
    cfg.batch_dtype = a.batch_dtype;
    cfg.run_on = true; // epoch after epoch, as training reads them
    let loader = Loader::new(ds, cfg).map_err(|e| e.for_batch_option("--batch"))?;
    let warmup = a.warmup_batches.unwrap_or(cfg.pool_buffers());
    let mut epochs = (0u64..).flat_map(|e| loader.epoch(e, 0));
    for batch in epochs.by_ref().take(warmup) {
        batch?;
    }
    // Worker time from here on: the figures below are the steady state's.
    let st = loader.stats();
    let (decode0, build0, queue0, samples0) =
        (st.decode(), st.build(), st.queue_wait(), st.samples());
    let start = Instant::now();
    let (mut samples, mut batches) = (0usize, 0usize);
    let mut wait = std::time::Duration::ZERO;
    loop {
        let t = Instant::now();
        let Some(batch) = epochs.next() else { break };
        wait += t.elapsed();
        samples += batch?.batch_size;
        batches += 1;
        if start.elapsed().as_secs_f64() >= a.seconds {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(epochs); // stops and joins the workers, untimed
    let (decode, build, queue) =
        (st.decode() - decode0, st.build() - build0, st.queue_wait() - queue0);
    let worker_secs = (decode + build + queue).as_secs_f64().max(1e-9);
    let rss = peak_rss_mib();
    let sps = samples as f64 / secs;
    let per = (st.samples() - samples0).max(1) as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "scheme": a.scheme.name(), "workers": cfg.workers, "batch": a.batch,
                "batch_dtype": a.batch_dtype.name(),
                "patch_size": loader.spec().geometry.out, "samples": samples, "batches": batches,
                "seconds": secs, "samples_per_s": sps,
                "warmup_batches": warmup,
                "decode_ms_per_sample": decode.as_secs_f64() * 1e3 / per,
                "build_ms_per_sample": build.as_secs_f64() * 1e3 / per,
                "worker_queue_wait_fraction": queue.as_secs_f64() / worker_secs,
                "consumer_wait_fraction": wait.as_secs_f64() / secs,
                "peak_rss_mib": rss,
            })
        );
        return Ok(());
    }
    println!(
        "{}: {samples} samples in {secs:.1} s = {sps:.1} samples/s ({} workers, batch {}, patches {}², {})",
        a.scheme,
        cfg.workers,
        a.batch,
        loader.spec().geometry.out,
        a.batch_dtype
    );
    println!(
        "per sample (worker time): decode {:.3} ms, build (patches, style, projection) {:.3} ms",
        decode.as_secs_f64() * 1e3 / per,
        build.as_secs_f64() * 1e3 / per
    );
    println!(
        "workers waited for the consumer {:.0}% of their time; consumer waited {:.0}% of the run (after {warmup} untimed batches)",
        100.0 * queue.as_secs_f64() / worker_secs,
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
