// PyTorch's fused Adam (`at::_fused_adam_`) for sipl-train's optimizer: one kernel set per
// step for all parameters (CUDA: multi-tensor apply) instead of ~8 kernels per parameter. tch
// does not expose it. The update is torch.optim.Adam(fused=True) without amsgrad: weight decay
// is added to the gradient (L2), not decoupled.
//
// Errors follow shim.h: 0 on success, -1 with a message in `error`.
#include <ATen/ATen.h>

#include <vector>

#include "shim.h"

using sipl::tensors;

extern "C" {

// One Adam step over `n` parameters, in place on `params`, `exp_avgs` and `exp_avg_sqs`.
// `grads[i]` is the gradient of `params[i]` (same shape, strides, dtype and device). `step` is
// a float32 scalar tensor on the parameters' device holding the step number t >= 1 (already
// incremented); it serves every parameter.
int sipl_fused_adam(void* const* params, void* const* grads, void* const* exp_avgs,
                    void* const* exp_avg_sqs, int64_t n, const void* step, double lr,
                    double beta1, double beta2, double weight_decay, double eps, char** error) {
  return sipl::status(error, [&] {
    const auto p = tensors(params, n);
    const auto g = tensors(grads, n);
    const auto m = tensors(exp_avgs, n);
    const auto v = tensors(exp_avg_sqs, n);
    const std::vector<at::Tensor> steps(static_cast<size_t>(n),
                                        *static_cast<const at::Tensor*>(step));
    at::_fused_adam_(p, g, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2, weight_decay,
                     eps, /*amsgrad=*/false, /*maximize=*/false);
  });
}

// Drops the gradients of `n` tensors (PyTorch's `param.grad = None`, what
// `Optimizer.zero_grad()` does by default), so the next backward pass stores its gradients
// instead of adding them to zeros: the same values without a zeroing and an accumulating
// kernel per parameter.
int sipl_grads_set_to_none(void* const* params, int64_t n, char** error) {
  return sipl::status(error, [&] {
    for (auto p : tensors(params, n)) {
      p.mutable_grad().reset();
    }
  });
}
}
