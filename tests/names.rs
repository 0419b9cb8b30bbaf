//! Names that text outputs must carry intact: class folders named `cats, "dogs"` and with a
//! line break, run folders holding `,` and `|`, a run directory and a dataset path that are not
//! UTF-8, and two runs of one folder name in two places. Every CSV row keeps its cells, every
//! Markdown row its columns, every JSON record its path, and the report tells the runs apart.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{s, sipl, text};

/// `sipl ARGS`, where some arguments are paths that need not be UTF-8.
fn sipl_os(args: &[&OsStr]) -> (bool, String, String) {
    text(sipl().args(args).output().expect("spawn"))
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

/// Trains the smoke config for 2 steps into `run` on `data` (a UTF-8 path: configs are TOML).
fn train(data: &Path, run: &Path, lr: &str) {
    let config = common::repo().join("configs/smoke-siplv1.toml");
    let data_set = format!("data.path={}", s(data));
    let lr = format!("optim.lr={lr}");
    let words = [
        "train",
        "--config",
        s(&config),
        "-q",
        "--set",
        &data_set,
        "--set",
        "data.patch_size=16",
        "--set",
        "optim.batch_size=4",
        "--set",
        "optim.max_steps=2",
        "--set",
        &lr,
        "--run-dir",
    ];
    let args: Vec<&OsStr> = words.iter().map(OsStr::new).chain([os(run)]).collect();
    let (ok, out, err) = sipl_os(&args);
    assert!(ok, "{out}{err}");
}

/// `sipl eval knn` of `run` on `data`, into the run's eval folder.
fn knn(run: &Path, data: &Path) {
    let mut args: Vec<&OsStr> = ["eval", "knn", "--run"].iter().map(OsStr::new).collect();
    args.extend([os(run), OsStr::new("--data"), os(data)]);
    let small = ["--stratified", "0.25", "--input-size", "32", "--batch", "8", "--device", "cpu"];
    args.extend(small.iter().map(OsStr::new));
    let (ok, out, err) = sipl_os(&args);
    assert!(ok, "{out}{err}");
}

/// The cells of a Markdown table row: split at the `|` that are not escaped.
fn cells(row: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = row.trim().trim_matches('|').chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.last_mut().expect("cell").push(c);
                out.last_mut().expect("cell").extend(chars.next());
            }
            '|' => out.push(String::new()),
            _ => out.last_mut().expect("cell").push(c),
        }
    }
    out
}

#[test]
fn names_with_commas_quotes_pipes_line_breaks_and_other_bytes_reach_every_output_intact() {
    let tmp = tempfile::tempdir().expect("tmp");
    let images = tmp.path().join("images");
    let (ok, _, err) = common::run(&[
        "synth",
        "--out",
        s(&images),
        "--classes",
        "2",
        "--per-class",
        "8",
        "--size",
        "32",
    ]);
    assert!(ok, "{err}");
    let classes = ["cats, \"dogs\"", "line\nbreak"];
    for (i, name) in classes.iter().enumerate() {
        std::fs::rename(images.join(format!("class_{i:02}")), images.join(name)).expect("rename");
    }
    // The dataset in a folder whose name is not UTF-8; training reads it through a link.
    let data = tmp.path().join(OsStr::from_bytes(b"set,\xe9"));
    let mut args: Vec<&OsStr> = ["ingest", "folder"].iter().map(OsStr::new).collect();
    args.extend([os(&images), OsStr::new("--out"), os(&data)]);
    args.extend(["--resize", "none", "--crop", "none", "-q"].iter().map(OsStr::new));
    let (ok, out, err) = sipl_os(&args);
    assert!(ok, "{out}{err}");
    let link = tmp.path().join("set");
    std::os::unix::fs::symlink(&data, &link).expect("link");

    // Two runs of one folder name, not UTF-8 and holding `,` and `|`, in two places.
    let name = OsStr::from_bytes(b"a,b|c\xe9");
    let (run_a, run_b) = (tmp.path().join("A").join(name), tmp.path().join("B").join(name));
    for (run, lr) in [(&run_a, "1e-4"), (&run_b, "2e-4")] {
        std::fs::create_dir_all(run.parent().expect("parent")).expect("mkdir");
        train(&link, run, lr);
        knn(run, &data);
    }
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_a.join("eval/knn/knn.json")).expect("knn.json"),
    )
    .expect("json");
    let stored = summary["dataset"]["path"].as_str().expect("dataset path");
    let read_back = sipl_shards::decode_path(stored).expect("a stored path");
    assert_eq!(read_back, std::path::absolute(&data).expect("absolute"), "{stored}");
    let weights = summary["weights"].as_str().expect("weights");
    assert!(sipl_shards::decode_path(weights).expect("stored").exists(), "{weights}");

    // tsne.csv: one record per point, six cells each, the class names whole.
    let tsne = tmp.path().join("tsne");
    let mut args: Vec<&OsStr> = ["eval", "tsne", "--run"].iter().map(OsStr::new).collect();
    args.extend([os(&run_a), OsStr::new("--data"), os(&data), OsStr::new("--out"), os(&tsne)]);
    let small = ["--per-class", "4", "--perplexity", "2", "--epochs", "251", "--input-size", "32"];
    args.extend(small.iter().chain(&["--device", "cpu"]).map(OsStr::new));
    let (ok, out, err) = sipl_os(&args);
    assert!(ok, "{out}{err}");
    let mut reader = csv::Reader::from_path(tsne.join("tsne.csv")).expect("csv");
    let header: Vec<String> = reader.headers().expect("header").iter().map(String::from).collect();
    assert_eq!(header, ["model", "image", "class", "style", "x", "y"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a record")).collect();
    assert_eq!(rows.len(), 2 * 4 * 2, "2 classes × 4 images × 2 style draws");
    for r in &rows {
        assert_eq!(r.len(), 6, "{r:?}");
        assert!(classes.contains(&&r[2]), "class cell {:?}", &r[2]);
        assert_eq!(&r[0], name.to_string_lossy(), "model cell");
    }

    // report.md: every row of every table has its header's columns, and the two runs of one
    // folder name are told apart by their folders.
    let report = tmp.path().join("report");
    let mut args: Vec<&OsStr> = vec![OsStr::new("report"), os(&run_a), os(&run_b)];
    args.extend([OsStr::new("--out"), os(&report)]);
    let (ok, out, err) = sipl_os(&args);
    assert!(ok, "{out}{err}");
    let md = std::fs::read_to_string(report.join("report.md")).expect("report.md");
    let mut width = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            width = None;
            continue;
        }
        let n = cells(line).len();
        assert_eq!(*width.get_or_insert(n), n, "a row with other columns: {line}\n{md}");
    }
    let shown = |dir: &str| format!("{dir}/a,b\\|c\u{fffd}");
    assert!(md.contains(&shown("A")) && md.contains(&shown("B")), "{md}");
}
