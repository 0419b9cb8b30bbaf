//! Dataset sources: which files an ingest reads, in which order, with which labels.
//!
//! Order is part of the contract (the paper's splits are "the first N kept images in file
//! order"), so every listing is sorted with a natural sort (`val_2` before `val_10`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IngestError, Result};

/// The source layouts `sipl ingest` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// ROOT holds `ILSVRC2012_img_val/` and optionally `ILSVRC2012_devkit_t12/`.
    ImagenetVal,
    /// ROOT is `tiny-imagenet-200/`; needs a split.
    TinyImagenet,
    /// Any image tree; label from the parent folder name, or none.
    Folder,
}

/// Tiny ImageNet split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Val,
    Test,
}

/// One source file to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// Relative to ROOT, `/`-separated.
    pub rel: String,
    pub label: Option<i32>,
}

/// What a source lists: its files in ingest order and its class names (`classes[label]`).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub items: Vec<SourceItem>,
    pub classes: Vec<String>,
}

pub const IMAGENET_IMAGES: &str = "ILSVRC2012_img_val";
pub const IMAGENET_GROUND_TRUTH: &str =
    "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt";

/// Lists the files of `kind` under `root`.
pub fn list(kind: SourceKind, root: &Path, split: Option<Split>) -> Result<Listing> {
    let meta = std::fs::metadata(root).map_err(|e| root_error(root, e.to_string()))?;
    if !meta.is_dir() {
        return Err(root_error(root, "not a directory".into()));
    }
    match (kind, split) {
        (SourceKind::ImagenetVal, _) => imagenet_val(root),
        (SourceKind::TinyImagenet, Some(Split::Val)) => tiny_val(root),
        (SourceKind::TinyImagenet, Some(Split::Train)) => tiny_train(root),
        (SourceKind::TinyImagenet, Some(Split::Test)) => {
            let files = image_files(&root.join("test/images"), root)?;
            Ok(unlabelled(files))
        }
        (SourceKind::TinyImagenet, None) => {
            Err(IngestError::Settings("tiny-imagenet needs --split train|val|test".into()))
        }
        (SourceKind::Folder, _) => folder(root),
    }
}

fn root_error(root: &Path, reason: String) -> IngestError {
    IngestError::Root { path: root.to_owned(), reason }
}

fn unlabelled(files: Vec<String>) -> Listing {
    let items = files.into_iter().map(|rel| SourceItem { rel, label: None }).collect();
    Listing { items, classes: Vec::new() }
}

fn imagenet_val(root: &Path) -> Result<Listing> {
    let files = image_files(&root.join(IMAGENET_IMAGES), root)?;
    let gt_path = root.join(IMAGENET_GROUND_TRUTH);
    if !gt_path.exists() {
        return Ok(unlabelled(files));
    }
    let text = std::fs::read_to_string(&gt_path).map_err(|e| IngestError::io(&gt_path, e))?;
    let bad = |reason: String| IngestError::Annotations { path: gt_path.clone(), reason };
    let truth: Vec<i32> = text
        .lines()
        .enumerate()
        .map(|(i, l)| match l.trim().parse::<i32>() {
            Ok(v @ 1..=1000) => Ok(v - 1),
            _ => Err(bad(format!("line {}: expected an integer 1..1000, got {l:?}", i + 1))),
        })
        .collect::<Result<_>>()?;
    let mut items = Vec::with_capacity(files.len());
    for rel in files {
        // ILSVRC2012_val_00000001.JPEG is line 1 of the ground truth.
        let number = rel
            .rsplit('_')
            .next()
            .and_then(|s| s.split('.').next())
            .and_then(|s| s.parse::<usize>().ok());
        let label = match number {
            Some(n @ 1..) if n <= truth.len() => Some(truth[n - 1]),
            _ => return Err(bad(format!("no ground-truth line for {rel}"))),
        };
        items.push(SourceItem { rel, label });
    }
    let classes = (1..=1000).map(|i| format!("ILSVRC2012_ID_{i}")).collect();
    Ok(Listing { items, classes })
}

