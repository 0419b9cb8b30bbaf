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

mod entry;
use entry::{Entry, param};

/// Keys the tuner sets itself on every trial, so a space may not search them.
pub const RESERVED: [&str; 2] = ["run.device", "run.checkpoint_each_epoch"];

/// Keys whose values are paths (datasets), read from the current folder when relative.
pub const PATH_KEYS: [&str; 2] = ["data.path", "monitor.data"];

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
        // A key both searched and fixed: the search would override --set without a word.
        for set in sets {
            let key = set.split_once('=').map_or(set.as_str(), |(k, _)| k).trim();
            if entries.contains_key(key) {
                return Err(format!(
                    "{key}: searched here and fixed by --set {set}; drop one of the two"
                ));
            }
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

    /// Relative paths among the choices of [`PATH_KEYS`] made absolute against the current
    /// folder, once as the study starts: trials, resumes and other tuners then train on the
    /// same data wherever they run from.
    /// Two choices naming one folder (`ds` and `./ds`) are refused.
    pub fn absolute_paths(&mut self) -> Result<(), TuneError> {
        for p in &mut self.params {
            if let Param::Categorical { key, choices } = p
                && PATH_KEYS.contains(&key.as_str())
            {
                for c in choices.iter_mut() {
                    if let toml::Value::String(path) = c {
                        let abs = std::path::absolute(&*path)
                            .map_err(|e| TuneError::Space(format!("{key}: {path}: {e}")))?;
                        *path = abs.display().to_string();
                    }
                }
                entry::twice(choices).map_err(|e| TuneError::Space(format!("{key}: {e}")))?;
            }
        }
        Ok(())
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
            // `[optim.lr]` and `["optim.lr"]` are two TOML tables but one config key.
            if out.contains_key(&key) {
                return Err(format!(
                    "{key}: searched twice (a quoted [\"{key}\"] is the same key as [{key}]); keep one range"
                ));
            }
            out.insert(key, entry);
        } else {
            collect(t, &key, out)?;
        }
    }
    Ok(())
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
    fn two_spellings_of_one_dataset_are_one_choice() {
        let text = "[data.path]\ntype = \"categorical\"\nchoices = [\"d\", \"./d\"]\n";
        let mut s = Space::parse(text, BASE, &[]).expect("two strings");
        let e = s.absolute_paths().expect_err("one folder").to_string();
        assert!(e.contains("data.path: choice") && e.contains("listed twice"), "{e}");
    }

    #[test]
    fn a_key_fixed_by_set_is_not_searched_too() {
        let space = "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\n";
        let e = Space::parse(space, BASE, &["optim.lr = 1e-4".into()]).expect_err("refused");
        assert!(e.contains("optim.lr: searched here and fixed by --set"), "{e}");
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
            (
                "[model.scheme]\ntype = \"categorical\"\nchoices = [\"opl\", \"opl\"]\n",
                "listed twice",
            ),
            (
                "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\n\
                 [\"optim.lr\"]\ntype = \"float\"\nlow = 1e-4\nhigh = 1e-2\n",
                "optim.lr: searched twice",
            ),
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
