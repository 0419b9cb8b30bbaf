//! What the report reads, grouped the way a reader compares it: every evaluation output
//! folder (a downstream head or a kNN evaluation) with its held-out predictions, and
//! *models*: the evaluations that differ only in their seed (the pretext run's `run.seed`, or
//! a baseline's evaluation seed).
//!
//! A model is a pretext config apart from its seed (runs named `MODEL-seedS` group under
//! `MODEL`) evaluated one way (mode, head, encoder BatchNorm), or a baseline name (e.g.
//! `random init`) evaluated one way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EvalError;
use crate::predictions::{PREDICTIONS, PredictionTable};
use crate::report::{DownstreamSummary, EvaluatedDataset, RunInfo, SUMMARY};

/// File name of a kNN evaluation's summary (beside its `predictions.parquet`).
pub use crate::outputs::KNN_SUMMARY;

/// What one `sipl eval knn` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnSummary {
    pub name: String,
    #[serde(with = "sipl_shards::names::stored_path::option", default)]
    pub weights: Option<PathBuf>,
    /// The two neighbourhood sizes (the predictions file's `predicted_best` and
    /// `predicted_final` columns, in this order).
    pub k: [usize; 2],
    pub temperature: f64,
    pub accuracy: [f64; 2],
    pub train_images: usize,
    pub held_out_images: usize,
    pub seed: Option<i64>,
    pub split: Option<String>,
    pub held_out: Option<String>,
    pub input_size: usize,
    pub feature_seconds: f64,
    pub total_seconds: f64,
    /// The dataset evaluated.
    #[serde(default)]
    pub dataset: Option<EvaluatedDataset>,
}

impl KnnSummary {
    /// Reads `DIR/knn.json`.
    pub fn read(dir: &Path) -> Result<Self, EvalError> {
        crate::outputs::read_json(&dir.join(KNN_SUMMARY))
    }

    /// Writes `DIR/knn.json`.
    pub fn write(&self, dir: &Path) -> Result<(), EvalError> {
        crate::outputs::write_json(&dir.join(KNN_SUMMARY), self)
    }
}

/// Downstream head or kNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Downstream,
    Knn,
}

/// One evaluation output folder, read and checked against its predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub dir: PathBuf,
    pub kind: Kind,
    /// The name the evaluation gave itself (the run's folder name, or e.g. `random init`).
    pub name: String,
    /// How it was evaluated: "cached", "faithful, encoder BN train", "kNN, input 64", …
    pub variant: String,
    /// Held-out images.
    pub n: usize,
    /// The two measures: downstream best and final held-out accuracy; kNN at its two k.
    pub measures: [f64; 2],
    /// Their names: "best", "final"; "k = 20", "k = 200".
    pub labels: [String; 2],
    /// Downstream: the best epoch.
    pub best_epoch: Option<usize>,
    /// The evaluation's own seed (head init and shuffle; the random encoder's draw).
    pub seed: Option<i64>,
    /// Fingerprint of the held-out images ([`crate::predictions::held_out_fingerprint`]).
    pub held_out: Option<String>,
    /// The dataset evaluated (absent in summaries written before it was recorded).
    pub dataset: Option<EvaluatedDataset>,
    pub predictions: Option<PredictionTable>,
}

