//! `sipl`: the one command-line tool. Thin: parses flags into the library crates' typed
//! settings and prints what they return.

mod cmd;

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
    /// Show the compute devices libtorch sees.
    Info,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Shards(c) => cmd::shards::run(c),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Info => {
            println!("{}", sipl_train::device::describe());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
