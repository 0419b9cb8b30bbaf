//! Where a command may write, checked before any work: never over or into what it reads, and
//! never into a dataset, a run directory or a study folder other than the one it makes (a
//! run's `eval/` and a study's `trials/` excepted, where sipl puts evaluations and trial runs).
//! Paths are compared by device and inode, so another spelling, a symbolic link, `..` or a
//! hard link still names the same file or folder.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use sipl_limits::RangeError;

/// What a command reads: files and folders, each with the words that name it in an error.
#[derive(Default)]
pub struct Reads {
    items: Vec<(String, PathBuf)>,
}

impl Reads {
    pub fn new() -> Self {
        Reads::default()
    }

    /// `path`, a file or a folder the command reads, named `what` in errors (`--weights`, `the
    /// dataset (--data)`).
    pub fn add(mut self, what: impl Into<String>, path: &Path) -> Self {
        self.items.push((what.into(), path.to_owned()));
        self
    }

    pub fn add_opt(self, what: impl Into<String>, path: Option<&Path>) -> Self {
        match path {
            Some(p) => self.add(what, p),
            None => self,
        }
    }
}

/// What an output path is.
#[derive(Clone, Copy)]
pub enum Out<'a> {
    /// A file.
    File,
    /// A folder (made when missing) that the command writes these entries into.
    Folder(&'a [&'a str]),
    /// A folder of this kind that the command makes and keeps (a dataset, a run directory, a
    /// study folder): it may already be one, to be resumed or completed. It writes these
    /// entries, or anything in it when none are named.
    Own(Owner, &'a [&'a str]),
}

/// The kinds of folder sipl makes, told apart by the files it puts in them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    Dataset,
    Run,
    Study,
}

impl Owner {
    /// The kind of sipl folder `dir` is, if any.
    fn of(dir: &Path) -> Option<Owner> {
        use sipl_shards::format::{DATASET_FILE, MANIFEST_FILE, SHARD_DIR};
        use sipl_train::trainer::{CONFIG, DATASET, METRICS};
        let file = |name: &str| dir.join(name).is_file();
        // Pairs of names, so that a folder of other files (a config named base.toml, another
        // tool's dataset.json) is not taken for one of sipl's.
        if dir.join(SHARD_DIR).is_dir() && (file(DATASET_FILE) || file(MANIFEST_FILE)) {
            Some(Owner::Dataset)
        } else if file(CONFIG) && (file(DATASET) || file(METRICS)) {
            Some(Owner::Run)
        } else if file(sipl_tune::study::SAVED) && file(sipl_tune::study::SPACE) {
            Some(Owner::Study)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Owner::Dataset => "a dataset",
            Owner::Run => "a run directory",
            Owner::Study => "a study folder",
        }
    }

    /// The entry of such a folder that other commands may write into.
    fn open_to_others(self) -> Option<&'static str> {
        match self {
            Owner::Dataset => None,
            Owner::Run => Some("eval"),
            Owner::Study => Some("trials"),
        }
    }
}

/// An output file given by `option`: not a folder, in a folder that exists, and clear of what
/// the command reads and of sipl's folders. Checked before any work.
pub fn output_file(option: &str, path: &Path, reads: &Reads) -> Result<(), RangeError> {
    file_shape(option, path)?;
    check(option, path, Out::File, reads)
}

