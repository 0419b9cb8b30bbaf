//! The report's monitor section: what each model's encoder was worth downstream while it
//! trained, read from the monitor lines of its runs' `metrics.jsonl` (`[monitor]` of `sipl
//! train`). Figure 3's question asked during pretraining: the monitor's kNN accuracy against
//! the epoch, seeds as a mean with a 95% band, and the random encoder (every run's first
//! figure, measured before its first step) as a flat line with its interval; a table of the
//! random, first, last and best figures; and paired verdicts over seeds, last figure against
//! the same seed's random encoder and model against model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sipl_train::trainer::metrics::{self, MonitorLine};

use crate::EvalError;
use crate::plot::{Curve, curves_png};
use crate::report::run_name;
use crate::results::strip_seed;
use crate::stats::{self, LEVEL, paired_t, verdict, wilson};

/// File name of the figure in the report's folder.
pub const FIGURE: &str = "monitor.png";

/// One run's monitor lines.
struct Series {
    seed: String,
    lines: Vec<MonitorLine>,
}

/// The figure (written to `out/monitor.png`) and the Markdown section for `runs`; `None` when
/// no run has monitor lines.
///
/// # Errors
/// The figure cannot be written.
pub fn section(runs: &[PathBuf], out: &Path) -> Result<Option<(String, PathBuf)>, EvalError> {
    let mut models: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for dir in runs {
        let lines: Vec<MonitorLine> = metrics::monitors(&metrics::read(dir)).cloned().collect();
        if lines.is_empty() {
            continue;
        }
        let name = run_name(dir);
        let seed = name.rsplit_once("-seed").map_or(name.clone(), |(_, s)| s.to_owned());
        models.entry(strip_seed(&name).to_owned()).or_default().push(Series { seed, lines });
    }
    if models.is_empty() {
        return Ok(None);
    }
    let mut curves = Vec::new();
    let mut md = String::from(
        "\n## Monitor: kNN accuracy while pretraining (%)\n\nEach run's monitor (`[monitor]`): weighted kNN of its held-out images, measured before the first step (the random encoder of its seed) and after every `monitor.every` epochs. Several seeds: mean [95% t-interval]; one: the figure [95% Wilson interval]. Verdicts pair seeds: the last figure against the same seed's random encoder, and models against each other.\n\n| model | seeds | random encoder | first epoch | last (step) | best |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut randoms: BTreeMap<String, f64> = BTreeMap::new();
    let mut lasts: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
    let mut max_x: f64 = 1.0;
    for (name, series) in &models {
        // The steps every seed measured (a monitor added on resume, or another `every`,
        // leaves gaps in some).
        let mut common: Vec<u64> = series[0].lines.iter().map(|m| m.step).collect();
        for s in &series[1..] {
            common.retain(|st| s.lines.iter().any(|m| m.step == *st));
        }
        let per_epoch = steps_per_epoch(series.iter().flat_map(|s| &s.lines));
        let cell = |pick: &dyn Fn(&[MonitorLine]) -> Option<MonitorLine>| -> String {
            let got: Vec<MonitorLine> = series.iter().filter_map(|s| pick(&s.lines)).collect();
            figure(&got)
        };
        let first = |l: &[MonitorLine]| l.first().filter(|m| m.step == 0).cloned();
        let after_one = |l: &[MonitorLine]| l.iter().find(|m| m.step > 0).cloned();
        let last = |l: &[MonitorLine]| l.last().cloned();
        // The random encoder's figure is a baseline, not a candidate.
        let best = |l: &[MonitorLine]| {
            l.iter()
                .filter(|m| m.step > 0)
                .max_by(|a, b| a.knn_accuracy.total_cmp(&b.knn_accuracy))
                .cloned()
        };
        let step = series[0].lines.last().map_or(0, |m| m.step);
        md += &format!(
            "| {} | {} | {} | {} | {} ({step}) | {} |\n",
            crate::report_md::escape_md(name),
            series.len(),
            cell(&first),
            cell(&after_one),
            cell(&last),
            cell(&best)
        );
        for s in series {
            if let Some(r) = first(&s.lines) {
                randoms.insert(s.seed.clone(), r.knn_accuracy);
            }
            if let Some(l) = last(&s.lines) {
                lasts.entry(name.as_str()).or_default().insert(s.seed.clone(), l.knn_accuracy);
            }
        }
        let (mut points, mut band) = (Vec::new(), Vec::new());
        for &step in &common {
            let at = |s: &Series| s.lines.iter().find(|m| m.step == step).cloned();
            let here: Vec<MonitorLine> = series.iter().filter_map(at).collect();
            let x = per_epoch.map_or(here[0].epoch as f64, |p| step as f64 / p);
            let values: Vec<f64> = here.iter().map(|m| m.knn_accuracy).collect();
            let s = stats::over_seeds(&values, LEVEL);
            points.push((x, s.mean));
            match (series.len(), s.interval) {
                (1, _) => {
                    let l = &here[0];
                    band.push((x, l.knn_low, l.knn_high));
                }
                (_, Some(iv)) => band.push((x, iv.low, iv.high)),
                _ => {}
            }
            max_x = max_x.max(x);
        }
        let label =
            format!("{name} ({} seed{})", series.len(), if series.len() == 1 { "" } else { "s" });
        curves.push(Curve { name: label, points, band: Some(band) });
    }
    if !randoms.is_empty() {
        let values: Vec<f64> = randoms.values().copied().collect();
        let s = stats::over_seeds(&values, LEVEL);
        let (lo, hi) = match s.interval {
            Some(i) => (i.low, i.high),
            None => {
                // One seed: that random encoder's Wilson interval, from any run of the seed.
                let l =
                    models.values().flatten().find_map(|s| s.lines.first().filter(|m| m.step == 0));
                l.map_or((s.mean, s.mean), |m| (m.knn_low, m.knn_high))
            }
        };
        curves.push(Curve {
            name: format!(
                "random encoder ({} seed{})",
                values.len(),
                if values.len() == 1 { "" } else { "s" }
            ),
            points: vec![(0.0, s.mean), (max_x, s.mean)],
            band: Some(vec![(0.0, lo, hi), (max_x, lo, hi)]),
        });
    }
    md += "\n| comparison (last figure) | seeds | mean difference (points) | verdict |\n|---|---:|---:|---|\n";
    let names: Vec<&str> = lasts.keys().copied().collect();
    for name in &names {
        md += &compare_row(name, "random encoder", &lasts[name], &randoms);
    }
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            md += &compare_row(a, b, &lasts[a], &lasts[b]);
        }
    }
    let path = out.join(FIGURE);
    curves_png(&curves, "Monitor: kNN accuracy while pretraining", &path)?;
    md += &format!("\n![Monitor curves]({FIGURE})\n");
    Ok(Some((md, path)))
}

