//! A study folder's identity, end to end: a folder copied, moved or resumed from another
//! folder uses its own storage and its own data; a folder belongs to one study (name and
//! storage) and refuses another; tuners joining a shared study must share its base config and
//! evaluation; every (seed, trials so far) pair seeds its own draws; a space naming one key
//! twice is refused. Most studies here run no trial (`--timeout 0.001`); one trains two.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{s, sipl, text};

/// A 48-image set and a base config of 2 epochs of 5 steps; a one-key space.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let (config, _) = common::setup_tiny_training(dir);
    let base = std::fs::read_to_string(&config)
        .expect("config")
        .replace("epochs = 3\nmax_steps = 12\n", "epochs = 2\n")
        .replace("checkpoint_every = 2\n", "checkpoint_every = 1000\n")
        .replace("log_every = 1\n", "log_every = 5\n");
    std::fs::write(&config, base).expect("base");
    let space = dir.join("space.toml");
    std::fs::write(&space, LR).expect("space");
    (config, space)
}

const LR: &str = "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\nlog = true\n";

/// `sipl tune ARGS -q` run from `cwd`: (success, stdout, stderr).
fn tune_in(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = sipl().current_dir(cwd).arg("tune").args(args).arg("-q").output().expect("spawn");
    text(out)
}

/// Starts a study that runs no trial (its deadline passes before the first).
fn start(cwd: &Path, base: &Path, space: &Path, study: &Path, extra: &[&str]) {
    let mut args = vec!["--config", s(base), "--space", s(space), "--study", s(study)];
    args.extend(["--timeout", "0.001"]);
    args.extend(extra);
    let (ok, out, err) = tune_in(cwd, &args);
    assert!(ok, "{out}\n{err}");
}

/// The optim.lr cell of each row of trials.csv.
fn lrs(study: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(study.join("trials.csv")).expect("trials.csv");
    let mut lines = text.lines();
    let col = lines.next().expect("header").split(',').position(|h| h == "optim.lr").expect("lr");
    lines.map(|l| l.split(',').nth(col).expect("cell").to_owned()).collect()
}

#[test]
fn a_copied_folder_resumed_elsewhere_keeps_to_its_own_storage_and_draws_anew() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, space) = setup(dir.path());
    let study = dir.path().join("study");
    let flags = ["--sampler", "random", "--pruner", "none"];
    let mut args = vec!["--config", s(&base), "--space", s(&space), "--study", s(&study)];
    args.extend(flags.iter().chain(&["--seed", "1", "--trials", "1"]));
    let (ok, out, err) = tune_in(dir.path(), &args);
    assert!(ok, "{out}\n{err}");
    let copy = dir.path().join("copy");
    let cp = Command::new("cp").args(["-a", s(&study), s(&copy)]).status().expect("cp");
    assert!(cp.success());
    // The copy resumed from another folder, with a seed that plus the trials so far is the
    // first tuner's: trial 1 would be trial 0 drawn again.
    let elsewhere = tempfile::tempdir().expect("tmp");
    let mut args = vec!["--study", s(&copy)];
    args.extend(flags.iter().chain(&["--seed", "0", "--trials", "2"]));
    let (ok, out, err) = tune_in(elsewhere.path(), &args);
    assert!(ok, "{out}\n{err}");
    // The original's study is as it was: one trial, in its own study.db.
    let (ok, out, err) = tune_in(elsewhere.path(), &["--study", s(&study), "--report"]);
    assert!(ok && out.contains(": 1 trial:"), "{out}\n{err}");
    let drawn = lrs(&copy);
    assert_eq!(drawn.len(), 2, "{drawn:?}");
    assert_ne!(drawn[0], drawn[1], "trial 1 drew trial 0's values again");
    // Moved, the original still finds its storage.
    let moved = dir.path().join("moved");
    std::fs::rename(&study, &moved).expect("mv");
    let (ok, out, err) = tune_in(elsewhere.path(), &["--study", s(&moved), "--report"]);
    assert!(ok && out.contains(": 1 trial:"), "{out}\n{err}");
}

