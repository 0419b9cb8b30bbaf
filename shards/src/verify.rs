//! `sipl shards verify`: every checksum, every count, and manifest ↔ shards ↔ dataset.json.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Result;
use crate::format::{MANIFEST_FILE, SHARD_DIR, TMP_SUFFIX, xxh3_hex};
use crate::manifest::read_manifest;
use crate::meta::DatasetMeta;
use crate::reader::ShardReader;

/// The outcome of a verification: problems found (empty = verified) and what was checked.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub shards: usize,
    pub images: usize,
    pub manifest_entries: usize,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a dataset directory end to end. Returns `Err` only when `dataset.json` itself
/// cannot be read; every other defect is listed in the report.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let meta = DatasetMeta::load(dir)?;
    let mut report = VerifyReport::default();
    let mut next_id = 0u64;
    let mut shard_paths: Vec<Vec<String>> = Vec::new();
    for info in &meta.shards {
        let mut problem = |p: String| report.problems.push(format!("{}: {p}", info.file));
        let path = dir.join(&info.file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                problem(format!("cannot read: {e}"));
                shard_paths.push(Vec::new());
                continue;
            }
        };
        if bytes.len() as u64 != info.bytes {
            problem(format!("{} bytes, dataset.json says {}", bytes.len(), info.bytes));
        }
        if xxh3_hex(&bytes) != info.xxh3 {
            problem("file hash differs from dataset.json".into());
        }
        drop(bytes);
        let paths = match check_rows(&path, info.rows, info.first_id) {
            Ok((paths, row_problems)) => {
                row_problems.into_iter().for_each(&mut problem);
                paths
            }
            Err(e) => {
                problem(e.to_string());
                Vec::new()
            }
        };
        if info.first_id != next_id {
            problem(format!("first id {} but {} expected", info.first_id, next_id));
        }
        next_id = info.first_id + info.rows as u64;
        report.images += paths.len();
        shard_paths.push(paths);
    }
    report.shards = meta.shards.len();
    check_stray_files(dir, &meta, &mut report.problems);
    check_manifest(dir, &meta, &shard_paths, &mut report);
    Ok(report)
}

/// Decodes every row of one shard; returns its paths and the problems found.
fn check_rows(path: &Path, rows: usize, first_id: u64) -> Result<(Vec<String>, Vec<String>)> {
    let reader = ShardReader::open(path)?;
    let mut problems = Vec::new();
    if reader.len() != rows {
        problems.push(format!("{} rows, dataset.json says {rows}", reader.len()));
    }
    let mut buf = Vec::new();
    let mut paths = Vec::with_capacity(reader.len());
    for row in 0..reader.len() {
        match reader.decode_into(row, &mut buf) {
            Ok(rec) => {
                if rec.id != first_id + row as u64 {
                    problems.push(format!("row {row}: id {} out of sequence", rec.id));
                }
                paths.push(rec.path.to_owned());
            }
            Err(e) => {
                problems.push(e.to_string());
                paths.push(String::new());
            }
        }
    }
    Ok((paths, problems))
}

fn check_stray_files(dir: &Path, meta: &DatasetMeta, problems: &mut Vec<String>) {
    let listed: BTreeSet<&str> = meta.shards.iter().map(|s| s.file.as_str()).collect();
    let Ok(entries) = std::fs::read_dir(dir.join(SHARD_DIR)) else {
        problems.push(format!("{SHARD_DIR}/: cannot list"));
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{SHARD_DIR}/{}", entry.file_name().to_string_lossy());
        if !listed.contains(name.as_str()) {
            let what = if name.ends_with(TMP_SUFFIX) { "leftover temporary" } else { "unlisted" };
            problems.push(format!("{name}: {what} file not in dataset.json"));
        }
    }
}

fn check_manifest(
    dir: &Path,
    meta: &DatasetMeta,
    shard_paths: &[Vec<String>],
    report: &mut VerifyReport,
) {
    let path = dir.join(MANIFEST_FILE);
    let problems = &mut report.problems;
    match std::fs::read(&path) {
        Ok(bytes) if xxh3_hex(&bytes) != meta.manifest.xxh3 => {
            problems.push(format!("{MANIFEST_FILE}: file hash differs from dataset.json"))
        }
        Ok(_) => {}
        Err(e) => return problems.push(format!("{MANIFEST_FILE}: cannot read: {e}")),
    }
    let entries = match read_manifest(&path) {
        Ok(e) => e,
        Err(e) => return problems.push(e.to_string()),
    };
    report.manifest_entries = entries.len();
    let kept = entries.iter().filter(|e| e.kept).count();
    let c = &meta.counts;
    if entries.len() != c.seen || kept != c.kept || entries.len() - kept != c.rejected {
        problems.push(format!(
            "{MANIFEST_FILE}: {} entries, {kept} kept; dataset.json counts {} seen, {} kept, {} rejected",
            entries.len(), c.seen, c.kept, c.rejected
        ));
    }
    if meta.total_rows() != c.kept {
        problems.push(format!(
            "dataset.json: {} shard rows but {} kept",
            meta.total_rows(),
            c.kept
        ));
    }
    let mut covered: Vec<Vec<bool>> = shard_paths.iter().map(|p| vec![false; p.len()]).collect();
    for e in entries.iter().filter(|e| e.kept) {
        let (Some(s), Some(r)) = (e.shard, e.row) else {
            problems.push(format!("{MANIFEST_FILE}: {} kept but has no shard/row", e.path));
            continue;
        };
        let (s, r) = (s as usize, r as usize);
        match shard_paths.get(s).and_then(|p| p.get(r)) {
            Some(p) if *p == e.path => covered[s][r] = true,
            Some(p) => problems.push(format!(
                "{MANIFEST_FILE}: {} points at shard {s} row {r}, which holds {p}",
                e.path
            )),
            None => problems
                .push(format!("{MANIFEST_FILE}: {} points at missing shard {s} row {r}", e.path)),
        }
    }
    let uncovered: usize = covered.iter().flatten().filter(|c| !**c).count();
    if uncovered > 0 {
        problems.push(format!("{uncovered} shard rows have no kept manifest entry"));
    }
}
