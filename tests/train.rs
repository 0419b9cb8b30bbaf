//! `sipl train` end to end on a tiny dataset: exact resume after kill -9, SIGINT, NaN, and the
//! bad inputs the training issue lists.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::{
    checkpoint_dirs, run, s, setup_tiny_training as setup, sipl, sipl_with_faults, text,
    train_in as train, wait_for_checkpoint,
};

fn spawn(args: &[String], run_dir: &Path) -> Child {
    sipl().args(args).args(["--run-dir", s(run_dir)]).spawn().expect("spawn")
}

#[test]
fn killed_at_random_moments_then_resumed_equals_an_uninterrupted_run_bit_for_bit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let reference = tmp.path().join("reference");
    let (ok, stdout, err) = train(&args, &reference, &[]);
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("done after 12 steps"), "{stdout}");
    let want = std::fs::read(reference.join("final.safetensors")).expect("final");
    for (k, delay_ms) in [(0, 0u64), (1, 170)] {
        let run_dir = tmp.path().join(format!("killed{k}"));
        let mut child = spawn(&args, &run_dir);
        wait_for_checkpoint(&mut child, &run_dir, 2 + 2 * k);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert!(!run_dir.join("final.safetensors").exists());
        let (ok, stdout, err) = train(&args, &run_dir, &[]);
        assert!(ok, "{stdout}{err}");
        assert!(err.contains("resuming from"), "{err}");
        let got = std::fs::read(run_dir.join("final.safetensors")).expect("final");
        assert!(got == want, "kill {k}: resumed weights differ from the uninterrupted run");
        let lines = sipl_train::trainer::metrics::read(&run_dir);
        let steps: Vec<u64> =
            sipl_train::trainer::metrics::train_lines(&lines).map(|t| t.step).collect();
        assert_eq!(steps, (1..=12).collect::<Vec<_>>(), "one metrics line per step, no repeats");
    }
    for f in ["config.toml", "best.safetensors"] {
        assert!(reference.join(f).exists(), "{f}");
    }
}

#[test]
fn sigint_finishes_the_step_checkpoints_and_exits_zero() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    let mut child = sipl()
        .args(&args)
        .args(["--run-dir", s(&run_dir)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for_checkpoint(&mut child, &run_dir, 2);
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill").success()
    );
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}: {stdout}", out.status);
    if !stdout.contains("done after 12 steps") {
        assert!(stdout.contains("stopped, checkpoint written"), "{stdout}");
        let (ok, stdout, err) = train(&args, &run_dir, &[]);
        assert!(ok && stdout.contains("done after 12 steps"), "{stdout}{err}");
    }
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    let out = sipl_with_faults(&[("SIPL_FAULT_NAN_AT_STEP", "5")])
        .args(&args)
        .args(["--run-dir", s(&run_dir)])
        .output()
        .expect("run");
    let (ok, _, err) = text(out);
    assert!(!ok);
    assert!(err.contains("loss is NaN at step 5"), "{err}");
    let ckpts = checkpoint_dirs(&run_dir);
    assert!(ckpts.contains(&"step-000000004".to_owned()), "{ckpts:?}");
    assert!(
        ckpts.iter().all(|c| c <= &"step-000000004".to_owned()),
        "nothing after the NaN: {ckpts:?}"
    );
}

#[test]
fn the_users_binary_has_no_fault_hooks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    // The config schema has no fault key ...
    let (ok, _, err) = train(&args, &run_dir, &["--set", "run.fault_nan_at_step=1"]);
    assert!(!ok && err.contains("fault_nan_at_step"), "{err}");
    assert!(!run_dir.exists(), "refused before the run directory was made");
    // ... and the harness's variables do nothing to `sipl`.
    let out = sipl()
        .args(&args)
        .args(["--run-dir", s(&run_dir), "--set", "optim.max_steps=2"])
        .env("SIPL_FAULT_NAN_AT_STEP", "1")
        .env("SIPL_FAULT_KILL_IN_CHECKPOINT", "1")
        .output()
        .expect("run");
    let (ok, stdout, err) = text(out);
    assert!(ok && stdout.contains("done after 2 steps"), "{stdout}{err}");
}

#[test]
fn bad_configs_and_paths_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (config, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    let (ok, _, err) = train(&args, &run_dir, &["--set", "optim.momentum=0.9"]);
    assert!(!ok && err.contains("momentum"), "{err}");
    let (ok, _, err) = train(&args, &run_dir, &["--set", "optim.batch_size=0"]);
    assert!(!ok && err.contains("optim.batch_size"), "{err}");
    let (ok, _, err) = train(&args, &run_dir, &["--set", "data.path=/no/such/dataset"]);
    assert!(!ok && err.contains("/no/such/dataset"), "{err}");
    assert!(!run_dir.exists(), "no work before the data is found");
    let (ok, _, err) = run(&["train", "--config", "/no/config.toml", "--run-dir", s(&run_dir)]);
    assert!(!ok && err.contains("/no/config.toml"), "{err}");
    let _ = config;

    let (ok, _, err) = train(&args, &run_dir, &["--set", "optim.max_steps=2"]);
    assert!(ok, "{err}");
    let (ok, _, err) = train(&args, &run_dir, &["--set", "optim.lr=1e-3"]);
    assert!(!ok && err.contains("another configuration") && err.contains("lr"), "{err}");
    let (ok, stdout, err) = train(
        &args,
        &run_dir,
        &["--set", "optim.lr=1e-3", "--set", "optim.max_steps=4", "--force"],
    );
    assert!(ok && stdout.contains("resumed from step 2"), "{stdout}{err}");
}