/// A cell: one run's figure [Wilson interval], or the mean over seeds [t-interval].
fn figure(lines: &[MonitorLine]) -> String {
    match lines {
        [] => "–".into(),
        [m] => {
            let w = wilson(m.knn_correct, m.knn_held_out, LEVEL);
            w.map_or(format!("{:.1}", 100.0 * m.knn_accuracy), |w| {
                format!(
                    "{:.1} [{:.1}, {:.1}]",
                    100.0 * m.knn_accuracy,
                    100.0 * w.low,
                    100.0 * w.high
                )
            })
        }
        _ => {
            let values: Vec<f64> = lines.iter().map(|m| m.knn_accuracy).collect();
            let s = stats::over_seeds(&values, LEVEL);
            s.interval.map_or(format!("{:.1}", 100.0 * s.mean), |i| {
                format!("{:.1} [{:.1}, {:.1}]", 100.0 * s.mean, 100.0 * i.low, 100.0 * i.high)
            })
        }
    }
}

/// A row pairing `a` and `b` by seed: the mean difference and the paired t-test's verdict.
fn compare_row(a: &str, b: &str, xa: &BTreeMap<String, f64>, xb: &BTreeMap<String, f64>) -> String {
    let (a, b) = (&crate::report_md::escape_md(a), &crate::report_md::escape_md(b));
    let d: Vec<f64> = xa.iter().filter_map(|(s, v)| xb.get(s).map(|w| v - w)).collect();
    if d.is_empty() {
        return format!("| {a} − {b} | 0 | – | no seed has both figures |\n");
    }
    let shown = match paired_t(&d, LEVEL) {
        Some(t) => verdict(a, b, t.mean, t.p_value),
        None => "one seed: read the intervals above".into(),
    };
    let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
    format!("| {a} − {b} | {} | {:+.1} | {shown} |\n", d.len(), 100.0 * mean)
}

/// Steps per epoch, read off the lines (the smallest step / epochs completed of a line after
/// the first epoch); `None` before any epoch completed.
fn steps_per_epoch<'a>(lines: impl Iterator<Item = &'a MonitorLine>) -> Option<f64> {
    lines
        .filter(|m| m.epoch > 0)
        .map(|m| m.step as f64 / m.epoch as f64)
        .min_by(f64::total_cmp)
        .filter(|p| *p > 0.0)
}
