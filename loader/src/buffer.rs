//! Where batch pixels are written: a [`BufferAllocator`] hands out [`PixelBuffer`]s, contiguous
//! f32 memory the workers fill in place. The default, [`VecPool`], recycles `Vec`s (at the
//! paper's sizes a SIPLv1 batch is 116 MB, and page-faulting a fresh one per batch measured as
//! half of all worker time). A trainer can supply its own, such as page-locked host tensors
//! that upload without a staging copy.

use std::any::Any;
use std::fmt::Debug;
use std::ops::{Deref, DerefMut};

use crossbeam_channel::{Receiver, Sender, bounded};

/// Why an allocator could not hand out a buffer.
pub type BufferError = Box<dyn std::error::Error + Send + Sync>;

/// A batch's pixel memory: contiguous f32 that the workers write and the consumer reads.
pub trait PixelBuffer: Debug + Send + 'static {
    fn as_slice(&self) -> &[f32];
    fn as_mut_slice(&mut self) -> &mut [f32];
    /// A copy with the same contents, in memory of the same kind.
    fn duplicate(&self) -> Box<dyn PixelBuffer>;
    /// The buffer as its own type, for the allocator's owner (see [`Pixels::downcast_ref`]).
    fn as_any(&self) -> &dyn Any;
}

/// Hands out batch buffers; shared by a loader's worker threads.
pub trait BufferAllocator: Debug + Send + Sync {
    /// The kind of memory, as error messages name it.
    fn name(&self) -> &str;
    /// A buffer of `len` f32 whose contents are unspecified (every element is overwritten).
    fn allocate(&self, len: usize) -> Result<Box<dyn PixelBuffer>, BufferError>;
}

/// Pooled `Vec`s: a dropped buffer goes back to the pool (when it has room) and is handed out
/// again, so steady-state batches allocate nothing.
#[derive(Debug)]
pub struct VecPool {
    free: (Sender<Vec<f32>>, Receiver<Vec<f32>>),
}

impl VecPool {
    /// A pool that keeps at most `capacity` idle buffers (more are freed when dropped).
    pub fn new(capacity: usize) -> Self {
        VecPool { free: bounded(capacity.max(1)) }
    }
}

impl BufferAllocator for VecPool {
    fn name(&self) -> &str {
        "Pooled"
    }

    fn allocate(&self, len: usize) -> Result<Box<dyn PixelBuffer>, BufferError> {
        let mut data = self.free.1.try_recv().unwrap_or_default();
        if data.len() != len {
            // A zeroed allocation, not a fill: fresh pages from the system are already zero,
            // so a new buffer costs no pass over its (often hundreds of) megabytes.
            data = vec![0.0; len];
        }
        Ok(Box::new(PooledVec { data, home: self.free.0.clone() }))
    }
}

/// A `Vec` that returns to its pool when dropped.
#[derive(Debug)]
struct PooledVec {
    data: Vec<f32>,
    home: Sender<Vec<f32>>,
}

impl PixelBuffer for PooledVec {
    fn as_slice(&self) -> &[f32] {
        &self.data
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    fn duplicate(&self) -> Box<dyn PixelBuffer> {
        Box::new(PooledVec { data: self.data.clone(), home: self.home.clone() })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PooledVec {
    fn drop(&mut self) {
        let _ = self.home.try_send(std::mem::take(&mut self.data)); // a full pool just frees it
    }
}

/// A batch's pixel buffer; reads and writes as a `[f32]`.
#[derive(Debug)]
pub struct Pixels(Box<dyn PixelBuffer>);

impl Pixels {
    pub fn new(buffer: Box<dyn PixelBuffer>) -> Self {
        Pixels(buffer)
    }

    /// The buffer as the allocator's type `T`, if it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }
}

impl Deref for Pixels {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.0.as_slice()
    }
}

impl DerefMut for Pixels {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.0.as_mut_slice()
    }
}

impl Clone for Pixels {
    fn clone(&self) -> Self {
        Pixels(self.0.duplicate())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_handed_out_again() {
        let pool = VecPool::new(2);
        let mut a = Pixels::new(pool.allocate(6).expect("vec"));
        a.copy_from_slice(&[1.0; 6]);
        let at = a.as_ptr();
        drop(a);
        let b = Pixels::new(pool.allocate(6).expect("vec"));
        assert_eq!((b.as_ptr(), b.len()), (at, 6), "the same memory, recycled");
        let c = b.clone();
        assert_eq!(*c, *b);
        assert_ne!(c.as_ptr(), b.as_ptr());
    }
}
