//! The search space: a TOML file keyed by the same dotted config keys as `--set`, one table
//! per searched key, each checked before any trial runs.
//!
//! ```toml
//! [optim.lr]
//! type = "float"         # a real in [low, high]
//! low = 1e-5
//! high = 1e-3
//! log = true             # sampled uniformly in log space (both bounds > 0)
//!
//! [optim.batch_size]
//! type = "int"           # an integer in [low, high]
//! low = 32
//! high = 256
//! power_of_two = true    # only 2^k inside the range (or `log = true`)
//!
//! [model.scheme]
//! type = "categorical"
//! choices = ["siplv1", "siplv2"]
//! ```
//!
//! Every bound and every choice is applied to the base config with `--set` semantics and
//! validated there ([`TrainConfig::parse`]), so a key that does not exist or a value outside
//! its range fails with the same words `sipl train` uses, before the study starts.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sipl_train::config::TrainConfig;

use crate::TuneError;

/// Keys the tuner sets itself on every trial, so a space may not search them.
pub const RESERVED: [&str; 2] = ["run.device", "run.checkpoint_each_epoch"];

/// One searched config key and where its values come from (Optuna's distributions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Param {
    /// A real in [low, high] (log: uniform in log space).
    Float { key: String, low: f64, high: f64, log: bool },
    /// An integer in [low, high] (log: uniform in log space).
    Int { key: String, low: i64, high: i64, log: bool },
    /// 2^k for every integer k in [low_exp, high_exp] (searched as the exponent).
    PowerOfTwo { key: String, low_exp: u32, high_exp: u32 },
    /// One of `choices` (TOML values: strings, numbers, booleans).
    Categorical { key: String, choices: Vec<toml::Value> },
}

impl Param {
    /// The config key.
    pub fn key(&self) -> &str {
        match self {
            Param::Float { key, .. }
            | Param::Int { key, .. }
            | Param::PowerOfTwo { key, .. }
            | Param::Categorical { key, .. } => key,
        }
    }

    /// Values at the edges of the range (every choice, for a categorical): what validation
    /// applies to the base config.
    fn edge_values(&self) -> Vec<toml::Value> {
        match self {
            Param::Float { low, high, .. } => vec![(*low).into(), (*high).into()],
            Param::Int { low, high, .. } => vec![(*low).into(), (*high).into()],
            Param::PowerOfTwo { low_exp, high_exp, .. } => {
                vec![(1i64 << low_exp).into(), (1i64 << high_exp).into()]
            }
            Param::Categorical { choices, .. } => choices.clone(),
        }
    }
}

/// `KEY=VALUE` for `--set`, the value written as TOML (strings quoted, floats with a point or
/// an exponent).
pub fn set_arg(key: &str, value: &toml::Value) -> String {
    format!("{key}={value}")
}

/// A checked search space, in the file's key order (sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub params: Vec<Param>,
}

/// One table of the file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    r#type: String,
    low: Option<toml::Value>,
    high: Option<toml::Value>,
    #[serde(default)]
    log: bool,
    #[serde(default)]
    power_of_two: bool,
    choices: Option<Vec<toml::Value>>,
}

