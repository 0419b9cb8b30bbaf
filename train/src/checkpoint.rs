//! Checkpoints: *how* to store (a directory written under a temporary name, every file fsynced,
//! renamed, the parent fsynced) apart from *when* and *which to keep* ([`to_prune`], a pure
//! function). Each checkpoint holds the model (safetensors), Adam's moments and step
//! (safetensors), the trainer state (JSON) and a manifest of xxh3 hashes that `latest_valid`
//! checks, falling back to an older checkpoint when the newest is damaged.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use crate::adam::Adam;
use crate::faults::FaultPlan;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Bad { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_owned(), source }
}

fn bad(path: &Path, reason: impl ToString) -> CheckpointError {
    CheckpointError::Bad { path: path.to_owned(), reason: reason.to_string() }
}

/// The newest valid checkpoint (path and state), if any, and why newer ones were skipped.
pub type Latest = (Option<(PathBuf, TrainerState)>, Vec<String>);

/// Where training stands: enough to continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub step: u64,
    /// The epoch to continue in, and the batch of that epoch to continue from.
    pub epoch: u64,
    pub batch: usize,
    pub best_val_accuracy: Option<f64>,
    /// The best kNN accuracy of the run's monitor (`run.best_by = "monitor"` picks by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_knn_accuracy: Option<f64>,
    pub adam_step: i64,
    /// `TrainConfig::trajectory_fingerprint` of the run that wrote it.
    pub config_fingerprint: String,
    /// The sample stream's randomness is a function of (seed, epoch, image); nothing else to
    /// save. Recorded for the reader.
    pub seed: u64,
    /// Ranks of the run that wrote it: `epoch`/`batch` count each rank's batches, so a resume
    /// needs the same number of ranks.
    #[serde(default = "one_rank")]
    pub world: usize,
}

fn one_rank() -> usize {
    1
}

const MODEL: &str = "model.safetensors";
const OPTIM: &str = "optim.safetensors";
const STATE: &str = "state.json";
const MANIFEST: &str = "manifest.json";

/// The checkpoints of one run: `RUN/checkpoints/step-000000123/`.
pub struct Checkpointer {
    dir: PathBuf,
    keep: usize,
    faults: FaultPlan,
}

impl Checkpointer {
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        Checkpointer { dir, keep: keep.max(1), faults: FaultPlan::none() }
    }

    /// The same, breaking a write where `faults` says (tests only; see [`FaultPlan`]).
    pub fn with_faults(self, faults: FaultPlan) -> Self {
        Checkpointer { faults, ..self }
    }

    fn path(&self, step: u64) -> PathBuf {
        self.dir.join(format!("step-{step:09}"))
    }

    /// Writes a checkpoint atomically and prunes old ones. When writing fails (a full disk),
    /// the partial temporary directory is removed, so the space goes back to the previous
    /// checkpoints, which are untouched.
    pub fn save(
        &self,
        vs: &nn::VarStore,
        adam: &Adam,
        state: &TrainerState,
    ) -> Result<PathBuf, CheckpointError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = self.dir.join(format!("step-{:09}.tmp", state.step));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        let saved = self.save_via(&tmp, vs, adam, state);
        if saved.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        saved
    }

    fn save_via(
        &self,
        tmp: &Path,
        vs: &nn::VarStore,
        adam: &Adam,
        state: &TrainerState,
    ) -> Result<PathBuf, CheckpointError> {
        let dst = self.path(state.step);
        std::fs::create_dir_all(tmp).map_err(io(tmp))?;
        write_tensors(&tmp.join(MODEL), &model_tensors(vs))?;
        self.faults.kill_in_checkpoint(state.step);
        let mut optim: Vec<(String, Tensor)> = Vec::new();
        for (i, name) in adam.names.iter().enumerate() {
            optim.push((format!("m/{name}"), adam.m[i].shallow_clone()));
            optim.push((format!("v/{name}"), adam.v[i].shallow_clone()));
        }
        write_tensors(&tmp.join(OPTIM), &optim)?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| bad(tmp, e))?;
        write_synced(&tmp.join(STATE), &json)?;
        let mut hashes = BTreeMap::new();
        for f in [MODEL, OPTIM, STATE] {
            hashes.insert(f.to_owned(), hash_file(&tmp.join(f))?);
        }
        write_synced(
            &tmp.join(MANIFEST),
            &serde_json::to_vec_pretty(&hashes).map_err(|e| bad(tmp, e))?,
        )?;
        sync_dir(tmp)?;
        if dst.exists() {
            std::fs::remove_dir_all(&dst).map_err(io(&dst))?;
        }
        std::fs::rename(tmp, &dst).map_err(io(&dst))?;
        sync_dir(&self.dir)?;
        for step in to_prune(&self.steps()?, self.keep) {
            let p = self.path(step);
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
        }
        Ok(dst)
    }

    /// Steps of the complete checkpoints on disk, ascending (temporary directories ignored).
    pub fn steps(&self) -> Result<Vec<u64>, CheckpointError> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(Vec::new()) };
        let mut steps: Vec<u64> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
            .collect();
        steps.sort();
        Ok(steps)
    }

    /// The newest checkpoint whose hashes check out, with the ones skipped and why.
    pub fn latest_valid(&self) -> Result<Latest, CheckpointError> {
        let mut skipped = Vec::new();
        for step in self.steps()?.into_iter().rev() {
            let p = self.path(step);
            match verify(&p) {
                Ok(state) => return Ok((Some((p, state)), skipped)),
                Err(e) => skipped.push(e.to_string()),
            }
        }
        Ok((None, skipped))
    }

    /// Loads a verified checkpoint into the model's variables and the optimizer.
    pub fn load(
        &self,
        path: &Path,
        vs: &nn::VarStore,
        adam: &mut Adam,
        state: &TrainerState,
    ) -> Result<(), CheckpointError> {
        load_model(&path.join(MODEL), vs)?;
        let optim: BTreeMap<String, Tensor> = Tensor::read_safetensors(path.join(OPTIM))
            .map_err(|e| bad(path, e))?
            .into_iter()
            .collect();
        let get = |k: String| {
            optim
                .get(&k)
                .map(|t| t.shallow_clone())
                .ok_or_else(|| bad(path, format!("missing {k}")))
        };
        let m = adam.names.iter().map(|n| get(format!("m/{n}"))).collect::<Result<Vec<_>, _>>()?;
        let v = adam.names.iter().map(|n| get(format!("v/{n}"))).collect::<Result<Vec<_>, _>>()?;
        adam.load(state.adam_step, m, v);
        Ok(())
    }
}

