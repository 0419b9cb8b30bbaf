//! Fault injection: kill -9 while ingest writes shards, a kill inside a checkpoint write, bit
//! flips in every checkpoint file, two trainers on one run directory, and a full disk (a small tmpfs) under ingest and under checkpoints. After each, a
//! rerun or resume must end complete, verified and identical to a run that never failed, with
//! nothing lost beyond the last checkpoint. RELIABILITY.md lists every fault and its test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    checkpoint_dirs, final_weights, run, s, setup_tiny_training, sipl, sipl_with_faults, text,
    train_in, wait_for_checkpoint,
};

/// A tmpfs of a given size mounted for the test's lifetime (needs the mount privilege, which
/// CI's root has); `None` where mounting is not allowed.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(dir)])
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| SmallDisk { dir: dir.to_owned() })
    }

    fn grow(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), s(&self.dir)])
            .output()
            .expect("remount");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

fn synth_images(dir: &Path) {
    let (ok, _, err) =
        run(&["synth", "--out", s(dir), "--classes", "4", "--per-class", "40", "--size", "160"]);
    assert!(ok, "{err}");
}

fn ingest_args(images: &Path, out: &Path) -> Vec<String> {
    ["ingest", "folder", s(images), "--out", s(out), "--shard-images", "8", "--threads", "1", "-q"]
        .iter()
        .map(|a| a.to_string())
        .collect()
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| PathBuf::from(e.expect("entry").file_name()))
        .collect();
    v.sort();
    v
}

fn assert_same_dataset(a: &Path, b: &Path) {
    let (ok, _, err) = run(&["shards", "verify", s(a)]);
    assert!(ok, "{err}");
    assert_eq!(listing(a), listing(b), "top-level files");
    assert_eq!(listing(&a.join("shards")), listing(&b.join("shards")), "shard files");
    let mut files = vec![PathBuf::from("dataset.json"), PathBuf::from("manifest.parquet")];
    for f in listing(&b.join("shards")) {
        files.push(PathBuf::from("shards").join(f));
    }
    for f in files {
        assert!(
            std::fs::read(a.join(&f)).ok() == std::fs::read(b.join(&f)).ok(),
            "{} differs",
            f.display()
        );
    }
}

#[test]
fn ingest_killed_while_writing_shards_then_rerun_is_complete_and_identical() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let images = tmp.path().join("images");
    synth_images(&images);
    let reference = tmp.path().join("reference");
    let (ok, _, err) = text(sipl().args(ingest_args(&images, &reference)).output().expect("run"));
    assert!(ok, "{err}");
    // Killed once shard k is being written (its temporary file exists), plus a fixed delay
    // of a few milliseconds, at three points of the run.
    for (shard, delay_ms) in [(1usize, 0u64), (7, 3), (15, 1)] {
        let out = tmp.path().join(format!("killed-{shard}"));
        let tmp_shard = out.join(format!("shards/shard-{shard:05}.arrow.tmp"));
        let done_shard = out.join(format!("shards/shard-{shard:05}.arrow"));
        let mut child = sipl().args(ingest_args(&images, &out)).spawn().expect("spawn");
        let start = Instant::now();
        while !tmp_shard.exists() && !done_shard.exists() {
            assert!(start.elapsed() < Duration::from_secs(60), "ingest made no progress");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().expect("reap");
        assert_eq!(status.signal(), Some(9), "shard {shard}: killed while running");
        assert!(!out.join("dataset.json").exists(), "a killed ingest must not claim completeness");
        let (ok, _, err) = text(sipl().args(ingest_args(&images, &out)).output().expect("rerun"));
        assert!(ok, "shard {shard}: {err}");
        assert_same_dataset(&out, &reference);
    }
}

#[test]
fn a_bit_flip_in_any_checkpoint_file_is_detected_and_the_previous_one_used() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let (ok, _, err) = train_in(&args, &run_dir, &["--set", "optim.max_steps=4"]);
    assert!(ok, "{err}");
    for file in ["model.safetensors", "optim.safetensors", "state.json", "manifest.json"] {
        let copy = tmp.path().join(format!("copy-{file}"));
        let cp = Command::new("cp").args(["-r", s(&run_dir), s(&copy)]).output().expect("cp");
        assert!(cp.status.success());
        let path = copy.join("checkpoints/step-000000004").join(file);
        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        std::fs::write(&path, bytes).expect("write");
        let ckpt = sipl_train::checkpoint::Checkpointer::new(copy.join("checkpoints"), 2);
        let (latest, skipped) = ckpt.latest_valid().expect("scan");
        let (found, _) = latest.expect("the older checkpoint is valid");
        assert!(found.ends_with("step-000000002"), "{file}: {}", found.display());
        assert_eq!(skipped.len(), 1, "{file}: {skipped:?}");
        assert!(skipped[0].contains("step-000000004"), "{file}: {skipped:?}");
    }
}

