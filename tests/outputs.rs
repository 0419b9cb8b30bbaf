//! No command writes over or into what it reads: every output path of every command that
//! writes is checked before any work against its inputs (by device and inode, whatever the
//! spelling) and against datasets, run directories and study folders. Each refusal leaves the
//! input byte for byte as it was. And one image folder spelt two ways is one dataset.

mod common;

use std::path::{Path, PathBuf};

use common::{run, s, setup_tiny_training, train_in};

/// Every file under `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn refused(args: &[&str], needle: &str) {
    let (ok, out, err) = run(args);
    assert!(!ok, "accepted: sipl {}\n{out}", args.join(" "));
    assert!(err.contains(needle), "sipl {}: {err}", args.join(" "));
    assert!(!err.contains("caused by"), "{err}");
}

#[test]
fn outputs_over_or_inside_inputs_runs_datasets_and_studies_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let (ok, out, err) = train_in(&args, &run_dir, &["--set", "optim.max_steps=2"]);
    assert!(ok, "{out}{err}");
    let (r, d, images) = (run_dir.clone(), tmp.path().join("ds"), tmp.path().join("images"));
    let (runs_before, data_before) = (snapshot(&r), snapshot(&d));
    let best = r.join("best.safetensors");
    // Link to the run folder: another spelling of the same files.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&r, &link).expect("link");
    let twisted = format!("{}/../run/./best.safetensors", s(&r));
    let hard = tmp.path().join("hard.safetensors");
    std::fs::hard_link(&best, &hard).expect("hard link");

    for out in [s(&best), &twisted, &format!("{}/best.safetensors", s(&link))] {
        refused(&["export", "--run", s(&r), "--out", out], "it is the weights of --run");
    }
    refused(&["export", "--run", s(&r), "--out", s(&hard)], "it is the weights of --run");
    refused(
        &["export", "--run", s(&r), "--out", &format!("{}/enc.safetensors", s(&r))],
        "lies inside a run directory",
    );
    refused(
        &["embed", "--run", s(&r), "--data", s(&d), "--out", &format!("{}/e.parquet", s(&d))],
        "lies inside the dataset (--data)",
    );
    refused(
        &["preview", s(&d), "--out", &format!("{}/shards/x.png", s(&d))],
        "lies inside the dataset",
    );
    refused(&["shards", "inspect", s(&d), "--dump", "0", &format!("{}/x.png", s(&d))], "dataset");
    let knn = ["eval", "knn", "--run", s(&r), "--data", s(&d), "--device", "cpu"];
    refused(&[&knn[..], &["--out", s(&r)]].concat(), "it is a run directory");
    refused(&[&knn[..], &["--out", s(&d)]].concat(), "the dataset (--data)");
    let down = ["eval", "downstream", "--random-init", "--data", s(&d), "--device", "cpu"];
    refused(&[&down[..], &["--out", &format!("{}/shards", s(&d))]].concat(), "the dataset");
    refused(
        &["report", s(&r), "--out", &format!("{}/eval", s(&r))],
        "lies inside a run it reports",
    );
    // Ingest: the output may not replace or lie inside the images it reads, nor be a run.
    refused(
        &["ingest", "folder", s(&images), "--out", &format!("{}/class_00", s(&images))],
        "lies inside the input ROOT",
    );
    refused(&["ingest", "folder", s(&images), "--out", s(&r)], "it is a run directory");
    let shards_root = images.join("shards");
    std::fs::create_dir(&shards_root).expect("mkdir");
    refused(&["ingest", "folder", s(&shards_root), "--out", s(&images)], "input ROOT");
    std::fs::remove_dir(&shards_root).expect("rmdir");
    // Train: a run directory inside (or holding) its dataset, or inside another run.
    let config = tmp.path().join("tiny.toml");
    let train = |run_dir: &Path| -> Vec<String> {
        let mut v: Vec<String> =
            ["train", "--config", s(&config), "-q", "--run-dir"].map(String::from).to_vec();
        v.push(s(run_dir).to_owned());
        v
    };
    let t = train(&d.join("run"));
    refused(&t.iter().map(String::as_str).collect::<Vec<_>>(), "lies inside the dataset");
    let t = train(&r.join("nested"));
    refused(&t.iter().map(String::as_str).collect::<Vec<_>>(), "lies inside a run directory");
    let t = train(tmp.path());
    refused(&t.iter().map(String::as_str).collect::<Vec<_>>(), "lies inside it");

    assert!(snapshot(&r) == runs_before, "the run changed");
    assert!(snapshot(&d) == data_before, "the dataset changed");
    // What is allowed: a new file beside the run, and evaluations under the run's eval/.
    let enc = tmp.path().join("enc.safetensors");
    let (ok, _, err) = run(&["export", "--run", s(&r), "--out", s(&enc)]);
    assert!(ok, "{err}");
    std::fs::create_dir_all(r.join("eval")).expect("mkdir");
    let (ok, _, err) = run(&["export", "--run", s(&r), "--out", &format!("{}/eval/e.st", s(&r))]);
    assert!(ok, "{err}");
}

#[test]
fn one_image_folder_spelt_two_ways_is_one_dataset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let images = tmp.path().join("images");
    let (ok, _, err) =
        run(&["synth", "--out", s(&images), "--classes", "2", "--per-class", "3", "--size", "32"]);
    assert!(ok, "{err}");
    let out = tmp.path().join("ds");
    let ingest = |root: &str| run(&["ingest", "folder", root, "--out", s(&out), "-q"]);
    let (ok, _, err) = ingest(&format!("{}/", s(&images)));
    assert!(ok, "{err}");
    let identity = sipl_shards::identity(&out).expect("identity");
    for spelling in [s(&images).to_owned(), format!("{}/./", s(&images))] {
        let (ok, stdout, err) = ingest(&spelling);
        assert!(ok && stdout.contains("already complete"), "{spelling}: {stdout}{err}");
    }
    assert_eq!(sipl_shards::identity(&out).expect("identity"), identity);
}
