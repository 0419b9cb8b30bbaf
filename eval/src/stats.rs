//! The statistics of the report: how sure a measured accuracy is, and whether two encoders
//! differ on the same images.
//!
//! - [`wilson`]: the Wilson score interval of a binomial proportion (Wilson 1927; the interval
//!   SciPy's `binomtest(k, n).proportion_ci(method="wilson")` gives), for one run's accuracy on
//!   `n` held-out images.
//! - [`over_seeds`]: mean, sample standard deviation and Student's t-interval of per-seed values
//!   (`scipy.stats.t.interval(level, n-1, mean, sd/√n)`).
//! - [`mcnemar_exact`]: the exact McNemar test of two classifiers on the same images: of the
//!   images exactly one of them gets right, how unlikely the split is if both were equally good
//!   (two-sided binomial test with p = ½ on the discordant pairs; `scipy.stats.binomtest(b, b+c)`).
//! - [`paired_t`]: the paired t-test of per-seed differences (`scipy.stats.ttest_1samp(d, 0)`,
//!   equal to `ttest_rel`).
//!
//! The distributions come from `statrs`; every formula is checked against SciPy in
//! `eval/tests/stats.rs`.

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};

/// The confidence level of every interval in the report.
pub const LEVEL: f64 = 0.95;

/// A closed interval [low, high].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The two-sided standard-normal quantile for `level` (1.96 at 0.95).
fn z(level: f64) -> f64 {
    Normal::new(0.0, 1.0).expect("standard normal").inverse_cdf(0.5 + level / 2.0)
}

/// Wilson score interval for `successes` out of `n` at confidence `level` (both ends in
/// [0, 1]); `None` when `n` is 0.
pub fn wilson(successes: u64, n: u64, level: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let (k, n) = (successes as f64, n as f64);
    let z = z(level);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    // At 0 or n successes the ends are exactly 0 or 1 (rounding leaves ~1e-17).
    let low = if successes == 0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if successes as f64 == n { 1.0 } else { (centre + half).min(1.0) };
    Some(Interval { low, high })
}

/// Several seeds of one model: mean, sample standard deviation (n − 1) and the t-interval of
/// the mean (`None` with fewer than two seeds: one value has no spread to estimate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedSummary {
    pub n: usize,
    pub mean: f64,
    pub sd: Option<f64>,
    pub interval: Option<Interval>,
}

/// Mean, standard deviation and `level` t-interval of `values` (one per seed).
pub fn over_seeds(values: &[f64], level: f64) -> SeedSummary {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return SeedSummary { n, mean, sd: None, interval: None };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .expect("t distribution")
        .inverse_cdf(0.5 + level / 2.0);
    let half = t * sd / (n as f64).sqrt();
    SeedSummary {
        n,
        mean,
        sd: Some(sd),
        interval: Some(Interval { low: mean - half, high: mean + half }),
    }
}

/// The exact McNemar test of classifiers A and B on the same images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemar {
    /// Images A gets right and B wrong.
    pub a_only: u64,
    /// Images B gets right and A wrong.
    pub b_only: u64,
    /// Images in all.
    pub n: u64,
    /// Two-sided p-value (1 when there are no discordant images).
    pub p_value: f64,
}

impl McNemar {
    /// A's accuracy minus B's, as a fraction of all images.
    pub fn difference(&self) -> f64 {
        (self.a_only as f64 - self.b_only as f64) / self.n.max(1) as f64
    }
}

/// Exact McNemar test from per-image correctness of A and B (same images, same order).
///
/// # Panics
/// When the two slices differ in length (the caller pairs only identical held-out sets).
pub fn mcnemar_exact(a_right: &[bool], b_right: &[bool]) -> McNemar {
    assert_eq!(a_right.len(), b_right.len(), "McNemar pairs the same images");
    let a_only = a_right.iter().zip(b_right).filter(|&(&a, &b)| a && !b).count() as u64;
    let b_only = a_right.iter().zip(b_right).filter(|&(&a, &b)| !a && b).count() as u64;
    let m = a_only + b_only;
    let p_value = if m == 0 {
        1.0
    } else {
        // Two-sided exact binomial test at p = ½: the distribution is symmetric, so the
        // p-value is twice the smaller tail (SciPy's "minlike" gives the same here).
        let bin = Binomial::new(0.5, m).expect("binomial");
        let k = a_only.min(b_only);
        if 2 * k == m { 1.0 } else { f64::min(2.0 * bin.cdf(k), 1.0) }
    };
    McNemar { a_only, b_only, n: a_right.len() as u64, p_value }
}

/// The paired t-test of per-seed differences (A − B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedT {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// `level` t-interval of the mean difference.
    pub interval: Interval,
}

/// Paired t-test of `differences` (one per seed) against 0; `None` with fewer than two.
/// Differences without spread give t = ±∞ and p = 0 (or p = 1 when all are 0).
pub fn paired_t(differences: &[f64], level: f64) -> Option<PairedT> {
    let s = over_seeds(differences, level);
    let (sd, interval) = (s.sd?, s.interval?);
    let df = (s.n - 1) as f64;
    let dist = StudentsT::new(0.0, 1.0, df).expect("t distribution");
    let (t, p_value) = if sd == 0.0 {
        if s.mean == 0.0 { (0.0, 1.0) } else { (s.mean.signum() * f64::INFINITY, 0.0) }
    } else {
        let t = s.mean / (sd / (s.n as f64).sqrt());
        (t, f64::min(2.0 * dist.cdf(-t.abs()), 1.0))
    };
    Some(PairedT { n: s.n, mean: s.mean, sd, t, df, p_value, interval })
}

/// Significance level of the report's verdicts.
pub const ALPHA: f64 = 0.05;

/// "A > B, p = 0.003", "A < B, p = …" or "no difference shown (p = 0.41)".
pub fn verdict(a: &str, b: &str, difference: f64, p_value: f64) -> String {
    let p = format_p(p_value);
    match (p_value < ALPHA, difference > 0.0) {
        (true, true) => format!("{a} > {b}, {p}"),
        (true, false) => format!("{a} < {b}, {p}"),
        (false, _) => format!("no difference shown ({p})"),
    }
}

/// A p-value as people read it: "p = 0.042", or "p < 0.001".
pub fn format_p(p: f64) -> String {
    if p < 0.001 { "p < 0.001".into() } else { format!("p = {p:.3}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_inputs() {
        assert_eq!(wilson(0, 0, LEVEL), None);
        let w = wilson(0, 10, LEVEL).expect("interval");
        assert_eq!(w.low, 0.0);
        assert!(w.high > 0.2 && w.high < 0.35, "{w:?}");
        let s = over_seeds(&[0.3], LEVEL);
        assert_eq!((s.n, s.sd, s.interval), (1, None, None));
        assert_eq!(mcnemar_exact(&[true, false], &[true, false]).p_value, 1.0);
        assert_eq!(paired_t(&[0.1], LEVEL), None);
        assert_eq!(paired_t(&[0.0, 0.0], LEVEL).map(|p| p.p_value), Some(1.0));
        assert_eq!(paired_t(&[0.1, 0.1], LEVEL).map(|p| p.p_value), Some(0.0));
        assert_eq!(verdict("A", "B", 0.1, 0.01), "A > B, p = 0.010");
        assert_eq!(verdict("A", "B", -0.1, 0.0001), "A < B, p < 0.001");
        assert_eq!(verdict("A", "B", 0.1, 0.2), "no difference shown (p = 0.200)");
    }
}
