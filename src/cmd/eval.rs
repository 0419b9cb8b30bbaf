//! `sipl eval downstream` (a head on a frozen encoder, cached or faithful, accuracy per epoch
//! as CSV, PNG and a summary) and `sipl eval tsne` (the embedding study, in `tsne.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use sipl_eval::downstream::{EpochResult, HeadConfig, train_head, train_head_faithful};
use sipl_eval::export::{Which, run_weights};
use sipl_eval::features::Encoder;
use sipl_eval::plot::{Curve, curves_png};
use sipl_eval::report::{DownstreamSummary, SUMMARY, run_name};
use sipl_shards::Dataset;
use tch::Tensor;

use super::tsne::TsneArgs;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Train the downstream head on a frozen encoder; write curve.csv, curve.png, summary.json.
    Downstream(DownstreamArgs),
    /// The embedding study (Figure 4): t-SNE of two classes under two style draws, with scores.
    Tsne(TsneArgs),
}

/// Which encoder: a run, a weight file, or random initialisation.
#[derive(Args, Clone)]
pub struct EncoderArgs {
    /// A run directory (its best.safetensors) ...
    #[arg(long, conflicts_with_all = ["weights", "random_init"])]
    pub run: Option<PathBuf>,
    /// ... or a weight file from `sipl train` ...
    #[arg(long, conflicts_with = "random_init")]
    pub weights: Option<PathBuf>,
    /// ... or a randomly initialised encoder (the baseline row).
    #[arg(long)]
    pub random_init: bool,
}

