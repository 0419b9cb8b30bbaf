//! Every command that prints ends quietly when its output is closed (`sipl shards inspect DIR |
//! head -1`): killed by SIGPIPE, status 141 in a shell, as `cat` or `ls`, never a panic.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use common::{run, s, setup_tiny_training, sipl};

/// The write end of a pipe whose read end is already closed.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: both descriptors were just created and are owned here alone.
    unsafe {
        libc::close(fds[0]);
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

/// Runs `sipl ARGS` into a closed pipe: it must die of SIGPIPE without a word on stderr.
fn into_closed_pipe(args: &[&str]) {
    let out = sipl()
        .args(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn sipl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "sipl {args:?}: {:?}\n{err}", out.status);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "sipl {args:?}:\n{err}");
}

#[test]
fn every_printing_command_exits_quietly_when_its_output_is_closed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let (config, train_args) = setup_tiny_training(tmp.path());
    let config = s(&config).to_owned();
    let (data, images, run_dir, eval_out) = (p("ds"), p("images"), p("run"), p("eval"));
    let (dump, report, knn) = (p("one.png"), p("report"), p("knn"));
    let final_weights = format!("{run_dir}/final.safetensors");
    let mut train: Vec<&str> = train_args.iter().map(String::as_str).collect();
    train.extend(["--run-dir", &run_dir, "--set", "optim.max_steps=2"]);
    let (ok, _, err) = run(&train);
    assert!(ok, "{err}");
    let small = ["--input-size", "32", "--device", "cpu"];
    let (synth, ds2, sheet, encoder, emb, tsne) = (
        p("synth"),
        p("ds2"),
        p("sheet.png"),
        p("encoder.safetensors"),
        p("emb.parquet"),
        p("tsne"),
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["synth", "--out", &synth, "--classes", "2", "--per-class", "1", "--size", "16"],
        vec!["ingest", "folder", &images, "--out", &ds2, "--resize", "none", "--crop", "none"],
        vec!["shards", "verify", &data],
        vec!["shards", "inspect", &data],
        vec!["shards", "inspect", &data, "--dump", "0", &dump],
        vec!["preview", &data, "--out", &sheet, "--samples", "1", "--tile", "24"],
        vec!["info"],
        vec!["bench", "loader", &data, "--seconds", "0.2", "--batch", "4", "--workers", "1"],
        vec![
            "bench", "step", "--device", "cpu", "--batch", "2", "--size", "32", "--steps", "1",
            "--warmup", "1",
        ],
        vec![
            "bench",
            "train",
            "--config",
            &config,
            "--set",
            "optim.max_steps=100",
            "--steps",
            "10",
        ],
        vec![
            "bench",
            "soak",
            &data,
            "--minutes",
            "0.08",
            "--batch",
            "4",
            "--workers",
            "1",
            "--report-seconds",
            "1",
            "--stall-seconds",
            "0.1",
        ],
        train.clone(),
        vec!["export", "--run", &run_dir, "--which", "final", "--out", &encoder],
        [
            &["embed", "--weights", &final_weights, "--data", &data, "--out", &emb, "--batch", "8"]
                [..],
            &small,
        ]
        .concat(),
        [
            &[
                "eval",
                "downstream",
                "--random-init",
                "--data",
                &data,
                "--out",
                &eval_out,
                "--batch",
                "8",
            ][..],
            &small,
            &["--stratified", "0.25", "--epochs", "1", "-q"],
        ]
        .concat(),
        [
            &["eval", "tsne", "--random-init", "--data", &data, "--out", &tsne][..],
            &small,
            &["--per-class", "8", "--perplexity", "5", "--epochs", "251"],
        ]
        .concat(),
        [
            &["eval", "knn", "--random-init", "--data", &data, "--out", &knn][..],
            &small,
            &["--stratified", "0.25", "--k", "2,4"],
        ]
        .concat(),
        vec!["report", &run_dir, "--baseline", &eval_out, "--out", &report],
    ];
    for args in &commands {
        into_closed_pipe(args);
    }
    // The work before the printing was done: the dump, the new set and the report exist.
    for f in [dump, format!("{ds2}/dataset.json"), format!("{report}/report.md")] {
        assert!(std::path::Path::new(&f).exists(), "{f}");
    }
}
