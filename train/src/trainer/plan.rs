//! The run plan: everything a training run derives from its config, its launch environment
//! and its dataset's size, resolved once, before anything is opened for writing, and passed
//! down. Nothing after [`RunPlan::resolve`] re-reads an optional setting or picks a default.

use sipl_loader::{BatchDtype, LoaderConfig};
use tch::Device;

use super::TrainError;
use crate::adam::AdamConfig;
use crate::config::{ConfigError, TrainConfig};
use crate::dist::Launch;
use crate::host_buffers::HostBuffers;
use crate::model::ViewPasses;
use crate::speed::{overlaps_uploads, uses_channels_last};

/// How this process trains: device, numerics, memory and data split, all settled.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// This process's compute device (under a launcher, its rank's).
    pub device: Device,
    /// bf16 autocast around forward and loss (`run.amp`; default on CUDA, refused on a CPU).
    pub amp: bool,
    /// How the views pass through the encoder (`model.joint_views`, `model.batched_views`).
    pub views: ViewPasses,
    /// channels_last memory format (`run.channels_last`; default on CUDA).
    pub channels_last: bool,
    /// Uploads on a side stream overlapping compute (`run.overlap_uploads`; CUDA, default on).
    pub overlap_uploads: bool,
    /// Adam with its fused-or-not choice made (`optim.fused`; default on CUDA).
    pub adam: AdamConfig,
    /// Where the loader writes batches: pinned tensors on CUDA with overlap, else vectors.
    pub buffers: HostBuffers,
    /// This rank's share of each training epoch: the first images of the dataset (its
    /// `subset`), sharded by rank (its `rank` and `world`).
    pub train_loader: LoaderConfig,
    /// The other images, validating, in order, every one (no shuffling, no dropped last
    /// batch), sharded like the training part.
    pub val_loader: LoaderConfig,
}

impl RunPlan {
    /// Resolves `cfg` (already validated) for a dataset of `images` images, on the device the
    /// launch gives this process. Errors: a device that does not exist, `run.amp = true` off
    /// CUDA, a split that leaves no training or no validation image.
    pub fn resolve(
        cfg: &TrainConfig,
        launch: Option<&Launch>,
        images: usize,
    ) -> Result<Self, TrainError> {
        let device = match launch {
            Some(launch) => launch.device(cfg.run.device)?,
            None => cfg.run.device.resolve()?,
        };
        let cuda = matches!(device, Device::Cuda(_));
        if cfg.run.amp == Some(true) && !cuda {
            let e = sipl_limits::RangeError::new("run.amp", true, "false on a CPU device")
                .note("bf16 autocast needs CUDA; CPU runs are exact fp32");
            return Err(ConfigError::from(e).into());
        }
        let (rank, world) = launch.map_or((0, 1), |l| (l.rank, l.world));
        let overlap_uploads = overlaps_uploads(device, cfg.run.overlap_uploads);
        let buffers =
            if overlap_uploads { HostBuffers::for_device(device) } else { HostBuffers::Pooled };
        let mut adam = AdamConfig {
            fused: cfg.optim.fused,
            ..AdamConfig::new(cfg.optim.lr, cfg.optim.weight_decay)
        };
        adam.fused = Some(adam.fused_on(device));
        let n_train = split_point(cfg, images)?;
        let mut train_loader = LoaderConfig::new(cfg.model.scheme, cfg.optim.batch_size);
        (train_loader.workers, train_loader.seed, train_loader.patch_size) =
            (cfg.data.workers, cfg.run.seed, cfg.data.patch_size);
        (train_loader.subset, train_loader.rank, train_loader.world) =
            (Some((0, n_train)), rank, world);
        let amp = cfg.run.amp.unwrap_or(cuda);
        train_loader.batch_dtype = batch_dtype(cfg, amp);
        train_loader.run_on = true; // epoch after epoch without draining the workers
        let val_loader = LoaderConfig {
            shuffle: false,
            drop_last: false,
            run_on: false, // rereads its one epoch
            subset: Some((n_train, images)),
            ..train_loader
        };
        Ok(RunPlan {
            device,
            amp,
            views: view_passes(cfg, cuda),
            channels_last: uses_channels_last(device, cfg.run.channels_last),
            overlap_uploads,
            adam,
            buffers,
            train_loader,
            val_loader,
        })
    }
}

/// `data.batch_dtype`, else bf16 under bf16 autocast (the first convolution rounds its input
/// to bf16 there, so half the bytes cost nothing), else f32.
pub fn batch_dtype(cfg: &TrainConfig, amp: bool) -> BatchDtype {
    cfg.data.batch_dtype.unwrap_or(if amp { BatchDtype::Bf16 } else { BatchDtype::F32 })
}

/// How the views pass through the encoder: `model.joint_views`, else `model.batched_views`
/// (default on CUDA).
pub fn view_passes(cfg: &TrainConfig, cuda: bool) -> ViewPasses {
    match (cfg.model.joint_views, cfg.model.batched_views.unwrap_or(cuda)) {
        (true, _) => ViewPasses::Joint,
        (false, true) => ViewPasses::Batched,
        (false, false) => ViewPasses::PerView,
    }
}

