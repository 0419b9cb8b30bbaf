//! Optuna storage URLs as a study folder keeps them. A storage file (SQLite, journal) given
//! relative is made absolute against the current folder once, so the study does not depend on
//! where later commands run; one inside the study folder is saved relative to the folder
//! (`$STUDY/…`), so a copied or moved folder uses its own file, not the original's.

use std::path::{Path, PathBuf};

use sipl_limits::RangeError;

/// Stands for the study folder in a saved storage URL (`sqlite:///$STUDY/study.db`).
pub const FOLDER: &str = "$STUDY";

/// The default storage's file, inside the study folder.
pub const DEFAULT_FILE: &str = "study.db";

/// `sqlite:///DIR/study.db`, the default storage (DIR made absolute).
pub fn default_storage(dir: &Path) -> String {
    format!("sqlite:///{}", absolute(dir).join(DEFAULT_FILE).display())
}

/// Checks an Optuna storage URL's form (reaching it is the driver's first step): SQLite,
/// PostgreSQL, MySQL (with an optional `+driver`) or `journal:FILE`.
pub fn check(url: &str) -> Result<(), RangeError> {
    let bad = |why: &str| {
        Err(RangeError::new(
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
    if dialect == "sqlite" && rest.contains(":memory:") {
        // Gone when the tuner ends, while its trials/ stay for the next study to reuse.
        return bad("an in-memory database ends with the tuner; name a file");
    }
    if dialect != "sqlite" && rest.split('/').next().unwrap_or_default().is_empty() {
        return bad("no host");
    }
    Ok(())
}

/// The file a SQLite or journal URL names: (the text before it, the file, the text after it).
fn file_of(url: &str) -> Option<(&str, &str, &str)> {
    let split = |head_len: usize| {
        let (head, rest) = url.split_at(head_len);
        let end = rest.find('?').unwrap_or(rest.len());
        Some((head, &rest[..end], &rest[end..]))
    };
    if url.starts_with("journal:") {
        return split("journal:".len());
    }
    let (scheme, _) = url.split_once("://")?;
    // `sqlite:///a.db` is relative, `sqlite:////a.db` absolute: one slash belongs to the URL.
    match scheme.split('+').next() == Some("sqlite") {
        true => split(scheme.len() + "://".len() + 1),
        false => None,
    }
}

/// `path` absolute, without `.` or `..`, its longest existing part resolved through its links,
/// so that two spellings of one file compare equal.
fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut lexical = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.clone();
    let mut missing = Vec::new();
    while !existing.exists() {
        let Some(name) = existing.file_name().map(|n| n.to_owned()) else { break };
        missing.push(name);
        existing.pop();
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(missing.iter().rev());
    out
}

/// `url` with its file (if any) made absolute against the current folder, as SQLAlchemy and
/// the journal would read it from here.
pub fn absolute_url(url: &str) -> String {
    match file_of(url) {
        Some((head, file, tail)) if !file.starts_with(FOLDER) => {
            format!("{head}{}{tail}", absolute(Path::new(file)).display())
        }
        _ => url.to_owned(),
    }
}

/// A saved URL as this folder reads it: `$STUDY` is `dir`.
pub fn resolve(saved: &str, dir: &Path) -> String {
    match file_of(saved) {
        Some((head, file, tail)) if file.starts_with(FOLDER) => {
            let inside = file[FOLDER.len()..].trim_start_matches('/');
            format!("{head}{}{tail}", absolute(dir).join(inside).display())
        }
        _ => saved.to_owned(),
    }
}

/// `url` (absolute) as `DIR/study.json` keeps it: a file inside `dir` relative to it
/// (`$STUDY/…`), a password masked (`postgresql://user:***@host/db`: it is asked for again).
pub fn to_save(url: &str, dir: &Path) -> String {
    if let Some((head, file, tail)) = file_of(url)
        && let Ok(inside) = Path::new(file).strip_prefix(absolute(dir))
    {
        return format!("{head}{FOLDER}/{}{tail}", inside.display());
    }
    redact(url)
}

/// `url` with its password (if any) masked.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.rsplit_once('@') {
        Some((cred, host)) if cred.contains(':') => {
            let user = cred.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Whether a saved URL had its password masked.
pub fn is_redacted(saved: &str) -> bool {
    saved.split_once("://").is_some_and(|(_, r)| r.contains(":***@"))
}

/// Whether two absolute URLs (or a URL and a masked saved one) name one storage.
pub fn same(a: &str, b: &str) -> bool {
    match (file_of(a), file_of(b)) {
        (Some((ha, fa, ta)), Some((hb, fb, tb))) => {
            ha == hb && ta == tb && absolute(Path::new(fa)) == absolute(Path::new(fb))
        }
        _ => redact(a) == redact(b),
    }
}

/// The file of a SQLite or journal URL, if it names one.
pub fn file(url: &str) -> Option<PathBuf> {
    file_of(url).map(|(_, f, _)| PathBuf::from(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_the_right_form() {
        for ok in [
            "sqlite:///tmp/s.db",
            "postgresql://sipl@127.0.0.1:5432/sipl",
            "postgresql+psycopg2://u:p@h/db",
            "mysql://u@h/db",
            "journal:/shared/study.log",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "study.db",
            "sqlite://",
            "sqlite:///:memory:",
            "redis://h/0",
            "postgresql:///db",
            "journal:",
        ] {
            let e = check(bad).expect_err(bad).to_string();
            assert!(e.contains("--storage"), "{bad}: {e}");
        }
    }

    #[test]
    fn files_inside_the_folder_are_saved_relative_to_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("study");
        let own = default_storage(&d);
        assert_eq!(to_save(&own, &d), "sqlite:///$STUDY/study.db");
        let moved = dir.path().join("moved");
        assert_eq!(resolve("sqlite:///$STUDY/study.db", &moved), default_storage(&moved));
        let journal = format!("journal:{}", d.join("j/x.log").display());
        assert_eq!(to_save(&journal, &d), "journal:$STUDY/j/x.log");
        let outside = "sqlite:////elsewhere/s.db";
        assert_eq!(to_save(outside, &d), outside);
        assert_eq!(to_save("postgresql://u:pw@h/db", &d), "postgresql://u:***@h/db");
        assert!(is_redacted("postgresql://u:***@h/db"));
        assert!(!is_redacted("postgresql://u@h/db"));
        assert!(same("postgresql://u:pw@h/db", "postgresql://u:***@h/db"));
    }

    #[test]
    fn relative_files_are_read_from_the_current_folder() {
        let cwd = std::env::current_dir().expect("cwd");
        let rel = absolute_url("sqlite:///a/../s.db");
        assert_eq!(rel, format!("sqlite:///{}", absolute(&cwd.join("s.db")).display()));
        assert_eq!(absolute_url("sqlite:////x/s.db"), "sqlite:////x/s.db");
        assert_eq!(
            absolute_url("journal:j.log"),
            format!("journal:{}", cwd.join("j.log").display())
        );
        assert!(same("sqlite:////x/./s.db", "sqlite:////x/s.db"));
        assert!(!same("sqlite:////x/s.db", "sqlite:////y/s.db"));
    }
}