#[test]
fn a_kill_inside_a_checkpoint_write_resumes_from_the_previous_one_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let (reference, run_dir) = (tmp.path().join("reference"), tmp.path().join("run"));
    let (ok, _, err) = train_in(&args, &reference, &["--set", "optim.max_steps=6"]);
    assert!(ok, "{err}");
    let out = sipl_with_faults(&[("SIPL_FAULT_KILL_IN_CHECKPOINT", "4")])
        .args(&args)
        .args(["--run-dir", s(&run_dir), "--set", "optim.max_steps=6"])
        .output()
        .expect("run");
    let (ok, _, err) = text(out);
    assert!(!ok && err.contains("killing this process inside the checkpoint of step 4"), "{err}");
    assert!(run_dir.join("checkpoints/step-000000004.tmp").exists(), "the write was cut short");
    let (ok, out, err) = train_in(&args, &run_dir, &["--set", "optim.max_steps=6"]);
    assert!(ok, "{err}");
    assert!(out.contains("resumed from step 2"), "{out}");
    assert!(!run_dir.join("checkpoints/step-000000004.tmp").exists(), "partial write cleared");
    assert!(
        final_weights(&run_dir) == final_weights(&reference),
        "resumed weights differ from the run that never failed"
    );
}

#[test]
fn a_full_disk_during_ingest_is_a_clear_error_and_a_rerun_with_space_completes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let images = tmp.path().join("images");
    synth_images(&images);
    let reference = tmp.path().join("reference");
    let (ok, _, err) = text(sipl().args(ingest_args(&images, &reference)).output().expect("run"));
    assert!(ok, "{err}");
    let Some(disk) = SmallDisk::mount(&tmp.path().join("small"), "256k") else {
        eprintln!("SKIPPED: mounting a tmpfs is not permitted here");
        return;
    };
    let out = disk.dir.join("ds");
    let (ok, _, err) = text(sipl().args(ingest_args(&images, &out)).output().expect("run"));
    assert!(!ok, "the set does not fit in 256 KiB");
    assert!(err.contains("No space left on device") && err.contains("shards/shard-"), "{err}");
    assert!(!out.join("dataset.json").exists(), "a failed ingest must not claim completeness");
    disk.grow("64m");
    let (ok, _, err) = text(sipl().args(ingest_args(&images, &out)).output().expect("rerun"));
    assert!(ok, "{err}");
    assert_same_dataset(&out, &reference);
}

#[test]
fn a_full_disk_while_checkpointing_keeps_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let reference = tmp.path().join("reference");
    let (ok, _, err) = train_in(&args, &reference, &["--set", "optim.max_steps=4"]);
    assert!(ok, "{err}");
    // One checkpoint (weights + Adam moments, 229 MB) fits; a second does not.
    let Some(disk) = SmallDisk::mount(&tmp.path().join("small"), "350m") else {
        eprintln!("SKIPPED: mounting a tmpfs is not permitted here");
        return;
    };
    let run_dir = disk.dir.join("run");
    let start = Instant::now();
    let (ok, _, err) = train_in(&args, &run_dir, &["--set", "optim.max_steps=4"]);
    assert!(!ok, "the second checkpoint cannot fit");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(300));
    assert_eq!(
        checkpoint_dirs(&run_dir),
        vec!["step-000000002".to_string()],
        "partial write removed"
    );
    disk.grow("1g");
    let (ok, out, err) = train_in(&args, &run_dir, &["--set", "optim.max_steps=4"]);
    assert!(ok, "{err}");
    assert!(out.contains("resumed from step 2"), "{out}");
    assert!(
        final_weights(&run_dir) == final_weights(&reference),
        "resumed weights differ from the run that never failed"
    );
}

#[test]
fn a_second_trainer_on_a_busy_run_directory_is_refused_until_the_first_dies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let long = ["--set", "optim.epochs=1000", "--set", "optim.max_steps=100000"];
    let mut first =
        sipl().args(&args).args(["--run-dir", s(&run_dir)]).args(long).spawn().expect("spawn");
    wait_for_checkpoint(&mut first, &run_dir, 2);
    let (ok, _, err) = train_in(&args, &run_dir, &["--set", "optim.max_steps=4"]);
    assert!(!ok, "two trainers in one run directory");
    assert!(err.contains(&format!("in use by another `sipl train` (pid {})", first.id())), "{err}");
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    // The kernel dropped the dead process's lock: the directory resumes.
    let (ok, out, err) =
        train_in(&args, &run_dir, &["--set", "optim.epochs=1000", "--set", "optim.max_steps=6"]);
    assert!(ok && out.contains("resumed from step"), "{out}{err}");
}
