//! The study folder: the resolved search space and base config it was started with, checked
//! against every later `sipl tune` on it, and the default storage inside it.

use std::path::{Path, PathBuf};

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

/// Makes `dir` and saves the space and base config there, or checks them against the saved
/// ones: a study resumed with another space or another base config is refused unless
/// `force`. Returns the base config's path.
pub fn prepare(
    dir: &Path,
    space: &Space,
    base: &TrainConfig,
    force: bool,
) -> Result<PathBuf, TuneError> {
    let io = |p: &Path, e: std::io::Error| TuneError::Io(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let space_path = dir.join(SPACE);
    let space_text = space.to_toml();
    if let Ok(old) = std::fs::read_to_string(&space_path)
        && old != space_text
        && !force
    {
        return Err(TuneError::Study(format!(
            "{}: was started with another search space ({}); run it with the same space, or pass --force",
            dir.display(),
            space_path.display()
        )));
    }
    let base_path = dir.join(BASE);
    if let Ok(old) = std::fs::read_to_string(&base_path) {
        // Every key, the epochs included: trials of one study share one budget.
        let same = TrainConfig::parse(&old, &[]).is_ok_and(|o| o.to_toml() == base.to_toml());
        if !same && !force {
            return Err(TuneError::Study(format!(
                "{}: was started with another base config ({}); use the same --config and --set, or pass --force",
                dir.display(),
                base_path.display()
            )));
        }
    }
    sipl_shards::write_atomic(&space_path, space_text.as_bytes())
        .map_err(|e| TuneError::Io(e.to_string()))?;
    sipl_shards::write_atomic(&base_path, base.to_toml().as_bytes())
        .map_err(|e| TuneError::Io(e.to_string()))?;
    Ok(base_path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
