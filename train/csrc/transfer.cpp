// Host buffers and host-to-device copies for sipl-train's loader and trainer, through APIs tch
// does not expose: tensors allocated in page-locked (pinned) memory, and copies enqueued on a
// side CUDA stream that the compute stream waits on (so a batch's upload overlaps the previous
// step's compute). Only device-generic c10 interfaces are used, so nothing here needs the CUDA
// toolkit's headers or libraries; the CUDA implementation registers itself from libc10_cuda.
//
// Errors follow shim.h: null with a message in `error`.
#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "shim.h"

extern "C" {

// A 1-D float32 tensor of `numel` uninitialised elements in host memory: page-locked through
// the CUDA caching host allocator when `pinned` (a freed block is reused only after the copies
// recorded on it have finished), else ordinary memory.
void* sipl_host_empty_f32(int64_t numel, bool pinned, char** error) {
  return sipl::guarded(error, [&]() -> void* {
    auto options = at::TensorOptions().dtype(at::kFloat).pinned_memory(pinned);
    return new at::Tensor(at::empty({numel}, options));
  });
}

// A stream from the CUDA stream pool of device `index`, for copies.
void* sipl_copy_stream_new(int index, char** error) {
  return sipl::guarded(error, [&]() -> void* {
    const c10::Device device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
    const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    return new c10::Stream(impl->getStreamFromGlobalPool(device, false));
  });
}

void sipl_copy_stream_free(void* stream) { delete static_cast<c10::Stream*>(stream); }

// Copies host tensor `host` to the stream's device on the copy stream, without blocking the
// host, and makes the device's current (compute) stream wait for the copy before any work
// enqueued after this call. The result is allocated on the copy stream (so the caching
// allocator orders its reuse after the copy) and marked as used by the compute stream (so its
// block is not handed out again before the compute stream is done with it). The pinned source
// is protected by the event the copy records on the copy stream.
void* sipl_upload_on(void* stream, const void* host, char** error) {
  return sipl::guarded(error, [&]() -> void* {
    const c10::Stream& side = *static_cast<const c10::Stream*>(stream);
    const at::Tensor& src = *static_cast<const at::Tensor*>(host);
    const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    const c10::Stream compute = impl->getStream(side.device());
    at::Tensor dst;
    c10::Event copied(c10::DeviceType::CUDA);
    {
      c10::StreamGuard on_side(side);
      dst = at::empty(src.sizes(),
                      at::TensorOptions().dtype(src.scalar_type()).device(side.device()));
      dst.copy_(src, /*non_blocking=*/true);
      copied.record(side);
    }
    copied.block(compute);
    dst.record_stream(compute);
    return new at::Tensor(std::move(dst));
  });
}

// `host` in page-locked memory: itself when it already is, else a pinned copy. (tch's
// `pin_memory(device)` / `is_pinned(device)` pass a device, which this libtorch warns about as
// deprecated on every call.)
void* sipl_pinned(const void* host, char** error) {
  return sipl::guarded(error, [&]() -> void* {
    const at::Tensor& t = *static_cast<const at::Tensor*>(host);
    return new at::Tensor(t.is_pinned() ? t : t.pin_memory());
  });
}
}
