//! `sipl eval downstream` (cached and faithful), `sipl eval tsne` and `sipl report` on a tiny
//! labelled set, and the bad inputs the evaluation issue lists: an unlabelled set, a run without
//! weights, weights of another model, labels that do not fit the head, too few images per class
//! for the t-SNE selection, a folder that is not a run.

mod common;

use common::{run, s};

fn dataset(dir: &std::path::Path, labelled: bool) -> std::path::PathBuf {
    let images = dir.join("images");
    let (ok, _, err) =
        run(&["synth", "--out", s(&images), "--classes", "3", "--per-class", "8", "--size", "32"]);
    assert!(ok, "{err}");
    let root = if labelled { images.clone() } else { images.join("class_00") };
    let data = dir.join(if labelled { "ds" } else { "unlabelled" });
    let (ok, _, err) = run(&[
        "ingest",
        "folder",
        s(&root),
        "--out",
        s(&data),
        "--resize",
        "none",
        "--crop",
        "none",
    ]);
    assert!(ok, "{err}");
    data
}

#[test]
fn downstream_head_on_a_random_encoder_writes_the_curve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true);
    let out = tmp.path().join("eval");
    let (ok, stdout, err) = run(&[
        "eval",
        "downstream",
        "--random-init",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--stratified",
        "0.25",
        "--epochs",
        "4",
        "--input-size",
        "32",
        "--batch",
        "8",
        "--device",
        "cpu",
    ]);
    assert!(ok && stdout.contains("best held-out accuracy"), "{stdout}{err}");
    let csv = std::fs::read_to_string(out.join("curve.csv")).expect("csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "epoch,train_loss,val_accuracy,seconds");
    assert_eq!(rows.len(), 5);
    for r in &rows[1..] {
        let acc: f64 = r.split(',').nth(2).expect("acc").parse().expect("number");
        assert!((0.0..=1.0).contains(&acc), "{r}");
    }
    // stderr is not a terminal here: one plain line per head epoch.
    assert_eq!(err.lines().filter(|l| l.starts_with("epoch ")).count(), 4, "{err}");
    // The curve as TensorBoard scalars beside the outputs; a rerun replaces them.
    let events = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("tb/downstream")).map_or(0, |d| {
            d.flatten().filter(|e| e.file_name().to_string_lossy().contains("tfevents")).count()
        })
    };
    assert_eq!(events(&out), 1);
}

#[test]
fn bad_evaluation_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true);
    let unlabelled = dataset(&tmp.path().join("u"), false);
    let out = tmp.path().join("eval");
    let base = [
        "eval",
        "downstream",
        "--out",
        s(&out),
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--device",
        "cpu",
    ];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        run(&v)
    };
    let (ok, _, err) = with(&["--random-init", "--data", s(&unlabelled), "--stratified", "0.25"]);
    assert!(!ok && err.contains("no class labels"), "{err}");
    let empty_run = tmp.path().join("run");
    std::fs::create_dir_all(&empty_run).expect("mkdir");
    let (ok, _, err) = with(&["--run", s(&empty_run), "--data", s(&data)]);
    assert!(!ok && err.contains("no best.safetensors"), "{err}");
    let foreign = tmp.path().join("x.safetensors");
    std::fs::write(&foreign, b"not safetensors at all").expect("write");
    let (ok, _, err) =
        with(&["--weights", s(&foreign), "--data", s(&data), "--stratified", "0.25"]);
    assert!(!ok && err.contains("x.safetensors"), "{err}");
    let (ok, _, err) = with(&["--random-init", "--data", s(&data), "--train-images", "24"]);
    assert!(!ok && err.contains("--train-images = 24: must be in [1, 23]"), "{err}");
    let (ok, _, err) = with(&["--data", s(&data)]);
    assert!(!ok && err.contains("--random-init"), "{err}");
}

