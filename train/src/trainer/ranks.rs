//! How the processes of a run coordinate during training, behind one small trait: [`Single`]
//! (one process: every decision is its own) or [`Ranked`] (several ranks over c10d: each
//! decision is a collective that every rank makes at the same step, so none is left waiting).
//! The start-up protocol (agreeing on the config, claiming the run directory) comes before a
//! [`Ranks`] exists, in `train`.

use tch::{Tensor, nn};

use super::TrainError;
use crate::dist::{Dist, Reducer};

/// The collectives a training step, a validation and a checkpoint need.
pub trait Ranks {
    /// This process's rank; 0 writes the run directory.
    fn rank(&self) -> usize;
    /// Ranks in the run.
    fn world(&self) -> usize;
    fn is_main(&self) -> bool {
        self.rank() == 0
    }
    /// Whether any rank's `local` is true.
    fn any(&self, local: bool) -> Result<bool, TrainError>;
    /// Whether to stop: this process's request, agreed between ranks only at steps where
    /// `agree_now` (a collective every rank reaches at the same step).
    fn stop(&self, local: bool, agree_now: bool) -> Result<bool, TrainError>;
    /// Sums each tensor over the ranks, in place.
    fn sum(&self, tensors: &[&Tensor]) -> Result<(), TrainError>;
    /// Averages BatchNorm running statistics over the ranks (before validating or saving).
    fn average_buffers(&self, vs: &nn::VarStore) -> Result<(), TrainError>;
    /// Before every forward pass of a training step.
    fn before_forward(&self) -> Result<(), TrainError>;
    /// Arms gradient averaging for the backward pass from `loss`.
    fn before_backward(&self, loss: &Tensor) -> Result<(), TrainError>;
}

/// One process: nothing to agree on.
pub struct Single;

impl Ranks for Single {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn any(&self, local: bool) -> Result<bool, TrainError> {
        Ok(local)
    }
    fn stop(&self, local: bool, _agree_now: bool) -> Result<bool, TrainError> {
        Ok(local)
    }
    fn sum(&self, _: &[&Tensor]) -> Result<(), TrainError> {
        Ok(())
    }
    fn average_buffers(&self, _: &nn::VarStore) -> Result<(), TrainError> {
        Ok(())
    }
    fn before_forward(&self) -> Result<(), TrainError> {
        Ok(())
    }
    fn before_backward(&self, _: &Tensor) -> Result<(), TrainError> {
        Ok(())
    }
}

/// One rank of several: c10d collectives, and c10d's Reducer averaging gradients during
/// backward.
pub struct Ranked {
    /// Declared before `dist`: the reducer goes first.
    reducer: Reducer,
    dist: Dist,
}

impl Ranked {
    /// Every rank continues from the same point (`position`, checked) with rank 0's weights.
    pub fn start(
        dist: Dist,
        vs: &nn::VarStore,
        position: &str,
        bucket_mb: f64,
    ) -> Result<Self, TrainError> {
        dist.agree("start", position)?;
        dist.broadcast_model(vs)?;
        let reducer = dist.reducer(vs, bucket_mb)?;
        Ok(Ranked { reducer, dist })
    }
}

impl Ranks for Ranked {
    fn rank(&self) -> usize {
        self.dist.rank
    }
    fn world(&self) -> usize {
        self.dist.world
    }
    fn any(&self, local: bool) -> Result<bool, TrainError> {
        Ok(self.dist.any(local)?)
    }
    fn stop(&self, local: bool, agree_now: bool) -> Result<bool, TrainError> {
        if agree_now { self.any(local) } else { Ok(false) }
    }
    fn sum(&self, tensors: &[&Tensor]) -> Result<(), TrainError> {
        Ok(self.dist.sum(tensors)?)
    }
    fn average_buffers(&self, vs: &nn::VarStore) -> Result<(), TrainError> {
        Ok(self.dist.average_buffers(vs)?)
    }
    fn before_forward(&self) -> Result<(), TrainError> {
        Ok(self.reducer.rebuild()?)
    }
    fn before_backward(&self, loss: &Tensor) -> Result<(), TrainError> {
        Ok(self.reducer.prepare(&[loss])?)
    }
}
