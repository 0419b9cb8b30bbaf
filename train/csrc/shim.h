// The conventions every function of sipl-train's C++ shim follows, in one place:
// - no C++ exception unwinds into Rust: a call that can fail catches everything, returns null
//   (functions that make something) or -1 (functions that only act, 0 on success), and hands
//   back a NUL-terminated message allocated with malloc through its `char** error` argument;
// - everything the shim hands back with malloc (messages, byte values) is released by the one
//   `sipl_free` (shim.cpp); objects it hands back with `new` have their own `sipl_*_free`;
// - tensors cross as `at::Tensor*` (what tch's `C_tensor` is), borrowed for the call.
// The Rust side of these conventions is `train/src/ffi/mod.rs`.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

extern "C" void sipl_free(void* p);

namespace sipl {

inline void set_error(char** error, const char* message) { *error = strdup(message); }

// Runs `f`; on an exception stores its message in `*error` and returns a value-initialised
// result (null for pointers).
template <typename F>
auto guarded(char** error, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    set_error(error, e.what());
  } catch (...) {
    set_error(error, "unknown C++ exception");
  }
  return decltype(f())();
}

// Runs `f` (which returns nothing): 0 on success, -1 with `*error` set on an exception.
template <typename F>
int status(char** error, F f) {
  return guarded(error, [&]() -> int {
           f();
           return 1;
         }) -
         1;
}

// The tensors behind `n` borrowed `at::Tensor*` handles (new references to the same storage).
inline std::vector<at::Tensor> tensors(void* const* ptrs, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(*static_cast<const at::Tensor*>(ptrs[i]));
  return out;
}

}  // namespace sipl
