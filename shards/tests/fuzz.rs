//! Bounded fuzzing (proptest) of everything that reads a dataset: shard files, `dataset.json`
//! and `manifest.parquet`, mutated by flipped bits, truncation, overwritten and inserted bytes.
//! The promise: an error or a correct read, never a panic; and `verify` reports every change
//! to a shard or manifest file.
//!
//! CI runs `FUZZ_CASES` cases per property (default 48); `make fuzz` runs many more. A failure
//! proptest finds is saved under `proptest-regressions/` and replayed first on every run.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::write_dataset;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sipl_shards::format::{MANIFEST_FILE, SHARD_DIR};
use sipl_shards::{Dataset, ShardReader, verify};

fn config() -> ProptestConfig {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// One change to a file's bytes; positions are fractions of the file's length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: f64, bit: u8 },
    Truncate { to: f64 },
    Overwrite { at: f64, bytes: Vec<u8> },
    Insert { at: f64, bytes: Vec<u8> },
    Flips(Vec<(f64, u8)>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let frac = 0.0..1.0f64;
    prop_oneof![
        (frac.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        frac.clone().prop_map(|to| Mutation::Truncate { to }),
        (frac.clone(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        (frac.clone(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        prop::collection::vec((frac, 0u8..8), 2..16).prop_map(Mutation::Flips),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let pos = |at: f64, len: usize| ((at * len as f64) as usize).min(len.saturating_sub(1));
    match m {
        Mutation::Flip { at, bit } => {
            let i = pos(*at, b.len());
            b[i] ^= 1 << bit;
        }
        Mutation::Truncate { to } => b.truncate(pos(*to, b.len())),
        Mutation::Overwrite { at, bytes } => {
            let i = pos(*at, b.len());
            for (k, v) in bytes.iter().enumerate() {
                if let Some(x) = b.get_mut(i + k) {
                    *x = *v;
                }
            }
        }
        Mutation::Insert { at, bytes } => {
            let i = pos(*at, b.len());
            b.splice(i..i, bytes.iter().copied());
        }
        Mutation::Flips(flips) => {
            for (at, bit) in flips {
                let i = pos(*at, b.len());
                b[i] ^= 1 << bit;
            }
        }
    }
    b
}

/// The pristine dataset, written once per test process.
fn pristine() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tmp");
        write_dataset(d.path());
        d
    })
    .path()
}

/// A copy of the pristine dataset with `file` (relative) replaced by its mutation; returns
/// the directory and whether the bytes changed.
fn mutated_copy(file: &str, m: &Mutation) -> (tempfile::TempDir, bool) {
    let dir = tempfile::tempdir().expect("tmp");
    copy_dir(pristine(), dir.path());
    let path = dir.path().join(file);
    let before = std::fs::read(&path).expect("read");
    let after = apply(&before, m);
    std::fs::write(&path, &after).expect("write");
    (dir, after != before)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// The pristine images' pixels, by dataset index.
fn pristine_pixels() -> &'static Vec<Vec<u8>> {
    static PIXELS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PIXELS.get_or_init(|| {
        let ds = Dataset::open(pristine()).expect("pristine");
        let mut buf = Vec::new();
        (0..ds.len())
            .map(|i| ds.decode_into(i, &mut buf).map(|_| buf.clone()).expect("decode"))
            .collect()
    })
}

/// Reads everything a consumer would: every record, every decoded image. An error must name
/// a file of the dataset; a decoded image must be exactly the pristine one.
fn read_everything(dir: &Path) {
    let Ok(ds) = Dataset::open(dir) else { return };
    let mut buf = Vec::new();
    for i in 0..ds.len() {
        let _ = ds.record(i);
        match ds.decode_into(i, &mut buf) {
            Ok(_) => assert!(
                pristine_pixels().get(i) == Some(&buf),
                "image {i} decoded to other pixels than were stored"
            ),
            Err(e) => assert!(e.to_string().contains("shard-"), "error names no shard: {e}"),
        }
    }
}

fn shard_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(pristine().join(SHARD_DIR))
        .expect("shards")
        .map(|e| format!("{SHARD_DIR}/{}", e.expect("entry").file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_mutated_shard_is_an_error_or_a_correct_read_and_verify_reports_it(
        m in mutation(), which in 0usize..2
    ) {
        let file = &shard_files()[which];
        let (dir, changed) = mutated_copy(file, &m);
        if let Ok(reader) = ShardReader::open(&dir.path().join(file)) {
            let mut buf = Vec::new();
            for row in 0..reader.len() + 1 {
                let _ = reader.record(row);
                let _ = reader.decode_into(row, &mut buf);
            }
        }
        read_everything(dir.path());
        let report = verify(dir.path()).expect("dataset.json is intact");
        prop_assert_eq!(report.ok(), !changed, "verify: {:?}", report.problems);
    }

    #[test]
    fn a_mutated_manifest_is_reported(m in mutation()) {
        let (dir, changed) = mutated_copy(MANIFEST_FILE, &m);
        let _ = sipl_shards::read_manifest(&dir.path().join(MANIFEST_FILE));
        let report = verify(dir.path()).expect("dataset.json is intact");
        prop_assert_eq!(report.ok(), !changed, "verify: {:?}", report.problems);
    }

    #[test]
    fn a_mutated_dataset_json_is_an_error_or_reads_correctly(m in mutation()) {
        let (dir, _) = mutated_copy("dataset.json", &m);
        read_everything(dir.path());
        if let Ok(report) = verify(dir.path())
            && report.ok()
        {
            // Whatever the JSON now says, a clean verify means every image reads back.
            let ds = Dataset::open(dir.path()).expect("verified set opens");
            let mut buf = Vec::new();
            for i in 0..ds.len() {
                prop_assert!(ds.decode_into(i, &mut buf).is_ok());
            }
        }
    }
}

#[test]
fn regression_inputs_stay_handled() {
    // Mutations at the edges: empty file, one byte, the trailer and the magic.
    for file in shard_files().iter().map(PathBuf::from).chain([PathBuf::from(MANIFEST_FILE)]) {
        let file = file.to_string_lossy().into_owned();
        for m in [
            Mutation::Truncate { to: 0.0 },
            Mutation::Overwrite { at: 0.0, bytes: vec![0; 8] },
            Mutation::Overwrite { at: 0.9999, bytes: vec![0xff; 16] },
            Mutation::Insert { at: 0.5, bytes: vec![0; 1] },
        ] {
            let (dir, changed) = mutated_copy(&file, &m);
            read_everything(dir.path());
            let report = verify(dir.path()).expect("report");
            assert_eq!(report.ok(), !changed, "{file} {m:?}: {:?}", report.problems);
        }
    }
}

#[test]
fn a_row_claiming_a_huge_image_is_an_error_before_any_allocation() {
    // Found by the fuzzer: a damaged width/height made decode_into ask for 37 GB and abort.
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(tmp.path().join(SHARD_DIR)).expect("mkdir");
    let mut row = sipl_shards::EncodedImage::encode("a.png".into(), None, (4, 4), &[7; 48], 3)
        .expect("encode");
    (row.height, row.width) = (60_000, 60_000);
    let mut w = sipl_shards::ShardWriter::new(tmp.path(), 0, 0);
    w.push(row);
    let info = w.finish().expect("finish");
    let reader = ShardReader::open(&tmp.path().join(&info.file)).expect("open");
    let mut buf = Vec::new();
    let e = reader.decode_into(0, &mut buf).expect_err("size mismatch").to_string();
    assert!(e.contains("pixels decompress to 48 bytes, but 60000x60000x3 is"), "{e}");
    assert!(buf.capacity() < 1 << 20, "nothing large was allocated");
}

#[test]
fn every_single_byte_change_of_a_shard_and_the_manifest_is_handled_and_reported() {
    // Deterministic sweep (a regression net for the decoder panics the fuzzer found): each byte
    // of one shard and of the manifest inverted in turn.
    for file in [shard_files()[0].clone(), MANIFEST_FILE.to_owned()] {
        let len = std::fs::metadata(pristine().join(&file)).expect("meta").len() as usize;
        for i in 0..len {
            let at = (i as f64 + 0.5) / len as f64;
            let (dir, changed) = mutated_copy(&file, &Mutation::Overwrite { at, bytes: vec![0] });
            if !changed {
                continue;
            }
            read_everything(dir.path());
            let report = verify(dir.path()).expect("report");
            assert!(!report.ok(), "{file} byte {i} changed unnoticed");
        }
    }
}
