//! The sample stream: a sampler (seeded shuffle per epoch, rank sharding), worker threads that
//! decompress shard rows and build whole batches, crossbeam channels between them and the
//! consumer (back-pressure: at most `workers × (prefetch + 1)` batches are claimed and not yet
//! consumed).
//!
//! Workers claim batches in order as they come free (a slowed worker holds up no other), and
//! the consumer receives them in order; every sample's randomness is a function of (seed,
//! epoch, image index), so the stream is identical for any worker count and can restart at any
//! (epoch, batch). Dropping the stream stops and joins the workers; a worker's error or panic
//! reaches the consumer as an error. With
//! [`LoaderConfig::run_on`] the workers go on from the last batches of an epoch into the next
//! one, and the next epoch's stream takes them over, so the pipeline never drains between
//! epochs (an epoch of a thousand photos lasts a tenth of a second on two cores).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sipl_shards::{Dataset, ShardError};

use crate::augment::StyleConfig;
use crate::buffer::{BufferAllocator, BufferError, VecPool};
use crate::dtype::BatchDtype;
use crate::geometry::Geometry;
use crate::sampler::Sampler;
use crate::scheme::{SampleSpec, Scheme};
use crate::stats::StageStats;
use crate::stream::{self, EpochStream, Parking};

/// What to do with an image whose shard row fails its checksum or does not decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptPolicy {
    /// Stop with an error naming shard and row.
    Fail,
    /// Count it and use the next image in this epoch's order instead.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoaderConfig {
    pub scheme: Scheme,
    pub style: StyleConfig,
    /// Side of an output patch; `None` = the stored image size (the paper: 224).
    pub patch_size: Option<usize>,
    pub batch_size: usize,
    pub workers: usize,
    /// Finished batches per worker that may wait ahead of the consumer: the workers together
    /// claim at most `workers × (prefetch + 1)` batches the consumer has not taken yet.
    pub prefetch: usize,
    pub seed: u64,
    pub shuffle: bool,
    /// Drop the last incomplete batch of an epoch (training); else it is smaller. With several
    /// ranks it also evens their shares, so that every rank has the same number of batches.
    pub drop_last: bool,
    pub rank: usize,
    pub world: usize,
    pub corrupt: CorruptPolicy,
    /// Only images `start..end` of the dataset (a train/validation split); `None` = all.
    pub subset: Option<(usize, usize)>,
    /// Element type of the batch pixels: f32 (the default), or bf16/f16 holding the same
    /// values rounded, in half the bytes.
    pub batch_dtype: BatchDtype,
    /// Workers go on from an epoch's last batches into the next epoch's first ones (within the
    /// same `prefetch` bound), and [`Loader::epoch`]`(e + 1, 0)` takes them over, so an epoch's
    /// end does not drain the pipeline. For a consumer that reads epoch after epoch (training,
    /// benchmarks); off (the default) for one that rereads one epoch (validation).
    pub run_on: bool,
}

impl LoaderConfig {
    pub fn new(scheme: Scheme, batch_size: usize) -> Self {
        LoaderConfig {
            scheme,
            style: StyleConfig::default(),
            patch_size: None,
            batch_size,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 2,
            seed: 0,
            shuffle: true,
            drop_last: true,
            rank: 0,
            world: 1,
            corrupt: CorruptPolicy::Fail,
            subset: None,
            batch_dtype: BatchDtype::F32,
            run_on: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("{0}: the dataset is empty")]
    Empty(String),
    #[error("{dir}: {have} images for this rank, fewer than one batch of {batch}")]
    TooFew { dir: String, have: usize, batch: usize },
    #[error(
        "{path} (image {index}) is {width}x{height}; the patch grid needs square images of one size ({expected}x{expected})"
    )]
    ImageSize { index: usize, path: String, width: u32, height: u32, expected: usize },
    /// The images are of one square size, and the patch grid does not fit it.
    #[error("{dir}: its images are {side}x{side} ({path}, …): {reason}")]
    Geometry { dir: String, path: String, side: usize, reason: String },
    #[error("invalid loader settings: {0}")]
    Config(String),
    /// The batch buffers the settings imply do not fit in memory (option: "batch size"; see
    /// [`LoaderError::for_batch_option`]).
    #[error(transparent)]
    Memory(sipl_limits::RangeError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("loader worker {worker} panicked: {message}")]
    WorkerPanic { worker: usize, message: String },
    /// The allocator (named by its [`BufferAllocator::name`]) refused a batch buffer.
    #[error("allocating a {buffers} batch buffer: {source}")]
    Buffer {
        buffers: String,
        #[source]
        source: BufferError,
    },
    #[error("the loader's workers stopped before building batch {batch}")]
    WorkersGone { batch: usize },
    /// A stop was requested while the consumer waited for this batch
    /// ([`crate::EpochStream::until`]).
    #[error("stopped while waiting for batch {batch}")]
    Stopped { batch: usize },
}

