//! bf16 autocast regions through the C++ shim in `csrc/autocast.cpp` (tch's `autocast` prints
//! deprecation warnings on every call with this libtorch). Used on CUDA only: CPU training stays
//! exact fp32.

use tch::Device;

unsafe extern "C" {
    fn sipl_autocast_set(device: i32, enabled: bool) -> bool;
    fn sipl_autocast_increment_nesting() -> i32;
    fn sipl_autocast_decrement_nesting() -> i32;
    fn sipl_autocast_clear_cache();
}

/// Runs `f` with bf16 autocast on for `device`'s type (the state is restored afterwards, and
/// the weight cast cache cleared when the outermost region ends).
pub fn with_bf16<T>(device: Device, f: impl FnOnce() -> T) -> T {
    let kind = if matches!(device, Device::Cuda(_)) { 1 } else { 0 };
    // SAFETY: the shim only flips ATen's thread-local autocast state; no pointers cross.
    let previous = unsafe {
        let p = sipl_autocast_set(kind, true);
        sipl_autocast_increment_nesting();
        p
    };
    let out = f();
    // SAFETY: as above.
    unsafe {
        if sipl_autocast_decrement_nesting() == 0 {
            sipl_autocast_clear_cache();
        }
        sipl_autocast_set(kind, previous);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn the_shim_switches_autocast_on_and_off() {
        // CPU autocast exercises the same shim without a GPU: a matmul comes out in bf16
        // inside the region and in f32 after it.
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        let inside = with_bf16(Device::Cpu, || a.matmul(&a));
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }
}
