// bf16 autocast switches for sipl-train, through the non-deprecated ATen API. tch's own
// `autocast` goes through `at::autocast::set_enabled`, which this libtorch warns about on every
// call (several lines per step); these four functions are all a training step needs.
#include <ATen/autocast_mode.h>

extern "C" {

// Enables or disables autocast for a device type (0 = CPU, 1 = CUDA) with bf16 as the type.
// Returns the previous state.
bool sipl_autocast_set(int device, bool enabled) {
  const at::DeviceType type = device == 1 ? at::kCUDA : at::kCPU;
  const bool previous = at::autocast::is_autocast_enabled(type);
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, enabled);
  return previous;
}

int sipl_autocast_increment_nesting() { return at::autocast::increment_nesting(); }

int sipl_autocast_decrement_nesting() { return at::autocast::decrement_nesting(); }

// Drops the cached bf16 copies of the weights (at the end of the outermost autocast region).
void sipl_autocast_clear_cache() { at::autocast::clear_cache(); }
}
