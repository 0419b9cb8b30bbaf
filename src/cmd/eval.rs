//! `sipl eval downstream` (a head on a frozen encoder, cached or faithful, accuracy per epoch
//! as CSV, PNG and a summary, held-out predictions as Parquet), `sipl eval knn` (weighted kNN on
//! frozen embeddings) and `sipl eval tsne` (the embedding study, in `tsne.rs`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use sipl_eval::downstream::{
    EncoderBn, EpochResult, HeadConfig, HeadRun, train_head, train_head_faithful,
};
use sipl_eval::export::{Which, run_weights};
use sipl_eval::features::Encoder;
use sipl_eval::outputs::{EvalKind, default_dir};
use sipl_eval::plot::{Curve, curves_png};
use sipl_eval::predictions::{self, PREDICTIONS};
use sipl_eval::report::{DownstreamSummary, run_name};
use sipl_eval::split::{Prepared, SplitSpec};
use tch::Tensor;

use super::outputs::{Out, Reads, output_dir};
use super::tsne::TsneArgs;

/// What `eval downstream` writes into its folder.
const DOWNSTREAM_FILES: &[&str] = &[
    sipl_eval::outputs::SUMMARY,
    sipl_eval::outputs::CURVE,
    "curve.png",
    PREDICTIONS,
    sipl_train::tensorboard::TB_DIR,
];

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Train the downstream head on a frozen encoder; write curve.csv, curve.png, summary.json
    /// and predictions.parquet (held-out predictions at the best and the final epoch).
    Downstream(DownstreamArgs),
    /// Weighted k-nearest-neighbour accuracy on L2-normalised frozen embeddings (k = 20 and
    /// 200, temperature 0.07); no training. Writes knn.json and predictions.parquet.
    Knn(super::knn::KnnArgs),
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

/// How the frozen encoder's BatchNorm layers run while the head trains.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BnMode {
    /// Running statistics, fixed: the encoder is truly frozen.
    Eval,
    /// The authors' variant: batch statistics while the head trains, running statistics
    /// drifting; held-out images embedded after every epoch (faithful mode only).
    Train,
}

/// Which images train and which are held out.
#[derive(Args, Clone)]
pub struct SplitArgs {
    /// The first N images train, the rest are held out (the paper: 9,000 / 832); N in
    /// [1, images − 1] ...
    #[arg(long, default_value_t = 9000)]
    pub train_images: usize,
    /// ... or a seeded stratified split holding out this fraction of every class, in (0, 1).
    #[arg(long)]
    pub stratified: Option<f64>,
    /// Seed of the stratified split, apart from --seed, so that every seed of a model is
    /// compared on the same held-out images.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Only the first N images of --data (N >= 2), before the split [default: all].
    #[arg(long)]
    pub images: Option<usize>,
}

impl SplitArgs {
    /// The flags against their own ranges, before anything is opened (the data-dependent
    /// ranges are checked by [`sipl_eval::split::prepare`]).
    pub fn check(&self) -> anyhow::Result<()> {
        sipl_limits::Ints::new(1, u64::MAX).check("--train-images", self.train_images)?;
        sipl_limits::Ints::new(2, u64::MAX).check_opt("--images", self.images)?;
        if let Some(f) = self.stratified {
            sipl_limits::HELD_OUT_FRACTION.check("--stratified", f)?;
        }
        Ok(())
    }

    pub fn spec(&self) -> SplitSpec {
        SplitSpec {
            images: self.images,
            train_images: self.train_images,
            stratified: self.stratified,
            split_seed: self.split_seed,
            keys: sipl_eval::split::FLAGS,
        }
    }

    /// Opens `data`, checks its labels against a head of `head` classes, and splits it; both
    /// parts hold images.
    pub fn prepare(&self, data: &Path, head: Option<i64>) -> anyhow::Result<Prepared> {
        self.check()?;
        Ok(sipl_eval::split::prepare(data, &self.spec(), head)?)
    }
}

