//! `sipl train --config FILE [--set key=value]… --run-dir DIR [--devices LIST]`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use sipl_train::config::TrainConfig;
use sipl_train::dist::Launch;
use sipl_train::trainer::{TrainJob, train};

#[derive(Args)]
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
    /// cuda:0,cuda:1,cuda:2,cuda:3 (NCCL), or cpu,cpu (Gloo). optim.batch_size is per device.
    /// Across machines, launch `sipl train` with torchrun or srun instead (see README).
    #[arg(long, value_delimiter = ',', value_name = "DEVICE,…")]
    devices: Vec<String>,
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let launch = Launch::from_env()?;
    if !a.devices.is_empty() {
        anyhow::ensure!(
            launch.is_none(),
            "--devices starts its own ranks; under torchrun or srun (RANK is set), leave it out"
        );
        // The launcher only starts, watches and stops ranks: no sockets of its own.
        crate::quiet_on_closed_output();
        return super::launch::local(&a.devices);
    }
    let config = TrainConfig::load(&a.config, &a.sets)?;
    let main = launch.as_ref().is_none_or(|l| l.rank == 0);
    let job = TrainJob {
        config,
        run_dir: a.run_dir.clone(),
        force: a.force,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        stop: Arc::new(AtomicBool::new(false)),
        launch,
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
    Ok(())
}
