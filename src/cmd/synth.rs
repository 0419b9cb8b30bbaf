//! `sipl synth`.

use std::path::PathBuf;

use clap::Args;
use sipl_ingest::synth::{SynthSpec, write_synth};

#[derive(Args)]
pub struct SynthArgs {
    /// Output folder (one sub-folder per class).
    #[arg(long)]
    out: PathBuf,
    /// Classes, in [1, 48] (4 shapes × 12 stripe textures; beyond that classes repeat).
    #[arg(long, default_value_t = 8)]
    classes: usize,
    /// Images per class, in [1, 100000].
    #[arg(long, default_value_t = 64)]
    per_class: usize,
    /// Side of the square images in pixels, in [16, 4096].
    #[arg(long, default_value_t = 96)]
    size: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    let spec = SynthSpec { classes: a.classes, per_class: a.per_class, size: a.size, seed: a.seed };
    spec.validate()?;
    let out = super::outputs::Out::Folder(&[]);
    super::outputs::output_dir("--out", &a.out, out, &super::outputs::Reads::new())?;
    let n = write_synth(&a.out, spec)?;
    println!(
        "wrote {n} images ({} classes, {}x{}) to {}",
        a.classes,
        a.size,
        a.size,
        a.out.display()
    );
    Ok(())
}
