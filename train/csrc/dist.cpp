// Data-parallel training for sipl-train through PyTorch's own c10d: a TCPStore for rendezvous
// and start-up checks, a ProcessGroup whose backend is NCCL (CUDA, see dist_nccl.cpp) or Gloo
// (CPU), and c10d's Reducer, the bucketed gradient all-reduce that DistributedDataParallel
// uses, which starts reducing a bucket as soon as backward has produced all its gradients.
// Nothing here implements a reduction of its own.
//
// Errors follow shim.h: null or -1 with a message in `error`.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef SIPL_HAVE_GLOO
#define USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim.h"

using StorePtr = c10::intrusive_ptr<c10d::Store>;
using GroupPtr = c10::intrusive_ptr<c10d::ProcessGroup>;
using BackendPtr = c10::intrusive_ptr<c10d::Backend>;

// dist_nccl.cpp: an NCCL backend on CUDA device `index`, or null with `error` set.
extern "C" void* sipl_nccl_backend_new(void* store, int rank, int world, int index,
                                       int64_t timeout_ms, char** error);

using sipl::guarded;
using sipl::status;
using sipl::tensors;

namespace {
GroupPtr& group(void* pg) { return *static_cast<GroupPtr*>(pg); }
}  // namespace

extern "C" {

// Connects to (rank 0: serves) the rendezvous store at host:port. A client retries until
// `timeout_ms`, then fails with c10d's message naming the address. A non-empty `prefix` puts
// every key under it (a store shared with a launcher's agent, one prefix per attempt).
void* sipl_store_new(const char* host, int port, bool server, int world, int64_t timeout_ms,
                     const char* prefix, char** error) {
  return guarded(error, [&]() -> void* {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = server;
    opts.numWorkers = static_cast<std::size_t>(world);
    opts.waitWorkers = false;
    opts.timeout = std::chrono::milliseconds(timeout_ms);
    StorePtr store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    if (prefix != nullptr && prefix[0] != '\0') {
      store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), store);
    }
    return new StorePtr(std::move(store));
  });
}

void sipl_store_free(void* store) {
  try {
    delete static_cast<StorePtr*>(store);
  } catch (...) {
  }
}

int sipl_store_set(void* store, const char* key, const uint8_t* data, int64_t len,
                   char** error) {
  return status(error, [&] {
    (*static_cast<StorePtr*>(store))->set(key, std::vector<uint8_t>(data, data + len));
  });
}

// The value of `key`, waiting for it up to the store's timeout; malloc'd (release with
// `sipl_free`), length in `len`.
uint8_t* sipl_store_get(void* store, const char* key, int64_t* len, char** error) {
  return guarded(error, [&]() -> uint8_t* {
    auto value = (*static_cast<StorePtr*>(store))->get(key);
    *len = static_cast<int64_t>(value.size());
    auto* out = static_cast<uint8_t*>(malloc(value.size() + 1));
    if (!value.empty()) memcpy(out, value.data(), value.size());
    return out;
  });
}

// A process group over `store` whose collectives run on NCCL (`cuda_index` >= 0) or Gloo
// (CPU tensors, `cuda_index` < 0).
void* sipl_group_new(void* store, int rank, int world, int cuda_index, int64_t timeout_ms,
                     char** error) {
  return guarded(error, [&]() -> void* {
    StorePtr base = *static_cast<StorePtr*>(store);
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("default_pg/", base);
    auto pg = c10::make_intrusive<c10d::ProcessGroup>(prefixed, rank, world);
    BackendPtr backend;
    c10d::ProcessGroup::BackendType type;
    c10::DeviceType device_type;
    if (cuda_index >= 0) {
      char* nccl_error = nullptr;
      StorePtr s = prefixed;
      void* made = sipl_nccl_backend_new(&s, rank, world, cuda_index, timeout_ms, &nccl_error);
      if (made == nullptr) {
        std::string message = nccl_error ? nccl_error : "NCCL backend failed";
        sipl_free(nccl_error);
        throw std::runtime_error(message);
      }
      backend = *static_cast<BackendPtr*>(made);
      delete static_cast<BackendPtr*>(made);
      type = c10d::ProcessGroup::BackendType::NCCL;
      device_type = c10::DeviceType::CUDA;
      pg->setBoundDeviceId(c10::Device(c10::DeviceType::CUDA,
                                       static_cast<c10::DeviceIndex>(cuda_index)));
    } else {
#ifdef SIPL_HAVE_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
      // As Python does: one device per interface of GLOO_SOCKET_IFNAME (a comma-separated
      // list), else the default one; two threads per device.
      const char* ifaces = std::getenv("GLOO_SOCKET_IFNAME");
      std::string list = ifaces != nullptr ? ifaces : "";
      size_t start = 0;
      while (start < list.size()) {
        size_t end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        if (end > start) {
          opts->devices.push_back(
              c10d::ProcessGroupGloo::createDeviceForInterface(list.substr(start, end - start), false));
        }
        start = end + 1;
      }
      if (opts->devices.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice(false));
      }
      opts->threads = 2 * static_cast<int>(opts->devices.size());
      backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, opts);
      type = c10d::ProcessGroup::BackendType::GLOO;
      device_type = c10::DeviceType::CPU;
#else
      throw std::runtime_error(
          "this build has no Gloo backend (the Gloo headers were not found at build time; "
          "`make setup` fetches them), so CPU ranks cannot communicate");
#endif
    }
    pg->setDefaultBackend(type);
    pg->setBackend(device_type, type, backend);
    pg->setGroupName("default");
    backend->setSequenceNumberForGroup();
    return new GroupPtr(std::move(pg));
  });
}

