//! Batch buffers on the libtorch side: the loader's [`BufferAllocator`] as libtorch host
//! tensors the workers write into directly (the CUDA path: page-locked, so the upload needs no
//! staging copy; PyTorch's caching host allocator does the pooling), and a batch's pixels as a
//! tensor.

use std::any::Any;
use std::sync::Arc;

use sipl_loader::{Batch, BatchDtype, BufferAllocator, BufferError, PixelBuffer, VecPool};
use tch::{Device, Kind, Tensor};

use crate::ffi::transfer::host_empty_f32;

/// Where batch pixels live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostBuffers {
    /// Pooled Rust vectors (CPU training).
    #[default]
    Pooled,
    /// Ordinary libtorch host tensors (the tensor path without CUDA; for tests).
    Tensor,
    /// Page-locked libtorch host tensors (CUDA training).
    Pinned,
}

impl HostBuffers {
    /// Pinned for a CUDA device, pooled vectors otherwise.
    pub fn for_device(device: Device) -> Self {
        if matches!(device, Device::Cuda(_)) { HostBuffers::Pinned } else { HostBuffers::Pooled }
    }

    /// The allocator; a pool keeps at most `pool_buffers` idle vectors.
    pub fn allocator(self, pool_buffers: usize) -> Arc<dyn BufferAllocator> {
        match self {
            HostBuffers::Pooled => Arc::new(VecPool::new(pool_buffers)),
            HostBuffers::Tensor => Arc::new(HostTensors { pinned: false }),
            HostBuffers::Pinned => Arc::new(HostTensors { pinned: true }),
        }
    }
}

/// Libtorch host tensors, page-locked when `pinned` (which needs CUDA).
#[derive(Debug)]
pub struct HostTensors {
    pinned: bool,
}

impl BufferAllocator for HostTensors {
    fn name(&self) -> &str {
        if self.pinned { "Pinned" } else { "Tensor" }
    }

    fn allocate(&self, len: usize) -> Result<Box<dyn PixelBuffer>, BufferError> {
        Ok(Box::new(HostTensor(host_empty_f32(len, self.pinned)?)))
    }
}

/// A 1-D contiguous f32 host tensor, owned by one batch alone until uploaded.
#[derive(Debug)]
pub struct HostTensor(pub Tensor);

impl PixelBuffer for HostTensor {
    fn as_slice(&self) -> &[f32] {
        let t = &self.0;
        if t.numel() == 0 {
            return &[]; // its data pointer may be null
        }
        // SAFETY: a contiguous f32 tensor of `numel` elements made by `host_empty_f32`.
        unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        let t = &self.0;
        if t.numel() == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`, and `&mut self` means no other reference to the buffer.
        unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
    }

    fn duplicate(&self) -> Box<dyn PixelBuffer> {
        Box::new(HostTensor(self.0.copy()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A batch's pixels as a host tensor.
pub trait PixelTensor {
    /// The pixels as a host tensor [views, batch, 3, size, size] of the batch's element type
    /// (Float, BFloat16 or Half): the buffer itself when it is a [`HostTensor`] (no copy), a
    /// copy otherwise.
    fn pixel_tensor(&self) -> Tensor;
}

impl PixelTensor for Batch {
    fn pixel_tensor(&self) -> Tensor {
        let shape: Vec<i64> = self.shape().iter().map(|&d| d as i64).collect();
        let words = match self.pixels.downcast_ref::<HostTensor>() {
            Some(t) => t.0.shallow_clone(),
            None => Tensor::from_slice(self.pixels.words()),
        };
        let kind = match self.pixels.dtype() {
            BatchDtype::F32 => return words.view(shape.as_slice()),
            BatchDtype::Bf16 => Kind::BFloat16,
            BatchDtype::F16 => Kind::Half,
        };
        // The f32 words seen as two half elements each (ATen's `view(dtype)`), without the
        // unused half of an odd-length buffer's last word.
        words.view_dtype(kind).narrow(0, 0, self.pixels.len() as i64).view(shape.as_slice())
    }
}
