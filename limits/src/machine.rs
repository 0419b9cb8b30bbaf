//! Limits that come from the machine: its cores (thread counts) and its memory (buffers and
//! batches a setting implies). Read once per call; cheap (a syscall, a small file).

use crate::range::{Ints, RangeError};

/// Worker threads (loader workers, ingest threads) allowed per core: enough to hide I/O and
/// queue waits, few enough that the threads never crowd out everything else.
pub const WORKERS_PER_CORE: u64 = 4;

/// Cores this process may use (`std::thread::available_parallelism`: CPU affinity and cgroup
/// quotas included); 1 when unknown.
pub fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Compute threads (libtorch intra-op threads): `[1, cores]`. More than one per core only
/// contend (measured: 200 threads on 2 cores ran 35× slower than 2).
pub fn compute_threads() -> Ints {
    Ints::new(1, cores())
}

/// Worker threads (loader workers, ingest threads): `[1, 4 × cores]`.
pub fn worker_threads() -> Ints {
    Ints::new(1, WORKERS_PER_CORE * cores())
}

/// The note on a refused thread count: how many cores there are.
pub fn cores_note() -> String {
    match cores() {
        1 => "this machine has 1 core".into(),
        n => format!("this machine has {n} cores"),
    }
}

/// Checks a compute-thread count against this machine's cores.
pub fn check_compute_threads<T>(option: &str, value: T) -> Result<T, RangeError>
where
    T: Copy + std::fmt::Display + TryInto<u64>,
{
    compute_threads().check(option, value).map_err(|e| e.note(cores_note()))
}

/// Checks a worker-thread count against 4 × this machine's cores.
pub fn check_worker_threads<T>(option: &str, value: T) -> Result<T, RangeError>
where
    T: Copy + std::fmt::Display + TryInto<u64>,
{
    worker_threads()
        .check(option, value)
        .map_err(|e| e.note(format!("{WORKERS_PER_CORE} per core; {}", cores_note())))
}

/// Physical memory available to this process in bytes: `MemTotal`, lowered by a cgroup
/// memory limit when there is one. `None` off Linux or when unreadable.
pub fn memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let total = kib.saturating_mul(1024);
    let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok())
        .min();
    Some(cgroup.map_or(total, |c| c.min(total)))
}

/// `bytes` as GiB with one decimal.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuses `value` of `option` when what it implies, `bytes` of memory (described by `what`),
/// exceeds half of this machine's memory: the rest is for the model, the process and the
/// system. Passes when the memory cannot be read.
pub fn check_memory(
    option: &str,
    value: impl std::fmt::Display,
    bytes: u64,
    what: &str,
) -> Result<(), RangeError> {
    check_memory_of(memory_bytes(), option, value, bytes, what)
}

fn check_memory_of(
    total: Option<u64>,
    option: &str,
    value: impl std::fmt::Display,
    bytes: u64,
    what: &str,
) -> Result<(), RangeError> {
    match total {
        Some(total) if bytes > total / 2 => Err(RangeError::new(
            option,
            value,
            "small enough to fit in half of this machine's memory",
        )
        .note(format!("{what} need {}; this machine has {}", gib(bytes), gib(total)))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_limits_follow_the_cores() {
        let c = cores();
        assert!(c >= 1);
        assert_eq!(check_compute_threads("run.threads", c), Ok(c));
        let e = check_compute_threads("run.threads", c + 1).expect_err("above");
        assert!(e.to_string().contains(&format!("must be in [1, {c}]")), "{e}");
        assert!(e.to_string().contains("this machine has"), "{e}");
        assert!(check_compute_threads("run.threads", 0).is_err());
        assert_eq!(check_worker_threads("data.workers", 4 * c), Ok(4 * c));
        assert!(check_worker_threads("data.workers", 4 * c + 1).is_err());
    }

    #[test]
    fn memory_checks_refuse_more_than_half() {
        let gb = 1u64 << 30;
        assert!(check_memory_of(Some(8 * gb), "--batch", 64, 4 * gb, "buffers").is_ok());
        let e = check_memory_of(Some(8 * gb), "--batch", 64, 5 * gb, "the buffers")
            .expect_err("too much");
        assert_eq!(
            e.to_string(),
            "--batch = 64: must be small enough to fit in half of this machine's memory \
             (the buffers need 5.0 GiB; this machine has 8.0 GiB)"
        );
        assert!(check_memory_of(None, "--batch", 64, u64::MAX, "x").is_ok());
        assert!(memory_bytes().is_none_or(|m| m > 0));
    }
}
