//! One epoch's worker threads and the in-order receiving end; with
//! [`LoaderConfig::run_on`](crate::LoaderConfig::run_on), the workers go on into the next
//! epochs, and the loader hands them to the next epoch's stream.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
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
use crate::sampler::Sampler;
use crate::scheme::SampleSpec;
use crate::scheme::View;
use crate::stats::StageStats;

pub(crate) struct StreamParts {
    pub dataset: Arc<Dataset>,
    pub spec: SampleSpec,
    pub config: LoaderConfig,
    pub sampler: Sampler,
    /// The first epoch, and the batch of it the stream starts at.
    pub epoch: u64,
    pub start: usize,
    /// Batches per epoch.
    pub end: usize,
    pub skipped: Arc<AtomicUsize>,
    pub stats: Arc<StageStats>,
    pub buffers: Arc<dyn BufferAllocator>,
    pub faults: Faults,
}

/// What the workers share: the parts, and the epoch orders in use (at most two epochs are
/// built at once unless epochs are shorter than the workers' lead).
struct Shared {
    parts: StreamParts,
    orders: Mutex<Vec<(u64, Arc<Vec<usize>>)>>,
}

impl Shared {
    /// Item `k` of the stream as (epoch, batch): the first epoch's batches `start..end`, then,
    /// when the loader runs on, every batch of each following epoch; `None` past the end.
    fn item(&self, k: usize) -> Option<(u64, usize)> {
        let p = &self.parts;
        let first = p.end - p.start;
        if k < first {
            return Some((p.epoch, p.start + k));
        }
        if !p.config.run_on || p.end == 0 {
            return None;
        }
        let k = k - first;
        Some((p.epoch + 1 + (k / p.end) as u64, k % p.end))
    }

    /// This rank's image order in `epoch`, computed once and shared by the workers.
    fn order(&self, epoch: u64) -> Arc<Vec<usize>> {
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, o)) = orders.iter().find(|(e, _)| *e == epoch) {
            return o.clone();
        }
        let order = Arc::new(self.parts.sampler.epoch_order(epoch));
        if orders.len() == 2 {
            orders.remove(0);
        }
        orders.push((epoch, order.clone()));
        order
    }
}

type Message = Result<Batch, LoaderError>;

/// Running workers, the finished items they sent ahead of the consumer, and the tickets that
/// bound them. Dropping it stops and joins the threads.
///
/// Each worker takes a ticket, claims the next unclaimed item, builds it and sends it with its
/// number; the consumer hands items out in order and returns a ticket for each. So a worker
/// that is slowed (by another process on its core, say) holds up no other: the rest claim the
/// items it would have built. At most `workers × (prefetch + 1)` items are claimed and not yet
/// consumed, the bound the batch buffer pool is sized for.
pub(crate) struct Workers {
    results: Receiver<(usize, Message)>,
    tickets: Option<Sender<()>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    /// Items sent ahead of the one the consumer waits for.
    ahead: BTreeMap<usize, Message>,
    /// Items received so far (the next one is item `received` of the stream).
    received: usize,
}

impl Workers {
    fn spawn(parts: StreamParts) -> Self {
        let workers = parts.config.workers;
        let n = if parts.config.run_on {
            workers
        } else {
            workers.min((parts.end - parts.start).max(1))
        };
        let window = n * (parts.config.prefetch + 1);
        let shared = Arc::new(Shared { parts, orders: Mutex::new(Vec::new()) });
        let stop = Arc::new(AtomicBool::new(false));
        let claims = Arc::new(AtomicUsize::new(0));
        let (ticket_tx, ticket_rx) = bounded(window);
        for _ in 0..window {
            ticket_tx.send(()).expect("room for every ticket");
        }
        let (result_tx, results) = unbounded();
        let mut handles = Vec::with_capacity(n);
        for w in 0..n {
            let (shared, stop, claims) = (shared.clone(), stop.clone(), claims.clone());
            let (tickets, tx) = (ticket_rx.clone(), result_tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("sipl-loader-{w}"))
                .spawn(move || worker(w, &shared, &stop, &claims, &tickets, &tx))
                .expect("spawn loader worker");
            handles.push(handle);
        }
        let tickets = Some(ticket_tx);
        Workers { results, tickets, handles, stop, shared, ahead: BTreeMap::new(), received: 0 }
    }

    /// The (epoch, batch) the next received item will be.
    pub(crate) fn next_item(&self) -> Option<(u64, usize)> {
        self.shared.item(self.received)
    }

    /// The next item, in order; `None` when every worker is gone without sending it.
    fn receive(&mut self) -> Option<Message> {
        let k = self.received;
        while !self.ahead.contains_key(&k) {
            let (at, msg) = self.results.recv().ok()?;
            self.ahead.insert(at, msg);
        }
        self.received += 1;
        if let Some(tickets) = &self.tickets {
            let _ = tickets.send(()); // one item out, room for one more
        }
        self.ahead.remove(&k)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tickets = None; // workers waiting for a ticket see the channel close
        for h in self.handles.drain(..) {
            let _ = h.join(); // a panicking worker already reported through its channel
        }
    }
}

