//! Where batch pixels are written: a [`BufferAllocator`] hands out [`PixelBuffer`]s, contiguous
//! f32 words the workers fill in place (with f32 elements, or two bf16/f16 elements a word). The default, [`VecPool`], recycles `Vec`s (at the
//! paper's sizes a SIPLv1 batch is 116 MB, and page-faulting a fresh one per batch measured as
//! half of all worker time). A trainer can supply its own, such as page-locked host tensors
//! that upload without a staging copy.

use std::any::Any;
use std::fmt::Debug;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::dtype::BatchDtype;

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
    /// A buffer of `len` f32 words whose contents are unspecified (the loader overwrites every
    /// element of a batch).
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

/// A batch's pixels: `len` elements of `dtype` in a buffer of f32 words (two half elements per
/// word, in memory order).
#[derive(Debug)]
pub struct Pixels {
    buffer: Box<dyn PixelBuffer>,
    dtype: BatchDtype,
    len: usize,
}

impl Pixels {
    /// `len` elements of `dtype` in `buffer`, which must hold `dtype.words(len)` f32 words.
    pub fn new(buffer: Box<dyn PixelBuffer>, dtype: BatchDtype, len: usize) -> Self {
        assert_eq!(buffer.as_slice().len(), dtype.words(len), "buffer size for {len} {dtype}");
        Pixels { buffer, dtype, len }
    }

    pub fn dtype(&self) -> BatchDtype {
        self.dtype
    }

    /// Elements (not words).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements of an f32 batch; `None` for a half one.
    pub fn as_f32(&self) -> Option<&[f32]> {
        (self.dtype == BatchDtype::F32).then(|| self.buffer.as_slice())
    }

    /// The bits of a bf16 or f16 batch's elements; `None` for an f32 one.
    pub fn as_half_bits(&self) -> Option<&[u16]> {
        (self.dtype != BatchDtype::F32)
            .then(|| &bytemuck::cast_slice(self.buffer.as_slice())[..self.len])
    }

    /// The memory itself, as f32 words whatever the element type (for a tensor to view it
    /// as its elements).
    pub fn words(&self) -> &[f32] {
        self.buffer.as_slice()
    }

    /// Elements `range` as f32 (a widened copy for half batches).
    pub fn to_f32(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        match (self.as_f32(), self.as_half_bits()) {
            (Some(v), _) => v[range].to_vec(),
            (None, Some(bits)) => bits[range].iter().map(|&b| self.dtype.widen(b)).collect(),
            (None, None) => unreachable!("a batch is f32 or half"),
        }
    }

    /// Where elements `range` are written.
    pub fn slot(&mut self, range: std::ops::Range<usize>) -> Slot<'_> {
        let dtype = self.dtype;
        let words = self.buffer.as_mut_slice();
        match dtype {
            BatchDtype::F32 => Slot::F32(&mut words[range]),
            _ => Slot::Half(dtype, &mut bytemuck::cast_slice_mut(words)[range]),
        }
    }

    /// The buffer as the allocator's type `T`, if it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.buffer.as_any().downcast_ref()
    }
}

/// Elements of a batch to write: f32 values, or the bits of bf16/f16 ones.
pub enum Slot<'a> {
    F32(&'a mut [f32]),
    Half(BatchDtype, &'a mut [u16]),
}

impl PartialEq for Pixels {
    /// The same type, length and values (f32 compared as floats, halves by their bits).
    fn eq(&self, o: &Self) -> bool {
        (self.dtype, self.len) == (o.dtype, o.len)
            && self.as_f32() == o.as_f32()
            && self.as_half_bits() == o.as_half_bits()
    }
}

impl Clone for Pixels {
    fn clone(&self) -> Self {
        Pixels { buffer: self.buffer.duplicate(), dtype: self.dtype, len: self.len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_handed_out_again() {
        let pool = VecPool::new(2);
        let mut a = Pixels::new(pool.allocate(6).expect("vec"), BatchDtype::F32, 6);
        match a.slot(0..6) {
            Slot::F32(v) => v.copy_from_slice(&[1.0; 6]),
            Slot::Half(..) => unreachable!(),
        }
        let at = a.words().as_ptr();
        drop(a);
        let b = Pixels::new(pool.allocate(6).expect("vec"), BatchDtype::F32, 6);
        assert_eq!((b.words().as_ptr(), b.len()), (at, 6), "the same memory, recycled");
        let c = b.clone();
        assert_eq!(c, b);
        assert_ne!(c.words().as_ptr(), b.words().as_ptr());
    }

    #[test]
    fn half_elements_pack_two_to_a_word() {
        let pool = VecPool::new(1);
        let mut p = Pixels::new(pool.allocate(3).expect("vec"), BatchDtype::Bf16, 5);
        match p.slot(1..3) {
            Slot::Half(d, bits) => bits.copy_from_slice(&[d.half_bits(0.5), d.half_bits(-2.0)]),
            Slot::F32(_) => unreachable!(),
        }
        assert_eq!(p.to_f32(1..3), vec![0.5, -2.0]);
        assert_eq!(p.as_half_bits().map(<[u16]>::len), Some(5));
        assert!(p.as_f32().is_none());
    }
}
