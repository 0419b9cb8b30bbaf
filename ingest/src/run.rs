//! The ingest pipeline: list → (parallel) read, decode, filter, pre-process, compress →
//! (in order) shards, manifest, `dataset.json`.
//!
//! Workers process a window of files in parallel and results are consumed in source order,
//! so the output is byte-identical whatever the thread count.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use sipl_shards::format::MANIFEST_FILE;
use sipl_shards::{Counts, DatasetMeta, EncodedImage, ManifestEntry, ShardWriter};

use crate::error::{IngestError, Result};
use crate::intake::{self, IntakeLimits, Rejection, RgbImage};
use crate::output::{self, Prepared};
use crate::preprocess;
use crate::settings::IngestSettings;
use crate::source::{self, SourceItem};

/// One ingest run.
#[derive(Debug, Clone)]
pub struct IngestJob {
    pub settings: IngestSettings,
    pub out: PathBuf,
    /// Worker threads, at most 4 per core (`sipl_limits::worker_threads`); `None` = one per
    /// core.
    pub threads: Option<usize>,
    /// Replace a dataset made with other settings.
    pub force: bool,
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub meta: DatasetMeta,
    /// False when a complete dataset with the same settings was already there.
    pub ran: bool,
    pub seconds: f64,
    pub threads: usize,
    /// What the user should know: folders reached twice, hidden entries skipped, classes
    /// without a kept image.
    pub warnings: Vec<String>,
}

impl IngestReport {
    pub fn images_per_second(&self) -> f64 {
        self.meta.counts.seen as f64 / self.seconds.max(1e-9)
    }
}

enum Outcome {
    Kept(EncodedImage, (u32, u32), Option<u8>),
    Rejected(Rejection),
}

/// Runs an ingest job to completion.
pub fn ingest(job: &IngestJob) -> Result<IngestReport> {
    let s = &job.settings;
    s.validate()?;
    if let Some(t) = job.threads {
        sipl_limits::check_worker_threads("--threads", t)?;
    }
    let root = Path::new(&s.root);
    let listing = source::list(s.source, root, s.split, s.classes.as_deref())?;
    let settings_json = s.to_json();
    let threads = job.threads.unwrap_or_else(rayon::current_num_threads);
    if let Prepared::AlreadyComplete(meta) = output::prepare(&job.out, &settings_json, job.force)? {
        let warnings = listing.warnings;
        return Ok(IngestReport { meta: *meta, ran: false, seconds: 0.0, threads, warnings });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| IngestError::Settings(e.to_string()))?;
    let start = Instant::now();
    let bar = progress_bar(listing.items.len(), job.progress);
    let mut meta = DatasetMeta::new(settings_json);
    meta.classes = listing.classes.clone();
    let mut manifest = Vec::with_capacity(listing.items.len());
    let mut writer = ShardWriter::new(&job.out, 0, 0);
    for window in listing.items.chunks(64 * threads) {
        let results: Vec<(u64, Outcome)> =
            pool.install(|| window.par_iter().map(|it| process(it, s)).collect());
        for (item, (bytes, outcome)) in window.iter().zip(results) {
            meta.source_bytes += bytes;
            manifest.push(record(item, bytes, outcome, &mut writer, &mut meta.counts));
            let full = writer.len() >= s.shard_max_images
                || writer.blob_bytes() >= s.shard_target_mib << 20;
            if full {
                close_shard(&mut writer, &job.out, &mut meta)?;
            }
        }
        bar.inc(window.len() as u64);
    }
    if !writer.is_empty() {
        close_shard(&mut writer, &job.out, &mut meta)?;
    }
    bar.finish_and_clear();
    meta.manifest = sipl_shards::write_manifest(&job.out.join(MANIFEST_FILE), &manifest)?;
    meta.save(&job.out)?;
    output::finish(&job.out)?;
    let mut warnings = listing.warnings;
    warnings.extend(empty_classes(&meta.classes, &manifest));
    let seconds = start.elapsed().as_secs_f64();
    Ok(IngestReport { meta, ran: true, seconds, threads, warnings })
}

