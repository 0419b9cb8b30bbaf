//! Writer → reader round trip, and the defects `verify` and the reader must catch.

mod common;

use std::path::Path;

use common::{pixels, write_dataset};
use sipl_shards::{DatasetMeta, ShardError, ShardReader, verify};

#[test]
fn rows_read_back_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    let ds = sipl_shards::Dataset::open(tmp.path()).expect("open");
    assert_eq!(ds.len(), 5);
    assert_eq!(ds.shards().len(), 2);
    let mut buf = Vec::new();
    for i in 0..5usize {
        let rec = ds.decode_into(i, &mut buf).expect("decode");
        assert_eq!(rec.id, i as u64);
        assert_eq!(rec.path, format!("img{i}.png"));
        assert_eq!(rec.label, (i % 2 == 0).then_some(i as i32));
        assert_eq!((rec.width, rec.height), (8 + i as u32, 6));
        assert_eq!(buf, pixels(8 + i as u32, 6, i as u8 + 1));
    }
    assert_eq!(ds.locate(3), Some((1, 0)));
    assert!(ds.record(5).is_err());
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.images, report.shards, report.manifest_entries), (5, 2, 5));
}

/// Offset of the first byte of row `row`'s compressed pixels inside the shard file.
fn blob_offset(path: &Path, row: usize) -> usize {
    let reader = ShardReader::open(path).expect("open");
    let blob = reader.record(row).expect("rec").pixels_zstd.to_vec();
    let bytes = std::fs::read(path).expect("read");
    bytes.windows(blob.len()).position(|w| w == blob.as_slice()).expect("blob in file")
}

#[test]
fn a_flipped_pixel_byte_is_caught_naming_shard_and_row() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    let shard = tmp.path().join("shards/shard-00001.arrow");
    let off = blob_offset(&shard, 1) + 8;
    let mut bytes = std::fs::read(&shard).expect("read");
    bytes[off] ^= 0x40;
    std::fs::write(&shard, bytes).expect("write");
    let reader = ShardReader::open(&shard).expect("structure intact");
    let err = reader.decode_into(1, &mut Vec::new()).expect_err("corrupt row");
    assert!(matches!(err, ShardError::BadRow { row: 1, .. }), "{err}");
    assert!(err.to_string().contains("shard-00001.arrow"), "{err}");
    let report = verify(tmp.path()).expect("verify");
    assert!(!report.ok());
    let all = report.problems.join("\n");
    assert!(all.contains("shard-00001.arrow: file hash differs"), "{all}");
    assert!(all.contains("row 1"), "{all}");
}

#[test]
fn truncated_and_garbage_shards_are_errors_not_panics() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    let shard = tmp.path().join("shards/shard-00000.arrow");
    let bytes = std::fs::read(&shard).expect("read");
    for cut in [0, 5, 9, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&shard, &bytes[..cut]).expect("write");
        let err = ShardReader::open(&shard).err().expect("truncated shard must not open");
        assert!(err.to_string().contains("shard-00000.arrow"), "{err}");
    }
    std::fs::write(&shard, b"definitely not arrow at all, just some text bytes").expect("write");
    assert!(ShardReader::open(&shard).is_err());
    let report = verify(tmp.path()).expect("verify");
    assert!(report.problems.iter().any(|p| p.starts_with("shards/shard-00000.arrow")));
}

#[test]
fn missing_pieces_are_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    std::fs::remove_file(tmp.path().join("shards/shard-00001.arrow")).expect("rm");
    std::fs::write(tmp.path().join("shards/shard-00009.arrow.tmp"), b"partial").expect("stray");
    let report = verify(tmp.path()).expect("verify");
    let all = report.problems.join("\n");
    assert!(all.contains("shard-00001.arrow: cannot read"), "{all}");
    assert!(all.contains("shard-00009.arrow.tmp: leftover temporary"), "{all}");
    assert!(
        all.contains("shard rows have no kept manifest entry") || all.contains("points at missing"),
        "{all}"
    );

    std::fs::remove_file(tmp.path().join("dataset.json")).expect("rm");
    let err = sipl_shards::Dataset::open(tmp.path()).err().expect("incomplete");
    assert!(matches!(err, ShardError::Incomplete { .. }), "{err}");
}

