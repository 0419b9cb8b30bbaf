//! One epoch's worker threads and the in-order receiving end; with
//! [`LoaderConfig::run_on`](crate::LoaderConfig::run_on), the workers go on into the next
//! epochs, and the loader hands them to the next epoch's stream.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use sipl_shards::Dataset;

use crate::batch::Batch;
use crate::buffer::BufferAllocator;
use crate::build::build_batch;
use crate::loader::{Faults, LoaderConfig, LoaderError};
use crate::sampler::Sampler;
use crate::scheme::SampleSpec;
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

    /// The next item, in order; `Ok(None)` when every worker is gone without sending it,
    /// `Err(())` when `stop` is set while it is awaited.
    fn receive(&mut self, stop: Option<&AtomicBool>) -> Result<Option<Message>, ()> {
        let k = self.received;
        while !self.ahead.contains_key(&k) {
            let got = match stop {
                None => self.results.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(_) => self.results.recv_timeout(std::time::Duration::from_millis(50)),
            };
            match got {
                Ok((at, msg)) => drop(self.ahead.insert(at, msg)),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {
                    if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                        return Err(());
                    }
                }
            }
        }
        self.received += 1;
        if let Some(tickets) = &self.tickets {
            let _ = tickets.send(()); // one item out, room for one more
        }
        Ok(self.ahead.remove(&k))
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
    stop: Option<Arc<AtomicBool>>,
}

impl EpochStream {
    pub(crate) fn spawn(parts: StreamParts, parking: Weak<Parking>) -> Self {
        let (epoch, next, end) = (parts.epoch, parts.start, parts.end);
        let workers = Some(Workers::spawn(parts));
        EpochStream { workers, epoch, next, end, failed: false, parking, stop: None }
    }

    /// The stream of `epoch` from its first batch on, from workers that ran on into it.
    pub(crate) fn resume(workers: Workers, epoch: u64, parking: Weak<Parking>) -> Self {
        assert_eq!(workers.next_item(), Some((epoch, 0)), "parked workers for another epoch");
        let end = workers.shared.parts.end;
        EpochStream {
            workers: Some(workers),
            epoch,
            next: 0,
            end,
            failed: false,
            parking,
            stop: None,
        }
    }

    /// The same stream, whose wait for a batch ends when `stop` is set (a SIGINT or SIGTERM
    /// while workers are slow to start, or stuck on a storage that does not answer), with
    /// [`LoaderError::Stopped`].
    pub fn until(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
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
        let Ok(received) = workers.receive(self.stop.as_deref()) else {
            self.failed = true;
            // Stopped, not joined: a worker stuck on its storage must not hold the stop up.
            if let Some(mut w) = self.workers.take() {
                w.stop.store(true, Ordering::Relaxed);
                w.tickets = None;
                w.handles.clear();
            }
            return Some(Err(LoaderError::Stopped { batch: self.next }));
        };
        match received {
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
