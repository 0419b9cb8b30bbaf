//! The trainer side of sipl (everything that touches libtorch).
//!
//! So far: compute-device selection. The loader, augmentation, model and training loop
//! arrive with their issues; see ARCHITECTURE.md.

pub mod device;

pub use device::{DeviceError, DeviceSpec};
