//! When the training loop logs, validates, checkpoints and stops: a pure policy of the step
//! and epoch counters, unit-tested without a model or a disk. How checkpoints are stored (and
//! which old ones are pruned, `checkpoint::to_prune`) is `checkpoint.rs`'s; how ranks agree on
//! a stop or a non-finite loss is `ranks.rs`'s.

use crate::config::TrainConfig;

/// The schedule of a run, from its config and the loader's batches per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// A metrics line (and a finiteness check) every this many steps; with several ranks, a
    /// stop request is also agreed at these steps.
    pub log_every: u64,
    /// A checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// Also a checkpoint at every epoch end (the last epoch's is always written).
    pub checkpoint_each_epoch: bool,
    pub epochs: u64,
    /// The step the run ends at: `optim.max_steps`, at most `epochs × batches per epoch`.
    pub max_steps: u64,
}

/// What to do once a step is done (after its metrics line, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterStep {
    /// Write a checkpoint now (the run's last step instead checkpoints after its validation).
    pub checkpoint: bool,
    /// Return now, interrupted (a stop was requested; the checkpoint above is its record).
    pub interrupt: bool,
    /// The run's last step, inside an epoch: leave the epoch loop. A last step that completes
    /// its epoch does not: that epoch ends as every other does (validation, monitor,
    /// checkpoint, the epoch gate), counted as done, and the loop ends after it.
    pub finish: bool,
}

impl Cadence {
    pub fn new(cfg: &TrainConfig, batches_per_epoch: u64) -> Self {
        let epochs = cfg.optim.epochs;
        Cadence {
            log_every: cfg.run.log_every,
            checkpoint_every: cfg.run.checkpoint_every,
            checkpoint_each_epoch: cfg.run.checkpoint_each_epoch,
            epochs,
            max_steps: cfg.optim.max_steps.unwrap_or(u64::MAX).min(epochs * batches_per_epoch),
        }
    }

    /// Whether the run has anything left to do from (`epoch`, `step`).
    pub fn goes_on(&self, epoch: u64, step: u64) -> bool {
        epoch < self.epochs && step < self.max_steps
    }

    /// Whether step `step` (1-based, just done) writes a metrics line.
    pub fn logs_at(&self, step: u64) -> bool {
        step.is_multiple_of(self.log_every)
    }

    /// What follows step `step`, given whether a stop was requested (and agreed) at it and
    /// whether the step was its epoch's last batch.
    pub fn after_step(&self, step: u64, stop: bool, ends_epoch: bool) -> AfterStep {
        let last = step >= self.max_steps;
        AfterStep {
            checkpoint: (step.is_multiple_of(self.checkpoint_every) && !last) || stop,
            interrupt: stop,
            finish: last && !ends_epoch,
        }
    }

    /// Whether the end of epoch `epochs_done` (counted after it), at step `step`, writes a
    /// checkpoint. Every epoch end validates.
    pub fn checkpoints_after_epoch(&self, epochs_done: u64, step: u64) -> bool {
        self.checkpoint_each_epoch || epochs_done >= self.epochs || step >= self.max_steps
    }

    /// Whether a run ending at `step`, last validated at `validated_at`, still validates and
    /// checkpoints (it stopped mid-epoch at `max_steps`). A run resumed from a checkpoint taken
    /// at an epoch's end (its batch is 0) counts as validated at that step: the checkpoint was
    /// written after the epoch's validation.
    pub fn validates_at_end(&self, step: u64, validated_at: Option<u64>) -> bool {
        validated_at != Some(step)
    }
}

