//! `sipl export`: the encoder of a run as a torchvision `resnet18` state dict (safetensors):
//! the `encoder.` prefix dropped and the BatchNorm `num_batches_tracked` counters torchvision's
//! strict `load_state_dict` expects added. The 1000-d `fc` layer is the embedding, kept.

use std::path::{Path, PathBuf};

use sipl_train::checkpoint::{load_model, model_tensors, write_tensors};
use sipl_train::model::PretextModel;
use tch::{Device, Kind, Tensor, nn};

use crate::EvalError;

/// Which weights of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Best pretext validation accuracy (`best.safetensors`).
    Best,
    /// The end of the run (`final.safetensors`).
    Final,
}

/// The weight file of a run; a clear error when the run has none yet.
pub fn run_weights(run: &Path, which: Which) -> Result<PathBuf, EvalError> {
    let name = match which {
        Which::Best => sipl_train::trainer::BEST,
        Which::Final => sipl_train::trainer::FINAL,
    };
    let path = run.join(name);
    if !run.is_dir() {
        return Err(EvalError::Run { path: run.to_owned(), reason: "not a directory".into() });
    }
    if !path.exists() {
        return Err(EvalError::Run {
            path: run.to_owned(),
            reason: format!("no {name}: the run has not finished an epoch (or a run) yet"),
        });
    }
    Ok(path)
}

/// Loads pretext weights (checking every name and shape) and writes the encoder, torchvision
/// style, to `out`. Returns the number of tensors written.
pub fn export_encoder(weights: &Path, out: &Path) -> Result<usize, EvalError> {
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = PretextModel::new(&vs.root());
    load_model(weights, &vs)?;
    let mut tensors: Vec<(String, Tensor)> = model_tensors(&vs)
        .into_iter()
        .filter_map(|(name, t)| name.strip_prefix("encoder.").map(|n| (n.to_owned(), t)))
        .collect();
    let counters: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".running_mean"))
        .map(|bn| {
            (format!("{bn}.num_batches_tracked"), Tensor::zeros([], (Kind::Int64, Device::Cpu)))
        })
        .collect();
    tensors.extend(counters);
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    // Into a temporary name, renamed once whole: a kill leaves no half-written export.
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    write_tensors(&tmp, &tensors)?;
    std::fs::rename(&tmp, out).map_err(|e| EvalError::Data(format!("{}: {e}", out.display())))?;
    Ok(tensors.len())
}
