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
}

impl IngestReport {
    pub fn images_per_second(&self) -> f64 {
        self.meta.counts.seen as f64 / self.seconds.max(1e-9)
    }
}

enum Outcome {
    Kept(EncodedImage, (u32, u32)),
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
    let listing = source::list(s.source, root, s.split)?;
    let settings_json = s.to_json();
    let threads = job.threads.unwrap_or_else(rayon::current_num_threads);
    if let Prepared::AlreadyComplete(meta) = output::prepare(&job.out, &settings_json, job.force)? {
        return Ok(IngestReport { meta: *meta, ran: false, seconds: 0.0, threads });
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
            pool.install(|| window.par_iter().map(|it| process(root, it, s)).collect());
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
    Ok(IngestReport { meta, ran: true, seconds: start.elapsed().as_secs_f64(), threads })
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
    };
    match outcome {
        Outcome::Kept(image, (w, h)) => {
            counts.kept += 1;
            entry.kept = true;
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
            (entry.width, entry.height) = (r.dims.map(|d| d.0), r.dims.map(|d| d.1));
        }
    }
    entry
}

/// Reads, decodes, filters, pre-processes and compresses one file. Returns the file's size.
fn process(root: &Path, item: &SourceItem, s: &IngestSettings) -> (u64, Outcome) {
    let path = root.join(&item.rel);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            let r = Rejection { code: intake::code::UNREADABLE, detail: e.to_string(), dims: None };
            return (0, Outcome::Rejected(r));
        }
    };
    let limits = IntakeLimits { min_side: s.min_side, max_pixels: s.max_pixels };
    let size = bytes.len() as u64;
    let img = match intake::decode_rgb(&bytes, limits) {
        Ok(img) => img,
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
        Ok(e) => (size, Outcome::Kept(e, dims)),
        Err(e) => {
            let r = Rejection {
                code: intake::code::CORRUPT,
                detail: format!("compression failed: {e}"),
                dims: Some(dims),
            };
            (size, Outcome::Rejected(r))
        }
    }
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
