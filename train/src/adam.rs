//! Adam, owned here because tch's optimizer does not expose its moments (a checkpoint must hold
//! them for an exact resume). The update is PyTorch's `torch.optim.Adam` (non-fused, no
//! amsgrad): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//! p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε); weight decay adds wd·p to g.

use tch::{Tensor, nn};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        AdamConfig { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay }
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
}

impl Adam {
    pub fn new(vs: &nn::VarStore, config: AdamConfig) -> Self {
        let mut named: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, params): (Vec<_>, Vec<_>) = named.into_iter().unzip();
        let m = params.iter().map(|p| p.zeros_like()).collect();
        let v = params.iter().map(|p| p.zeros_like()).collect();
        Adam { config, step: 0, names, params, m, v }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the gradients in `.grad()`.
    pub fn step(&mut self) {
        let c = self.config;
        self.step += 1;
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