/// Which checkpoints to delete so that the newest `keep` remain (pure: tested without disk).
pub fn to_prune(steps: &[u64], keep: usize) -> Vec<u64> {
    let mut s = steps.to_vec();
    s.sort();
    s.truncate(s.len().saturating_sub(keep));
    s
}

fn verify(dir: &Path) -> Result<TrainerState, CheckpointError> {
    let text = std::fs::read(dir.join(MANIFEST)).map_err(io(&dir.join(MANIFEST)))?;
    let hashes: BTreeMap<String, String> =
        serde_json::from_slice(&text).map_err(|e| bad(dir, format!("manifest: {e}")))?;
    for f in [MODEL, OPTIM, STATE] {
        let want = hashes.get(f).ok_or_else(|| bad(dir, format!("manifest lacks {f}")))?;
        if &hash_file(&dir.join(f))? != want {
            return Err(bad(dir, format!("{f} does not match its checksum")));
        }
    }
    let state = std::fs::read(dir.join(STATE)).map_err(io(&dir.join(STATE)))?;
    serde_json::from_slice(&state).map_err(|e| bad(dir, format!("state: {e}")))
}

/// Model variables (parameters and BatchNorm statistics) by name.
pub fn model_tensors(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    crate::model::sorted_variables(vs)
}

/// Loads safetensors weights into `vs`: every variable must be present with its shape.
pub fn load_model(path: &Path, vs: &nn::VarStore) -> Result<(), CheckpointError> {
    let loaded: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(path).map_err(|e| bad(path, e))?.into_iter().collect();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = loaded
                .get(&name)
                .ok_or_else(|| bad(path, format!("no tensor {name}: weights of another model?")))?;
            if src.size() != var.size() {
                return Err(bad(
                    path,
                    format!("{name} has shape {:?}, the model needs {:?}", src.size(), var.size()),
                ));
            }
            var.copy_(src);
        }
        Ok(())
    })
}

/// Writes tensors as safetensors, fsynced: on the CPU and in the default layout whatever the
/// training layout (channels_last parameters are copied into fresh standard-stride tensors;
/// the writer refuses anything else).
pub fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), CheckpointError> {
    let standard = |t: &Tensor| {
        let mut out = Tensor::empty(t.size(), (t.kind(), tch::Device::Cpu));
        out.copy_(t);
        out
    };
    let cpu: Vec<(&str, Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), standard(t))).collect();
    Tensor::write_safetensors(&cpu, path).map_err(|e| bad(path, e))?;
    File::open(path).and_then(|f| f.sync_all()).map_err(io(path))
}

/// Writes a model's weights as `dir/name` atomically: into `name.tmp`, fsynced, renamed into
/// place, then the directory fsynced, so a crash leaves the old file or the new one, whole.
pub fn write_weights(dir: &Path, name: &str, vs: &nn::VarStore) -> Result<(), CheckpointError> {
    let (tmp, path) = (dir.join(format!("{name}.tmp")), dir.join(name));
    write_tensors(&tmp, &model_tensors(vs))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let mut f = File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn hash_file(path: &Path) -> Result<String, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(sipl_shards::xxh3_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        assert_eq!(to_prune(&[5, 1, 9, 3], 2), vec![1, 3]);
        assert_eq!(to_prune(&[5], 3), Vec::<u64>::new());
    }
}