impl Evaluation {
    /// Reads a downstream output folder (`summary.json`) or a kNN one (`knn.json`), with its
    /// `predictions.parquet` when there is one.
    ///
    /// # Errors
    /// A folder with neither summary; a predictions file that does not match its summary
    /// (other row count, other held-out images, other epochs, or accuracies that do not
    /// recount).
    pub fn read(dir: &Path) -> Result<Self, EvalError> {
        let mut e = if dir.join(SUMMARY).exists() {
            let s = DownstreamSummary::read(dir)?;
            let mut variant = s.mode.clone();
            if s.linear_probe {
                variant += ", linear probe";
            }
            if s.encoder_bn.as_deref() == Some("train") {
                variant += ", encoder BN train";
            }
            Evaluation {
                dir: dir.to_owned(),
                kind: Kind::Downstream,
                name: s.name.clone(),
                variant,
                n: s.held_out_images,
                measures: [s.best_val_accuracy, s.final_val_accuracy],
                labels: ["best".into(), "final".into()],
                best_epoch: Some(s.best_epoch),
                seed: s.seed,
                held_out: s.held_out.clone(),
                dataset: s.dataset.clone(),
                predictions: None,
            }
        } else if dir.join(KNN_SUMMARY).exists() {
            let s = KnnSummary::read(dir)?;
            Evaluation {
                dir: dir.to_owned(),
                kind: Kind::Knn,
                name: s.name.clone(),
                variant: format!("kNN k = {}, {}; T = {}", s.k[0], s.k[1], s.temperature),
                n: s.held_out_images,
                measures: s.accuracy,
                labels: s.k.map(|k| format!("k = {k}")),
                best_epoch: None,
                seed: s.seed,
                held_out: s.held_out.clone(),
                dataset: s.dataset.clone(),
                predictions: None,
            }
        } else {
            return Err(EvalError::Data(format!(
                "{}: neither {SUMMARY} nor {KNN_SUMMARY}: not an evaluation output folder",
                dir.display()
            )));
        };
        let path = dir.join(PREDICTIONS);
        if path.exists() {
            let p = crate::predictions::read(&path)?;
            e.check(&p, &path)?;
            e.predictions = Some(p);
        }
        Ok(e)
    }

    /// Refuses predictions that are not the ones the summary counted.
    fn check(&self, p: &PredictionTable, path: &Path) -> Result<(), EvalError> {
        let wrong = |what: String| {
            Err(EvalError::Data(format!(
                "{}: does not match its summary in {}: {what}; evaluate again",
                path.display(),
                self.dir.display()
            )))
        };
        if p.len() != self.n {
            return wrong(format!("{} rows for {} held-out images", p.len(), self.n));
        }
        if let Some(h) = &self.held_out
            && *h != p.held_out
        {
            return wrong(format!("held-out fingerprint {} vs {h}", p.held_out));
        }
        if self.kind == Kind::Downstream && Some(p.best_epoch) != self.best_epoch {
            let claimed = self.best_epoch.map_or("none".into(), |e| e.to_string());
            return wrong(format!("best epoch {} vs {claimed}", p.best_epoch));
        }
        let (best, last) = p.correct();
        for (name, correct, claimed) in
            [("best", best, self.measures[0]), ("final", last, self.measures[1])]
        {
            let recount = correct as f64 / self.n.max(1) as f64;
            if (recount - claimed).abs() > 1e-6 {
                return wrong(format!(
                    "{name} accuracy recounts to {:.4}%, the summary says {:.4}%",
                    100.0 * recount,
                    100.0 * claimed
                ));
            }
        }
        Ok(())
    }

    /// Correct predictions per measure, from the predictions, else from the accuracy.
    pub fn correct(&self) -> [u64; 2] {
        match &self.predictions {
            Some(p) => {
                let (b, f) = p.correct();
                [b, f]
            }
            None => self.measures.map(|m| (m * self.n as f64).round() as u64),
        }
    }
}

/// One evaluation of one model at one seed, with its pretext run (none for baselines).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The run's folder name, or the baseline's folder name.
    pub label: String,
    pub seed: Option<i64>,
    pub run: Option<RunInfo>,
    pub eval: Evaluation,
}

/// The evaluations of one model, one per seed, in seed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub kind: Kind,
    pub scheme: Option<String>,
    pub variant: String,
    pub members: Vec<Member>,
    key: String,
}

impl Model {
    pub fn seeds(&self) -> Vec<Option<i64>> {
        self.members.iter().map(|m| m.seed).collect()
    }

    fn new(name: String, kind: Kind, scheme: Option<String>, variant: String, key: String) -> Self {
        Model { name, kind, scheme, variant, members: Vec::new(), key }
    }
}

/// `opl-seed2` → `opl`; names without the suffix stay as they are.
pub fn strip_seed(name: &str) -> &str {
    match name.rfind("-seed") {
        Some(i)
            if i > 0 && name.len() > i + 5 && name[i + 5..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &name[..i]
        }
        _ => name,
    }
}

