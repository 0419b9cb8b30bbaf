//! Host buffers the loader writes batches into, and host-to-device copies that overlap
//! compute, through the C++ shim in `csrc/transfer.cpp` (tch exposes neither pinned
//! allocation nor streams).
//!
//! On CUDA the loader builds each batch straight into a page-locked tensor (no staging copy),
//! and [`CopyStream::upload`] enqueues its copy on a side stream that the compute stream waits
//! on: while step k runs, batch k+1 is already crossing PCIe. Pinned blocks come from PyTorch's
//! caching host allocator, which reuses a freed block only after the copies recorded on it have
//! finished, so a batch can be dropped as soon as its upload is enqueued.

use std::ffi::{c_char, c_void};

use tch::{Device, TchError, Tensor};
use torch_sys::C_tensor;

use super::is_null;

unsafe extern "C" {
    fn sipl_host_empty_f32(numel: i64, pinned: bool, error: *mut *mut c_char) -> *mut c_void;
    fn sipl_copy_stream_new(index: i32, error: *mut *mut c_char) -> *mut c_void;
    fn sipl_copy_stream_free(stream: *mut c_void);
    fn sipl_pinned(host: *const c_void, error: *mut *mut c_char) -> *mut c_void;
    fn sipl_upload_on(
        stream: *mut c_void,
        host: *const c_void,
        error: *mut *mut c_char,
    ) -> *mut c_void;
}

/// Calls a shim function that returns an owned pointer or null with an error set.
fn checked(call: impl FnOnce(*mut *mut c_char) -> *mut c_void) -> Result<*mut c_void, TchError> {
    super::checked(call, is_null)
}

/// An uninitialised 1-D f32 host tensor of `numel` elements, page-locked when `pinned`
/// (which needs a CUDA device).
pub fn host_empty_f32(numel: usize, pinned: bool) -> Result<Tensor, TchError> {
    // SAFETY: the shim returns a heap `at::Tensor*` (what tch's `C_tensor` is) or null.
    let ptr = checked(|e| unsafe { sipl_host_empty_f32(numel as i64, pinned, e) })?;
    // SAFETY: ownership of the new tensor passes to tch, which deletes it on drop.
    Ok(unsafe { Tensor::from_ptr(ptr as *mut C_tensor) })
}

/// `host` in page-locked memory: the same tensor when it already is, else a pinned copy
/// (needs CUDA).
pub fn pinned(host: &Tensor) -> Result<Tensor, TchError> {
    let src = host.as_ptr() as *const c_void;
    // SAFETY: `src` is live for the call; the result is a new heap `at::Tensor*` or null.
    let ptr = checked(|e| unsafe { sipl_pinned(src, e) })?;
    // SAFETY: as in `host_empty_f32`.
    Ok(unsafe { Tensor::from_ptr(ptr as *mut C_tensor) })
}

/// A CUDA stream for uploads. Dropping it releases the handle (pool streams are never
/// destroyed, so enqueued copies are unaffected).
pub struct CopyStream {
    stream: *mut c_void,
    device: Device,
}

// SAFETY: the handle is a plain `c10::Stream` value (device and stream id), immutable after
// creation and usable from any thread.
unsafe impl Send for CopyStream {}

impl CopyStream {
    /// A copy stream for `device`; `None` for the CPU, which needs none.
    pub fn for_device(device: Device) -> Result<Option<Self>, TchError> {
        let Device::Cuda(index) = device else { return Ok(None) };
        // SAFETY: returns a heap `c10::Stream*` or null with an error set.
        let stream = checked(|e| unsafe { sipl_copy_stream_new(index as i32, e) })?;
        Ok(Some(CopyStream { stream, device }))
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// `host` on the device, copied on this stream; work enqueued afterwards on the compute
    /// stream waits for the copy, the host does not.
    pub fn upload(&self, host: &Tensor) -> Result<Tensor, TchError> {
        let src = host.as_ptr() as *const c_void;
        // SAFETY: both pointers are live for the call; the result is a new heap tensor.
        let ptr = checked(|e| unsafe { sipl_upload_on(self.stream, src, e) })?;
        // SAFETY: as in `host_empty_f32`.
        Ok(unsafe { Tensor::from_ptr(ptr as *mut C_tensor) })
    }
}

impl Drop for CopyStream {
    fn drop(&mut self) {
        // SAFETY: made by `sipl_copy_stream_new`, freed once.
        unsafe { sipl_copy_stream_free(self.stream) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_tensors_are_writable_f32_buffers() {
        let t = host_empty_f32(12, false).expect("pageable host tensor");
        assert_eq!((t.size(), t.kind(), t.device()), (vec![12], tch::Kind::Float, Device::Cpu));
    }

    #[test]
    fn pinned_memory_without_cuda_is_an_error_not_a_crash() {
        if tch::Cuda::is_available() {
            return; // the machine can pin: nothing to check here
        }
        let e = host_empty_f32(12, true).expect_err("no CUDA, no pinned memory");
        assert!(!e.to_string().is_empty());
        let host = Tensor::zeros([3], (tch::Kind::Float, Device::Cpu));
        assert!(pinned(&host).is_err(), "pinning needs CUDA");
        assert!(CopyStream::for_device(Device::Cpu).expect("cpu").is_none());
        assert!(CopyStream::for_device(Device::Cuda(0)).is_err());
    }
}
