//! Bounded fuzzing (proptest) of ingest's image intake: JPEG and PNG bytes mutated by flipped
//! bits, truncation and overwritten or inserted bytes go through `decode_rgb` and the JPEG
//! frame walk. The promise: a decoded image of the size its header states, or a rejection
//! with a reason code, never a panic and never an allocation beyond the pixel limit.
//!
//! CI runs `FUZZ_CASES` cases per property (default 48); `make fuzz` runs many more.

mod common;

use std::io::Cursor;

use common::fixtures;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sipl_ingest::intake::{IntakeLimits, decode_rgb};
use sipl_ingest::jpeg_header::read as read_frame;

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

const LIMITS: IntakeLimits = IntakeLimits { min_side: 1, max_pixels: 4096 * 4096 };

/// Valid seeds: a real JPEG from the fixtures and a small RGB PNG made here.
fn seeds() -> Vec<Vec<u8>> {
    let jpeg = std::fs::read(fixtures().join("good.JPEG")).expect("good.JPEG");
    let img = image::RgbImage::from_fn(23, 17, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]));
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("png");
    vec![jpeg, png]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flips(Vec<(f64, u8)>),
    Truncate(f64),
    Overwrite(f64, Vec<u8>),
    Insert(f64, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let frac = 0.0..1.0f64;
    let bytes = prop::collection::vec(any::<u8>(), 1..32);
    prop_oneof![
        prop::collection::vec((frac.clone(), 0u8..8), 1..12).prop_map(Mutation::Flips),
        frac.clone().prop_map(Mutation::Truncate),
        (frac.clone(), bytes.clone()).prop_map(|(a, b)| Mutation::Overwrite(a, b)),
        (frac, bytes).prop_map(|(a, b)| Mutation::Insert(a, b)),
    ]
}

fn apply(src: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = src.to_vec();
    let pos = |at: f64, len: usize| ((at * len as f64) as usize).min(len.saturating_sub(1));
    match m {
        Mutation::Flips(f) => f.iter().for_each(|(at, bit)| {
            let i = pos(*at, b.len());
            b[i] ^= 1 << bit;
        }),
        Mutation::Truncate(at) => b.truncate(pos(*at, b.len())),
        Mutation::Overwrite(at, v) => {
            let i = pos(*at, b.len());
            v.iter().enumerate().for_each(|(k, x)| {
                if let Some(y) = b.get_mut(i + k) {
                    *y = *x;
                }
            });
        }
        Mutation::Insert(at, v) => {
            let i = pos(*at, b.len());
            b.splice(i..i, v.iter().copied());
        }
    }
    b
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_images_decode_to_their_size_or_are_rejected_with_a_reason(
        m in mutation(), which in 0usize..2
    ) {
        let bytes = apply(&seeds()[which], &m);
        let _ = read_frame(&bytes);
        match decode_rgb(&bytes, LIMITS) {
            Ok(img) => {
                prop_assert_eq!(img.pixels.len(), img.width as usize * img.height as usize * 3);
                prop_assert!(u64::from(img.width) * u64::from(img.height) <= LIMITS.max_pixels);
            }
            Err(r) => prop_assert!(!r.code.is_empty() && !r.detail.is_empty(), "{:?}", r),
        }
    }

    #[test]
    fn arbitrary_bytes_are_rejected_or_decoded(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_frame(&bytes);
        if let Err(r) = decode_rgb(&bytes, LIMITS) {
            prop_assert!(!r.code.is_empty());
        }
    }
}

#[test]
fn every_fixture_under_every_single_byte_change_is_handled() {
    // Deterministic sweep: each byte of each seed inverted in turn.
    for seed in seeds() {
        for i in 0..seed.len() {
            let mut b = seed.clone();
            b[i] ^= 0xff;
            let _ = read_frame(&b);
            if let Ok(img) = decode_rgb(&b, LIMITS) {
                assert_eq!(img.pixels.len(), img.width as usize * img.height as usize * 3);
            }
        }
    }
}
