//! `sipl report RUN…`: Table 4 in Markdown with Figures 3 and 4 (see `sipl_eval::report`).

use std::path::PathBuf;

use clap::Args;

use super::outputs::{Out, Reads, output_dir};

#[derive(Args)]
pub struct ReportArgs {
    /// Pretext run directories (evaluated with `sipl eval downstream --run`).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Downstream output folders of baselines (e.g. `--random-init`), as extra rows and curves.
    #[arg(long)]
    baseline: Vec<PathBuf>,
    /// A `sipl eval tsne` output folder (its panels become Figure 4).
    #[arg(long)]
    tsne: Option<PathBuf>,
    /// Output folder: report.md, figure3.png, figure4.png.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let reads = a.runs.iter().fold(Reads::new(), |r, run| r.add("a run it reports", run));
    let reads = a.baseline.iter().fold(reads, |r, b| r.add("a --baseline folder", b));
    let reads = reads.add_opt("the --tsne folder", a.tsne.as_deref());
    let names = &["report.md", "figure3.png", "figure4.png"];
    output_dir("--out", &a.out, Out::Folder(names), &reads)?;
    let r = sipl_eval::report::report(&a.runs, &a.baseline, a.tsne.as_deref(), &a.out)?;
    println!("{}: {} rows", r.markdown.display(), r.rows);
    for f in [r.figure3, r.figure4].into_iter().flatten() {
        println!("{}", f.display());
    }
    Ok(())
}