/// Downstream in both modes on the data set, over a 2-step pretext run and a random
/// baseline; then the t-SNE study and the report over all of it.
#[test]
fn faithful_and_cached_downstream_tsne_and_report_from_one_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true);
    let run_dir = tmp.path().join("siplv1-tiny");
    let config = common::repo().join("configs/smoke-siplv1.toml");
    let (ok, _, err) = run(&[
        "train",
        "--config",
        s(&config),
        "--run-dir",
        s(&run_dir),
        "-q",
        "--set",
        &format!("data.path={}", data.display()),
        "--set",
        "data.patch_size=16",
        "--set",
        "optim.batch_size=4",
        "--set",
        "optim.max_steps=2",
    ]);
    assert!(ok, "{err}");
    let common = ["--data", s(&data), "--stratified", "0.25", "--epochs", "2"];
    let small = ["--input-size", "32", "--batch", "8", "--device", "cpu", "-q"];
    let downstream = |extra: &[&str]| {
        let mut v = vec!["eval", "downstream"];
        v.extend_from_slice(&common);
        v.extend_from_slice(&small);
        v.extend_from_slice(extra);
        run(&v)
    };
    for mode in ["cached", "faithful"] {
        let (ok, stdout, err) = downstream(&["--run", s(&run_dir), "--mode", mode]);
        assert!(ok && stdout.contains(&format!("{mode} mode")), "{stdout}{err}");
        let out = run_dir.join("eval").join(format!("downstream-{mode}"));
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("summary.json")).expect("summary"),
        )
        .expect("json");
        assert_eq!((summary["mode"].as_str(), summary["epochs"].as_u64()), (Some(mode), Some(2)));
        assert_eq!(summary["name"], "siplv1-tiny");
        let identity = sipl_shards::identity(&data).expect("identity");
        assert_eq!(summary["dataset"]["identity"], identity.as_str(), "{summary}");
        let path = std::path::absolute(&data).expect("absolute");
        assert_eq!(summary["dataset"]["path"], s(&path), "{summary}");
        let png = image::open(out.join("curve.png")).expect("curve.png").to_rgb8();
        assert_eq!(png.dimensions(), (960, 600));
    }
    let baseline = tmp.path().join("baseline");
    let (ok, _, err) = downstream(&["--random-init", "--out", s(&baseline)]);
    assert!(ok, "{err}");

    let tsne = tmp.path().join("tsne");
    let tsne_args = |per_class: &str, perplexity: &str| {
        run(&[
            "eval",
            "tsne",
            "--run",
            s(&run_dir),
            "--random-init",
            "--data",
            s(&data),
            "--out",
            s(&tsne),
            "--per-class",
            per_class,
            "--perplexity",
            perplexity,
            "--epochs",
            "300",
            "--input-size",
            "32",
            "--device",
            "cpu",
        ])
    };
    let (ok, stdout, err) = tsne_args("8", "5");
    assert!(ok && stdout.contains("twin-NN"), "{stdout}{err}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tsne.join("tsne.json")).expect("json"))
            .expect("json");
    let models = json["models"].as_array().expect("models");
    assert_eq!(models.len(), 2);
    for m in models {
        for k in ["twin_nn_embedding", "twin_nn_map"] {
            let v = m["scores"][k].as_f64().expect("score");
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
    }
    let csv = std::fs::read_to_string(tsne.join("tsne.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 2 * 32, "2 models × 2 classes × 8 images × 2 styles");
    assert_eq!(image::open(tsne.join("tsne.png")).expect("png").to_rgb8().width(), 1120);

    // The too-few-images and too-high-perplexity refusals.
    let (ok, _, err) = tsne_args("9", "5");
    assert!(!ok && err.contains("too few images per class"), "{err}");
    let (ok, _, err) = tsne_args("8", "30");
    assert!(!ok && err.contains("--perplexity = 30: must be a number in [1, 10.3]"), "{err}");

    let report = tmp.path().join("report");
    let (ok, stdout, err) = run(&[
        "report",
        s(&run_dir),
        "--baseline",
        s(&baseline),
        "--tsne",
        s(&tsne),
        "--out",
        s(&report),
    ]);
    assert!(ok && stdout.contains("3 rows"), "{stdout}{err}");
    let md = std::fs::read_to_string(report.join("report.md")).expect("md");
    assert!(md.contains("| siplv1-tiny | siplv1 | 1 | 2 |"), "{md}");
    assert!(md.contains("| cached |") && md.contains("| faithful |"), "{md}");
    assert!(md.contains("| 35.4 | 16.8 |"), "the paper's row for comparison: {md}");
    assert!(md.contains("| random init |"), "{md}");
    assert!(md.contains("![Figure 3](figure3.png)") && md.contains("twin-NN"), "{md}");
    for f in ["figure3.png", "figure4.png"] {
        assert!(image::open(report.join(f)).is_ok(), "{f}");
    }
    assert!(!md.contains("different datasets"), "{md}");
    // A baseline evaluated on another set is named as such, not silently compared.
    let summary_path = baseline.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).expect("read")).expect("json");
    summary["dataset"]["identity"] = "0123456789abcdef".into();
    std::fs::write(&summary_path, summary.to_string()).expect("write");
    let (ok, _, err) =
        run(&["report", s(&run_dir), "--baseline", s(&baseline), "--out", s(&report)]);
    assert!(ok, "{err}");
    let md = std::fs::read_to_string(report.join("report.md")).expect("md");
    assert!(
        md.contains("evaluated on different datasets") && md.contains("0123456789abcdef"),
        "{md}"
    );
    let (ok, _, err) = run(&["report", s(&data), "--out", s(&report)]);
    assert!(!ok && err.contains("not a `sipl train` run"), "{err}");
}

#[test]
fn labels_that_do_not_fit_the_head_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true); // 3 classes
    let (ok, _, err) = run(&[
        "eval",
        "downstream",
        "--random-init",
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("o")),
        "--classes",
        "2",
        "--stratified",
        "0.25",
        "--device",
        "cpu",
    ]);
    assert!(!ok && err.contains("label 2 does not fit a head over 2 classes"), "{err}");
}

