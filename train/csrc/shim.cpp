// The one release function of sipl-train's C++ shim (see shim.h): everything the shim hands to
// Rust with malloc, error messages and byte values alike, comes back here.
#include <cstdlib>

extern "C" void sipl_free(void* p) { free(p); }