impl LoaderError {
    /// The memory refusal named after the caller's option for the batch size (a config key or
    /// a flag); other errors unchanged.
    pub fn for_batch_option(self, option: &str) -> Self {
        match self {
            LoaderError::Memory(mut e) => {
                e.option = option.to_owned();
                LoaderError::Memory(e)
            }
            other => other,
        }
    }
}

impl LoaderConfig {
    /// Batch buffers that can exist at once: `workers × (prefetch + 1)` in flight, one at the
    /// consumer, one being handed back.
    pub fn pool_buffers(&self) -> usize {
        self.workers.saturating_mul(self.prefetch.saturating_add(1)).saturating_add(2)
    }

    /// Bytes of those buffers for patches of side `patch`: each is [views, batch, 3, patch²]
    /// of `batch_dtype`. Refused by [`Loader::new`] above half of this machine's memory.
    pub fn pool_bytes(&self, patch: usize) -> u64 {
        let per_batch = (self.scheme.views() as u64)
            .saturating_mul(self.batch_size as u64)
            .saturating_mul(3 * self.batch_dtype.size() as u64)
            .saturating_mul((patch as u64).saturating_mul(patch as u64));
        per_batch.saturating_mul(self.pool_buffers() as u64)
    }
}

/// Faults a test can inject (only this crate's unit tests can set them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    /// The worker building this batch panics.
    pub panic_at_batch: Option<usize>,
    /// The worker building this batch stalls for three seconds first.
    pub stall_at_batch: Option<usize>,
}

/// A dataset and the settings that turn it into batches.
pub struct Loader {
    dataset: Arc<Dataset>,
    config: LoaderConfig,
    spec: SampleSpec,
    sampler: Sampler,
    skipped: Arc<AtomicUsize>,
    stats: Arc<StageStats>,
    /// Where batch pixels are written.
    buffers: Arc<dyn BufferAllocator>,
    faults: Faults,
    /// Workers that ran on past the end of the last epoch read (with `run_on`).
    parking: Arc<Parking>,
}

impl Loader {
    /// A loader whose batches live in pooled `Vec`s ([`VecPool`], room for every buffer that
    /// can be in flight). Validates everything that can be checked before work starts: an
    /// empty dataset, fewer images than one batch, images that are not one square size or are
    /// too small for the grid, batch buffers that would not fit in half of this machine's
    /// memory.
    pub fn new(dataset: Arc<Dataset>, config: LoaderConfig) -> Result<Self, LoaderError> {
        let pool = Arc::new(VecPool::new(config.pool_buffers()));
        Self::with_buffers(dataset, config, pool)
    }

