//! AutoAugment (ImageNet policy) against torchvision 0.26: every op on the goldens of
//! `goldens/make_autoaugment_goldens.py`, byte for byte, and `sample_ops` against the policy and
//! magnitude tables torchvision itself wrote into `goldens/autoaugment/cases.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sipl_eval::autoaugment::{Op, apply_op, autoaugment_imagenet, sample_ops};

fn goldens() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/autoaugment")
}

fn meta() -> Value {
    let text = std::fs::read_to_string(goldens().join("cases.json")).expect("read cases.json");
    serde_json::from_str(&text).expect("parse cases.json")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(goldens().join(name)).expect("read golden")
}

/// torchvision's op name and magnitude as an [`Op`]; -0.0 becomes 0.0 so equal ops print alike.
fn op(name: &str, magnitude: f32) -> Op {
    let m = magnitude + 0.0;
    match name {
        "Posterize" => Op::Posterize(m),
        "Rotate" => Op::Rotate(m),
        "Solarize" => Op::Solarize(m),
        "AutoContrast" => Op::AutoContrast,
        "Equalize" => Op::Equalize,
        "Invert" => Op::Invert,
        "Color" => Op::Color(m),
        "Contrast" => Op::Contrast(m),
        "Sharpness" => Op::Sharpness(m),
        "ShearX" => Op::ShearX(m),
        other => panic!("op {other} is not in the ImageNet policy"),
    }
}

fn name_of(op: &Op) -> &'static str {
    match op {
        Op::Posterize(_) => "Posterize",
        Op::Rotate(_) => "Rotate",
        Op::Solarize(_) => "Solarize",
        Op::AutoContrast => "AutoContrast",
        Op::Equalize => "Equalize",
        Op::Invert => "Invert",
        Op::Color(_) => "Color",
        Op::Contrast(_) => "Contrast",
        Op::Sharpness(_) => "Sharpness",
        Op::ShearX(_) => "ShearX",
    }
}

fn magnitude_of(op: &Op) -> f32 {
    match *op {
        Op::Posterize(m) | Op::Rotate(m) | Op::Solarize(m) => m,
        Op::Color(m) | Op::Contrast(m) | Op::Sharpness(m) | Op::ShearX(m) => m,
        Op::AutoContrast | Op::Equalize | Op::Invert => 0.0,
    }
}

// Every op is expected to match exactly: the implementation redoes torch's float32 steps (see the
// module doc), so no tolerance is granted; a regression shows up as a per-op diff summary.
#[test]
fn every_op_matches_torchvision() {
    let meta = meta();
    let cases = meta["cases"].as_array().expect("cases");
    // op -> (cases, cases with a difference, max abs diff, differing bytes)
    let mut stats: BTreeMap<&str, (usize, usize, u8, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["op"].as_str().expect("op");
        let magnitude = case["magnitude"].as_f64().expect("magnitude") as f32;
        let (width, height) =
            (case["width"].as_u64().expect("w"), case["height"].as_u64().expect("h"));
        let mut image = read(case["input"].as_str().expect("input"));
        let expected = read(case["output"].as_str().expect("output"));
        apply_op(&mut image, width as usize, height as usize, op(name, magnitude));
        let diffs: Vec<u8> =
            image.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).filter(|&d| d > 0).collect();
        let entry = stats.entry(name).or_default();
        entry.0 += 1;
        if !diffs.is_empty() {
            entry.1 += 1;
            entry.2 = entry.2.max(diffs.iter().copied().max().unwrap_or(0));
            entry.3 += diffs.len();
            failures.push(format!("{} on {}: {} bytes differ", name, case["input"], diffs.len()));
        }
    }
    for (name, (n, bad, max_diff, bytes)) in &stats {
        println!("{name:>12}: {n:3} cases, {bad} differ, max |diff| {max_diff}, {bytes} bytes");
    }
    assert_eq!(stats.len(), 10, "every op of the policy has goldens");
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// An outcome of one AutoAugment call, as a printable key: the ops in order.
fn key(ops: &[Op]) -> String {
    let ops: Vec<Op> = ops.iter().map(|o| op(name_of(o), magnitude_of(o))).collect();
    format!("{ops:?}")
}

