//! The study folder: the resolved search space and base config it was started with, checked
//! against every later `sipl tune` on it, and the study (storage and name) it belongs to.

use std::path::Path;

use sipl_train::config::TrainConfig;

use crate::{Space, TuneError, storage};

/// The space as resolved (`DIR/space.toml`).
pub const SPACE: &str = "space.toml";
/// The base config with `--set` applied (`DIR/base.toml`); every trial trains from it.
pub const BASE: &str = "base.toml";
/// Where the driver leaves the study's trials for the report.
pub const EXPORT: &str = ".study.json";

/// The storage and study name a study folder was run with (`DIR/study.json`), so that
/// `--report` and a resume need not repeat them. The folder's trials (`trials/NNNN`) belong to
/// that study: another name or storage on the folder is refused ([`identity`]). A storage file
/// inside the folder is saved relative to it (`$STUDY/…`, [`storage::to_save`]); a password is
/// saved masked (`postgresql://user:***@host/db`, or `None` by earlier versions) and must be
/// given again with `--storage`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub storage: Option<String>,
    pub study_name: String,
}

/// File name of [`Saved`] in the study folder (written by the driver once the storage opened).
pub const SAVED: &str = "study.json";

/// The settings saved in `dir`: `None` when it has no `study.json`, an error when it has one
/// that cannot be read (guessing would open another study over the folder's trials).
pub fn saved(dir: &Path) -> Result<Option<Saved>, TuneError> {
    let path = dir.join(SAVED);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TuneError::Study(format!("{}: {e}", path.display()))),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        TuneError::Study(format!(
            "{}: not a study's settings ({e}); restore it, or remove it and pass the --storage and --study-name the study was run with",
            path.display()
        ))
    })
}

/// Where a command's study lives: its storage URL (files absolute) and its name.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub storage: String,
    pub study_name: String,
}

impl Identity {
    /// What `DIR/study.json` keeps of it.
    pub fn to_save(&self, dir: &Path) -> Saved {
        Saved {
            storage: Some(storage::to_save(&self.storage, dir)),
            study_name: self.study_name.clone(),
        }
    }
}

/// The study `dir` holds, from `--storage` and `--study-name` (`storage`, `name`) and the
/// folder's [`Saved`] settings. A folder belongs to one study: its `trials/NNNN` are that
/// study's trials, so a flag naming another storage or name is refused, as is a resume whose
/// storage held a password without `--storage`. A fresh folder gets `storage` (default: its
/// own `study.db`) and `name` (default: the folder's name). `storage`'s form is checked by
/// the caller ([`storage::check`]).
pub fn identity(
    dir: &Path,
    storage: Option<&str>,
    name: Option<&str>,
) -> Result<Identity, TuneError> {
    // `$STUDY` may be written on the command line too (quoted from the shell).
    let given = storage.map(|u| storage::resolve(&storage::absolute_url(u), dir));
    let own = storage::default_storage(dir);
    let shown = dir.display();
    let Some(saved) = saved(dir)? else {
        let study_name = match name {
            Some(n) => n.to_owned(),
            None => std::path::absolute(dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .ok_or_else(|| {
                    TuneError::Study(format!("{shown}: name the study with --study-name"))
                })?,
        };
        if study_name.trim().is_empty() {
            return Err(TuneError::Study(format!("{shown}: --study-name must not be empty")));
        }
        return Ok(Identity { storage: given.unwrap_or(own), study_name });
    };
    if let Some(n) = name.filter(|n| *n != saved.study_name) {
        return Err(TuneError::Study(format!(
            "{shown}: holds the study {:?} (its study.json), and its trials/ are that study's: a study named {n:?} needs a folder of its own",
            saved.study_name
        )));
    }
    let kept = saved.storage.as_deref().map(|s| storage::resolve(s, dir));
    let storage = match (kept, given) {
        (None, None) => {
            return Err(TuneError::Study(format!(
                "{shown}: its storage held a password, which is not saved: pass --storage again"
            )));
        }
        (Some(k), None) if storage::is_redacted(&k) => {
            return Err(TuneError::Study(format!(
                "{shown}: its storage {k} held a password, which is not saved: pass --storage again"
            )));
        }
        (Some(k), None) => legacy(dir, &k, &own)?,
        (None, Some(g)) => g,
        (Some(k), Some(g)) if storage::same(&k, &g) => g,
        // A folder copied or moved by an earlier sipl names the original's study.db: the flag
        // chooses which of the two it goes on with.
        (Some(k), Some(g)) if legacy(dir, &k, &own).is_err() && storage::same(&g, &own) => g,
        (Some(k), Some(g)) => {
            return Err(TuneError::Study(format!(
                "{shown}: holds the study {:?} on the storage {}, and its trials/ are that study's: a study on {} needs a folder of its own",
                saved.study_name,
                storage::redact(&k),
                storage::redact(&g)
            )));
        }
    };
    Ok(Identity { storage, study_name: saved.study_name })
}

/// A saved storage `kept` that is another folder's `study.db` while `dir` has one of its own:
/// `study.json` written by an earlier sipl (which saved the default storage as an absolute
/// path) in a folder since copied or moved. Refused, naming both.
fn legacy(dir: &Path, kept: &str, own: &str) -> Result<String, TuneError> {
    let other_default = storage::file(kept)
        .is_some_and(|f| f.file_name() == Some(std::ffi::OsStr::new(storage::DEFAULT_FILE)));
    if other_default && !storage::same(kept, own) && dir.join(storage::DEFAULT_FILE).is_file() {
        return Err(TuneError::Study(format!(
            "{}: its study.json names {kept}, another folder's study.db, while it holds a study.db of its own (a folder copied or moved by an earlier sipl): pass --storage {own} to go on with its own, or --storage {kept} to go on with the other",
            dir.display()
        )));
    }
    Ok(kept.to_owned())
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
