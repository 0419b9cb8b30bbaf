//! The `sipl` command line: parses flags into the library crates' typed settings and prints
//! what they return. Two binaries run it: `sipl` (src/main.rs), the user's, and
//! `sipl-fault-harness` (src/bin/), which the tests build to inject faults into training.

mod cmd;

pub use sipl_train::faults::FaultPlan;

/// mimalloc reuses the loader's large per-sample buffers instead of returning them to the
/// kernel and page-faulting them back (measured: a quarter of worker time under glibc malloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sipl",
    version,
    about = "Style-invariant patch localization: data, training, evaluation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn an image source into compressed, checksummed Arrow shards.
    Ingest(cmd::ingest::IngestArgs),
    /// Check or describe a dataset directory.
    #[command(subcommand)]
    Shards(cmd::shards::ShardsCommand),
    /// Write a procedural image set (deterministic by seed; nothing to download).
    Synth(cmd::synth::SynthArgs),
    /// Draw a contact sheet of samples: grid, centre and neighbour patches, style variants.
    Preview(cmd::preview::PreviewArgs),
    /// Train a pretext model (resumes an existing run directory).
    Train(cmd::train::TrainArgs),
    /// Evaluate frozen encoders: downstream accuracy curve, t-SNE study.
    #[command(subcommand)]
    Eval(cmd::eval::EvalCommand),
    /// Write every image's embedding to Parquet.
    Embed(cmd::embed::EmbedArgs),
    /// Export a run's encoder as a torchvision resnet18 state dict (safetensors).
    Export(cmd::export::ExportArgs),
    /// Table 4 in Markdown with Figures 3 and 4, from evaluated runs.
    Report(cmd::report::ReportArgs),
    /// Hyper-parameter search with Optuna: every trial a resumable `sipl train` run.
    Tune(cmd::tune::TuneArgs),
    /// Benchmarks (throughput figures, not tests).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Show the compute devices libtorch sees.
    Info,
}

/// Makes a write to closed output (`sipl shards inspect DIR | head -1`) end the process quietly
/// with the conventional status 141 (killed by SIGPIPE), as `cat` or `ls` do. Rust ignores
/// SIGPIPE by default, so such a write failed with EPIPE and `println!` panicked (exit 101).
pub fn quiet_on_closed_output() {
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// With `SIPL_DIE_WITH_PARENT` set (by `sipl tune` for its trials), the process gets SIGTERM
/// when the process that started it dies, even by SIGKILL: a training run then checkpoints
/// and lets go of its run directory instead of running on unwatched.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("SIPL_DIE_WITH_PARENT").is_some() {
        // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid only change or read this process's own
        // settings.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // The parent died before the signal was armed: we were handed to init.
            if libc::getppid() == 1 {
                libc::raise(libc::SIGTERM);
            }
        }
    }
}

/// Parses the process's arguments and runs the command; `faults` reach `sipl train` only.
pub fn main_with(faults: FaultPlan) -> ExitCode {
    let cli = Cli::parse();
    die_with_parent();
    // Training keeps SIGPIPE ignored while its ranks talk over sockets (a peer that died must
    // be an error there, not a silent death); `sipl train` switches just before it prints.
    if !matches!(cli.command, Command::Train(_)) {
        quiet_on_closed_output();
    }
    let result = match cli.command {
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Shards(c) => cmd::shards::run(c),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Preview(a) => cmd::preview::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Train(a) => cmd::train::run(a, faults),
        Command::Export(a) => cmd::export::run(a),
        Command::Eval(c) => cmd::eval::run(c),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Tune(a) => cmd::tune::run(a),
        Command::Info => {
            println!("{}", sipl_train::device::describe());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One write for the whole report: stderr is unbuffered, and several ranks of a
            // data-parallel run share it, so piecewise writes would interleave mid-line.
            let report = error_report(&e);
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), report.as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// `error: …` and one `caused by: …` line per cause whose words the lines before do not
/// already say (many errors print their cause in their own message, `PATH: Not a directory
/// (os error 20)`, and repeating it would read as a second fault).
fn error_report(e: &anyhow::Error) -> String {
    let mut said = e.to_string();
    let mut report = format!("error: {said}\n");
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !said.contains(&cause) {
            report.push_str(&format!("  caused by: {cause}\n"));
            said.push('\n');
            said.push_str(&cause);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(20);
        let e = anyhow::Error::new(io).context("runs/x: Not a directory (os error 20)");
        assert_eq!(super::error_report(&e), "error: runs/x: Not a directory (os error 20)\n");
        let e = anyhow::anyhow!("disk full").context("writing runs/x");
        assert_eq!(super::error_report(&e), "error: writing runs/x\n  caused by: disk full\n");
    }
}
