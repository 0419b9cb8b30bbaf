//! sipl's option ranges: every numeric option of every command, from a config key, `--set` or
//! a flag, is checked against its range once, before any work and before anything is
//! written. This crate is the one vocabulary for that: [`Ints`] and [`Reals`] ranges, the
//! ranges shared by options of one meaning (a learning rate is a learning rate, in
//! `optim.lr` as in `sipl eval downstream --lr`), limits that come from the machine
//! ([`machine`]), and one error, [`RangeError`], that always reads
//! `OPTION = VALUE: must be in RANGE (why)`. [`changes`] names the settings that differ when
//! two sets must not be mixed.
//!
//! ```
//! use sipl_limits::{BATCH, LR};
//! assert!(LR.check("--lr", 1e-4).is_ok());
//! let e = BATCH.check("optim.batch_size", 0usize).expect_err("0 is out of range");
//! assert_eq!(e.to_string(), "optim.batch_size = 0: must be in [1, 65536]");
//! ```
//!
//! Ranges used by one command only live with that command, built from the same types.
//! No dependencies beyond `thiserror`; no libtorch.

pub mod changes;
pub mod machine;
mod range;

pub use machine::{check_compute_threads, check_memory, check_worker_threads};
pub use range::{Ints, RangeError, Reals};

/// Learning rate of Adam (pretext `optim.lr`, downstream `--lr`).
pub const LR: Reals = Reals::open(0.0, 1.0);
/// Adam's L2 weight decay (`optim.weight_decay`).
pub const WEIGHT_DECAY: Reals = Reals::closed(0.0, 1.0);
/// Weight of the symmetric KL term (`model.alpha`; the paper: 5).
pub const ALPHA: Reals = Reals::closed(0.0, 1000.0);
/// The held-out share of a set (`data.val_fraction`, downstream `--stratified`).
pub const HELD_OUT_FRACTION: Reals = Reals::open(0.0, 1.0);
/// Images per batch (`optim.batch_size`, `--batch` of every command). Memory is checked
/// separately, where the image size is known.
pub const BATCH: Ints = Ints::new(1, 65_536);
/// Passes over the training images (`optim.epochs`, downstream `--epochs`).
pub const EPOCHS: Ints = Ints::new(1, 1_000_000);
/// Step counts and step intervals (`optim.max_steps`, `run.checkpoint_every`,
/// `run.log_every`, `sipl bench … --steps`).
pub const STEPS: Ints = Ints::new(1, 1_000_000_000_000);
/// Checkpoints kept on disk (`run.keep_checkpoints`; each is ~240 MB for a SIPL model).
pub const KEEP_CHECKPOINTS: Ints = Ints::new(1, 1000);
/// Gradient bucket size in MiB (`run.bucket_mb`).
pub const BUCKET_MB: Reals = Reals::open_closed(0.0, 4096.0);
/// A wait in seconds before giving up (`run.dist_timeout_s`, `--hang-seconds`): up to a day.
pub const TIMEOUT_S: Ints = Ints::new(1, 86_400);
/// Finished batches each loader worker may queue ahead (`--prefetch`).
pub const PREFETCH: Ints = Ints::new(1, 64);
/// Side of an output patch (`data.patch_size`, `--patch-size`).
pub const PATCH_SIZE: Ints = Ints::new(8, 1024);
/// Side the images are resized to before a frozen encoder (`--input-size`, `sipl bench step
/// --size`): ResNet-18 downsamples 32×, so below 32 its last stage sees less than a pixel.
pub const INPUT_SIZE: Ints = Ints::new(32, 1024);
/// Neighbourhood sizes of the weighted kNN vote (`sipl eval knn --k`, `monitor.k`; larger
/// ones are clamped to the training images).
pub const KNN_K: Ints = Ints::new(1, 1_000_000);
/// Temperature of the kNN vote weights exp(similarity / T) (`--temperature`,
/// `monitor.temperature`; the protocol's 0.07).
pub const KNN_TEMPERATURE: Reals = Reals::open_closed(0.0, 100.0);
/// Side of a stored image (`sipl ingest --resize/--crop`).
pub const IMAGE_SIDE: Ints = Ints::new(1, 4096);
