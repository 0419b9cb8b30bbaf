//! `sipl tune --config BASE.toml --space SPACE.toml --study DIR [--trials N] …`: a
//! hyper-parameter search, every trial an ordinary resumable `sipl train` run (see the
//! `sipl_tune` crate). Everything is checked here before the study is touched.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use sipl_limits::{Ints, RangeError, Reals};
use sipl_train::config::TrainConfig;
use sipl_tune::driver::{self, Mode, Request};
use sipl_tune::{Objective, Pruner, Sampler, Space, report, study};

/// `--trials`: trials numbered 0 … N − 1, over every tuner of the study.
const TRIALS: Ints = Ints::new(1, 100_000);
/// `--timeout` in seconds: up to a year.
const TIMEOUT_S: Reals = Reals::open_closed(0.0, 365.0 * 86_400.0);

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    sipl tune --config configs/smoke-siplv1.toml --space configs/tune/smoke.toml --study studies/smoke --trials 6\n  \
    sipl tune --config configs/siplv1.toml --space configs/tune/pretext.toml --study studies/siplv1 \\\n    \
      --storage postgresql://sipl@db-host/optuna --devices cuda:0,cuda:1   (on each machine)\n  \
    sipl tune --study studies/smoke --report\n\
    Live view: optuna-dashboard sqlite:///studies/smoke/study.db\n\
    Rerunning the same command resumes the study: trials left running (a killed tuner, a lost\n\
    machine) resume from their last checkpoint.")]
pub struct TuneArgs {
    /// The base config every trial starts from (see configs/).
    #[arg(long, required_unless_present = "report")]
    config: Option<PathBuf>,
    /// Override a base config value for every trial, as in `sipl train`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
    /// The search space: TOML tables keyed by config keys, e.g. [optim.lr] type = "float",
    /// low = 1e-5, high = 1e-3, log = true; type = "int" (log or power_of_two = true);
    /// type = "categorical", choices = […]. See configs/tune/.
    #[arg(long, required_unless_present = "report")]
    space: Option<PathBuf>,
    /// The study folder: space.toml, base.toml, study.db (default storage), trials/NNNN/ run
    /// directories, trials.csv, best.toml, history.png, importances.png.
    #[arg(long)]
    study: PathBuf,
    /// The study's name in the storage [default: the study folder's name].
    #[arg(long)]
    study_name: Option<String>,
    /// An Optuna storage: sqlite:///FILE, postgresql://USER@HOST:PORT/DB, mysql://…, or
    /// journal:FILE (a file on a shared file system) [default: sqlite:///STUDY/study.db].
    /// Tuners on several machines pointed at one storage share the study.
    #[arg(long)]
    storage: Option<String>,
    /// Trials to run, numbered 0 … N − 1 over every tuner of the study, in [1, 100000].
    #[arg(long, default_value_t = 20)]
    trials: u64,
    /// Start no trial after this long: 90s, 30m, 12h, 2d (running trials finish).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<f64>,
    /// pretext: the best pretext validation accuracy of the trial's run; downstream: the
    /// best held-out accuracy of `sipl eval downstream --mode cached` on --eval-data.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Pretext)]
    objective: ObjectiveArg,
    /// The labelled dataset of the downstream objective.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// An extra flag for `sipl eval downstream` (repeat), e.g. --eval-arg=--epochs=30.
    #[arg(long = "eval-arg", value_name = "FLAG", allow_hyphen_values = true)]
    eval_args: Vec<String>,
    /// Stops unpromising trials after an epoch, on their pretext validation accuracy.
    #[arg(long, value_enum, default_value_t = PrunerArg::Median)]
    pruner: PrunerArg,
    #[arg(long, value_enum, default_value_t = SamplerArg::Tpe)]
    sampler: SamplerArg,
    /// The sampler's seed (give each tuner of a shared study its own).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One trial at a time on each device, e.g. cuda:0,cuda:1 [default: the base config's
    /// run.device, one trial at a time].
    #[arg(long, value_delimiter = ',', value_name = "DEVICE,…")]
    devices: Vec<String>,
    /// Go on with another search space or base config than the study was started with.
    #[arg(long)]
    force: bool,
    /// Only write the reports (trials.csv, best.toml, figures) from the study; run nothing.
    #[arg(long, conflicts_with_all = ["config", "space", "sets"])]
    report: bool,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ObjectiveArg {
    Pretext,
    Downstream,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrunerArg {
    None,
    Median,
    Hyperband,
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplerArg {
    Tpe,
    Random,
}

/// `90s`, `30m`, `12h`, `2d` or plain seconds, in (0, 1 year].
fn parse_duration(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => return Err(format!("{s:?}: a number with s, m, h or d, e.g. 30m")),
    };
    let n: f64 =
        number.parse().map_err(|_| format!("{s:?}: a number with s, m, h or d, e.g. 30m"))?;
    let secs = n * scale;
    TIMEOUT_S.check("--timeout", secs).map_err(|e| e.to_string())?;
    Ok(secs)
}

pub fn run(a: TuneArgs) -> anyhow::Result<()> {
    TRIALS.check("--trials", a.trials)?;
    super::output_dir("--study", &a.study)?;
    let storage = a.storage.clone().unwrap_or_else(|| study::default_storage(&a.study));
    study::check_storage(&storage)?;
    let study_name = match &a.study_name {
        Some(n) => n.clone(),
        None => std::path::absolute(&a.study)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                anyhow::anyhow!("--study {}: name the study with --study-name", a.study.display())
            })?,
    };
    anyhow::ensure!(!study_name.trim().is_empty(), "--study-name: must not be empty");
    let (space, base_text) = match a.report {
        true => saved(&a.study)?,
        false => prepare(&a)?,
    };
    let base = TrainConfig::parse(&base_text, &[])?;
    let request = Request {
        mode: if a.report { Mode::Report } else { Mode::Tune },
        sipl: std::env::current_exe()?,
        study_dir: std::path::absolute(&a.study)?,
        study_name,
        storage,
        base_config: std::path::absolute(a.study.join(study::BASE))?,
        space: space.clone(),
        trials: a.trials,
        timeout_s: a.timeout,
        objective: match a.objective {
            ObjectiveArg::Pretext => Objective::Pretext,
            ObjectiveArg::Downstream => Objective::Downstream,
        },
        eval_data: a.eval_data.as_ref().map(std::path::absolute).transpose()?,
        eval_args: a.eval_args.clone(),
        pruner: match a.pruner {
            PrunerArg::None => Pruner::None,
            PrunerArg::Median => Pruner::Median,
            PrunerArg::Hyperband => Pruner::Hyperband,
        },
        sampler: match a.sampler {
            SamplerArg::Tpe => Sampler::Tpe,
            SamplerArg::Random => Sampler::Random,
        },
        seed: a.seed,
        devices: match a.devices.is_empty() {
            true => vec![None],
            false => a.devices.iter().map(|d| Some(d.trim().to_owned())).collect(),
        },
        epochs: base.optim.epochs,
        force: a.force,
        quiet: a.quiet,
        export: a.study.join(study::EXPORT),
    };
    // The venv's Python, found by the build script next to the libtorch it links.
    let python = driver::python(option_env!("SIPL_VENV_PYTHON"));
    let export = driver::run(&request, &python)?;
    let written = report::write(&a.study, &export, &space, &base_text)?;
    let count = |s: &str| export.trials.iter().filter(|t| t.state == s).count();
    println!(
        "{}: {} trials: {} complete, {} pruned, {} failed, {} to resume",
        a.study.display(),
        export.trials.len(),
        count("COMPLETE"),
        count("PRUNED"),
        count("FAIL"),
        count("INTERRUPTED") + count("RUNNING"),
    );
    if let Some(t) = export.session.filter(|t| t.trials > 0) {
        println!(
            "this tuner: {} trials in {:.1} s, of which their runs {:.1} s: {:.2} s per trial beyond the runs",
            t.trials,
            t.wall_s,
            t.run_s,
            (t.wall_s - t.run_s) / t.trials as f64
        );
    }
    match written.best {
        Some((n, v)) => println!(
            "best: trial {n}, {} objective {v:.4}; {} reruns it",
            export.objective,
            a.study.join(report::BEST).display()
        ),
        None => println!("no trial has finished yet"),
    }
    let files: Vec<String> = written.files.iter().map(|f| f.display().to_string()).collect();
    println!("wrote {}", files.join(", "));
    Ok(())
}