#[test]
fn a_newer_format_version_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    let p = tmp.path().join("dataset.json");
    let text = std::fs::read_to_string(&p)
        .expect("read")
        .replace("\"format_version\": 1", "\"format_version\": 99");
    std::fs::write(&p, text).expect("write");
    let err = DatasetMeta::load(tmp.path()).expect_err("version");
    assert!(matches!(err, ShardError::Version { found: 99, .. }), "{err}");
}

#[test]
fn a_dataset_json_naming_the_wrong_shard_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    let mut meta = DatasetMeta::load(tmp.path()).expect("meta");
    // Both entries now name the first shard, with matching row counts: only ids tell.
    meta.shards[1].file = meta.shards[0].file.clone();
    meta.shards[1].rows = meta.shards[0].rows;
    meta.save(tmp.path()).expect("save");
    let e = sipl_shards::Dataset::open(tmp.path()).err().expect("refused").to_string();
    assert!(e.contains("first id 0, dataset.json says 3"), "{e}");
}

#[test]
fn manifests_without_the_orientation_column_still_read() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Int32Array, StringArray, UInt32Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;

    // The 10-column layout written before `orientation` existed.
    let fields = [
        ("path", DataType::Utf8, false),
        ("kept", DataType::Boolean, false),
        ("reason_code", DataType::Utf8, true),
        ("reason", DataType::Utf8, true),
        ("label", DataType::Int32, true),
        ("width", DataType::UInt32, true),
        ("height", DataType::UInt32, true),
        ("shard", DataType::UInt32, true),
        ("row", DataType::UInt32, true),
        ("source_bytes", DataType::UInt64, false),
    ];
    let schema = Arc::new(Schema::new(
        fields.iter().map(|(n, t, null)| Field::new(*n, t.clone(), *null)).collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["a.jpg", "b.jpg"])),
        Arc::new(BooleanArray::from(vec![true, false])),
        Arc::new(StringArray::from(vec![None, Some("not-rgb")])),
        Arc::new(StringArray::from(vec![None, Some("grayscale")])),
        Arc::new(Int32Array::from(vec![Some(0), None])),
        Arc::new(UInt32Array::from(vec![Some(8), Some(9)])),
        Arc::new(UInt32Array::from(vec![Some(6), Some(7)])),
        Arc::new(UInt32Array::from(vec![Some(0), None])),
        Arc::new(UInt32Array::from(vec![Some(0), None])),
        Arc::new(UInt64Array::from(vec![100, 200])),
    ];
    let batch = arrow::array::RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("manifest.parquet");
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path).expect("create"), schema, None)
        .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    let entries = sipl_shards::read_manifest(&path).expect("an older manifest reads");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[1].reason_code.as_deref(), entries[1].orientation),
        (Some("not-rgb"), None)
    );

    // And a current one round-trips its orientations.
    let mut new = entries.clone();
    new[0].orientation = Some(6);
    sipl_shards::write_manifest(&path, &new).expect("write");
    assert_eq!(sipl_shards::read_manifest(&path).expect("read"), new);
}

#[test]
fn a_dataset_identity_is_the_hash_of_its_dataset_json() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_dataset(tmp.path());
    let ds = sipl_shards::Dataset::open(tmp.path()).expect("open");
    let bytes = std::fs::read(tmp.path().join("dataset.json")).expect("read");
    let want = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    assert_eq!(ds.identity(), want);
    assert_eq!(sipl_shards::identity(tmp.path()).expect("identity"), want);
    let err = sipl_shards::identity(&tmp.path().join("nowhere")).expect_err("no set");
    assert!(matches!(err, ShardError::Incomplete { .. }), "{err}");
}