impl Space {
    /// Reads and checks `path` against the base config `base` (TOML text with `sets` applied).
    ///
    /// Errors ([`TuneError::Space`], naming the file and the key): a key that is not a config
    /// key or is one the tuner sets ([`RESERVED`]); an unknown `type` or field; a missing,
    /// inverted (`low > high`) or empty (`low == high`, no power of two inside) range; `log`
    /// with a bound ≤ 0; a categorical without choices; a bound or choice outside the key's
    /// own range; no key at all.
    pub fn load(path: &Path, base: &str, sets: &[String]) -> Result<Self, TuneError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TuneError::Space(format!("{}: {e}", path.display())))?;
        Self::parse(&text, base, sets)
            .map_err(|e| TuneError::Space(format!("{}: {e}", path.display())))
    }

    /// [`Space::load`] on text; errors are plain messages naming the key.
    pub fn parse(text: &str, base: &str, sets: &[String]) -> Result<Self, String> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut entries = BTreeMap::new();
        collect(&doc, "", &mut entries)?;
        if entries.is_empty() {
            return Err(
                "no key to search: add a table such as [optim.lr] with type, low, high".into()
            );
        }
        let mut params = Vec::new();
        for (key, entry) in entries {
            let p = param(&key, entry).map_err(|e| format!("{key}: {e}"))?;
            for v in p.edge_values() {
                let mut all = sets.to_vec();
                all.push(set_arg(&key, &v));
                TrainConfig::parse(base, &all).map_err(|e| {
                    let e = e.to_string();
                    if e.contains("unknown field") {
                        format!("{key}: not a config key (`sipl train --help` lists them)")
                    } else if e.starts_with(&key) {
                        e
                    } else {
                        format!("{key} = {v}: {e}")
                    }
                })?;
            }
            params.push(p);
        }
        Ok(Space { params })
    }

    /// The space as TOML, the form saved with a study (`DIR/space.toml`).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for p in &self.params {
            out.push_str(&format!("[{}]\n", p.key()));
            match p {
                Param::Float { low, high, log, .. } => out.push_str(&format!(
                    "type = \"float\"\nlow = {}\nhigh = {}\nlog = {log}\n",
                    toml::Value::from(*low),
                    toml::Value::from(*high)
                )),
                Param::Int { low, high, log, .. } => out.push_str(&format!(
                    "type = \"int\"\nlow = {low}\nhigh = {high}\nlog = {log}\n"
                )),
                Param::PowerOfTwo { low_exp, high_exp, .. } => out.push_str(&format!(
                    "type = \"int\"\nlow = {}\nhigh = {}\npower_of_two = true\n",
                    1u64 << low_exp,
                    1u64 << high_exp
                )),
                Param::Categorical { choices, .. } => {
                    let c: Vec<String> = choices.iter().map(|v| v.to_string()).collect();
                    out.push_str(&format!("type = \"categorical\"\nchoices = [{}]\n", c.join(", ")))
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Walks the file's tables: one with a `type` is a searched key at its dotted path.
fn collect(
    table: &toml::Table,
    prefix: &str,
    out: &mut BTreeMap<String, Entry>,
) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let toml::Value::Table(t) = value else {
            return Err(format!(
                "{key} = {value}: expected a table keyed by a config key, such as [optim.lr] with type = \"float\", low and high"
            ));
        };
        if t.contains_key("type") {
            if key.matches('.').count() != 1 {
                return Err(format!(
                    "{key}: not a config key (keys are SECTION.KEY, e.g. optim.lr)"
                ));
            }
            if RESERVED.contains(&key.as_str()) {
                return Err(format!(
                    "{key}: set by the tuner on every trial, so it cannot be searched"
                ));
            }
            let entry = toml::Value::Table(t.clone())
                .try_into()
                .map_err(|e: toml::de::Error| format!("{key}: {}", e.message()))?;
            out.insert(key, entry);
        } else {
            collect(t, &key, out)?;
        }
    }
    Ok(())
}