/// Where a finished epoch's still-running workers wait for the next epoch's stream.
pub(crate) type Parking = Mutex<Option<Workers>>;

/// The batches of one epoch, in order. Dropping it before its end stops and joins the workers;
/// once its last batch is handed out, a loader that runs on keeps them for the next epoch.
pub struct EpochStream {
    workers: Option<Workers>,
    epoch: u64,
    next: usize,
    end: usize,
    failed: bool,
    parking: Weak<Parking>,
}

impl EpochStream {
    pub(crate) fn spawn(parts: StreamParts, parking: Weak<Parking>) -> Self {
        let (epoch, next, end) = (parts.epoch, parts.start, parts.end);
        let workers = Some(Workers::spawn(parts));
        EpochStream { workers, epoch, next, end, failed: false, parking }
    }

    /// The stream of `epoch` from its first batch on, from workers that ran on into it.
    pub(crate) fn resume(workers: Workers, epoch: u64, parking: Weak<Parking>) -> Self {
        assert_eq!(workers.next_item(), Some((epoch, 0)), "parked workers for another epoch");
        let end = workers.shared.parts.end;
        EpochStream { workers: Some(workers), epoch, next: 0, end, failed: false, parking }
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

    /// When the epoch's last batch is handed out: workers that run on wait in the loader for the
    /// next epoch; others are stopped and joined.
    fn park(&mut self) {
        let Some(workers) = self.workers.take() else { return };
        if !workers.shared.parts.config.run_on {
            return; // dropped: stopped and joined
        }
        if let Some(parking) = self.parking.upgrade() {
            *parking.lock().unwrap_or_else(|e| e.into_inner()) = Some(workers);
        }
    }
}

impl Iterator for EpochStream {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.next >= self.end {
            self.park();
            return None;
        }
        let workers = self.workers.as_mut()?;
        match workers.receive() {
            Some(Ok(batch)) => {
                assert_eq!((batch.epoch, batch.index), (self.epoch, self.next), "batch order");
                self.next += 1;
                if self.next == self.end {
                    self.park(); // the epoch's last batch: hand the workers on now
                }
                Some(Ok(batch))
            }
            Some(Err(e)) => {
                self.failed = true;
                Some(Err(e))
            }
            None => {
                self.failed = true;
                Some(Err(LoaderError::WorkersGone { batch: self.next }))
            }
        }
    }
}

/// Worker `w`: while tickets last, claims the next item, builds it and sends it.
fn worker(
    w: usize,
    shared: &Shared,
    stop: &AtomicBool,
    claims: &AtomicUsize,
    tickets: &Receiver<()>,
    tx: &Sender<(usize, Message)>,
) {
    let p = &shared.parts;
    let mut scratch = Vec::new();
    loop {
        let t = Instant::now();
        if tickets.recv().is_err() || stop.load(Ordering::Relaxed) {
            return;
        }
        p.stats.add_queue(t.elapsed());
        let k = claims.fetch_add(1, Ordering::Relaxed);
        let Some((epoch, b)) = shared.item(k) else { return };
        // Everything that may panic runs inside: a worker that died silently would leave its
        // item missing and the consumer waiting for it.
        let built = catch_unwind(AssertUnwindSafe(|| {
            build_batch(p, epoch, &shared.order(epoch), b, &mut scratch)
        }));
        let msg = built.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(LoaderError::WorkerPanic { worker: w, message })
        });
        let failed = msg.is_err();
        if tx.send((k, msg)).is_err() || failed {
            return;
        }
    }
}

/// Builds batch `b` of `epoch` (whose image order is `order`) into one contiguous buffer.
fn build_batch(
    p: &StreamParts,
    epoch: u64,
    order: &[usize],
    b: usize,
    rgb: &mut Vec<u8>,
) -> Result<Batch, LoaderError> {
    let cfg = &p.config;
    if p.faults.panic_at_batch == Some(b) {
        panic!("injected fault at batch {b}");
    }
    let first = b * cfg.batch_size;
    let count = cfg.batch_size.min(order.len() - first);
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
        let index = decode_sample(p, order, first + i, rgb)?;
        let t2 = Instant::now();
        decode += t2 - t;
        let mut rng = sample_rng(cfg.seed, epoch, index as u64);
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
    Ok(Batch { epoch, index: b, views, batch_size: count, size, pixels, labels, ids })
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
    order: &[usize],
    position: usize,
    rgb: &mut Vec<u8>,
) -> Result<usize, LoaderError> {
    let len = order.len();
    for k in 0..len {
        let index = order[(position + k) % len];
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