#[test]
fn a_folder_belongs_to_one_study_and_refuses_another_name_or_storage() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, space) = setup(dir.path());
    let study = dir.path().join("study");
    start(dir.path(), &base, &space, &study, &[]);
    let other_db = format!("sqlite:///{}", s(&dir.path().join("other.db")));
    let cases: [(&[&str], &str); 4] = [
        (&["--study-name", "other"], "holds the study \"study\""),
        (&["--study-name", "other", "--report"], "holds the study \"study\""),
        (&["--storage", other_db.as_str()], "a study on sqlite:///"),
        (&["--storage", other_db.as_str(), "--report"], "needs a folder of its own"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["--study", s(&study), "--timeout", "0.001"];
        if extra.contains(&"--report") {
            args.truncate(2);
        }
        args.extend(extra);
        let (ok, out, err) = tune_in(dir.path(), &args);
        assert!(!ok && err.contains(want), "{extra:?}: {out}\n{err}");
    }
    assert!(!dir.path().join("other.db").exists(), "the other storage was not touched");
    // Its own storage, spelled another way, is the same study.
    let own = format!("sqlite:///{}/../study/study.db", s(&study));
    let (ok, out, err) =
        tune_in(dir.path(), &["--study", s(&study), "--storage", &own, "--report"]);
    assert!(ok, "{out}\n{err}");
    // A study.json that cannot be read, or whose storage held a password (not saved), is no
    // licence to open the folder's study.db in its place.
    let json = study.join("study.json");
    let saved = std::fs::read_to_string(&json).expect("study.json");
    assert!(saved.contains("sqlite:///$STUDY/study.db"), "saved relative to the folder: {saved}");
    for (text, want) in [
        ("{\"storage\": nul", "not a study's settings"),
        ("{\"storage\": null, \"study_name\": \"study\"}", "held a password"),
        ("{\"storage\": \"postgresql://u:***@h/db\", \"study_name\": \"study\"}", "pass --storage"),
    ] {
        std::fs::write(&json, text).expect("write");
        let (ok, out, err) = tune_in(dir.path(), &["--study", s(&study), "--trials", "1"]);
        assert!(!ok && err.contains(want), "{text}: {out}\n{err}");
    }
    // A study.json of an earlier sipl, in a copy: the original's study.db, by absolute path.
    let original = format!("sqlite:///{}", s(&dir.path().join("original/study.db")));
    std::fs::write(&json, format!("{{\"storage\": {original:?}, \"study_name\": \"study\"}}"))
        .expect("write");
    let (ok, _, err) = tune_in(dir.path(), &["--study", s(&study), "--report"]);
    assert!(!ok && err.contains("another folder's study.db"), "{err}");
    let own = format!("sqlite:///{}", s(&study.join("study.db")));
    let (ok, out, err) =
        tune_in(dir.path(), &["--study", s(&study), "--storage", &own, "--report"]);
    assert!(ok, "{out}\n{err}");
    let saved = std::fs::read_to_string(&json).expect("study.json");
    assert!(saved.contains("$STUDY/study.db"), "{saved}");
}

#[test]
fn relative_paths_are_fixed_when_the_study_starts_not_read_from_each_commands_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, _) = setup(dir.path());
    // The dataset, the monitor's set, a searched dataset and the storage, all relative.
    let text = std::fs::read_to_string(&base).expect("base");
    let text = text.replace(s(&dir.path().join("ds")), "ds")
        + "[monitor]\ndata = \"ds\"\ninput_size = 32\nk = 3\nstratified = 0.25\nbatch = 16\n";
    std::fs::write(&base, text).expect("base");
    let space = dir.path().join("space.toml");
    let searched = "[data.path]\ntype = \"categorical\"\nchoices = [\"ds\"]\n";
    std::fs::write(&space, format!("{LR}{searched}")).expect("space");
    let study = dir.path().join("study");
    let monitor = ["--objective", "monitor", "--storage", "sqlite:///rel.db"];
    start(dir.path(), &base, &space, &study, &monitor);
    assert!(dir.path().join("rel.db").exists());
    // From another folder: the same storage, the same data, nothing read from here.
    let elsewhere = tempfile::tempdir().expect("tmp");
    let args = ["--study", s(&study), "--objective", "monitor", "--timeout", "0.001"];
    let (ok, out, err) = tune_in(elsewhere.path(), &args);
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = tune_in(elsewhere.path(), &["--study", s(&study), "--report"]);
    assert!(ok && out.contains(": 0 trials:"), "{out}\n{err}");
    assert!(std::fs::read_dir(elsewhere.path()).expect("ls").next().is_none(), "nothing here");
}

