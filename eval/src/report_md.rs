//! `report.md` and Figure 3: every accuracy with its 95% interval, seeds aggregated per model,
//! and every pair of models compared on the same held-out images with a paired test and a
//! one-line verdict (the statistics are in [`crate::stats`], the grouping in
//! [`crate::results`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::EvalError;
use crate::outputs::read_curve;
use crate::plot::{Curve, curves_png};
use crate::report::{DOWNSTREAM_DIRS, RunInfo, SUMMARY, paper_row, read_run};
use crate::results::{Evaluation, KNN_SUMMARY, Kind, Member, Model, group};
use crate::stats::{self, Interval, LEVEL, McNemar, PairedT};

/// What `report` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub markdown: PathBuf,
    pub figure3: Option<PathBuf>,
    pub figure4: Option<PathBuf>,
    /// Rows of Table 4 (one per model, and one per run not yet evaluated).
    pub rows: usize,
}

fn io(path: &Path, e: impl std::fmt::Display) -> EvalError {
    EvalError::Data(format!("{}: {e}", path.display()))
}

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

fn interval(i: Interval) -> String {
    format!("[{:.1}, {:.1}]", 100.0 * i.low, 100.0 * i.high)
}

/// One run's accuracy: "28.5 [24.7, 32.6]" (Wilson, binomial over `n` predictions).
fn single(acc: f64, correct: u64, n: u64) -> String {
    match stats::wilson(correct, n, LEVEL) {
        Some(i) => format!("{} {}", pct(acc), interval(i)),
        None => pct(acc),
    }
}

/// Several seeds: "27.1 ± 1.3 [23.9, 30.3]" (mean ± sd, t-interval of the mean).
fn several(values: &[f64]) -> String {
    let s = stats::over_seeds(values, LEVEL);
    match (s.sd, s.interval) {
        (Some(sd), Some(i)) => format!("{} ± {} {}", pct(s.mean), pct(sd), interval(i)),
        _ => pct(s.mean),
    }
}

/// A measure (0 or 1) of a model: single-run Wilson, or aggregated over seeds.
fn measure(m: &Model, k: usize) -> String {
    match m.members.as_slice() {
        [one] => {
            let e = &one.eval;
            let cell = single(e.measures[k], e.correct()[k], e.n as u64);
            match (k, e.best_epoch) {
                (0, Some(epoch)) => format!("{cell} ({epoch})"),
                _ => cell,
            }
        }
        members => several(&members.iter().map(|x| x.eval.measures[k]).collect::<Vec<_>>()),
    }
}

fn pretext(m: &Model) -> String {
    let runs: Vec<&RunInfo> = m.members.iter().filter_map(|x| x.run.as_ref()).collect();
    let best: Vec<f64> = runs.iter().filter_map(|r| r.pretext_best).collect();
    match (runs.as_slice(), best.as_slice()) {
        (_, []) => "–".into(),
        ([r], [b]) => match r.pretext_best_n {
            Some(n) => single(*b, (b * n as f64).round() as u64, n),
            None => pct(*b),
        },
        (_, b) => several(b),
    }
}

fn steps(m: &Model) -> String {
    let s: Vec<u64> = m.members.iter().filter_map(|x| x.run.as_ref()?.steps).collect();
    match (s.iter().min(), s.iter().max()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => "–".into(),
    }
}

fn seed_name(seed: Option<i64>) -> String {
    seed.map_or("–".into(), |s| s.to_string())
}

/// A comparison of models A and B on the same held-out images.
struct Comparison {
    a: String,
    b: String,
    labels: [String; 2],
    /// Per paired seed: (seed, McNemar on measure 0, on measure 1).
    per_seed: Vec<(Option<i64>, [McNemar; 2])>,
    /// Over seeds (two or more pairs): paired t-tests of the per-seed differences.
    over_seeds: Option<[PairedT; 2]>,
}