/// Checks the flags, the base config and the space, then saves them in the study folder;
/// returns the space and the saved base config's text.
fn prepare(a: &TuneArgs) -> anyhow::Result<(Space, String)> {
    let (Some(config_path), Some(space_path)) = (&a.config, &a.space) else {
        anyhow::bail!("--config and --space are needed to run trials");
    };
    let mut config = TrainConfig::load(config_path, &a.sets)?;
    let text = std::fs::read_to_string(config_path)?;
    check_devices(&a.devices, &text, &a.sets)?;
    match (a.objective, &a.eval_data) {
        (ObjectiveArg::Downstream, None) => {
            anyhow::bail!("--objective downstream needs --eval-data, a labelled dataset")
        }
        (ObjectiveArg::Downstream, Some(d)) if !d.join("dataset.json").is_file() => {
            return Err(RangeError::new(
                "--eval-data",
                d.display(),
                "a dataset made by `sipl ingest`",
            )
            .note("it has no dataset.json")
            .into());
        }
        (ObjectiveArg::Pretext, Some(_)) => {
            anyhow::bail!("--eval-data is for --objective downstream")
        }
        _ => {}
    }
    let space = Space::load(space_path, &text, &a.sets)?;
    // Trials may run from another folder: the data path is made absolute once.
    config.data.path = std::path::absolute(&config.data.path)?;
    study::prepare(&a.study, &space, &config, a.force)?;
    Ok((space, config.to_toml()))
}

/// `--devices`: each a device name `run.device` accepts, no CUDA device twice.
fn check_devices(devices: &[String], base: &str, sets: &[String]) -> anyhow::Result<()> {
    for (i, d) in devices.iter().enumerate() {
        let mut all = sets.to_vec();
        all.push(format!("run.device={:?}", d.trim()));
        TrainConfig::parse(base, &all).map_err(|e| anyhow::anyhow!("--devices {d}: {e}"))?;
        if d.trim() != "cpu" && devices[..i].iter().any(|o| o.trim() == d.trim()) {
            return Err(RangeError::new("--devices", devices.join(","), "distinct devices")
                .note(format!("{d} is named twice; a device runs one trial at a time"))
                .into());
        }
    }
    Ok(())
}

/// The space and base config a study folder was started with (`--report`).
fn saved(dir: &Path) -> anyhow::Result<(Space, String)> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            anyhow::anyhow!("--study {}: no {name} ({e}); is it a study folder?", dir.display())
        })
    };
    let base = read(study::BASE)?;
    let space = Space::parse(&read(study::SPACE)?, &base, &[])
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(study::SPACE).display()))?;
    Ok((space, base))
}
