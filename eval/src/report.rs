//! Results as the paper shows them: the Table 4 rows (pretext best validation accuracy,
//! downstream best and final held-out accuracy) in Markdown, the accuracy curves of every run
//! overlaid (Figure 3) and the t-SNE panels (Figure 4), all from what `sipl train`,
//! `sipl eval downstream` and `sipl eval tsne` left on disk.
//!
//! Where it looks: `RUN/config.toml` (scheme), `RUN/metrics.jsonl` (`val_accuracy` lines),
//! `RUN/eval/downstream-{cached,faithful}/{summary.json,curve.csv}`; baselines are downstream
//! output folders; the t-SNE folder holds `tsne.png` and `tsne.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EvalError;
use crate::downstream::EpochResult;
use crate::plot::{Curve, curves_png};

/// File name of a downstream run's summary.
pub const SUMMARY: &str = "summary.json";
/// Downstream output folders looked for inside a run, in this order.
pub const DOWNSTREAM_DIRS: [&str; 2] = ["eval/downstream-cached", "eval/downstream-faithful"];

/// What one `sipl eval downstream` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownstreamSummary {
    pub name: String,
    /// The encoder weights (absent for a random-initialised encoder).
    pub weights: Option<PathBuf>,
    pub mode: String,
    pub linear_probe: bool,
    pub train_images: usize,
    pub held_out_images: usize,
    pub epochs: usize,
    pub best_val_accuracy: f64,
    pub best_epoch: usize,
    pub final_val_accuracy: f64,
    /// Seconds spent computing features outside the epochs (all of them in cached mode).
    pub feature_seconds: f64,
    pub total_seconds: f64,
    /// The dataset evaluated; absent in summaries written before it was recorded.
    #[serde(default)]
    pub dataset: Option<EvaluatedDataset>,
}

/// Which dataset an evaluation ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluatedDataset {
    pub path: PathBuf,
    /// `sipl_shards::identity`: the xxh3-64 of the set's `dataset.json`.
    pub identity: String,
}

impl DownstreamSummary {
    pub fn new(
        name: &str,
        weights: Option<&Path>,
        mode: &str,
        linear_probe: bool,
        (train_images, held_out_images): (usize, usize),
        curve: &[EpochResult],
        (feature_seconds, total_seconds): (f64, f64),
    ) -> Self {
        let best = curve.iter().fold(None::<&EpochResult>, |b, r| match b {
            Some(b) if b.val_accuracy >= r.val_accuracy => Some(b),
            _ => Some(r),
        });
        DownstreamSummary {
            name: name.to_owned(),
            weights: weights.map(Path::to_owned),
            mode: mode.to_owned(),
            linear_probe,
            train_images,
            held_out_images,
            epochs: curve.len(),
            best_val_accuracy: best.map_or(0.0, |b| b.val_accuracy),
            best_epoch: best.map_or(0, |b| b.epoch),
            final_val_accuracy: curve.last().map_or(0.0, |r| r.val_accuracy),
            feature_seconds,
            total_seconds,
            dataset: None,
        }
    }

    pub fn read(dir: &Path) -> Result<Self, EvalError> {
        let path = dir.join(SUMMARY);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| EvalError::Data(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| EvalError::Data(format!("{}: {e}", path.display())))
    }
}

/// (epoch, held-out accuracy) pairs of a `curve.csv`.
pub fn read_curve(path: &Path) -> Result<Vec<(f64, f64)>, EvalError> {
    let bad = |why: String| EvalError::Data(format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(e), Some(a)) = (col("epoch"), col("val_accuracy")) else {
        return Err(bad("no epoch / val_accuracy columns".into()));
    };
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok());
            num(e).zip(num(a)).ok_or_else(|| bad(format!("line {} is not a curve row", i + 2)))
        })
        .collect()
}

