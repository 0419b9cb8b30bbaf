//! The training monitor's measurement (`[monitor]` of `sipl train`): the weighted kNN accuracy
//! of the encoder being trained on a labelled set, by the code of `sipl eval knn`
//! ([`crate::split::prepare`], [`crate::features::embed_model`], [`crate::knn::knn_split`]).
//! So the figure after the run's last epoch equals `sipl eval knn --weights
//! RUN/final.safetensors` with the same settings (`--k K,…`, `--images`, the split).
//!
//! The set is opened, split and checked once, before the run directory is touched; each
//! measurement embeds both parts with BatchNorm in eval mode and without gradients, and draws
//! nothing from a random generator, so the run's trajectory is the same with it on or off.

use std::collections::BTreeSet;

use sipl_limits::{Ints, RangeError};
use sipl_train::config::MonitorConfig;
use sipl_train::model::PretextModel;
use sipl_train::trainer::{KnnFigure, Monitor, TrainError};
use tch::Device;

use crate::EvalError;
use crate::features::{Images, Preprocess, embed_model};
use crate::knn::{KnnConfig, knn_split};
use crate::split::{Prepared, SplitKeys, SplitSpec};
use crate::stats::{LEVEL, wilson};

/// `[monitor]`'s keys, as errors name them.
const KEYS: SplitKeys = SplitKeys {
    data: "monitor.data",
    images: "monitor.images",
    train_images: "monitor.train_images",
    stratified: "monitor.stratified",
};

/// A monitor set, split and checked, ready to measure an encoder.
pub struct KnnMonitor {
    cfg: MonitorConfig,
    prepared: Prepared,
}

impl KnnMonitor {
    /// Opens and splits `cfg.data` and checks it can give the figure asked for.
    ///
    /// # Errors
    /// Each naming its key: a set without labels (`monitor.data`), images that are not
    /// squares of one side (`monitor.data`: the encoder sees every image resized to
    /// `input_size`², so other shapes would be distorted), a cap or split outside the set
    /// (`monitor.images`, `monitor.train_images`, `monitor.stratified`), held-out images of
    /// classes that no neighbour has (the split's key), fewer neighbours than `monitor.k`, and
    /// batches that do not fit in memory (`monitor.batch`).
    pub fn new(cfg: &MonitorConfig, device: Device) -> Result<Self, EvalError> {
        let spec = SplitSpec {
            images: cfg.images,
            train_images: cfg.train_images.unwrap_or(0),
            stratified: cfg.stratified_share(),
            split_seed: cfg.split_seed,
            keys: KEYS,
        };
        let prepared = crate::split::prepare(&cfg.data, &spec, None).map_err(|e| match e {
            EvalError::Data(m) => EvalError::Data(format!("monitor.data: {m}")),
            EvalError::Shard(s) => EvalError::Data(format!("monitor.data: {s}")),
            other => other,
        })?;
        let p = &prepared;
        check_square(p)?;
        let taught: BTreeSet<i64> = p.train.iter().map(|&i| p.labels[i]).collect();
        let untaught = p.held.iter().filter(|&&i| !taught.contains(&p.labels[i])).count();
        if untaught > 0 {
            let key = if spec.stratified.is_some() { KEYS.stratified } else { KEYS.train_images };
            let e = RangeError::new(key, p.split.clone(), "a split whose neighbours hold every held-out class")
                .note(format!(
                    "{untaught} of {} held-out images are of classes no neighbour has, so kNN could never name them (a set ordered by class? use monitor.stratified)",
                    p.held.len()
                ));
            return Err(e.into());
        }
        Ints::new(1, p.train.len() as u64).check("monitor.k", cfg.k).map_err(|e| {
            e.note(format!("the split leaves {} labelled neighbours", p.train.len()))
        })?;
        crate::features::check_batch(cfg.batch, cfg.input_size, device).map_err(|e| match e {
            EvalError::Range(r) => {
                EvalError::Data(format!("monitor.batch/monitor.input_size: {r}"))
            }
            other => other,
        })?;
        Ok(KnnMonitor { cfg: cfg.clone(), prepared })
    }

    /// Labelled neighbours and held-out images.
    pub fn sizes(&self) -> (usize, usize) {
        (self.prepared.train.len(), self.prepared.held.len())
    }

    /// The figure of `model`'s encoder on `device`.
    pub fn figure(&self, model: &PretextModel, device: Device) -> Result<KnnFigure, EvalError> {
        let p = &self.prepared;
        let c = &self.cfg;
        let embed = |indices: &[usize]| {
            let images = Images {
                ds: &p.ds,
                indices,
                input_size: c.input_size,
                batch: c.batch,
                pre: Preprocess::default(),
            };
            embed_model(model, device, &images, false)
        };
        let knn = KnnConfig { k: vec![c.k], temperature: c.temperature, ..KnnConfig::default() };
        let out = knn_split(p, embed, &knn)?;
        let (correct, n) = (out.correct[0], out.truth.len() as u64);
        let w = wilson(correct, n, LEVEL);
        Ok(KnnFigure {
            k: c.k as u64,
            correct,
            held_out: n,
            train_images: p.train.len() as u64,
            low: w.map_or(0.0, |w| w.low),
            high: w.map_or(1.0, |w| w.high),
        })
    }
}

impl Monitor for KnnMonitor {
    fn every(&self) -> u64 {
        self.cfg.every
    }

    fn measure(&mut self, model: &PretextModel, device: Device) -> Result<KnnFigure, TrainError> {
        self.figure(model, device).map_err(|e| TrainError::Monitor(e.to_string()))
    }
}

/// Refuses a set whose images are not squares of one side.
fn check_square(p: &Prepared) -> Result<(), EvalError> {
    let mut side = None;
    for &i in p.train.iter().chain(&p.held) {
        let r = p.ds.record(i)?;
        let (w, h) = (r.width, r.height);
        if w != h || side.is_some_and(|s| s != w) {
            return Err(EvalError::Data(format!(
                "monitor.data: {} is {w}×{h}{}; the monitor needs square images of one side (ingest the set with --resize N --crop N)",
                r.path,
                side.map_or(String::new(), |s| format!(" and others {s}×{s}"))
            )));
        }
        side = Some(w);
    }
    Ok(())
}
