//! The embedding study (METHOD.md "Embedding analysis", the paper's Figure 4): `per_class` images
//! of each of two classes, two draws of the style augmentation (its colour ops, one parameter draw
//! per style, applied to every image) → four sets; each encoder embeds them; PCA to 50 dimensions,
//! t-SNE to 2 (exact, seeded, one thread: the same picture every time).
//!
//! Two numbers make the picture measurable:
//! - **twin-NN**: the fraction of images whose nearest neighbour is the same image under the
//!   other style (style-invariant encoders pair twins; style-sensitive ones do not), in the
//!   1000-d embedding and in the 2-D map;
//! - **separability**: silhouette coefficients of the points grouped by class and grouped by
//!   style (PCA space); `class − style` > 0 means the space is organised by content, < 0 by style.

use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sipl_loader::augment::{ColourParams, StyleConfig, apply_colour};
use sipl_loader::planar::Planar;
use sipl_shards::Dataset;
use tch::{Kind, Tensor};

use sipl_limits::{Ints, RangeError, Reals};

use crate::EvalError;
use crate::features::{Encoder, FloatTransform, Preprocess};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TsneConfig {
    pub per_class: usize,
    pub pca_dims: i64,
    pub perplexity: f32,
    pub epochs: usize,
    pub input_size: usize,
    pub seed: u64,
}

impl Default for TsneConfig {
    fn default() -> Self {
        TsneConfig {
            per_class: 50,
            pca_dims: 50,
            perplexity: 30.0,
            epochs: 1000,
            input_size: 224,
            seed: 0,
        }
    }
}

/// Images per encoder pass.
pub const BATCH: usize = 64;
/// Images per class (`--per-class`): exact t-SNE and the scores are quadratic in the
/// 4 × per_class points.
pub const PER_CLASS: Ints = Ints::new(2, 500);
/// Perplexity (`--perplexity`), before the bound the point count sets.
pub const PERPLEXITY: Reals = Reals::closed(1.0, 100.0);
/// t-SNE iterations (`--epochs`): the first 250 exaggerate the clusters (early
/// exaggeration), so fewer leave a map that was never relaxed.
pub const ITERATIONS: Ints = Ints::new(251, 100_000);

impl TsneConfig {
    /// Points in the study: 2 classes × `per_class` images × 2 style draws.
    pub fn points(&self) -> usize {
        4 * self.per_class
    }

    /// Checks every value against its range (named as `sipl eval tsne`'s flags), including
    /// the perplexity the point count supports (3 × perplexity below the points; bhtsne
    /// panics otherwise).
    pub fn validate(&self) -> Result<(), RangeError> {
        PER_CLASS.check("--per-class", self.per_class)?;
        let perplexity = self.perplexity as f64;
        PERPLEXITY.check("--perplexity", perplexity)?;
        let points = self.points();
        let most = ((points - 1) as f64 / 3.0 * 10.0).floor() / 10.0;
        Reals::closed(1.0, most.min(PERPLEXITY.hi)).check("--perplexity", perplexity).map_err(
            |e| {
                e.note(format!(
                    "3 × perplexity must stay below the {points} points of the study: 2 classes × {} images × 2 style draws",
                    self.per_class
                ))
            },
        )?;
        ITERATIONS.check("--epochs", self.epochs)?;
        sipl_limits::INPUT_SIZE.check("--input-size", self.input_size)?;
        Ints::new(2, 1000).check("pca_dims", self.pca_dims)?;
        Ok(())
    }
}

/// The chosen images: `per_class` of each class, in dataset order.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub classes: [i32; 2],
    /// Dataset indices, class 0's first.
    pub indices: Vec<usize>,
}