/// The paper's Table 4 (pretext, downstream best validation accuracy %), by scheme.
pub fn paper_row(scheme: &str) -> Option<(f64, f64)> {
    match scheme {
        "opl" => Some((50.5, 13.3)),
        "siplv1" => Some((35.4, 16.8)),
        "siplv2" => Some((35.9, 16.5)),
        "siplv3" => Some((32.0, 15.3)),
        _ => None,
    }
}

/// One pretext run's pretext side.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub name: String,
    pub dir: PathBuf,
    pub scheme: String,
    pub pretext_best: Option<f64>,
    pub steps: Option<u64>,
}

/// A run's display name: its folder's name (of the resolved path, so `.` and `runs/x/` work).
pub fn run_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// Reads a run directory's config and metrics.
pub fn read_run(dir: &Path) -> Result<RunInfo, EvalError> {
    let bad = |why: String| EvalError::Run { path: dir.to_owned(), reason: why };
    if !dir.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let config = std::fs::read_to_string(dir.join(sipl_train::trainer::CONFIG))
        .map_err(|e| bad(format!("no readable config.toml ({e}): not a `sipl train` run")))?;
    let cfg = sipl_train::config::TrainConfig::parse(&config, &[])
        .map_err(|e| bad(format!("config.toml: {e}")))?;
    let metrics =
        std::fs::read_to_string(dir.join(sipl_train::trainer::METRICS)).unwrap_or_default();
    let (mut best, mut steps) = (None::<f64>, None::<u64>);
    for line in metrics.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let Some(acc) = v.get("val_accuracy").and_then(|a| a.as_f64()) {
            best = Some(best.map_or(acc, |b| b.max(acc)));
        }
        if let Some(s) = v.get("step").and_then(|s| s.as_u64()) {
            steps = Some(steps.map_or(s, |m| m.max(s)));
        }
    }
    Ok(RunInfo {
        name: run_name(dir),
        dir: dir.to_owned(),
        scheme: cfg.model.scheme,
        pretext_best: best,
        steps,
    })
}

/// What `report` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub markdown: PathBuf,
    pub figure3: Option<PathBuf>,
    pub figure4: Option<PathBuf>,
    pub rows: usize,
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v))
}

