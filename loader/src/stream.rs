//! One epoch's worker threads and the in-order receiving end.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use sipl_shards::Dataset;

use crate::augment::resize::resize_rows;
use crate::augment::{
    project_normalize_half_into, project_normalize_into, project_normalize_row_half_into,
    project_normalize_row_into, store_fence,
};
use crate::batch::Batch;
use crate::buffer::{BufferAllocator, Pixels, Slot};
use crate::loader::{CorruptPolicy, Faults, LoaderConfig, LoaderError};
use crate::rng::sample_rng;
use crate::scheme::SampleSpec;
use crate::scheme::View;
use crate::stats::StageStats;

pub(crate) struct StreamParts {
    pub dataset: Arc<Dataset>,
    pub spec: SampleSpec,
    pub config: LoaderConfig,
    pub order: Arc<Vec<usize>>,
    pub epoch: u64,
    pub start: usize,
    pub end: usize,
    pub skipped: Arc<AtomicUsize>,
    pub stats: Arc<StageStats>,
    pub buffers: Arc<dyn BufferAllocator>,
    pub faults: Faults,
}

type Message = Result<Batch, LoaderError>;

/// The batches of one epoch, in order. Dropping it stops and joins the workers.
pub struct EpochStream {
    receivers: Vec<Receiver<Message>>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    next: usize,
    start: usize,
    end: usize,
    failed: bool,
}

impl EpochStream {
    pub(crate) fn spawn(parts: StreamParts) -> Self {
        let parts = Arc::new(parts);
        let stop = Arc::new(AtomicBool::new(false));
        let n = parts.config.workers.min((parts.end - parts.start).max(1));
        let mut receivers = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for w in 0..n {
            let (tx, rx) = bounded(parts.config.prefetch);
            receivers.push(rx);
            let (parts, stop) = (parts.clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name(format!("sipl-loader-{w}"))
                .spawn(move || worker(w, n, &parts, &stop, &tx))
                .expect("spawn loader worker");
            workers.push(handle);
        }
        EpochStream {
            receivers,
            workers,
            stop,
            next: parts.start,
            start: parts.start,
            end: parts.end,
            failed: false,
        }
    }

    /// The batch index the next item will have.
    pub fn position(&self) -> usize {
        self.next
    }

    pub fn len(&self) -> usize {
        self.end - self.next
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for EpochStream {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let w = (self.next - self.start) % self.receivers.len();
        match self.receivers[w].recv() {
            Ok(Ok(batch)) => {
                self.next += 1;
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.failed = true;
                Some(Err(e))
            }
            Err(_) => {
                self.failed = true;
                Some(Err(LoaderError::WorkerGone { worker: w }))
            }
        }
    }
}

impl Drop for EpochStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.receivers.clear(); // unblocks workers waiting to send
        for h in self.workers.drain(..) {
            let _ = h.join(); // a panicking worker already reported through its channel
        }
    }
}

fn worker(w: usize, n: usize, p: &StreamParts, stop: &AtomicBool, tx: &Sender<Message>) {
    let mut scratch = Vec::new();
    for b in (p.start + w..p.end).step_by(n) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let built = catch_unwind(AssertUnwindSafe(|| build_batch(p, b, &mut scratch)));
        let msg = built.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(LoaderError::WorkerPanic { worker: w, message })
        });
        let failed = msg.is_err();
        let t = Instant::now();
        if tx.send(msg).is_err() || failed {
            return;
        }
        p.stats.add_queue(t.elapsed());
    }
}

/// Builds batch `b` of the epoch into one contiguous buffer.
fn build_batch(p: &StreamParts, b: usize, rgb: &mut Vec<u8>) -> Result<Batch, LoaderError> {
    let cfg = &p.config;
    if p.faults.panic_at_batch == Some(b) {
        panic!("injected fault at batch {b}");
    }
    let first = b * cfg.batch_size;
    let count = cfg.batch_size.min(p.order.len() - first);
    let views = p.spec.scheme.views();
    let size = p.spec.geometry.out;
    let patch = 3 * size * size;
    // Every element is overwritten below.
    let (dtype, len) = (cfg.batch_dtype, views * count * patch);
    let mut pixels = match p.buffers.allocate(dtype.words(len)) {
        Ok(buffer) => Pixels::new(buffer, dtype, len),
        Err(source) => {
            return Err(LoaderError::Buffer { buffers: p.buffers.name().to_owned(), source });
        }
    };
    let (mut labels, mut ids) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let (mut decode, mut build) = (Duration::ZERO, Duration::ZERO);
    for i in 0..count {
        let t = Instant::now();
        let index = decode_sample(p, first + i, rgb)?;
        let t2 = Instant::now();
        decode += t2 - t;
        let mut rng = sample_rng(cfg.seed, p.epoch, index as u64);
        let sample = p.spec.sample(rgb, &mut rng);
        for (v, view) in sample.views.into_iter().enumerate() {
            let at = (v * count + i) * patch;
            write_view(view, size, pixels.slot(at..at + patch));
        }
        labels.push(sample.label as i64);
        ids.push(index as u64);
        build += t2.elapsed();
    }
    p.stats.add(decode, build, count);
    Ok(Batch { epoch: p.epoch, index: b, views, batch_size: count, size, pixels, labels, ids })
}

