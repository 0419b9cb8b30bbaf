//! The report's statistics end to end, on evaluation folders written here (no training):
//! seeds aggregated per model, paired comparisons on the same images with verdicts, and the
//! refusals (different held-out sets, predictions that do not match their summary, one seed
//! only said plainly).

use std::path::{Path, PathBuf};

use sipl_eval::downstream::EpochResult;
use sipl_eval::predictions::{self, PREDICTIONS, PredictionTable};
use sipl_eval::report::{DownstreamSummary, SUMMARY, report};

const N: usize = 400;
const CLASSES: i32 = 10;

/// A pretext run folder: the demo's config with `seed`, and one validation line.
fn fake_run(root: &Path, name: &str, scheme: &str, seed: u64, pretext: f64) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("run dir");
    let config = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/demo-{scheme}.toml")),
    )
    .expect("config")
    .replace("seed = 0", &format!("seed = {seed}"));
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let line = serde_json::json!({"step": 500, "epoch": 40, "val_accuracy": pretext, "val_predictions": 128});
    std::fs::write(dir.join("metrics.jsonl"), format!("{line}\n")).expect("metrics");
    dir
}

/// Right on images where `right(i)` holds, a wrong class elsewhere.
fn predictions_for(right: impl Fn(usize) -> bool) -> Vec<i32> {
    (0..N)
        .map(|i| {
            let label = (i as i32) % CLASSES;
            if right(i) { label } else { (label + 1) % CLASSES }
        })
        .collect()
}

/// An evaluation folder `dir` with `best`/`last` predictions over the same N held-out images
/// (`held_out` names the set).
fn fake_eval(dir: &Path, name: &str, seed: i64, held_out: &str, best: Vec<i32>, last: Vec<i32>) {
    std::fs::create_dir_all(dir).expect("eval dir");
    let label: Vec<i32> = (0..N as i32).map(|i| i % CLASSES).collect();
    let acc = |p: &[i32]| p.iter().zip(&label).filter(|(a, b)| a == b).count() as f64 / N as f64;
    let (ab, al) = (acc(&best), acc(&last));
    let curve = vec![
        EpochResult { epoch: 1, train_loss: 2.0, val_accuracy: ab, seconds: 0.1 },
        EpochResult { epoch: 2, train_loss: 1.5, val_accuracy: al.min(ab), seconds: 0.1 },
    ];
    let mut s = DownstreamSummary::new(name, None, "cached", false, (600, N), &curve, (1.0, 2.0));
    s.seed = Some(seed);
    s.split = Some("stratified 0.4, seed 0".into());
    s.held_out = Some(held_out.into());
    s.encoder_bn = Some("eval".into());
    std::fs::write(dir.join(SUMMARY), serde_json::to_string_pretty(&s).expect("json"))
        .expect("summary");
    let mut csv = String::from("epoch,train_loss,val_accuracy,seconds\n");
    for r in &curve {
        csv += &format!("{},{},{},{}\n", r.epoch, r.train_loss, r.val_accuracy, r.seconds);
    }
    std::fs::write(dir.join("curve.csv"), csv).expect("curve");
    let last = if al <= ab { last } else { best.clone() };
    let t = PredictionTable {
        index: (0..N as u64).collect(),
        id: (0..N as u64).collect(),
        label,
        predicted_best: best,
        predicted_final: last,
        best_epoch: s.best_epoch,
        final_epoch: 2,
        held_out: held_out.into(),
    };
    predictions::write(&t, &dir.join(PREDICTIONS)).expect("predictions");
}

fn table_row<'a>(md: &'a str, start: &str) -> &'a str {
    md.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no row {start:?} in\n{md}"))
}