impl Comparison {
    fn cell(&self, k: usize) -> String {
        match (&self.over_seeds, self.per_seed.as_slice()) {
            (Some(t), _) => format!(
                "{:+.1} {} (paired t over {} seeds, {})",
                100.0 * t[k].mean,
                interval(t[k].interval),
                t[k].n,
                stats::format_p(t[k].p_value)
            ),
            (None, [(_, m)]) => format!(
                "{:+.1} (McNemar {}:{}, {})",
                100.0 * m[k].difference(),
                m[k].a_only,
                m[k].b_only,
                stats::format_p(m[k].p_value)
            ),
            _ => "–".into(),
        }
    }

    fn verdict(&self, k: usize) -> String {
        let (d, p) = match (&self.over_seeds, self.per_seed.as_slice()) {
            (Some(t), _) => (t[k].mean, t[k].p_value),
            (None, [(_, m)]) => (m[k].difference(), m[k].p_value),
            _ => return "–".into(),
        };
        format!("{}: {}", self.labels[k], stats::verdict(&self.a, &self.b, d, p))
    }
}

/// A model as Markdown text: its name (escaped) and variant.
fn display(m: &Model) -> String {
    escape_md(&plain(m))
}

/// A model as plain text (figure legends).
fn plain(m: &Model) -> String {
    format!("{} ({})", m.name, m.variant)
}

/// `text` as literal Markdown, inside a table cell or a sentence: the punctuation Markdown
/// reads (`|` ends a cell, `*` and `_` emphasise, `[` links, `<` opens HTML, `\` escapes) is
/// escaped, and control characters (a newline would end the table row) are shown as `\n`.
pub fn escape_md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            if "\\`*_[]<>|~&".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Pairs A's and B's evaluations (by seed; two single evaluations pair whatever their seeds)
/// and tests them, or says why they cannot be compared.
fn compare(a: &Model, b: &Model) -> Result<Comparison, String> {
    let pairs: Vec<(&Member, &Member)> = match (a.members.as_slice(), b.members.as_slice()) {
        ([x], [y]) => vec![(x, y)],
        (xs, ys) => {
            xs.iter().filter_map(|x| ys.iter().find(|y| y.seed == x.seed).map(|y| (x, y))).collect()
        }
    };
    if pairs.is_empty() {
        return Err("no seed in common".into());
    }
    let mut per_seed = Vec::new();
    for (x, y) in &pairs {
        let (Some(px), Some(py)) = (&x.eval.predictions, &y.eval.predictions) else {
            let missing = if x.eval.predictions.is_none() { x } else { y };
            return Err(format!(
                "no predictions.parquet in {} (evaluated by an older sipl: evaluate again)",
                missing.eval.dir.display()
            ));
        };
        if px.held_out != py.held_out {
            return Err(format!(
                "they held out different images ({} holds out {} images with fingerprint {}, {} holds out {} with {}): evaluate both on the same dataset and split",
                escape_md(&x.label),
                px.len(),
                px.held_out,
                escape_md(&y.label),
                py.len(),
                py.held_out
            ));
        }
        per_seed.push((
            x.seed,
            [
                stats::mcnemar_exact(&px.right_best(), &py.right_best()),
                stats::mcnemar_exact(&px.right_final(), &py.right_final()),
            ],
        ));
    }
    let over_seeds = if per_seed.len() >= 2 {
        let diffs = |k: usize| per_seed.iter().map(|(_, m)| m[k].difference()).collect::<Vec<_>>();
        match (stats::paired_t(&diffs(0), LEVEL), stats::paired_t(&diffs(1), LEVEL)) {
            (Some(t0), Some(t1)) => Some([t0, t1]),
            _ => None,
        }
    } else {
        None
    };
    // One model's two variants (cached vs faithful, say) are told apart by their variants.
    let (a_name, b_name) = if a.name == b.name {
        (display(a), display(b))
    } else {
        (escape_md(&a.name), escape_md(&b.name))
    };
    Ok(Comparison {
        a: a_name,
        b: b_name,
        labels: a.members[0].eval.labels.clone(),
        per_seed,
        over_seeds,
    })
}

