//! The training configuration: TOML, typed, unknown keys refused, values validated once,
//! `--set section.key=value` overrides applied before validation, and the resolved config
//! saved with the run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sipl_loader::BatchDtype;
use sipl_loader::scheme::Scheme;

use crate::DeviceSpec;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("--set {}: expected section.key=value", shown(.0))]
    Set(String),
    /// A `--set` whose value is not one TOML value, or does not fit its key.
    #[error("--set {}: {reason}", shown(.set))]
    SetValue { set: String, reason: String },
    #[error(transparent)]
    Range(#[from] sipl_limits::RangeError),
}

/// A `--set` as typed, its control characters (a newline, a tab) escaped so that one error
/// stays one line.
fn shown(set: &str) -> String {
    set.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub optim: OptimConfig,
    pub run: RunConfig,
    /// The online downstream monitor (none: off). Never changes the trajectory: it may be
    /// added to or removed from a run that resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorConfig>,
}

/// `[monitor]`: after every `every` epochs and at the run's end, the current encoder (eval
/// mode, no gradients) embeds a labelled set and its held-out part is classified by weighted
/// kNN against the rest: `sipl eval knn`'s protocol and code (`sipl_eval::monitor`), so the
/// last figure equals `sipl eval knn --weights RUN/final.safetensors` with the same settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// A labelled dataset made by `sipl ingest` (e.g. Tiny ImageNet val).
    pub data: PathBuf,
    /// Epochs between measurements, in [1, 1000000]; the run's end is always measured.
    #[serde(default = "one")]
    pub every: u64,
    /// The neighbourhood size, in [1, 1000000] and at most the training images.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Temperature of the neighbours' vote weights exp(similarity / T), in (0, 100].
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Side the images are resized to before the encoder, in [32, 1024].
    #[serde(default = "default_input_size")]
    pub input_size: usize,
    /// Only the first N images of `data` (bounds the cost; none: all), N >= 2.
    pub images: Option<usize>,
    /// The first N (of the images used) are the labelled neighbours, the rest held out ...
    pub train_images: Option<usize>,
    /// ... or a seeded stratified split holding out this share of every class (the default,
    /// 0.2, without `train_images`).
    pub stratified: Option<f64>,
    /// Seed of the stratified split.
    #[serde(default)]
    pub split_seed: u64,
    /// Images per encoder pass, in [1, 65536].
    #[serde(default = "default_monitor_batch")]
    pub batch: usize,
}

impl MonitorConfig {
    /// The held-out share of the stratified split: `stratified`, else 0.2, unless
    /// `train_images` asks for a first-N split (`None`).
    pub fn stratified_share(&self) -> Option<f64> {
        match (self.train_images, self.stratified) {
            (Some(_), _) => None,
            (None, s) => Some(s.unwrap_or(0.2)),
        }
    }
}

/// Which validation figure picks `best.safetensors` (`run.best_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BestBy {
    /// Pretext validation accuracy (the paper's rule).
    #[default]
    Pretext,
    /// The monitor's kNN accuracy (needs `[monitor]`).
    Monitor,
}

impl BestBy {
    fn is_pretext(&self) -> bool {
        *self == BestBy::Pretext
    }

    /// The config's spelling.
    pub fn name(self) -> &'static str {
        match self {
            BestBy::Pretext => "pretext",
            BestBy::Monitor => "monitor",
        }
    }
}