/// The form of an output file alone: not a folder, in a folder that exists (checked first,
/// when what the command reads is known only later).
pub fn file_shape(option: &str, path: &Path) -> Result<(), RangeError> {
    let bad = |why: String| {
        Err(RangeError::new(option, path.display(), "a file in an existing folder").note(why))
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if path.is_dir() {
        return bad("it is a folder".into());
    }
    if let Some(p) = parent
        && !p.is_dir()
    {
        return bad(format!("{} is not a folder", p.display()));
    }
    Ok(())
}

/// An output folder given by `option`: absent (it is made) or a folder, never an existing
/// file, and clear of what the command reads and of sipl's folders. Checked before any work.
pub fn output_dir(option: &str, path: &Path, out: Out, reads: &Reads) -> Result<(), RangeError> {
    if path.exists() && !path.is_dir() {
        return Err(
            RangeError::new(option, path.display(), "a folder").note("it is an existing file")
        );
    }
    check(option, path, out, reads)
}

/// The rules of the module header for `path` (the value of `option`).
pub fn check(option: &str, path: &Path, out: Out, reads: &Reads) -> Result<(), RangeError> {
    let refuse = |why: String| {
        Err(RangeError::new(
            option,
            path.display(),
            "clear of what the command reads and of other datasets, runs and studies",
        )
        .note(why))
    };
    let resolved = resolve(path);
    let targets: Vec<PathBuf> = match out {
        Out::File => vec![resolved.clone()],
        Out::Folder(names) | Out::Own(_, names) if !names.is_empty() => {
            names.iter().map(|n| resolved.join(n)).collect()
        }
        Out::Folder(_) | Out::Own(..) => vec![resolved.clone()],
    };
    for (what, read) in &reads.items {
        let Ok(read_path) = std::fs::canonicalize(read) else { continue };
        let Some(read_id) = id(&read_path) else { continue };
        for t in &targets {
            if ancestors_ids(t).contains(&read_id) {
                let how = if id(t) == Some(read_id) { "it is" } else { "it lies inside" };
                return refuse(format!(
                    "{how} {what}, {}, which this command reads",
                    read.display()
                ));
            }
            if let Some(t_id) = id(t)
                && ancestors_ids(&read_path).contains(&t_id)
            {
                return refuse(format!(
                    "{what}, {}, which this command reads, lies inside it",
                    read.display()
                ));
            }
        }
    }
    if let Out::Own(kind, _) = out
        && let Some(other) = Owner::of(&resolved).filter(|&o| o != kind)
    {
        return refuse(format!("it is {}, not {}", other.name(), kind.name()));
    }
    // The innermost sipl folder holding the output decides.
    let start = match out {
        Out::Folder(_) => Some(resolved.as_path()),
        Out::File | Out::Own(..) => resolved.parent(),
    };
    for dir in start.into_iter().flat_map(Path::ancestors) {
        let Some(owner) = Owner::of(dir) else { continue };
        let inside = resolved.strip_prefix(dir).unwrap_or(Path::new(""));
        let first = inside.components().next().map(|c| c.as_os_str().to_owned());
        if owner.open_to_others().is_some_and(|zone| first.as_deref() == Some(zone.as_ref())) {
            return Ok(());
        }
        let zone = owner
            .open_to_others()
            .map_or(String::new(), |z| format!("; write outside it or under its {z}/ folder"));
        let how = if inside.as_os_str().is_empty() { "it is" } else { "it lies inside" };
        return refuse(format!("{how} {}, {}{zone}", owner.name(), dir.display()));
    }
    Ok(())
}

/// `path` made absolute with every existing part's links resolved, and the rest (which the
/// command would create) taken as written, with `.` and `..` applied to it.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::from("/");
    for c in absolute.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    out
}

