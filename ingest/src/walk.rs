//! The folder walk behind every source layout: each file listed once, always finishing.
//!
//! - Links are followed, to files and to folders, as torchvision's `ImageFolder` does. A folder
//!   is listed once however many paths lead to it: folders are told apart by (device, inode).
//!   The real folders of the tree are listed first, then the links to folders in the natural
//!   order of their names; a link to a folder already listed (a loop such as `a/again -> .`,
//!   a link back to ROOT, a second link to one folder) is not followed, and the ingest warns.
//!   Links to files are files: a link and its target both listed are two entries.
//! - Hidden names (starting with `.`) are skipped: `.DS_Store`, the `._IMG_1.jpg` resource
//!   forks macOS leaves on shared drives, `.ipynb_checkpoints/` (which would otherwise be a
//!   class folder and shift every label after it).
//! - Names need not be UTF-8: a file is read by its real path and stored by its reversible
//!   name ([`sipl_shards::names`]).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sipl_shards::names::{encode_name, os_bytes};

use crate::error::{IngestError, Result};
use crate::source::{is_image_name, natural_cmp_bytes};

/// An image-named file: its name relative to ROOT (bytes, `/`-separated) and the path to read.
#[derive(Debug, Clone)]
pub struct Found {
    pub rel: Vec<u8>,
    pub path: PathBuf,
}

/// A folder listed by a walk (not the folder the walk started in).
#[derive(Debug, Clone)]
pub struct Folder {
    pub rel: Vec<u8>,
    /// Image-named files directly inside it.
    pub images: usize,
}

/// What one walk found, naturally sorted by name.
#[derive(Debug, Default)]
pub struct Tree {
    pub files: Vec<Found>,
    pub folders: Vec<Folder>,
}

impl Tree {
    /// The folders that are classes: those holding image files, and those holding no folder
    /// (an empty class folder is still a class).
    pub fn class_folders(&self) -> impl Iterator<Item = &Folder> {
        let parents: HashSet<&[u8]> = self
            .folders
            .iter()
            .filter_map(|f| f.rel.iter().rposition(|&b| b == b'/').map(|i| &f.rel[..i]))
            .collect();
        self.folders.iter().filter(move |f| f.images > 0 || !parents.contains(f.rel.as_slice()))
    }
}

/// Walks folders under one ROOT, remembering every folder listed across walks.
pub struct Walker {
    root: PathBuf,
    /// (device, inode) → the name the folder was listed under.
    listed: HashMap<(u64, u64), Vec<u8>>,
    hidden: usize,
    repeats: Vec<String>,
    /// Folders seen but not reachable by their path (longer than the system's `PATH_MAX`, or
    /// refused to a look), with why.
    unreachable: Vec<String>,
}

impl Walker {
    pub fn new(root: &Path) -> Self {
        Walker {
            root: root.to_owned(),
            listed: HashMap::new(),
            hidden: 0,
            repeats: Vec::new(),
            unreachable: Vec::new(),
        }
    }

