//! `sipl train`: a long unattended run. Resumes from the newest valid checkpoint of its run
//! directory; SIGINT/SIGTERM finish the step, checkpoint and return; a non-finite loss stops
//! the run before it can reach a checkpoint. CPU runs are exact: a run killed at any moment
//! and resumed ends with the same weights, bit for bit, as one that never stopped.
//!
//! With a [`Launch`] the job is one rank of a data-parallel run (see [`crate::dist`]): it
//! trains on its share of each epoch, its gradients are averaged with the other ranks', and
//! only rank 0 writes the run directory (config, metrics, checkpoints, weights) and shows
//! progress. Every rank resumes from the same checkpoint.

mod cadence;
pub mod metrics;
mod monitor;
mod plan;
mod progress;
mod ranks;
mod run_dir;
mod window;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sipl_loader::{Batch, Loader, LoaderConfig, LoaderError};
use sipl_shards::Dataset;
use tch::{Device, Tensor, nn};

use crate::adam::Adam;
use crate::checkpoint::{CheckpointError, Checkpointer, TrainerState, write_weights};
use crate::config::{BestBy, ConfigError, TrainConfig};
use crate::dist::{Dist, DistError, Launch};
use crate::faults::FaultPlan;
use crate::host_buffers::PixelTensor;
use crate::model::{PretextModel, correct_on_device, loss};
use crate::speed::SpeedSettings;
pub use cadence::Cadence;
use cadence::is_new_best;
pub use metrics::METRICS;
use metrics::MetricsLine;
pub use metrics::{MonitorLine, ValidationLine};
pub use monitor::{KnnFigure, Monitor, MonitorHook};
pub use plan::RunPlan;
use progress::Display;
pub use progress::Progress;
use ranks::{Ranked, Ranks, Single};
pub use run_dir::{CONFIG, DATASET, DatasetRecord};
use window::Window;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("dataset {path}: {source}")]
    Data {
        path: PathBuf,
        #[source]
        source: sipl_shards::ShardError,
    },
    #[error(transparent)]
    Loader(#[from] LoaderError),
    #[error(transparent)]
    Device(#[from] crate::DeviceError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("run directory {path}: {reason}")]
    RunDir { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("loss is {value} at step {step}: stopping; the last good checkpoint is kept")]
    NonFinite { step: u64, value: f64 },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("monitor: {0}")]
    Monitor(String),
    #[error(
        "the monitor failed on another rank at step {step} (its error is above): stopping; the last good checkpoint is kept"
    )]
    PeerMonitorFailed { step: u64 },
    #[error(transparent)]
    Dist(#[from] DistError),
    #[error(
        "another rank's loss is not finite at step {step}: stopping; the last good checkpoint is kept"
    )]
    PeerNonFinite { step: u64 },
    #[error(
        "rank 0 could not write the checkpoint of step {step} (its error is above): stopping; the last good checkpoint is kept"
    )]
    MainCheckpointFailed { step: u64 },
}

impl TrainError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io { path: path.to_owned(), source }
    }
}

pub struct TrainJob {
    pub config: TrainConfig,
    pub run_dir: PathBuf,
    /// Resume even though the saved config differs.
    pub force: bool,
    pub progress: Progress,
    /// Set to stop at the next step boundary (SIGINT/SIGTERM are wired to it by `train`).
    /// With several ranks the stop is agreed every `run.log_every` steps.
    pub stop: Arc<AtomicBool>,
    /// This process's place in a distributed run; `None`: a single process.
    pub launch: Option<Launch>,
    /// Faults to inject (tests only); [`FaultPlan::none`] for every real run.
    pub faults: FaultPlan,
    /// Asked after every epoch's validation (and its checkpoint) whether to go on: `false`
    /// stops the run there, checkpointed, as a stop request would. `None`: always go on.
    /// One process only (`sipl tune` drives its trials through it).
    pub after_epoch: Option<EpochGate>,
    /// The online downstream monitor (`[monitor]`), filled in by the command that starts the
    /// run; `None`: off.
    pub monitor: Option<MonitorHook>,
}

