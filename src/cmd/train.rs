//! `sipl train --config FILE [--set key=value]… --run-dir DIR [--devices LIST]`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::outputs::{Out, Owner, Reads, output_dir};
use sipl_train::config::TrainConfig;
use sipl_train::dist::Launch;
use sipl_train::faults::FaultPlan;
use sipl_train::trainer::{
    EpochEnd, EpochGate, MonitorHook, Progress, TrainError, TrainJob, train,
};

#[derive(Args)]
#[command(after_help = config_keys_help())]
pub struct TrainArgs {
    /// A TOML config (see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Override a config value, e.g. --set optim.lr=1e-4 --set data.path=shards/x.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
    /// Run directory: config, metrics, checkpoints, weights. An existing one is resumed.
    #[arg(long)]
    run_dir: PathBuf,
    /// Resume even if the run directory was made with another config (or number of ranks).
    #[arg(long)]
    force: bool,
    /// Data-parallel training on this machine: one process per device, e.g.
    /// cuda:0,cuda:1,cuda:2,cuda:3 (NCCL), or cpu,cpu (Gloo; at most one CPU rank per core,
    /// and run.threads × ranks at most the cores). optim.batch_size is per device. Across
    /// machines, launch `sipl train` with torchrun or srun instead (see README).
    #[arg(long, value_delimiter = ',', value_name = "DEVICE,…")]
    devices: Vec<String>,
    /// For programs that drive training (`sipl tune`): after each epoch's validation and
    /// checkpoint, print the validation line as one JSON object on stdout and read `continue`
    /// or `stop` from stdin (end of input stops). A stopped run resumes like any other.
    #[arg(long, conflicts_with = "devices")]
    epoch_handshake: bool,
    #[arg(long, short)]
    quiet: bool,
}

/// `faults`: none for the user's binary (see `sipl_train::faults`).
pub fn run(a: TrainArgs, faults: FaultPlan) -> anyhow::Result<()> {
    let launch = Launch::from_env()?;
    if !a.devices.is_empty() {
        anyhow::ensure!(
            launch.is_none(),
            "--devices starts its own ranks; under torchrun or srun (RANK is set), leave it out"
        );
        // The launcher only starts, watches and stops ranks: no sockets of its own.
        crate::quiet_on_closed_output();
        return super::launch::local(&a.devices, &a.config, &a.sets);
    }
    // Every key against its range and this machine, before the run directory is touched.
    let config = TrainConfig::load(&a.config, &a.sets)?;
    let reads = Reads::new()
        .add("the dataset (data.path)", &config.data.path)
        .add_opt("the monitor's dataset", config.monitor.as_ref().map(|m| m.data.as_path()));
    output_dir("--run-dir", &a.run_dir, Out::Own(Owner::Run, &[]), &reads)?;
    let main = launch.as_ref().is_none_or(|l| l.rank == 0);
    // The monitor set is opened, split and checked before the run directory is written.
    let monitor = match &config.monitor {
        Some(m) => {
            // Which device kind bounds the memory of a batch (each rank measures on its own).
            let device = config.run.device.resolve()?;
            let knn = sipl_eval::monitor::KnnMonitor::new(m, device)?;
            if main && !a.quiet {
                let (train, held) = knn.sizes();
                eprintln!(
                    "monitor: kNN (k = {}) of {held} held-out images of {} against {train}, every {} epoch(s)",
                    m.k,
                    m.data.display(),
                    m.every
                );
            }
            Some(Box::new(knn) as MonitorHook)
        }
        None => None,
    };
    anyhow::ensure!(
        !a.epoch_handshake || launch.is_none(),
        "--epoch-handshake drives one process; under torchrun or srun (RANK is set), leave it out"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let job = TrainJob {
        config,
        run_dir: a.run_dir.clone(),
        force: a.force,
        progress: Progress::for_stderr(a.quiet),
        stop: stop.clone(),
        launch,
        faults,
        after_epoch: a.epoch_handshake.then(|| epoch_handshake(stop)),
        monitor,
    };
    let r = train(job)?;
    if !main {
        return Ok(());
    }
    crate::quiet_on_closed_output();
    let acc = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.1}%", 100.0 * a));
    println!(
        "{}: {} after {} steps{}{} ({:.1} samples/s); pretext val accuracy {} (best {})",
        a.run_dir.display(),
        if r.interrupted { "stopped, checkpoint written," } else { "done" },
        r.steps,
        r.resumed_from.map_or(String::new(), |s| format!(", resumed from step {s}")),
        if r.world > 1 { format!(" on {} ranks", r.world) } else { String::new() },
        r.samples_per_s,
        acc(r.last_val_accuracy),
        acc(r.best_val_accuracy),
    );
    if let Some(m) = &r.last_monitor {
        println!(
            "{}: monitor kNN (k = {}) {:.1}% [{:.1}, {:.1}] of {} held-out images (best {})",
            a.run_dir.display(),
            m.knn_k,
            100.0 * m.knn_accuracy,
            100.0 * m.knn_low,
            100.0 * m.knn_high,
            m.knn_held_out,
            acc(r.best_knn_accuracy),
        );
    }
    Ok(())
}

