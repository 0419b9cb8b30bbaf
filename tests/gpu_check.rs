//! `bench/gpu_check.sh` on the CPU with tiny sizes: every step's sipl command lines run against
//! a small synthetic set laid out as Tiny ImageNet and packed as `make gpu-pack` packs the real
//! one, PyTorch's step runs for real (tiny), and the authors' loader checks its arguments (runs
//! for real where the venv has pandas and `.work/reference` holds the authors' files), so a
//! typo or an API error is caught before a GPU minute is spent.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{repo, run, s, text};

const SCRIPT: &str = "bench/gpu_check.sh";

/// `bash ARGS` with none of the script's settings inherited from the caller's environment.
fn bash(args: &[&str]) -> Command {
    let mut c = Command::new("bash");
    c.args(args).env_remove("OUT").env_remove("PYTHON");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GPU_CHECK_") {
            c.env_remove(name);
        }
    }
    c
}

/// `count` synthetic 64² images (PNG), in `sipl synth`'s class folders, in name order.
fn synth(dir: &Path, classes: usize, per_class: usize, seed: u64) -> Vec<std::path::PathBuf> {
    let (c, p, sd) = (classes.to_string(), per_class.to_string(), seed.to_string());
    let args = ["synth", "--out", s(dir), "--classes", &c, "--per-class", &p, "--size", "64"];
    let (ok, _, err) = run(&[&args[..], &["--seed", &sd]].concat());
    assert!(ok, "{err}");
    let mut files: Vec<_> = walk(dir);
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// A pack like `make gpu-pack`'s: the binary, bench/ and configs/ (links to this checkout),
/// `.work/reference` as reference/ where it exists, and Tiny ImageNet val (4 classes × 8) and
/// test (32 images) as .tar.xz in data/.
fn make_pack(tmp: &Path) -> std::path::PathBuf {
    let pack = tmp.join("pack");
    std::fs::create_dir_all(pack.join("data")).expect("pack");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sipl"), pack.join("sipl")).expect("link");
    for d in ["bench", "configs"] {
        std::os::unix::fs::symlink(repo().join(d), pack.join(d)).expect("link");
    }
    let reference = repo().join(".work/reference");
    if reference.join("src/dataset.py").is_file() {
        std::os::unix::fs::symlink(&reference, pack.join("reference")).expect("link");
    }
    let root = tmp.join("src/tiny-imagenet-200");
    let (val, test) = (root.join("val/images"), root.join("test/images"));
    std::fs::create_dir_all(&val).expect("val");
    std::fs::create_dir_all(&test).expect("test");
    let mut annotations = String::new();
    for (i, f) in synth(&tmp.join("synth-val"), 4, 8, 0).iter().enumerate() {
        let class = f.parent().and_then(|p| p.file_name()).expect("class folder");
        std::fs::copy(f, val.join(format!("val_{i}.png"))).expect("copy");
        annotations += &format!("val_{i}.png\tn{}\t0\t0\t63\t63\n", class.to_string_lossy());
    }
    std::fs::write(root.join("val/val_annotations.txt"), annotations).expect("annotations");
    for (i, f) in synth(&tmp.join("synth-test"), 2, 16, 1).iter().enumerate() {
        std::fs::copy(f, test.join(format!("test_{i}.png"))).expect("copy");
    }
    // tar.xz through Python's tarfile: the same decompression path as the real pack.
    let pack_tar = "import sys, tarfile\n\
        src, out, part = sys.argv[1:]\n\
        with tarfile.open(out, 'w:xz') as t:\n    t.add(f'{src}/tiny-imagenet-200/{part}', f'tiny-imagenet-200/{part}')\n";
    for part in ["val", "test"] {
        let out = pack.join(format!("data/tiny-imagenet-200-{part}.tar.xz"));
        let (ok, _, err) = text(
            common::python()
                .args(["-c", pack_tar, s(&tmp.join("src")), s(&out), part])
                .output()
                .expect("python"),
        );
        assert!(ok, "{err}");
    }
    pack
}

#[test]
fn the_gpu_check_script_parses() {
    for script in [SCRIPT, "bench/gpu_pack.sh", "bench/soak_train.sh"] {
        let (ok, _, err) = text(bash(&["-n", s(&repo().join(script))]).output().expect("bash"));
        assert!(ok, "{script}: {err}");
    }
}

#[test]
fn bad_usage_is_refused_with_the_reason() {
    let script = repo().join(SCRIPT);
    let cases: [(&[&str], &str); 6] = [
        (&[], "name a results folder"),
        (&["--device", "tpu", "r"], "expected cpu, cuda or cuda:N, got 'tpu'"),
        (&["--only", "a,g", "r"], "--only: expected letters a-f"),
        (&["--frobnicate", "r"], "unknown option --frobnicate"),
        (&["r1", "r2"], "one results folder"),
        (&["--device"], "--device needs a value"),
    ];
    let tmp = tempfile::tempdir().expect("tmp");
    for (args, want) in cases {
        let out = bash(&[&[s(&script)][..], args].concat())
            .current_dir(tmp.path())
            .env("GPU_CHECK_WORK", tmp.path().join("work"))
            .output()
            .expect("bash");
        let (ok, _, err) = text(out.clone());
        assert!(!ok && out.status.code() == Some(2), "{args:?}: {err}");
        assert!(err.contains(want) && err.contains("usage:"), "{args:?}: {err}");
    }
    // Nothing was written for a refused call.
    assert!(!tmp.path().join("r").exists() && !tmp.path().join("work").exists());
}

#[test]
fn every_step_runs_on_the_cpu_with_tiny_sizes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pack = make_pack(tmp.path());
    let results = tmp.path().join("results");
    let start = Instant::now();
    let out = bash(&[s(&pack.join("bench/gpu_check.sh")), "--device", "cpu", "--tiny"])
        .env("OUT", &results) // the default results folder
        .env("GPU_CHECK_WORK", tmp.path().join("work"))
        .env("GPU_CHECK_BUDGET_S", "3600") // a loaded machine is slow; time is not under test
        .env("PYTHON", repo().join(".venv/bin/python"))
        .output()
        .expect("bash");
    let secs = start.elapsed().as_secs_f64();
    let (ok, stdout, stderr) = text(out);
    let status = std::fs::read_to_string(results.join("status.txt")).unwrap_or_default();
    assert!(ok, "{status}\n{stdout}\n{stderr}");
    println!("gpu_check.sh --device cpu --tiny: {secs:.1} s");

    // Every step ran and succeeded.
    let steps: Vec<(&str, &str)> = status
        .lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            Some((f.next()?, f.next()?))
        })
        .collect();
    for want in [
        "setup-unpack",
        "setup-ingest",
        "a-pytorch",
        "a-sipl",
        "a-sipl-per-parameter-adam",
        "b-sipl",
        "b-pytorch-ceiling",
        "b-f32-batches",
        "b-per-view-passes",
        "b-overlap-off",
        "b-joint-views",
        "b-per-parameter-adam",
        "c-world1",
        "c-world1-one-bucket",
        "d-siplv1-1",
        "d-siplv1-4",
        "d-siplv1-8",
        "d-siplv1-14",
        "d-siplv1-16",
        "d-siplv1-14-bf16",
        "d-opl-14",
        "d-opl-16",
        "e-authors-siplv1",
        "f-ingest-test",
        "f-ingest-val",
        "f-train-opl",
        "f-train-siplv1",
        "f-downstream-opl",
        "f-downstream-siplv1",
        "f-downstream-random-init",
        "f-report",
    ] {
        assert!(steps.contains(&(want, "ok")), "{want} not ok:\n{status}");
    }

    // The figures reached the summary, in order, and Table 4 has the random-encoder row.
    let summary = std::fs::read_to_string(results.join("summary.txt")).expect("summary");
    let at = |p: &str| summary.find(p).unwrap_or_else(|| panic!("no {p:?} in\n{summary}"));
    assert!(at("(a) step") < at("(b) SIPLv1") && at("(b) SIPLv1") < at("(c) world size 1"));
    assert!(at("(c) world") < at("(d) loader") && at("(d) loader") < at("(e) authors"));
    assert!(at("(e) authors") < at("(f) reduced"), "{summary}");
    // sipl's and PyTorch's figures are there (the authors' loader only where pandas is).
    for figure in [
        "fused Adam ",
        "sipl ",
        "end to end ",
        "(fused Adam) ",
        "world size 1 ",
        "siplv1 ",
        "opl ",
        "one bucket ",
    ] {
        assert!(
            !summary.contains(&format!("{figure}n/a")),
            "no figure after {figure:?}:\n{summary}"
        );
    }
    assert!(summary.contains("random-encoder row present"), "{summary}");
    assert!(summary.contains("reduced reproduce-small: wall") && summary.contains(": met]"));
    // (b) is compared with its loader alone.
    assert!(summary.contains("/ loader alone (d, siplv1, 14 workers) "), "{summary}");
    let report = std::fs::read_to_string(results.join("report.md")).expect("report");
    assert!(report.contains("random init") && report.contains("siplv1"), "{report}");
    let log = std::fs::read_to_string(results.join("log.txt")).expect("log");
    let (a, f) = (log.find("== (a)").expect("(a)"), log.find("== (f)").expect("(f)"));
    assert!(a < f && log.contains("== summary"), "{log}");
    assert!(log.contains("/dev/shm"), "env.txt has no /dev/shm line");
    // (b) prints each timed window and the total, all within the first epoch.
    assert!(log.contains("window 1 (steps 2-2): "), "{log}");
    assert!(log.contains("samples in ") && !log.contains("an epoch ended inside"), "{log}");

    // What the device machine sends back: at most 8 files, plainly named, none in folders.
    let mut names: Vec<String> = std::fs::read_dir(&results)
        .expect("results")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() <= 8, "{names:?}");
    for n in &names {
        assert!(results.join(n).is_file(), "{n} is not a file");
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "{n}");
    }
    for want in ["log.txt", "status.txt", "summary.txt", "env.txt", "report.md", "details.tar.gz"] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    let listing = Command::new("tar").arg("-tzf").arg(results.join("details.tar.gz")).output();
    let (ok, listing, err) = text(listing.expect("tar"));
    assert!(ok, "{err}");
    for want in
        ["steps/a-pytorch.txt", "steps/b-sipl.txt", "steps/f-report.txt", "f/siplv1/metrics.jsonl"]
    {
        assert!(listing.contains(want), "no {want} in details.tar.gz:\n{listing}");
    }
}

