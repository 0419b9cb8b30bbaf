//! Choosing the compute device: `cpu`, `cuda`, `cuda:N` or `auto`, parsed once (configs and
//! flags hold a [`DeviceSpec`], never the text), checked against what libtorch actually sees,
//! with a clear error for a device that does not exist.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Cuda, Device};

/// A device as a user writes it; serialised as that text (`cuda`, `cuda:1`, `cpu`, `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The process's CUDA device when there is one (under a launcher, `LOCAL_RANK`'s), else
    /// the CPU.
    Auto,
    Cpu,
    /// `cuda:N`; `None` (plain `cuda`): the process's CUDA device (0, or `LOCAL_RANK`'s under
    /// a launcher).
    Cuda(Option<usize>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("unknown device {0:?}: expected cpu, cuda, cuda:N or auto")]
    Unknown(String),
    #[error("device cuda:{index} does not exist: libtorch sees {count} CUDA device(s)")]
    Missing { index: usize, count: usize },
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(None)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|n| DeviceSpec::Cuda(Some(n)))
                .ok_or_else(|| DeviceError::Unknown(s.to_owned())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(None) => write!(f, "cuda"),
            DeviceSpec::Cuda(Some(i)) => write!(f, "cuda:{i}"),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl DeviceSpec {
    /// The libtorch device, or an error if it is not there.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        let count = cuda_device_count();
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Auto if count > 0 => Ok(Device::Cuda(0)),
            DeviceSpec::Auto => Ok(Device::Cpu),
            DeviceSpec::Cuda(index) if index.unwrap_or(0) < count => {
                Ok(Device::Cuda(index.unwrap_or(0)))
            }
            DeviceSpec::Cuda(index) => {
                Err(DeviceError::Missing { index: index.unwrap_or(0), count })
            }
        }
    }

    /// The same device with `cuda` made explicit (`cuda:0`).
    pub fn indexed(self) -> Self {
        match self {
            DeviceSpec::Cuda(None) => DeviceSpec::Cuda(Some(0)),
            other => other,
        }
    }
}

/// A device as a user writes it (`cpu`, `cuda:0`), for messages.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

/// CUDA devices libtorch can use (0 when libtorch was built or linked without CUDA).
pub fn cuda_device_count() -> usize {
    if Cuda::is_available() { Cuda::device_count().max(0) as usize } else { 0 }
}

/// A one-paragraph description of the compute available, for `sipl info`.
pub fn describe() -> String {
    let count = cuda_device_count();
    let (gloo, nccl) = crate::dist::backends();
    let yes = |b: bool| if b { "yes" } else { "no" };
    format!(
        "libtorch CPU threads: {}\nCUDA available: {} ({count} device(s))\ncuDNN available: {}\n\
         data-parallel backends in this build: NCCL {}, Gloo (CPU ranks) {}",
        tch::get_num_threads(),
        count > 0,
        Cuda::cudnn_is_available(),
        yes(nccl),
        yes(gloo),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("CUDA".parse(), Ok(DeviceSpec::Cuda(None)));
        assert_eq!("cuda:3".parse(), Ok(DeviceSpec::Cuda(Some(3))));
        for text in ["cpu", "cuda", "cuda:3", "auto"] {
            assert_eq!(text.parse::<DeviceSpec>().map(|d| d.to_string()), Ok(text.to_owned()));
        }
        assert_eq!("auto".parse(), Ok(DeviceSpec::Auto));
        assert!(matches!("tpu".parse::<DeviceSpec>(), Err(DeviceError::Unknown(_))));
        assert!(matches!("cuda:x".parse::<DeviceSpec>(), Err(DeviceError::Unknown(_))));
    }

    #[test]
    fn a_missing_cuda_index_is_a_clear_error() {
        let count = cuda_device_count();
        let err = DeviceSpec::Cuda(Some(count + 7)).resolve().expect_err("no such device");
        assert_eq!(err, DeviceError::Missing { index: count + 7, count });
        assert!(err.to_string().contains(&format!("cuda:{}", count + 7)));
        assert_eq!(DeviceSpec::Cpu.resolve(), Ok(Device::Cpu));
    }
}