// Shuts the group down (NCCL communicators are finalised, not aborted, and no
// "destroy_process_group() was not called" warning), then releases it.
void sipl_group_free(void* pg) {
  try {
    group(pg)->shutdown();
  } catch (...) {
  }
  try {
    delete static_cast<GroupPtr*>(pg);
  } catch (...) {
  }
}

// In-place sum over ranks of each tensor. Waits for the work: on CUDA that orders the current
// stream after the collective without blocking the host; on CPU it blocks.
int sipl_group_allreduce_sum(void* pg, void* const* ptrs, int n, char** error) {
  return status(error, [&] {
    auto ts = tensors(ptrs, n);
    for (auto& t : ts) {
      std::vector<at::Tensor> one{t};
      group(pg)->allreduce(one)->wait();
    }
  });
}

// Rank `root`'s values of each tensor, in place on every rank.
int sipl_group_broadcast(void* pg, void* const* ptrs, int n, int root, char** error) {
  return status(error, [&] {
    auto ts = tensors(ptrs, n);
    for (auto& t : ts) {
      std::vector<at::Tensor> one{t};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      group(pg)->broadcast(one, opts)->wait();
    }
  });
}

// c10d's Reducer over `params` (the same order on every rank), in buckets of `bucket_bytes`
// (the first, whose gradients arrive first, of `first_bucket_bytes`). After
// `sipl_reducer_prepare`, the next backward leaves every parameter's gradient averaged over
// the ranks.
void* sipl_reducer_new(void* pg, void* const* ptrs, int n, int64_t bucket_bytes,
                       int64_t first_bucket_bytes, char** error) {
  return guarded(error, [&]() -> void* {
    auto params = tensors(ptrs, n);
    std::vector<bool> sparse(params.size(), false);
    auto buckets = std::get<0>(c10d::compute_bucket_assignment_by_size(
        params, {static_cast<size_t>(first_bucket_bytes), static_cast<size_t>(bucket_bytes)},
        sparse));
    std::unordered_map<size_t, std::string> names;
    return new c10d::Reducer(std::move(params), std::move(buckets), group(pg),
                             std::move(sparse), bucket_bytes, /*find_unused=*/false,
                             /*gradient_as_bucket_view=*/false, std::move(names),
                             first_bucket_bytes, /*skip_all_reduce_unused_params=*/false,
                             /*use_python_reducer=*/false, /*bucket_bytes_cap_list=*/{});
  });
}

// What DistributedDataParallel does before every forward: after the first backward, buckets
// are rebuilt once in the order gradients arrived (collective: every rank calls it at the same
// step). Until then each backward records that order, so skipping this would grow the
// reducer's bookkeeping every step; it is also where the reducer checks that the previous
// backward reduced every bucket.
int sipl_reducer_rebuild(void* reducer, char** error) {
  return status(error, [&] {
    static_cast<c10d::Reducer*>(reducer)->rebuild_buckets();
  });
}

int sipl_reducer_prepare(void* reducer, void* const* outputs, int n, char** error) {
  return status(error, [&] {
    static_cast<c10d::Reducer*>(reducer)->prepare_for_backward(tensors(outputs, n));
  });
}

void sipl_reducer_free(void* reducer) {
  try {
    delete static_cast<c10d::Reducer*>(reducer);
  } catch (...) {
  }
}

// The backends this build has: 1 = Gloo, 2 = NCCL.
int sipl_dist_backends() {
  int have = 0;
#ifdef SIPL_HAVE_GLOO
  have |= 1;
#endif
#ifdef SIPL_HAVE_NCCL
  have |= 2;
#endif
  return have;
}

}  // extern "C"
