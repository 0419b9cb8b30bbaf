//! A small complete dataset for the shard tests.
#![allow(dead_code)]

use std::path::Path;

use sipl_shards::format::{MANIFEST_FILE, SHARD_DIR, xxh3_hex};
use sipl_shards::{
    Counts, DatasetMeta, EncodedImage, FileInfo, ManifestEntry, ShardWriter, write_manifest,
};

pub fn pixels(w: u32, h: u32, seed: u8) -> Vec<u8> {
    (0..w * h * 3).map(|i| (i as u8).wrapping_mul(seed) ^ seed).collect()
}

/// A complete two-shard dataset of five images in `dir`.
pub fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir.join(SHARD_DIR)).expect("mkdir");
    let mut meta = DatasetMeta::new(serde_json::json!({"test": 1}));
    let mut manifest = Vec::new();
    let mut writer = ShardWriter::new(dir, 0, 0);
    for i in 0..5u32 {
        let (w, h) = (8 + i, 6);
        let path = format!("img{i}.png");
        let label = (i % 2 == 0).then_some(i as i32);
        let img = EncodedImage::encode(path.clone(), label, (h, w), &pixels(w, h, i as u8 + 1), 3)
            .expect("encode");
        manifest.push(ManifestEntry {
            path,
            kept: true,
            reason_code: None,
            reason: None,
            label,
            width: Some(w),
            height: Some(h),
            shard: Some(meta.shards.len() as u32),
            row: Some(writer.len() as u32),
            source_bytes: 100,
            orientation: None,
        });
        writer.push(img);
        if writer.len() == 3 {
            let next = ShardWriter::new(dir, 1, 3);
            meta.shards.push(std::mem::replace(&mut writer, next).finish().expect("finish"));
        }
    }
    meta.shards.push(writer.finish().expect("finish"));
    write_manifest(&dir.join(MANIFEST_FILE), &manifest).expect("manifest");
    let bytes = std::fs::read(dir.join(MANIFEST_FILE)).expect("read");
    meta.manifest =
        FileInfo { file: MANIFEST_FILE.into(), bytes: bytes.len() as u64, xxh3: xxh3_hex(&bytes) };
    meta.counts = Counts { seen: 5, kept: 5, rejected: 0, ..Default::default() };
    meta.source_bytes = 500;
    meta.save(dir).expect("save");
}
