//! Ranges of integers and of real numbers, and the one error every refused value becomes:
//! `OPTION = VALUE: must be in RANGE (why)`.

use std::fmt;

/// A refused option value. Displays as `OPTION = VALUE: must be EXPECTED (NOTE)`, e.g.
/// `run.threads = 100000: must be in [1, 2] (this machine has 2 cores)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option} = {value}: must be {expected}{}", note.as_ref().map_or(String::new(), |n| format!(" ({n})")))]
pub struct RangeError {
    /// The option as the user wrote it: a config key (`optim.lr`) or a flag (`--lr`).
    pub option: String,
    pub value: String,
    /// What the value must be, e.g. `in [1, 4096]`.
    pub expected: String,
    /// Why, when the range comes from the machine or the data.
    pub note: Option<String>,
}

impl RangeError {
    pub fn new(option: &str, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        RangeError {
            option: option.to_owned(),
            value: value.to_string(),
            expected: expected.into(),
            note: None,
        }
    }

    /// Adds (or extends) the explanation shown in parentheses.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        self.note = Some(match self.note.take() {
            Some(old) => format!("{old}; {note}"),
            None => note,
        });
        self
    }
}

/// An inclusive range of integers, `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ints {
    pub min: u64,
    pub max: u64,
}

impl Ints {
    pub const fn new(min: u64, max: u64) -> Self {
        Ints { min, max }
    }

    /// The same range with its maximum lowered to `max` (a limit of this machine or of the
    /// data); never below `min`'s own refusal, so an empty range refuses every value.
    pub fn at_most(self, max: u64) -> Self {
        Ints { min: self.min, max: self.max.min(max) }
    }

    pub fn contains(&self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }

    /// `value` when it lies in the range (negative values never do), else the error naming
    /// `option`.
    pub fn check<T>(&self, option: &str, value: T) -> Result<T, RangeError>
    where
        T: Copy + fmt::Display + TryInto<u64>,
    {
        match value.try_into() {
            Ok(v) if self.contains(v) => Ok(value),
            _ => Err(RangeError::new(option, value, self.expected())),
        }
    }

    /// As [`Ints::check`] for an optional value (`None` passes).
    pub fn check_opt<T>(&self, option: &str, value: Option<T>) -> Result<Option<T>, RangeError>
    where
        T: Copy + fmt::Display + TryInto<u64>,
    {
        value.map(|v| self.check(option, v)).transpose()
    }

    /// `in [1, 4096]`, or `>= 1` when unbounded above.
    pub fn expected(&self) -> String {
        match self.max {
            u64::MAX => format!(">= {}", self.min),
            _ => format!("in {self}"),
        }
    }
}

impl fmt::Display for Ints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.min, self.max)
    }
}

/// A range of finite real numbers, each end open or closed: `(0, 1)`, `[0, 1000]`, `(0, 4096]`.
/// NaN and infinities are never in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reals {
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub hi_open: bool,
}

impl Reals {
    /// `(lo, hi)`.
    pub const fn open(lo: f64, hi: f64) -> Self {
        Reals { lo, lo_open: true, hi, hi_open: true }
    }

    /// `[lo, hi]`.
    pub const fn closed(lo: f64, hi: f64) -> Self {
        Reals { lo, lo_open: false, hi, hi_open: false }
    }

    /// `(lo, hi]`.
    pub const fn open_closed(lo: f64, hi: f64) -> Self {
        Reals { lo, lo_open: true, hi, hi_open: false }
    }

    pub fn contains(&self, v: f64) -> bool {
        let above = if self.lo_open { v > self.lo } else { v >= self.lo };
        let below = if self.hi_open { v < self.hi } else { v <= self.hi };
        v.is_finite() && above && below
    }

    /// `value` when it lies in the range, else the error naming `option`.
    pub fn check(&self, option: &str, value: f64) -> Result<f64, RangeError> {
        match self.contains(value) {
            true => Ok(value),
            false => Err(RangeError::new(option, value, self.expected())),
        }
    }

    /// `a number in (0, 1)`.
    pub fn expected(&self) -> String {
        format!("a number in {self}")
    }
}

impl fmt::Display for Reals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, r) = (if self.lo_open { '(' } else { '[' }, if self.hi_open { ')' } else { ']' });
        write!(f, "{l}{}, {}{r}", self.lo, self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_name_option_value_and_range() {
        let r = Ints::new(1, 4096);
        assert_eq!(r.check("--batch", 64usize), Ok(64));
        let e = r.check("--batch", 0usize).expect_err("zero");
        assert_eq!(e.to_string(), "--batch = 0: must be in [1, 4096]");
        let e = r.check("--seed", -3i64).expect_err("negative");
        assert_eq!(e.to_string(), "--seed = -3: must be in [1, 4096]");
        let e = r.at_most(2).check("run.threads", 3usize).expect_err("cores");
        let e = e.note("this machine has 2 cores");
        assert_eq!(e.to_string(), "run.threads = 3: must be in [1, 2] (this machine has 2 cores)");
        assert_eq!(Ints::new(1, u64::MAX).check("k", 0u8).expect_err("0").expected, ">= 1");
        assert_eq!(r.check_opt("--x", None::<u32>), Ok(None));
    }

    #[test]
    fn reals_refuse_nan_infinities_and_open_ends() {
        let lr = Reals::open(0.0, 1.0);
        assert!(lr.contains(1e-4));
        for v in [0.0, 1.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!lr.contains(v), "{v}");
        }
        let e = lr.check("--lr", f64::NAN).expect_err("nan");
        assert_eq!(e.to_string(), "--lr = NaN: must be a number in (0, 1)");
        assert!(Reals::closed(0.0, 5.0).contains(0.0) && Reals::closed(0.0, 5.0).contains(5.0));
        assert_eq!(Reals::open_closed(0.0, 4096.0).to_string(), "(0, 4096]");
        assert!(!Reals::closed(0.0, f64::MAX).contains(f64::INFINITY));
    }
}