/// What an epoch's end recorded: its validation line and, when the monitor measured at it,
/// the monitor's line.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochEnd {
    pub validation: ValidationLine,
    pub monitor: Option<MonitorLine>,
}

impl EpochEnd {
    /// One JSON object: the validation line's fields, and the monitor line's when there is
    /// one (`knn_accuracy`, …).
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(&self.validation).expect("a validation line serialises");
        if let (Some(m), Some(obj)) = (&self.monitor, v.as_object_mut()) {
            let mv = serde_json::to_value(m).expect("a monitor line serialises");
            for (k, x) in mv.as_object().into_iter().flatten() {
                obj.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
        v.to_string()
    }
}

/// Whether a run goes on after an epoch, given what that epoch's end recorded.
pub type EpochGate = Box<dyn Fn(&EpochEnd) -> Result<bool, TrainError> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub best_val_accuracy: Option<f64>,
    pub last_val_accuracy: Option<f64>,
    /// The monitor's last line and its best kNN accuracy (no monitor: `None`).
    pub last_monitor: Option<MonitorLine>,
    pub best_knn_accuracy: Option<f64>,
    /// Over all ranks.
    pub samples_per_s: f64,
    pub interrupted: bool,
    /// Ranks that trained.
    pub world: usize,
}

pub const BEST: &str = "best.safetensors";
pub const FINAL: &str = "final.safetensors";

/// Everything a step needs.
struct Session {
    cfg: TrainConfig,
    device: Device,
    speed: SpeedSettings,
    /// bf16 autocast around forward and loss (CUDA only).
    amp: bool,
    vs: nn::VarStore,
    model: PretextModel,
    adam: Adam,
    ckpt: Checkpointer,
    state: TrainerState,
    run: PathBuf,
    faults: FaultPlan,
    ranks: Box<dyn Ranks>,
}