/// `--epoch-handshake`: the epoch's validation line (with the monitor's fields when it
/// measured at that epoch) out, the answer in. A thread of its own reads the answers, so that
/// SIGINT or SIGTERM (`stop`) ends the wait as `stop` would: the run is checkpointed at the
/// epoch's end and exits 0, answered or not.
fn epoch_handshake(stop: Arc<AtomicBool>) -> EpochGate {
    use std::io::BufRead;
    use std::sync::mpsc;
    let (tx, rx) = mpsc::channel::<std::io::Result<String>>();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        loop {
            let mut line = String::new();
            let read = stdin.lock().read_line(&mut line);
            let end = !matches!(read, Ok(n) if n > 0);
            if tx.send(read.map(|_| line)).is_err() || end {
                break;
            }
        }
    });
    let answers = std::sync::Mutex::new(rx);
    Box::new(move |end: &EpochEnd| {
        use std::io::Write;
        let io = |e| TrainError::Io { path: "standard output/input".into(), source: e };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", end.to_json()).and_then(|()| out.flush()).map_err(io)?;
        let answers = answers.lock().unwrap_or_else(|e| e.into_inner());
        let answer = loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            match answers.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(read) => break read.map_err(io)?,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                // The end of input was read before: stop, as the empty answer does.
                Err(mpsc::RecvTimeoutError::Disconnected) => break String::new(),
            }
        };
        match answer.trim() {
            "continue" => Ok(true),
            "stop" | "" => Ok(false),
            other => Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("--epoch-handshake: expected `continue` or `stop`, read {other:?}"),
            ))),
        }
    })
}

/// The config keys and their ranges, for `sipl train --help` (the same constants the config's
/// validation uses, and this machine's limits).
fn config_keys_help() -> String {
    use sipl_limits::*;
    let cores = machine::cores();
    let workers = machine::worker_threads();
    let keys: [(&str, String, &str); 38] = [
        ("data.path", "a dataset made by `sipl ingest` (square images of one size)".into(), ""),
        ("data.train_images", "[1, images − 1]: the first N train, the rest validate".into(), ""),
        ("data.val_fraction", format!("{HELD_OUT_FRACTION}, used without train_images"), "0.0625"),
        ("data.patch_size", format!("{PATCH_SIZE}"), "the stored image size"),
        ("data.workers", format!("[1, 4 × cores] = {workers} here"), "one per core"),
        (
            "data.batch_dtype",
            "f32, bf16 or f16: batch elements (half: rounded)".into(),
            "bf16 with run.amp, else f32",
        ),
        ("model.scheme", "opl, siplv1, siplv2 or siplv3".into(), ""),
        ("model.alpha", format!("{ALPHA}, the weight of symKL"), "5"),
        ("model.joint_views", "true or false".into(), "false"),
        (
            "model.batched_views",
            "true or false: views in one pass, statistics per view".into(),
            "on for CUDA",
        ),
        ("optim.lr", format!("{LR}"), ""),
        ("optim.weight_decay", format!("{WEIGHT_DECAY}"), "0"),
        ("optim.batch_size", format!("{BATCH}; its buffers and steps in half the memory"), ""),
        ("optim.epochs", format!("{EPOCHS}"), ""),
        ("optim.max_steps", format!("{STEPS}"), "none"),
        ("run.seed", "an integer >= 0".into(), "0"),
        ("run.device", "cpu, cuda, cuda:N or auto".into(), "auto"),
        ("run.checkpoint_every", format!("{STEPS} steps"), "1000"),
        ("run.checkpoint_each_epoch", "true or false".into(), "true"),
        ("run.keep_checkpoints", format!("{KEEP_CHECKPOINTS}"), "3"),
        ("run.log_every", format!("{STEPS} steps"), "20"),
        (
            "run.threads",
            format!("[1, cores] = [1, {cores}] here: libtorch CPU threads"),
            "libtorch's",
        ),
        ("run.channels_last", "true or false".into(), "true on CUDA"),
        ("run.amp", "true (CUDA only) or false".into(), "true on CUDA"),
        ("run.overlap_uploads", "true or false".into(), "true"),
        ("run.bucket_mb", format!("{BUCKET_MB} MiB"), "25"),
        ("run.dist_timeout_s", format!("{TIMEOUT_S} s"), "300"),
        ("run.best_by", "pretext or monitor: what picks best.safetensors".into(), "pretext"),
        ("monitor.data", "a labelled dataset: kNN accuracy while training".into(), "no monitor"),
        ("monitor.every", format!("{EPOCHS} epochs (and the run's start and end)"), "1"),
        ("monitor.k", format!("{KNN_K}, at most the labelled neighbours"), "20"),
        ("monitor.temperature", format!("{KNN_TEMPERATURE}"), "0.07"),
        ("monitor.input_size", format!("{INPUT_SIZE}"), "224"),
        ("monitor.images", "[2, images]: only the first N".into(), "all"),
        ("monitor.train_images", "[1, images − 1]: the first N are neighbours".into(), ""),
        ("monitor.stratified", format!("{HELD_OUT_FRACTION}: held out per class"), "0.2"),
        ("monitor.split_seed", "an integer >= 0".into(), "0"),
        ("monitor.batch", format!("{BATCH} images per encoder pass"), "64"),
    ];
    let mut s = String::from(
        "Config keys and their ranges, each checked before the run directory is touched:\n",
    );
    for (key, range, default) in keys {
        let default =
            if default.is_empty() { String::new() } else { format!(" [default: {default}]") };
        s.push_str(&format!("  {key:<26} {range}{default}\n"));
    }
    s.trim_end().to_owned()
}