#[test]
fn three_seeds_aggregate_and_compare_with_paired_tests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut runs = Vec::new();
    // SIPLv1 right on 55-60% of images, OPL on 35-40%, the random encoder on 25%, by seed.
    for seed in 0..3u64 {
        let s = seed as usize;
        let siplv1 = fake_run(tmp.path(), &format!("siplv1-seed{seed}"), "siplv1", seed, 0.45);
        let right = move |i: usize| (i * 7 + s) % 20 < 11 + s % 2;
        fake_eval(
            &siplv1.join("eval/downstream-cached"),
            &format!("siplv1-seed{seed}"),
            seed as i64,
            "aaaa",
            predictions_for(right),
            predictions_for(right),
        );
        let opl = fake_run(tmp.path(), &format!("opl-seed{seed}"), "opl", seed, 0.8);
        let right = move |i: usize| (i * 7 + s) % 20 < 8 - s % 2;
        fake_eval(
            &opl.join("eval/downstream-cached"),
            &format!("opl-seed{seed}"),
            seed as i64,
            "aaaa",
            predictions_for(right),
            predictions_for(right),
        );
        runs.push(siplv1);
        runs.push(opl);
    }
    let mut baselines = Vec::new();
    for seed in 0..3usize {
        let dir = tmp.path().join(format!("random-init-seed{seed}"));
        let right = move |i: usize| (i * 3 + seed).is_multiple_of(4);
        fake_eval(
            &dir,
            "random init",
            seed as i64,
            "aaaa",
            predictions_for(right),
            predictions_for(right),
        );
        baselines.push(dir);
    }
    let out = tmp.path().join("report");
    let r = report(&runs, &baselines, None, &out).expect("report");
    let md = std::fs::read_to_string(&r.markdown).expect("md");
    println!("{md}");
    assert_eq!(r.rows, 3, "three models: SIPLv1, OPL, random init");
    // Aggregated: "mean ± sd [t-interval]" over three seeds.
    let row = table_row(&md, "| siplv1 | siplv1 | 3 |");
    assert!(row.contains(" ± ") && row.contains('['), "{row}");
    let row = table_row(&md, "| random init | – | 3 |");
    assert!(row.contains(" ± "), "{row}");
    // Paired over seeds, with per-seed McNemar detail and a verdict.
    let row = table_row(&md, "| siplv1 (cached) | opl (cached) | 3 |");
    assert!(row.contains("paired t over 3 seeds") && row.contains("best: siplv1 > opl"), "{row}");
    assert!(md.contains("Per seed (exact McNemar on the same images)"), "{md}");
    assert!(!md.contains("One seed only"), "{md}");
    assert!(r.figure3.is_some());
}

#[test]
fn one_seed_different_held_out_sets_and_mismatched_predictions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = fake_run(tmp.path(), "siplv1", "siplv1", 0, 0.45);
    let right = |i: usize| i.is_multiple_of(2);
    fake_eval(
        &a.join("eval/downstream-cached"),
        "siplv1",
        0,
        "aaaa",
        predictions_for(right),
        predictions_for(right),
    );
    let b = fake_run(tmp.path(), "opl", "opl", 0, 0.8);
    let right = |i: usize| i.is_multiple_of(3);
    fake_eval(
        &b.join("eval/downstream-cached"),
        "opl",
        0,
        "aaaa",
        predictions_for(right),
        predictions_for(right),
    );
    let other = tmp.path().join("random-other-split");
    fake_eval(
        &other,
        "random init",
        0,
        "bbbb",
        predictions_for(|i| i % 4 == 0),
        predictions_for(|i| i % 4 == 0),
    );

    let out = tmp.path().join("report");
    let r =
        report(&[a.clone(), b.clone()], std::slice::from_ref(&other), None, &out).expect("report");
    let md = std::fs::read_to_string(&r.markdown).expect("md");
    println!("{md}");
    // One seed: Wilson intervals only, and said so.
    let row = table_row(&md, "| siplv1 | siplv1 | 1 |");
    assert!(row.contains('[') && !row.contains(" ± "), "{row}");
    assert!(md.contains("One seed only") && md.contains("no t-interval"), "{md}");
    // One seed each on the same images: McNemar.
    let row = table_row(&md, "| siplv1 (cached) | opl (cached) | 1 |");
    assert!(row.contains("McNemar"), "{row}");
    // Different held-out images: not paired, and why.
    assert!(
        md.contains("random init (cached): not compared: they held out different images"),
        "{md}"
    );

    // Predictions that do not match their summary are refused, naming the file.
    let p = a.join("eval/downstream-cached").join(PREDICTIONS);
    let mut t = predictions::read(&p).expect("read");
    t.predicted_best[0] = (t.label[0] + 1) % CLASSES; // was right: one fewer correct now
    predictions::write(&t, &p).expect("write");
    let e = report(&[a.clone(), b.clone()], &[], None, &out).expect_err("mismatch");
    let msg = e.to_string();
    assert!(msg.contains("predictions.parquet") && msg.contains("recounts to"), "{msg}");
    t.predicted_best.pop();
    t.predicted_final.pop();
    t.label.pop();
    t.index.pop();
    t.id.pop();
    predictions::write(&t, &p).expect("write");
    let msg = report(&[a, b], &[], None, &out).expect_err("rows").to_string();
    assert!(msg.contains("399 rows for 400 held-out images"), "{msg}");
}

#[test]
fn the_same_model_and_seed_twice_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let right = |i: usize| i.is_multiple_of(2);
    let mut runs = Vec::new();
    for name in ["x", "y"] {
        let r = fake_run(tmp.path(), name, "opl", 0, 0.5);
        fake_eval(
            &r.join("eval/downstream-cached"),
            name,
            0,
            "aaaa",
            predictions_for(right),
            predictions_for(right),
        );
        runs.push(r);
    }
    // Two folders with the same config and the same seed are one model's seed 0 twice: which
    // one to pair would be a guess.
    let msg = report(&runs, &[], None, &tmp.path().join("r")).expect_err("twice").to_string();
    assert!(msg.contains("same seed 0") && msg.contains("give one of them"), "{msg}");
}
