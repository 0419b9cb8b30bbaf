//! The only door to the C++ shim in `csrc/` (compiled by `build.rs` against the venv's
//! libtorch): every `extern "C"` declaration of the workspace lives under this module, and the
//! rest of the code calls the safe wrappers below. What the shim offers that tch does not:
//!
//! - [`autocast`]: bf16 autocast regions without deprecation warnings;
//! - [`fused_adam`]: PyTorch's fused Adam kernel;
//! - [`transfer`]: pinned host tensors and host-to-device copies on a side stream;
//! - [`c10d`]: the rendezvous store, process groups (NCCL, Gloo) and the gradient reducer.
//!
//! The conventions (`csrc/shim.h`): a call that can fail returns null or -1 and leaves a
//! malloc'd message in its `error` argument, which [`checked`] turns into a
//! [`TchError::Torch`] and releases with the shim's one `sipl_free`.

pub mod autocast;
pub mod c10d;
pub mod fused_adam;
pub mod transfer;

use std::ffi::{CStr, c_char, c_void};

use tch::{TchError, Tensor};

unsafe extern "C" {
    fn sipl_free(p: *mut c_void);
}

/// Runs a shim call that takes an `error` out-argument; `failed` says from its result whether
/// it failed (null, or -1). The error is the shim's message without the C++ backtrace that
/// ATen and c10d append ("Exception raised from …").
pub(crate) fn checked<T>(
    call: impl FnOnce(*mut *mut c_char) -> T,
    failed: impl Fn(&T) -> bool,
) -> Result<T, TchError> {
    let mut error: *mut c_char = std::ptr::null_mut();
    let out = call(&mut error);
    if !failed(&out) {
        return Ok(out);
    }
    let message = if error.is_null() {
        "unknown error in the C++ shim".to_owned()
    } else {
        // SAFETY: the shim sets `error` to a NUL-terminated string from malloc.
        let m = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
        // SAFETY: made by the shim's malloc, released once.
        unsafe { free(error.cast()) };
        m.split("\nException raised from").next().unwrap_or_default().trim().to_owned()
    };
    Err(TchError::Torch(message))
}

/// Releases a block the shim handed over with malloc.
///
/// # Safety
/// `p` came from the shim's malloc and is released once.
pub(crate) unsafe fn free(p: *mut c_void) {
    // SAFETY: the caller's contract.
    unsafe { sipl_free(p) }
}

/// The `at::Tensor*` handles of `tensors`, borrowed for a shim call.
pub(crate) fn tensor_ptrs<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> Vec<*mut c_void> {
    tensors.into_iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

/// Null: how a shim call that makes something reports a failure.
pub(crate) fn is_null<T>(p: &*mut T) -> bool {
    p.is_null()
}

/// -1: how a shim call that only acts reports a failure.
pub(crate) fn is_error(status: &i32) -> bool {
    *status != 0
}
