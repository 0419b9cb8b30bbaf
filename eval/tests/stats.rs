//! The report's statistics against SciPy (in the project's venv, computing the reference live)
//! on fixed inputs: Wilson intervals, t-intervals over seeds, the exact McNemar test and the
//! paired t-test.

use std::path::Path;
use std::process::Command;

use sipl_eval::stats::{LEVEL, mcnemar_exact, over_seeds, paired_t, wilson};

const SCRIPT: &str = r#"
import json, sys
from scipy import stats
cases = json.loads(sys.argv[1])
out = {"wilson": [], "seeds": [], "mcnemar": [], "paired": []}
for k, n in cases["wilson"]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    out["wilson"].append([ci.low, ci.high])
for v in cases["seeds"]:
    import statistics
    m, s = statistics.mean(v), statistics.stdev(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=m, scale=s / len(v) ** 0.5)
    out["seeds"].append([m, s, lo, hi])
for b, c in cases["mcnemar"]:
    out["mcnemar"].append(stats.binomtest(b, b + c, 0.5).pvalue)
for d in cases["paired"]:
    r = stats.ttest_1samp(d, 0.0)
    out["paired"].append([float(r.statistic), float(r.pvalue)])
print(json.dumps(out))
"#;

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{what}: ours {a} vs SciPy {b}");
}

#[test]
fn formulas_match_scipy() {
    let wilson_cases: [(u64, u64); 7] =
        [(0, 10), (1, 10), (5, 10), (10, 10), (36, 96), (111, 832), (140, 832)];
    let seed_cases: Vec<Vec<f64>> =
        vec![vec![0.133, 0.141, 0.128], vec![0.2, 0.25], vec![0.1, 0.3, 0.2, 0.25, 0.15]];
    let mcnemar_cases: [(usize, usize); 6] = [(0, 1), (3, 3), (10, 2), (2, 10), (40, 25), (0, 12)];
    let paired_cases: Vec<Vec<f64>> =
        vec![vec![0.035, 0.021, 0.04], vec![0.01, -0.02], vec![-0.01, 0.005, 0.002, -0.004]];
    let cases = serde_json::json!({
        "wilson": wilson_cases, "seeds": seed_cases, "mcnemar": mcnemar_cases, "paired": paired_cases,
    });
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let out = Command::new(&py).arg("-c").arg(SCRIPT).arg(cases.to_string()).output();
    let out = out.unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", py.display()));
    assert!(out.status.success(), "SciPy: {}", String::from_utf8_lossy(&out.stderr));
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let f = |v: &serde_json::Value| v.as_f64().expect("number");

    for ((k, n), w) in wilson_cases.iter().zip(want["wilson"].as_array().expect("list")) {
        let ours = wilson(*k, *n, LEVEL).expect("interval");
        close(ours.low, f(&w[0]), &format!("wilson({k}, {n}).low"));
        close(ours.high, f(&w[1]), &format!("wilson({k}, {n}).high"));
    }
    for (v, w) in seed_cases.iter().zip(want["seeds"].as_array().expect("list")) {
        let s = over_seeds(v, LEVEL);
        let i = s.interval.expect("interval");
        close(s.mean, f(&w[0]), "mean");
        close(s.sd.expect("sd"), f(&w[1]), "sd");
        close(i.low, f(&w[2]), "t-interval low");
        close(i.high, f(&w[3]), "t-interval high");
    }
    for ((b, c), w) in mcnemar_cases.iter().zip(want["mcnemar"].as_array().expect("list")) {
        let mut a_right = vec![true; *b];
        a_right.extend(vec![false; *c]);
        let b_right: Vec<bool> = a_right.iter().map(|r| !r).collect();
        // Concordant images change nothing: add some of each kind.
        let (a_right, b_right) = (
            [a_right, vec![true, true, false]].concat(),
            [b_right, vec![true, true, false]].concat(),
        );
        let m = mcnemar_exact(&a_right, &b_right);
        assert_eq!((m.a_only, m.b_only), (*b as u64, *c as u64));
        close(m.p_value, f(w), &format!("McNemar ({b}, {c})"));
    }
    for (d, w) in paired_cases.iter().zip(want["paired"].as_array().expect("list")) {
        let p = paired_t(d, LEVEL).expect("test");
        close(p.t, f(&w[0]), "paired t");
        close(p.p_value, f(&w[1]), "paired p");
    }
}