/// The first image of the validation part: `data.train_images`, else the dataset less its
/// `data.val_fraction` (at least one image). Both parts must hold images.
fn split_point(cfg: &TrainConfig, n: usize) -> Result<usize, ConfigError> {
    if n < 2 {
        let e = sipl_limits::RangeError::new(
            "data.path",
            cfg.data.path.display(),
            "a dataset of at least two images (one trains, one validates)",
        );
        let why = match n {
            0 => "it holds no image: its ingest kept none (`sipl shards inspect` shows why)",
            _ => "it holds one image",
        };
        return Err(e.note(why).into());
    }
    let note = format!("the dataset has {n} images; the rest validate");
    let within = sipl_limits::Ints::new(1, n.saturating_sub(1) as u64);
    if let Some(t) = cfg.data.train_images {
        return within.check("data.train_images", t).map_err(|e| e.note(note).into());
    }
    let n_train = n.saturating_sub(((n as f64 * cfg.data.val_fraction).round() as usize).max(1));
    match within.contains(n_train as u64) {
        true => Ok(n_train),
        false => {
            let e = sipl_limits::RangeError::new(
                "data.val_fraction",
                cfg.data.val_fraction,
                "a share that leaves images for both training and validation",
            );
            Err(e
                .note(format!("the dataset has {n} images; this share trains on {n_train}"))
                .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sets: &[&str]) -> TrainConfig {
        let base = "[data]\npath = \"d\"\n[model]\nscheme = \"siplv1\"\n\
                    [optim]\nlr = 5e-5\nbatch_size = 8\nepochs = 1\n[run]\ndevice = \"cpu\"\n";
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        TrainConfig::parse(base, &sets).expect("config")
    }

    #[test]
    fn a_cpu_run_resolves_to_exact_fp32_in_pooled_buffers() {
        let plan = RunPlan::resolve(&config(&["data.train_images=90"]), None, 100).expect("plan");
        assert_eq!(plan.device, Device::Cpu);
        assert_eq!((plan.train_loader.rank, plan.train_loader.world), (0, 1));
        assert!(!plan.amp && !plan.channels_last && !plan.overlap_uploads);
        assert_eq!((plan.adam.fused, plan.buffers), (Some(false), HostBuffers::Pooled));
        assert_eq!(plan.train_loader.subset, Some((0, 90)));
        assert_eq!(plan.val_loader.subset, Some((90, 100)));
        assert!(plan.train_loader.shuffle && !plan.val_loader.shuffle);
        assert!(!plan.val_loader.drop_last);
        assert_eq!(plan.train_loader.batch_dtype, BatchDtype::F32);
        assert_eq!(plan.views, ViewPasses::PerView);
    }

    #[test]
    fn cuda_defaults_are_bf16_batches_and_batched_views() {
        // What `resolve` picks on CUDA (no device here): bf16 batches under autocast only,
        // batched views unless a config says otherwise.
        let cfg = config(&[]);
        assert_eq!(batch_dtype(&cfg, true), BatchDtype::Bf16);
        assert_eq!(batch_dtype(&cfg, false), BatchDtype::F32);
        assert_eq!(batch_dtype(&config(&["data.batch_dtype=\"f32\""]), true), BatchDtype::F32);
        assert_eq!(view_passes(&cfg, true), ViewPasses::Batched);
        assert_eq!(view_passes(&cfg, false), ViewPasses::PerView);
        assert_eq!(view_passes(&config(&["model.batched_views=false"]), true), ViewPasses::PerView);
        assert_eq!(view_passes(&config(&["model.batched_views=true"]), false), ViewPasses::Batched);
        assert_eq!(view_passes(&config(&["model.joint_views=true"]), true), ViewPasses::Joint);
    }

    #[test]
    fn settings_a_cpu_cannot_honour_are_refused_and_splits_must_leave_both_parts() {
        let e = RunPlan::resolve(&config(&["run.device=\"auto\"", "run.amp=true"]), None, 100)
            .err()
            .filter(|_| crate::device::cuda_device_count() == 0);
        if let Some(e) = e {
            assert!(e.to_string().contains("run.amp = true"), "{e}");
        }
        let e = RunPlan::resolve(&config(&["data.train_images=100"]), None, 100).expect_err("all");
        assert!(e.to_string().contains("data.train_images = 100"), "{e}");
        let plan = RunPlan::resolve(&config(&["optim.fused=true"]), None, 100).expect("plan");
        assert_eq!(plan.adam.fused, Some(true), "an explicit choice is kept");
    }

    #[test]
    fn a_launched_rank_takes_its_share() {
        let launch = Launch {
            rank: 1,
            world: 2,
            local_rank: 1,
            master_addr: "127.0.0.1".into(),
            master_port: 29500,
            agent_store: None,
        };
        let plan = RunPlan::resolve(&config(&[]), Some(&launch), 64).expect("plan");
        assert_eq!((plan.train_loader.rank, plan.train_loader.world), (1, 2));
        assert_eq!((plan.val_loader.rank, plan.val_loader.world), (1, 2));
    }
}
