//! `sipl eval downstream`: a head on a frozen encoder's cached features, accuracy per epoch.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sipl_eval::downstream::{HeadConfig, train_head};
use sipl_eval::export::{Which, run_weights};
use sipl_eval::features::Encoder;
use sipl_shards::Dataset;
use tch::Tensor;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Train the downstream head on frozen features; write the accuracy curve as CSV.
    Downstream(DownstreamArgs),
}

#[derive(Args)]
pub struct DownstreamArgs {
    /// A run directory (its best.safetensors) ...
    #[arg(long, conflicts_with_all = ["weights", "random_init"])]
    run: Option<PathBuf>,
    /// ... or a weight file from `sipl train` ...
    #[arg(long, conflicts_with = "random_init")]
    weights: Option<PathBuf>,
    /// ... or a randomly initialised encoder (the baseline row).
    #[arg(long)]
    random_init: bool,
    /// A labelled dataset (Tiny ImageNet val ingested as decoded).
    #[arg(long)]
    data: PathBuf,
    /// Output folder for curve.csv.
    #[arg(long)]
    out: PathBuf,
    /// The first N images train the head, the rest are held out (SPEC: 9,000 / 832) ...
    #[arg(long, default_value_t = 9000)]
    train_images: usize,
    /// ... or a seeded stratified split holding out this fraction of every class.
    #[arg(long)]
    stratified: Option<f64>,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Side the images are resized to before the encoder.
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// A single linear layer instead of the two-layer head.
    #[arg(long)]
    linear_probe: bool,
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(c: EvalCommand) -> anyhow::Result<()> {
    let EvalCommand::Downstream(a) = c;
    let weights = match (&a.run, &a.weights, a.random_init) {
        (Some(r), _, _) => Some(run_weights(r, Which::Best)?),
        (None, Some(w), _) => Some(w.clone()),
        (None, None, true) => None,
        (None, None, false) => bail!("give --run DIR, --weights FILE or --random-init"),
    };
    let device = a.device.parse::<sipl_train::DeviceSpec>()?.resolve()?;
    let ds = Dataset::open(&a.data)?;
    let classes = ds.meta().classes.len() as i64;
    if classes == 0 {
        bail!(
            "{}: the dataset has no class labels; the head needs a labelled set",
            a.data.display()
        );
    }
    let n = ds.len();
    if a.stratified.is_none() && (a.train_images == 0 || a.train_images >= n) {
        bail!("--train-images {} must leave held-out images (the dataset has {n})", a.train_images);
    }
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let r = ds.record(i)?;
        match r.label {
            Some(l) if (l as i64) < classes => labels.push(l as i64),
            other => {
                bail!("{}: label {other:?} does not fit a head over {classes} classes", r.path)
            }
        }
    }
    let encoder = Encoder::load(weights.as_deref(), device, a.seed)?;
    let t = Instant::now();
    let all: Vec<usize> = (0..n).collect();
    let x = encoder.embed(&ds, &all, a.input_size, a.batch)?;
    let embed_s = t.elapsed().as_secs_f64();
    let y = Tensor::from_slice(&labels).to_device(device);
    let (train, held) = match a.stratified {
        Some(f) if f > 0.0 && f < 1.0 => sipl_eval::split::stratified(&labels, f, a.seed as u64),
        Some(f) => bail!("--stratified {f}: the held-out fraction must be in (0, 1)"),
        None => sipl_eval::split::first(n, a.train_images),
    };
    let pick = |idx: &[usize]| {
        let i = Tensor::from_slice(&idx.iter().map(|&v| v as i64).collect::<Vec<_>>())
            .to_device(device);
        (x.index_select(0, &i), y.index_select(0, &i))
    };
    let ((tx, ty), (vx, vy)) = (pick(&train), pick(&held));
    let cfg = HeadConfig {
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        seed: a.seed,
        linear_probe: a.linear_probe,
    };
    let t = Instant::now();
    let curve = train_head((&tx, &ty), (&vx, &vy), classes, cfg);
    let head_s = t.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join("curve.csv");
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "epoch,train_loss,val_accuracy")?;
    for r in &curve {
        writeln!(f, "{},{:.6},{:.6}", r.epoch, r.train_loss, r.val_accuracy)?;
    }
    let best = curve.iter().map(|r| r.val_accuracy).fold(0.0, f64::max);
    let last = curve.last().map_or(0.0, |r| r.val_accuracy);
    println!(
        "{}: best held-out accuracy {:.1}%, final {:.1}% ({} epochs; features {embed_s:.1} s, head {head_s:.1} s)",
        path.display(),
        100.0 * best,
        100.0 * last,
        curve.len()
    );
    Ok(())
}
