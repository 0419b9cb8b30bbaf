//! The study folder: the resolved search space and base config it was started with, checked
//! against every later `sipl tune` on it, and the default storage inside it.

use std::path::Path;

use sipl_train::config::TrainConfig;

use crate::{Space, TuneError};

/// The space as resolved (`DIR/space.toml`).
pub const SPACE: &str = "space.toml";
/// The base config with `--set` applied (`DIR/base.toml`); every trial trains from it.
pub const BASE: &str = "base.toml";
/// Where the driver leaves the study's trials for the report.
pub const EXPORT: &str = ".study.json";

/// `sqlite:///DIR/study.db`, the default storage (DIR made absolute).
pub fn default_storage(dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    format!("sqlite:///{}", dir.join("study.db").display())
}

/// Checks an Optuna storage URL's form (reaching it is the driver's first step): SQLite,
/// PostgreSQL, MySQL (with an optional `+driver`) or `journal:FILE`.
pub fn check_storage(url: &str) -> Result<(), sipl_limits::RangeError> {
    let bad = |why: &str| {
        Err(sipl_limits::RangeError::new(
            "--storage",
            url,
            "sqlite:///FILE, postgresql://USER@HOST:PORT/DB, mysql://… or journal:FILE",
        )
        .note(why.to_owned()))
    };
    if let Some(path) = url.strip_prefix("journal:") {
        return if path.is_empty() { bad("no file after journal:") } else { Ok(()) };
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("not a URL");
    };
    let dialect = scheme.split('+').next().unwrap_or_default();
    if !["sqlite", "postgresql", "mysql"].contains(&dialect) {
        return bad("unknown database");
    }
    if dialect == "sqlite" && rest.trim_start_matches('/').is_empty() {
        return bad("no database file");
    }
    if dialect != "sqlite" && rest.split('/').next().unwrap_or_default().is_empty() {
        return bad("no host");
    }
    Ok(())
}

/// The storage and study name a study folder was run with (`DIR/study.json`), so that
/// `--report` and a resume need not repeat them. A storage URL holding a password is not
/// saved (`storage` is then `None`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub storage: Option<String>,
    pub study_name: String,
}

/// File name of [`Saved`] in the study folder (written by the driver once the storage opened).
pub const SAVED: &str = "study.json";

/// The settings saved in `dir`, if any.
pub fn saved(dir: &Path) -> Option<Saved> {
    let text = std::fs::read_to_string(dir.join(SAVED)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `url` when it holds no password (what [`Saved`] may keep).
pub fn storage_to_save(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let credentials = rest.rsplit_once('@').map(|(c, _)| c);
    match credentials.is_some_and(|c| c.contains(':')) {
        true => None,
        false => Some(url.to_owned()),
    }
}

/// Checks the space and base config against the ones `dir` was started with, if any: a study
/// resumed with another space or another base config is refused unless `force`, naming what
/// changed. Writes nothing (the driver saves them once the storage has opened).
pub fn check(dir: &Path, space: &Space, base: &TrainConfig, force: bool) -> Result<(), TuneError> {
    use sipl_limits::changes::{changes, describe, settings_of_text};
    let differs = |name: &str, new: &str| -> Option<String> {
        let old = std::fs::read_to_string(dir.join(name)).ok()?;
        let c = changes(&settings_of_text(&old), &settings_of_text(new));
        (!c.is_empty()).then(|| describe(&c, ""))
    };
    if force {
        return Ok(());
    }
    if let Some(what) = differs(SPACE, &space.to_toml()) {
        return Err(TuneError::Study(format!(
            "{}: was started with another search space ({what}); run it with the same space, or pass --force",
            dir.display()
        )));
    }
    if let Some(what) = differs(BASE, &base.to_toml()) {
        return Err(TuneError::Study(format!(
            "{}: was started with another base config ({what}); use the same --config and --set, or pass --force",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_saved() {
        assert_eq!(storage_to_save("postgresql://u:pw@h/db"), None);
        let plain = "postgresql://u@h:5432/db";
        assert_eq!(storage_to_save(plain).as_deref(), Some(plain));
        assert!(storage_to_save("journal:/x/y.log").is_some());
    }

    #[test]
    fn storage_urls() {
        for ok in [
            "sqlite:///tmp/s.db",
            "postgresql://sipl@127.0.0.1:5432/sipl",
            "postgresql+psycopg2://u:p@h/db",
            "mysql://u@h/db",
            "journal:/shared/study.log",
        ] {
            assert!(check_storage(ok).is_ok(), "{ok}");
        }
        for bad in ["", "study.db", "sqlite://", "redis://h/0", "postgresql:///db", "journal:"] {
            let e = check_storage(bad).expect_err(bad).to_string();
            assert!(e.contains("--storage"), "{bad}: {e}");
        }
    }
}