/// One warning for the classes with no kept image: their labels exist but nothing trains or
/// evaluates on them.
fn empty_classes(classes: &[String], manifest: &[ManifestEntry]) -> Option<String> {
    let (mut seen, mut kept) = (vec![0usize; classes.len()], vec![0usize; classes.len()]);
    for e in manifest {
        if let Some(l) =
            e.label.and_then(|l| usize::try_from(l).ok()).filter(|&l| l < classes.len())
        {
            seen[l] += 1;
            kept[l] += usize::from(e.kept);
        }
    }
    let empty: Vec<String> = (0..classes.len())
        .filter(|&l| kept[l] == 0)
        .map(|l| match seen[l] {
            0 => format!("{} (no image files)", classes[l]),
            n => format!("{} ({n} image(s), all rejected)", classes[l]),
        })
        .collect();
    if empty.is_empty() {
        return None;
    }
    let shown = empty.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    let more =
        if empty.len() > 10 { format!(", and {} more", empty.len() - 10) } else { String::new() };
    Some(format!(
        "{} of {} classes have no kept image; they keep their labels: {shown}{more}",
        empty.len(),
        classes.len()
    ))
}

fn close_shard(writer: &mut ShardWriter, out: &Path, meta: &mut DatasetMeta) -> Result<()> {
    let next_id = meta.total_rows() as u64 + writer.len() as u64;
    let next = ShardWriter::new(out, meta.shards.len() + 1, next_id);
    let info = std::mem::replace(writer, next).finish()?;
    meta.shards.push(info);
    Ok(())
}

/// Books one outcome into the manifest, the counts and the open shard.
fn record(
    item: &SourceItem,
    bytes: u64,
    outcome: Outcome,
    writer: &mut ShardWriter,
    counts: &mut Counts,
) -> ManifestEntry {
    counts.seen += 1;
    let mut entry = ManifestEntry {
        path: item.rel.clone(),
        kept: false,
        reason_code: None,
        reason: None,
        label: item.label,
        width: None,
        height: None,
        shard: None,
        row: None,
        source_bytes: bytes,
        orientation: None,
    };
    match outcome {
        Outcome::Kept(image, (w, h), orientation) => {
            counts.kept += 1;
            entry.kept = true;
            entry.orientation = orientation;
            (entry.width, entry.height) = (Some(w), Some(h));
            entry.shard = Some(writer.index() as u32);
            entry.row = Some(writer.len() as u32);
            writer.push(image);
        }
        Outcome::Rejected(r) => {
            counts.rejected += 1;
            *counts.rejected_by_reason.entry(r.code.to_owned()).or_default() += 1;
            entry.reason_code = Some(r.code.to_owned());
            entry.reason = Some(r.detail);
            entry.orientation = r.orientation;
            (entry.width, entry.height) = (r.dims.map(|d| d.0), r.dims.map(|d| d.1));
        }
    }
    entry
}

/// Reads, decodes, filters, pre-processes and compresses one file. Returns the file's size.
fn process(item: &SourceItem, s: &IngestSettings) -> (u64, Outcome) {
    let unreadable = |detail: String| {
        let r = Rejection { code: intake::code::UNREADABLE, detail, dims: None, orientation: None };
        (0, Outcome::Rejected(r))
    };
    // A FIFO or device with an image name would block or never end: read regular files only.
    match std::fs::metadata(&item.path) {
        Ok(m) if !m.is_file() => {
            return unreadable(format!("not a regular file ({})", kind_of(&m.file_type())));
        }
        Err(e) => return unreadable(e.to_string()),
        Ok(_) => {}
    }
    let bytes = match std::fs::read(&item.path) {
        Ok(b) => b,
        Err(e) => return unreadable(e.to_string()),
    };
    let limits = IntakeLimits { min_side: s.min_side, max_pixels: s.max_pixels };
    let size = bytes.len() as u64;
    let (img, orientation) = match intake::decode(&bytes, limits) {
        Ok(d) => (d.image, d.orientation),
        Err(r) => return (size, Outcome::Rejected(r)),
    };
    drop(bytes);
    let dims = (img.width, img.height);
    let img = prepare(img, s);
    let encoded = EncodedImage::encode(
        item.rel.clone(),
        item.label,
        (img.height, img.width),
        &img.pixels,
        s.zstd_level,
    );
    match encoded {
        Ok(e) => (size, Outcome::Kept(e, dims, orientation)),
        Err(e) => {
            let r = Rejection {
                code: intake::code::CORRUPT,
                detail: format!("compression failed: {e}"),
                dims: Some(dims),
                orientation,
            };
            (size, Outcome::Rejected(r))
        }
    }
}

/// What a non-regular file is, in words.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_dir() { "a folder" } else { "a special file" }
}

/// The deterministic pre-processing the settings ask for.
pub fn prepare(img: RgbImage, s: &IngestSettings) -> RgbImage {
    let img = match s.resize {
        Some(n) => preprocess::resize_shorter(&img, n),
        None => img,
    };
    match s.crop {
        Some(c) => preprocess::center_crop(&img, c),
        None => img,
    }
}

fn progress_bar(len: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("ingest {bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
            .expect("static template");
    bar.set_style(style);
    bar
}