/// The seed of an evaluation: `--seed`, else the run's own `run.seed` (so seeds of a model
/// evaluate with their own seed), else 0.
pub fn eval_seed(seed: Option<i64>, run: Option<&Path>) -> anyhow::Result<i64> {
    if let Some(s) = seed {
        return Ok(s);
    }
    let Some(run) = run else { return Ok(0) };
    let info = sipl_eval::report::read_run(run)?;
    Ok(info.seed as i64)
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
    /// The encoder's BatchNorm while the head trains: eval (frozen statistics) or train (the
    /// authors' code: batch statistics, running statistics drifting; faithful mode only).
    #[arg(long, value_enum, default_value_t = BnMode::Eval)]
    encoder_bn: BnMode,
    #[command(flatten)]
    split: SplitArgs,
    /// Passes of the head over the training images, in [1, 1000000].
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Side the images are resized to before the encoder, in [32, 1024].
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    /// Images per batch (head steps and encoder passes), in [1, 65536], and small enough that
    /// a batch fits in half of this machine's memory.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Adam's learning rate for the head, in (0, 1). A non-finite training loss stops the
    /// evaluation with an error.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// A single linear layer instead of the two-layer head.
    #[arg(long)]
    linear_probe: bool,
    /// Outputs of the head (Tiny ImageNet: 200), in [2, the dataset's class count]
    /// [default: the dataset's class count].
    #[arg(long)]
    classes: Option<i64>,
    /// Seed of the head's initialisation and shuffle (and of a random encoder's draw)
    /// [default: the run's run.seed, else 0].
    #[arg(long)]
    seed: Option<i64>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: sipl_train::DeviceSpec,
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(c: EvalCommand) -> anyhow::Result<()> {
    match c {
        EvalCommand::Downstream(a) => downstream(a),
        EvalCommand::Knn(a) => super::knn::run(a),
        EvalCommand::Tsne(a) => super::tsne::run(a),
    }
}

impl DownstreamArgs {
    fn head(&self, seed: i64) -> HeadConfig {
        HeadConfig {
            epochs: self.epochs,
            lr: self.lr,
            batch: self.batch,
            seed,
            linear_probe: self.linear_probe,
        }
    }

    /// Every flag against its own range, before anything is opened or written. Ranges that
    /// depend on the data (`--classes`, `--train-images`) are checked once it is open.
    fn check(&self) -> anyhow::Result<()> {
        self.head(0).validate()?;
        sipl_limits::INPUT_SIZE.check("--input-size", self.input_size)?;
        self.split.check()?;
        sipl_limits::Ints::new(2, u64::MAX).check_opt("--classes", self.classes)?;
        Ok(())
    }
}

/// One head epoch as a plain line on stderr.
fn epoch_line(r: &EpochResult) {
    eprintln!(
        "epoch {:>3}: held-out {:.1}%, loss {:.3} ({:.1} s)",
        r.epoch,
        100.0 * r.val_accuracy,
        r.train_loss,
        r.seconds
    );
}

fn downstream(a: DownstreamArgs) -> anyhow::Result<()> {
    a.check()?;
    let bn = match a.encoder_bn {
        BnMode::Eval => EncoderBn::Eval,
        BnMode::Train => EncoderBn::Train,
    };
    if bn == EncoderBn::Train && a.mode == Mode::Cached {
        bail!(
            "--encoder-bn train needs --mode faithful: cached mode embeds every image once with \
             fixed statistics, so it cannot represent BatchNorm in training mode (batch \
             statistics per mini-batch, running statistics drifting)"
        );
    }
    let (weights, default_name) = a.encoder.resolve()?;
    let out = match (&a.out, &a.encoder.run) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.join(default_dir(match (a.mode, bn) {
            (Mode::Cached, _) => EvalKind::Cached,
            (Mode::Faithful, EncoderBn::Eval) => EvalKind::Faithful,
            (Mode::Faithful, EncoderBn::Train) => EvalKind::FaithfulBnTrain,
        })),
        (None, None) => bail!("give --out DIR (only --run has a default output folder)"),
    };
    let reads = Reads::new()
        .add_opt("the weights", weights.as_deref())
        .add("the dataset (--data)", &a.data);
    output_dir("--out", &out, Out::Folder(DOWNSTREAM_FILES), &reads)?;
    let seed = eval_seed(a.seed, a.encoder.run.as_deref())?;
    let device = a.device.resolve()?;
    sipl_eval::features::check_batch(a.batch, a.input_size, device)?;
    let p = a.split.prepare(&a.data, a.classes)?;
    let (ds, train, held) = (&p.ds, &p.train, &p.held);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let encoder = Encoder::load(weights.as_deref(), device, seed)?;
    let y = Tensor::from_slice(&p.labels).to_device(device);
    let pick_y = |idx: &[usize]| {
        let i = Tensor::from_slice(&idx.iter().map(|&v| v as i64).collect::<Vec<_>>());
        y.index_select(0, &i.to_device(device))
    };
    let cfg = a.head(seed);
    let started = Instant::now();
    let (head_run, feature_s): (HeadRun, f64) = match a.mode {
        Mode::Cached => {
            let t = Instant::now();
            let tx = encoder.embed(ds, train, a.input_size, a.batch)?;
            let vx = encoder.embed(ds, held, a.input_size, a.batch)?;
            let feature_s = t.elapsed().as_secs_f64();
            let r = train_head((&tx, &pick_y(train)), (&vx, &pick_y(held)), p.classes, cfg)?;
            // Seconds an epoch: shown as plain lines in a log file, not on a terminal.
            if !a.quiet && !std::io::stderr().is_terminal() {
                r.curve.iter().for_each(epoch_line);
            }
            (r, feature_s)
        }
        Mode::Faithful => {
            let t = Instant::now();
            let vx = encoder.embed(ds, held, a.input_size, a.batch)?;
            let feature_s = t.elapsed().as_secs_f64();
            let quiet = a.quiet;
            let progress = |r: &EpochResult| {
                if !quiet {
                    epoch_line(r);
                }
            };
            let r = train_head_faithful(
                &encoder,
                ds,
                (train, &pick_y(train)),
                (held, &vx, &pick_y(held)),
                p.classes,
                a.input_size,
                (cfg, bn),
                progress,
            )?;
            (r, feature_s)
        }
    };
    let curve = &head_run.curve;
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
        curve,
        (feature_s, total_s),
    );
    summary.dataset = Some(sipl_eval::report::EvaluatedDataset {
        path: std::path::absolute(&a.data).unwrap_or_else(|_| a.data.clone()),
        identity: ds.identity().to_owned(),
    });
    summary.seed = Some(seed);
    summary.split = Some(p.split.clone());
    summary.held_out = Some(p.held_out.clone());
    summary.encoder_bn = Some(bn.name().into());
    let table = predictions::table(
        ds,
        held,
        &p.labels,
        (head_run.best.epoch, &head_run.best.classes),
        (head_run.last.epoch, &head_run.last.classes),
    )?;
    write_outputs(&out, curve, &summary)?;
    predictions::write(&table, &out.join(PREDICTIONS))?;
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
    sipl_eval::outputs::write_curve(&out.join(sipl_eval::outputs::CURVE), curve)?;
    sipl_eval::outputs::write_curve_events(out, curve)?;
    summary.write(out)?;
    let points = curve.iter().map(|r| (r.epoch as f64, r.val_accuracy)).collect();
    let title = format!("Downstream accuracy ({} mode)", summary.mode);
    let curve = Curve { name: summary.name.clone(), points, band: None };
    curves_png(&[curve], &title, &out.join("curve.png"))?;
    Ok(())
}
