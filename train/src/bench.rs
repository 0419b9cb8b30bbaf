//! Training-speed benchmarks (figures for notes, never assertions): the bare ResNet-18 train step
//! on random data (the anchor of METHOD.md "GPU speed"), for comparison with PyTorch on the same
//! device; `amp` wraps forward and loss in bf16 autocast as training does on CUDA.

use std::time::Instant;

use tch::{Device, Kind, TchError, Tensor, nn};

use crate::adam::{Adam, AdamConfig};
use crate::speed::SpeedSettings;

/// Images per second of ResNet-18 forward + backward + Adam on random [batch, 3, size, size]
/// inputs, after `warmup` untimed steps. `fused`: Adam's fused kernel (default: on for CUDA).
pub fn resnet_step(
    device: Device,
    (batch, size): (i64, i64),
    (steps, warmup): (usize, usize),
    channels_last: Option<bool>,
    (amp, fused): (bool, Option<bool>),
) -> Result<f64, TchError> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = crate::resnet::ResNet18::new(&vs.root(), 1000);
    let speed = SpeedSettings::for_device(device, channels_last, None)?;
    speed.prepare_model(&vs);
    let mut adam = Adam::new(&vs, AdamConfig { fused, ..AdamConfig::new(1e-4, 0.0) });
    let x =
        speed.upload(&Tensor::randn([1, batch, 3, size, size], (Kind::Float, Device::Cpu)))?.get(0);
    let y = Tensor::randint(1000, [batch], (Kind::Int64, device));
    let mut start = Instant::now();
    for i in 0..warmup + steps {
        if i == warmup {
            sync(device);
            start = Instant::now();
        }
        let forward = || nn::ModuleT::forward_t(&net, &x, true).cross_entropy_for_logits(&y);
        let loss = if amp { crate::ffi::autocast::with_bf16(device, forward) } else { forward() };
        adam.zero_grad();
        loss.backward();
        adam.step()?;
    }
    sync(device);
    Ok((steps as i64 * batch) as f64 / start.elapsed().as_secs_f64())
}

/// Waits for queued device work (timings must not stop before the GPU does).
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
