//! `sipl embed --run DIR --data SHARDS --out FILE.parquet`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use sipl_eval::embed::write_embeddings;
use sipl_eval::export::{Which, run_weights};
use sipl_eval::features::Encoder;
use sipl_shards::Dataset;

use super::outputs::{Reads, file_shape, output_file};

#[derive(Args)]
pub struct EmbedArgs {
    /// A run directory (its best.safetensors) ...
    #[arg(long, conflicts_with = "weights")]
    run: Option<PathBuf>,
    /// ... or a weight file from `sipl train`.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// A dataset made by `sipl ingest`.
    #[arg(long)]
    data: PathBuf,
    /// Output Parquet: id, path, label, embedding (1000 float32).
    #[arg(long)]
    out: PathBuf,
    /// Side the images are resized to before the encoder, in [32, 1024].
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    /// Images per encoder pass, in [1, 65536], and small enough that a batch fits in half of
    /// this machine's memory.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: sipl_train::DeviceSpec,
}

pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    file_shape("--out", &a.out)?;
    let weights = match (&a.run, &a.weights) {
        (Some(r), _) => run_weights(r, Which::Best)?,
        (None, Some(w)) => w.clone(),
        (None, None) => bail!("give --run DIR or --weights FILE"),
    };
    let reads = Reads::new().add("the weights", &weights).add("the dataset (--data)", &a.data);
    output_file("--out", &a.out, &reads)?;
    let device = a.device.resolve()?;
    sipl_eval::features::check_batch(a.batch, a.input_size, device)?;
    let ds = Dataset::open(&a.data)?;
    let encoder = Encoder::load(Some(&weights), device, 0)?;
    let n = write_embeddings(&encoder, &ds, &a.out, a.input_size, a.batch)?;
    println!("{}: {n} embeddings from {}", a.out.display(), weights.display());
    Ok(())
}
