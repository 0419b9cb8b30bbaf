//! Faults that the tests inject into a training run, to check what a real failure would do.
//!
//! A [`FaultPlan`] is a plain value handed to [`crate::trainer::TrainJob`]: the library never
//! reads one from a config file or the environment, and the user's `sipl` binary always passes
//! [`FaultPlan::none`]. Only the test harness binary (`src/bin/sipl-fault-harness.rs`, built
//! by `cargo test`) fills one in.

/// What to break, and when. The default breaks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The loss becomes NaN at this step (1-based, counted after the step).
    pub nan_at_step: Option<u64>,
    /// Only this rank's loss becomes NaN; `None`: every rank's.
    pub nan_rank: Option<usize>,
    /// The process SIGKILLs itself inside the checkpoint write of this step, after the
    /// weights are written and before the optimizer state, as `kill -9` would.
    pub kill_in_checkpoint_at_step: Option<u64>,
}

impl FaultPlan {
    /// No faults: what every user-facing run gets.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// Whether the loss of `rank` at `step` is to be NaN.
    pub fn nan_loss(&self, step: u64, rank: usize) -> bool {
        self.nan_at_step == Some(step) && self.nan_rank.is_none_or(|r| r == rank)
    }

    /// Kills this process if the plan says so for the checkpoint of `step`.
    pub(crate) fn kill_in_checkpoint(&self, step: u64) {
        if self.kill_in_checkpoint_at_step == Some(step) {
            eprintln!("fault injection: killing this process inside the checkpoint of step {step}");
            // SIGKILL, as kill -9 would (abort would leave a core file).
            // SAFETY: kill(2) on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_is_planted_at_one_step_on_the_chosen_ranks() {
        assert!(!FaultPlan::none().nan_loss(3, 0));
        let every = FaultPlan { nan_at_step: Some(3), ..FaultPlan::none() };
        assert!(every.nan_loss(3, 0) && every.nan_loss(3, 1) && !every.nan_loss(2, 0));
        let one = FaultPlan { nan_rank: Some(1), ..every };
        assert!(one.nan_loss(3, 1) && !one.nan_loss(3, 0));
    }
}
