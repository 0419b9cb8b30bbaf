// The NCCL backend of sipl-train's process group (see dist.cpp): PyTorch's ProcessGroupNCCL,
// built when the CUDA runtime and NCCL headers that come with the venv's torch install were
// found (SIPL_HAVE_NCCL); otherwise creating one is a clear error.
#ifdef SIPL_HAVE_NCCL
#define USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/intrusive_ptr.h>

#include <chrono>

#include "shim.h"

extern "C" void* sipl_nccl_backend_new(void* store, int rank, int world, int index,
                                       int64_t timeout_ms, char** error) {
  return sipl::guarded(error, [&]() -> void* {
#ifdef SIPL_HAVE_NCCL
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    opts->is_high_priority_stream = false;
    opts->group_name = "default";
    opts->group_desc = "default_pg";
    auto s = *static_cast<c10::intrusive_ptr<c10d::Store>*>(store);
    c10::intrusive_ptr<c10d::Backend> backend =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(s, rank, world, opts);
    return new c10::intrusive_ptr<c10d::Backend>(std::move(backend));
#else
    (void)store, (void)rank, (void)world, (void)index, (void)timeout_ms;
    sipl::set_error(error,
                    "this build has no NCCL backend (the CUDA and NCCL headers of the venv's "
                    "torch were not found at build time)");
    return nullptr;
#endif
  });
}
