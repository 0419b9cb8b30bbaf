//! `sipl tune --config BASE.toml --space SPACE.toml --study DIR [--trials N] …`: a
//! hyper-parameter search, every trial an ordinary resumable `sipl train` run (see the
//! `sipl_tune` crate). Everything is checked here before the study is touched.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use sipl_limits::{Ints, RangeError, Reals};
use sipl_train::config::TrainConfig;
use sipl_tune::driver::{self, Mode, Request};
use sipl_tune::storage::DEFAULT_FILE;
use sipl_tune::{Objective, Pruner, Sampler, Space, report, study};

/// `--trials`: trials numbered 0 … N − 1, over every tuner of the study.
const TRIALS: Ints = Ints::new(1, 100_000);
/// `--timeout` in seconds: up to a year.
const TIMEOUT_S: Reals = Reals::open_closed(0.0, 365.0 * 86_400.0);

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    sipl tune --config configs/tune/smoke-base.toml --space configs/tune/smoke.toml --study studies/smoke --trials 6\n  \
    sipl tune --config configs/siplv1.toml --space configs/tune/pretext.toml --study studies/siplv1 \\\n    \
      --storage postgresql://sipl@db-host:5432/optuna --devices cuda:0,cuda:1   (on each machine)\n  \
    sipl tune --study studies/smoke --report\n\
    Live view: optuna-dashboard sqlite:///studies/smoke/study.db\n\
    Rerunning the same command (or just `sipl tune --study DIR --trials N`) resumes the study:\n\
    trials left running (a killed tuner, a lost machine) resume from their last checkpoint.")]