/// One entry checked into a [`Param`] (the key is added by the caller).
fn param(key: &str, e: Entry) -> Result<Param, String> {
    let key = key.to_owned();
    let unused = |field: &str, present: bool| match present {
        true => Err(format!("`{field}` does not apply to type = \"{}\"", e.r#type)),
        false => Ok(()),
    };
    match e.r#type.as_str() {
        "float" => {
            unused("power_of_two", e.power_of_two)?;
            unused("choices", e.choices.is_some())?;
            let low = number(e.low.as_ref(), "low")?;
            let high = number(e.high.as_ref(), "high")?;
            range(low, high)?;
            if e.log && low <= 0.0 {
                return Err(format!("log = true needs low > 0, and low = {low}"));
            }
            Ok(Param::Float { key, low, high, log: e.log })
        }
        "int" => {
            unused("choices", e.choices.is_some())?;
            let low = integer(e.low.as_ref(), "low")?;
            let high = integer(e.high.as_ref(), "high")?;
            range(low, high)?;
            if (e.log || e.power_of_two) && low <= 0 {
                return Err(format!(
                    "{} needs low > 0, and low = {low}",
                    if e.log { "log = true" } else { "power_of_two = true" }
                ));
            }
            if !e.power_of_two {
                return Ok(Param::Int { key, low, high, log: e.log });
            }
            if e.log {
                return Err("choose one of log and power_of_two".into());
            }
            // The powers of two inside [low, high].
            let low_exp = (low as u64).next_power_of_two().trailing_zeros();
            let high_exp = 63 - (high as u64).leading_zeros();
            if low_exp > high_exp {
                return Err(format!("no power of two in [{low}, {high}] (an empty range)"));
            }
            Ok(Param::PowerOfTwo { key, low_exp, high_exp })
        }
        "categorical" => {
            unused("low", e.low.is_some())?;
            unused("high", e.high.is_some())?;
            unused("log", e.log)?;
            unused("power_of_two", e.power_of_two)?;
            let choices =
                e.choices.ok_or("`choices` missing: a list such as [\"siplv1\", \"opl\"]")?;
            if choices.is_empty() {
                return Err("choices = []: a categorical needs at least one choice".into());
            }
            if let Some(v) =
                choices.iter().find(|v| v.is_table() || v.is_array() || v.is_datetime())
            {
                return Err(format!("choice {v} is not a string, number or boolean"));
            }
            Ok(Param::Categorical { key, choices })
        }
        other => Err(format!("type = {other:?}: must be \"float\", \"int\" or \"categorical\"")),
    }
}

fn range<T: PartialOrd + std::fmt::Display>(low: T, high: T) -> Result<(), String> {
    if low > high {
        return Err(format!("low = {low} is above high = {high} (an inverted range)"));
    }
    if low == high {
        return Err(format!(
            "low = high = {low} (an empty range): to fix a value, use --set instead"
        ));
    }
    Ok(())
}

fn number(v: Option<&toml::Value>, field: &str) -> Result<f64, String> {
    match v {
        Some(toml::Value::Float(x)) if x.is_finite() => Ok(*x),
        Some(toml::Value::Integer(i)) => Ok(*i as f64),
        Some(other) => Err(format!("{field} = {other}: must be a finite number")),
        None => Err(format!("`{field}` missing")),
    }
}

fn integer(v: Option<&toml::Value>, field: &str) -> Result<i64, String> {
    match v {
        Some(toml::Value::Integer(i)) => Ok(*i),
        Some(other) => Err(format!("{field} = {other}: must be an integer")),
        None => Err(format!("`{field}` missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[data]\npath = \"d\"\n[model]\nscheme = \"siplv1\"\n\
                        [optim]\nlr = 5e-5\nbatch_size = 64\nepochs = 2\n[run]\n";

    fn err(space: &str) -> String {
        Space::parse(space, BASE, &[]).expect_err("refused")
    }

    #[test]
    fn the_three_kinds_parse_and_round_trip() {
        let text = "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\nlog = true\n\
                    [optim.batch_size]\ntype = \"int\"\nlow = 30\nhigh = 256\npower_of_two = true\n\
                    [model]\nscheme = { type = \"categorical\", choices = [\"opl\", \"siplv1\"] }\n";
        let s = Space::parse(text, BASE, &[]).expect("valid");
        assert_eq!(s.params.len(), 3);
        assert_eq!(
            s.params[0],
            Param::Categorical {
                key: "model.scheme".into(),
                choices: vec!["opl".into(), "siplv1".into()]
            }
        );
        assert_eq!(
            s.params[1],
            Param::PowerOfTwo { key: "optim.batch_size".into(), low_exp: 5, high_exp: 8 }
        );
        assert_eq!(s, Space::parse(&s.to_toml(), BASE, &[]).expect("saved form reads back"));
        assert_eq!(set_arg("model.scheme", &"opl".into()), "model.scheme=\"opl\"");
        assert_eq!(set_arg("optim.lr", &1e-5.into()), "optim.lr=0.00001");
    }

    #[test]
    fn bad_spaces_name_the_key() {
        let cases = [
            (
                "[optim.lrr]\ntype = \"float\"\nlow = 0.1\nhigh = 0.2\n",
                "optim.lrr: not a config key",
            ),
            ("[optim.lr]\ntype = \"float\"\nlow = 1e-3\nhigh = 1e-5\n", "inverted"),
            ("[optim.lr]\ntype = \"float\"\nlow = 1e-3\nhigh = 1e-3\n", "empty"),
            (
                "[optim.weight_decay]\ntype = \"float\"\nlow = 0.0\nhigh = 0.1\nlog = true\n",
                "low > 0",
            ),
            ("[model.scheme]\ntype = \"categorical\"\nchoices = []\n", "at least one choice"),
            (
                "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 2.0\n",
                "optim.lr = 2: must be a number in (0, 1)",
            ),
            (
                "[optim.batch_size]\ntype = \"int\"\nlow = 33\nhigh = 63\npower_of_two = true\n",
                "no power of two",
            ),
            ("[optim.lr]\ntype = \"uniform\"\nlow = 1e-5\nhigh = 1e-3\n", "type = \"uniform\""),
            ("[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\nlogg = true\n", "logg"),
            ("[run.device]\ntype = \"categorical\"\nchoices = [\"cpu\"]\n", "set by the tuner"),
            ("[model.scheme]\ntype = \"categorical\"\nchoices = [\"siplv9\"]\n", "siplv9"),
            ("", "no key to search"),
        ];
        for (space, want) in cases {
            let e = err(space);
            assert!(e.contains(want), "{space:?}: {e}");
            if !space.is_empty() {
                let key = space[1..].split(']').next().expect("a table name");
                assert!(e.contains(key), "{space:?} names {key}: {e}");
            }
        }
    }
}
