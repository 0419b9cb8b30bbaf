//! The loader: identical streams for any worker count, restart at (epoch, batch), rank
//! sharding, shutdown, errors reaching the consumer (a worker panic: the unit test in
//! `src/loader.rs`), and the bad inputs it must refuse at start.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipl_ingest::synth::{SynthSpec, write_synth};
use sipl_ingest::{IngestJob, IngestSettings, SourceKind};
use sipl_loader::scheme::Scheme;
use sipl_loader::{Batch, BatchDtype, CorruptPolicy, Loader, LoaderConfig, LoaderError};
use sipl_shards::{Dataset, ShardReader};

/// A dataset of `n` synthetic `side`×`side` images (as several shards) in `dir`.
fn dataset(dir: &Path, n: usize, side: u32) -> Arc<Dataset> {
    let images = dir.join("images");
    write_synth(&images, SynthSpec { classes: 2, per_class: n.div_ceil(2), size: 40, seed: 1 })
        .expect("synth");
    ingest_folder(&images, &dir.join("ds"), Some(side), 7)
}

/// Ingests a folder (resized and cropped to `side`, or as decoded) and opens the result.
fn ingest_folder(root: &Path, out: &Path, side: Option<u32>, shard_images: usize) -> Arc<Dataset> {
    let mut settings = IngestSettings::defaults(SourceKind::Folder, root, None).expect("settings");
    (settings.resize, settings.crop, settings.shard_max_images) = (side, side, shard_images);
    let job = IngestJob {
        settings,
        out: out.to_owned(),
        threads: Some(2),
        force: false,
        progress: false,
    };
    sipl_ingest::ingest(&job).expect("ingest");
    Arc::new(Dataset::open(out).expect("open"))
}

fn config(scheme: Scheme, batch: usize, workers: usize) -> LoaderConfig {
    LoaderConfig { workers, seed: 7, ..LoaderConfig::new(scheme, batch) }
}

fn collect(loader: &Loader, epoch: u64, start: usize) -> Vec<Batch> {
    loader.epoch(epoch, start).map(|b| b.expect("batch")).collect()
}

#[test]
fn every_scheme_gives_batches_shaped_for_tch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 12, 32);
    for (scheme, views) in
        [(Scheme::Opl, 2), (Scheme::SiplV1, 3), (Scheme::SiplV2, 4), (Scheme::SiplV3, 3)]
    {
        let loader = Loader::new(ds.clone(), config(scheme, 4, 2)).expect("loader");
        assert_eq!(loader.batches_per_epoch(), 3);
        let batches = collect(&loader, 0, 0);
        assert_eq!(batches.len(), 3);
        for b in &batches {
            assert_eq!(b.shape(), [views, 4, 3, 32, 32]);
            assert_eq!(b.pixels.len(), views * 4 * 3 * 32 * 32);
            assert!(b.pixels.as_f32().expect("f32 by default").iter().all(|v| v.is_finite()));
            assert!(b.labels.iter().all(|l| (0..8).contains(l)));
        }
        let mut ids: Vec<u64> = batches.iter().flat_map(|b| b.ids.clone()).collect();
        ids.sort();
        assert_eq!(ids, (0..12).collect::<Vec<_>>(), "{scheme}: each image once per epoch");
    }
}

#[test]
fn half_batches_hold_the_f32_batch_rounded_to_nearest_even() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 8, 32);
    let f32s = collect(&Loader::new(ds.clone(), config(Scheme::SiplV1, 4, 2)).expect("l"), 0, 0);
    for dtype in [BatchDtype::Bf16, BatchDtype::F16] {
        let cfg = LoaderConfig { batch_dtype: dtype, ..config(Scheme::SiplV1, 4, 2) };
        let loader = Loader::new(ds.clone(), cfg).expect("l");
        let halves = collect(&loader, 0, 0);
        assert_eq!(halves.len(), f32s.len());
        for (h, f) in halves.iter().zip(&f32s) {
            assert_eq!((h.shape(), &h.labels, &h.ids), (f.shape(), &f.labels, &f.ids));
            assert_eq!((h.pixels.dtype(), h.pixels.len()), (dtype, f.pixels.len()));
            assert_eq!(h.pixels.words().len(), f.pixels.len().div_ceil(2), "half the bytes");
            let want: Vec<u16> = f
                .pixels
                .as_f32()
                .expect("f32")
                .iter()
                .map(|&x| match dtype {
                    BatchDtype::Bf16 => half::bf16::from_f32(x).to_bits(),
                    _ => half::f16::from_f32(x).to_bits(),
                })
                .collect();
            assert_eq!(h.pixels.as_half_bits().expect("half"), want.as_slice(), "{dtype}");
        }
        // Restarting mid-epoch gives the same half batches.
        assert_eq!(collect(&loader, 0, 1), halves[1..]);
    }
}