    /// Every image-named file under `start` (ROOT or a folder below it) and every folder.
    pub fn walk(&mut self, start: &Path) -> Result<Tree> {
        let start_rel = self.rel_of(start);
        let mut tree = Tree::default();
        let id = folder_id(start)?;
        if !self.claim(id, &start_rel, "is") {
            return Ok(tree);
        }
        let mut real = vec![(start_rel.clone(), start.to_owned())];
        let mut links: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        loop {
            while let Some((rel, dir)) = real.pop() {
                let mut images = 0;
                for (name, path, is_link, listed_as_dir) in read_dir_sorted(&dir)? {
                    let name = os_bytes(&name).into_owned();
                    let child = join(&rel, &name);
                    let meta = std::fs::metadata(&path);
                    let is_dir = meta.as_ref().is_ok_and(|m| m.is_dir());
                    if let Err(e) = &meta
                        && listed_as_dir
                        && !name.starts_with(b".")
                    {
                        // A folder its own listing names, which its path cannot reach.
                        let bytes = path.as_os_str().len();
                        self.unreachable.push(format!(
                            "{} ({bytes}-byte path): cannot be listed ({e}); the images below it \
                             are not in the dataset",
                            show(&child)
                        ));
                        continue;
                    }
                    if name.starts_with(b".") {
                        self.hidden += usize::from(is_dir || is_image_name(&name));
                    } else if is_dir && is_link {
                        links.push((child, path));
                    } else if is_dir {
                        if self.claim(folder_id(&path)?, &child, "is") {
                            real.push((child, path));
                        }
                    } else if is_image_name(&name) {
                        // A dangling link or an unreadable entry is still a file we saw.
                        images += 1;
                        tree.files.push(Found { rel: child, path });
                    }
                }
                if rel != start_rel {
                    tree.folders.push(Folder { rel, images });
                }
            }
            // Links to folders, after every real folder, in natural order.
            links.sort_by(|a, b| natural_cmp_bytes(&b.0, &a.0));
            let Some((rel, path)) = links.pop() else { break };
            if self.claim(folder_id(&path)?, &rel, "links to") {
                real.push((rel, path));
            }
        }
        tree.files.sort_by(|a, b| natural_cmp_bytes(&a.rel, &b.rel));
        tree.folders.sort_by(|a, b| natural_cmp_bytes(&a.rel, &b.rel));
        Ok(tree)
    }

    /// The folders directly inside `dir` (links followed, hidden names skipped), with their
    /// stored names, naturally sorted.
    pub fn subfolders(&self, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
        Ok(read_dir_sorted(dir)?
            .into_iter()
            .filter(|(name, path, ..)| !os_bytes(name).starts_with(b".") && path.is_dir())
            .map(|(name, path, ..)| (encode_name(&os_bytes(&name)), path))
            .collect())
    }

    /// What the walks skipped, for the user.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.repeats.clone();
        out.extend(self.unreachable.iter().cloned());
        if self.hidden > 0 {
            out.push(format!(
                "skipped {} hidden folder(s) and image file(s) (names starting with '.')",
                self.hidden
            ));
        }
        out
    }

    /// Records folder `id` as listed under `rel`; false (and a warning) if it already was.
    fn claim(&mut self, id: (u64, u64), rel: &[u8], how: &str) -> bool {
        match self.listed.get(&id) {
            Some(first) => {
                self.repeats.push(format!(
                    "{} {how} the folder already listed as {}: not listed again",
                    show(rel),
                    show(first)
                ));
                false
            }
            None => {
                self.listed.insert(id, rel.to_owned());
                true
            }
        }
    }

    fn rel_of(&self, path: &Path) -> Vec<u8> {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let parts: Vec<Vec<u8>> = rel.iter().map(|c| os_bytes(c).into_owned()).collect();
        parts.join(&b'/')
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() { name.to_owned() } else { [parent, b"/", name].concat() }
}

fn show(rel: &[u8]) -> String {
    if rel.is_empty() { "ROOT".into() } else { encode_name(rel) }
}

fn folder_id(dir: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(dir).map_err(|e| IngestError::Root {
        path: dir.to_owned(),
        reason: format!("cannot list: {e}"),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        // No inode numbers: tell folders apart by their canonical path.
        let _ = meta;
        let canonical = std::fs::canonicalize(dir).map_err(|e| IngestError::io(dir, e))?;
        Ok((0, xxhash_rust::xxh3::xxh3_64(canonical.to_string_lossy().as_bytes())))
    }
}

/// (name, path, is a symbolic link, is a folder by the listing itself) of every entry of `dir`,
/// naturally sorted by name.
#[allow(clippy::type_complexity)]
fn read_dir_sorted(dir: &Path) -> Result<Vec<(OsString, PathBuf, bool, bool)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| IngestError::Root {
        path: dir.to_owned(),
        reason: format!("cannot list: {e}"),
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| IngestError::io(dir, e))?;
        let kind = e.file_type();
        let is_link = kind.as_ref().is_ok_and(|t| t.is_symlink());
        let is_dir = kind.as_ref().is_ok_and(|t| t.is_dir());
        out.push((e.file_name(), e.path(), is_link, is_dir));
    }
    out.sort_by(|a, b| natural_cmp_bytes(&os_bytes(&a.0), &os_bytes(&b.0)));
    Ok(out)
}