/// Groups evaluations into models, in the order they first appear.
///
/// `evaluated` are (pretext run, its evaluation folders); `baselines` are evaluation folders
/// without a run.
///
/// # Errors
/// Two evaluations of one model with the same seed (which would pair ambiguously).
pub fn group(
    evaluated: Vec<(RunInfo, Vec<Evaluation>)>,
    baselines: Vec<Evaluation>,
) -> Result<Vec<Model>, EvalError> {
    let mut models: Vec<Model> = Vec::new();
    let mut add = |key: String, make: &dyn Fn() -> Model, member: Member| {
        let i = match models.iter().position(|m| m.key == key) {
            Some(i) => i,
            None => {
                models.push(make());
                models.len() - 1
            }
        };
        let model = &mut models[i];
        if let Some(other) = model.members.iter().find(|m| m.seed == member.seed) {
            return Err(EvalError::Data(format!(
                "{} and {} are the same model ({}, {}) with the same seed {}: give one of them",
                other.eval.dir.display(),
                member.eval.dir.display(),
                model.name,
                model.variant,
                member.seed.map_or("(none)".into(), |s| s.to_string())
            )));
        }
        model.members.push(member);
        Ok(())
    };
    for (run, evals) in evaluated {
        for eval in evals {
            let name = strip_seed(&run.name).to_owned();
            let key = format!("run\u{1}{}\u{1}{}\u{1}{:?}", run.group, eval.variant, eval.kind);
            let (kind, scheme, variant) = (eval.kind, run.scheme.clone(), eval.variant.clone());
            let make = || {
                Model::new(name.clone(), kind, Some(scheme.clone()), variant.clone(), key.clone())
            };
            let member = Member {
                label: run.name.clone(),
                seed: Some(run.seed as i64),
                run: Some(run.clone()),
                eval,
            };
            add(key.clone(), &make, member)?;
        }
    }
    for eval in baselines {
        let name = strip_seed(&eval.name).to_owned();
        let key = format!("baseline\u{1}{name}\u{1}{}\u{1}{:?}", eval.variant, eval.kind);
        let (kind, variant) = (eval.kind, eval.variant.clone());
        let make = || Model::new(name.clone(), kind, None, variant.clone(), key.clone());
        let label = eval
            .dir
            .file_name()
            .map_or_else(|| eval.dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        add(key.clone(), &make, Member { label, seed: eval.seed, run: None, eval })?;
    }
    for m in &mut models {
        m.members.sort_by_key(|x| x.seed);
    }
    distinct_names(&mut models);
    Ok(models)
}

/// Gives models that would read alike in a table (one name, variant and kind, other runs)
/// distinct names: each is prefixed with the fewest folders above its first run (or
/// evaluation) that tell them apart, `A/m` and `B/m`; where even the folders agree, `m #2`.
fn distinct_names(models: &mut [Model]) {
    let folders = |m: &Model| -> Vec<String> {
        let x = &m.members[0];
        let dir = x.run.as_ref().map_or(&x.eval.dir, |r| &r.dir);
        let dir =
            dir.canonicalize().unwrap_or_else(|_| std::path::absolute(dir).unwrap_or(dir.clone()));
        let mut parts: Vec<String> = dir
            .parent()
            .into_iter()
            .flat_map(|p| p.components())
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        parts.reverse(); // nearest folder first
        parts
    };
    let alike =
        |a: &Model, b: &Model| a.name == b.name && a.variant == b.variant && a.kind == b.kind;
    for i in 0..models.len() {
        let same: Vec<usize> =
            (0..models.len()).filter(|&j| alike(&models[i], &models[j])).collect();
        if same.len() < 2 {
            continue;
        }
        let paths: Vec<Vec<String>> = same.iter().map(|&j| folders(&models[j])).collect();
        let depth = paths.iter().map(Vec::len).max().unwrap_or(0);
        let named = |k: usize, p: &[String], name: &str| {
            let mut up: Vec<&str> = p.iter().take(k).map(String::as_str).collect();
            up.reverse();
            up.push(name);
            up.join("/")
        };
        let name = models[i].name.clone();
        let k = (1..=depth).find(|&k| {
            let names: Vec<String> = paths.iter().map(|p| named(k, p, &name)).collect();
            names.iter().enumerate().all(|(a, x)| names[a + 1..].iter().all(|y| y != x))
        });
        for (n, (&j, p)) in same.iter().zip(&paths).enumerate() {
            models[j].name = match k {
                Some(k) => named(k, p, &name),
                None if n == 0 => name.clone(),
                None => format!("{name} #{}", n + 1),
            };
        }
    }
}