fn tiny_val(root: &Path) -> Result<Listing> {
    let ann = root.join("val/val_annotations.txt");
    let text = std::fs::read_to_string(&ann).map_err(|e| IngestError::Annotations {
        path: ann.clone(),
        reason: format!("cannot read the Tiny ImageNet val labels: {e}"),
    })?;
    let mut by_file = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut f = line.split('\t');
        match (f.next(), f.next()) {
            (Some(file), Some(wnid)) if !wnid.is_empty() => {
                by_file.insert(file.to_owned(), wnid.to_owned());
            }
            _ => {
                return Err(IngestError::Annotations {
                    path: ann.clone(),
                    reason: format!("line {}: expected 'file<TAB>wnid...', got {line:?}", i + 1),
                });
            }
        }
    }
    let mut classes: Vec<String> = by_file.values().cloned().collect();
    classes.sort();
    classes.dedup();
    let files = image_files(&root.join("val/images"), root)?;
    let mut items = Vec::with_capacity(files.len());
    for rel in files {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        let label = by_file.get(name).and_then(|w| classes.binary_search(w).ok()).map(|i| i as i32);
        if label.is_none() {
            return Err(IngestError::Annotations {
                path: ann.clone(),
                reason: format!("no label for {rel}"),
            });
        }
        items.push(SourceItem { rel, label });
    }
    Ok(Listing { items, classes })
}

fn tiny_train(root: &Path) -> Result<Listing> {
    let train = root.join("train");
    let mut classes: Vec<String> = read_dir_sorted(&train)?
        .into_iter()
        .filter(|(_, p)| p.is_dir())
        .map(|(name, _)| name)
        .collect();
    classes.sort();
    let mut items = Vec::new();
    for (label, wnid) in classes.iter().enumerate() {
        let dir = train.join(wnid).join("images");
        let dir = if dir.is_dir() { dir } else { train.join(wnid) };
        for rel in image_files(&dir, root)? {
            items.push(SourceItem { rel, label: Some(label as i32) });
        }
    }
    Ok(Listing { items, classes })
}

fn folder(root: &Path) -> Result<Listing> {
    let files = image_files(root, root)?;
    let parent = |rel: &str| rel.rsplit_once('/').map(|(p, _)| p.to_owned());
    let mut classes: Vec<String> = files.iter().filter_map(|f| parent(f)).collect();
    classes.sort();
    classes.dedup();
    let items = files
        .into_iter()
        .map(|rel| {
            let label = parent(&rel).and_then(|p| classes.binary_search(&p).ok()).map(|i| i as i32);
            SourceItem { rel, label }
        })
        .collect();
    Ok(Listing { items, classes })
}

/// Is this file name one ingest reads? (By extension: a `.JPEG` holding text is still *seen*,
/// and rejected with its reason.)
pub fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpeg", ".jpg", ".png"].iter().any(|e| lower.ends_with(e))
}

/// Every image file under `dir` (recursively), relative to `root`, naturally sorted.
fn image_files(dir: &Path, root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for (name, path) in read_dir_sorted(&d)? {
            // A dangling symlink or an unreadable entry is still a file we saw.
            if path.is_dir() {
                stack.push(path);
            } else if is_image_name(&name) {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| IngestError::Root {
        path: dir.to_owned(),
        reason: format!("cannot list: {e}"),
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| IngestError::io(dir, e))?;
        out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    out.sort();
    Ok(out)
}

/// Compares strings with digit runs as numbers: `val_2` < `val_10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then(na.cmp(nb)).then(da.cmp(&db));
                if ord.is_ne() {
                    return ord;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|c| **c == b'0').count();
    &d[z..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["val_10.JPEG", "val_2.JPEG", "val_1.JPEG", "a/val_3.JPEG"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a/val_3.JPEG", "val_1.JPEG", "val_2.JPEG", "val_10.JPEG"]);
        assert!(natural_cmp("x_007", "x_7").is_gt());
        assert!(natural_cmp("n01_b", "n01_a").is_gt());
    }
}
