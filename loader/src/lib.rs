//! sipl's sample stream, free of libtorch: shard rows in, batches of augmented patch views out.
//!
//! - [`planar`]: the f32 CHW image (torchvision's tensor layout);
//! - [`geometry`]: the 3×3 patch grid, gap and jitter;
//! - [`augment`]: the style augmentation A, one op per file, matched to torchvision 0.26;
//! - [`scheme`]: OPL and SIPLv1/v2/v3 samples;
//! - [`rng`]: randomness as a function of (seed, epoch, image index);
//! - [`Loader`]: the multithreaded, deterministic, resumable batch stream, writing into buffers
//!   from a [`BufferAllocator`] (pooled `Vec`s by default);
//! - [`preview`]: a contact sheet of samples.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sipl_loader::{Loader, LoaderConfig};
//! use sipl_loader::scheme::Scheme;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = Arc::new(sipl_shards::Dataset::open("shards/imagenet-val".as_ref())?);
//! let loader = Loader::new(data, LoaderConfig::new(Scheme::SiplV1, 64))?;
//! for batch in loader.epoch(0, 0) {
//!     let batch = batch?; // [3 views, 64, 3, 224, 224] f32 (`batch_dtype`) + 64 labels
//!     assert_eq!(batch.labels.len(), 64);
//! }
//! # Ok(()) }
//! ```

pub mod augment;
mod batch;
pub mod buffer;
mod build;
pub mod dtype;
pub mod geometry;
mod loader;
pub mod planar;
pub mod preview;
pub mod rng;
mod sampler;
pub mod scheme;
mod stats;
mod stream;

pub use batch::Batch;
pub use buffer::{BufferAllocator, BufferError, PixelBuffer, Pixels, Slot, VecPool};
pub use dtype::BatchDtype;
pub use loader::{CorruptPolicy, Loader, LoaderConfig, LoaderError};
pub use sampler::Sampler;
pub use stats::StageStats;
pub use stream::EpochStream;
