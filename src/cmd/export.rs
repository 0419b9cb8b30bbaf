//! `sipl export --run DIR --out encoder.safetensors`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use sipl_eval::export::{Which, export_encoder, run_weights};

use super::outputs::{Reads, file_shape, output_file};

#[derive(Clone, Copy, ValueEnum)]
enum WhichArg {
    /// Best pretext validation accuracy.
    Best,
    /// End of the run.
    Final,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory made by `sipl train`.
    #[arg(long)]
    run: PathBuf,
    #[arg(long, value_enum, default_value = "best")]
    which: WhichArg,
    /// Output: a torchvision `resnet18` state dict in safetensors.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    file_shape("--out", &a.out)?;
    let which = match a.which {
        WhichArg::Best => Which::Best,
        WhichArg::Final => Which::Final,
    };
    let weights = run_weights(&a.run, which)?;
    let reads = Reads::new().add("the weights of --run", &weights);
    output_file("--out", &a.out, &reads)?;
    let n = export_encoder(&weights, &a.out)?;
    println!(
        "{}: {n} tensors from {} (load with torchvision.models.resnet18().load_state_dict(safetensors.torch.load_file(...)))",
        a.out.display(),
        weights.display()
    );
    Ok(())
}
