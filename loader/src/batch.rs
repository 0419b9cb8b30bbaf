//! A batch as a trainer consumes it: one contiguous buffer shaped [views, batch, 3, size, size]
//! of f32, bf16 or f16 (`LoaderConfig::batch_dtype`), from the loader's
//! [`BufferAllocator`](crate::BufferAllocator), plus labels and the dataset indices of its
//! samples.

use crate::buffer::Pixels;

/// One batch of samples.
#[derive(Debug, Clone)]
pub struct Batch {
    pub epoch: u64,
    /// Position of this batch within the epoch (for resuming).
    pub index: usize,
    pub views: usize,
    pub batch_size: usize,
    pub size: usize,
    /// [views, batch, 3, size, size], row-major, of `pixels.dtype()`.
    pub pixels: Pixels,
    /// Neighbour position labels 0..8, one per sample.
    pub labels: Vec<i64>,
    /// Dataset index of each sample.
    pub ids: Vec<u64>,
}

impl Batch {
    pub fn shape(&self) -> [usize; 5] {
        [self.views, self.batch_size, 3, self.size, self.size]
    }

    /// The pixels of view `v` of sample `i` (3×size×size), as f32 (widened from a half batch).
    pub fn patch(&self, v: usize, i: usize) -> Vec<f32> {
        let n = 3 * self.size * self.size;
        let at = (v * self.batch_size + i) * n;
        self.pixels.to_f32(at..at + n)
    }
}

impl PartialEq for Batch {
    fn eq(&self, o: &Self) -> bool {
        (self.epoch, self.index, self.views, self.batch_size, self.size)
            == (o.epoch, o.index, o.views, o.batch_size, o.size)
            && self.pixels == o.pixels
            && self.labels == o.labels
            && self.ids == o.ids
    }
}