/// `sipl eval knn`, the authors' BatchNorm variant of faithful mode, the predictions file as
/// pyarrow reads it, and the refusals: `--encoder-bn train` with cached features, k = 0, a
/// temperature of 0.
#[test]
fn knn_encoder_bn_train_and_predictions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), true);
    let small = ["--stratified", "0.25", "--input-size", "32", "--batch", "8", "--device", "cpu"];
    let knn = tmp.path().join("knn");
    let mut args = vec!["eval", "knn", "--random-init", "--data", s(&data), "--out", s(&knn)];
    args.extend_from_slice(&small);
    args.extend_from_slice(&["--k", "3,5"]);
    let (ok, stdout, err) = run(&args);
    assert!(
        ok && stdout.contains("kNN k = 3: ") && stdout.contains("kNN k = 5: "),
        "{stdout}{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(knn.join("knn.json")).expect("json"))
            .expect("json");
    assert_eq!(summary["k"], serde_json::json!([3, 5]));
    assert_eq!(summary["held_out_images"], 6, "a quarter of 3 × 8 images");

    let bn = tmp.path().join("bn-train");
    let mut args = vec!["eval", "downstream", "--random-init", "--data", s(&data), "--out", s(&bn)];
    args.extend_from_slice(&small);
    args.extend_from_slice(&["--mode", "faithful", "--encoder-bn", "train", "--epochs", "2", "-q"]);
    let (ok, stdout, err) = run(&args);
    assert!(ok, "{stdout}{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bn.join("summary.json")).expect("json"))
            .expect("json");
    assert_eq!(summary["encoder_bn"], "train");
    assert_eq!(summary["split"], "stratified 0.25, seed 0");

    // pyarrow reads the predictions: one row per held-out image, the columns and metadata.
    let script = "import sys, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1]); m = t.schema.metadata\n\
        print(t.num_rows, ','.join(t.column_names), m[b'sipl.best_epoch'].decode(), m[b'sipl.final_epoch'].decode())";
    for (dir, last) in [(&knn, "5"), (&bn, "2")] {
        let out = common::python()
            .args(["-c", script, s(&dir.join("predictions.parquet"))])
            .output()
            .expect("python");
        let (ok, stdout, err) = common::text(out);
        assert!(ok, "{err}");
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(fields[0], "6");
        assert_eq!(fields[1], "index,id,label,predicted_best,predicted_final");
        assert_eq!(fields[3], last);
    }

    let cached = tmp.path().join("refused");
    let mut args =
        vec!["eval", "downstream", "--random-init", "--data", s(&data), "--out", s(&cached)];
    args.extend_from_slice(&small);
    args.extend_from_slice(&["--encoder-bn", "train"]);
    let (ok, _, err) = run(&args);
    assert!(!ok && err.contains("--encoder-bn train needs --mode faithful"), "{err}");
    assert!(!cached.exists(), "nothing written for a refused combination");
    for (flag, value, want) in [
        ("--k", "0,5", "--k = 0: must be in [1, 1000000]"),
        ("--temperature", "0", "--temperature = 0"),
    ] {
        let mut args =
            vec!["eval", "knn", "--random-init", "--data", s(&data), "--out", s(&cached)];
        args.extend_from_slice(&small);
        args.extend_from_slice(&[flag, value]);
        let (ok, _, err) = run(&args);
        assert!(!ok && err.contains(want), "{flag} {value}: {err}");
    }
}