#[test]
fn a_run_refuses_to_resume_on_a_replaced_dataset_naming_both() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let (run_dir, data) = (tmp.path().join("run"), tmp.path().join("ds"));
    let four = ["--set", "optim.max_steps=4"];
    let (ok, _, err) = train(&args, &run_dir, &four);
    assert!(ok, "{err}");
    let first = sipl_shards::identity(&data).expect("identity");
    let record = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("data.json")).expect("data.json"))
            .expect("json")
    };
    assert_eq!(record(&run_dir)["identity"], first.as_str());
    assert_eq!(record(&run_dir)["images"], 48);

    // data.path re-ingested with other images (and one image fewer).
    let other = tmp.path().join("other-images");
    let (ok, _, err) = run(&[
        "synth",
        "--out",
        s(&other),
        "--classes",
        "2",
        "--per-class",
        "23",
        "--size",
        "40",
        "--seed",
        "7",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&other),
        "--out",
        s(&data),
        "--resize",
        "32",
        "--crop",
        "32",
        "--force",
    ]);
    assert!(ok, "{err}");
    let second = sipl_shards::identity(&data).expect("identity");
    assert_ne!(first, second);
    let snapshot = |run: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = ["config.toml", "data.json", "metrics.jsonl"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(run.join(f)).expect("run file")))
            .collect();
        files.push(("checkpoints".into(), checkpoint_dirs(run).join(",").into_bytes()));
        files
    };
    let before = snapshot(&run_dir);
    let (ok, stdout, err) = train(&args, &run_dir, &four);
    assert!(!ok, "resumed on another dataset: {stdout}");
    for part in
        ["was trained on another dataset", &first, &second, "48 images", "46 images", "--force"]
    {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    assert_eq!(snapshot(&run_dir), before, "a refused resume changes nothing");

    let (ok, stdout, err) = train(&args, &run_dir, &[&four[..], &["--force"]].concat());
    assert!(ok && stdout.contains("resumed from step 4"), "{stdout}{err}");
    assert!(err.contains("continuing on another dataset") && err.contains(&second), "{err}");
    assert_eq!(record(&run_dir)["identity"], second.as_str());
}

#[test]
fn a_corrupted_newest_checkpoint_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    let (ok, _, err) = train(&args, &run_dir, &["--set", "optim.max_steps=4"]);
    assert!(ok, "{err}");
    let newest = run_dir.join("checkpoints/step-000000004/model.safetensors");
    let mut bytes = std::fs::read(&newest).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&newest, bytes).expect("write");
    let (ok, stdout, err) = train(&args, &run_dir, &["--set", "optim.max_steps=6"]);
    assert!(ok, "{stdout}{err}");
    assert!(
        err.contains("skipping damaged checkpoint")
            && err.contains("model.safetensors does not match"),
        "{err}"
    );
    assert!(err.contains("step-000000002"), "{err}");
    assert!(stdout.contains("resumed from step 2"), "{stdout}");
}

#[test]
fn speed_benchmarks_channels_last_and_half_batches_run_on_cpu() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (config, args) = setup(tmp.path());
    let (ok, stdout, err) = run(&[
        "bench", "step", "--device", "cpu", "--batch", "2", "--size", "32", "--steps", "1",
        "--warmup", "0",
    ]);
    assert!(ok && stdout.contains("images/s"), "{stdout}{err}");
    // 5 batches an epoch: 2 untimed steps, then windows of 2 steps, the second across the
    // epoch's end; each window's rate, the total, and a warning for the second.
    let bench = ["bench", "train", "--config", s(&config), "--set", "optim.epochs=1"];
    let (ok, stdout, err) =
        run(&[&bench[..], &["--warmup-steps", "1", "--steps", "3", "--window", "2"]].concat());
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("window 1 (steps 3-4): ") && stdout.contains("window 2 (steps 5-6): "));
    assert!(!stdout.contains("window 3"), "{stdout}");
    assert!(stdout.contains("samples/s (32 samples in "), "{stdout}");
    assert!(stdout.contains("4 timed steps after 2 untimed, windows of 2"), "{stdout}");
    assert!(stdout.contains("(steps 5-6): ") && stdout.contains("validation included"), "{stdout}");
    assert!(err.contains("warning: an epoch ended inside timed window(s) 2:"), "{err}");
    let (ok, stdout, err) = train(
        &args,
        &tmp.path().join("cl"),
        &["--set", "run.channels_last=true", "--set", "optim.max_steps=2"],
    );
    assert!(ok && stdout.contains("done after 2 steps"), "{stdout}{err}");
    // Half-width batches: widened on the device, recorded in the run's config.
    let run_dir = tmp.path().join("bf16");
    let sets = ["--set", "data.batch_dtype=bf16", "--set", "optim.max_steps=2"];
    let (ok, stdout, err) = train(&args, &run_dir, &sets);
    assert!(ok && stdout.contains("done after 2 steps"), "{stdout}{err}");
    let saved = std::fs::read_to_string(run_dir.join("config.toml")).expect("config");
    assert!(saved.contains("batch_dtype = \"bf16\""), "{saved}");
}

