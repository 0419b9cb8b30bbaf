//! Adam, owned here because tch's optimizer does not expose its moments (a checkpoint must hold
//! them for an exact resume). The update is PyTorch's `torch.optim.Adam` (non-fused, no
//! amsgrad): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//! p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε); weight decay adds wd·p to g.
//!
//! Two implementations of the same update: per parameter (a few ATen ops each, ~8 kernels per
//! parameter on a GPU; matches `torch.optim.Adam`'s default on the CPU to 2e-9), and PyTorch's
//! fused kernel `_fused_adam_` through the C++ shim (`csrc/adam.cpp`: one kernel set for all
//! parameters per step). Fused is the default on CUDA, per parameter on the CPU; both keep the
//! same moments, so checkpoints move freely between them. They agree to about 1e-7 (rounding).

use tch::{Device, Kind, TchError, Tensor, nn};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// PyTorch's fused kernel instead of the per-parameter update; `None`: fused on CUDA, per
    /// parameter on the CPU.
    pub fused: Option<bool>,
}

impl AdamConfig {
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        AdamConfig { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, fused: None }
    }

    /// Whether the update on `device` is the fused kernel.
    pub fn fused_on(&self, device: Device) -> bool {
        self.fused.unwrap_or(device.is_cuda())
    }
}