pub struct TuneArgs {
    /// The base config every trial starts from (see configs/). Needed to start a study; a
    /// resume without it uses the one saved in the study folder.
    #[arg(long, requires = "space")]
    config: Option<PathBuf>,
    /// Override a base config value for every trial, as in `sipl train`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
    /// The search space: TOML tables keyed by config keys, e.g. [optim.lr] type = "float",
    /// low = 1e-5, high = 1e-3, log = true; type = "int" (log or power_of_two = true);
    /// type = "categorical", choices = […]. See configs/tune/. Needed with --config.
    #[arg(long, requires = "config")]
    space: Option<PathBuf>,
    /// The study folder: space.toml, base.toml, study.db (default storage), trials/NNNN/ run
    /// directories, trials.csv, best.toml, history.png, importances.png.
    #[arg(long)]
    study: PathBuf,
    /// The study's name in the storage [default: the name the folder's study was run with,
    /// else the folder's name]. A folder holds one study: another name on it is refused.
    #[arg(long)]
    study_name: Option<String>,
    /// An Optuna storage: sqlite:///FILE, postgresql://USER@HOST:PORT/DB, mysql://…, or
    /// journal:FILE (a file on a shared file system) [default: the storage the folder's study
    /// was run with, else sqlite:///STUDY/study.db]. A relative file is read from the current
    /// folder; one inside the study folder moves with it. Tuners on several machines pointed
    /// at one storage and study name share the study; another storage on a folder is refused.
    #[arg(long)]
    storage: Option<String>,
    /// The study's total of trials, in [1, 100000]: trials 0 … N − 1 run, over every tuner of
    /// the study; failed and pruned trials count. Raise it to go on with a finished study.
    #[arg(long, default_value_t = 20)]
    trials: u64,
    /// Start no trial this long after the tuner started: 90s, 30m, 12h, 2d (running trials
    /// finish).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<f64>,
    /// pretext: the best pretext validation accuracy of the trial's run; downstream: the
    /// best held-out accuracy of `sipl eval downstream --mode cached` on --eval-data; monitor:
    /// the best kNN accuracy of the run's monitor (the base config's [monitor]), reported
    /// after every epoch it measures so the pruner acts on it.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Pretext)]
    objective: ObjectiveArg,
    /// The labelled dataset of the downstream objective.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// An extra flag for `sipl eval downstream` (repeat), e.g. --eval-arg=--epochs=30.
    #[arg(long = "eval-arg", value_name = "FLAG", allow_hyphen_values = true)]
    eval_args: Vec<String>,
    /// Stops unpromising trials after an epoch, on their pretext validation accuracy (with
    /// --objective monitor: on the monitor's kNN accuracy).
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
    /// No progress lines (trial started, finished, pruned, failed); the summary stays.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ObjectiveArg {
    Pretext,
    Downstream,
    Monitor,
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
    let own = super::outputs::Out::Own(super::outputs::Owner::Study, &[]);
    super::outputs::output_dir("--study", &a.study, own, &super::outputs::Reads::new())?;
    if let Some(url) = &a.storage {
        sipl_tune::storage::check(url)?;
    }
    // A folder belongs to one study; its storage file, when inside it, travels with it.
    let study::Identity { storage, study_name } =
        study::identity(&a.study, a.storage.as_deref(), a.study_name.as_deref())?;
    let default_storage = sipl_tune::storage::default_storage(&a.study);
    let starting = a.config.is_some();
    if !starting && !a.study.join(study::SPACE).is_file() {
        anyhow::bail!(
            "--study {}: holds no study; start one with --config BASE.toml --space SPACE.toml",
            a.study.display()
        );
    }
    let own_storage = sipl_tune::storage::same(&storage, &default_storage);
    if a.report && own_storage && !a.study.join(DEFAULT_FILE).is_file() {
        anyhow::bail!(
            "--study {}: has no study.db; if its study ran on another storage, pass that --storage",
            a.study.display()
        );
    }
    let (space, base_text) = match starting {
        true => prepare(&a)?,
        false => saved_study(&a.study)?,
    };
    let base = TrainConfig::parse(&base_text, &[])?;
    if !a.report {
        check_before_trials(&a, &space, &base)?;
    }
    let study_dir = std::path::absolute(&a.study)?;
    let saved = study::Identity { storage: storage.clone(), study_name: study_name.clone() }
        .to_save(&study_dir);
    // SQLite's file needs its folder; any other storage is opened before the folder is made.
    if saved.storage.as_deref().is_some_and(|s| s.contains(sipl_tune::storage::FOLDER)) {
        std::fs::create_dir_all(&a.study)?;
    }
    let request = Request {
        mode: if a.report { Mode::Report } else { Mode::Tune },
        sipl: std::env::current_exe()?,
        study_dir: study_dir.clone(),
        study_name,
        storage,
        base_config: study_dir.join(study::BASE),
        space: space.clone(),
        trials: a.trials,
        timeout_s: a.timeout,
        objective: match a.objective {
            ObjectiveArg::Pretext => Objective::Pretext,
            ObjectiveArg::Downstream => Objective::Downstream,
            ObjectiveArg::Monitor => Objective::Monitor,
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
        base_text: base_text.clone(),
        space_toml: starting.then(|| space.to_toml()),
        base_toml: starting.then(|| base_text.clone()),
        saved,
        export: study_dir.join(study::EXPORT),
    };
    // The venv's Python, found by the build script next to the libtorch it links.
    let python = driver::python(option_env!("SIPL_VENV_PYTHON"));
    let export = driver::run(&request, &python)?;
    let written = report::write(&a.study, &export, &space, &base_text)?;
    let count = |s: &str| export.trials.iter().filter(|t| t.state == s).count();
    let n = export.trials.len();
    println!(
        "{}: {n} trial{}: {} complete, {} pruned, {} failed, {} to resume",
        a.study.display(),
        if n == 1 { "" } else { "s" },
        count("COMPLETE"),
        count("PRUNED"),
        count("FAIL"),
        count("INTERRUPTED") + count("RUNNING") + count("WAITING"),
    );
    let session = export.session.unwrap_or_default();
    if session.trials > 0 {
        println!(
            "this tuner: {} trials in {:.1} s, of which their runs {:.1} s: {:.2} s per trial beyond the runs",
            session.trials,
            session.wall_s,
            session.run_s,
            (session.wall_s - session.run_s) / session.trials as f64
        );
    } else if !a.report && n as u64 >= a.trials {
        println!("the study has its {} trials: raise --trials to run more", a.trials);
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
    if session.trials > 0 && session.failed == session.trials {
        let first = export.trials.iter().find_map(|t| t.error.clone()).unwrap_or_default();
        anyhow::bail!("every trial this tuner ran failed; the first error: {first}");
    }
    Ok(())
}

/// Checks the flags, the base config and the space, and compares them with what the study
/// folder was started with; returns the space and the base config's text (saved once the
/// storage has opened).
fn prepare(a: &TuneArgs) -> anyhow::Result<(Space, String)> {
    let (Some(config_path), Some(space_path)) = (&a.config, &a.space) else {
        anyhow::bail!("--config and --space go together");
    };
    let mut config = TrainConfig::load(config_path, &a.sets)?;
    let text = std::fs::read_to_string(config_path)?;
    let mut space = Space::load(space_path, &text, &a.sets)?;
    // Trials, resumes and other tuners may run from another folder: dataset paths are made
    // absolute once (those searched too).
    config.data.path = std::path::absolute(&config.data.path)?;
    if let Some(m) = config.monitor.as_mut() {
        m.data = std::path::absolute(&m.data)?;
    }
    space.absolute_paths()?;
    study::check(&a.study, &space, &config, a.force)?;
    Ok((space, config.to_toml()))
}

/// What would otherwise fail inside every trial, checked once before the first: the devices
/// exist here, every dataset a trial may train on exists, and `sipl eval downstream` accepts
/// the objective's flags.
fn check_before_trials(a: &TuneArgs, space: &Space, base: &TrainConfig) -> anyhow::Result<()> {
    check_devices(&a.devices, base)?;
    let mut paths = vec![base.data.path.clone()];
    for p in &space.params {
        if let sipl_tune::Param::Categorical { key, choices } = p
            && key == "data.path"
        {
            paths.extend(choices.iter().filter_map(|c| c.as_str()).map(PathBuf::from));
        }
    }
    for p in paths {
        if !p.join("dataset.json").is_file() {
            return Err(RangeError::new(
                "data.path",
                p.display(),
                "a dataset made by `sipl ingest`",
            )
            .note("it has no dataset.json; relative paths are read from the current folder")
            .into());
        }
    }
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
        (ObjectiveArg::Pretext | ObjectiveArg::Monitor, Some(_)) => {
            anyhow::bail!("--eval-data is for --objective downstream")
        }
        (ObjectiveArg::Pretext | ObjectiveArg::Monitor, None) if !a.eval_args.is_empty() => {
            anyhow::bail!("--eval-arg is for --objective downstream")
        }
        _ => {}
    }
    if a.objective == ObjectiveArg::Monitor {
        // The monitor set is opened, split and checked as each trial would.
        let Some(m) = &base.monitor else {
            anyhow::bail!(
                "--objective monitor needs a [monitor] section in the base config (monitor.data, a labelled dataset)"
            )
        };
        sipl_eval::monitor::KnnMonitor::new(m, base.run.device.resolve()?)?;
    }
    if a.objective == ObjectiveArg::Downstream {
        // The flags as the trials will pass them, parsed by the real `sipl eval` parser.
        #[derive(clap::Parser)]
        struct Probe {
            #[command(subcommand)]
            _eval: super::eval::EvalCommand,
        }
        let fixed = ["eval", "downstream", "--run", "RUN", "--data", "DATA", "--mode", "cached"];
        let args = fixed.iter().map(|s| s.to_string()).chain(a.eval_args.iter().cloned());
        if let Err(e) = <Probe as clap::Parser>::try_parse_from(args) {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            anyhow::bail!(
                "--eval-arg: `sipl eval downstream` refuses {:?}: {}",
                a.eval_args.join(" "),
                first.trim_start_matches("error: ")
            );
        }
    }
    Ok(())
}

/// `--devices` (else the base config's `run.device`): each a name `run.device` accepts, no
/// CUDA device twice, and each present on this machine.
fn check_devices(devices: &[String], base: &TrainConfig) -> anyhow::Result<()> {
    let named = match devices.is_empty() {
        true => vec![base.run.device.to_string()],
        false => devices.to_vec(),
    };
    let text = base.to_toml();
    let mut specs = Vec::new();
    for (i, d) in named.iter().enumerate() {
        let set = format!("run.device={:?}", d.trim());
        let config =
            TrainConfig::parse(&text, &[set]).map_err(|e| anyhow::anyhow!("--devices {d}: {e}"))?;
        if d.trim() != "cpu" && named[..i].iter().any(|o| o.trim() == d.trim()) {
            return Err(RangeError::new("--devices", named.join(","), "distinct devices")
                .note(format!("{d} is named twice; a device runs one trial at a time"))
                .into());
        }
        specs.push((d, config.run.device));
    }
    for (d, spec) in specs {
        spec.resolve().map_err(|e| anyhow::anyhow!("--devices {d}: {e}"))?;
    }
    Ok(())
}

/// The space and base config a study folder was started with (`--report`, a resume).
fn saved_study(dir: &Path) -> anyhow::Result<(Space, String)> {
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