/// The comparisons section for the models of one kind.
fn comparisons(models: &[&Model], md: &mut String) {
    let mut done = Vec::new();
    let mut refused = Vec::new();
    for (i, a) in models.iter().enumerate() {
        for b in &models[i + 1..] {
            match compare(a, b) {
                Ok(c) => done.push((display(a), display(b), c)),
                Err(why) => refused.push(format!(
                    "- {} and {}: not compared: {why}.",
                    display(a),
                    display(b)
                )),
            }
        }
    }
    if done.is_empty() && refused.is_empty() {
        md.push_str("(one model: nothing to compare)\n");
        return;
    }
    if !done.is_empty() {
        let labels = &done[0].2.labels;
        writeln!(
            md,
            "| A | B | seeds | Δ {} (points, A − B) | Δ {} (points) | verdict |\n|---|---|---:|---|---|---|",
            labels[0], labels[1]
        )
        .expect("string");
        for (a, b, c) in &done {
            writeln!(
                md,
                "| {a} | {b} | {} | {} | {} | {}; {} |",
                c.per_seed.len(),
                c.cell(0),
                c.cell(1),
                c.verdict(0),
                c.verdict(1)
            )
            .expect("string");
        }
        if done.iter().any(|(_, _, c)| c.per_seed.len() >= 2) {
            writeln!(
                md,
                "\nPer seed (exact McNemar on the same images):\n\n| A | B | seed | Δ {0} | p | Δ {1} | p |\n|---|---|---:|---:|---:|---:|---:|",
                labels[0], labels[1]
            )
            .expect("string");
            for (a, b, c) in done.iter().filter(|(_, _, c)| c.per_seed.len() >= 2) {
                for (seed, m) in &c.per_seed {
                    writeln!(
                        md,
                        "| {a} | {b} | {} | {:+.1} | {} | {:+.1} | {} |",
                        seed_name(*seed),
                        100.0 * m[0].difference(),
                        stats::format_p(m[0].p_value),
                        100.0 * m[1].difference(),
                        stats::format_p(m[1].p_value)
                    )
                    .expect("string");
                }
            }
        }
    }
    if !refused.is_empty() {
        md.push('\n');
        for r in refused {
            md.push_str(&r);
            md.push('\n');
        }
    }
}

/// Figure 3's curve of a model: one run's, or the mean over seeds with its t-interval band
/// (over the epochs every seed has).
fn model_curve(m: &Model) -> Result<Option<Curve>, EvalError> {
    let mut curves = Vec::new();
    for x in &m.members {
        let path = x.eval.dir.join(crate::outputs::CURVE);
        if !path.exists() {
            return Ok(None);
        }
        curves.push(read_curve(&path)?);
    }
    let name = match m.members.len() {
        1 => plain(m),
        n => format!("{} ({}, {n} seeds)", m.name, m.variant),
    };
    if curves.len() == 1 {
        return Ok(Some(Curve { name, points: curves.remove(0), band: None }));
    }
    let epochs = curves.iter().map(Vec::len).min().unwrap_or(0);
    let (mut points, mut band) = (Vec::new(), Vec::new());
    for e in 0..epochs {
        let values: Vec<f64> = curves.iter().map(|c| c[e].1).collect();
        let s = stats::over_seeds(&values, LEVEL);
        let epoch = curves[0][e].0;
        points.push((epoch, s.mean));
        if let Some(i) = s.interval {
            band.push((epoch, i.low, i.high));
        }
    }
    Ok(Some(Curve { name, points, band: Some(band) }))
}

const HOW_TO_READ: &str = "Intervals are 95%. One run: the Wilson interval of its held-out \
accuracy (binomial, over the held-out images). Several seeds: mean ± standard deviation over \
seeds and the t-interval of the mean. Comparisons pair the same images: the exact McNemar test \
per seed and, over two or more seeds, a paired t-test of the per-seed differences; a verdict \
names a winner only at p < 0.05. p-values are not adjusted for the number of comparisons.";

