//! The source layouts, their order and labels, pre-processing, determinism across thread
//! counts, and the protection of existing output.

mod common;

use common::{job, tree_bytes, write_jpeg};
use sipl_ingest::{IngestError, SourceKind, Split, ingest};
use sipl_shards::{Dataset, read_manifest, verify};

#[test]
fn imagenet_val_layout_with_devkit_labels_and_pretext_preprocessing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imagenet");
    let images = root.join("ILSVRC2012_img_val");
    write_jpeg(&images.join("ILSVRC2012_val_00000002.JPEG"), 300, 200, 2);
    write_jpeg(&images.join("ILSVRC2012_val_00000001.JPEG"), 200, 400, 1);
    write_jpeg(&images.join("ILSVRC2012_val_00000003.JPEG"), 256, 256, 3);
    let gt = root.join("ILSVRC2012_devkit_t12/data");
    std::fs::create_dir_all(&gt).expect("mkdir");
    std::fs::write(gt.join("ILSVRC2012_validation_ground_truth.txt"), "65\n970\n1\n").expect("gt");
    let out = tmp.path().join("out");
    ingest(&job(SourceKind::ImagenetVal, &root, None, &out)).expect("ingest");
    let ds = Dataset::open(&out).expect("open");
    let recs: Vec<_> = (0..3).map(|i| ds.record(i).expect("record")).collect();
    assert_eq!(recs[0].path, "ILSVRC2012_img_val/ILSVRC2012_val_00000001.JPEG");
    assert_eq!(recs.iter().map(|r| r.label).collect::<Vec<_>>(), [Some(64), Some(969), Some(0)]);
    assert!(recs.iter().all(|r| (r.width, r.height) == (224, 224)));
    assert_eq!(ds.meta().classes.len(), 1000);
    assert!(verify(&out).expect("verify").ok());
}

#[test]
fn imagenet_val_without_devkit_is_unlabelled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imagenet");
    write_jpeg(&root.join("ILSVRC2012_img_val/ILSVRC2012_val_00000001.JPEG"), 64, 64, 1);
    let out = tmp.path().join("out");
    ingest(&job(SourceKind::ImagenetVal, &root, None, &out)).expect("ingest");
    assert_eq!(Dataset::open(&out).expect("open").record(0).expect("rec").label, None);
}

fn tiny_fixture(root: &std::path::Path) {
    let mut ann = String::new();
    for (i, wnid) in ["n02", "n01", "n02", "n03"].iter().enumerate() {
        write_jpeg(&root.join(format!("val/images/val_{i}.JPEG")), 64, 64, i as u8);
        ann.push_str(&format!("val_{i}.JPEG\t{wnid}\t0\t0\t63\t63\n"));
    }
    write_jpeg(&root.join("val/images/val_10.JPEG"), 64, 64, 10);
    ann.push_str("val_10.JPEG\tn01\t0\t0\t63\t63\n");
    std::fs::write(root.join("val/val_annotations.txt"), ann).expect("ann");
    for wnid in ["n03", "n01"] {
        for i in 0..2 {
            write_jpeg(&root.join(format!("train/{wnid}/images/{wnid}_{i}.JPEG")), 64, 64, 5);
        }
    }
    write_jpeg(&root.join("test/images/test_0.JPEG"), 64, 64, 9);
}

#[test]
fn tiny_imagenet_splits_labels_and_natural_order() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("tiny-imagenet-200");
    tiny_fixture(&root);
    let val = tmp.path().join("val");
    ingest(&job(SourceKind::TinyImagenet, &root, Some(Split::Val), &val)).expect("val");
    let ds = Dataset::open(&val).expect("open");
    let got: Vec<(String, Option<i32>)> = (0..ds.len())
        .map(|i| ds.record(i).map(|r| (r.path.to_owned(), r.label)).expect("r"))
        .collect();
    let want = [("val_0", 1), ("val_1", 0), ("val_2", 1), ("val_3", 2), ("val_10", 0)];
    assert_eq!(got.len(), want.len());
    for ((path, label), (name, l)) in got.iter().zip(want) {
        assert_eq!(path, &format!("val/images/{name}.JPEG"));
        assert_eq!(*label, Some(l));
    }
    assert_eq!(ds.meta().classes, ["n01", "n02", "n03"]);
    assert_eq!((ds.record(0).expect("r").width, ds.record(0).expect("r").height), (64, 64));

    let train = tmp.path().join("train");
    ingest(&job(SourceKind::TinyImagenet, &root, Some(Split::Train), &train)).expect("train");
    let ds = Dataset::open(&train).expect("open");
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.record(0).expect("r").path, "train/n01/images/n01_0.JPEG");
    assert_eq!(ds.record(0).expect("r").label, Some(0));
    assert_eq!(ds.record(3).expect("r").label, Some(1));

    let test = tmp.path().join("test");
    ingest(&job(SourceKind::TinyImagenet, &root, Some(Split::Test), &test)).expect("test");
    let ds = Dataset::open(&test).expect("open");
    assert_eq!((ds.len(), ds.record(0).expect("r").label), (1, None));
}

