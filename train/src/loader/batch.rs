//! A batch laid out for tch: one contiguous f32 buffer shaped [views, batch, 3, size, size],
//! plus labels and the dataset indices of its samples.

/// One batch of samples.
#[derive(Debug, Clone, PartialEq)]
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