/// Runs (or resumes) a training job to its end, or to a stop request.
pub fn train(job: TrainJob) -> Result<TrainReport, TrainError> {
    let cfg = job.config.clone();
    // Every value against its range and this machine, before anything is opened or written.
    cfg.validate()?;
    cfg.check_machine()?;
    let data = Arc::new(
        Dataset::open(&cfg.data.path)
            .map_err(|source| TrainError::Data { path: cfg.data.path.clone(), source })?,
    );
    let n = data.len();
    let data_identity = data.identity().to_owned();
    let plan = RunPlan::resolve(&cfg, job.launch.as_ref(), n)?;
    let dist = match &job.launch {
        Some(launch) => {
            let timeout = std::time::Duration::from_secs(cfg.run.dist_timeout_s);
            Some(Dist::connect(launch, plan.device, timeout)?)
        }
        None => None,
    };
    let loader = |lc: LoaderConfig, data: Arc<Dataset>| {
        Loader::with_buffers(data, lc, plan.buffers.allocator(lc.pool_buffers()))
            .map_err(|e| e.for_batch_option("optim.batch_size"))
    };
    let train_loader = loader(plan.train_loader, data.clone())?;
    let val_loader = loader(plan.val_loader, data)?;
    check_step_memory(&cfg, train_loader.spec().geometry.out, plan.device)?;
    let record = DatasetRecord {
        path: std::path::absolute(&cfg.data.path).unwrap_or_else(|_| cfg.data.path.clone()),
        identity: data_identity,
        images: n,
    };
    // Held until the run ends (rank 0's, with several ranks).
    let claim = match &dist {
        None => Some(run_dir::claim(&job.run_dir, &cfg, &record, job.force)?),
        Some(d) => {
            // Rank 0 publishes its verdict even when it fails, so that no rank is left
            // waiting for it until the store times out. Every rank must read the same set: its
            // identity is part of the one agreement (a second one would leave the ranks that
            // passed the first waiting on a rank 0 that has already failed).
            let agreement =
                format!("{}\ndataset identity {}\n", cfg.rank_agreement(), record.identity);
            let agreed = d.agree("config", &agreement).map_err(TrainError::from);
            if d.is_main() {
                let started =
                    agreed.and_then(|()| run_dir::claim(&job.run_dir, &cfg, &record, job.force));
                d.publish_start(started.as_ref().err().map(|e| e.to_string()).as_deref())?;
                Some(started?)
            } else {
                agreed?;
                d.await_start()?;
                None
            }
        }
    };
    let dataset_replaced = claim.as_ref().is_some_and(|c| c.dataset_replaced);
    let notes = claim.as_ref().map(|c| c.notes.clone()).unwrap_or_default();
    let monitor_changed = claim.as_ref().is_some_and(|c| c.monitor_changed);
    let _lock = claim.map(|c| c.lock);
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, job.stop.clone())
            .map_err(|e| TrainError::io(&job.run_dir, e))?;
    }
    let mut s = Session::start(cfg, plan, &job.run_dir, dist, job.force, job.faults.clone())?;
    if dataset_replaced && s.state.step > 0 {
        eprintln!(
            "warning: continuing on another dataset (--force): {} (identity {}); best validation accuracy starts over",
            record.path.display(),
            record.identity
        );
        (s.state.best_val_accuracy, s.state.best_knn_accuracy) = (None, None);
    }
    let resumed_from = (s.state.step > 0).then_some(s.state.step);
    for note in notes.iter().filter(|_| resumed_from.is_some()) {
        eprintln!("{note}");
    }
    if monitor_changed {
        // Figures of another monitor set are not comparable with the new ones.
        s.state.best_knn_accuracy = None;
    }
    let resume = resumed_from.map(|step| run_dir::Resume {
        step,
        at_epoch_start: s.state.batch == 0,
        epochs: s.state.epoch,
        log_every: s.cfg.run.log_every,
    });
    let metrics = match s.is_main() {
        true => Some(run_dir::Metrics::open(&job.run_dir, resume)?),
        false => None,
    };
    s.run_loop(&train_loader, &val_loader, metrics, job, resumed_from)
}

/// Refuses a batch whose training step would not fit in half of this machine's memory
/// (activations of every view are kept for backward).
fn check_step_memory(cfg: &TrainConfig, patch: usize, device: Device) -> Result<(), ConfigError> {
    let (batch, views) = (cfg.optim.batch_size, cfg.model.scheme.views());
    let bytes = crate::model::train_step_bytes((batch * views) as u64, patch as u64, device);
    let what = format!(
        "training steps of {batch} samples × {views} views at {patch}² on {}",
        crate::device::device_name(device)
    );
    sipl_limits::check_memory("optim.batch_size", batch, bytes, &what)?;
    Ok(())
}

