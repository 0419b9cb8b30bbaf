//! Data-parallel training over PyTorch's c10d (see `csrc/dist.cpp`): one process per device,
//! launched by `sipl train --devices …` or by torchrun/Slurm through the usual environment
//! (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`).
//!
//! - Rendezvous and start-up checks go through c10d's TCPStore (rank 0 serves it).
//! - Collectives run on NCCL for CUDA devices and on Gloo for CPU ranks (which the tests use).
//! - Gradients are averaged by c10d's Reducer, DistributedDataParallel's bucketed all-reduce,
//!   overlapping backward.
//!
//! What is synchronised, and when: parameters and buffers are broadcast from rank 0 at start;
//! gradients every step; BatchNorm running statistics are averaged before each validation and
//! checkpoint (between those, each rank's statistics follow its own shard, as in DDP without
//! buffer broadcast); a stop request is agreed every `run.log_every` steps.

use std::time::Duration;

use tch::{Device, Kind, Tensor, nn};

use crate::model::sorted_variables;

pub use crate::ffi::c10d::{Group, Reducer, Store, backends};

/// Where this process sits in a distributed run, from the launch environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// The rank's index among the ranks of its machine (its CUDA device under torchrun).
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// Under torchrun with `TORCHELASTIC_USE_AGENT_STORE=True`: the launcher's agent already
    /// serves the store at MASTER_ADDR:MASTER_PORT, and every rank joins it as a client, its
    /// keys under this prefix (`/worker/attempt_N`, N = `TORCHELASTIC_RESTART_COUNT`), as
    /// PyTorch's own `env://` rendezvous does. `None`: rank 0 serves the store.
    pub agent_store: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("launch environment: {var}={value:?}: {reason}")]
    Env { var: &'static str, value: String, reason: String },
    #[error(
        "rank {rank} could not reach the rendezvous at {addr}:{port} within {timeout_s} s (is rank 0 running, and are MASTER_ADDR/MASTER_PORT right?): {message}"
    )]
    Connect { rank: usize, addr: String, port: u16, timeout_s: u64, message: String },
    #[error("rank {rank}'s {what} differs from rank 0's: {detail}")]
    Mismatch { rank: usize, what: String, detail: String },
    #[error("rank 0 failed before training started: {0}")]
    MainFailed(String),
    #[error("collective communication: {0}")]
    Torch(#[from] tch::TchError),
}

/// Reads one variable of the launch environment.
fn env_var(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<String>, DistError> {
    Ok(get(var).filter(|v| !v.trim().is_empty()))
}

fn parse<T: std::str::FromStr>(var: &'static str, value: &str) -> Result<T, DistError> {
    value.trim().parse().map_err(|_| DistError::Env {
        var,
        value: value.to_owned(),
        reason: "not a number".into(),
    })
}

impl Launch {
    /// The launch from the process environment; `None` when `RANK` and `WORLD_SIZE` are unset
    /// (a single-process run).
    pub fn from_env() -> Result<Option<Self>, DistError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`Launch::from_env`], reading variables through `get`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, DistError> {
        let (rank, world) = (env_var(&get, "RANK")?, env_var(&get, "WORLD_SIZE")?);
        let (rank, world) = match (rank, world) {
            (None, None) => return Ok(None),
            (Some(r), Some(w)) => (parse::<usize>("RANK", &r)?, parse::<usize>("WORLD_SIZE", &w)?),
            (r, _) => {
                let (var, value) = if r.is_some() { ("WORLD_SIZE", "") } else { ("RANK", "") };
                return Err(DistError::Env {
                    var,
                    value: value.into(),
                    reason: "RANK and WORLD_SIZE must be set together".into(),
                });
            }
        };
        if world == 0 || rank >= world {
            return Err(DistError::Env {
                var: "RANK",
                value: rank.to_string(),
                reason: format!("must be below WORLD_SIZE={world}"),
            });
        }
        let local_rank = match env_var(&get, "LOCAL_RANK")? {
            Some(v) => parse("LOCAL_RANK", &v)?,
            None => rank,
        };
        let master_addr = env_var(&get, "MASTER_ADDR")?.unwrap_or_else(|| "127.0.0.1".into());
        let master_port = match env_var(&get, "MASTER_PORT")? {
            Some(v) => parse("MASTER_PORT", &v)?,
            None => 29500,
        };
        let agent_store = match env_var(&get, "TORCHELASTIC_USE_AGENT_STORE")?.as_deref() {
            Some("True") => {
                let attempt = match env_var(&get, "TORCHELASTIC_RESTART_COUNT")? {
                    Some(v) => parse::<u64>("TORCHELASTIC_RESTART_COUNT", &v)?,
                    None => 0,
                };
                Some(format!("/worker/attempt_{attempt}"))
            }
            _ => None,
        };
        Ok(Some(Launch { rank, world, local_rank, master_addr, master_port, agent_store }))
    }

    /// The device of this rank: `configured` when it names one (`cuda:N`, `cpu`), else the
    /// CUDA device `LOCAL_RANK` (or the CPU when there is no CUDA).
    pub fn device(&self, configured: crate::DeviceSpec) -> Result<Device, crate::DeviceError> {
        use crate::DeviceSpec::{Auto, Cuda};
        match configured {
            Cuda(None) | Auto if crate::device::cuda_device_count() > 0 => {
                Cuda(Some(self.local_rank)).resolve()
            }
            _ => configured.resolve(),
        }
    }
}

