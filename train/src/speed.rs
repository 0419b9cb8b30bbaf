//! GPU speed settings (GPU.md): channels_last memory format for the input and every 4-D
//! parameter, cuDNN autotuning, and host batches copied from pinned memory without blocking.
//! bf16 autocast lives in `autocast.rs` (a C++ shim: tch's own prints deprecation warnings on
//! every call). CPU runs stay exact fp32 in the default layout.

use tch::{Device, Tensor, nn};

/// How tensors are laid out and moved for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedSettings {
    pub channels_last: bool,
    pub device: Device,
}

impl SpeedSettings {
    /// channels_last on CUDA unless `channels_last` says otherwise; never on CPU by default.
    pub fn for_device(device: Device, channels_last: Option<bool>) -> Self {
        let cuda = matches!(device, Device::Cuda(_));
        if cuda {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        SpeedSettings { channels_last: channels_last.unwrap_or(cuda), device }
    }

    /// Converts every 4-D variable to channels_last (once, before the optimizer reads them).
    pub fn prepare_model(&self, vs: &nn::VarStore) {
        if !self.channels_last {
            return;
        }
        tch::no_grad(|| {
            for (_, mut v) in vs.variables() {
                if v.dim() == 4 {
                    let cl = to_channels_last(&v);
                    v.set_data(&cl);
                }
            }
        });
    }

    /// A host batch [V, N, 3, S, S] on the device, in the model's layout. From CUDA the copy
    /// goes through pinned memory and does not block the host.
    pub fn upload(&self, host: &Tensor) -> Tensor {
        let on_device = match self.device {
            Device::Cpu => host.shallow_clone(),
            d => host.pin_memory(d).to_device_(d, host.kind(), true, false),
        };
        if self.channels_last {
            // Each view [N, 3, S, S] must itself be channels_last: NHWC strides within a view.
            on_device.permute([0, 1, 3, 4, 2]).contiguous().permute([0, 1, 4, 2, 3])
        } else {
            on_device
        }
    }
}

/// An NCHW tensor with NHWC strides (PyTorch's `channels_last`).
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}
