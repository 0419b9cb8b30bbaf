//! `sipl` with faults injected into `sipl train`, for the tests (tests/train.rs, dist.rs,
//! faults.rs) and nothing else: `cargo test` builds it, `make build` does not. The plan comes
//! from the environment, which ranks started by `--devices` inherit:
//!
//! - `SIPL_FAULT_NAN_AT_STEP=K`: the loss becomes NaN at step K;
//! - `SIPL_FAULT_RANK=R`: only on rank R (default: every rank);
//! - `SIPL_FAULT_KILL_IN_CHECKPOINT=K`: SIGKILL inside the checkpoint write of step K.
//!
//! The user's `sipl` reads none of these.

use sipl::FaultPlan;

fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            eprintln!("sipl-fault-harness: {name}={value:?} is not a number");
            std::process::exit(2)
        }
    }
}

fn main() -> std::process::ExitCode {
    sipl::main_with(FaultPlan {
        nan_at_step: var("SIPL_FAULT_NAN_AT_STEP"),
        nan_rank: var("SIPL_FAULT_RANK"),
        kill_in_checkpoint_at_step: var("SIPL_FAULT_KILL_IN_CHECKPOINT"),
    })
}
