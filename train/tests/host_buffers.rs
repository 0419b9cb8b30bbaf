//! The loader writing batches straight into libtorch host tensors (the CUDA path's buffers):
//! the same stream as pooled vectors, zero-copy tensors, and a clear error without CUDA.

use std::path::Path;
use std::sync::Arc;

use sipl_ingest::synth::{SynthSpec, write_synth};
use sipl_ingest::{IngestJob, IngestSettings, SourceKind};
use sipl_loader::scheme::Scheme;
use sipl_loader::{Batch, BatchDtype, Loader, LoaderConfig, LoaderError};
use sipl_shards::Dataset;
use sipl_train::host_buffers::{HostBuffers, HostTensor, PixelTensor};
use tch::Kind;

/// `n` synthetic images ingested at `side`² into `dir`.
fn synthetic_set(dir: &Path, n: usize, side: u32) -> Arc<Dataset> {
    let (images, out) = (dir.join("images"), dir.join("ds"));
    write_synth(&images, SynthSpec { classes: 2, per_class: n.div_ceil(2), size: 40, seed: 1 })
        .expect("synth");
    let mut settings = IngestSettings::defaults(SourceKind::Folder, &images, None).expect("set");
    (settings.resize, settings.crop) = (Some(side), Some(side));
    let job =
        IngestJob { settings, out: out.clone(), threads: Some(2), force: false, progress: false };
    sipl_ingest::ingest(&job).expect("ingest");
    Arc::new(Dataset::open(&out).expect("open"))
}

fn loader(ds: Arc<Dataset>, scheme: Scheme, batch: usize, buffers: HostBuffers) -> Loader {
    loader_of(ds, (scheme, batch, None), buffers, BatchDtype::F32)
}

/// A loader of (scheme, batch size, patch side) batches of `batch_dtype` in `buffers`.
fn loader_of(
    ds: Arc<Dataset>,
    (scheme, batch, patch_size): (Scheme, usize, Option<usize>),
    buffers: HostBuffers,
    batch_dtype: BatchDtype,
) -> Loader {
    let base = LoaderConfig::new(scheme, batch);
    let config = LoaderConfig { workers: 2, seed: 7, batch_dtype, patch_size, ..base };
    Loader::with_buffers(ds, config, buffers.allocator(config.pool_buffers())).expect("loader")
}

fn collect(loader: &Loader) -> Vec<Batch> {
    loader.epoch(0, 0).map(|b| b.expect("batch")).collect()
}

#[test]
fn batches_built_straight_into_host_tensors_equal_pooled_ones() {
    // The CUDA path writes into (pinned) libtorch host tensors; without CUDA the same code
    // writes into ordinary ones, which must give the very same stream and a zero-copy tensor.
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = synthetic_set(tmp.path(), 12, 32);
    let pooled = collect(&loader(ds.clone(), Scheme::SiplV1, 4, HostBuffers::Pooled));
    let tensors = collect(&loader(ds, Scheme::SiplV1, 4, HostBuffers::Tensor));
    assert_eq!(pooled, tensors);
    for (p, t) in pooled.iter().zip(&tensors) {
        assert!(t.pixels.downcast_ref::<HostTensor>().is_some());
        let (pt, tt) = (p.pixel_tensor(), t.pixel_tensor());
        assert_eq!(tt.size(), vec![3, 4, 3, 32, 32]);
        assert!(pt.equal(&tt));
        assert_eq!(tt.data_ptr(), t.pixels.words().as_ptr() as *mut _, "the buffer itself");
    }
}

#[test]
fn half_batches_are_libtorchs_rounding_of_the_f32_batch_in_either_buffer() {
    // The independent reference is libtorch's own f32 -> bf16/f16 conversion.
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = synthetic_set(tmp.path(), 8, 32);
    // SIPLv1, 3 samples of 33² patches: an odd number of elements (the last word half used).
    let shape = (Scheme::SiplV1, 3, Some(33));
    let f32s = collect(&loader_of(ds.clone(), shape, HostBuffers::Pooled, BatchDtype::F32));
    assert_eq!(f32s[0].pixels.len() % 2, 1);
    for (dtype, kind) in [(BatchDtype::Bf16, Kind::BFloat16), (BatchDtype::F16, Kind::Half)] {
        for buffers in [HostBuffers::Pooled, HostBuffers::Tensor] {
            let halves = collect(&loader_of(ds.clone(), shape, buffers, dtype));
            for (h, f) in halves.iter().zip(&f32s) {
                let (ht, ft) = (h.pixel_tensor(), f.pixel_tensor());
                assert_eq!((ht.kind(), ht.size()), (kind, ft.size()), "{dtype} {buffers:?}");
                assert!(
                    ht.equal(&ft.to_kind(kind)),
                    "{dtype} {buffers:?}: rounded as libtorch does"
                );
            }
        }
    }
}

#[test]
fn pinned_buffers_without_cuda_fail_with_a_clear_error() {
    if tch::Cuda::is_available() {
        return; // pinned memory works here; the error cannot be provoked
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = synthetic_set(tmp.path(), 8, 32);
    let pinned = loader(ds, Scheme::Opl, 4, HostBuffers::Pinned);
    let e = pinned.epoch(0, 0).next().expect("one").expect_err("no CUDA");
    assert!(matches!(&e, LoaderError::Buffer { buffers, .. } if buffers == "Pinned"), "{e}");
    assert!(e.to_string().contains("Pinned"), "{e}");
}