/// A connected rank: the store, the process group, and the collectives training needs.
pub struct Dist {
    pub rank: usize,
    pub world: usize,
    device: Device,
    store: Store,
    group: Group,
}

impl Dist {
    /// Joins the run: connects to (rank 0: serves) the store and builds the process group
    /// on `device` (NCCL for CUDA, Gloo for the CPU). Fails within `timeout` when rank 0
    /// cannot be reached.
    pub fn connect(launch: &Launch, device: Device, timeout: Duration) -> Result<Self, DistError> {
        let ms = timeout.as_millis() as u64;
        let store = Store::connect(
            &launch.master_addr,
            launch.master_port,
            launch.rank == 0 && launch.agent_store.is_none(),
            launch.world,
            ms,
            launch.agent_store.as_deref().unwrap_or(""),
        )
        .map_err(|e| DistError::Connect {
            rank: launch.rank,
            addr: launch.master_addr.clone(),
            port: launch.master_port,
            timeout_s: timeout.as_secs(),
            message: e.to_string(),
        })?;
        let cuda = match device {
            Device::Cuda(i) => Some(i),
            _ => None,
        };
        let group = Group::new(&store, launch.rank, launch.world, cuda, ms)?;
        Ok(Dist { rank: launch.rank, world: launch.world, device, store, group })
    }

    /// Rank 0 writes checkpoints, metrics, weights and the progress bar.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// Every rank publishes its `value` of `what`; an error on every rank whose value differs
    /// from rank 0's, and on rank 0 when any rank's differs.
    pub fn agree(&self, what: &str, value: &str) -> Result<(), DistError> {
        self.store.set(&format!("agree/{what}/{}", self.rank), value.as_bytes())?;
        let read = |r: usize| -> Result<String, DistError> {
            Ok(String::from_utf8_lossy(&self.store.get(&format!("agree/{what}/{r}"))?).into_owned())
        };
        let main = read(0)?;
        let others: Vec<usize> =
            if self.is_main() { (1..self.world).collect() } else { vec![self.rank] };
        for r in others {
            let theirs = read(r)?;
            if theirs != main {
                return Err(DistError::Mismatch {
                    rank: r,
                    what: what.to_owned(),
                    detail: describe_difference(&main, &theirs),
                });
            }
        }
        Ok(())
    }

    /// Rank 0 tells the others how the start went (config agreement, claiming the run
    /// directory): `None` for success, else its error message.
    pub fn publish_start(&self, failure: Option<&str>) -> Result<(), DistError> {
        Ok(self.store.set("outcome/start", failure.unwrap_or_default().as_bytes())?)
    }

    /// The other ranks wait for rank 0's start and fail with its message when it failed.
    pub fn await_start(&self) -> Result<(), DistError> {
        let text = String::from_utf8_lossy(&self.store.get("outcome/start")?).into_owned();
        if text.is_empty() { Ok(()) } else { Err(DistError::MainFailed(text)) }
    }

    /// True on every rank when `flag` is true on any rank.
    pub fn any(&self, flag: bool) -> Result<bool, DistError> {
        let t = Tensor::from_slice(&[flag as i64]).to_device(self.device);
        self.group.allreduce_sum(&[&t])?;
        Ok(t.int64_value(&[0]) > 0)
    }

    /// Sums each tensor over the ranks, in place.
    pub fn sum(&self, tensors: &[&Tensor]) -> Result<(), DistError> {
        Ok(self.group.allreduce_sum(tensors)?)
    }

    /// Rank 0's parameters and buffers, on every rank.
    pub fn broadcast_model(&self, vs: &nn::VarStore) -> Result<(), DistError> {
        let vars = sorted_variables(vs);
        let refs: Vec<&Tensor> = vars.iter().map(|(_, t)| t).collect();
        tch::no_grad(|| self.group.broadcast(&refs, 0))?;
        Ok(())
    }

