// PyTorch's fused Adam (`at::_fused_adam_`) for sipl-train's optimizer: one kernel set per
// step for all parameters (CUDA: multi-tensor apply) instead of ~8 kernels per parameter. tch
// does not expose it. The update is torch.optim.Adam(fused=True) without amsgrad: weight decay
// is added to the gradient (L2), not decoupled.
//
// Errors never unwind into Rust: a failure returns a message allocated with malloc (freed by
// `sipl_free_error` from transfer.cpp); success returns null.
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

namespace {
std::vector<at::Tensor> tensors(void* const* ptrs, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(*static_cast<const at::Tensor*>(ptrs[i]));
  return out;
}
}  // namespace

extern "C" {

// One Adam step over `n` parameters, in place on `params`, `exp_avgs` and `exp_avg_sqs`.
// `grads[i]` is the gradient of `params[i]` (same shape, strides, dtype and device). `step` is
// a float32 scalar tensor on the parameters' device holding the step number t >= 1 (already
// incremented); it serves every parameter.
char* sipl_fused_adam(void* const* params, void* const* grads, void* const* exp_avgs,
                      void* const* exp_avg_sqs, int64_t n, const void* step, double lr,
                      double beta1, double beta2, double weight_decay, double eps) {
  try {
    const auto p = tensors(params, n);
    const auto g = tensors(grads, n);
    const auto m = tensors(exp_avgs, n);
    const auto v = tensors(exp_avg_sqs, n);
    const std::vector<at::Tensor> steps(static_cast<size_t>(n),
                                        *static_cast<const at::Tensor*>(step));
    at::_fused_adam_(p, g, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2, weight_decay,
                     eps, /*amsgrad=*/false, /*maximize=*/false);
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  } catch (...) {
    return strdup("unknown C++ exception");
  }
}
}
