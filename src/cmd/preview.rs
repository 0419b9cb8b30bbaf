//! `sipl preview DATA --scheme S --out sheet.png`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use rand::SeedableRng;
use sipl_loader::scheme::Scheme;
use sipl_loader::{Loader, LoaderConfig};
use sipl_shards::Dataset;

use super::outputs::{Reads, output_file};

#[derive(Args)]
pub struct PreviewArgs {
    /// A dataset directory made by `sipl ingest`.
    data: PathBuf,
    /// opl, siplv1, siplv2 or siplv3.
    #[arg(long, default_value = "siplv1")]
    scheme: Scheme,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Rows (samples) on the sheet, in [1, 64] and at most the dataset's images.
    #[arg(long, default_value_t = 4)]
    samples: usize,
    /// Displayed side of each picture in pixels, in [16, 512].
    #[arg(long, default_value_t = 160)]
    tile: u32,
    /// Side of an output patch, in [8, 1024] (default: the stored image size).
    #[arg(long)]
    patch_size: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Rows on a contact sheet (`--samples`).
const SAMPLES: sipl_limits::Ints = sipl_limits::Ints::new(1, 64);
/// Side of a picture on the sheet (`--tile`).
const TILE: sipl_limits::Ints = sipl_limits::Ints::new(16, 512);

pub fn run(a: PreviewArgs) -> anyhow::Result<()> {
    SAMPLES.check("--samples", a.samples)?;
    TILE.check("--tile", a.tile)?;
    sipl_limits::PATCH_SIZE.check_opt("--patch-size", a.patch_size)?;
    output_file("--out", &a.out, &Reads::new().add("the dataset", &a.data))?;
    let ds = Arc::new(Dataset::open(&a.data)?);
    let cfg = LoaderConfig { patch_size: a.patch_size, ..LoaderConfig::new(a.scheme, 1) };
    // The loader validates the dataset (sizes, emptiness) exactly as training would.
    let loader = Loader::new(ds.clone(), cfg)?;
    let n = SAMPLES
        .at_most(ds.len() as u64)
        .check("--samples", a.samples)
        .map_err(|e| e.note(format!("the dataset has {} images", ds.len())))?;
    let mut images = Vec::with_capacity(n);
    for k in 0..n {
        let mut rgb = Vec::new();
        ds.decode_into(k * ds.len() / n, &mut rgb)?;
        images.push(rgb);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let (sheet, labels) =
        sipl_loader::preview::contact_sheet(loader.spec(), &images, a.tile, &mut rng);
    sipl_eval::plot::save_png(&sheet, &a.out)?;
    println!(
        "{}: {} samples of {} (labels {:?}; columns: image with grid, label, then {} views)",
        a.out.display(),
        n,
        a.scheme,
        labels,
        a.scheme.views()
    );
    Ok(())
}
