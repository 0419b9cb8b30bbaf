//! `sipl ingest SOURCE ROOT --out DIR`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use sipl_ingest::{IngestJob, IngestSettings, SourceKind, Split};

use sipl_shards::format::{DATASET_FILE, MANIFEST_FILE, SHARD_DIR};

use super::mib;
use super::outputs::{Out, Owner, Reads, output_dir};

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    /// ROOT holds ILSVRC2012_img_val/ (and optionally ILSVRC2012_devkit_t12/).
    ImagenetVal,
    /// ROOT is tiny-imagenet-200/ (needs --split).
    TinyImagenet,
    /// Any image tree; label = the folder holding the image (none for files directly in ROOT).
    /// Every folder that holds image files or no folder is a class, even if empty.
    Folder,
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Val,
    Test,
}

#[derive(Args)]
pub struct IngestArgs {
    #[arg(value_enum)]
    source: SourceArg,
    /// The input root (see SOURCE).
    root: PathBuf,
    /// Output dataset directory.
    #[arg(long)]
    out: PathBuf,
    /// Tiny ImageNet split.
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// Resize the shorter side to N, in [1, 4096] ("none" keeps the decoded size). Default:
    /// 256 for imagenet-val and folder, none for tiny-imagenet.
    #[arg(long, value_name = "N|none")]
    resize: Option<String>,
    /// Centre-crop to N×N, N in [1, 4096] and at most --resize ("none" keeps the whole
    /// image). Default: 224 / none as --resize.
    #[arg(long, value_name = "N|none")]
    crop: Option<String>,
    /// zstd level for the pixel blobs, in [1, 19] [default: 1]. Higher levels store photos
    /// about 5% smaller and decompress about half as fast; a set made at another level counts
    /// as complete (the same pixels), --force rewrites it.
    #[arg(long)]
    zstd_level: Option<i32>,
    /// Close a shard at this many images, in [1, 1000000] [default: 10000] ...
    #[arg(long)]
    shard_images: Option<usize>,
    /// ... or at this many MiB of compressed pixels, in [1, 4096] [default: 64].
    #[arg(long)]
    shard_mib: Option<usize>,
    /// Reject images whose shorter side is below N pixels, N in [1, 65535] [default: 8].
    #[arg(long)]
    min_side: Option<u32>,
    /// Reject images with more than N pixels (checked on the header, before decoding), N in
    /// [1, 1000000000] [default: 100000000].
    #[arg(long)]
    max_pixels: Option<u64>,
    /// Fix the class list: one class name a line, line N is label N-1. Every class folder must
    /// be listed; listed classes without images keep their labels. Use the same file for sets
    /// ingested separately (train and val) so that they label alike.
    #[arg(long, value_name = "FILE")]
    classes: Option<PathBuf>,
    /// Worker threads, in [1, 4 × this machine's cores] (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace an existing dataset made with other settings.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn size_arg(flag: &str, v: Option<String>, default: Option<u32>) -> anyhow::Result<Option<u32>> {
    match v.as_deref() {
        None => Ok(default),
        Some("none") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            sipl_limits::RangeError::new(&format!("--{flag}"), format!("{s:?}"), "N or none")
                .note(format!("N in {}", sipl_limits::IMAGE_SIDE))
                .into()
        }),
    }
}

pub fn run(a: IngestArgs) -> anyhow::Result<()> {
    let kind = match a.source {
        SourceArg::ImagenetVal => SourceKind::ImagenetVal,
        SourceArg::TinyImagenet => SourceKind::TinyImagenet,
        SourceArg::Folder => SourceKind::Folder,
    };
    let split = a.split.map(|s| match s {
        SplitArg::Train => Split::Train,
        SplitArg::Val => Split::Val,
        SplitArg::Test => Split::Test,
    });
    let mut s = IngestSettings::defaults(kind, &a.root, split)?;
    s.resize = size_arg("resize", a.resize, s.resize)?;
    s.crop = size_arg("crop", a.crop, s.crop)?;
    s.zstd_level = a.zstd_level.unwrap_or(s.zstd_level);
    s.shard_max_images = a.shard_images.unwrap_or(s.shard_max_images);
    s.shard_target_mib = a.shard_mib.unwrap_or(s.shard_target_mib);
    s.min_side = a.min_side.unwrap_or(s.min_side);
    s.max_pixels = a.max_pixels.unwrap_or(s.max_pixels);
    let reads =
        Reads::new().add("the input ROOT", &a.root).add_opt("--classes", a.classes.as_deref());
    let own = Out::Own(Owner::Dataset, &[SHARD_DIR, MANIFEST_FILE, DATASET_FILE]);
    output_dir("--out", &a.out, own, &reads)?;
    if let Some(path) = &a.classes {
        s.classes = Some(IngestSettings::read_classes(path)?);
    }
    let job = IngestJob {
        settings: s,
        out: a.out.clone(),
        threads: a.threads,
        force: a.force,
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    let report = sipl_ingest::ingest(&job)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let m = &report.meta;
    let c = &m.counts;
    if !report.ran && c.kept > 0 {
        println!(
            "{}: already complete with these settings ({} kept of {}); nothing to do",
            a.out.display(),
            c.kept,
            c.seen
        );
        return Ok(());
    }
    let reasons: Vec<String> =
        c.rejected_by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect();
    anyhow::ensure!(
        c.kept > 0,
        "{}: no image kept of {} seen{}; the dataset is written (manifest.parquet lists each file \
         with its reason) but nothing can train on it",
        a.out.display(),
        c.seen,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" (rejected: {})", reasons.join(", "))
        }
    );
    println!(
        "{}: kept {} of {} images, rejected {}{} (reasons in manifest.parquet)",
        a.out.display(),
        c.kept,
        c.seen,
        c.rejected,
        if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
    );
    let raw: u64 = m.shards.iter().map(|s| s.raw_bytes).sum();
    let ips = report.images_per_second();
    println!(
        "speed: {:.1} s, {ips:.0} images/s on {} threads ({:.0} images/s per thread)",
        report.seconds,
        report.threads,
        ips / report.threads as f64
    );
    println!(
        "size: {} shards, {} vs {} of source files (ratio {:.3}); raw pixels {} (zstd ratio {:.2})",
        m.shards.len(),
        mib(m.shard_bytes()),
        mib(m.source_bytes),
        m.shard_bytes() as f64 / m.source_bytes.max(1) as f64,
        mib(raw),
        raw as f64 / m.shard_bytes().max(1) as f64
    );
    Ok(())
}
