//! `sipl eval knn`: weighted k-nearest-neighbour accuracy on frozen embeddings
//! (`sipl_eval::knn`), with the same splits, intervals and predictions file as the head.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use sipl_eval::features::Encoder;
use sipl_eval::knn::{KnnConfig, KnnOutcome, knn_split};
use sipl_eval::predictions::{self, PREDICTIONS};
use sipl_eval::results::KnnSummary;
use sipl_eval::stats::{LEVEL, wilson};

use super::eval::{EncoderArgs, SplitArgs, eval_seed};
use super::outputs::{Out, Reads, output_dir};
use sipl_eval::outputs::KNN_SUMMARY;

use sipl_limits::{KNN_K as NEIGHBOURS, KNN_TEMPERATURE as TEMPERATURE};

#[derive(Args)]
pub struct KnnArgs {
    #[command(flatten)]
    encoder: EncoderArgs,
    /// A labelled dataset (Tiny ImageNet val ingested as decoded).
    #[arg(long)]
    data: PathBuf,
    /// Output folder [default: RUN/eval/knn with --run].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Name in the report [default: the run's folder name].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    split: SplitArgs,
    /// The two neighbourhood sizes, each in [1, 1000000] (clamped to the training images).
    #[arg(long, value_delimiter = ',', value_name = "K1,K2", default_values_t = [20, 200])]
    k: Vec<usize>,
    /// Temperature of the neighbours' vote weights exp(similarity / T), in (0, 100].
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// Side the images are resized to before the encoder, in [32, 1024].
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    /// Images per encoder pass, in [1, 65536].
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// A random encoder's draw [default: the run's run.seed, else 0].
    #[arg(long)]
    seed: Option<i64>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: sipl_train::DeviceSpec,
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(a: KnnArgs) -> anyhow::Result<()> {
    if a.k.len() != 2 {
        bail!("--k {:?}: give two neighbourhood sizes, e.g. --k 20,200", a.k);
    }
    for &k in &a.k {
        NEIGHBOURS.check("--k", k)?;
    }
    TEMPERATURE.check("--temperature", a.temperature)?;
    sipl_limits::INPUT_SIZE.check("--input-size", a.input_size)?;
    sipl_limits::BATCH.check("--batch", a.batch)?;
    a.split.check()?;
    let (weights, default_name) = a.encoder.resolve()?;
    let out = match (&a.out, &a.encoder.run) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => {
            r.join(sipl_eval::outputs::default_dir(sipl_eval::outputs::EvalKind::Knn))
        }
        (None, None) => bail!("give --out DIR (only --run has a default output folder)"),
    };
    let reads = Reads::new()
        .add_opt("the weights", weights.as_deref())
        .add("the dataset (--data)", &a.data);
    output_dir("--out", &out, Out::Folder(&[KNN_SUMMARY, PREDICTIONS]), &reads)?;
    let seed = eval_seed(a.seed, a.encoder.run.as_deref())?;
    let device = a.device.resolve()?;
    sipl_eval::features::check_batch(a.batch, a.input_size, device)?;
    let p = a.split.prepare(&a.data, None)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();
    let encoder = Encoder::load(weights.as_deref(), device, seed)?;
    let cfg = KnnConfig { k: a.k.clone(), temperature: a.temperature, ..KnnConfig::default() };
    let embed = |idx: &[usize]| encoder.embed(&p.ds, idx, a.input_size, a.batch);
    let KnnOutcome { predicted: classes, truth, correct } = knn_split(&p, embed, &cfg)?;
    let feature_s = started.elapsed().as_secs_f64();
    let n = truth.len();
    let accuracy = [correct[0] as f64 / n.max(1) as f64, correct[1] as f64 / n.max(1) as f64];
    let k = [a.k[0], a.k[1]];
    let summary = KnnSummary {
        name: a.name.clone().unwrap_or(default_name),
        weights: weights.clone(),
        k,
        temperature: a.temperature,
        accuracy,
        train_images: p.train.len(),
        held_out_images: n,
        seed: Some(seed),
        split: Some(p.split.clone()),
        held_out: Some(p.held_out.clone()),
        input_size: a.input_size,
        feature_seconds: feature_s,
        total_seconds: started.elapsed().as_secs_f64(),
        dataset: Some(sipl_eval::report::EvaluatedDataset {
            path: std::path::absolute(&a.data).unwrap_or_else(|_| a.data.clone()),
            identity: p.ds.identity().to_owned(),
        }),
    };
    let table =
        predictions::table(&p.ds, &p.held, &p.labels, (k[0], &classes[0]), (k[1], &classes[1]))?;
    predictions::write(&table, &out.join(PREDICTIONS))?;
    summary.write(&out)?;
    for i in 0..2 {
        let w = wilson(correct[i], n as u64, LEVEL)
            .map_or(String::new(), |w| format!(" [{:.1}, {:.1}]", 100.0 * w.low, 100.0 * w.high));
        println!(
            "{}: kNN k = {}: {:.1}%{w} of {n} held-out images",
            out.display(),
            k[i],
            100.0 * accuracy[i]
        );
    }
    if !a.quiet {
        eprintln!("features {feature_s:.1} s, total {:.1} s", summary.total_seconds);
    }
    Ok(())
}
