//! One epoch's worker threads and the in-order receiving end.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use sipl_shards::Dataset;

use crate::augment::{project_normalize_half_into, project_normalize_into};
use crate::batch::Batch;
use crate::buffer::{BufferAllocator, Pixels, Slot};
use crate::loader::{CorruptPolicy, Faults, LoaderConfig, LoaderError};
use crate::rng::sample_rng;
use crate::scheme::SampleSpec;
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
        let sample = p.spec.patches(rgb, &mut rng);
        for (v, view) in sample.views.iter().enumerate() {
            let at = (v * count + i) * patch;
            match pixels.slot(at..at + patch) {
                Slot::F32(out) => project_normalize_into(view, out),
                Slot::Half(dtype, out) => project_normalize_half_into(view, dtype, out),
            }
        }
        sample.views.into_iter().for_each(|v| crate::planar::give_buffer(v.data));
        labels.push(sample.label as i64);
        ids.push(index as u64);
        build += t2.elapsed();
    }
    p.stats.add(decode, build, count);
    Ok(Batch { epoch: p.epoch, index: b, views, batch_size: count, size, pixels, labels, ids })
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