#[test]
fn the_stream_is_identical_for_any_worker_count_and_restarts_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 20, 32);
    let one = collect(&Loader::new(ds.clone(), config(Scheme::SiplV2, 3, 1)).expect("l"), 1, 0);
    let three = collect(&Loader::new(ds.clone(), config(Scheme::SiplV2, 3, 3)).expect("l"), 1, 0);
    assert_eq!(one.len(), 6);
    assert_eq!(one, three);
    let loader = Loader::new(ds.clone(), config(Scheme::SiplV2, 3, 2)).expect("l");
    assert_eq!(collect(&loader, 1, 4), one[4..]);
    assert_ne!(collect(&loader, 2, 0), one, "another epoch, another order and other draws");
    let mut other_seed = config(Scheme::SiplV2, 3, 2);
    other_seed.seed = 8;
    assert_ne!(collect(&Loader::new(ds, other_seed).expect("l"), 1, 0), one);
}

#[test]
fn running_on_between_epochs_gives_the_same_stream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 20, 32);
    // Reference: each epoch from fresh workers that stop at its end.
    let fresh = Loader::new(ds.clone(), config(Scheme::SiplV1, 3, 2)).expect("l");
    let epochs: Vec<Vec<Batch>> = (0..4).map(|e| collect(&fresh, e, 0)).collect();
    for workers in [1, 2, 3, 8] {
        let run_on = LoaderConfig { run_on: true, ..config(Scheme::SiplV1, 3, workers) };
        let loader = Loader::new(ds.clone(), run_on).expect("l");
        // Mid-epoch start, then the next epochs taken over from the running workers.
        assert_eq!(collect(&loader, 0, 4), epochs[0][4..], "{workers} workers");
        assert_eq!(collect(&loader, 1, 0), epochs[1], "{workers} workers");
        assert_eq!(collect(&loader, 2, 0), epochs[2], "{workers} workers");
        // A consumer that takes exactly an epoch's batches (no call past the end) hands on too.
        let n = loader.batches_per_epoch();
        let taken: Vec<Batch> = loader.epoch(1, 0).take(n).map(|b| b.expect("batch")).collect();
        assert_eq!(taken, epochs[1], "{workers} workers");
        assert_eq!(collect(&loader, 2, 0), epochs[2], "{workers} workers");
        // Workers that ran on into epoch 3 are replaced for any other request.
        assert_eq!(collect(&loader, 2, 1), epochs[2][1..], "{workers} workers");
        assert_eq!(collect(&loader, 0, 0), epochs[0], "{workers} workers");
        // A stream dropped before its end stops its workers; the next one starts afresh.
        let mut stream = loader.epoch(1, 0);
        assert_eq!(stream.next().expect("one").expect("batch"), epochs[1][0]);
        drop(stream);
        assert_eq!(collect(&loader, 3, 0), epochs[3], "{workers} workers");
    }
    // Epochs of one batch, with more workers than batches: each works on its own epoch.
    let tiny = LoaderConfig { run_on: true, ..config(Scheme::Opl, 16, 4) };
    let loader = Loader::new(ds.clone(), tiny).expect("l");
    let fresh = Loader::new(ds, config(Scheme::Opl, 16, 1)).expect("l");
    for e in 0..6 {
        assert_eq!(collect(&loader, e, 0), collect(&fresh, e, 0), "epoch {e}");
    }
}

#[test]
fn ranks_see_disjoint_complete_shares_with_the_same_samples() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 16, 32);
    let single = collect(&Loader::new(ds.clone(), config(Scheme::SiplV1, 2, 2)).expect("l"), 0, 0);
    let mut seen = Vec::new();
    for rank in 0..2 {
        let cfg = LoaderConfig { rank, world: 2, ..config(Scheme::SiplV1, 2, 2) };
        for b in collect(&Loader::new(ds.clone(), cfg).expect("l"), 0, 0) {
            for i in 0..b.batch_size {
                seen.push((b.ids[i], b.labels[i], b.patch(1, i)));
            }
        }
    }
    seen.sort_by_key(|s| s.0);
    let mut whole: Vec<_> = single
        .iter()
        .flat_map(|b| (0..b.batch_size).map(move |i| (b.ids[i], b.labels[i], b.patch(1, i))))
        .collect();
    whole.sort_by_key(|s| s.0);
    assert_eq!(seen, whole, "a sample depends on (seed, epoch, image), not on the rank layout");
}

