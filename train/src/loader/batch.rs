//! A batch laid out for tch: one contiguous f32 buffer shaped [views, batch, 3, size, size],
//! plus labels and the dataset indices of its samples.
//!
//! A dropped batch hands its pixel buffer back to the loader's pool: at the paper's sizes a
//! SIPLv1 batch is 116 MB, and allocating (page-faulting) a fresh one per batch measured as
//! half of all worker time.

use crossbeam_channel::Sender;

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
    pub pixels: Vec<f32>,
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

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let _ = pool.try_send(std::mem::take(&mut self.pixels)); // a full pool just frees it
        }
    }
}