impl std::str::FromStr for BestBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretext" => Ok(BestBy::Pretext),
            "monitor" => Ok(BestBy::Monitor),
            _ => Err(format!("unknown run.best_by {s:?}: expected pretext or monitor")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A dataset directory made by `sipl ingest` (square images of one size).
    pub path: PathBuf,
    /// The first `train_images` images train, the rest validate (METHOD.md: 46,000) ...
    pub train_images: Option<usize>,
    /// ... or, without `train_images`, this fraction of the images validates.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Side of an output patch; default the stored image size (the paper: 224).
    pub patch_size: Option<usize>,
    /// Loader worker threads, in [1, 4 × cores] (default: one per core).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Element type of the batches the loader writes: f32, or bf16/f16, the same values
    /// rounded to nearest even in half the bytes (written, pinned and uploaded); the trainer
    /// widens them to f32 on the device. Default: bf16 with bf16 autocast (`run.amp`, on for
    /// CUDA), where the first convolution rounds its input to bf16 anyway, so results do not
    /// change; f32 otherwise. Elsewhere a half type changes results by its rounding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_dtype: Option<BatchDtype>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub scheme: Scheme,
    /// Weight of symKL (METHOD.md: 5).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// One encoder pass over all views together (faster on GPU; BatchNorm statistics then span
    /// all views, which changes results). The paper: one pass per view (false).
    #[serde(default)]
    pub joint_views: bool,
    /// One encoder pass over all views with BatchNorm statistics still per view (the paper's
    /// results up to the rounding of the convolution algorithms, in fewer, bigger kernels;
    /// `sipl_train::resnet`). Default: on for CUDA, off on a CPU. Not with `joint_views`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batched_views: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: u64,
    /// Stop after this many steps in all (short runs and tests).
    pub max_steps: Option<u64>,
    /// Adam through PyTorch's fused kernel (one kernel set per step for all parameters)
    /// instead of the per-parameter update. Default: on for CUDA, off for CPU. The two agree to
    /// rounding (~1e-7) and keep the same moments, so a checkpoint resumes under either.
    pub fused: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub seed: u64,
    /// cpu, cuda, cuda:N or auto.
    #[serde(default = "default_device")]
    pub device: DeviceSpec,
    /// Checkpoint every N steps (and at every epoch end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Also checkpoint at every epoch end (off for tiny epochs: a checkpoint is ~240 MB).
    #[serde(default = "default_true")]
    pub checkpoint_each_epoch: bool,
    /// Checkpoints kept on disk.
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Metrics line every N steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// libtorch intra-op CPU threads (fixed so CPU runs are reproducible), in [1, cores]: more
    /// only contend (200 threads on 2 cores ran 35× slower).
    pub threads: Option<usize>,
    /// channels_last memory format (default: on for CUDA, off for CPU).
    pub channels_last: Option<bool>,
    /// bf16 autocast for forward and loss (default: on for CUDA; CPU runs stay exact fp32).
    pub amp: Option<bool>,
    /// CUDA: build batches in pinned host memory and upload them on a side stream, overlapping
    /// the previous step's compute (default on). Off: the copy runs on the compute stream.
    /// Never changes results.
    pub overlap_uploads: Option<bool>,
    /// Several ranks: gradients are all-reduced in buckets of this many MiB, each as soon as
    /// backward has produced it (PyTorch DDP's default, 25). Never changes results.
    #[serde(default = "default_bucket_mb")]
    pub bucket_mb: f64,
    /// Several ranks: how long a rank waits for the rendezvous and for a collective before
    /// failing, in seconds.
    #[serde(default = "default_dist_timeout")]
    pub dist_timeout_s: u64,
    /// Which figure picks `best.safetensors`: pretext validation accuracy (default), or the
    /// monitor's kNN accuracy. Never changes the trajectory.
    #[serde(default, skip_serializing_if = "BestBy::is_pretext")]
    pub best_by: BestBy,
}

fn default_val_fraction() -> f64 {
    0.0625
}
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_alpha() -> f64 {
    5.0
}
fn default_device() -> DeviceSpec {
    DeviceSpec::Auto
}
fn default_checkpoint_every() -> u64 {
    1000
}
fn default_bucket_mb() -> f64 {
    25.0
}
fn default_dist_timeout() -> u64 {
    300
}
fn default_true() -> bool {
    true
}
fn default_keep() -> usize {
    3
}
fn default_log_every() -> u64 {
    20
}
fn one() -> u64 {
    1
}
fn default_k() -> usize {
    20
}
fn default_temperature() -> f64 {
    0.07
}
fn default_input_size() -> usize {
    224
}
fn default_monitor_batch() -> usize {
    64
}