/// Writes `out/report.md` (+ `figure3.png`, `figure4.png`) for `runs`, `baselines` (downstream
/// output folders) and an optional t-SNE folder.
pub fn report(
    runs: &[PathBuf],
    baselines: &[PathBuf],
    tsne: Option<&Path>,
    out: &Path,
) -> Result<Report, EvalError> {
    std::fs::create_dir_all(out).map_err(|e| EvalError::Data(format!("{}: {e}", out.display())))?;
    let mut md = String::from("# sipl results\n\n## Table 4: best validation accuracy (%)\n\n");
    md += "| model | scheme | steps | pretext | downstream best (epoch) | downstream final | mode | paper pretext | paper downstream |\n";
    md += "|---|---|---:|---:|---:|---:|---|---:|---:|\n";
    let mut curves = Vec::new();
    let mut rows = 0;
    let mut datasets: Vec<EvaluatedDataset> = Vec::new();
    let mut note_dataset = |s: &DownstreamSummary| {
        if let Some(d) = &s.dataset
            && !datasets.iter().any(|o| o.identity == d.identity)
        {
            datasets.push(d.clone());
        }
    };
    let mut add_curve = |name: String, dir: &Path| -> Result<(), EvalError> {
        let curve = dir.join("curve.csv");
        if curve.exists() {
            curves.push(Curve { name, points: read_curve(&curve)? });
        }
        Ok(())
    };
    for dir in runs {
        let run = read_run(dir)?;
        let paper = paper_row(&run.scheme);
        let paper_cols = paper.map_or("– | –".into(), |(p, d)| format!("{p:.1} | {d:.1}"));
        let summaries: Vec<(PathBuf, DownstreamSummary)> = DOWNSTREAM_DIRS
            .iter()
            .map(|d| dir.join(d))
            .filter(|d| d.join(SUMMARY).exists())
            .map(|d| DownstreamSummary::read(&d).map(|s| (d, s)))
            .collect::<Result<_, _>>()?;
        let steps = run.steps.map_or("–".into(), |s| s.to_string());
        if summaries.is_empty() {
            writeln!(
                md,
                "| {} | {} | {steps} | {} | not evaluated | – | – | {paper_cols} |",
                run.name,
                run.scheme,
                pct(run.pretext_best)
            )
            .expect("string");
            rows += 1;
        }
        for (d, s) in summaries {
            note_dataset(&s);
            writeln!(
                md,
                "| {} | {} | {steps} | {} | {} ({}) | {} | {}{} | {paper_cols} |",
                run.name,
                run.scheme,
                pct(run.pretext_best),
                pct(Some(s.best_val_accuracy)),
                s.best_epoch,
                pct(Some(s.final_val_accuracy)),
                s.mode,
                if s.linear_probe { ", linear probe" } else { "" }
            )
            .expect("string");
            rows += 1;
            add_curve(format!("{} ({})", run.name, s.mode), &d)?;
        }
    }
    for dir in baselines {
        let s = DownstreamSummary::read(dir)?;
        note_dataset(&s);
        writeln!(
            md,
            "| {} | – | – | – | {} ({}) | {} | {} | – | – |",
            s.name,
            pct(Some(s.best_val_accuracy)),
            s.best_epoch,
            pct(Some(s.final_val_accuracy)),
            s.mode
        )
        .expect("string");
        rows += 1;
        add_curve(format!("{} ({})", s.name, s.mode), dir)?;
    }
    if datasets.len() > 1 {
        let sets: Vec<String> = datasets
            .iter()
            .map(|d| format!("{} (identity {})", d.path.display(), d.identity))
            .collect();
        md += &format!(
            "\n**The downstream rows were evaluated on different datasets** and do not compare: {}.\n",
            sets.join("; ")
        );
    }
    let figure3 = if curves.is_empty() {
        None
    } else {
        let p = out.join("figure3.png");
        curves_png(&curves, "Downstream held-out accuracy per epoch", &p)?;
        md += "\n## Figure 3: downstream accuracy per epoch\n\n![Figure 3](figure3.png)\n";
        Some(p)
    };
    let figure4 = match tsne {
        None => None,
        Some(t) => {
            let png = t.join("tsne.png");
            let dst = out.join("figure4.png");
            std::fs::copy(&png, &dst)
                .map_err(|e| EvalError::Data(format!("{}: {e}", png.display())))?;
            md += "\n## Figure 4: t-SNE of two classes under two style draws\n\n![Figure 4](figure4.png)\n\n";
            md += &tsne_table(t)?;
            Some(dst)
        }
    };
    let markdown = out.join("report.md");
    std::fs::write(&markdown, md)
        .map_err(|e| EvalError::Data(format!("{}: {e}", markdown.display())))?;
    Ok(Report { markdown, figure3, figure4, rows })
}

/// The t-SNE scores as a Markdown table, from `tsne.json`.
fn tsne_table(dir: &Path) -> Result<String, EvalError> {
    let path = dir.join("tsne.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| EvalError::Data(format!("{}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| EvalError::Data(format!("{}: {e}", path.display())))?;
    let mut md = String::from(
        "| model | twin-NN, embedding | twin-NN, map | class silhouette | style silhouette | class − style |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for m in v.get("models").and_then(|m| m.as_array()).into_iter().flatten() {
        let f = |k: &str| m["scores"][k].as_f64().unwrap_or(f64::NAN);
        writeln!(
            md,
            "| {} | {:.1}% | {:.1}% | {:.3} | {:.3} | {:+.3} |",
            m["name"].as_str().unwrap_or("?"),
            100.0 * f("twin_nn_embedding"),
            100.0 * f("twin_nn_map"),
            f("class_silhouette"),
            f("style_silhouette"),
            f("separability")
        )
        .expect("string");
    }
    Ok(md)
}