    /// As [`Loader::new`], with batch buffers from `buffers` (a trainer's page-locked host
    /// memory, for example).
    pub fn with_buffers(
        dataset: Arc<Dataset>,
        config: LoaderConfig,
        buffers: Arc<dyn BufferAllocator>,
    ) -> Result<Self, LoaderError> {
        let dir = dataset.dir().display().to_string();
        let c = &config;
        if c.batch_size == 0 || c.workers == 0 || c.prefetch == 0 {
            return Err(LoaderError::Config(
                "batch size, workers and prefetch must be >= 1".into(),
            ));
        }
        if c.world == 0 || c.rank >= c.world {
            return Err(LoaderError::Config(format!("rank {} outside world {}", c.rank, c.world)));
        }
        if dataset.is_empty() {
            return Err(LoaderError::Empty(dir));
        }
        let first = dataset.record(0)?;
        let side = first.width as usize;
        for index in 0..dataset.len() {
            let r = dataset.record(index)?;
            if r.width != r.height || r.width as usize != side {
                return Err(LoaderError::ImageSize {
                    index,
                    path: r.path.to_owned(),
                    width: r.width,
                    height: r.height,
                    expected: side,
                });
            }
        }
        let geometry = Geometry::new(side, c.patch_size.unwrap_or(side)).map_err(|e| {
            LoaderError::Geometry {
                dir: dir.clone(),
                path: first.path.to_owned(),
                side,
                reason: e.to_string(),
            }
        })?;
        let what = format!(
            "the loader's {} batch buffers (workers × (prefetch + 1) + 2) of {} samples × {} views × 3×{}×{} {}",
            c.pool_buffers(),
            c.batch_size,
            c.scheme.views(),
            geometry.out,
            geometry.out,
            c.batch_dtype
        );
        sipl_limits::check_memory("batch size", c.batch_size, c.pool_bytes(geometry.out), &what)
            .map_err(LoaderError::Memory)?;
        let (first, end) = c.subset.unwrap_or((0, dataset.len()));
        if first >= end || end > dataset.len() {
            return Err(LoaderError::Config(format!(
                "subset {first}..{end} is empty or outside the {} images",
                dataset.len()
            )));
        }
        let sampler = Sampler {
            first,
            len: end - first,
            seed: c.seed,
            shuffle: c.shuffle,
            rank: c.rank,
            world: c.world,
            even: c.drop_last,
        };
        let have = sampler.epoch_order(0).len();
        if have < c.batch_size && c.drop_last {
            return Err(LoaderError::TooFew { dir, have, batch: c.batch_size });
        }
        let spec = SampleSpec { scheme: c.scheme, geometry, style: c.style };
        Ok(Loader {
            dataset,
            config,
            spec,
            sampler,
            skipped: Arc::default(),
            stats: Arc::default(),
            buffers,
            faults: Faults::default(),
            parking: Arc::default(),
        })
    }