impl EncoderArgs {
    /// The weight file (`None` for random initialisation) and a display name.
    pub fn resolve(&self) -> anyhow::Result<(Option<PathBuf>, String)> {
        let stem = |p: &Path| p.file_stem().map_or("?".into(), |s| s.to_string_lossy().into());
        Ok(match (&self.run, &self.weights, self.random_init) {
            (Some(r), _, _) => (Some(run_weights(r, Which::Best)?), run_name(r)),
            (None, Some(w), _) => (Some(w.clone()), stem(w)),
            (None, None, true) => (None, "random init".into()),
            (None, None, false) => bail!("give --run DIR, --weights FILE or --random-init"),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Features computed once (exact: the encoder is frozen); 100 epochs in seconds.
    Cached,
    /// The authors' protocol: AutoAugment (ImageNet policy) on the uint8 training images,
    /// drawn afresh each epoch, so an encoder pass over the training set every epoch.
    Faithful,
}

#[derive(Args)]
pub struct DownstreamArgs {
    #[command(flatten)]
    encoder: EncoderArgs,
    /// A labelled dataset (Tiny ImageNet val ingested as decoded).
    #[arg(long)]
    data: PathBuf,
    /// Output folder [default: RUN/eval/downstream-MODE with --run].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Name of the curve in plots and the report [default: the run's folder name].
    #[arg(long)]
    name: Option<String>,
    #[arg(long, value_enum, default_value_t = Mode::Cached)]
    mode: Mode,
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
    /// Outputs of the head (Tiny ImageNet: 200) [default: the dataset's class count].
    #[arg(long)]
    classes: Option<i64>,
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(c: EvalCommand) -> anyhow::Result<()> {
    match c {
        EvalCommand::Downstream(a) => downstream(a),
        EvalCommand::Tsne(a) => super::tsne::run(a),
    }
}

/// The dataset's labels, each checked against the head's class count (`head`, else the
/// dataset's own).
pub fn labels(ds: &Dataset, data: &Path, head: Option<i64>) -> anyhow::Result<(Vec<i64>, i64)> {
    let own = ds.meta().classes.len() as i64;
    if own == 0 {
        bail!("{}: the dataset has no class labels; the head needs a labelled set", data.display());
    }
    let classes = head.unwrap_or(own);
    if classes < 2 {
        bail!("--classes {classes}: a head needs at least 2 classes");
    }
    let mut labels = Vec::with_capacity(ds.len());
    for i in 0..ds.len() {
        let r = ds.record(i)?;
        match r.label {
            Some(l) if (0..classes).contains(&(l as i64)) => labels.push(l as i64),
            other => {
                bail!("{}: label {other:?} does not fit a head over {classes} classes", r.path)
            }
        }
    }
    Ok((labels, classes))
}

fn downstream(a: DownstreamArgs) -> anyhow::Result<()> {
    let (weights, default_name) = a.encoder.resolve()?;
    let out = match (&a.out, &a.encoder.run) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.join("eval").join(match a.mode {
            Mode::Cached => "downstream-cached",
            Mode::Faithful => "downstream-faithful",
        }),
        (None, None) => bail!("give --out DIR (only --run has a default output folder)"),
    };
    let device = a.device.parse::<sipl_train::DeviceSpec>()?.resolve()?;
    let ds = Dataset::open(&a.data)?;
    let (labels, classes) = labels(&ds, &a.data, a.classes)?;
    let n = ds.len();
    if a.stratified.is_none() && (a.train_images == 0 || a.train_images >= n) {
        bail!("--train-images {} must leave held-out images (the dataset has {n})", a.train_images);
    }
    let (train, held) = match a.stratified {
        Some(f) if f > 0.0 && f < 1.0 => sipl_eval::split::stratified(&labels, f, a.seed as u64),
        Some(f) => bail!("--stratified {f}: the held-out fraction must be in (0, 1)"),
        None => sipl_eval::split::first(n, a.train_images),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let encoder = Encoder::load(weights.as_deref(), device, a.seed)?;
    let y = Tensor::from_slice(&labels).to_device(device);
    let pick_y = |idx: &[usize]| {
        let i = Tensor::from_slice(&idx.iter().map(|&v| v as i64).collect::<Vec<_>>());
        y.index_select(0, &i.to_device(device))
    };
    let cfg = HeadConfig {
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        seed: a.seed,
        linear_probe: a.linear_probe,
    };
    let started = Instant::now();
    let (curve, feature_s) = match a.mode {
        Mode::Cached => {
            let t = Instant::now();
            let tx = encoder.embed(&ds, &train, a.input_size, a.batch)?;
            let vx = encoder.embed(&ds, &held, a.input_size, a.batch)?;
            let feature_s = t.elapsed().as_secs_f64();
            let curve = train_head((&tx, &pick_y(&train)), (&vx, &pick_y(&held)), classes, cfg);
            (curve, feature_s)
        }
        Mode::Faithful => {
            let t = Instant::now();
            let vx = encoder.embed(&ds, &held, a.input_size, a.batch)?;
            let feature_s = t.elapsed().as_secs_f64();
            let quiet = a.quiet;
            let progress = |r: &EpochResult| {
                if !quiet {
                    eprintln!(
                        "epoch {:>3}: held-out {:.1}%, loss {:.3} ({:.1} s)",
                        r.epoch,
                        100.0 * r.val_accuracy,
                        r.train_loss,
                        r.seconds
                    );
                }
            };
            let curve = train_head_faithful(
                &encoder,
                &ds,
                (&train, &pick_y(&train)),
                (&vx, &pick_y(&held)),
                classes,
                a.input_size,
                cfg,
                progress,
            )?;
            (curve, feature_s)
        }
    };
    let total_s = started.elapsed().as_secs_f64();
    let name = a.name.clone().unwrap_or(default_name);
    let mut summary = DownstreamSummary::new(
        &name,
        weights.as_deref(),
        match a.mode {
            Mode::Cached => "cached",
            Mode::Faithful => "faithful",
        },
        a.linear_probe,
        (train.len(), held.len()),
        &curve,
        (feature_s, total_s),
    );
    summary.dataset = Some(sipl_eval::report::EvaluatedDataset {
        path: std::path::absolute(&a.data).unwrap_or_else(|_| a.data.clone()),
        identity: ds.identity().to_owned(),
    });
    write_outputs(&out, &curve, &summary)?;
    println!(
        "{}: best held-out accuracy {:.1}% (epoch {}), final {:.1}% ({} epochs, {} mode; features {feature_s:.1} s, total {total_s:.1} s)",
        out.display(),
        100.0 * summary.best_val_accuracy,
        summary.best_epoch,
        100.0 * summary.final_val_accuracy,
        curve.len(),
        summary.mode,
    );
    Ok(())
}

fn write_outputs(
    out: &Path,
    curve: &[EpochResult],
    summary: &DownstreamSummary,
) -> anyhow::Result<()> {
    let path = out.join("curve.csv");
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "epoch,train_loss,val_accuracy,seconds")?;
    for r in curve {
        writeln!(f, "{},{:.6},{:.6},{:.3}", r.epoch, r.train_loss, r.val_accuracy, r.seconds)?;
    }
    drop(f);
    let summary_path = out.join(SUMMARY);
    std::fs::write(&summary_path, serde_json::to_string_pretty(summary)? + "\n")
        .with_context(|| format!("writing {}", summary_path.display()))?;
    let points = curve.iter().map(|r| (r.epoch as f64, r.val_accuracy)).collect();
    let title = format!("Downstream accuracy ({} mode)", summary.mode);
    curves_png(&[Curve { name: summary.name.clone(), points }], &title, &out.join("curve.png"))?;
    Ok(())
}