/// torchvision's outcome distribution, enumerated from its own policy and tables: sub-policy
/// uniform, step applied when `torch.rand() <= p` (24-bit uniform, so p = 0 still fires with
/// probability 2^-24), signed magnitudes negated with probability 1/2.
fn expected_outcomes(meta: &Value) -> HashMap<String, f64> {
    let policy = meta["policy"].as_array().expect("policy");
    let mut outcomes = HashMap::new();
    for sub in policy {
        // Each step's alternatives: (op if applied, probability).
        let choices: Vec<Vec<(Option<Op>, f64)>> = sub
            .as_array()
            .expect("sub-policy")
            .iter()
            .map(|step| {
                let name = step["op"].as_str().expect("op");
                let p = step["p"].as_f64().expect("p") as f32;
                let p =
                    ((f64::from(p) * 16_777_216.0).floor() + 1.0).min(16_777_216.0) / 16_777_216.0;
                let m = match step["bin"].as_u64() {
                    Some(bin) => meta["tables"][name][bin as usize].as_f64().expect("table") as f32,
                    None => 0.0,
                };
                let mut alternatives = vec![(None, 1.0 - p)];
                if meta["signed"][name].as_bool().expect("signed") {
                    alternatives.push((Some(op(name, m)), p / 2.0));
                    alternatives.push((Some(op(name, -m)), p / 2.0));
                } else {
                    alternatives.push((Some(op(name, m)), p));
                }
                alternatives
            })
            .collect();
        for (first, p1) in &choices[0] {
            for (second, p2) in &choices[1] {
                let ops: Vec<Op> = [first, second].into_iter().flatten().copied().collect();
                *outcomes.entry(key(&ops)).or_insert(0.0) += p1 * p2 / policy.len() as f64;
            }
        }
    }
    outcomes
}

#[test]
fn sample_ops_follows_the_imagenet_policy() {
    let meta = meta();
    let expected = expected_outcomes(&meta);
    let total: f64 = expected.values().sum();
    assert!((total - 1.0).abs() < 1e-9, "outcome probabilities sum to {total}");

    const DRAWS: usize = 20_000;
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut seen: HashMap<String, usize> = HashMap::new();
    // op -> (draws with a nonzero signed magnitude, of which negative)
    let mut signs: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for _ in 0..DRAWS {
        let ops = sample_ops(224, 224, &mut rng);
        for o in &ops {
            let m = magnitude_of(o);
            if m != 0.0 && meta["signed"][name_of(o)].as_bool().expect("signed") {
                let entry = signs.entry(name_of(o)).or_default();
                entry.0 += 1;
                entry.1 += usize::from(m < 0.0);
            }
        }
        *seen.entry(key(&ops)).or_default() += 1;
    }

    for (outcome, n) in &seen {
        assert!(expected.contains_key(outcome), "{outcome} is not a possible outcome");
        assert!(expected[outcome] > 1e-6, "{outcome} drawn {n} times, probability ~2^-24");
    }
    // Each outcome's count within 5 binomial standard deviations (+1 for the rarest ones).
    for (outcome, &q) in &expected {
        let n = seen.get(outcome).copied().unwrap_or(0) as f64;
        let (mean, sd) = (DRAWS as f64 * q, (DRAWS as f64 * q * (1.0 - q)).sqrt());
        assert!((n - mean).abs() <= 5.0 * sd + 1.0, "{outcome}: {n} draws, expected {mean:.1}");
    }
    // The policy's `("Equalize", 0.0, None)` first step never shows at 20,000 draws: sub-policy 12
    // gives [] or one Equalize, and only sub-policies 2 and 24 give two.
    let double = expected[&key(&[Op::Equalize, Op::Equalize])];
    assert!((double - 2.0 * 0.8 * 0.6 / 25.0).abs() < 1e-6, "P(two Equalize) = {double}");
    assert_eq!(
        signs.keys().copied().collect::<Vec<_>>(),
        ["Color", "Contrast", "Rotate", "Sharpness", "ShearX"]
    );
    for (name, (n, negative)) in &signs {
        let sd = (*n as f64 * 0.25).sqrt();
        assert!(
            (*negative as f64 - *n as f64 / 2.0).abs() <= 5.0 * sd,
            "{name}: {negative}/{n} negative"
        );
    }
}

#[test]
fn autoaugment_is_sample_then_apply() {
    let (width, height) = (23, 17);
    let input = read("noise_17x23.in.u8");
    for seed in 0..50 {
        let mut composed = input.clone();
        autoaugment_imagenet(&mut composed, width, height, &mut ChaCha8Rng::seed_from_u64(seed));
        let mut stepwise = input.clone();
        for o in sample_ops(width, height, &mut ChaCha8Rng::seed_from_u64(seed)) {
            apply_op(&mut stepwise, width, height, o);
        }
        assert_eq!(composed, stepwise, "seed {seed}");
    }
}