    pub fn spec(&self) -> &SampleSpec {
        &self.spec
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches in each epoch for this rank.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.sampler.epoch_order(0).len();
        let b = self.config.batch_size;
        if self.config.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// Streams the batches of `epoch` from batch `start` on. With `run_on`, workers that went
    /// on into this epoch from the last one read are taken over when `start` is 0; any others
    /// are stopped first.
    pub fn epoch(&self, epoch: u64, start: usize) -> EpochStream {
        let parked = self.parking.lock().unwrap_or_else(|e| e.into_inner()).take();
        let parking = Arc::downgrade(&self.parking);
        if let Some(workers) = parked
            && start == 0
            && workers.next_item() == Some((epoch, 0))
        {
            return EpochStream::resume(workers, epoch, parking);
        } // any other parked workers are dropped here: stopped and joined before new ones start
        EpochStream::spawn(
            stream::StreamParts {
                dataset: self.dataset.clone(),
                spec: self.spec,
                config: self.config,
                sampler: self.sampler,
                epoch,
                start: start.min(self.batches_per_epoch()),
                end: self.batches_per_epoch(),
                skipped: self.skipped.clone(),
                stats: self.stats.clone(),
                buffers: self.buffers.clone(),
                faults: self.faults,
            },
            parking,
        )
    }

    /// Fault injection for tests: the worker that builds batch `batch` (of any epoch) panics.
    #[cfg(test)]
    pub fn inject_panic_at_batch(&mut self, batch: usize) {
        self.faults.panic_at_batch = Some(batch);
    }

    /// Fault injection for tests: the worker that builds batch `batch` stalls for 3 s first.
    #[cfg(test)]
    pub fn inject_stall_at_batch(&mut self, batch: usize) {
        self.faults.stall_at_batch = Some(batch);
    }

    /// Images replaced because their shard rows were corrupt (with [`CorruptPolicy::Skip`]),
    /// counted when a batch is built (also batches built ahead and never taken, or built again
    /// after a restart).
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Time spent per stage, summed over workers, since the loader was made.
    pub fn stats(&self) -> &StageStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sipl_ingest::synth::{SynthSpec, write_synth};
    use sipl_ingest::{IngestJob, IngestSettings, SourceKind};

    use super::*;

    /// `n` synthetic images ingested at 32² into `dir`.
    fn dataset(dir: &Path, n: usize) -> Arc<Dataset> {
        let (images, out) = (dir.join("images"), dir.join("ds"));
        let spec = SynthSpec { classes: 2, per_class: n.div_ceil(2), size: 40, seed: 1 };
        write_synth(&images, spec).expect("synth");
        let mut settings =
            IngestSettings::defaults(SourceKind::Folder, &images, None).expect("settings");
        (settings.resize, settings.crop) = (Some(32), Some(32));
        let job = IngestJob {
            settings,
            out: out.clone(),
            threads: Some(2),
            force: false,
            progress: false,
        };
        sipl_ingest::ingest(&job).expect("ingest");
        Arc::new(Dataset::open(&out).expect("open"))
    }

    #[test]
    fn a_panic_in_the_next_epoch_reaches_that_epochs_consumer() {
        let tmp = tempfile::tempdir().expect("tmp");
        let config =
            LoaderConfig { workers: 2, seed: 7, run_on: true, ..LoaderConfig::new(Scheme::Opl, 4) };
        let mut loader = Loader::new(dataset(tmp.path(), 12), config).expect("loader");
        loader.inject_panic_at_batch(0);
        // Epoch 0 from batch 1 has no batch 0; the workers that run on into epoch 1 fail there.
        let err = loader.epoch(0, 1).collect::<Result<Vec<_>, _>>();
        assert_eq!(err.expect("epoch 0 from batch 1").len(), 2);
        let results: Vec<_> = loader.epoch(1, 0).collect();
        assert_eq!(results.len(), 1, "the error, then the end");
        assert!(results[0].as_ref().is_err_and(|e| e.to_string().contains("at batch 0")));
    }

    #[test]
    fn a_worker_panic_reaches_the_consumer_as_an_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let config = LoaderConfig { workers: 2, seed: 7, ..LoaderConfig::new(Scheme::Opl, 2) };
        let mut loader = Loader::new(dataset(tmp.path(), 12), config).expect("loader");
        loader.inject_panic_at_batch(2);
        let results: Vec<_> = loader.epoch(0, 0).collect();
        assert_eq!(results.len(), 3, "two batches, then the error, then the end");
        assert!(results[..2].iter().all(|r| r.is_ok()));
        let err = results[2].as_ref().expect_err("panic");
        assert!(matches!(err, LoaderError::WorkerPanic { .. }), "{err}");
        assert!(err.to_string().contains("injected fault at batch 2"), "{err}");
    }

    #[test]
    fn a_stop_ends_the_wait_for_a_stalled_batch() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let tmp = tempfile::tempdir().expect("tmp");
        let config = LoaderConfig { workers: 1, seed: 7, ..LoaderConfig::new(Scheme::Opl, 2) };
        let mut loader = Loader::new(dataset(tmp.path(), 12), config).expect("loader");
        loader.inject_stall_at_batch(1);
        let stop = Arc::new(AtomicBool::new(false));
        let mut stream = loader.epoch(0, 0).until(stop.clone());
        assert!(stream.next().expect("batch 0").is_ok());
        let flag = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        let started = std::time::Instant::now();
        let err = stream.next().expect("an item").expect_err("stopped");
        assert!(matches!(err, LoaderError::Stopped { batch: 1 }), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(stream.next().is_none(), "nothing after the stop");
    }
}
