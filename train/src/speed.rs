//! GPU speed settings (METHOD.md "GPU speed"): channels_last memory format for the input and every
//! 4-D parameter, cuDNN autotuning, and host batches uploaded from pinned memory on a side stream
//! (`ffi/transfer.rs`) so the copy overlaps the previous step's compute. bf16 autocast lives in
//! `ffi/autocast.rs` (a C++ shim: tch's own prints deprecation warnings on every call). CPU runs stay
//! exact fp32 in the default layout.

use tch::{Device, Kind, TchError, Tensor, nn};

use crate::ffi::transfer::{CopyStream, pinned};

/// How tensors are laid out and moved for a device.
pub struct SpeedSettings {
    pub channels_last: bool,
    pub device: Device,
    /// The upload stream (CUDA with overlap only).
    copy: Option<CopyStream>,
}

impl SpeedSettings {
    /// channels_last on CUDA unless `channels_last` says otherwise; never on CPU by default.
    /// Uploads to CUDA overlap compute on a side stream unless `overlap_uploads` is false.
    pub fn for_device(
        device: Device,
        channels_last: Option<bool>,
        overlap_uploads: Option<bool>,
    ) -> Result<Self, TchError> {
        if matches!(device, Device::Cuda(_)) {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let copy = match overlaps_uploads(device, overlap_uploads) {
            true => CopyStream::for_device(device)?,
            false => None,
        };
        Ok(SpeedSettings { channels_last: uses_channels_last(device, channels_last), device, copy })
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

    /// A host batch [V, N, 3, S, S] on the device as f32, in the model's layout. To CUDA the copy
    /// does not block the host and runs on the side stream unless overlap is off (a pageable
    /// `host` is first copied into pinned memory; the loader's CUDA batches are pinned).
    pub fn upload(&self, host: &Tensor) -> Result<Tensor, TchError> {
        let on_device = self.to_device(host)?;
        // A bf16/f16 batch (`data.batch_dtype`) crosses in half the bytes and is widened here,
        // on the device: the model's parameters and its CPU path are f32.
        let on_device = match on_device.kind() {
            Kind::Float => on_device,
            _ => on_device.to_kind(Kind::Float),
        };
        Ok(self.layout(on_device))
    }

    /// Any host tensor on the device, as it is. To CUDA: never a blocking copy (that would
    /// wait for the whole queue, a host sync per step).
    pub fn to_device(&self, host: &Tensor) -> Result<Tensor, TchError> {
        match &self.copy {
            None if self.device == Device::Cpu => Ok(host.shallow_clone()),
            None => Ok(pinned(host)?.to_device_(self.device, host.kind(), true, false)),
            Some(copy) => copy.upload(&pinned(host)?),
        }
    }

    /// A device batch [V, N, 3, S, S] in the model's layout.
    pub fn layout(&self, on_device: Tensor) -> Tensor {
        if self.channels_last {
            // Each view [N, 3, S, S] must itself be channels_last: NHWC strides within a view.
            on_device.permute([0, 1, 3, 4, 2]).contiguous().permute([0, 1, 4, 2, 3])
        } else {
            on_device
        }
    }
}

/// Whether `device` uses channels_last: `choice`, else on CUDA only.
pub fn uses_channels_last(device: Device, choice: Option<bool>) -> bool {
    choice.unwrap_or(matches!(device, Device::Cuda(_)))
}

/// Whether uploads to `device` run on a side stream overlapping compute: on CUDA, unless
/// `choice` is false (a CPU needs no upload).
pub fn overlaps_uploads(device: Device, choice: Option<bool>) -> bool {
    matches!(device, Device::Cuda(_)) && choice != Some(false)
}

/// A copy of the 4-D tensor `t` [N, C, H, W] with NHWC strides [H·W·C, 1, W·C, C]: PyTorch's
/// `channels_last`, with its strides for size-1 dimensions too. (A permute, `contiguous`,
/// permute round trip keeps a 1×1 convolution's weight [C_out, C_in, 1, 1] at its NCHW strides,
/// the same bytes; but its gradients come back with these strides, and c10d's Reducer, which
/// compares strides, then warns that the layouts differ.)
pub fn to_channels_last(t: &Tensor) -> Tensor {
    let s = t.size();
    let (c, h, w) = (s[1], s[2], s[3]);
    let mut out = Tensor::empty_strided(&s, [h * w * c, 1, w * c, c], (t.kind(), t.device()));
    tch::no_grad(|| out.copy_(t));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_last_has_pytorch_strides_even_for_1x1_kernels() {
        let opts = (Kind::Float, Device::Cpu);
        for (size, strides) in [([2, 3, 5, 7], [105, 1, 21, 3]), ([8, 4, 1, 1], [4, 1, 4, 4])] {
            let t = Tensor::randn(size, opts);
            let cl = to_channels_last(&t);
            assert_eq!(cl.stride(), strides, "{size:?}");
            assert!(cl.equal(&t), "{size:?}: same values");
        }
    }
}
