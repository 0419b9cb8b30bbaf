//! The study as files: `trials.csv` (one row per trial), `best.toml` (the base config with the
//! best trial's parameters applied: `sipl train --config DIR/best.toml` reruns it) and the
//! figures ([`crate::plots`]).

use std::path::{Path, PathBuf};

use sipl_train::config::TrainConfig;

use crate::driver::{Export, TrialRow};
use crate::space::set_arg;
use crate::{Space, TuneError};

pub const TRIALS_CSV: &str = "trials.csv";
pub const BEST: &str = "best.toml";
pub const HISTORY_PNG: &str = "history.png";
pub const IMPORTANCES_PNG: &str = "importances.png";

/// What [`write`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// (trial number, value) of the best finished trial.
    pub best: Option<(u64, f64)>,
}

/// Writes `DIR/trials.csv`, `DIR/best.toml` (when a trial finished), `DIR/history.png` and
/// `DIR/importances.png` (when Optuna could rank the parameters). `base` is the study's base
/// config text.
pub fn write(dir: &Path, export: &Export, space: &Space, base: &str) -> Result<Written, TuneError> {
    let mut files = vec![dir.join(TRIALS_CSV)];
    write_file(&files[0], &trials_csv(export, space))?;
    let best = export.best();
    if let Some(b) = best {
        let path = dir.join(BEST);
        write_file(&path, &best_toml(export, b, base)?)?;
        files.push(path);
    }
    let history = dir.join(HISTORY_PNG);
    crate::plots::history_png(export, &history)?;
    files.push(history);
    let path = dir.join(IMPORTANCES_PNG);
    match export.importances.as_ref().filter(|i| !i.is_empty()) {
        Some(imp) => {
            crate::plots::importances_png(imp, &path)?;
            files.push(path);
        }
        // Not one from an earlier state of the study.
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(Written { files, best: best.and_then(|b| Some((b.number, b.value?))) })
}

fn write_file(path: &Path, text: &str) -> Result<(), TuneError> {
    sipl_shards::write_atomic(path, text.as_bytes()).map_err(|e| TuneError::Io(e.to_string()))
}

/// `number,state,KEY…,value,epochs,wall_s,error`, one row per trial in number order.
/// Quoted as RFC 4180 says (the csv crate): an error message holding a comma, a quote or a
/// line break stays one cell.
pub fn trials_csv(export: &Export, space: &Space) -> String {
    let keys: Vec<&str> = space.params.iter().map(|p| p.key()).collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["number", "state"].into_iter().chain(keys.iter().copied());
    let header = header.chain(["value", "epochs", "wall_s", "error"]);
    out.write_record(header).expect("a CSV record into memory");
    for t in &export.trials {
        let mut row = vec![t.number.to_string(), t.state.clone()];
        row.extend(keys.iter().map(|k| t.params.get(*k).map_or(String::new(), plain)));
        row.push(t.value.map_or(String::new(), |v| v.to_string()));
        row.push(t.epochs.to_string());
        row.push(t.wall_s.map_or(String::new(), |w| format!("{w:.2}")));
        row.push(t.error.clone().unwrap_or_default());
        out.write_record(&row).expect("a CSV record into memory");
    }
    let bytes = out.into_inner().expect("a CSV flushed into memory");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// A JSON value as a CSV cell: strings without their quotes.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The trial's parameters as `--set` arguments.
pub fn sets(t: &TrialRow) -> Result<Vec<String>, TuneError> {
    t.params
        .iter()
        .map(|(k, v)| {
            let value = toml::Value::try_from(v)
                .map_err(|e| TuneError::Driver(format!("trial {} {k} = {v}: {e}", t.number)))?;
            Ok(set_arg(k, &value))
        })
        .collect()
}

/// The base config with the best trial's parameters, with a header saying where it came from.
fn best_toml(export: &Export, best: &TrialRow, base: &str) -> Result<String, TuneError> {
    let sets = sets(best)?;
    let config = TrainConfig::parse(base, &sets)?;
    Ok(format!(
        "# The best trial of study {:?}: trial {}, {} objective {:.6}.\n# Parameters: {}\n# Rerun it: sipl train --config best.toml --run-dir RUN\n\n{}",
        export.study_name,
        best.number,
        export.objective,
        best.value.unwrap_or(f64::NAN),
        sets.join(" "),
        config.to_toml()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[data]\npath = \"d\"\n[model]\nscheme = \"siplv1\"\n\
                        [optim]\nlr = 5e-5\nbatch_size = 64\nepochs = 2\n[run]\n";

    #[test]
    fn csv_and_best_config() {
        let space = Space::parse(
            "[optim.lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-3\nlog = true\n\
             [model.scheme]\ntype = \"categorical\"\nchoices = [\"opl\", \"siplv1\"]\n",
            BASE,
            &[],
        )
        .expect("space");
        let row =
            |number, state: &str, lr: f64, value: Option<f64>, error: Option<&str>| TrialRow {
                number,
                state: state.into(),
                params: [("optim.lr".into(), lr.into()), ("model.scheme".into(), "opl".into())]
                    .into(),
                value,
                intermediate: Default::default(),
                epochs: 2,
                wall_s: Some(1.5),
                error: error.map(Into::into),
            };
        let export = Export {
            study_name: "s".into(),
            objective: "pretext".into(),
            trials: vec![
                row(0, "COMPLETE", 1e-4, Some(0.5), None),
                row(1, "FAIL", 2e-4, None, Some("optim.lr = 2: must be in (0, 1), \"x\"")),
                row(2, "COMPLETE", 3e-4, Some(0.75), None),
                row(3, "PRUNED", 4e-4, None, None),
            ],
            importances: None,
            session: None,
        };
        let csv = trials_csv(&export, &space);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "number,state,model.scheme,optim.lr,value,epochs,wall_s,error");
        assert_eq!(lines[1], "0,COMPLETE,opl,0.0001,0.5,2,1.50,");
        assert_eq!(
            lines[2],
            "1,FAIL,opl,0.0002,,2,1.50,\"optim.lr = 2: must be in (0, 1), \"\"x\"\"\""
        );
        let best = export.best().expect("a finished trial");
        assert_eq!(best.number, 2);
        let toml = best_toml(&export, best, BASE).expect("best.toml");
        let config = TrainConfig::parse(&toml, &[]).expect("reads back as a config");
        assert_eq!((config.optim.lr, config.model.scheme.name()), (3e-4, "opl"));
        assert!(toml.starts_with("# The best trial of study \"s\": trial 2"), "{toml}");
    }
}