impl Session {
    fn start(
        cfg: TrainConfig,
        plan: RunPlan,
        run: &Path,
        dist: Option<Dist>,
        force: bool,
        faults: FaultPlan,
    ) -> Result<Self, TrainError> {
        if let Some(t) = cfg.run.threads {
            tch::set_num_threads(t as i32);
        }
        tch::manual_seed(cfg.run.seed as i64);
        let device = plan.device;
        let vs = nn::VarStore::new(device);
        let mut model = PretextModel::new(&vs.root());
        crate::model::torchvision_init(&vs);
        model.views = plan.views;
        let speed = SpeedSettings::for_device(
            device,
            Some(plan.channels_last),
            Some(plan.overlap_uploads),
        )?;
        speed.prepare_model(&vs);
        let mut adam = Adam::new(&vs, plan.adam);
        let ckpt = Checkpointer::new(run.join("checkpoints"), cfg.run.keep_checkpoints)
            .with_faults(faults.clone());
        let (latest, skipped) = ckpt.latest_valid()?;
        let main = dist.as_ref().is_none_or(Dist::is_main);
        for why in skipped.iter().filter(|_| main) {
            eprintln!("warning: skipping damaged checkpoint: {why}");
        }
        let world = dist.as_ref().map_or(1, |d| d.world);
        let fingerprint = cfg.trajectory_fingerprint();
        let state = match latest {
            Some((path, state)) => {
                if state.world != world && !force {
                    return Err(TrainError::RunDir {
                        path: run.to_owned(),
                        reason: format!(
                            "its checkpoint was written by {} rank(s) and this run has {world}: epoch positions differ; resume with {} rank(s), or pass --force to continue from the start of its epoch",
                            state.world, state.world
                        ),
                    });
                }
                let state = match state.world == world {
                    true => state,
                    false => TrainerState { batch: 0, world, ..state },
                };
                ckpt.load(&path, &vs, &mut adam, &state)?;
                if main {
                    eprintln!(
                        "resuming from {} (step {}, epoch {}, batch {})",
                        path.display(),
                        state.step,
                        state.epoch,
                        state.batch
                    );
                }
                TrainerState { config_fingerprint: fingerprint, ..state }
            }
            None => TrainerState {
                step: 0,
                epoch: 0,
                batch: 0,
                best_val_accuracy: None,
                best_knn_accuracy: None,
                adam_step: 0,
                config_fingerprint: fingerprint,
                seed: cfg.run.seed,
                world,
            },
        };
        let ranks: Box<dyn Ranks> = match dist {
            Some(d) => {
                let s = &state;
                let position = format!("step {} epoch {} batch {}", s.step, s.epoch, s.batch);
                Box::new(Ranked::start(d, &vs, &position, cfg.run.bucket_mb)?)
            }
            None => Box::new(Single),
        };
        Ok(Session {
            cfg,
            device,
            speed,
            amp: plan.amp,
            vs,
            model,
            adam,
            ckpt,
            state,
            run: run.to_owned(),
            faults,
            ranks,
        })
    }

    fn is_main(&self) -> bool {
        self.ranks.is_main()
    }

    fn world(&self) -> usize {
        self.ranks.world()
    }