#[test]
fn tuners_joining_a_shared_study_share_its_base_config_and_evaluation() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, space) = setup(dir.path());
    let shared = format!("journal:{}", s(&dir.path().join("shared.log")));
    let ds = dir.path().join("ds");
    let join = ["--storage", &shared, "--study-name", "shared"];
    let down = ["--objective", "downstream", "--eval-data", s(&ds), "--eval-arg=--epochs=2"];
    let first: Vec<&str> = join.iter().chain(&down).copied().collect();
    start(dir.path(), &base, &space, &dir.path().join("a"), &first);
    let other_lr: Vec<&str> =
        first.iter().copied().chain(["--set", "optim.batch_size=16"]).collect();
    let other_eval: Vec<&str> = join.iter().chain(&down[..4]).copied().collect();
    let b = dir.path().join("b");
    for (extra, want) in [
        (&other_lr, "another base config (optim.batch_size: 8 -> 16)"),
        (&other_eval, "scores its trials on another evaluation"),
    ] {
        let mut args = vec!["--config", s(&base), "--space", s(&space), "--timeout", "0.001"];
        args.extend(["--study", s(&b)]);
        args.extend(extra.iter());
        let (ok, out, err) = tune_in(dir.path(), &args);
        assert!(!ok && err.contains(want), "{extra:?}: {out}\n{err}");
    }
}

#[test]
fn a_space_naming_one_key_twice_or_a_key_fixed_by_set_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, _) = setup(dir.path());
    let study = dir.path().join("study");
    let twice = format!("{LR}[\"optim.lr\"]\ntype = \"float\"\nlow = 1e-4\nhigh = 1e-2\n");
    for (text, extra, want) in [
        (twice.as_str(), &[][..], "optim.lr: searched twice"),
        (LR, &["--set", "optim.lr=0.0002"][..], "optim.lr: searched here and fixed by --set"),
        (LR, &["--storage", "sqlite:///:memory:"][..], "in-memory database"),
    ] {
        let space = dir.path().join("space.toml");
        std::fs::write(&space, text).expect("space");
        let mut args = vec!["--config", s(&base), "--space", s(&space), "--study", s(&study)];
        args.extend(extra);
        let (ok, out, err) = tune_in(dir.path(), &args);
        assert!(!ok && err.contains(want), "{text:?} {extra:?}: {out}\n{err}");
        assert!(!study.exists(), "nothing written");
    }
}

#[test]
fn a_study_whose_storage_was_lost_does_not_take_over_the_folders_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, space) = setup(dir.path());
    let study = dir.path().join("study");
    start(dir.path(), &base, &space, &study, &[]);
    // A run of trial 0 in the folder, and its study.db gone: a new study would number its
    // first trial 0 and record that run's accuracy as its own.
    std::fs::create_dir_all(study.join("trials/0000")).expect("mkdir");
    std::fs::write(study.join("trials/0000/metrics.jsonl"), "").expect("run");
    std::fs::remove_file(study.join("study.db")).expect("rm");
    let (ok, out, err) = tune_in(dir.path(), &["--study", s(&study), "--trials", "1"]);
    assert!(!ok && err.contains("is the run of a trial 0 that study"), "{out}\n{err}");
}