/// An executable shell script at `path`.
fn script(path: &Path, text: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{text}\n")).expect("script");
    let mut perm = std::fs::metadata(path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(path, perm).expect("chmod");
}

#[test]
fn a_sipl_that_cannot_start_stops_the_check_with_one_clear_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pack = tmp.path().join("pack");
    std::fs::create_dir_all(&pack).expect("pack");
    std::os::unix::fs::symlink(repo().join("bench"), pack.join("bench")).expect("link");
    script(
        &pack.join("sipl"),
        "echo 'sipl: error while loading shared libraries: libtorch_cpu.so' >&2; exit 127",
    );
    // A python whose warning (stderr) comes before the library folder (stdout).
    let lib = tmp.path().join("torch/lib");
    std::fs::create_dir_all(&lib).expect("lib");
    let python = tmp.path().join("python");
    script(
        &python,
        &format!("echo 'UserWarning: something' >&2\necho {}\necho torch 0.0", s(&lib)),
    );
    let results = tmp.path().join("results");
    let out = bash(&[s(&pack.join("bench/gpu_check.sh")), "--device", "cpu", s(&results)])
        .env("GPU_CHECK_WORK", tmp.path().join("work"))
        .env("PYTHON", &python)
        .output()
        .expect("bash");
    let code = out.status.code();
    let (_, stdout, stderr) = text(out);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let stop: Vec<&str> = stdout.lines().filter(|l| l.starts_with("STOP:")).collect();
    assert!(stop.len() == 1 && stop[0].contains("info' failed (exit 127"), "{stdout}");
    assert!(stop[0].contains("libtorch_cpu.so") && stop[0].contains(s(&lib)), "{stdout}");
    let env = std::fs::read_to_string(results.join("env.txt")).expect("env.txt");
    assert!(env.contains(&format!("torch lib: {}", s(&lib))), "{env}");
    assert!(env.contains("torch 0.0") && env.contains("UserWarning"), "{env}");
    let status = std::fs::read_to_string(results.join("status.txt")).expect("status");
    assert_eq!(status, "setup-info|FAILED (exit 127)|0\n");
}

