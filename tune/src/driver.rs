//! Runs `python/sipl_tune.py` (Optuna) with one JSON request and reads back the study it
//! leaves: the project's venv Python (baked in at build time, `SIPL_PYTHON` overrides it).
//!
//! The driver is this process's child and goes with it: it gets SIGTERM when `sipl tune`
//! dies (even by SIGKILL), and SIGINT/SIGTERM sent to `sipl tune` are passed on to it, so
//! running trials checkpoint and stay resumable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Space, TuneError};

/// The driver, compiled in: the user types `sipl tune`, from any folder.
const SCRIPT: &str = include_str!("../python/sipl_tune.py");

/// What a trial's value is (maximised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The best pretext validation accuracy of the trial's run.
    Pretext,
    /// The best held-out accuracy of `sipl eval downstream --mode cached` on `--eval-data`.
    Downstream,
    /// The best kNN accuracy of the run's monitor (`[monitor]` of the base config), reported
    /// after every epoch it measures, so the pruner acts on a downstream figure.
    Monitor,
}

/// Optuna's pruner, asked after every epoch with the pretext validation accuracy (with the
/// monitor objective: after every epoch the monitor measures, with its kNN accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pruner {
    None,
    /// `MedianPruner(n_startup_trials=2)`: stop a trial below the median of earlier trials
    /// at the same epoch.
    Median,
    /// `HyperbandPruner(min_resource=1, max_resource=optim.epochs)`.
    Hyperband,
}

/// Optuna's sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// `TPESampler(seed)`, Optuna's default Bayesian sampler.
    Tpe,
    Random,
}

/// What the driver does: run trials, or only export the study for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Tune,
    Report,
}

/// The driver's request (its only argument, as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub mode: Mode,
    /// The `sipl` binary the trials run (this one).
    pub sipl: PathBuf,
    pub study_dir: PathBuf,
    pub study_name: String,
    pub storage: String,
    pub base_config: PathBuf,
    pub space: Space,
    /// Trials numbered 0 … trials − 1 are run, over every tuner of the study.
    pub trials: u64,
    /// No new trial after this many seconds.
    pub timeout_s: Option<f64>,
    pub objective: Objective,
    pub eval_data: Option<PathBuf>,
    pub eval_args: Vec<String>,
    pub pruner: Pruner,
    pub sampler: Sampler,
    pub seed: u64,
    /// One trial at a time per entry (`run.device` of the trial; `None`: the base config's).
    pub devices: Vec<Option<String>>,
    /// The base config's `optim.epochs` (Hyperband's largest budget).
    pub epochs: u64,
    pub force: bool,
    pub quiet: bool,
    /// The base config's text (`DIR/base.toml`): tuners joining a shared study must train
    /// from the same one.
    pub base_text: String,
    /// Saved in the study folder once the storage has opened (`None`: leave them as they are).
    pub space_toml: Option<String>,
    pub base_toml: Option<String>,
    /// `DIR/study.json` ([`crate::study::Saved`]), saved with them.
    pub saved: crate::study::Saved,
    /// Where the driver writes the study for [`crate::report`].
    pub export: PathBuf,
}

/// One trial as exported by the driver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrialRow {
    pub number: u64,
    /// COMPLETE, PRUNED, FAIL, RUNNING, INTERRUPTED (resumable) or WAITING.
    pub state: String,
    /// Config key → value.
    pub params: BTreeMap<String, serde_json::Value>,
    pub value: Option<f64>,
    /// Epoch → pretext validation accuracy.
    pub intermediate: BTreeMap<String, f64>,
    pub epochs: u64,
    pub wall_s: Option<f64>,
    pub error: Option<String>,
}

/// The study as exported by the driver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Export {
    pub study_name: String,
    pub objective: String,
    pub trials: Vec<TrialRow>,
    /// fANOVA importance per config key (absent below two finished trials).
    pub importances: Option<BTreeMap<String, f64>>,
    /// What this tuner did (absent with `--report`).
    #[serde(default)]
    pub session: Option<Session>,
}

/// One tuner's share of the study: its trials, and how its time split between their `sipl`
/// commands and its own work (Optuna, storage, start-up).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct Session {
    pub trials: u64,
    /// Of those, recorded FAIL.
    #[serde(default)]
    pub failed: u64,
    /// Seconds the trials' `sipl train` (and `sipl eval`) commands ran.
    pub run_s: f64,
    /// The driver's whole time.
    pub wall_s: f64,
}

impl Export {
    /// The finished trial with the highest value (the lowest number among equals).
    pub fn best(&self) -> Option<&TrialRow> {
        self.trials.iter().filter(|t| t.state == "COMPLETE" && t.value.is_some()).fold(
            None,
            |b: Option<&TrialRow>, t| match b {
                Some(b) if b.value >= t.value => Some(b),
                _ => Some(t),
            },
        )
    }
}

/// The Python that runs the driver: `SIPL_PYTHON`, else `built_with` (the venv Python the
/// binary was built against) when it exists, else `python3` on PATH.
pub fn python(built_with: Option<&str>) -> PathBuf {
    if let Some(p) = std::env::var_os("SIPL_PYTHON") {
        return p.into();
    }
    match built_with.map(PathBuf::from) {
        Some(p) if p.exists() => p,
        _ => "python3".into(),
    }
}

/// Runs the driver to its end and reads the study it exported. SIGINT/SIGTERM received
/// meanwhile are passed on (the driver then stops its trials at a checkpoint and exits 0).
pub fn run(req: &Request, python: &Path) -> Result<Export, TuneError> {
    // Outside the study folder: a storage that does not open leaves that folder untouched.
    let error_file = std::env::temp_dir().join(format!("sipl-tune-error-{}", std::process::id()));
    let _ = std::fs::remove_file(&error_file);
    let _ = std::fs::remove_file(&req.export);
    let json = serde_json::to_string(req).expect("the request serialises");
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(SCRIPT).arg(json).env("SIPL_TUNE_ERROR_FILE", &error_file);
    die_with_parent(&mut cmd);
    let signalled = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, signalled.clone(), sig as usize)
            .map_err(|e| TuneError::Io(format!("signal handler: {e}")))?;
    }
    let mut child = cmd.spawn().map_err(|e| {
        TuneError::Driver(format!(
            "cannot start {} for Optuna: {e}; run `make setup`, or point SIPL_PYTHON at a Python with python/requirements.txt installed",
            python.display()
        ))
    })?;
    let mut passed_on = 0;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| TuneError::Io(e.to_string()))? {
            break status;
        }
        let sig = signalled.load(Ordering::Relaxed);
        if sig != 0 && sig != passed_on {
            // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, sig as libc::c_int) };
            passed_on = sig;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Ok(message) = std::fs::read_to_string(&error_file) {
        let _ = std::fs::remove_file(&error_file);
        return Err(TuneError::Driver(message.trim().to_owned()));
    }
    if !status.success() {
        return Err(TuneError::Driver(format!(
            "the Optuna driver ({}) failed ({status}); its messages are above",
            python.display()
        )));
    }
    read_export(&req.export)
}

/// Reads the study the driver exported.
pub fn read_export(path: &Path) -> Result<Export, TuneError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TuneError::Driver(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| TuneError::Driver(format!("{}: {e}", path.display())))
}

/// The child gets SIGTERM when this process dies (Linux), so that no driver outlives its
/// tuner.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
