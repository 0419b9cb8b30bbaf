//! Frozen-encoder features (METHOD.md "Downstream evaluation"): image /255 → bilinear resize to the
//! input size (torchvision `Resize` semantics) → ImageNet normalisation (no colour projection) →
//! encoder in eval mode, no gradients. The encoder is frozen, so features computed once are exact
//! for every epoch of a head trained without augmentation ("cached" mode); with AutoAugment
//! ("faithful" mode) the images change every epoch and so do their features.
//!
//! [`Preprocess`] hooks in per-image transforms: on the decoded uint8 image (AutoAugment) and
//! on the resized float image before normalisation (the t-SNE study's style draws). Images of a
//! batch are prepared in parallel (rayon), then embedded in one encoder pass.

use std::path::Path;

use rayon::prelude::*;
use sipl_loader::augment::resize::resize;
use sipl_loader::augment::{MEAN, STD};
use sipl_loader::planar::Planar;
use sipl_shards::Dataset;
use sipl_train::checkpoint::load_model;
use sipl_train::model::{EMBEDDING, PretextModel};
use tch::{Device, Kind, Tensor, nn};

use crate::EvalError;

/// A transform of the decoded uint8 RGB image (HWC, width, height) of dataset image `index`.
pub type U8Transform<'a> = &'a (dyn Fn(usize, &mut [u8], usize, usize) + Sync);
/// A transform of the resized float image ([0, 1], CHW) before normalisation.
pub type FloatTransform<'a> = &'a (dyn Fn(&mut Planar) + Sync);

/// Per-image transforms around the fixed resize and normalisation.
#[derive(Clone, Copy, Default)]
pub struct Preprocess<'a> {
    pub on_u8: Option<U8Transform<'a>>,
    pub on_float: Option<FloatTransform<'a>>,
}

/// A pretext model's encoder, frozen.
pub struct Encoder {
    _vs: nn::VarStore,
    model: PretextModel,
    device: Device,
}

impl Encoder {
    /// From pretext weights (`best`/`final.safetensors`), or randomly initialised as
    /// torchvision initialises ResNet-18 (the baseline row) when `weights` is `None`.
    pub fn load(weights: Option<&Path>, device: Device, seed: i64) -> Result<Self, EvalError> {
        tch::manual_seed(seed);
        let mut vs = nn::VarStore::new(device);
        let model = PretextModel::new(&vs.root());
        match weights {
            Some(w) => load_model(w, &vs)?,
            None => sipl_train::model::torchvision_init(&vs),
        }
        vs.freeze();
        Ok(Encoder { _vs: vs, model, device })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Embeddings [N, 1000] of images `indices` of `ds` at `input_size`², in batches.
    pub fn embed(
        &self,
        ds: &Dataset,
        indices: &[usize],
        input_size: usize,
        batch: usize,
    ) -> Result<Tensor, EvalError> {
        self.embed_with(ds, indices, input_size, batch, Preprocess::default())
    }

    /// As [`Encoder::embed`], with per-image transforms.
    ///
    /// # Errors
    /// `input_size` or `batch` out of range, or a batch that would not fit in memory
    /// ([`check_batch`]); an image that does not decode.
    pub fn embed_with(
        &self,
        ds: &Dataset,
        indices: &[usize],
        input_size: usize,
        batch: usize,
        pre: Preprocess,
    ) -> Result<Tensor, EvalError> {
        self.embed_mode(ds, indices, input_size, batch, pre, false)
    }

    /// Embeddings [N, 1000] of `indices` as ONE batch with the encoder's BatchNorm layers in
    /// training mode: batch statistics, and the running statistics updated (momentum 0.1) as
    /// a side effect. Weights stay frozen. The authors' downstream variant
    /// ([`crate::downstream::EncoderBn::Train`]).
    pub fn embed_train_mode(
        &self,
        ds: &Dataset,
        indices: &[usize],
        input_size: usize,
        pre: Preprocess,
    ) -> Result<Tensor, EvalError> {
        self.embed_mode(ds, indices, input_size, indices.len().max(1), pre, true)
    }

    fn embed_mode(
        &self,
        ds: &Dataset,
        indices: &[usize],
        input_size: usize,
        batch: usize,
        pre: Preprocess,
        train: bool,
    ) -> Result<Tensor, EvalError> {
        let images = Images { ds, indices, input_size, batch, pre };
        embed_model(&self.model, self.device, &images, train)
    }
}

/// Which images an encoder embeds, and how they are prepared.
#[derive(Clone, Copy)]
pub struct Images<'a> {
    pub ds: &'a Dataset,
    pub indices: &'a [usize],
    /// Side the images are resized to, in [32, 1024].
    pub input_size: usize,
    /// Images per encoder pass.
    pub batch: usize,
    pub pre: Preprocess<'a>,
}