/// Projects and normalises `view` into its batch slot (3 × `size` × `size` values); a jitter
/// window is resized on the way, a row at a time, so its rows are still in cache when
/// projected. Its buffer then goes back to the worker's spares.
fn write_view(view: View, size: usize, slot: Slot<'_>) {
    let image = match (view, slot) {
        (View::Patch(img), Slot::F32(out)) => {
            project_normalize_into(&img, out);
            img
        }
        (View::Patch(img), Slot::Half(dtype, out)) => {
            project_normalize_half_into(&img, dtype, out);
            img
        }
        (View::Window(w), Slot::F32(out)) => {
            resize_rows(&w, size, size, |y, rows| project_normalize_row_into(rows, y, out));
            store_fence();
            w
        }
        (View::Window(w), Slot::Half(dtype, out)) => {
            resize_rows(&w, size, size, |y, rows| {
                project_normalize_row_half_into(rows, y, dtype, out)
            });
            store_fence();
            w
        }
    };
    crate::planar::give_buffer(image.data);
}

/// Decompresses the image at `position` of the epoch order into `rgb`; with
/// [`CorruptPolicy::Skip`] a corrupt row is counted and the next position's image used.
fn decode_sample(
    p: &StreamParts,
    position: usize,
    rgb: &mut Vec<u8>,
) -> Result<usize, LoaderError> {
    let len = p.order.len();
    for k in 0..len {
        let index = p.order[(position + k) % len];
        match p.dataset.decode_into(index, rgb) {
            Ok(_) => return Ok(index),
            Err(e) if p.config.corrupt == CorruptPolicy::Fail => return Err(e.into()),
            Err(_) => {
                p.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Err(LoaderError::Config("every image of this rank is corrupt".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchDtype;
    use crate::augment::StyleConfig;
    use crate::buffer::{BufferAllocator, Pixels, VecPool};
    use crate::geometry::Geometry;
    use crate::rng::sample_rng;
    use crate::scheme::{SampleSpec, Scheme};

    fn pixels(dtype: BatchDtype, len: usize) -> Pixels {
        let buffer = VecPool::new(1).allocate(dtype.words(len)).expect("buffer");
        Pixels::new(buffer, dtype, len)
    }

    fn bits(p: &Pixels) -> Vec<u32> {
        p.words().iter().map(|w| w.to_bits()).collect()
    }

    /// A sample as the loader writes it (windows resized row by row into the slot) equals the
    /// whole patches of [`SampleSpec::patches`] projected, bit for bit, in every element type;
    /// patch sides that are not a multiple of 8 take the kernels' scalar edges too.
    #[test]
    fn row_by_row_windows_equal_whole_patches_bit_for_bit() {
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        for scheme in Scheme::ALL {
            for out in [64, 36] {
                let geometry = Geometry::new(64, out).expect("geometry");
                let spec = SampleSpec { scheme, geometry, style: StyleConfig::default() };
                for dtype in BatchDtype::ALL {
                    let patch = 3 * out * out;
                    let len = scheme.views() * patch;
                    let (mut want, mut got) = (pixels(dtype, len), pixels(dtype, len));
                    let whole = spec.patches(&rgb, &mut sample_rng(3, 1, 7));
                    let rows = spec.sample(&rgb, &mut sample_rng(3, 1, 7));
                    assert_eq!(whole.label, rows.label);
                    for (v, img) in whole.views.into_iter().enumerate() {
                        write_view(View::Patch(img), out, want.slot(v * patch..(v + 1) * patch));
                    }
                    for (v, view) in rows.views.into_iter().enumerate() {
                        write_view(view, out, got.slot(v * patch..(v + 1) * patch));
                    }
                    assert!(bits(&got) == bits(&want), "{scheme:?}, {out}², {dtype:?}");
                }
            }
        }
    }
}