/// Moments per trainable variable, in name order.
pub struct Adam {
    pub config: AdamConfig,
    pub step: i64,
    pub names: Vec<String>,
    params: Vec<Tensor>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// The fused update's step number t as a float32 scalar on the parameters' device (the
    /// kernel reads it there); `None` for the per-parameter update.
    fused_step: Option<Tensor>,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, config: AdamConfig) -> Self {
        let mut named: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, params): (Vec<_>, Vec<_>) = named.into_iter().unzip();
        let m = params.iter().map(|p| p.zeros_like()).collect();
        let v = params.iter().map(|p| p.zeros_like()).collect();
        let device = vs.device();
        let fused_step = config.fused_on(device).then(|| Tensor::zeros([], (Kind::Float, device)));
        Adam { config, step: 0, names, params, m, v, fused_step }
    }

    /// Whether [`Adam::step`] runs the fused kernel.
    pub fn is_fused(&self) -> bool {
        self.fused_step.is_some()
    }

    /// Drops every parameter's gradient before a backward pass (PyTorch's default
    /// `zero_grad(set_to_none=True)`): the pass then stores its gradients rather than adding
    /// them to zeroed ones, the same values without two kernels per parameter.
    pub fn zero_grad(&mut self) {
        crate::ffi::fused_adam::set_grads_to_none(&self.params)
            .expect("dropping gradients cannot fail");
    }

    /// One update from the gradients in `.grad()` (parameters without a gradient are left
    /// alone). Errors: the fused kernel refused its inputs (e.g. a gradient whose strides differ
    /// from its parameter's); the step is then not counted.
    pub fn step(&mut self) -> Result<(), TchError> {
        self.step += 1;
        let done = match &self.fused_step {
            Some(t) => self.fused_update(t),
            None => {
                self.per_parameter_update();
                Ok(())
            }
        };
        if done.is_err() {
            self.step -= 1;
        }
        done
    }

    fn fused_update(&self, step: &Tensor) -> Result<(), TchError> {
        let (mut p, mut g, mut m, mut v) = (vec![], vec![], vec![], vec![]);
        for (i, param) in self.params.iter().enumerate() {
            let grad = param.grad();
            if grad.defined() {
                p.push(param.shallow_clone());
                g.push(grad);
                m.push(self.m[i].shallow_clone());
                v.push(self.v[i].shallow_clone());
            }
        }
        tch::no_grad(|| {
            let _ = step.shallow_clone().f_fill_(self.step as f64)?;
            crate::ffi::fused_adam::step(&p, &g, (&m, &v), step, self.config)
        })
    }

    fn per_parameter_update(&mut self) {
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        let step_size = c.lr / bc1;
        tch::no_grad(|| {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if c.weight_decay != 0.0 {
                    g = &g + &*p * c.weight_decay;
                }
                let _ = m.lerp_(&g, 1.0 - c.beta1);
                *v *= c.beta2;
                *v += &g * &g * (1.0 - c.beta2);
                let denom = v.sqrt() / bc2.sqrt() + c.eps;
                *p += &*m / &denom * -step_size;
            }
        });
    }

    /// Restores moments and step (from a checkpoint).
    pub fn load(&mut self, step: i64, m: Vec<Tensor>, v: Vec<Tensor>) {
        self.step = step;
        tch::no_grad(|| {
            for (dst, src) in self.m.iter_mut().zip(&m).chain(self.v.iter_mut().zip(&v)) {
                dst.copy_(src);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use tch::nn::ModuleT;

    /// A conv + BatchNorm + linear net, plus one parameter that never gets a gradient.
    fn net(vs: &nn::VarStore) -> nn::SequentialT {
        let root = vs.root();
        let _unused = root.var("unused", &[5], nn::Init::Const(0.5));
        nn::seq_t()
            .add(nn::conv2d(&root / "conv", 3, 4, 3, Default::default()))
            .add(nn::batch_norm2d(&root / "bn", 4, Default::default()))
            .add_fn(|x| x.relu().flatten(1, -1))
            .add(nn::linear(&root / "fc", 4 * 6 * 6, 3, Default::default()))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn the_fused_kernel_is_the_default_on_cuda_only() {
        let c = AdamConfig::new(1e-3, 0.0);
        assert!(!c.fused_on(Device::Cpu) && c.fused_on(Device::Cuda(0)));
        assert!(AdamConfig { fused: Some(true), ..c }.fused_on(Device::Cpu));
        assert!(!AdamConfig { fused: Some(false), ..c }.fused_on(Device::Cuda(0)));
    }

    #[test]
    fn fused_and_per_parameter_updates_agree_on_the_cpu() {
        tch::manual_seed(0);
        let (vs_a, mut vs_b) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
        let (net_a, net_b) = (net(&vs_a), net(&vs_b));
        vs_b.copy(&vs_a).expect("same variables");
        let before: HashMap<String, Tensor> =
            vs_a.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
        let config = AdamConfig::new(1e-2, 0.1);
        let mut a = Adam::new(&vs_a, AdamConfig { fused: Some(false), ..config });
        let mut b = Adam::new(&vs_b, AdamConfig { fused: Some(true), ..config });
        assert!(!a.is_fused() && b.is_fused());
        let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0]);
        for _ in 0..5 {
            for (net, adam) in [(&net_a, &mut a), (&net_b, &mut b)] {
                adam.zero_grad();
                net.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
                adam.step().expect("step");
            }
        }
        assert_eq!((a.step, b.step), (5, 5));
        assert_eq!(a.names, b.names);
        let mut worst = 0.0f64;
        for (i, name) in a.names.iter().enumerate() {
            let d = [
                max_diff(&a.params[i], &b.params[i]),
                max_diff(&a.m[i], &b.m[i]),
                max_diff(&a.v[i], &b.v[i]),
            ];
            assert!(d.iter().all(|d| *d <= 1e-6), "{name}: parameter, m, v differ by {d:?}");
            worst = d.iter().fold(worst, |w, d| w.max(*d));
        }
        println!("fused vs per-parameter Adam after 5 steps: largest difference {worst:.1e}");
        // Both moved every parameter that has a gradient, and only those.
        for (name, now) in vs_b.variables() {
            let moved = max_diff(&now, &before[&name]);
            match name.as_str() {
                "unused" => assert_eq!(moved, 0.0, "a parameter without a gradient moved"),
                n if n.contains("running_") || n.contains("num_batches") => {}
                _ => assert!(moved > 1e-3, "{name} moved only {moved:e}"),
            }
        }
    }

    #[test]
    fn a_refused_fused_step_is_an_error_naming_the_fallback() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().var("w", &[3], nn::Init::Const(1.0));
        let adam = Adam::new(&vs, AdamConfig { fused: Some(true), ..AdamConfig::new(1e-3, 0.0) });
        // A float64 gradient for a float32 parameter: ATen's fused kernel refuses it.
        let g = Tensor::ones([3], (Kind::Double, Device::Cpu));
        let step = Tensor::ones([], (Kind::Float, Device::Cpu));
        let m = [adam.m[0].shallow_clone()];
        let v = [adam.v[0].shallow_clone()];
        let e =
            crate::ffi::fused_adam::step(&[p.shallow_clone()], &[g], (&m, &v), &step, adam.config)
                .expect_err("dtype mismatch");
        let e = e.to_string();
        assert!(e.contains("fused Adam") && e.contains("Double"), "{e}");
        assert!(e.contains("optim.fused = false"), "{e}");
        let e =
            crate::ffi::fused_adam::step(&[p.shallow_clone()], &[], (&m, &v), &step, adam.config)
                .expect_err("lengths");
        assert!(e.to_string().contains("1 parameters but 0 gradients"), "{e}");
    }
}