/// Writes `out/report.md` (+ `figure3.png`, `figure4.png`) for `runs`, `baselines`
/// (evaluation output folders without a run) and an optional t-SNE folder.
///
/// # Errors
/// A folder that is not a run or an evaluation; a predictions file that does not match its
/// summary; two evaluations of one model with the same seed; unwritable output.
pub fn report(
    runs: &[PathBuf],
    baselines: &[PathBuf],
    tsne: Option<&Path>,
    out: &Path,
) -> Result<Report, EvalError> {
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut evaluated = Vec::new();
    let mut unevaluated = Vec::new();
    for dir in runs {
        let run = read_run(dir)?;
        let evals = DOWNSTREAM_DIRS
            .iter()
            .map(|d| dir.join(d))
            .filter(|d| d.join(SUMMARY).exists() || d.join(KNN_SUMMARY).exists())
            .map(|d| Evaluation::read(&d))
            .collect::<Result<Vec<_>, _>>()?;
        if evals.is_empty() {
            unevaluated.push(run);
        } else {
            evaluated.push((run, evals));
        }
    }
    let base = baselines.iter().map(|d| Evaluation::read(d)).collect::<Result<Vec<_>, _>>()?;
    let models = group(evaluated, base)?;
    let downstream: Vec<&Model> = models.iter().filter(|m| m.kind == Kind::Downstream).collect();
    let knn: Vec<&Model> = models.iter().filter(|m| m.kind == Kind::Knn).collect();

    let mut md = String::from("# sipl results\n\n");
    md += &format!("{HOW_TO_READ}\n\n## Table 4: best validation accuracy (%)\n\n");
    md += "| model | scheme | seeds | steps | pretext | downstream best (epoch) | downstream final | mode | paper pretext | paper downstream |\n";
    md += "|---|---|---:|---:|---:|---:|---:|---|---:|---:|\n";
    let mut rows = 0;
    for m in &downstream {
        let scheme = m.scheme.clone().unwrap_or_else(|| "–".into());
        let paper =
            paper_row(&scheme).map_or("– | –".into(), |(p, d)| format!("{p:.1} | {d:.1}"));
        writeln!(
            md,
            "| {} | {scheme} | {} | {} | {} | {} | {} | {} | {paper} |",
            escape_md(&m.name),
            m.members.len(),
            steps(m),
            pretext(m),
            measure(m, 0),
            measure(m, 1),
            m.variant
        )
        .expect("string");
        rows += 1;
    }
    for r in &unevaluated {
        let paper =
            paper_row(&r.scheme).map_or("– | –".into(), |(p, d)| format!("{p:.1} | {d:.1}"));
        let pre = match (r.pretext_best, r.pretext_best_n) {
            (Some(b), Some(n)) => single(b, (b * n as f64).round() as u64, n),
            (Some(b), None) => pct(b),
            _ => "–".into(),
        };
        let steps = r.steps.map_or("–".into(), |s| s.to_string());
        writeln!(
            md,
            "| {} | {} | 1 | {steps} | {pre} | not evaluated | – | – | {paper} |",
            escape_md(&r.name),
            r.scheme
        )
        .expect("string");
        rows += 1;
    }
    let single_seed: Vec<String> =
        models.iter().filter(|m| m.members.len() == 1).map(display).collect();
    if !single_seed.is_empty() {
        writeln!(
            md,
            "\nOne seed only: {}. Their intervals come from the binomial alone (the held-out \
             images); the spread between seeds is not measured, so there is no t-interval.",
            single_seed.join(", ")
        )
        .expect("string");
    }
    if models.iter().any(|m| m.members.len() > 1) {
        md += "\n### Every evaluation\n\n| model | seed | folder | pretext | measure 1 | measure 2 | held-out images |\n|---|---:|---|---:|---:|---:|---:|\n";
        for m in models.iter().filter(|m| m.members.len() > 1) {
            for x in &m.members {
                let e = &x.eval;
                let c = e.correct();
                let pre =
                    x.run.as_ref().and_then(|r| r.pretext_best.map(|b| (b, r.pretext_best_n)));
                let pre = match pre {
                    Some((b, Some(n))) => single(b, (b * n as f64).round() as u64, n),
                    Some((b, None)) => pct(b),
                    None => "–".into(),
                };
                writeln!(
                    md,
                    "| {} | {} | {} | {pre} | {}: {} | {}: {} | {} |",
                    display(m),
                    seed_name(x.seed),
                    escape_md(&x.label),
                    e.labels[0],
                    single(e.measures[0], c[0], e.n as u64),
                    e.labels[1],
                    single(e.measures[1], c[1], e.n as u64),
                    e.n
                )
                .expect("string");
            }
        }
    }
    let mut datasets: Vec<&crate::report::EvaluatedDataset> = Vec::new();
    for d in models.iter().flat_map(|m| &m.members).filter_map(|x| x.eval.dataset.as_ref()) {
        if !datasets.iter().any(|o| o.identity == d.identity) {
            datasets.push(d);
        }
    }
    if datasets.len() > 1 {
        let sets: Vec<String> = datasets
            .iter()
            .map(|d| {
                format!("{} (identity {})", escape_md(&d.path.display().to_string()), d.identity)
            })
            .collect();
        md += &format!(
            "\n**The rows were evaluated on different datasets** and do not compare: {}.\n",
            sets.join("; ")
        );
    }
    md += "\n## Comparisons on the same held-out images (downstream)\n\n";
    comparisons(&downstream, &mut md);
    if !knn.is_empty() {
        md += "\n## kNN on frozen embeddings (%)\n\n| model | seeds | measure 1 | measure 2 | variant |\n|---|---:|---:|---:|---|\n";
        for m in &knn {
            let l = &m.members[0].eval.labels;
            writeln!(
                md,
                "| {} | {} | {}: {} | {}: {} | {} |",
                escape_md(&m.name),
                m.members.len(),
                l[0],
                measure(m, 0),
                l[1],
                measure(m, 1),
                m.variant
            )
            .expect("string");
        }
        md += "\n### Comparisons on the same held-out images (kNN)\n\n";
        comparisons(&knn, &mut md);
    }

    let mut curves = Vec::new();
    for m in &downstream {
        if let Some(c) = model_curve(m)? {
            curves.push(c);
        }
    }
    let figure3 = if curves.is_empty() {
        None
    } else {
        let p = out.join("figure3.png");
        curves_png(&curves, "Downstream held-out accuracy per epoch", &p)?;
        md += "\n## Figure 3: downstream accuracy per epoch (several seeds: mean, 95% band)\n\n![Figure 3](figure3.png)\n";
        Some(p)
    };
    if let Some((section, _)) = crate::monitor_report::section(runs, out)? {
        md += &section;
    }
    let figure4 = match tsne {
        None => None,
        Some(t) => {
            let png = t.join("tsne.png");
            let dst = out.join("figure4.png");
            let bytes = std::fs::read(&png).map_err(|e| io(&png, e))?;
            crate::plot::write_file(&dst, &bytes)?;
            md += "\n## Figure 4: t-SNE of two classes under two style draws\n\n![Figure 4](figure4.png)\n\n";
            md += &crate::report::tsne_table(t)?;
            Some(dst)
        }
    };
    let markdown = out.join("report.md");
    crate::plot::write_file(&markdown, md.as_bytes())?;
    Ok(Report { markdown, figure3, figure4, rows })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_literal_markdown() {
        use super::escape_md;
        assert_eq!(escape_md("siplv1-seed0 (cached)"), "siplv1-seed0 (cached)");
        assert_eq!(escape_md("a|b"), "a\\|b");
        assert_eq!(
            escape_md("*x* [y](z) <b> `c` ~d~ & e_f"),
            "\\*x\\* \\[y\\](z) \\<b\\> \\`c\\` \\~d\\~ \\& e\\_f"
        );
        assert_eq!(escape_md("two\nlines\\"), "two\\nlines\\\\");
    }
}