impl TrainConfig {
    /// Reads `path`, applies `--set` overrides, validates against the ranges and against
    /// this machine ([`TrainConfig::check_machine`]).
    pub fn load(path: &Path, sets: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.to_owned(), source: e })?;
        let cfg = Self::parse(&text, sets).map_err(|e| match e {
            ConfigError::Parse(m) => ConfigError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })?;
        cfg.check_machine()?;
        Ok(cfg)
    }

    /// Parses TOML text, applies `--set` overrides, validates against the ranges (not against
    /// this machine: a saved config reads back on any machine).
    pub fn parse(text: &str, sets: &[String]) -> Result<Self, ConfigError> {
        let mut doc: toml::Table =
            text.parse().map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        let mut applied = Vec::new();
        for set in sets {
            applied.push((apply_set(&mut doc, set)?, set.as_str()));
        }
        // The two names with a fixed set of values get the error every other range gives.
        check_name::<Scheme>(&doc, "model.scheme", "opl, siplv1, siplv2 or siplv3")?;
        check_name::<DeviceSpec>(&doc, "run.device", "cpu, cuda, cuda:N or auto")?;
        check_name::<BatchDtype>(&doc, "data.batch_dtype", BatchDtype::NAMES)?;
        check_name::<BestBy>(&doc, "run.best_by", "pretext or monitor")?;
        let cfg: TrainConfig =
            toml::Value::Table(doc).try_into().map_err(|e: toml::de::Error| {
                match blame(&e.to_string(), &applied) {
                    Some(set) => ConfigError::SetValue {
                        set: set.to_owned(),
                        reason: e.message().trim().to_owned(),
                    },
                    None => ConfigError::Parse(e.to_string()),
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value against its range (`sipl_limits`: the ranges flags of the same
    /// meaning share). Independent of the machine, so a saved config reads back anywhere:
    /// `run.threads` and `data.workers` are [`TrainConfig::check_machine`]'s.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use sipl_limits::*;
        let (d, m, o, r) = (&self.data, &self.model, &self.optim, &self.run);
        Ints::new(1, u64::MAX).check_opt("data.train_images", d.train_images)?;
        HELD_OUT_FRACTION.check("data.val_fraction", d.val_fraction)?;
        PATCH_SIZE.check_opt("data.patch_size", d.patch_size)?;
        ALPHA.check("model.alpha", m.alpha)?;
        LR.check("optim.lr", o.lr)?;
        WEIGHT_DECAY.check("optim.weight_decay", o.weight_decay)?;
        BATCH.check("optim.batch_size", o.batch_size)?;
        EPOCHS.check("optim.epochs", o.epochs)?;
        STEPS.check_opt("optim.max_steps", o.max_steps)?;
        STEPS.check("run.checkpoint_every", r.checkpoint_every)?;
        STEPS.check("run.log_every", r.log_every)?;
        KEEP_CHECKPOINTS.check("run.keep_checkpoints", r.keep_checkpoints)?;
        BUCKET_MB.check("run.bucket_mb", r.bucket_mb)?;
        TIMEOUT_S.check("run.dist_timeout_s", r.dist_timeout_s)?;
        if m.joint_views && m.batched_views == Some(true) {
            let e = RangeError::new("model.batched_views", true, "false with model.joint_views")
                .note("joint views normalise all views together, batched views each apart");
            return Err(e.into());
        }
        if let Some(mon) = &self.monitor {
            EPOCHS.check("monitor.every", mon.every)?;
            KNN_K.check("monitor.k", mon.k)?;
            KNN_TEMPERATURE.check("monitor.temperature", mon.temperature)?;
            INPUT_SIZE.check("monitor.input_size", mon.input_size)?;
            Ints::new(2, u64::MAX).check_opt("monitor.images", mon.images)?;
            Ints::new(1, u64::MAX).check_opt("monitor.train_images", mon.train_images)?;
            if let Some(f) = mon.stratified {
                HELD_OUT_FRACTION.check("monitor.stratified", f)?;
            }
            BATCH.check("monitor.batch", mon.batch)?;
            if let (Some(_), Some(f)) = (mon.train_images, mon.stratified) {
                let e =
                    RangeError::new("monitor.stratified", f, "absent with monitor.train_images")
                        .note("give one split: the first N images, or a stratified share");
                return Err(e.into());
            }
        } else if r.best_by == BestBy::Monitor {
            let e = RangeError::new("run.best_by", "monitor", "pretext without a [monitor]")
                .note("add a [monitor] section (monitor.data, a labelled dataset)");
            return Err(e.into());
        }
        if r.amp == Some(true) && r.device == DeviceSpec::Cpu {
            let e = RangeError::new("run.amp", true, "false on a CPU device")
                .note("bf16 autocast needs CUDA; CPU runs are exact fp32");
            return Err(e.into());
        }
        Ok(())
    }

    /// Checks the values this machine bounds: `run.threads` (at most one per core) and
    /// `data.workers` (at most 4 per core). Run before any work by every command that trains.
    pub fn check_machine(&self) -> Result<(), ConfigError> {
        sipl_limits::check_worker_threads("data.workers", self.data.workers)?;
        if let Some(t) = self.run.threads {
            sipl_limits::check_compute_threads("run.threads", t)?;
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Everything that changes the trajectory of a run (what a resume must agree on); the
    /// stopping point (`epochs`, `max_steps`) and logging cadence may change on resume.
    pub fn trajectory_fingerprint(&self) -> String {
        sipl_shards::xxh3_hex(self.trajectory_toml().as_bytes())
    }

    /// The config with everything that cannot change the trajectory reset, as TOML.
    pub fn trajectory_toml(&self) -> String {
        let mut c = self.clone();
        // Which GPU of a machine runs it does not change the trajectory (a resumed run, or a
        // `sipl tune` trial, may continue on another one).
        if let DeviceSpec::Cuda(_) = c.run.device {
            c.run.device = DeviceSpec::Cuda(None);
        }
        (c.optim.epochs, c.optim.max_steps) = (0, None);
        (c.run.log_every, c.run.keep_checkpoints, c.run.checkpoint_every) = (0, 0, 0);
        c.run.checkpoint_each_epoch = true;
        c.data.workers = 0;
        c.run.overlap_uploads = None;
        (c.run.bucket_mb, c.run.dist_timeout_s) = (0.0, 0);
        // The monitor reads the encoder and draws nothing; best_by picks a weight file.
        (c.monitor, c.run.best_by) = (None, BestBy::Pretext);
        c.to_toml()
    }

    /// What every rank of a distributed run must agree on: everything that shapes the
    /// trajectory or the schedule of collectives (epochs, steps, logging and checkpoint
    /// cadence, bucket size). Left out: the device index (each rank has its own), worker and
    /// thread counts, and how many checkpoints are kept.
    pub fn rank_agreement(&self) -> String {
        let mut c = self.clone();
        if let DeviceSpec::Cuda(_) = c.run.device {
            c.run.device = DeviceSpec::Cuda(None);
        }
        (c.data.workers, c.run.threads, c.run.keep_checkpoints) = (0, None, 0);
        c.run.overlap_uploads = None;
        c.to_toml()
    }
}

/// A `section.key` string of `doc` that must parse as `T`: a [`sipl_limits::RangeError`]
/// naming the key and `allowed` when it does not (other types are serde's to refuse).
fn check_name<T: std::str::FromStr>(
    doc: &toml::Table,
    key: &'static str,
    allowed: &str,
) -> Result<(), ConfigError> {
    let (section, field) = key.split_once('.').expect("section.key");
    let value = doc.get(section).and_then(|s| s.get(field)).and_then(|v| v.as_str());
    match value {
        Some(v) if v.parse::<T>().is_err() => {
            Err(sipl_limits::RangeError::new(key, v, allowed).into())
        }
        _ => Ok(()),
    }
}

/// `section.key=value`: the value is one TOML value (number, bool, string, array, inline
/// table); text that is none of these is taken as a plain string (`data.path=/x y`), unless it
/// holds a control character such as a newline or starts as a TOML string, array or table
/// would: then it is refused, so that nothing after a first value is dropped unseen. Returns
/// the key, `section.key`.
fn apply_set(doc: &mut toml::Table, set: &str) -> Result<String, ConfigError> {
    let (key, value) = set.split_once('=').ok_or_else(|| ConfigError::Set(set.into()))?;
    let bare = |k: &str| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let (section, field) = key
        .trim()
        .split_once('.')
        .filter(|(s, f)| bare(s) && bare(f))
        .ok_or_else(|| ConfigError::Set(set.into()))?;
    let value = value.trim();
    let parsed = match value.parse::<toml::Value>() {
        Ok(v) => v,
        Err(e) => {
            let looks_like_toml = value.starts_with(['"', '\'', '[', '{']);
            if looks_like_toml || value.chars().any(char::is_control) {
                let reason = format!("not one TOML value ({})", e.message().trim());
                return Err(ConfigError::SetValue { set: set.into(), reason });
            }
            toml::Value::String(value.to_owned())
        }
    };
    let table = doc
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| ConfigError::Set(set.into()))?;
    table.insert(field.to_owned(), parsed);
    Ok(format!("{section}.{field}"))
}

/// The `--set` that an error of the resolved config is about, if any: the last one of the key
/// the error names (toml ends its message with "in `section.key`"), or of an unknown key of
/// the section it names (an unknown section is named at the top, with no "in" line).
fn blame<'a>(message: &str, applied: &[(String, &'a str)]) -> Option<&'a str> {
    let last = message.lines().last().unwrap_or("");
    let path = last.strip_prefix("in `").and_then(|p| p.strip_suffix('`'));
    applied.iter().rev().find_map(|(key, set)| {
        let (section, field) = key.split_once('.')?;
        let unknown = |name: &str| message.contains(&format!("unknown field `{name}`"));
        let hit = match path {
            Some(p) => p == key || (p == section && unknown(field)),
            None => unknown(section),
        };
        hit.then_some(*set)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [data]
        path = "d"
        [model]
        scheme = "siplv1"
        [optim]
        lr = 5e-5
        batch_size = 64
        epochs = 100
        [run]
    "#;

    #[test]
    fn a_set_value_is_one_toml_value_and_its_errors_name_the_set() {
        let set = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            TrainConfig::parse(BASE, &sets)
        };
        // Nothing after a first value is dropped unseen: a value with a newline, or text that
        // starts as a TOML string, array or table but is not one, is refused.
        for bad in [
            "optim.lr=1e-3\n[run]\nseed=7",
            "data.path=/x\n[run]\nseed=7",
            "run.seed=7\0",
            "data.path=/x\ty",
            "data.path=\"a\" b",
            "optim.lr=[1e-3",
            "run.device={ x = 1",
        ] {
            let e = set(&[bad]).expect_err(bad).to_string();
            assert!(e.starts_with(&format!("--set {}: not one TOML value", shown(bad))), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // A value of the wrong type, an unknown key or section: the error names the --set.
        for (bad, says) in [
            ("optim.lr=fast", "invalid type: string \"fast\", expected f64"),
            ("optim.lr=\"1e-3\"", "expected f64"),
            ("optim.lrr=1e-3", "unknown field `lrr`"),
            ("optimizer.lr=1e-3", "unknown field `optimizer`"),
            ("run.seed=-1", "invalid value"),
        ] {
            let e = set(&["run.seed=3", bad]).expect_err(bad).to_string();
            assert!(e.starts_with(&format!("--set {bad}: ")) && e.contains(says), "{bad}: {e}");
        }
        for bad in ["optim", "optim.=1", ".lr=1", "optim.l r=1", "a.b.c=1"] {
            let e = set(&[bad]).expect_err(bad).to_string();
            assert!(e.ends_with("expected section.key=value"), "{bad}: {e}");
        }
        // Plain text is a string; quoted strings, numbers and arrays are TOML values.
        let c = set(&["data.path=/x y", "run.device=\"cpu\"", "optim.lr = 2e-3 "]).expect("ok");
        assert_eq!((c.data.path.to_str(), c.optim.lr), (Some("/x y"), 2e-3));
        // A file's own error still names the file, not a --set.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, BASE.replace("lr = 5e-5", "lr = \"x\"")).expect("write");
        let e = TrainConfig::load(&path, &["run.seed=1".into()]).expect_err("file").to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        let e = TrainConfig::load(&path, &["optim.lr=x".into()]).expect_err("set").to_string();
        assert!(e.starts_with("--set optim.lr=x: "), "{e}");
    }

    #[test]
    fn defaults_and_overrides() {
        let c = TrainConfig::parse(BASE, &["optim.lr=1e-3".into(), "data.path=/x y".into()])
            .expect("ok");
        assert_eq!((c.optim.lr, c.model.alpha), (1e-3, 5.0));
        assert_eq!(c.data.path, PathBuf::from("/x y"));
        assert_eq!(TrainConfig::parse(&c.to_toml(), &[]).expect("round trip"), c);
    }

    #[test]
    fn a_monitor_leaves_the_trajectory_and_is_checked_key_by_key() {
        let plain = TrainConfig::parse(BASE, &[]).expect("plain");
        let sets = ["monitor.data=tiny-val".to_owned(), "run.best_by=monitor".into()];
        let watched = TrainConfig::parse(BASE, &sets).expect("monitored");
        let m = watched.monitor.as_ref().expect("monitor");
        assert_eq!((m.every, m.k, m.input_size, m.stratified_share()), (1, 20, 224, Some(0.2)));
        assert_eq!(watched.trajectory_fingerprint(), plain.trajectory_fingerprint());
        assert_ne!(watched.rank_agreement(), plain.rank_agreement());
        // Saved and read back; a config without the keys saves none of them.
        assert_eq!(TrainConfig::parse(&watched.to_toml(), &[]).expect("reread"), watched);
        assert!(!plain.to_toml().contains("monitor") && !plain.to_toml().contains("best_by"));
        for (set, key) in [
            ("monitor.k=0", "monitor.k"),
            ("monitor.every=0", "monitor.every"),
            ("monitor.temperature=0", "monitor.temperature"),
            ("monitor.input_size=8", "monitor.input_size"),
            ("monitor.images=1", "monitor.images"),
            ("monitor.stratified=1.5", "monitor.stratified"),
            ("monitor.batch=0", "monitor.batch"),
            ("monitor.colour=1", "colour"),
        ] {
            let e =
                TrainConfig::parse(BASE, &["monitor.data=x".into(), set.into()]).expect_err(set);
            assert!(e.to_string().contains(key), "{set}: {e}");
        }
        let e = TrainConfig::parse(BASE, &["run.best_by=monitor".into()]).expect_err("no monitor");
        assert!(e.to_string().contains("run.best_by"), "{e}");
        let e = TrainConfig::parse(BASE, &["run.best_by=loss".into()]).expect_err("name");
        assert!(e.to_string().contains("run.best_by"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = TrainConfig::parse(BASE, &["optim.learning_rate=1".into()]).expect_err("unknown");
        assert!(e.to_string().contains("learning_rate"), "{e}");
        let e = TrainConfig::parse(BASE, &["optim.lr=-1".into()]).expect_err("range");
        assert!(e.to_string().contains("optim.lr"), "{e}");
        let e = TrainConfig::parse(BASE, &["model.scheme=simclr".into()]).expect_err("scheme");
        assert!(e.to_string().contains("model.scheme"), "{e}");
        let e = TrainConfig::parse(BASE, &["run.device=tpu".into()]).expect_err("device");
        assert!(e.to_string().contains("run.device"), "{e}");
        let e = TrainConfig::parse(BASE, &["optim.fused=yes".into()]).expect_err("bool");
        assert!(e.to_string().contains("fused"), "{e}");
        let c = TrainConfig::parse(BASE, &["optim.fused=false".into()]).expect("fused");
        assert_eq!(c.optim.fused, Some(false));
        let e = TrainConfig::parse(BASE, &["nonsense".into()]).expect_err("set");
        assert!(e.to_string().contains("section.key=value"), "{e}");
        for (set, key) in [
            ("run.bucket_mb=nan", "run.bucket_mb"),
            ("run.bucket_mb=0", "run.bucket_mb"),
            ("run.dist_timeout_s=0", "run.dist_timeout_s"),
        ] {
            let e = TrainConfig::parse(BASE, &[set.into()]).expect_err(set);
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
