//! `sipl shards verify DIR` and `sipl shards inspect DIR [--dump ID OUT.png]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use sipl_shards::Dataset;

use super::mib;

#[derive(Subcommand)]
pub enum ShardsCommand {
    /// Check every checksum and count: shards ↔ manifest ↔ dataset.json. Exit 1 on any defect.
    Verify { dir: PathBuf },
    /// Summarise a dataset; --dump writes one stored image as PNG.
    Inspect {
        dir: PathBuf,
        /// Write image ID (its global index, in [0, images − 1]) to OUT.png.
        #[arg(long, num_args = 2, value_names = ["ID", "OUT.png"])]
        dump: Option<Vec<String>>,
    },
}

pub fn run(c: ShardsCommand) -> anyhow::Result<()> {
    match c {
        ShardsCommand::Verify { dir } => verify(dir),
        ShardsCommand::Inspect { dir, dump: None } => inspect(dir),
        ShardsCommand::Inspect { dir, dump: Some(d) } => dump(dir, &d[0], &d[1]),
    }
}

fn verify(dir: PathBuf) -> anyhow::Result<()> {
    let report = sipl_shards::verify(&dir)?;
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    if !report.ok() {
        bail!("{}: {} problem(s) found", dir.display(), report.problems.len());
    }
    println!(
        "{}: verified {} images in {} shards, {} manifest entries",
        dir.display(),
        report.images,
        report.shards,
        report.manifest_entries
    );
    Ok(())
}

fn inspect(dir: PathBuf) -> anyhow::Result<()> {
    let ds = Dataset::open(&dir)?;
    let m = ds.meta();
    let c = &m.counts;
    println!("dataset   {}", dir.display());
    println!("format    version {} ({})", m.format_version, m.created_by);
    println!("settings  {}", m.settings);
    println!("images    {} kept of {} seen, {} rejected", c.kept, c.seen, c.rejected);
    for (reason, n) in &c.rejected_by_reason {
        println!("          rejected {reason}: {n}");
    }
    println!("classes   {}", m.classes.len());
    let raw: u64 = m.shards.iter().map(|s| s.raw_bytes).sum();
    println!(
        "storage   {} shards, {} (source files {}, raw pixels {})",
        m.shards.len(),
        mib(m.shard_bytes()),
        mib(m.source_bytes),
        mib(raw)
    );
    let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let mut labelled = 0;
    for i in 0..ds.len() {
        let r = ds.record(i)?;
        *sizes.entry((r.width, r.height)).or_default() += 1;
        labelled += r.label.is_some() as usize;
    }
    let shown: Vec<String> =
        sizes.iter().take(5).map(|((w, h), n)| format!("{w}x{h}: {n}")).collect();
    let more =
        if sizes.len() > 5 { format!(" (+{} more sizes)", sizes.len() - 5) } else { String::new() };
    println!("sizes     {}{more}", shown.join(", "));
    println!("labelled  {labelled} of {}", ds.len());
    Ok(())
}

fn dump(dir: PathBuf, id: &str, out: &str) -> anyhow::Result<()> {
    let reads = super::outputs::Reads::new().add("the dataset", &dir);
    super::outputs::output_file("--dump OUT.png", std::path::Path::new(out), &reads)?;
    let ds = Dataset::open(&dir)?;
    let ids = sipl_limits::Ints::new(0, ds.len().saturating_sub(1) as u64);
    let note = || format!("the dataset has {} images, numbered from 0", ds.len());
    let index: usize = match id.parse() {
        Ok(i) if !ds.is_empty() => ids.check("--dump ID", i).map_err(|e| e.note(note()))?,
        _ => {
            return Err(sipl_limits::RangeError::new("--dump ID", id, "an image index")
                .note(note())
                .into());
        }
    };
    let mut rgb = Vec::new();
    let rec = ds.decode_into(index, &mut rgb)?;
    let (w, h, path) = (rec.width, rec.height, rec.path.to_owned());
    let img = image::RgbImage::from_raw(w, h, rgb).context("pixel buffer size")?;
    sipl_eval::plot::save_png(&img, std::path::Path::new(out))?;
    println!("image {index} ({path}, {w}x{h}) written to {out}");
    Ok(())
}