    /// Averages the floating-point buffers that are not trained (BatchNorm running mean and
    /// variance) over the ranks; integer counters are equal on every rank and left alone.
    pub fn average_buffers(&self, vs: &nn::VarStore) -> Result<(), DistError> {
        let buffers: Vec<Tensor> = sorted_variables(vs)
            .into_iter()
            .filter(|(_, t)| !t.requires_grad() && t.kind() == Kind::Float)
            .map(|(_, t)| t)
            .collect();
        let refs: Vec<&Tensor> = buffers.iter().collect();
        tch::no_grad(|| -> Result<(), DistError> {
            self.group.allreduce_sum(&refs)?;
            for b in &buffers {
                let _ = b.shallow_clone().g_div_scalar_(self.world as f64);
            }
            Ok(())
        })
    }

    /// A gradient reducer over the trainable variables of `vs`, in buckets of `bucket_mb`.
    pub fn reducer(&self, vs: &nn::VarStore, bucket_mb: f64) -> Result<Reducer, DistError> {
        // Name order is the same on every rank; reversed, it roughly follows the order in
        // which backward produces gradients (head first, stem last).
        let mut params: Vec<Tensor> = sorted_variables(vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(_, t)| t)
            .collect();
        params.reverse();
        let refs: Vec<&Tensor> = params.iter().collect();
        let bytes = (bucket_mb * 1024.0 * 1024.0).max(1.0) as u64;
        Ok(Reducer::new(&self.group, &refs, bytes, bytes.min(1024 * 1024))?)
    }
}

/// The first setting (by key) where two agreement texts differ, for an error message.
fn describe_difference(main: &str, theirs: &str) -> String {
    use sipl_limits::changes::{changes, settings_of_text};
    match changes(&settings_of_text(main), &settings_of_text(theirs)).first() {
        Some(c) => format!("rank 0 has `{}`, this rank `{}`", c.side(&c.old), c.side(&c.new)),
        None => "values differ".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn reads_the_torchrun_environment() {
        assert_eq!(Launch::from_vars(vars(&[])).expect("empty"), None);
        let l = Launch::from_vars(vars(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node7"),
            ("MASTER_PORT", "29400"),
        ]))
        .expect("valid")
        .expect("distributed");
        assert_eq!(
            l,
            Launch {
                rank: 3,
                world: 8,
                local_rank: 1,
                master_addr: "node7".into(),
                master_port: 29400,
                agent_store: None,
            }
        );
        let d = Launch::from_vars(vars(&[("RANK", "1"), ("WORLD_SIZE", "2")]))
            .expect("ok")
            .expect("some");
        assert_eq!((d.local_rank, d.master_addr.as_str(), d.master_port), (1, "127.0.0.1", 29500));
    }

    #[test]
    fn under_torchruns_agent_store_every_rank_joins_it_as_a_client() {
        let agent = |extra: &[(&str, &str)]| {
            let mut pairs = vec![("RANK", "0"), ("WORLD_SIZE", "2")];
            pairs.extend_from_slice(extra);
            Launch::from_vars(vars(&pairs)).expect("ok").expect("some").agent_store
        };
        assert_eq!(agent(&[]), None);
        assert_eq!(agent(&[("TORCHELASTIC_USE_AGENT_STORE", "False")]), None);
        let on = [("TORCHELASTIC_USE_AGENT_STORE", "True")];
        assert_eq!(agent(&on).as_deref(), Some("/worker/attempt_0"));
        let again = [on[0], ("TORCHELASTIC_RESTART_COUNT", "2")];
        assert_eq!(agent(&again).as_deref(), Some("/worker/attempt_2"));
    }

    #[test]
    fn a_bad_launch_environment_is_a_clear_error() {
        for (pairs, needle) in [
            (vec![("RANK", "0")], "set together"),
            (vec![("RANK", "2"), ("WORLD_SIZE", "2")], "below WORLD_SIZE=2"),
            (vec![("RANK", "x"), ("WORLD_SIZE", "2")], "not a number"),
            (vec![("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "70000")], "MASTER_PORT"),
        ] {
            let e = Launch::from_vars(vars(&pairs)).expect_err("bad environment").to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn differences_name_the_first_differing_line() {
        let d = describe_difference("a = 1\nb = 2\n", "a = 1\nb = 3\n");
        assert_eq!(d, "rank 0 has `b = 2`, this rank `b = 3`");
    }
}
