//! Data-parallel `sipl train` end to end on CPU ranks (Gloo through c10d, the same code path
//! as NCCL on GPUs): one rank equals a single process bit for bit, two ranks write the run
//! directory once and resume exactly, a stop is agreed, and the bad inputs of the
//! several-GPU issue are refused clearly.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    checkpoint_dirs, final_weights, s, setup_tiny_training, sipl, sipl_with_faults, text, train_in,
    wait_for_checkpoint,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The loss-logging steps of a metrics file, in order.
fn logged_steps(run_dir: &Path) -> Vec<u64> {
    let lines = sipl_train::trainer::metrics::read(run_dir);
    sipl_train::trainer::metrics::train_lines(&lines).map(|t| t.step).collect()
}

/// One rank of a hand-launched run (as torchrun would start it).
fn rank(
    args: &[String],
    run_dir: &Path,
    rank: usize,
    world: usize,
    port: u16,
    extra: &[&str],
) -> Command {
    let mut c = sipl();
    c.args(args)
        .args(["--run-dir", s(run_dir)])
        .args(extra)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string());
    c
}

#[test]
fn one_rank_through_the_distributed_path_equals_a_single_process_bit_for_bit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let (single, one) = (tmp.path().join("single"), tmp.path().join("one"));
    let (ok, out, err) = train_in(&args, &single, &["--set", "optim.max_steps=4"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = train_in(&args, &one, &["--set", "optim.max_steps=4", "--devices", "cpu"]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("started 1 ranks"), "{err}");
    assert!(final_weights(&single) == final_weights(&one), "world size 1 changed the weights");
}

#[test]
fn two_ranks_write_the_run_once_and_resume_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    // 42 training images: 21 per rank, 2 batches of 8 per epoch; 3 epochs = 6 steps.
    let (whole, parts) = (tmp.path().join("whole"), tmp.path().join("parts"));
    let (ok, out, err) = train_in(&args, &whole, &["--devices", "cpu,cpu"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("done after 6 steps on 2 ranks"), "{out}");
    assert_eq!(out.lines().count(), 1, "only rank 0 reports: {out}");
    assert_eq!(logged_steps(&whole), (1..=6).collect::<Vec<_>>(), "one line per step");
    let checkpoints = checkpoint_dirs(&whole);
    assert!(checkpoints.iter().all(|c| c.starts_with("step-")), "{checkpoints:?}");
    let state = std::fs::read_to_string(whole.join("checkpoints/step-000000006/state.json"))
        .expect("state");
    let state: serde_json::Value = serde_json::from_str(&state).expect("state json");
    assert_eq!(state["world"], 2, "{state}");
    // Stopped after 4 steps, then resumed: the same weights, bit for bit.
    let (ok, out, err) =
        train_in(&args, &parts, &["--devices", "cpu,cpu", "--set", "optim.max_steps=4"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = train_in(&args, &parts, &["--devices", "cpu,cpu"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("resumed from step 4"), "{out}");
    assert!(final_weights(&whole) == final_weights(&parts), "resumed 2-rank run differs");
    // Resuming with another number of ranks is refused (epoch positions are per rank).
    let (ok, _, err) = train_in(&args, &parts, &["--set", "optim.max_steps=8"]);
    assert!(!ok && err.contains("written by 2 rank(s) and this run has 1"), "{err}");
}

#[test]
fn cuda_layouts_on_cpu_ranks_reduce_without_stride_warnings() {
    // channels_last and batched views, CUDA's defaults, on two Gloo ranks: every gradient must
    // arrive in its bucket's layout (c10d's Reducer warned about 1×1 convolutions' strides).
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let sets = ["run.channels_last=true", "model.batched_views=true", "optim.max_steps=2"];
    let mut extra = vec!["--devices", "cpu,cpu"];
    extra.extend(sets.iter().flat_map(|s| ["--set", s]));
    let (ok, out, err) = train_in(&args, &tmp.path().join("run"), &extra);
    assert!(ok, "{out}{err}");
    assert!(out.contains("done after 2 steps on 2 ranks"), "{out}");
    assert!(!err.contains("Grad strides do not match"), "{err}");
}

#[test]
fn sigterm_to_the_launcher_stops_every_rank_at_one_checkpointed_step() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let mut child: Child = sipl()
        .args(&args)
        .args(["--run-dir", s(&run_dir), "--devices", "cpu,cpu"])
        .args(["--set", "optim.epochs=1000", "--set", "optim.max_steps=100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for_checkpoint(&mut child, &run_dir, 2);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let (ok, out, err) = text(child.wait_with_output().expect("wait"));
    assert!(ok, "{out}{err}");
    assert!(out.contains("stopped, checkpoint written"), "{out}");
    let stopped: u64 = out
        .split("after ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("step in the report");
    assert!(run_dir.join(format!("checkpoints/step-{stopped:09}")).exists(), "{out}");
    let more = format!("optim.max_steps={}", stopped + 2);
    let (ok, out, err) = train_in(&args, &run_dir, &["--devices", "cpu,cpu", "--set", &more]);
    assert!(ok && out.contains(&format!("resumed from step {stopped}")), "{out}{err}");
}

#[test]
fn a_third_rank_that_differs_stops_all_three_without_waiting() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let port = free_port();
    let start = Instant::now();
    let children: Vec<Child> = (0..3)
        .map(|r| {
            let extra: &[&str] = if r == 2 { &["--set", "run.log_every=2"] } else { &[] };
            rank(&args, &run_dir, r, 3, port, extra).stderr(Stdio::piped()).spawn().expect("rank")
        })
        .collect();
    for (r, child) in children.into_iter().enumerate() {
        let (ok, _, err) = text(child.wait_with_output().expect("wait"));
        assert!(!ok, "rank {r} must fail");
        assert!(err.contains("rank 2's config differs from rank 0's"), "rank {r}: {err}");
        assert!(err.contains("log_every"), "rank {r}: {err}");
    }
    assert!(start.elapsed() < Duration::from_secs(60), "nobody waits for a timeout");
}

#[test]
fn ranks_with_different_configs_are_stopped_at_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let port = free_port();
    let r0 = rank(&args, &run_dir, 0, 2, port, &[]).stderr(Stdio::piped()).spawn().expect("rank 0");
    let r1 = rank(&args, &run_dir, 1, 2, port, &["--set", "optim.lr=1e-3"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("rank 1");
    for (r, child) in [(0, r0), (1, r1)] {
        let (ok, _, err) = text(child.wait_with_output().expect("wait"));
        assert!(!ok, "rank {r} must fail");
        assert!(err.contains("rank 1's config differs from rank 0's"), "rank {r}: {err}");
        assert!(err.contains("lr = 0.0001") && err.contains("lr = 0.001"), "rank {r}: {err}");
    }
    assert!(!run_dir.join("config.toml").exists(), "nothing written before the ranks agree");
}

#[test]
fn a_rank_that_cannot_reach_the_master_fails_within_its_timeout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let port = free_port(); // nobody serves the rendezvous there
    let start = Instant::now();
    let out = rank(&args, &tmp.path().join("run"), 1, 2, port, &["--set", "run.dist_timeout_s=2"])
        .output()
        .expect("rank 1");
    let (ok, _, err) = text(out);
    assert!(!ok);
    let want = format!("rank 1 could not reach the rendezvous at 127.0.0.1:{port} within 2 s");
    assert!(err.contains(&want), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30), "{:?}", start.elapsed());
}

#[test]
fn bad_device_lists_are_refused_before_any_rank_starts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let missing = format!("cuda:{}", 7);
    for (devices, needle) in [
        (missing.as_str(), "does not exist"),
        ("cpu,cuda:0", ""),
        ("auto", "explicit devices"),
        ("tpu:1", "unknown device"),
    ] {
        let (ok, _, err) = train_in(&args, &run_dir, &["--devices", devices]);
        assert!(!ok && err.contains(needle), "{devices}: {err}");
        assert!(!run_dir.exists(), "{devices}: no rank may start");
    }
    // A launch under torchrun must not launch again.
    let out =
        rank(&args, &run_dir, 0, 1, free_port(), &["--devices", "cpu"]).output().expect("run");
    let (ok, _, err) = text(out);
    assert!(!ok && err.contains("leave it out"), "{err}");
}

#[test]
fn a_nan_loss_on_one_rank_stops_every_rank_at_the_same_step() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let out = sipl_with_faults(&[("SIPL_FAULT_NAN_AT_STEP", "3"), ("SIPL_FAULT_RANK", "1")])
        .args(&args)
        .args(["--run-dir", s(&run_dir), "--devices", "cpu,cpu"])
        .output()
        .expect("run");
    let (ok, _, err) = text(out);
    assert!(!ok);
    assert!(err.contains("loss is NaN at step 3"), "rank 1 names its NaN: {err}");
    assert!(err.contains("another rank's loss is not finite at step 3"), "rank 0: {err}");
    assert_eq!(
        checkpoint_dirs(&run_dir),
        vec!["step-000000002".to_string()],
        "the last good checkpoint is kept"
    );
}

#[test]
fn a_failing_rank_is_reported_and_the_others_stopped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let (ok, _, err) = train_in(
        &args,
        &tmp.path().join("run"),
        &["--devices", "cpu,cpu", "--set", "data.path=/nonexistent/shards"],
    );
    assert!(!ok);
    assert!(err.contains("/nonexistent/shards") && err.contains("failed"), "{err}");
}

#[test]
fn two_ranks_measure_the_monitor_once_and_record_it_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    // The training set itself as the monitor set: every rank embeds all of it after each
    // epoch (the same encoder once BatchNorm statistics are averaged), rank 0 records.
    let ds = tmp.path().join("ds");
    let run_dir = tmp.path().join("run");
    let data = format!("monitor.data={}", s(&ds));
    let sets = [
        "--devices",
        "cpu,cpu",
        "--set",
        &data,
        "--set",
        "monitor.input_size=32",
        "--set",
        "monitor.k=3",
        "--set",
        "monitor.stratified=0.25",
        "--set",
        "monitor.batch=16",
    ];
    let (ok, out, err) = train_in(&args, &run_dir, &sets);
    assert!(ok, "{out}{err}");
    let lines = sipl_train::trainer::metrics::read(&run_dir);
    let monitors: Vec<_> = sipl_train::trainer::metrics::monitors(&lines).cloned().collect();
    assert_eq!(monitors.iter().map(|m| m.step).collect::<Vec<_>>(), [0, 2, 4, 6], "{monitors:?}");
    let last = monitors.last().expect("a line");
    let knn = tmp.path().join("knn");
    let (ok, stdout, err) = common::run(&[
        "eval",
        "knn",
        "--weights",
        s(&run_dir.join("final.safetensors")),
        "--data",
        s(&ds),
        "--stratified",
        "0.25",
        "--k",
        "3,200",
        "--input-size",
        "32",
        "--batch",
        "16",
        "--device",
        "cpu",
        "--out",
        s(&knn),
        "-q",
    ]);
    assert!(ok, "{stdout}{err}");
    let want = format!("{:.1}%", 100.0 * last.knn_accuracy);
    assert!(stdout.lines().next().is_some_and(|l| l.contains(&want)), "{want} vs {stdout}");
}

#[test]
fn under_torchrun_the_ranks_join_its_agents_store_and_print_no_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let port = free_port().to_string();
    let launch = ["-m", "torch.distributed.run", "--no-python", "--nproc-per-node", "2"];
    let out = common::python()
        .args(launch)
        .args(["--master-addr", "127.0.0.1", "--master-port", &port])
        .arg(env!("CARGO_BIN_EXE_sipl"))
        .args(&args)
        .args(["--run-dir", s(&run_dir), "--set", "optim.max_steps=2"])
        .output()
        .expect("torchrun");
    let (ok, stdout, err) = text(out);
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("done after 2 steps on 2 ranks"), "{stdout}");
    // c10d's line when rank 0 tries to serve the store the agent already serves.
    assert!(!err.contains("failed to bind") && !err.contains("TCPStore"), "{err}");
}
