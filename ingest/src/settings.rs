//! The settings of one ingest: everything that determines the bytes it writes. Saved in
//! `dataset.json`; a run with other settings must not overwrite a dataset.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sipl_limits::Ints;

use crate::error::{IngestError, Result};
use crate::source::{SourceKind, Split};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestSettings {
    pub source: SourceKind,
    /// The input root, absolute.
    pub root: String,
    pub split: Option<Split>,
    /// Shorter side resized to this (torchvision `Resize`); `None` keeps the decoded size.
    pub resize: Option<u32>,
    /// Centre crop to this square (torchvision `CenterCrop`); `None` keeps the whole image.
    pub crop: Option<u32>,
    /// Source images whose shorter side is below this are rejected.
    pub min_side: u32,
    /// Source images with more pixels than this are rejected before decoding.
    pub max_pixels: u64,
    pub zstd_level: i32,
    /// A shard is closed at this many images ...
    pub shard_max_images: usize,
    /// ... or once its compressed pixels reach this many MiB, whichever comes first.
    pub shard_target_mib: usize,
    /// The class list pinned by `--classes FILE` (`classes[label]`), for the layouts with named
    /// classes; `None` derives it from the source. Absent from `dataset.json` when `None`, so
    /// sets made before it existed keep their fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// The library that decoded the JPEGs, `libjpeg-turbo X.Y.Z` (the one Pillow decodes
    /// with). Sets made before it existed were decoded by zune-jpeg, whose pixels can differ
    /// from Pillow's; lacking this field, they count as made with other settings, so ingesting
    /// into their directory asks for `--force`, and a run resumed on a re-ingested set sees a
    /// new dataset identity.
    #[serde(default)]
    pub jpeg_decoder: String,
}

/// zstd levels the pixel blobs may use (`--zstd-level`).
pub const ZSTD_LEVEL: Ints = Ints::new(1, 19);
/// Images per shard (`--shard-images`).
pub const SHARD_IMAGES: Ints = Ints::new(1, 1_000_000);
/// MiB of compressed pixels per shard (`--shard-mib`); a shard is memory-mapped whole.
pub const SHARD_MIB: Ints = Ints::new(1, 4096);
/// Smallest accepted source side in pixels (`--min-side`).
pub const MIN_SIDE: Ints = Ints::new(1, 65_535);
/// Largest accepted source image in pixels (`--max-pixels`).
pub const MAX_PIXELS: Ints = Ints::new(1, 1_000_000_000);

/// The pretext pre-processing of the paper (METHOD.md "Data"): shorter side 256, centre crop 224.
pub const PRETEXT_RESIZE: u32 = 256;
pub const PRETEXT_CROP: u32 = 224;

/// The input root as the settings record it: its canonical path when it exists (so `img`,
/// `img/`, `./img` and a link to it are one root, and one dataset identity), else the absolute
/// path without `.` components or a trailing slash.
pub fn normal_root(root: &Path) -> std::io::Result<std::path::PathBuf> {
    match std::fs::canonicalize(root) {
        Ok(real) => Ok(real),
        Err(_) => Ok(std::path::absolute(root)?.components().collect()),
    }
}

impl IngestSettings {
    /// Defaults for `kind`: ImageNet and plain folders get the pretext pre-processing; Tiny
    /// ImageNet is stored as decoded (64×64).
    pub fn defaults(kind: SourceKind, root: &Path, split: Option<Split>) -> Result<Self> {
        let root = normal_root(root).map_err(|e| IngestError::io(root, e))?;
        let (resize, crop) = match kind {
            SourceKind::TinyImagenet => (None, None),
            _ => (Some(PRETEXT_RESIZE), Some(PRETEXT_CROP)),
        };
        Ok(IngestSettings {
            source: kind,
            root: root.to_string_lossy().into_owned(),
            split,
            resize,
            crop,
            min_side: 8,
            max_pixels: 100_000_000,
            zstd_level: 1,
            shard_max_images: 10_000,
            shard_target_mib: 64,
            classes: None,
            jpeg_decoder: crate::libjpeg::LIBRARY.to_owned(),
        })
    }

    /// Checks the values once, at the edge, naming the flags of `sipl ingest`: `--resize` and
    /// `--crop` in [1, 4096] (crop at most resize), `--zstd-level` in [1, 19],
    /// `--shard-images` in [1, 1000000], `--shard-mib` in [1, 4096], `--min-side` in
    /// [1, 65535], `--max-pixels` in [1, 1000000000].
    pub fn validate(&self) -> Result<()> {
        use sipl_limits::{IMAGE_SIDE, RangeError};
        IMAGE_SIDE.check_opt("--resize", self.resize)?;
        IMAGE_SIDE.check_opt("--crop", self.crop)?;
        if let (Some(r), Some(c)) = (self.resize, self.crop) {
            let e =
                |e: RangeError| e.note(format!("the crop is cut from the image resized to {r}"));
            IMAGE_SIDE.at_most(r.into()).check("--crop", c).map_err(e)?;
        }
        ZSTD_LEVEL.check("--zstd-level", self.zstd_level)?;
        SHARD_IMAGES.check("--shard-images", self.shard_max_images)?;
        SHARD_MIB.check("--shard-mib", self.shard_target_mib)?;
        MIN_SIDE.check("--min-side", self.min_side)?;
        MAX_PIXELS
            .check("--max-pixels", self.max_pixels)
            .map_err(|e| e.note("decoding may take 4 bytes per pixel on every thread"))?;
        if let Some(c) = self.crop
            && self.resize.is_none()
            && self.min_side < c
        {
            let e = RangeError::new("--min-side", self.min_side, format!(">= {c}"))
                .note(format!("--crop {c} without --resize cannot crop smaller images"));
            return Err(e.into());
        }
        if self.source == SourceKind::TinyImagenet && self.split.is_none() {
            return Err(IngestError::Settings("tiny-imagenet needs --split train|val|test".into()));
        }
        if let Some(classes) = &self.classes {
            let bad = |m: String| Err(IngestError::Settings(m));
            let named = match self.source {
                SourceKind::Folder => true,
                SourceKind::TinyImagenet => self.split != Some(Split::Test),
                SourceKind::ImagenetVal => false,
            };
            if !named {
                return bad(
                    "--classes applies to the folder layout and tiny-imagenet --split train|val \
                     (imagenet-val's classes are the 1,000 devkit ids; Tiny ImageNet's test split is unlabelled)"
                        .into(),
                );
            }
            if classes.is_empty() {
                return bad("the --classes file names no class".into());
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = classes.iter().find(|c| !seen.insert(c.as_str())) {
                return bad(format!("the --classes file names {dup:?} twice"));
            }
        }
        Ok(())
    }

    /// Reads a `--classes` file: one class name a line, in label order; blank lines and the
    /// whitespace around names are ignored.
    pub fn read_classes(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("settings serialise")
    }
}
