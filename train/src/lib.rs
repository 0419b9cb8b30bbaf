//! sipl's libtorch side: devices, the model and its loss, Adam, checkpoints, data-parallel
//! ranks and the training loop. The sample stream that feeds it is `sipl_loader` (no libtorch);
//! [`host_buffers`] lets the loader write batches straight into (pinned) host tensors.
//!
//! - [`device`]: compute-device selection;
//! - [`model`]: the ResNet-18 encoder, the head and the loss;
//! - [`trainer`]: the training loop and its run directory;
//! - [`dist`]: data-parallel training over c10d (NCCL, or Gloo on the CPU);
//! - [`ffi`]: the C++ shim (autocast, fused Adam, pinned transfers, c10d), the only FFI.

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod dist;
pub mod faults;
pub mod ffi;
pub mod host_buffers;
pub mod model;
pub mod resnet;
pub mod speed;
pub mod tensorboard;
pub mod trainer;

pub use device::{DeviceError, DeviceSpec};
