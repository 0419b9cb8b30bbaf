//! Dataset sources: which files an ingest reads, in which order, with which labels.
//!
//! Order is part of the contract (the paper's splits are "the first N kept images in file
//! order"), so every listing is sorted with a natural sort (`val_2` before `val_10`) of the
//! names' bytes. The walk is the same for every layout (see `walk.rs` for links, hidden names
//! and non-UTF-8 names).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sipl_shards::names::encode_name;

use crate::error::{IngestError, Result};
use crate::walk::{Tree, Walker};

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
    /// The stored name: relative to ROOT, `/`-separated, reversible UTF-8
    /// ([`sipl_shards::names`]).
    pub rel: String,
    /// The path to read (ROOT joined with the real relative path, whatever its encoding).
    pub path: PathBuf,
    pub label: Option<i32>,
}

/// What a source lists: its files in ingest order, its class names (`classes[label]`) and
/// what the walk wants the user to know (folders reached twice, hidden entries skipped).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub items: Vec<SourceItem>,
    pub classes: Vec<String>,
    pub warnings: Vec<String>,
}

pub const IMAGENET_IMAGES: &str = "ILSVRC2012_img_val";
pub const IMAGENET_GROUND_TRUTH: &str =
    "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt";
/// Tiny ImageNet's list of its 200 class ids; when present it fixes the class list of the
/// train and val splits (sorted), so that both label alike.
pub const TINY_WNIDS: &str = "wnids.txt";

/// Lists the files of `kind` under `root`. `pinned` (from `--classes FILE`) fixes the class
/// list and its order for the layouts with named classes (folder, Tiny ImageNet train/val):
/// every class found must be in it; a pinned class without images is kept (and reported by the
/// ingest as a class with no kept image).
pub fn list(
    kind: SourceKind,
    root: &Path,
    split: Option<Split>,
    pinned: Option<&[String]>,
) -> Result<Listing> {
    let meta = std::fs::metadata(root).map_err(|e| root_error(root, e.to_string()))?;
    if !meta.is_dir() {
        return Err(root_error(root, "not a directory".into()));
    }
    let mut walker = Walker::new(root);
    let mut listing = match (kind, split) {
        (SourceKind::ImagenetVal, _) => imagenet_val(&mut walker, root)?,
        (SourceKind::TinyImagenet, Some(Split::Val)) => tiny_val(&mut walker, root, pinned)?,
        (SourceKind::TinyImagenet, Some(Split::Train)) => tiny_train(&mut walker, root, pinned)?,
        (SourceKind::TinyImagenet, Some(Split::Test)) => {
            unlabelled(walker.walk(&root.join("test/images"))?)
        }
        (SourceKind::TinyImagenet, None) => {
            return Err(IngestError::Settings("tiny-imagenet needs --split train|val|test".into()));
        }
        (SourceKind::Folder, _) => folder(&mut walker, root, pinned)?,
    };
    listing.warnings = walker.warnings();
    Ok(listing)
}

fn root_error(root: &Path, reason: String) -> IngestError {
    IngestError::Root { path: root.to_owned(), reason }
}

fn item(file: &crate::walk::Found, label: Option<i32>) -> SourceItem {
    SourceItem { rel: encode_name(&file.rel), path: file.path.clone(), label }
}

fn unlabelled(tree: Tree) -> Listing {
    let items = tree.files.iter().map(|f| item(f, None)).collect();
    Listing { items, ..Listing::default() }
}