/// Embeddings [N, 1000] of `images` by `model`'s encoder on `device`, without gradients:
/// BatchNorm in eval mode (running statistics, left as they are), or with `train` in training
/// mode (batch statistics, running statistics updated). The one embedding path of the frozen
/// [`Encoder`] and of the training monitor ([`crate::monitor`]), which reads the encoder
/// being trained.
///
/// # Errors
/// `input_size` or `batch` out of range, or a batch that would not fit in memory
/// ([`check_batch`]); an image that does not decode.
pub fn embed_model(
    model: &PretextModel,
    device: Device,
    images: &Images,
    train: bool,
) -> Result<Tensor, EvalError> {
    let Images { ds, indices, input_size, batch, pre } = *images;
    check_batch(batch, input_size, device)?;
    let mut out = Vec::with_capacity(indices.len().div_ceil(batch));
    let n = 3 * input_size * input_size;
    let mut pixels = Vec::new();
    for chunk in indices.chunks(batch) {
        pixels.resize(chunk.len() * n, 0.0);
        pixels
            .par_chunks_mut(n)
            .zip(chunk.par_iter())
            .try_for_each(|(dst, &i)| prepare(ds, i, input_size, pre, dst))?;
        let x = Tensor::from_slice(&pixels)
            .view([chunk.len() as i64, 3, input_size as i64, input_size as i64])
            .to_device(device);
        out.push(tch::no_grad(|| model.embed(&x, train)));
    }
    if out.is_empty() {
        return Ok(Tensor::zeros([0, EMBEDDING], (Kind::Float, device)));
    }
    Ok(Tensor::cat(&out, 0))
}

/// Bytes per input pixel of one image in a frozen ResNet-18 pass on the CPU, activations and
/// copies (eval mode, no gradients). Measured as the peak RSS growth of `sipl eval downstream`
/// from batch 4 to 32: 363 at 224², 235 at 112²; rounded up.
const CPU_ACTIVATION_BYTES_PER_PIXEL: u64 = 400;

/// Host memory one encoder batch takes: the prepared float images (3 × size² each), and on
/// the CPU the encoder's activations.
pub fn batch_bytes(batch: usize, input_size: usize, device: Device) -> u64 {
    let pixels = (batch as u64).saturating_mul((input_size as u64).saturating_pow(2));
    let per_pixel = 12 + if device == Device::Cpu { CPU_ACTIVATION_BYTES_PER_PIXEL } else { 0 };
    pixels.saturating_mul(per_pixel)
}

/// Checks `--input-size` (`sipl_limits::INPUT_SIZE`), `--batch` (`sipl_limits::BATCH`) and
/// that one batch fits in half of this machine's memory ([`batch_bytes`]).
pub fn check_batch(batch: usize, input_size: usize, device: Device) -> Result<(), EvalError> {
    sipl_limits::INPUT_SIZE.check("--input-size", input_size)?;
    sipl_limits::BATCH.check("--batch", batch)?;
    let what = format!(
        "batches of {batch} images at {input_size}² on {}",
        sipl_train::device::device_name(device)
    );
    sipl_limits::check_memory("--batch", batch, batch_bytes(batch, input_size, device), &what)?;
    Ok(())
}

/// Decodes image `index`, transforms, resizes and normalises it into `dst` (3 × size²).
fn prepare(
    ds: &Dataset,
    index: usize,
    size: usize,
    pre: Preprocess,
    dst: &mut [f32],
) -> Result<(), EvalError> {
    let mut rgb = Vec::new();
    let rec = ds.decode_into(index, &mut rgb)?;
    let (w, h) = (rec.width as usize, rec.height as usize);
    if let Some(f) = pre.on_u8 {
        f(index, &mut rgb, w, h);
    }
    let img = Planar::from_rgb8_window(&rgb, w, (0, 0), (h, w));
    let mut img = resize(&img, size, size);
    if let Some(f) = pre.on_float {
        f(&mut img);
    }
    let plane = size * size;
    for c in 0..3 {
        for (d, v) in dst[c * plane..][..plane].iter_mut().zip(&img.data[c * plane..][..plane]) {
            *d = (v - MEAN[c]) / STD[c];
        }
    }
    Ok(())
}