#[test]
fn dropping_the_stream_early_stops_the_workers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 40, 32);
    let loader =
        Loader::new(ds, LoaderConfig { prefetch: 1, ..config(Scheme::SiplV1, 1, 2) }).expect("l");
    let t = Instant::now();
    let mut stream = loader.epoch(0, 0);
    assert!(stream.next().expect("one").is_ok());
    drop(stream); // workers wait for tickets: they must be released and joined
    assert!(t.elapsed() < Duration::from_secs(20));
}

/// Flips a byte inside the compressed pixels of row 1 of the first shard.
fn corrupt_row(ds: &Dataset) -> std::path::PathBuf {
    let path = ds.shards()[0].path().to_owned();
    let blob = ShardReader::open(&path).expect("open").record(1).expect("r").pixels_zstd.to_vec();
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes.windows(blob.len()).position(|w| w == blob.as_slice()).expect("blob");
    bytes[at + blob.len() / 2] ^= 0x55;
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn a_corrupt_row_is_an_error_naming_shard_and_row_or_is_skipped_and_counted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 12, 32);
    let shard = corrupt_row(&ds);
    let ds = Arc::new(Dataset::open(&tmp.path().join("ds")).expect("reopen"));
    let cfg = LoaderConfig { shuffle: false, ..config(Scheme::Opl, 4, 2) };
    let err = Loader::new(ds.clone(), cfg)
        .expect("l")
        .epoch(0, 0)
        .find_map(|r| r.err())
        .expect("an error");
    let text = err.to_string();
    assert!(text.contains(&shard.display().to_string()) && text.contains("row 1"), "{text}");
    let skip = Loader::new(ds, LoaderConfig { corrupt: CorruptPolicy::Skip, ..cfg }).expect("l");
    assert!(skip.epoch(0, 0).all(|r| r.is_ok()));
    assert_eq!(skip.skipped(), 1);
}

#[test]
fn a_truncated_shard_is_an_error_naming_the_shard() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 12, 32);
    let path = ds.shards()[1].path().to_owned();
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = Dataset::open(&tmp.path().join("ds")).err().expect("truncated");
    assert!(err.to_string().contains("shard-00001.arrow"), "{err}");
}

#[test]
fn bad_datasets_are_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ds = dataset(tmp.path(), 6, 32);
    let err = Loader::new(ds.clone(), config(Scheme::SiplV1, 8, 2)).err().expect("too few");
    assert!(matches!(err, LoaderError::TooFew { have: 6, batch: 8, .. }), "{err}");

    let small = dataset(&tmp.path().join("small"), 4, 8);
    let err = Loader::new(small, config(Scheme::SiplV1, 2, 2)).err().expect("too small");
    assert!(err.to_string().contains("too small for the 3x3 patch grid"), "{err}");

    let empty_root = tmp.path().join("empty");
    std::fs::create_dir_all(empty_root.join("imgs")).expect("mkdir");
    std::fs::write(empty_root.join("imgs/text.png"), b"not a png").expect("write");
    let empty = ingest_folder(&empty_root.join("imgs"), &empty_root.join("ds"), Some(32), 10_000);
    let err = Loader::new(empty, config(Scheme::Opl, 1, 1)).err().expect("empty");
    assert!(matches!(err, LoaderError::Empty(_)), "{err}");

    let mixed_root = tmp.path().join("mixed");
    for (i, w) in [32u32, 40].iter().enumerate() {
        let img = image::RgbImage::from_pixel(*w, 32, image::Rgb([9, 9, 9]));
        std::fs::create_dir_all(&mixed_root).expect("mkdir");
        img.save(mixed_root.join(format!("{i}.png"))).expect("save");
    }
    let mixed = ingest_folder(&mixed_root, &tmp.path().join("mixed-ds"), None, 10_000);
    let err = Loader::new(mixed, config(Scheme::Opl, 1, 1)).err().expect("mixed sizes");
    assert!(matches!(err, LoaderError::ImageSize { width: 40, height: 32, .. }), "{err}");
}