#[test]
fn a_skipped_step_fails_the_check() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pack = make_pack(tmp.path());
    let _ = std::fs::remove_file(pack.join("reference")); // (e) is skipped without it
    let python = tmp.path().join("python");
    script(&python, "echo /no/torch/lib; echo torch 0.0");
    let results = tmp.path().join("results");
    let out = bash(&[s(&pack.join("bench/gpu_check.sh")), "--device", "cpu", "--only", "e"])
        .env("OUT", &results)
        .env("GPU_CHECK_WORK", tmp.path().join("work"))
        .env("PYTHON", &python)
        .output()
        .expect("bash");
    let code = out.status.code();
    let (_, stdout, stderr) = text(out);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let status = std::fs::read_to_string(results.join("status.txt")).expect("status");
    assert!(status.contains("setup-unpack|ok|"), "{status}");
    assert!(status.contains("e-authors-siplv1|skipped: no "), "{status}");
    assert!(!status.contains("setup-ingest"), "(b)-(d) not wanted, no ingest: {status}");
}

#[test]
fn the_benchmark_options_the_script_uses_refuse_bad_values() {
    let config = repo().join("configs/siplv1.toml");
    let (ok, _, err) = run(&["bench", "train", "--config", s(&config), "--window", "0"]);
    assert!(!ok && err.contains("--window") && err.contains("0"), "{err}");
    let (ok, _, err) = run(&["bench", "step", "--device", "cpu", "--fused", "maybe"]);
    assert!(!ok && err.contains("--fused") && err.contains("maybe"), "{err}");
    let (ok, _, err) =
        run(&["bench", "train", "--config", s(&config), "--set", "optim.fused=sometimes"]);
    assert!(!ok && err.contains("fused"), "{err}");
    // The Python yardsticks refuse theirs before importing anything.
    let python = |args: &[&str]| text(common::python().args(args).output().expect("python"));
    let loader = repo().join("bench/reference_loader.py");
    let base = [s(&loader), "--repo", "r", "--images", "i", "--scheme", "siplv1", "--workers", "2"];
    for (bad, want) in [
        (&["--waves", "0"][..], "--waves >= 1"),
        (&["--seconds", "-1"], "--seconds: expected a number in (0, 86400], got -1.0"),
        (&["--warmup-batches", "-1"], "--warmup-batches >= 0"),
    ] {
        let (ok, _, err) = python(&[&base[..], bad, &["--dry-run"]].concat());
        assert!(!ok && err.contains(want), "{bad:?}: {err}");
    }
    let (ok, out, err) = python(&[&base[..], &["--dry-run"]].concat());
    assert!(ok && out.contains("'waves': 2") && out.contains("'warmup_batches': 2"), "{out}{err}");
    let step = repo().join("bench/pytorch_step.py");
    let (ok, out, err) = python(&[s(&step), "--fused", "--dry-run"]);
    assert!(ok && out.contains("'fused': True"), "{out}{err}");
    let (ok, _, err) = python(&[s(&step), "--steps", "0", "--dry-run"]);
    assert!(!ok && err.contains("--steps >= 1"), "{err}");
}
