//! What differs between two sets of settings, for the errors that refuse to mix them: a run
//! directory resumed with another config, an output folder holding an ingest with other
//! settings, ranks that disagree on their config. One reading of "a setting", one comparison
//! and one way of naming a change (`key: old -> new`) serve all three.

use std::fmt;

/// One setting whose value differs (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl fmt::Display for Change {
    /// `key: old -> new`, `-` for an absent side.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        write!(f, "{}: {} -> {}", self.key, show(&self.old), show(&self.new))
    }
}

impl Change {
    /// One side as the line it came from (`key = value`), `<none>` when absent.
    pub fn side(&self, value: &Option<String>) -> String {
        value.as_ref().map_or("<none>".into(), |v| format!("{} = {v}", self.key))
    }
}

/// The settings of TOML-like text as (key, value) pairs: `key = value` lines, each key prefixed
/// by the `[section]` above it (`optim.lr`); any other non-empty line is a key and a value
/// split at its last space (`dataset identity 1f2e…`).
pub fn settings_of_text(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((k, v)) = line.split_once(" = ") {
            out.push((format!("{section}{}", k.trim()), v.trim().to_owned()));
        } else {
            let (k, v) = line.rsplit_once(' ').unwrap_or((line, ""));
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    out
}

/// The settings that differ between `old` and `new`, by key in alphabetical order.
pub fn changes(old: &[(String, String)], new: &[(String, String)]) -> Vec<Change> {
    let get =
        |s: &[(String, String)], k: &str| s.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let mut keys: Vec<&String> = old.iter().chain(new).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| Change { key: k.clone(), old: get(old, k), new: get(new, k) })
        .filter(|c| c.old != c.new)
        .collect()
}

/// The changes as one phrase, `resize: 256 -> 64, crop: 224 -> 64`; `fallback` when none.
pub fn describe(changes: &[Change], fallback: &str) -> String {
    if changes.is_empty() {
        return fallback.to_owned();
    }
    changes.iter().map(Change::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_values_are_compared_by_key() {
        let old = settings_of_text("[optim]\nlr = 5e-5\nepochs = 100\n[run]\nseed = 0\nid abc\n");
        let new =
            settings_of_text("[optim]\nepochs = 100\nlr = 1e-3\n[run]\nid def\nthreads = 2\n");
        let c = changes(&old, &new);
        assert_eq!(
            describe(&c, "same"),
            "id: abc -> def, optim.lr: 5e-5 -> 1e-3, run.seed: 0 -> -, run.threads: - -> 2"
        );
        assert_eq!(c[1].side(&c[1].old), "optim.lr = 5e-5");
        assert_eq!(c[2].side(&c[2].new), "<none>");
        assert_eq!(describe(&changes(&old, &old), "same"), "same");
    }
}
