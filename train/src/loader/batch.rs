//! A batch laid out for tch: one contiguous f32 buffer shaped [views, batch, 3, size, size],
//! plus labels and the dataset indices of its samples.
//!
//! The buffer is either a pooled `Vec` (the CPU path: a dropped batch hands it back to the
//! loader's pool, since at the paper's sizes a SIPLv1 batch is 116 MB and page-faulting a fresh
//! one per batch measured as half of all worker time), or a libtorch host tensor the workers
//! write into directly (the CUDA path: page-locked, so the upload needs no staging copy; the
//! caching host allocator does the pooling).

use std::ops::{Deref, DerefMut};

use crossbeam_channel::Sender;
use tch::{Device, TchError, Tensor};

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
}

/// A batch's pixel buffer; reads and writes as a `[f32]`.
#[derive(Debug)]
pub enum Pixels {
    Vec(Vec<f32>),
    /// A 1-D contiguous f32 host tensor, owned by this batch alone until uploaded.
    Tensor(Tensor),
}

impl Pixels {
    /// A buffer of `len` elements in `kind` memory; `recycled` is reused for [`HostBuffers::Pooled`].
    pub(crate) fn with_len(
        kind: HostBuffers,
        len: usize,
        recycled: Option<Vec<f32>>,
    ) -> Result<Self, TchError> {
        Ok(match kind {
            HostBuffers::Pooled => {
                let mut v = recycled.unwrap_or_default();
                v.resize(len, 0.0);
                Pixels::Vec(v)
            }
            HostBuffers::Tensor | HostBuffers::Pinned => {
                Pixels::Tensor(crate::transfer::host_empty_f32(len, kind == HostBuffers::Pinned)?)
            }
        })
    }

    /// The pixels as a host tensor of `shape`: the buffer itself for a tensor (no copy), a copy
    /// of the vector otherwise.
    pub fn to_tensor(&self, shape: &[i64]) -> Tensor {
        match self {
            Pixels::Vec(v) => Tensor::from_slice(v).view(shape),
            Pixels::Tensor(t) => t.view(shape),
        }
    }
}

impl Deref for Pixels {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Pixels::Vec(v) => v,
            Pixels::Tensor(t) if t.numel() == 0 => &[], // its data pointer may be null
            // SAFETY: a contiguous f32 tensor of `numel` elements made by `host_empty_f32`.
            Pixels::Tensor(t) => unsafe {
                std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel())
            },
        }
    }
}

impl DerefMut for Pixels {
    fn deref_mut(&mut self) -> &mut [f32] {
        match self {
            Pixels::Vec(v) => v,
            Pixels::Tensor(t) if t.numel() == 0 => &mut [],
            // SAFETY: as in `deref`, and `&mut self` means no other reference to the buffer.
            Pixels::Tensor(t) => unsafe {
                std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel())
            },
        }
    }
}

impl Clone for Pixels {
    fn clone(&self) -> Self {
        match self {
            Pixels::Vec(v) => Pixels::Vec(v.clone()),
            Pixels::Tensor(t) => Pixels::Tensor(t.copy()),
        }
    }
}

/// One batch of samples.
#[derive(Debug, Clone)]
pub struct Batch {
    pub epoch: u64,
    /// Position of this batch within the epoch (for resuming).
    pub index: usize,
    pub views: usize,
    pub batch_size: usize,
    pub size: usize,
    /// [views, batch, 3, size, size], row-major.
    pub pixels: Pixels,
    /// Neighbour position labels 0..8, one per sample.
    pub labels: Vec<i64>,
    /// Dataset index of each sample.
    pub ids: Vec<u64>,
    pub(crate) pool: Option<Sender<Vec<f32>>>,
}

impl Batch {
    pub fn shape(&self) -> [usize; 5] {
        [self.views, self.batch_size, 3, self.size, self.size]
    }

    /// The pixels of view `v` of sample `i` (3×size×size).
    pub fn patch(&self, v: usize, i: usize) -> &[f32] {
        let n = 3 * self.size * self.size;
        &self.pixels[(v * self.batch_size + i) * n..][..n]
    }

    /// The pixels as a host tensor [views, batch, 3, size, size] (see [`Pixels::to_tensor`]).
    pub fn pixel_tensor(&self) -> Tensor {
        let shape: Vec<i64> = self.shape().iter().map(|&d| d as i64).collect();
        self.pixels.to_tensor(&shape)
    }
}

impl PartialEq for Batch {
    fn eq(&self, o: &Self) -> bool {
        (self.epoch, self.index, self.views, self.batch_size, self.size)
            == (o.epoch, o.index, o.views, o.batch_size, o.size)
            && *self.pixels == *o.pixels
            && self.labels == o.labels
            && self.ids == o.ids
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let (Some(pool), Pixels::Vec(v)) = (self.pool.take(), &mut self.pixels) {
            let _ = pool.try_send(std::mem::take(v)); // a full pool just frees it
        }
    }
}