/// Whether validation accuracy `acc` is a new best (strictly better; the first always is).
pub fn is_new_best(best: Option<f64>, acc: f64) -> bool {
    best.is_none_or(|b| acc > b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of a run from (`epoch`, `step`, `batch`) as the loop would drive the policy,
    /// with a stop requested at `stop_at`: "log N", "ckpt N", "val N eE" (E: the epochs
    /// completed that its line records), "gate N" (the epoch gate is asked), "stop N".
    fn simulate(
        c: Cadence,
        per_epoch: u64,
        from: (u64, u64, u64),
        stop_at: Option<u64>,
    ) -> Vec<String> {
        let (mut epoch, mut step, mut batch) = from;
        let mut events = Vec::new();
        let mut validated_at = (batch == 0 && step > 0).then_some(step);
        'epochs: while c.goes_on(epoch, step) {
            while batch < per_epoch {
                (step, batch) = (step + 1, batch + 1);
                if c.logs_at(step) {
                    events.push(format!("log {step}"));
                }
                let next = c.after_step(step, stop_at == Some(step), batch == per_epoch);
                if next.checkpoint {
                    events.push(format!("ckpt {step}"));
                }
                if next.interrupt {
                    events.push(format!("stop {step}"));
                    return events;
                }
                if next.finish {
                    break 'epochs;
                }
            }
            (epoch, batch) = (epoch + 1, 0);
            events.push(format!("val {step} e{epoch}"));
            validated_at = Some(step);
            if c.checkpoints_after_epoch(epoch, step) {
                events.push(format!("ckpt {step}"));
            }
            events.push(format!("gate {step}"));
        }
        if c.validates_at_end(step, validated_at) {
            events.extend([format!("val {step} e{epoch}"), format!("ckpt {step}")]);
        }
        events
    }

    fn cadence(epochs: u64, max_steps: u64, each_epoch: bool) -> Cadence {
        Cadence {
            log_every: 2,
            checkpoint_every: 3,
            checkpoint_each_epoch: each_epoch,
            epochs,
            max_steps,
        }
    }

    #[test]
    fn a_whole_run_logs_checkpoints_and_validates_on_schedule() {
        let events = simulate(cadence(2, 8, true), 4, (0, 0, 0), None);
        let want = [
            "log 2", "ckpt 3", "log 4", "val 4 e1", "ckpt 4", "gate 4", "log 6", "ckpt 6", "log 8",
            "val 8 e2", "ckpt 8", "gate 8",
        ];
        assert_eq!(events, want);
    }

    #[test]
    fn the_last_step_checkpoints_after_its_validation_only() {
        // Step 6 is both a checkpoint step and the last, inside epoch 2: one checkpoint, after
        // validation; the epoch is not complete and its gate is not asked.
        let events = simulate(cadence(10, 6, false), 4, (0, 0, 0), None);
        let want =
            ["log 2", "ckpt 3", "log 4", "val 4 e1", "gate 4", "log 6", "val 6 e1", "ckpt 6"];
        assert_eq!(events, want);
    }

    #[test]
    fn the_last_epoch_ends_as_every_other_epoch_does() {
        // Three epochs of 2 steps, the last step a checkpoint step: the last epoch is counted
        // (epochs 1, 2, 3, never 1, 2, 2), asks the gate, and is checkpointed once.
        for max_steps in [6, u64::MAX] {
            let mut c = cadence(3, max_steps, false);
            c.max_steps = c.max_steps.min(3 * 2);
            let events = simulate(c, 2, (0, 0, 0), None);
            let want = [
                "log 2", "val 2 e1", "gate 2", "ckpt 3", "log 4", "val 4 e2", "gate 4", "log 6",
                "val 6 e3", "ckpt 6", "gate 6",
            ];
            assert_eq!(events, want, "max_steps {max_steps}");
            // Run again once finished (its checkpoint is at epoch 3's start): nothing to do.
            assert!(simulate(c, 2, (3, 6, 0), None).is_empty());
        }
    }

    #[test]
    fn a_stop_checkpoints_at_once_and_a_resume_continues_the_same_schedule() {
        let stopped = simulate(cadence(2, 8, true), 4, (0, 0, 0), Some(5));
        let want = ["log 2", "ckpt 3", "log 4", "val 4 e1", "ckpt 4", "gate 4", "ckpt 5", "stop 5"];
        assert_eq!(stopped, want);
        // Resumed from the checkpoint of step 5 (epoch 1, batch 1): the rest of the schedule.
        let resumed = simulate(cadence(2, 8, true), 4, (1, 5, 1), None);
        assert_eq!(resumed, ["log 6", "ckpt 6", "log 8", "val 8 e2", "ckpt 8", "gate 8"]);
        // Stopped on an epoch's last step, before its end: resumed, that epoch ends first.
        let stopped = simulate(cadence(2, 8, true), 4, (0, 0, 0), Some(4));
        assert_eq!(stopped, ["log 2", "ckpt 3", "log 4", "ckpt 4", "stop 4"]);
        let resumed = simulate(cadence(2, 8, true), 4, (0, 4, 4), None);
        assert_eq!(
            resumed,
            [
                "val 4 e1", "ckpt 4", "gate 4", "log 6", "ckpt 6", "log 8", "val 8 e2", "ckpt 8",
                "gate 8"
            ]
        );
    }

    #[test]
    fn max_steps_bounds_the_epochs_and_new_bests_are_strict() {
        let mut cfg_steps = cadence(3, u64::MAX, false);
        cfg_steps.max_steps = cfg_steps.max_steps.min(3 * 4);
        assert!(cfg_steps.goes_on(2, 11) && !cfg_steps.goes_on(3, 11) && !cfg_steps.goes_on(2, 12));
        assert!(is_new_best(None, 0.0) && is_new_best(Some(0.5), 0.6));
        assert!(!is_new_best(Some(0.5), 0.5));
    }
}
