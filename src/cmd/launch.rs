//! `sipl train --devices …`: one rank per device on this machine, each a child `sipl train`
//! with the torchrun environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
//! `MASTER_PORT`) and its own `run.device`. SIGINT/SIGTERM are passed on (the ranks agree on a
//! step, checkpoint and stop); when one rank fails, the others are stopped and the failure is
//! reported.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sipl_limits::RangeError;
use sipl_train::DeviceSpec;
use sipl_train::config::TrainConfig;

/// How long ranks get to stop after another failed, before they are killed.
const GRACE: Duration = Duration::from_secs(20);

/// Checks the devices and the config (`config` with `sets`, as every rank will read it),
/// then runs one rank per device to the end. Nothing starts when either is refused.
pub fn local(devices: &[String], config: &Path, sets: &[String]) -> anyhow::Result<()> {
    let devices = check_devices(devices)?;
    let mut sets = sets.to_vec();
    sets.push(format!("run.device={}", devices[0]));
    let cfg = TrainConfig::load(config, &sets)?;
    check_rank_threads(&devices, cfg.run.threads)?;
    let port = match std::env::var("MASTER_PORT") {
        Ok(p) => p.parse::<u16>().with_context(|| format!("MASTER_PORT={p:?} is not a port"))?,
        Err(_) => free_port()?,
    };
    let args = child_args(std::env::args_os().skip(1).collect());
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let exe = std::env::current_exe().context("locating the sipl binary")?;
    let world = devices.len();
    let mut ranks: Vec<(usize, Child)> = Vec::new();
    for (rank, device) in devices.iter().enumerate() {
        let child = Command::new(&exe)
            .args(&args)
            .arg("--set")
            .arg(format!("run.device={device}"))
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", world.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .spawn();
        match child {
            Ok(c) => ranks.push((rank, c)),
            Err(e) => {
                terminate(&mut ranks);
                return Err(e).context(format!("starting rank {rank}"));
            }
        }
    }
    eprintln!("started {world} ranks on {} (rendezvous 127.0.0.1:{port})", devices.join(","));
    wait_all(ranks, &stop)
}

/// Parsed, existing, of one kind, no CUDA device twice, and at most one CPU rank per core.
fn check_devices(devices: &[String]) -> anyhow::Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in devices {
        let spec: DeviceSpec = d.parse()?;
        let spec = match spec {
            DeviceSpec::Auto => {
                bail!("--devices needs explicit devices (cuda:N or cpu), not {d:?}")
            }
            s => s.indexed(),
        };
        spec.resolve()?;
        if matches!(spec, DeviceSpec::Cuda(_)) && !seen.insert(spec) {
            bail!("--devices lists {spec} twice: each rank needs its own GPU");
        }
        out.push(spec.to_string());
    }
    let cuda = out.iter().filter(|d| d.starts_with("cuda")).count();
    if cuda != 0 && cuda != out.len() {
        bail!("--devices mixes CPU and CUDA ranks ({}); use one kind", out.join(","));
    }
    let cores = sipl_limits::machine::cores();
    if cuda == 0 && out.len() as u64 > cores {
        let e = RangeError::new("--devices", out.join(","), format!("at most {cores} CPU ranks"))
            .note(sipl_limits::machine::cores_note());
        return Err(e.into());
    }
    Ok(out)
}

/// CPU ranks share this machine's cores: together their `run.threads` may not exceed them.
fn check_rank_threads(devices: &[String], threads: Option<usize>) -> Result<(), RangeError> {
    let ranks = devices.iter().filter(|d| *d == "cpu").count() as u64;
    match threads {
        Some(t) if ranks > 1 => {
            let cores = sipl_limits::machine::cores();
            sipl_limits::Ints::new(1, cores / ranks).check("run.threads", t).map_err(|e| {
                e.note(format!("{ranks} CPU ranks share {}", sipl_limits::machine::cores_note()))
            })?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The command line without `--devices` and its value.
fn child_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--devices" {
            skip_value = true;
        } else if !s.starts_with("--devices=") {
            out.push(a);
        }
    }
    out
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Waits for every rank. A signal is passed on once; the first failure stops the others.
fn wait_all(mut ranks: Vec<(usize, Child)>, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut forwarded = false;
    let mut failed: Option<(usize, ExitStatus)> = None;
    let mut deadline: Option<Instant> = None;
    while !ranks.is_empty() {
        if stop.load(Ordering::Relaxed) && !forwarded {
            signal(&ranks, libc::SIGTERM);
            forwarded = true;
        }
        let mut i = 0;
        while i < ranks.len() {
            match ranks[i].1.try_wait()? {
                Some(status) => {
                    let (rank, _) = ranks.remove(i);
                    if !status.success() && failed.is_none() {
                        failed = Some((rank, status));
                        signal(&ranks, libc::SIGTERM);
                        deadline = Some(Instant::now() + GRACE);
                    }
                }
                None => i += 1,
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            terminate(&mut ranks);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failed {
        None => Ok(()),
        Some((rank, status)) => {
            bail!(
                "rank {rank} failed ({status}); the other ranks were stopped (its error is above)"
            )
        }
    }
}

fn signal(ranks: &[(usize, Child)], sig: i32) {
    for (_, c) in ranks {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as libc::pid_t, sig) };
    }
}

fn terminate(ranks: &mut Vec<(usize, Child)>) {
    for (_, c) in ranks.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    ranks.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_arguments_drop_devices_in_both_spellings() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            child_args(args(&["train", "--devices", "cpu,cpu", "--run-dir", "r"])),
            args(&["train", "--run-dir", "r"])
        );
        assert_eq!(
            child_args(args(&["train", "--devices=cuda:0", "--quiet"])),
            args(&["train", "--quiet"])
        );
    }

    #[test]
    fn devices_are_checked_before_any_rank_starts() {
        let d = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_devices(&d(&["cpu", "cpu"])).expect("cpu ranks"), d(&["cpu", "cpu"]));
        let count = sipl_train::device::cuda_device_count();
        let missing = format!("cuda:{}", count + 3);
        let e = check_devices(&d(&[&missing])).expect_err("no such device").to_string();
        assert!(e.contains(&missing) && e.contains("does not exist"), "{e}");
        assert!(check_devices(&d(&["auto"])).is_err());
        assert!(check_devices(&d(&["tpu:0"])).expect_err("unknown").to_string().contains("tpu"));
    }
}
