//! PyTorch's fused Adam kernel (`at::_fused_adam_`) through the C++ shim in `csrc/adam.cpp`
//! (tch does not expose it). [`crate::adam::Adam`] calls it on CUDA: one kernel set per step
//! for all parameters instead of a handful of kernels per parameter. It also runs on the CPU
//! (torch 2.11), which is where the tests compare it with the per-parameter update.

use std::ffi::{c_char, c_void};

use tch::{TchError, Tensor};

use super::{checked, is_error, tensor_ptrs};
use crate::adam::AdamConfig;

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn sipl_fused_adam(
        params: *const *const c_void,
        grads: *const *const c_void,
        exp_avgs: *const *const c_void,
        exp_avg_sqs: *const *const c_void,
        n: i64,
        step: *const c_void,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        error: *mut *mut c_char,
    ) -> i32;
    fn sipl_grads_set_to_none(params: *const *const c_void, n: i64, error: *mut *mut c_char)
    -> i32;
}

/// Drops the gradients of `params` (PyTorch's `zero_grad(set_to_none=True)`, its default): the
/// next backward pass stores fresh gradients instead of adding them to zeros, the same values
/// in fewer kernels. A parameter then has no gradient until a backward pass reaches it.
pub fn set_grads_to_none(params: &[Tensor]) -> Result<(), TchError> {
    let p = tensor_ptrs(params);
    // SAFETY: live `at::Tensor*` handles borrowed for the call.
    checked(|e| unsafe { sipl_grads_set_to_none(p.as_ptr().cast(), p.len() as i64, e) }, is_error)
        .map(drop)
}

/// One Adam step in place on `params` and the moments (`m`, `v`), from `grads`.
///
/// All lists have one entry per parameter, each entry of the same shape, strides, dtype
/// (float) and device as its parameter. `step` is a float32 scalar on that device holding the
/// step number t ≥ 1, already counted. Errors: whatever ATen refuses (mismatched lengths,
/// devices, dtypes or strides), with its message.
pub fn step(
    params: &[Tensor],
    grads: &[Tensor],
    (m, v): (&[Tensor], &[Tensor]),
    step: &Tensor,
    c: AdamConfig,
) -> Result<(), TchError> {
    let n = params.len();
    if grads.len() != n || m.len() != n || v.len() != n {
        return Err(TchError::Torch(format!(
            "fused Adam: {n} parameters but {} gradients, {} first and {} second moments",
            grads.len(),
            m.len(),
            v.len()
        )));
    }
    let (p, g, m, v) = (tensor_ptrs(params), tensor_ptrs(grads), tensor_ptrs(m), tensor_ptrs(v));
    // SAFETY: every pointer is a live `at::Tensor*` owned by a tch `Tensor` borrowed for the
    // call; the shim copies the handles.
    checked(
        |e| unsafe {
            sipl_fused_adam(
                p.as_ptr().cast(),
                g.as_ptr().cast(),
                m.as_ptr().cast(),
                v.as_ptr().cast(),
                n as i64,
                step.as_ptr() as *const c_void,
                c.lr,
                c.beta1,
                c.beta2,
                c.weight_decay,
                c.eps,
                e,
            )
        },
        is_error,
    )
    .map(drop)
    .map_err(|e| {
        TchError::Torch(format!(
            "fused Adam: {e} (optim.fused = false selects the per-parameter update)"
        ))
    })
}