/// The first `per_class` images of each of `classes` (default: the first two classes, in label
/// order, that have enough images). Too few images in a class is an error naming it.
pub fn select(
    ds: &Dataset,
    classes: Option<[i32; 2]>,
    per_class: usize,
) -> Result<Selection, EvalError> {
    let mut by_class: std::collections::BTreeMap<i32, Vec<usize>> = Default::default();
    for i in 0..ds.len() {
        let r = ds.record(i)?;
        let label = r.label.ok_or_else(|| {
            EvalError::Data(format!("{}: unlabelled image; the study needs classes", r.path))
        })?;
        by_class.entry(label).or_default().push(i);
    }
    let name = |c: i32| ds.meta().classes.get(c as usize).cloned().unwrap_or(c.to_string());
    let classes = match classes {
        Some(c) => c,
        None => {
            let ok: Vec<i32> =
                by_class.iter().filter(|(_, v)| v.len() >= per_class).map(|(&c, _)| c).collect();
            match ok[..] {
                [a, b, ..] => [a, b],
                _ => {
                    let most = by_class.values().map(Vec::len).max().unwrap_or(0);
                    return Err(EvalError::Data(format!(
                        "too few images per class for the t-SNE selection: {} class(es) have {per_class} images (the largest has {most})",
                        ok.len()
                    )));
                }
            }
        }
    };
    if classes[0] == classes[1] {
        return Err(EvalError::Data(format!("the two classes must differ (both {})", classes[0])));
    }
    let mut indices = Vec::with_capacity(2 * per_class);
    for c in classes {
        let have = by_class.get(&c).map_or(0, Vec::len);
        if have < per_class {
            return Err(EvalError::Data(format!(
                "too few images per class for the t-SNE selection: class {} has {have}, {per_class} needed",
                name(c)
            )));
        }
        indices.extend(&by_class[&c][..per_class]);
    }
    Ok(Selection { classes, indices })
}

/// The two style draws: one colour-parameter draw of A each, from `seed`.
pub fn style_draws(cfg: &TsneConfig) -> Vec<ColourParams> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x57_11E5);
    (0..2).map(|_| ColourParams::draw(&StyleConfig::default(), &mut rng)).collect()
}

