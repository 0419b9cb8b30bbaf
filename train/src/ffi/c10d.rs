//! Safe handles over the c10d part of the C++ shim (`csrc/dist.cpp`): the rendezvous store,
//! the process group and the gradient reducer. [`crate::dist`] builds training on them.

use std::ffi::{CString, c_char, c_void};

use tch::{TchError, Tensor};

use super::{checked, free, is_error, is_null, tensor_ptrs};

unsafe extern "C" {
    fn sipl_store_new(
        host: *const c_char,
        port: i32,
        server: bool,
        world: i32,
        timeout_ms: i64,
        prefix: *const c_char,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn sipl_store_free(store: *mut c_void);
    fn sipl_store_set(
        store: *mut c_void,
        key: *const c_char,
        data: *const u8,
        len: i64,
        error: *mut *mut c_char,
    ) -> i32;
    fn sipl_store_get(
        store: *mut c_void,
        key: *const c_char,
        len: *mut i64,
        error: *mut *mut c_char,
    ) -> *mut u8;
    fn sipl_group_new(
        store: *mut c_void,
        rank: i32,
        world: i32,
        cuda_index: i32,
        timeout_ms: i64,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn sipl_group_free(group: *mut c_void);
    fn sipl_group_allreduce_sum(
        group: *mut c_void,
        tensors: *const *mut c_void,
        n: i32,
        error: *mut *mut c_char,
    ) -> i32;
    fn sipl_group_broadcast(
        group: *mut c_void,
        tensors: *const *mut c_void,
        n: i32,
        root: i32,
        error: *mut *mut c_char,
    ) -> i32;
    fn sipl_reducer_new(
        group: *mut c_void,
        params: *const *mut c_void,
        n: i32,
        bucket_bytes: i64,
        first_bucket_bytes: i64,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn sipl_reducer_prepare(
        reducer: *mut c_void,
        outputs: *const *mut c_void,
        n: i32,
        error: *mut *mut c_char,
    ) -> i32;
    fn sipl_reducer_free(reducer: *mut c_void);
    fn sipl_reducer_rebuild(reducer: *mut c_void, error: *mut *mut c_char) -> i32;
    fn sipl_dist_backends() -> i32;
}

/// The c10d backends this build can use: (Gloo, NCCL).
pub fn backends() -> (bool, bool) {
    // SAFETY: a pure function of how the shim was compiled.
    let have = unsafe { sipl_dist_backends() };
    (have & 1 != 0, have & 2 != 0)
}

fn c_string(s: &str) -> Result<CString, TchError> {
    CString::new(s).map_err(|_| TchError::Torch(format!("{s:?} contains a NUL byte")))
}

fn raw(tensors: &[&Tensor]) -> Vec<*mut c_void> {
    tensor_ptrs(tensors.iter().copied())
}

/// c10d's TCPStore: rank 0 serves it, every rank connects (or all connect to a launcher's
/// store, their keys under `prefix`).
pub struct Store(*mut c_void);

// SAFETY: c10d's TCPStore is thread-safe; the handle is an owned intrusive pointer.
unsafe impl Send for Store {}

impl Store {
    pub fn connect(
        host: &str,
        port: u16,
        server: bool,
        world: usize,
        timeout_ms: u64,
        prefix: &str,
    ) -> Result<Self, TchError> {
        let (h, pre) = (c_string(host)?, c_string(prefix)?);
        // SAFETY: `h` and `pre` outlive the call; returns an owned handle or null with an error.
        let p = checked(
            |e| unsafe {
                let (w, t) = (world as i32, timeout_ms as i64);
                sipl_store_new(h.as_ptr(), port as i32, server, w, t, pre.as_ptr(), e)
            },
            is_null,
        )?;
        Ok(Store(p))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), TchError> {
        let k = c_string(key)?;
        // SAFETY: all pointers are live for the call.
        checked(
            |e| unsafe {
                sipl_store_set(self.0, k.as_ptr(), value.as_ptr(), value.len() as i64, e)
            },
            is_error,
        )?;
        Ok(())
    }

    /// The value of `key`, waiting for some rank to set it (up to the store's timeout).
    pub fn get(&self, key: &str) -> Result<Vec<u8>, TchError> {
        let k = c_string(key)?;
        let mut len = 0i64;
        // SAFETY: all pointers are live for the call; the result is malloc'd or null.
        let p = checked(|e| unsafe { sipl_store_get(self.0, k.as_ptr(), &mut len, e) }, is_null)?;
        // SAFETY: the shim wrote `len` bytes at `p`.
        let v = unsafe { std::slice::from_raw_parts(p, len as usize) }.to_vec();
        // SAFETY: made by the shim's malloc, freed once.
        unsafe { free(p.cast()) };
        Ok(v)
    }

    fn as_ptr(&self) -> *mut c_void {
        self.0
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: made by `sipl_store_new`, freed once.
        unsafe { sipl_store_free(self.0) }
    }
}

/// A c10d process group over NCCL (CUDA) or Gloo (CPU).
pub struct Group(*mut c_void);

// SAFETY: c10d process groups are used from one thread at a time here, and are thread-safe.
unsafe impl Send for Group {}

impl Group {
    /// `cuda_index`: the rank's CUDA device for NCCL, `None` for Gloo on the CPU.
    pub fn new(
        store: &Store,
        rank: usize,
        world: usize,
        cuda_index: Option<usize>,
        timeout_ms: u64,
    ) -> Result<Self, TchError> {
        let index = cuda_index.map_or(-1, |i| i as i32);
        // SAFETY: the store handle is live; returns an owned handle or null.
        let p = checked(
            |e| unsafe {
                sipl_group_new(
                    store.as_ptr(),
                    rank as i32,
                    world as i32,
                    index,
                    timeout_ms as i64,
                    e,
                )
            },
            is_null,
        )?;
        Ok(Group(p))
    }

    /// Sums each tensor over the ranks, in place.
    pub fn allreduce_sum(&self, tensors: &[&Tensor]) -> Result<(), TchError> {
        let ptrs = raw(tensors);
        // SAFETY: the tensors are live for the call.
        checked(
            |e| unsafe { sipl_group_allreduce_sum(self.0, ptrs.as_ptr(), ptrs.len() as i32, e) },
            is_error,
        )?;
        Ok(())
    }

    /// Overwrites each tensor with rank `root`'s values.
    pub fn broadcast(&self, tensors: &[&Tensor], root: usize) -> Result<(), TchError> {
        let ptrs = raw(tensors);
        // SAFETY: the tensors are live for the call.
        checked(
            |e| unsafe {
                sipl_group_broadcast(self.0, ptrs.as_ptr(), ptrs.len() as i32, root as i32, e)
            },
            is_error,
        )?;
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: made by `sipl_group_new`, freed once.
        unsafe { sipl_group_free(self.0) }
    }
}

/// c10d's Reducer: after [`Reducer::prepare`], the next backward pass leaves each parameter's
/// gradient averaged over the ranks, reduced bucket by bucket while backward still runs.
pub struct Reducer(*mut c_void);

impl Reducer {
    /// `params` in the same order on every rank; buckets of `bucket_bytes`.
    pub fn new(
        group: &Group,
        params: &[&Tensor],
        bucket_bytes: u64,
        first_bucket_bytes: u64,
    ) -> Result<Self, TchError> {
        let ptrs = raw(params);
        // SAFETY: group and tensors are live; the reducer keeps its own references.
        let p = checked(
            |e| unsafe {
                sipl_reducer_new(
                    group.0,
                    ptrs.as_ptr(),
                    ptrs.len() as i32,
                    bucket_bytes as i64,
                    first_bucket_bytes as i64,
                    e,
                )
            },
            is_null,
        )?;
        Ok(Reducer(p))
    }

    /// Called on every rank before every forward pass, as DDP does: rebuilds the buckets once,
    /// in the order gradients arrived, after the first backward (a collective), and checks
    /// that the previous backward reduced everything.
    pub fn rebuild(&self) -> Result<(), TchError> {
        // SAFETY: the reducer handle is live.
        checked(|e| unsafe { sipl_reducer_rebuild(self.0, e) }, is_error)?;
        Ok(())
    }

    /// Arms the reducer for the backward pass from `outputs`.
    pub fn prepare(&self, outputs: &[&Tensor]) -> Result<(), TchError> {
        let ptrs = raw(outputs);
        // SAFETY: the tensors are live for the call.
        checked(
            |e| unsafe { sipl_reducer_prepare(self.0, ptrs.as_ptr(), ptrs.len() as i32, e) },
            is_error,
        )?;
        Ok(())
    }
}

impl Drop for Reducer {
    fn drop(&mut self) {
        // SAFETY: made by `sipl_reducer_new`, freed once; the group it holds outlives it in
        // c10d's own reference count.
        unsafe { sipl_reducer_free(self.0) }
    }
}
