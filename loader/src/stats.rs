//! Time per loader stage, summed over worker threads (for `sipl bench loader`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct StageStats {
    decode_ns: AtomicU64,
    build_ns: AtomicU64,
    queue_ns: AtomicU64,
    samples: AtomicU64,
}

impl StageStats {
    pub(crate) fn add(&self, decode: Duration, build: Duration, samples: usize) {
        self.decode_ns.fetch_add(decode.as_nanos() as u64, Ordering::Relaxed);
        self.build_ns.fetch_add(build.as_nanos() as u64, Ordering::Relaxed);
        self.samples.fetch_add(samples as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_queue(&self, wait: Duration) {
        self.queue_ns.fetch_add(wait.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Worker time decompressing and checking shard rows.
    pub fn decode(&self) -> Duration {
        Duration::from_nanos(self.decode_ns.load(Ordering::Relaxed))
    }

    /// Worker time cutting patches, augmenting, projecting and normalising.
    pub fn build(&self) -> Duration {
        Duration::from_nanos(self.build_ns.load(Ordering::Relaxed))
    }

    /// Worker time waiting for a ticket: the workers were `workers × (prefetch + 1)` batches
    /// ahead of the consumer (or parked between epochs).
    pub fn queue_wait(&self) -> Duration {
        Duration::from_nanos(self.queue_ns.load(Ordering::Relaxed))
    }

    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }
}
