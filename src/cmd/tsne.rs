//! `sipl eval tsne`: the embedding study (Figure 4) for one or more encoders, side by side.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use sipl_eval::export::{Which, run_weights};
use sipl_eval::features::Encoder;
use sipl_eval::outputs::{TSNE, TsneModel, TsneRow, TsneSummary, write_json, write_tsne_csv};
use sipl_eval::plot::{Panel, ScatterPoint, scatter_png};
use sipl_eval::report::run_name;
use sipl_eval::tsne::{TsneConfig, select, study, style_draws};
use sipl_shards::Dataset;

use super::outputs::{Out, Reads, output_dir};

#[derive(Args)]
pub struct TsneArgs {
    /// Run directories (their best.safetensors), one panel each ...
    #[arg(long)]
    run: Vec<PathBuf>,
    /// ... and/or weight files from `sipl train` ...
    #[arg(long)]
    weights: Vec<PathBuf>,
    /// ... and/or a randomly initialised encoder.
    #[arg(long)]
    random_init: bool,
    /// A labelled dataset (Tiny ImageNet val ingested as decoded).
    #[arg(long)]
    data: PathBuf,
    /// Output folder: tsne.png, tsne.csv, tsne.json.
    #[arg(long)]
    out: PathBuf,
    /// The two class labels (indices), two different ones in [0, the dataset's class count −
    /// 1], e.g. 3,17 [default: the first two classes with enough images].
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    classes: Option<Vec<i32>>,
    /// Images per class, in [2, 500]: the study has 4 × this many points (2 classes, 2 style
    /// draws).
    #[arg(long, default_value_t = 50)]
    per_class: usize,
    /// t-SNE perplexity, in [1, 100], and 3 × perplexity below the study's points.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    /// t-SNE iterations, in [251, 100000] (the first 250 exaggerate the clusters).
    #[arg(long, default_value_t = 1000)]
    epochs: usize,
    /// Side the images are resized to before the style ops and the encoder, in [32, 1024].
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: sipl_train::DeviceSpec,
}

pub fn run(a: TsneArgs) -> anyhow::Result<()> {
    let cfg = TsneConfig {
        per_class: a.per_class,
        perplexity: a.perplexity,
        epochs: a.epochs,
        input_size: a.input_size,
        seed: a.seed,
        ..TsneConfig::default()
    };
    cfg.validate()?;
    let mut models: Vec<(String, Option<PathBuf>)> = Vec::new();
    for r in &a.run {
        models.push((run_name(r), Some(run_weights(r, Which::Best)?)));
    }
    for w in &a.weights {
        let stem = w.file_stem().map_or("?".into(), |s| s.to_string_lossy().into_owned());
        models.push((stem, Some(w.clone())));
    }
    if a.random_init {
        models.push(("random init".into(), None));
    }
    if models.is_empty() {
        bail!("give at least one --run DIR, --weights FILE or --random-init");
    }
    let reads = models
        .iter()
        .fold(Reads::new(), |r, (_, w)| r.add_opt("the weights", w.as_deref()))
        .add("the dataset (--data)", &a.data);
    output_dir("--out", &a.out, Out::Folder(&["tsne.png", "tsne.csv", TSNE]), &reads)?;
    let device = a.device.resolve()?;
    sipl_eval::features::check_batch(sipl_eval::tsne::BATCH, a.input_size, device)?;
    let ds = Dataset::open(&a.data)?;
    let classes = a.classes.as_deref().map(|c| check_classes(&ds, c)).transpose()?;
    let sel = select(&ds, classes, a.per_class)?;
    let styles = style_draws(&cfg);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let class_names: Vec<String> = sel
        .classes
        .iter()
        .map(|&c| ds.meta().classes.get(c as usize).cloned().unwrap_or(c.to_string()))
        .collect();
    let (mut panels, mut summaries, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (name, weights) in &models {
        let encoder = Encoder::load(weights.as_deref(), device, a.seed as i64)?;
        let st = study(&encoder, &ds, &sel, &styles, &cfg)?;
        let n = sel.indices.len();
        for (i, p) in st.map.iter().enumerate() {
            let image = sel.indices[i % n];
            let (c, s) = (st.class[i], st.style[i]);
            let (model, class) = (name.clone(), class_names[c].clone());
            rows.push(TsneRow { model, image, class, style: s, x: p[0], y: p[1] });
        }
        let sc = st.scores;
        println!(
            "{name}: twin-NN {:.1}% (embedding) / {:.1}% (map); silhouette class {:.3}, style {:.3}",
            100.0 * sc.twin_nn_embedding,
            100.0 * sc.twin_nn_map,
            sc.class_silhouette,
            sc.style_silhouette
        );
        panels.push(Panel {
            title: format!("{name}: twin-NN {:.0}%", 100.0 * sc.twin_nn_embedding),
            points: st
                .map
                .iter()
                .enumerate()
                .map(|(i, p)| ScatterPoint {
                    x: p[0] as f64,
                    y: p[1] as f64,
                    class: st.class[i],
                    style: st.style[i],
                })
                .collect(),
        });
        summaries.push(TsneModel { name: name.clone(), scores: sc, weights: weights.clone() });
    }
    let legend = vec![
        format!("colour: class ({}: blue, {}: orange)", class_names[0], class_names[1]),
        "marker: style draw (1: circle, 2: triangle)".to_owned(),
    ];
    write_tsne_csv(&a.out.join("tsne.csv"), &rows)?;
    scatter_png(&panels, &legend, &a.out.join("tsne.png"))?;
    let summary = TsneSummary {
        classes: class_names,
        models: summaries,
        per_class: a.per_class,
        perplexity: a.perplexity,
        seed: a.seed,
        styles: styles.iter().map(|s| format!("{s:?}")).collect(),
    };
    write_json(&a.out.join(TSNE), &summary)?;
    println!("{}: tsne.png, tsne.csv, tsne.json", a.out.display());
    Ok(())
}

/// Two different class indices of the dataset.
fn check_classes(ds: &Dataset, classes: &[i32]) -> anyhow::Result<[i32; 2]> {
    let listed = || classes.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let &[a, b] = classes else {
        return Err(
            sipl_limits::RangeError::new("--classes", listed(), "two class indices, A,B").into()
        );
    };
    let own = ds.meta().classes.len();
    let range = sipl_limits::Ints::new(0, own.saturating_sub(1) as u64);
    for c in [a, b] {
        range.check("--classes", c).map_err(|e| {
            e.note(format!("class indices of a dataset with {own} classes, from 0"))
        })?;
    }
    if a == b {
        return Err(
            sipl_limits::RangeError::new("--classes", listed(), "two different classes").into()
        );
    }
    Ok([a, b])
}