/// Device and inode of an existing path.
fn id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Device and inode of `path` and of each folder above it, those that exist.
fn ancestors_ids(path: &Path) -> Vec<(u64, u64)> {
    path.ancestors().filter_map(id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir.join(sipl_shards::format::SHARD_DIR)).expect("ok");
        std::fs::write(dir.join(sipl_shards::format::DATASET_FILE), "{}").expect("ok");
        dir.to_owned()
    }

    fn run(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("ok");
        std::fs::write(dir.join("config.toml"), "").expect("ok");
        std::fs::write(dir.join("metrics.jsonl"), "").expect("ok");
        std::fs::write(dir.join("best.safetensors"), "w").expect("ok");
        dir.to_owned()
    }

    #[test]
    fn a_file_that_is_an_input_by_any_name_is_refused() {
        let t = tempfile::tempdir().expect("ok");
        let r = run(&t.path().join("r"));
        let w = r.join("best.safetensors");
        let reads = Reads::new().add("the weights", &w).add("--run", &r);
        let e = output_file("--out", &w, &reads).expect_err("refused").to_string();
        assert!(e.contains("it is the weights"), "{e}");
        // Another spelling, a link to the folder, and a hard link all name it.
        let odd = r.join("..").join("r").join(".").join("best.safetensors");
        assert!(output_file("--out", &odd, &reads).is_err());
        std::os::unix::fs::symlink(&r, t.path().join("link")).expect("ok");
        let linked = t.path().join("link/best.safetensors");
        assert!(output_file("--out", &linked, &reads).is_err());
        let hard = t.path().join("hard.safetensors");
        std::fs::hard_link(&w, &hard).expect("ok");
        let e =
            output_file("--out", &hard, &Reads::new().add("the weights", &w)).expect_err("refused");
        assert!(e.to_string().contains("it is the weights"), "{e}");
        // A new file next to the run is fine.
        assert!(output_file("--out", &t.path().join("enc.safetensors"), &reads).is_ok());
    }

    #[test]
    fn datasets_runs_and_studies_are_closed_except_eval_and_trials() {
        let t = tempfile::tempdir().expect("ok");
        let d = dataset(&t.path().join("d"));
        let r = run(&t.path().join("r"));
        let none = Reads::new();
        let names: &[&str] = &["knn.json"];
        let e = output_dir("--out", &d.join("x"), Out::Folder(names), &none).expect_err("refused");
        assert!(e.to_string().contains("lies inside a dataset"), "{e}");
        let e = output_dir("--out", &r, Out::Folder(names), &none).expect_err("refused");
        assert!(e.to_string().contains("it is a run directory"), "{e}");
        assert!(output_dir("--out", &r.join("eval/knn"), Out::Folder(names), &none).is_ok());
        assert!(output_file("--out", &r.join("eval.png"), &none).is_err());
        let s = t.path().join("s");
        std::fs::create_dir_all(&s).expect("ok");
        std::fs::write(s.join("space.toml"), "").expect("ok");
        std::fs::write(s.join("study.json"), "{}").expect("ok");
        assert!(output_file("--out", &s.join("base.toml"), &none).is_err());
        // A folder of configs that happen to be named as a study's are not a study.
        let configs = t.path().join("configs");
        std::fs::create_dir_all(&configs).expect("ok");
        std::fs::write(configs.join("space.toml"), "").expect("ok");
        std::fs::write(configs.join("base.toml"), "").expect("ok");
        std::fs::write(configs.join("dataset.json"), "{}").expect("ok");
        assert!(
            output_dir("--study", &configs.join("s"), Out::Own(Owner::Study, &[]), &none).is_ok()
        );
        let trial = run(&s.join("trials/0001"));
        assert!(output_dir("--run-dir", &trial, Out::Own(Owner::Run, &[]), &none).is_ok());
        assert!(output_dir("--out", &trial.join("eval/k"), Out::Folder(names), &none).is_ok());
        // A run directory inside a dataset, or a dataset made in a run directory, is refused.
        let e = output_dir("--run-dir", &d.join("run"), Out::Own(Owner::Run, &[]), &none)
            .expect_err("refused");
        assert!(e.to_string().contains("lies inside a dataset"), "{e}");
        let e = output_dir("--out", &r, Out::Own(Owner::Dataset, &[]), &none).expect_err("refused");
        assert!(e.to_string().contains("it is a run directory, not a dataset"), "{e}");
    }

    #[test]
    fn an_output_folder_holding_an_input_is_refused_only_where_it_writes_over_it() {
        let t = tempfile::tempdir().expect("ok");
        let images = t.path().join("photos/shards");
        std::fs::create_dir_all(&images).expect("ok");
        let reads = Reads::new().add("the image folder", &images);
        let own = Out::Own(Owner::Dataset, &["shards", "manifest.parquet", "dataset.json"]);
        let e = output_dir("--out", &t.path().join("photos"), own, &reads).expect_err("refused");
        assert!(e.to_string().contains("the image folder"), "{e}");
        assert!(output_dir("--out", t.path(), own, &Reads::new().add("x", &images)).is_ok());
        let e = output_dir("--out", &images.join("set"), own, &reads).expect_err("refused");
        assert!(e.to_string().contains("it lies inside the image folder"), "{e}");
        let whole = Out::Own(Owner::Run, &[]);
        let e =
            output_dir("--run-dir", &t.path().join("photos"), whole, &reads).expect_err("refused");
        assert!(e.to_string().contains("lies inside it"), "{e}");
    }
}