fn imagenet_val(walker: &mut Walker, root: &Path) -> Result<Listing> {
    let tree = walker.walk(&root.join(IMAGENET_IMAGES))?;
    let gt_path = root.join(IMAGENET_GROUND_TRUTH);
    if !gt_path.exists() {
        return Ok(unlabelled(tree));
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
    let mut items = Vec::with_capacity(tree.files.len());
    for file in &tree.files {
        let rel = encode_name(&file.rel);
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
        items.push(item(file, label));
    }
    let classes = (1..=1000).map(|i| format!("ILSVRC2012_ID_{i}")).collect();
    Ok(Listing { items, classes, warnings: Vec::new() })
}

/// The class list of a Tiny ImageNet split: `--classes`, else the sorted `wnids.txt` when the
/// root has one, else `found` sorted.
fn tiny_classes(root: &Path, pinned: Option<&[String]>, found: Vec<String>) -> Result<Vec<String>> {
    if let Some(p) = pinned {
        return Ok(p.to_vec());
    }
    let wnids = root.join(TINY_WNIDS);
    let mut classes = match std::fs::read_to_string(&wnids) {
        Ok(text) => {
            text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => found,
        Err(e) => return Err(IngestError::io(&wnids, e)),
    };
    classes.sort();
    classes.dedup();
    Ok(classes)
}

/// `classes` position of `name`, or an error saying which list lacks it.
fn class_index(classes: &[String], name: &str, root: &Path, pinned: bool) -> Result<i32> {
    if let Some(i) = classes.iter().position(|c| c == name) {
        return Ok(i as i32);
    }
    let list = if pinned {
        "the --classes file".to_owned()
    } else {
        root.join(TINY_WNIDS).display().to_string()
    };
    let shown: Vec<&str> = classes.iter().take(5).map(String::as_str).collect();
    let more = if classes.len() > 5 { ", ..." } else { "" };
    Err(IngestError::Settings(format!(
        "class {name:?} is not in {list} ({} names: {}{more})",
        classes.len(),
        shown.join(", ")
    )))
}

fn tiny_val(walker: &mut Walker, root: &Path, pinned: Option<&[String]>) -> Result<Listing> {
    let ann = root.join("val/val_annotations.txt");
    let text = std::fs::read_to_string(&ann).map_err(|e| IngestError::Annotations {
        path: ann.clone(),
        reason: format!("cannot read the Tiny ImageNet val labels: {e}"),
    })?;
    let mut by_file = HashMap::new();
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
    let classes = tiny_classes(root, pinned, by_file.values().cloned().collect())?;
    let tree = walker.walk(&root.join("val/images"))?;
    let mut items = Vec::with_capacity(tree.files.len());
    for file in &tree.files {
        let rel = encode_name(&file.rel);
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        let Some(wnid) = by_file.get(name) else {
            return Err(IngestError::Annotations {
                path: ann.clone(),
                reason: format!("no label for {rel}"),
            });
        };
        let label = class_index(&classes, wnid, root, pinned.is_some())?;
        items.push(item(file, Some(label)));
    }
    Ok(Listing { items, classes, warnings: Vec::new() })
}

fn tiny_train(walker: &mut Walker, root: &Path, pinned: Option<&[String]>) -> Result<Listing> {
    let train = root.join("train");
    let folders = walker.subfolders(&train)?;
    let found = folders.iter().map(|(name, _)| name.clone()).collect();
    let classes = tiny_classes(root, pinned, found)?;
    let mut items = Vec::new();
    for (wnid, dir) in &folders {
        let label = class_index(&classes, wnid, root, pinned.is_some())?;
        let images = dir.join("images");
        let dir = if images.is_dir() { images } else { dir.clone() };
        for file in &walker.walk(&dir)?.files {
            items.push(item(file, Some(label)));
        }
    }
    Ok(Listing { items, classes, warnings: Vec::new() })
}

/// Any tree: an image's class is the folder holding it (its path below ROOT); files directly in
/// ROOT are unlabelled. Every folder that directly holds image files, or holds no folder, is a
/// class, whether or not any of its images is kept (torchvision's ImageFolder counts empty
/// class folders too), so two sets with the same class folders label alike.
fn folder(walker: &mut Walker, root: &Path, pinned: Option<&[String]>) -> Result<Listing> {
    let tree = walker.walk(root)?;
    let mut found: Vec<String> = tree.class_folders().map(|f| encode_name(&f.rel)).collect();
    found.sort();
    let classes = match pinned {
        Some(p) => {
            if let Some(missing) = found.iter().find(|c| !p.contains(c)) {
                return Err(IngestError::Settings(format!(
                    "class folder {missing:?} is not in the --classes file ({} names: {}{})",
                    p.len(),
                    p.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                    if p.len() > 5 { ", ..." } else { "" }
                )));
            }
            p.to_vec()
        }
        None => found,
    };
    let index: HashMap<&str, i32> =
        classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as i32)).collect();
    let mut items = Vec::with_capacity(tree.files.len());
    for file in &tree.files {
        // The folder holding an image is always a class folder.
        let label = file
            .rel
            .iter()
            .rposition(|&b| b == b'/')
            .and_then(|i| index.get(encode_name(&file.rel[..i]).as_str()).copied());
        items.push(item(file, label));
    }
    Ok(Listing { items, classes, warnings: Vec::new() })
}

/// The extensions ingest sees: torchvision's `IMG_EXTENSIONS`. The content decides the format
/// (a PNG named `.jpg` is read as a PNG); only JPEG and PNG are decoded, the rest is rejected
/// `unsupported`, so that no image file in a tree goes unaccounted for.
pub const IMAGE_EXTENSIONS: [&str; 9] =
    [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

/// Is this file name one ingest sees? (By extension, case-insensitive: a `.JPEG` holding text is
/// still *seen*, and rejected with its reason.)
pub fn is_image_name(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    IMAGE_EXTENSIONS.iter().any(|e| lower.ends_with(e.as_bytes()))
}

/// Compares strings with digit runs as numbers: `val_2` < `val_10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    natural_cmp_bytes(a.as_bytes(), b.as_bytes())
}

/// [`natural_cmp`] on names as bytes (names need not be UTF-8).
pub fn natural_cmp_bytes(mut a: &[u8], mut b: &[u8]) -> std::cmp::Ordering {
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
