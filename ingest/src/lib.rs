//! Turns image folders into sipl datasets (see `sipl-shards` for the format).
//!
//! Sources: ImageNet val (`ILSVRC2012_img_val/`, optional devkit labels), Tiny ImageNet
//! (`--split train|val|test`) and any folder. Each file is read, decoded, filtered (kept only
//! if it opens as RGB, as in Pillow; the reason is recorded otherwise), pre-processed (shorter
//! side 256, centre crop 224 for pretext images, as decoded for Tiny ImageNet) and
//! zstd-compressed, in parallel with rayon; the output does not depend on the thread count.
//!
//! ```no_run
//! use sipl_ingest::{IngestJob, IngestSettings, SourceKind, Split};
//! # fn main() -> Result<(), sipl_ingest::IngestError> {
//! let root = std::path::Path::new("tiny-imagenet-200");
//! let settings = IngestSettings::defaults(SourceKind::TinyImagenet, root, Some(Split::Val))?;
//! let job = IngestJob { settings, out: "tiny-val".into(), threads: None, force: false, progress: true };
//! let report = sipl_ingest::ingest(&job)?;
//! println!("kept {} of {}", report.meta.counts.kept, report.meta.counts.seen);
//! # Ok(()) }
//! ```

mod error;
pub mod exif;
mod formats;
pub mod intake;
pub mod jpeg_header;
pub mod libjpeg;
mod output;
pub mod png_header;
pub mod preprocess;
mod run;
mod settings;
pub mod source;
pub mod synth;
mod walk;

pub use error::{IngestError, Result};
pub use output::PROGRESS_FILE;
pub use run::{IngestJob, IngestReport, ingest};
pub use settings::{IngestSettings, PRETEXT_CROP, PRETEXT_RESIZE};
pub use source::{SourceKind, Split};
