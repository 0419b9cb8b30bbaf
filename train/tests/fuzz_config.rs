//! Bounded fuzzing (proptest) of config parsing: the shipped configs with mutated bytes and
//! lines, and arbitrary `--set` overrides. The promise: a config or an error naming what is
//! wrong, never a panic; and a config that parses writes out as TOML that parses back to
//! itself.
//!
//! CI runs `FUZZ_CASES` cases per property (default 48); `make fuzz` runs many more.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sipl_train::config::TrainConfig;

fn config() -> ProptestConfig {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz_config.txt",
        ))),
        ..ProptestConfig::default()
    }
}

fn shipped() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    // The train configs (configs/tune/ holds search spaces).
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .expect("configs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect();
    v.sort();
    v
}

/// Parses, and when that works, checks the written-out TOML parses back to the same config.
fn check(text: &str, sets: &[String]) -> Result<(), TestCaseError> {
    match TrainConfig::parse(text, sets) {
        Ok(c) => {
            let again = TrainConfig::parse(&c.to_toml(), &[])
                .map_err(|e| TestCaseError::fail(format!("round trip: {e}")))?;
            prop_assert_eq!(again.to_toml(), c.to_toml());
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

fn key() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "data.path",
        "data.val_fraction",
        "data.patch_size",
        "data.workers",
        "data.train_images",
        "model.scheme",
        "model.alpha",
        "model.joint_views",
        "model.batched_views",
        "optim.lr",
        "optim.batch_size",
        "optim.epochs",
        "optim.max_steps",
        "optim.weight_decay",
        "run.seed",
        "run.device",
        "run.checkpoint_every",
        "run.keep_checkpoints",
        "run.log_every",
        "run.threads",
        "run.amp",
        "run.bucket_mb",
        "run.dist_timeout_s",
        "nosuch.key",
        "data",
        "",
    ]);
    known.prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "true", "nan", "inf", "-0", "1e400", "\"x\"", "[1,2]", "{a=1}", "cuda:99", "siplv9",
            "", "=", "\"", "'''",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_config_bytes_parse_or_fail_clearly(
        which in 0usize..7, at in 0.0..1.0f64, bytes in prop::collection::vec(any::<u8>(), 1..8)
    ) {
        let configs = shipped();
        let mut b = configs[which % configs.len()].clone().into_bytes();
        let i = ((at * b.len() as f64) as usize).min(b.len() - 1);
        for (k, v) in bytes.iter().enumerate() {
            if let Some(x) = b.get_mut(i + k) {
                *x = *v;
            }
        }
        check(&String::from_utf8_lossy(&b), &[])?;
    }

    #[test]
    fn dropped_or_repeated_lines_parse_or_fail_clearly(
        which in 0usize..7, line in 0usize..40, repeat in any::<bool>()
    ) {
        let configs = shipped();
        let text = &configs[which % configs.len()];
        let mut lines: Vec<&str> = text.lines().collect();
        let l = line % lines.len();
        if repeat { lines.insert(l, lines[l]) } else { lines.remove(l); }
        check(&lines.join("\n"), &[])?;
    }

    #[test]
    fn arbitrary_overrides_apply_or_fail_clearly(
        which in 0usize..7, sets in prop::collection::vec((key(), value()), 1..4)
    ) {
        let configs = shipped();
        let sets: Vec<String> = sets.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        check(&configs[which % configs.len()], &sets)?;
    }
}