#[test]
fn bf16_autocast_is_refused_on_cpu() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let (ok, _, err) = train(&args, &tmp.path().join("amp"), &["--set", "run.amp=true"]);
    assert!(!ok && err.contains("run.amp") && err.contains("exact fp32"), "{err}");
}

#[test]
fn export_writes_the_encoder_of_a_run_and_refuses_a_run_without_weights() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    let out = tmp.path().join("encoder.safetensors");
    let (ok, _, err) = run(&["export", "--run", s(&run_dir), "--out", s(&out)]);
    assert!(!ok && err.contains("not a directory"), "{err}");
    let (ok, _, err) = train(&args, &run_dir, &["--set", "optim.max_steps=2"]);
    assert!(ok, "{err}");
    let (ok, stdout, err) =
        run(&["export", "--run", s(&run_dir), "--which", "final", "--out", s(&out)]);
    assert!(ok && stdout.contains("122 tensors"), "{stdout}{err}");
    let (ok, stdout, err) = run(&["export", "--run", s(&run_dir), "--out", s(&out)]);
    assert!(ok && stdout.contains("best.safetensors"), "{stdout}{err}");

    let parquet = tmp.path().join("emb.parquet");
    let data = tmp.path().join("ds");
    let (ok, stdout, err) = run(&[
        "embed",
        "--run",
        s(&run_dir),
        "--data",
        s(&data),
        "--out",
        s(&parquet),
        "--input-size",
        "32",
        "--device",
        "cpu",
    ]);
    assert!(ok && stdout.contains("48 embeddings"), "{stdout}{err}");
    let check = "import sys, pyarrow.parquet as pq, math\n\
                 t = pq.read_table(sys.argv[1])\n\
                 assert t.column_names == ['id', 'path', 'label', 'embedding'], t.column_names\n\
                 e = t['embedding'].to_pylist()\n\
                 assert len(e) == 48 and all(len(v) == 1000 and all(map(math.isfinite, v)) for v in e)\n";
    let (ok, _, err) =
        common::text(common::python().args(["-c", check, s(&parquet)]).output().expect("python"));
    assert!(ok, "{err}");
}

#[test]
fn sigterm_or_sigint_ends_an_unanswered_epoch_handshake_checkpointed_with_exit_zero() {
    use std::io::BufRead;
    for sig in ["-TERM", "-INT"] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (_, args) = setup(tmp.path());
        let run_dir = tmp.path().join("run");
        let mut child = sipl()
            .args(&args)
            .args(["--run-dir", s(&run_dir), "--epoch-handshake"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // The answer never comes: standard input stays open.
        let _stdin = child.stdin.take();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the first epoch's line");
        assert!(line.starts_with('{'), "{line}");
        let pid = child.id().to_string();
        assert!(
            std::process::Command::new("kill").args([sig, &pid]).status().expect("kill").success()
        );
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{sig}: still waiting for stdin");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest");
        assert!(status.success(), "{sig}: exit {status:?}: {rest}");
        assert!(rest.contains("stopped, checkpoint written"), "{sig}: {rest}");
        assert!(!checkpoint_dirs(&run_dir).is_empty(), "{sig}: no checkpoint");
    }
}

#[test]
fn a_resume_names_the_metrics_lines_its_checkpoint_accounts_for_and_the_file_lacks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    let (ok, stdout, err) = train(&args, &run_dir, &["--set", "optim.max_steps=8"]);
    assert!(ok, "{stdout}{err}");
    assert!(!err.contains("lacks"), "{err}");
    // As a power cut before the lines reached the disk would leave it (no longer possible:
    // the lines are synced before each checkpoint), or as a hand that removed them.
    let path = run_dir.join("metrics.jsonl");
    use sipl_train::trainer::metrics::{MetricsLine, read};
    let kept: String = read(&run_dir)
        .iter()
        .filter(|l| matches!(l, MetricsLine::Train(t) if t.step <= 2))
        .map(|l| format!("{}\n", l.to_json()))
        .collect();
    std::fs::write(&path, kept).expect("write");
    let (ok, stdout, err) = train(&args, &run_dir, &[]);
    assert!(ok, "{stdout}{err}");
    assert!(
        err.contains("lacks the validation of epoch(s) 1 and the training lines after step 2"),
        "{err}"
    );
}
