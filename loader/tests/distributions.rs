//! The random parameters follow torchvision's distributions: ranges, probabilities, the
//! permutation of the jitter order, the crop's scale/ratio and fallback; labels are uniform
//! over all 8 neighbours.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sipl_loader::augment::{ColourParams, StyleConfig, draw_crop};
use sipl_loader::geometry::Geometry;
use sipl_loader::scheme::{SampleSpec, Scheme};

const N: usize = 24_000;

/// |observed − expected| within 5 standard deviations of a binomial count.
fn close(count: usize, n: usize, p: f64) -> bool {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    (count as f64 - mean).abs() <= 5.0 * sd
}

#[test]
fn colour_parameters() {
    let cfg = StyleConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut orders: HashMap<[u8; 4], usize> = HashMap::new();
    let (mut gray, mut solar) = (0, 0);
    let mut lo_hi = [(f32::MAX, f32::MIN); 5];
    for _ in 0..N {
        let c = ColourParams::draw(&cfg, &mut rng);
        *orders.entry(c.order).or_default() += 1;
        gray += c.grayscale as usize;
        solar += c.solarize as usize;
        for (k, v) in
            [c.brightness, c.contrast, c.saturation, c.hue, c.sigma].into_iter().enumerate()
        {
            lo_hi[k] = (lo_hi[k].0.min(v), lo_hi[k].1.max(v));
        }
    }
    assert_eq!(orders.len(), 24, "all 24 orders of the four jitter ops appear");
    assert!(orders.values().all(|&n| close(n, N, 1.0 / 24.0)), "{orders:?}");
    assert!(close(gray, N, 0.05), "grayscale {gray}");
    assert!(close(solar, N, 0.2), "solarize {solar}");
    for (k, (lo, hi)) in
        [(0.2, 1.8), (0.2, 1.8), (0.2, 1.8), (-0.2, 0.2), (1e-10, 0.2)].into_iter().enumerate()
    {
        assert!(lo_hi[k].0 >= lo && lo_hi[k].1 <= hi, "param {k}: {:?}", lo_hi[k]);
        assert!(
            lo_hi[k].0 < lo + 0.01 && lo_hi[k].1 > hi - 0.01,
            "param {k} covers its range: {:?}",
            lo_hi[k]
        );
    }
}

#[test]
fn crop_parameters() {
    let cfg = StyleConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let size = 224;
    let (mut min_area, mut max_area) = (f64::MAX, 0.0f64);
    let (mut min_ratio, mut max_ratio) = (f64::MAX, 0.0f64);
    let mut full = 0;
    for _ in 0..N {
        let c = draw_crop(&cfg, size, &mut rng);
        assert!(c.top + c.height <= size && c.left + c.width <= size, "{c:?}");
        let area = (c.height * c.width) as f64 / (size * size) as f64;
        let ratio = c.width as f64 / c.height as f64;
        (min_area, max_area) = (min_area.min(area), max_area.max(area));
        (min_ratio, max_ratio) = (min_ratio.min(ratio), max_ratio.max(ratio));
        full += (c.height == size && c.width == size) as usize;
    }
    // Rounding of w and h moves area and ratio slightly past the nominal bounds.
    assert!(min_area > 0.31 && min_area < 0.33, "{min_area}");
    assert!(max_area > 0.97, "{max_area}");
    assert!(
        min_ratio > 0.73 && min_ratio < 0.77 && max_ratio > 1.30 && max_ratio < 1.37,
        "{min_ratio} {max_ratio}"
    );
    assert!(full < N / 20, "the centre fallback is rare: {full}");
}

#[test]
fn labels_are_uniform_over_all_eight_neighbours() {
    let spec = SampleSpec {
        scheme: Scheme::Opl,
        geometry: Geometry::new(24, 8).expect("geometry"),
        style: StyleConfig::default(),
    };
    let rgb: Vec<u8> = (0..24 * 24 * 3).map(|i| (i % 251) as u8).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut counts = [0usize; 8];
    let n = 8_000;
    for _ in 0..n {
        counts[spec.patches(&rgb, &mut rng).label as usize] += 1;
    }
    assert!(counts.iter().all(|&c| close(c, n, 1.0 / 8.0)), "{counts:?}");
}
