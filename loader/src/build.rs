//! Building one batch: each sample's image decompressed, its views cut, augmented, projected
//! and normalised straight into the batch buffer.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::augment::resize::resize_rows;
use crate::augment::{
    project_normalize_half_into, project_normalize_into, project_normalize_row_half_into,
    project_normalize_row_into, store_fence,
};
use crate::batch::Batch;
use crate::buffer::{Pixels, Slot};
use crate::loader::{CorruptPolicy, LoaderError};
use crate::rng::sample_rng;
use crate::scheme::View;
use crate::stream::StreamParts;

/// Builds batch `b` of `epoch` (whose image order is `order`) into one contiguous buffer.
pub(crate) fn build_batch(
    p: &StreamParts,
    epoch: u64,
    order: &[usize],
    b: usize,
    rgb: &mut Vec<u8>,
) -> Result<Batch, LoaderError> {
    let cfg = &p.config;
    if p.faults.panic_at_batch == Some(b) {
        panic!("injected fault at batch {b}");
    }
    if p.faults.stall_at_batch == Some(b) {
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    let first = b * cfg.batch_size;
    let count = cfg.batch_size.min(order.len() - first);
    let views = p.spec.scheme.views();
    let size = p.spec.geometry.out;
    let patch = 3 * size * size;
    // Every element is overwritten below.
    let (dtype, len) = (cfg.batch_dtype, views * count * patch);
    let mut pixels = match p.buffers.allocate(dtype.words(len)) {
        Ok(buffer) => Pixels::new(buffer, dtype, len),
        Err(source) => {
            return Err(LoaderError::Buffer { buffers: p.buffers.name().to_owned(), source });
        }
    };
    let (mut labels, mut ids) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let (mut decode, mut build) = (Duration::ZERO, Duration::ZERO);
    for i in 0..count {
        let t = Instant::now();
        let index = decode_sample(p, order, first + i, rgb)?;
        let t2 = Instant::now();
        decode += t2 - t;
        let mut rng = sample_rng(cfg.seed, epoch, index as u64);
        let sample = p.spec.sample(rgb, &mut rng);
        for (v, view) in sample.views.into_iter().enumerate() {
            let at = (v * count + i) * patch;
            write_view(view, size, pixels.slot(at..at + patch));
        }
        labels.push(sample.label as i64);
        ids.push(index as u64);
        build += t2.elapsed();
    }
    p.stats.add(decode, build, count);
    Ok(Batch { epoch, index: b, views, batch_size: count, size, pixels, labels, ids })
}

/// Projects and normalises `view` into its batch slot (3 × `size` × `size` values); a jitter
/// window is resized on the way, a row at a time, so its rows are still in cache when
/// projected. Its buffer then goes back to the worker's spares.
fn write_view(view: View, size: usize, slot: Slot<'_>) {
    let image = match (view, slot) {
        (View::Patch(img), Slot::F32(out)) => {
            project_normalize_into(&img, out);
            img
        }
        (View::Patch(img), Slot::Half(dtype, out)) => {
            project_normalize_half_into(&img, dtype, out);
            img
        }
        (View::Window(w), Slot::F32(out)) => {
            resize_rows(&w, size, size, |y, rows| project_normalize_row_into(rows, y, out));
            store_fence();
            w
        }
        (View::Window(w), Slot::Half(dtype, out)) => {
            resize_rows(&w, size, size, |y, rows| {
                project_normalize_row_half_into(rows, y, dtype, out)
            });
            store_fence();
            w
        }
    };
    crate::planar::give_buffer(image.data);
}

/// Decompresses the image at `position` of the epoch order into `rgb`; with
/// [`CorruptPolicy::Skip`] a corrupt row is counted and the next position's image used.
fn decode_sample(
    p: &StreamParts,
    order: &[usize],
    position: usize,
    rgb: &mut Vec<u8>,
) -> Result<usize, LoaderError> {
    let len = order.len();
    for k in 0..len {
        let index = order[(position + k) % len];
        match p.dataset.decode_into(index, rgb) {
            Ok(_) => return Ok(index),
            Err(e) if p.config.corrupt == CorruptPolicy::Fail => return Err(e.into()),
            Err(_) => {
                p.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Err(LoaderError::Config("every image of this rank is corrupt".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchDtype;
    use crate::augment::StyleConfig;
    use crate::buffer::{BufferAllocator, Pixels, VecPool};
    use crate::geometry::Geometry;
    use crate::rng::sample_rng;
    use crate::scheme::{SampleSpec, Scheme};

    fn pixels(dtype: BatchDtype, len: usize) -> Pixels {
        let buffer = VecPool::new(1).allocate(dtype.words(len)).expect("buffer");
        Pixels::new(buffer, dtype, len)
    }

    fn bits(p: &Pixels) -> Vec<u32> {
        p.words().iter().map(|w| w.to_bits()).collect()
    }

    /// A sample as the loader writes it (windows resized row by row into the slot) equals the
    /// whole patches of [`SampleSpec::patches`] projected, bit for bit, in every element type;
    /// patch sides that are not a multiple of 8 take the kernels' scalar edges too.
    #[test]
    fn row_by_row_windows_equal_whole_patches_bit_for_bit() {
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        for scheme in Scheme::ALL {
            for out in [64, 36] {
                let geometry = Geometry::new(64, out).expect("geometry");
                let spec = SampleSpec { scheme, geometry, style: StyleConfig::default() };
                for dtype in BatchDtype::ALL {
                    let patch = 3 * out * out;
                    let len = scheme.views() * patch;
                    let (mut want, mut got) = (pixels(dtype, len), pixels(dtype, len));
                    let whole = spec.patches(&rgb, &mut sample_rng(3, 1, 7));
                    let rows = spec.sample(&rgb, &mut sample_rng(3, 1, 7));
                    assert_eq!(whole.label, rows.label);
                    for (v, img) in whole.views.into_iter().enumerate() {
                        write_view(View::Patch(img), out, want.slot(v * patch..(v + 1) * patch));
                    }
                    for (v, view) in rows.views.into_iter().enumerate() {
                        write_view(view, out, got.slot(v * patch..(v + 1) * patch));
                    }
                    assert!(bits(&got) == bits(&want), "{scheme:?}, {out}², {dtype:?}");
                }
            }
        }
    }
}
