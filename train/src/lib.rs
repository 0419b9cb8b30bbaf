//! The trainer side of sipl (everything that touches libtorch, and the sample stream that
//! feeds it).
//!
//! - [`geometry`]: the 3×3 patch grid, gap and jitter;
//! - [`augment`]: the style augmentation A, one op per file, matched to torchvision 0.26;
//! - [`scheme`]: OPL and SIPLv1/v2/v3 samples;
//! - [`loader`]: the multithreaded, deterministic, resumable batch stream;
//! - [`device`]: compute-device selection;
//! - [`dist`]: data-parallel training over c10d (NCCL, or Gloo on the CPU).
//!
//! ```no_run
//! use std::sync::Arc;
//! use sipl_train::loader::{Loader, LoaderConfig};
//! use sipl_train::scheme::Scheme;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = Arc::new(sipl_shards::Dataset::open("shards/imagenet-val".as_ref())?);
//! let loader = Loader::new(data, LoaderConfig::new(Scheme::SiplV1, 64))?;
//! for batch in loader.epoch(0, 0) {
//!     let batch = batch?; // [3 views, 64, 3, 224, 224] f32 + 64 labels
//!     assert_eq!(batch.labels.len(), 64);
//! }
//! # Ok(()) }
//! ```

pub mod adam;
pub mod augment;
pub mod autocast;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod dist;
pub mod fused_adam;
pub mod geometry;
pub mod loader;
pub mod model;
pub mod planar;
pub mod preview;
pub mod rng;
pub mod scheme;
pub mod speed;
pub mod trainer;
pub mod transfer;

pub use device::{DeviceError, DeviceSpec};