#[test]
fn folder_labels_come_from_parent_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    write_jpeg(&root.join("cats/a.jpg"), 40, 40, 1);
    write_jpeg(&root.join("dogs/b.jpg"), 40, 40, 2);
    write_jpeg(&root.join("loose.jpg"), 40, 40, 3);
    std::fs::write(root.join("notes.txt"), "not an image name: not seen").expect("txt");
    let out = tmp.path().join("out");
    let mut j = job(SourceKind::Folder, &root, None, &out);
    (j.settings.resize, j.settings.crop) = (Some(32), Some(32));
    ingest(&j).expect("ingest");
    let m = read_manifest(&out.join("manifest.parquet")).expect("manifest");
    let labels: Vec<(&str, Option<i32>)> = m.iter().map(|e| (e.path.as_str(), e.label)).collect();
    assert_eq!(labels, [("cats/a.jpg", Some(0)), ("dogs/b.jpg", Some(1)), ("loose.jpg", None)]);
}

#[test]
fn output_is_byte_identical_for_any_thread_count() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    sipl_ingest::synth::write_synth(
        &root,
        sipl_ingest::synth::SynthSpec { classes: 3, per_class: 20, size: 48, seed: 5 },
    )
    .expect("synth");
    let mut outs = Vec::new();
    for threads in [1, 2, 3] {
        let out = tmp.path().join(format!("out{threads}"));
        let mut j = job(SourceKind::Folder, &root, None, &out);
        (j.settings.resize, j.settings.crop, j.settings.shard_max_images) = (Some(40), Some(32), 7);
        j.threads = Some(threads);
        ingest(&j).expect("ingest");
        outs.push(tree_bytes(&out));
    }
    assert!(outs[0].len() > 5, "several shards: {}", outs[0].len());
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
}

#[test]
fn existing_output_is_protected() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    write_jpeg(&root.join("a.jpg"), 40, 40, 1);
    let out = tmp.path().join("out");
    let mut j = job(SourceKind::Folder, &root, None, &out);
    (j.settings.resize, j.settings.crop) = (Some(32), Some(32));
    assert!(ingest(&j).expect("first").ran);
    let before = tree_bytes(&out);
    assert!(!ingest(&j).expect("same settings").ran, "same settings: nothing to do");
    // Another zstd level stores the same pixels: still complete, untouched.
    j.settings.zstd_level = 3;
    assert!(!ingest(&j).expect("another level").ran, "a storage setting alone: nothing to do");
    assert_eq!(tree_bytes(&out), before, "nothing was touched");
    j.settings.zstd_level = 1;

    j.settings.crop = Some(16);
    let err = ingest(&j).expect_err("other settings must not overwrite");
    assert!(matches!(err, IngestError::Output { .. }), "{err}");
    assert!(err.to_string().contains("crop: 32 -> 16"), "{err}");
    assert_eq!(tree_bytes(&out), before, "nothing was touched");

    j.force = true;
    assert!(ingest(&j).expect("forced").ran);
    assert_eq!(Dataset::open(&out).expect("open").record(0).expect("r").width, 16);

    let foreign = tmp.path().join("foreign");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("thesis.tex"), "precious").expect("write");
    let mut j2 = j.clone();
    j2.out = foreign.clone();
    let err = ingest(&j2).expect_err("foreign files");
    assert!(err.to_string().contains("thesis.tex"), "{err}");
    assert!(foreign.join("thesis.tex").exists());
}

#[test]
fn a_set_decoded_before_libjpeg_turbo_asks_for_force_naming_the_decoder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("imgs");
    write_jpeg(&root.join("a.jpg"), 40, 40, 1);
    let out = tmp.path().join("out");
    let mut j = job(SourceKind::Folder, &root, None, &out);
    assert!(ingest(&j).expect("first").ran);
    let meta = sipl_shards::DatasetMeta::load(&out).expect("meta");
    let decoder = meta.settings["jpeg_decoder"].as_str().expect("recorded").to_owned();
    assert!(decoder.starts_with("libjpeg-turbo 3."), "{decoder}");
    // What a set made before the change holds: settings without the decoder.
    let mut old = meta.clone();
    old.settings.as_object_mut().expect("object").remove("jpeg_decoder");
    old.settings_fingerprint = sipl_shards::fingerprint(&old.settings);
    old.save(&out).expect("save");
    let before = tree_bytes(&out);
    let err = ingest(&j).expect_err("another decoder's pixels must not count as complete");
    assert!(
        err.to_string().contains("jpeg_decoder") && err.to_string().contains(&decoder),
        "{err}"
    );
    assert_eq!(tree_bytes(&out), before, "nothing was touched");
    j.force = true;
    assert!(ingest(&j).expect("forced").ran);
}