    fn run_loop(
        &mut self,
        train: &Loader,
        val: &Loader,
        mut metrics: Option<run_dir::Metrics>,
        mut job: TrainJob,
        resumed_from: Option<u64>,
    ) -> Result<TrainReport, TrainError> {
        let cadence = Cadence::new(&self.cfg, train.batches_per_epoch() as u64);
        let style = if self.is_main() { job.progress } else { Progress::Off };
        let bar = Display::new(style, cadence.max_steps, self.state.step);
        let start = (Instant::now(), self.state.step);
        let mut window = Window::new(self.device);
        let mut last_val = None;
        let mut validated_at = None;
        let mut monitor = Monitoring { hook: job.monitor.take(), at: None, last: None };
        if self.state.batch == 0 && self.state.step > 0 {
            // A checkpoint at an epoch's start was written after that epoch's validation and
            // monitor lines, which stand: a run with nothing left to do measures nothing again.
            let step = self.state.step;
            validated_at = Some(step);
            if self.is_main() {
                let lines = metrics::read(&self.run);
                last_val = metrics::validations(&lines)
                    .filter(|v| v.step == step)
                    .last()
                    .map(|v| v.val_accuracy);
                monitor.last = metrics::monitors(&lines).filter(|m| m.step == step).last().cloned();
                monitor.at = monitor.last.as_ref().map(|m| m.step);
            }
        }
        // A fresh run's first figure is its encoder before any step: the random encoder of
        // its seed, the baseline its later figures are read against.
        if self.state.step == 0 && monitor.hook.is_some() {
            self.ranks.average_buffers(&self.vs)?;
            self.measure(&mut monitor, 0, &mut metrics, &bar)?;
        }
        'epochs: while cadence.goes_on(self.state.epoch, self.state.step) {
            let stream = train.epoch(self.state.epoch, self.state.batch);
            // One process: a signal also ends a wait for a batch (workers slow to start, a
            // storage that does not answer). Several ranks agree on a stop at logging steps
            // instead, so that none leaves the others waiting in a collective.
            let stream = match self.ranks.world() {
                1 => stream.until(job.stop.clone()),
                _ => stream,
            };
            for batch in stream {
                let batch = match batch {
                    Err(sipl_loader::LoaderError::Stopped { .. }) => {
                        if self.state.step > 0 {
                            self.save_checkpoint(&metrics)?;
                        }
                        bar.abandon("stopped by signal while waiting for data; checkpoint written");
                        return Ok(self.report(resumed_from, last_val, &monitor, start, true));
                    }
                    other => other?,
                };
                self.step(&batch, &mut window)?;
                let step = self.state.step;
                bar.step(step);
                if cadence.logs_at(step) {
                    self.check_finite(&window)?;
                    let line = window.flush(&self.state, self.cfg.optim.lr);
                    bar.train(&line);
                    if let Some(m) = &mut metrics {
                        m.write(&MetricsLine::Train(line))?;
                    }
                }
                // With several ranks a stop request is agreed at the logging steps.
                let stop =
                    self.ranks.stop(job.stop.load(Ordering::Relaxed), cadence.logs_at(step))?;
                let ends_epoch = self.state.batch >= train.batches_per_epoch();
                let next = cadence.after_step(step, stop, ends_epoch);
                if next.checkpoint {
                    self.check_finite(&window)?;
                    self.save_checkpoint(&metrics)?;
                }
                if next.interrupt {
                    bar.abandon("stopped by signal; checkpoint written");
                    return Ok(self.report(resumed_from, last_val, &monitor, start, true));
                }
                if next.finish {
                    break 'epochs;
                }
            }
            self.state.epoch += 1;
            self.state.batch = 0;
            self.check_finite(&window)?;
            let (acc, predictions) = self.validate(val)?;
            (last_val, validated_at) = (Some(acc), Some(self.state.step));
            let line = self.record_validation((acc, predictions), &mut metrics, &bar)?;
            let last = !cadence.goes_on(self.state.epoch, self.state.step);
            let measured = match monitor.due(self.state.epoch, last) {
                true => Some(self.measure(&mut monitor, self.state.epoch, &mut metrics, &bar)?),
                false => None,
            };
            let checkpointed = cadence.checkpoints_after_epoch(self.state.epoch, self.state.step);
            if checkpointed {
                self.save_checkpoint(&metrics)?;
            }
            let end = EpochEnd { validation: line, monitor: measured };
            if let Some(gate) = &job.after_epoch
                && !gate(&end)?
            {
                if !checkpointed {
                    self.save_checkpoint(&metrics)?;
                }
                bar.abandon("stopped after the epoch; checkpoint written");
                return Ok(self.report(resumed_from, last_val, &monitor, start, true));
            }
        }
        self.check_finite(&window)?;
        if cadence.validates_at_end(self.state.step, validated_at) {
            let (acc, predictions) = self.validate(val)?;
            last_val = Some(acc);
            self.record_validation((acc, predictions), &mut metrics, &bar)?;
            if monitor.hook.is_some() && monitor.at != Some(self.state.step) {
                // Inside an epoch (a run whose last step completes its epoch ends it above).
                self.measure(&mut monitor, self.state.epoch, &mut metrics, &bar)?;
            }
            self.save_checkpoint(&metrics)?;
        }
        if self.is_main() {
            write_weights(&self.run, FINAL, &self.vs)?;
        }
        bar.finish();
        Ok(self.report(resumed_from, last_val, &monitor, start, false))
    }

    /// Runs the monitor on the current encoder (BatchNorm statistics were averaged over the
    /// ranks just before), logs its line with `epochs` completed, and with `run.best_by =
    /// "monitor"` a new best after the first step writes `best.safetensors` (the step-0 figure
    /// is the random encoder's: a baseline, never a best). Every rank measures; all stop if
    /// any fails, or if rank 0 cannot record.
    fn measure(
        &mut self,
        monitor: &mut Monitoring,
        epochs: u64,
        metrics: &mut Option<run_dir::Metrics>,
        bar: &Display,
    ) -> Result<MonitorLine, TrainError> {
        let Some(hook) = monitor.hook.as_mut() else {
            return Err(TrainError::Monitor("no monitor".into()));
        };
        let started = Instant::now();
        let figure = hook.measure(&self.model, self.device);
        if self.ranks.any(figure.is_err())? {
            figure?;
            return Err(TrainError::PeerMonitorFailed { step: self.state.step });
        }
        let figure = figure?;
        let step = self.state.step;
        let line = monitor::line(figure, epochs, step, started.elapsed().as_secs_f64());
        let best = step > 0 && is_new_best(self.state.best_knn_accuracy, line.knn_accuracy);
        let recorded = (|| {
            if let Some(m) = metrics {
                m.write(&MetricsLine::Monitor(line.clone()))?;
            }
            if best && self.cfg.run.best_by == BestBy::Monitor && self.is_main() {
                write_weights(&self.run, BEST, &self.vs)?;
            }
            Ok::<(), TrainError>(())
        })();
        if self.ranks.any(recorded.is_err())? {
            recorded?;
            return Err(TrainError::PeerMonitorFailed { step });
        }
        bar.monitor(&line);
        if best {
            self.state.best_knn_accuracy = Some(line.knn_accuracy);
        }
        (monitor.at, monitor.last) = (Some(step), Some(line.clone()));
        Ok(line)
    }

    fn step(&mut self, batch: &Batch, window: &mut Window) -> Result<(), TrainError> {
        self.ranks.before_forward()?;
        let (x, y) = self.upload(batch)?;
        let (scheme, alpha) = (self.cfg.model.scheme, self.cfg.model.alpha);
        let (logits, l) = self.autocast(|| {
            let logits = self.model.forward(scheme, &x, true);
            let l = loss(&logits, &y, alpha);
            (logits, l)
        });
        self.adam.zero_grad();
        self.ranks.before_backward(&l.total)?;
        l.total.backward();
        self.adam.step()?;
        self.state.step += 1;
        self.state.adam_step = self.adam.step;
        self.state.batch = batch.index + 1;
        let total = if self.faults.nan_loss(self.state.step, self.ranks.rank()) {
            l.total.detach() * f64::NAN
        } else {
            l.total.detach()
        };
        // Loss and accuracy are this rank's share of the step; the sample count is all ranks'.
        window.add(&total, &l.ce, &l.kl, &logits, &y, batch.batch_size * self.world());
        Ok(())
    }

    fn autocast<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.amp { crate::ffi::autocast::with_bf16(self.device, f) } else { f() }
    }

    /// The batch's views [V, N, 3, S, S] and labels on the device.
    fn upload(&self, batch: &Batch) -> Result<(Tensor, Tensor), TrainError> {
        let x = self.speed.upload(&batch.pixel_tensor())?;
        let y = self.speed.to_device(&Tensor::from_slice(&batch.labels))?;
        Ok((x, y))
    }

    /// Pretext accuracy on the validation images (each rank counts its share; the counts are
    /// summed over ranks).
    /// Validation accuracy and the number of predictions it counts (all ranks together).
    fn validate(&self, val: &Loader) -> Result<(f64, i64), TrainError> {
        self.ranks.average_buffers(&self.vs)?;
        // Counted on the device: one host sync for the whole pass, not one per batch.
        let right = Tensor::zeros([2], (tch::Kind::Int64, self.device));
        let mut total = 0i64;
        tch::no_grad(|| -> Result<(), TrainError> {
            for batch in val.epoch(0, 0) {
                let batch = batch?;
                let (x, y) = self.upload(&batch)?;
                let logits = self.autocast(|| self.model.forward(self.cfg.model.scheme, &x, false));
                let _ = right.get(0).g_add_(&correct_on_device(&logits, &y));
                total += (logits.len() * batch.batch_size) as i64;
            }
            Ok(())
        })?;
        let _ = right.get(1).fill_(total);
        self.ranks.sum(&[&right])?;
        let (r, t) = (right.int64_value(&[0]), right.int64_value(&[1]));
        Ok((r as f64 / t.max(1) as f64, t))
    }

    /// Logs a validation accuracy (with its count of predictions, for a binomial interval);
    /// a new best writes `best.safetensors`. Returns the line logged.
    fn record_validation(
        &mut self,
        (acc, predictions): (f64, i64),
        metrics: &mut Option<run_dir::Metrics>,
        bar: &Display,
    ) -> Result<ValidationLine, TrainError> {
        let s = &self.state;
        let line = ValidationLine {
            epoch: s.epoch,
            step: s.step,
            val_accuracy: acc,
            val_predictions: Some(predictions as u64),
        };
        if let Some(m) = metrics {
            m.write(&MetricsLine::Validation(line.clone()))?;
        }
        bar.validation(&line);
        if is_new_best(s.best_val_accuracy, acc) {
            self.state.best_val_accuracy = Some(acc);
            if self.cfg.run.best_by == BestBy::Pretext && self.is_main() {
                write_weights(&self.run, BEST, &self.vs)?;
            }
        }
        Ok(line)
    }

    /// Rank 0 writes; with several ranks, BatchNorm statistics are averaged first, and every
    /// rank learns whether the write worked (so none is left waiting when it did not).
    /// The metrics lines written so far reach the disk first, so that a checkpoint never
    /// accounts for lines a power cut could still take.
    fn save_checkpoint(&mut self, metrics: &Option<run_dir::Metrics>) -> Result<(), TrainError> {
        self.ranks.average_buffers(&self.vs)?;
        let saved = match self.is_main() {
            true => metrics.as_ref().map_or(Ok(()), run_dir::Metrics::sync).and_then(|()| {
                self.ckpt.save(&self.vs, &self.adam, &self.state).map(drop).map_err(Into::into)
            }),
            false => Ok(()),
        };
        if self.ranks.any(saved.is_err())? {
            saved?;
            return Err(TrainError::MainCheckpointFailed { step: self.state.step });
        }
        Ok(())
    }

    /// Stops on a non-finite loss. With several ranks the decision is collective: every rank
    /// stops at the same step when any rank's loss is not finite.
    fn check_finite(&self, window: &Window) -> Result<(), TrainError> {
        let local = window.check_finite(self.state.step);
        if self.ranks.any(local.is_err())? {
            local?;
            return Err(TrainError::PeerNonFinite { step: self.state.step });
        }
        Ok(())
    }

    fn report(
        &self,
        resumed_from: Option<u64>,
        last_val: Option<f64>,
        monitor: &Monitoring,
        start: (Instant, u64),
        interrupted: bool,
    ) -> TrainReport {
        let samples =
            (self.state.step - start.1) as f64 * (self.cfg.optim.batch_size * self.world()) as f64;
        TrainReport {
            steps: self.state.step,
            resumed_from,
            best_val_accuracy: self.state.best_val_accuracy,
            last_val_accuracy: last_val,
            last_monitor: monitor.last.clone(),
            best_knn_accuracy: self.state.best_knn_accuracy,
            samples_per_s: samples / start.0.elapsed().as_secs_f64().max(1e-9),
            interrupted,
            world: self.world(),
        }
    }
}

/// The monitor of a run and where it last measured.
struct Monitoring {
    hook: Option<MonitorHook>,
    /// The step of the last measurement, and its line.
    at: Option<u64>,
    last: Option<MonitorLine>,
}

impl Monitoring {
    /// Whether the end of epoch `epochs_done` is measured: every `every` epochs, and the
    /// run's `last` epoch.
    fn due(&self, epochs_done: u64, last: bool) -> bool {
        self.hook.as_ref().is_some_and(|h| last || epochs_done.is_multiple_of(h.every().max(1)))
    }
}