/// One encoder's study.
#[derive(Debug, Clone)]
pub struct Study {
    /// Points in order style-major: style s, image k is row `s · 2·per_class + k`.
    pub map: Vec<[f32; 2]>,
    pub class: Vec<usize>,
    pub style: Vec<usize>,
    pub scores: Scores,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
/// Fields in alphabetical order: the order `tsne.json` has always had.
pub struct Scores {
    pub class_silhouette: f64,
    /// class − style silhouette.
    pub separability: f64,
    pub style_silhouette: f64,
    pub twin_nn_embedding: f64,
    pub twin_nn_map: f64,
}

/// Embeds the selection under every style draw, then PCA, t-SNE and the scores.
pub fn study(
    encoder: &Encoder,
    ds: &Dataset,
    sel: &Selection,
    styles: &[ColourParams],
    cfg: &TsneConfig,
) -> Result<Study, EvalError> {
    let n = sel.indices.len();
    if styles.len() != 2 {
        return Err(EvalError::Data("the study compares exactly two style draws".into()));
    }
    cfg.validate()?;
    if n != 2 * cfg.per_class {
        return Err(EvalError::Data(format!(
            "the selection has {n} images, the config asks for 2 × {}",
            cfg.per_class
        )));
    }
    let points = n * styles.len();
    let style_cfg = StyleConfig::default();
    let mut parts = Vec::with_capacity(styles.len());
    for colour in styles {
        let f = |img: &mut Planar| apply_colour(img, colour, &style_cfg);
        let pre = Preprocess { on_u8: None, on_float: Some(&f as FloatTransform) };
        parts.push(encoder.embed_with(ds, &sel.indices, cfg.input_size, BATCH, pre)?);
    }
    let emb = Tensor::cat(&parts, 0).to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let class: Vec<usize> = (0..points).map(|i| (i % n) / (n / 2)).collect();
    let style: Vec<usize> = (0..points).map(|i| i / n).collect();
    let pca = pca(&emb, cfg.pca_dims);
    let map = tsne(&pca, cfg)?;
    let rows = |t: &Tensor| -> Vec<Vec<f64>> {
        let d = t.size()[1] as usize;
        let flat = Vec::<f64>::try_from(t.contiguous().view(-1)).expect("f64 tensor");
        flat.chunks(d).map(<[f64]>::to_vec).collect()
    };
    let (emb_rows, pca_rows) = (rows(&emb), rows(&pca));
    let map_rows: Vec<Vec<f64>> = map.iter().map(|p| vec![p[0] as f64, p[1] as f64]).collect();
    let twin = |i: usize| (i + n) % points; // with two styles: the other style's same image
    let class_s = silhouette(&pca_rows, &class);
    let style_s = silhouette(&pca_rows, &style);
    let scores = Scores {
        twin_nn_embedding: twin_nn(&emb_rows, twin),
        twin_nn_map: twin_nn(&map_rows, twin),
        class_silhouette: class_s,
        style_silhouette: style_s,
        separability: class_s - style_s,
    };
    Ok(Study { map, class, style, scores })
}

/// Rows of `x` [N, D] projected on their top `dims` principal components (SVD of the centred
/// data; at most N − 1 and D components exist).
pub fn pca(x: &Tensor, dims: i64) -> Tensor {
    let centred = x - x.mean_dim(0, true, Kind::Double);
    let (u, s, _v) = centred.svd(true, true);
    let k = dims.min(s.size()[0]);
    u.narrow(1, 0, k) * s.narrow(0, 0, k)
}

/// Exact t-SNE to 2-D from a seeded start, on one thread.
fn tsne(x: &Tensor, cfg: &TsneConfig) -> Result<Vec<[f32; 2]>, EvalError> {
    let d = x.size()[1] as usize;
    let flat: Vec<f32> = Vec::<f32>::try_from(x.to_kind(Kind::Float).contiguous().view(-1))?;
    let rows: Vec<&[f32]> = flat.chunks(d).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // N(0, 1e-4²) by Box–Muller, as t-SNE's usual small random start.
    let start: Vec<f32> = (0..rows.len() * 2)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
            (1e-4 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| EvalError::Data(e.to_string()))?;
    let out = pool.install(|| {
        let mut t: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&rows);
        t.perplexity(cfg.perplexity)
            .epochs(cfg.epochs)
            .initial_embedding(start)
            .exact(|a, b| a.iter().zip(b.iter()).map(|(p, q)| (p - q) * (p - q)).sum::<f32>());
        t.embedding()
    });
    Ok(out.chunks(2).map(|p| [p[0], p[1]]).collect())
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// The fraction of points whose nearest other point is `twin(i)`.
pub fn twin_nn(x: &[Vec<f64>], twin: impl Fn(usize) -> usize) -> f64 {
    let hits = (0..x.len())
        .filter(|&i| {
            let nearest = (0..x.len())
                .filter(|&j| j != i)
                .min_by(|&a, &b| dist2(&x[i], &x[a]).total_cmp(&dist2(&x[i], &x[b])));
            nearest == Some(twin(i))
        })
        .count();
    hits as f64 / x.len().max(1) as f64
}

/// The mean silhouette coefficient of `x` grouped by `group` (Euclidean distances).
pub fn silhouette(x: &[Vec<f64>], group: &[usize]) -> f64 {
    let groups = group.iter().max().map_or(0, |g| g + 1);
    let mut total = 0.0;
    for i in 0..x.len() {
        let (mut sum, mut count) = (vec![0.0; groups], vec![0usize; groups]);
        for j in (0..x.len()).filter(|&j| j != i) {
            sum[group[j]] += dist2(&x[i], &x[j]).sqrt();
            count[group[j]] += 1;
        }
        let own = group[i];
        if count[own] == 0 {
            continue; // a singleton's silhouette is 0
        }
        let a = sum[own] / count[own] as f64;
        let b = (0..groups)
            .filter(|&g| g != own && count[g] > 0)
            .map(|g| sum[g] / count[g] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b).max(1e-12);
        }
    }
    total / x.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_see_twins_and_groups() {
        // Two tight clusters by class; each point's twin sits right next to it.
        let mut x = Vec::new();
        for s in 0..2 {
            for k in 0..4 {
                let c = (k / 2) as f64 * 10.0;
                x.push(vec![c + k as f64 * 0.5 + s as f64 * 0.01, 0.0]);
            }
        }
        let class: Vec<usize> = (0..8).map(|i| (i % 4) / 2).collect();
        let style: Vec<usize> = (0..8).map(|i| i / 4).collect();
        assert_eq!(twin_nn(&x, |i| (i + 4) % 8), 1.0);
        assert!(silhouette(&x, &class) > 0.8);
        assert!(silhouette(&x, &style) < 0.0);
        assert_eq!(twin_nn(&x, |i| (i + 1) % 8), 0.0);
    }

    #[test]
    fn pca_keeps_the_leading_directions() {
        let x = Tensor::from_slice(&[0.0f64, 0.0, 0.1, 2.0, 0.0, -0.1, 4.0, 0.0, 0.0]).view([3, 3]);
        let p = pca(&x, 2);
        assert_eq!(p.size(), vec![3, 2]);
        let first = Vec::<f64>::try_from(p.select(1, 0).abs()).expect("f64");
        assert!((first[0] - 2.0).abs() < 0.01 && first[1].abs() < 0.01, "{first:?}");
    }
}
