//! Frozen-encoder features (SPEC "Downstream evaluation"): image /255 → bilinear resize to the
//! input size (torchvision `Resize` semantics) → ImageNet normalisation (no colour projection)
//! → encoder in eval mode, no gradients. The encoder is frozen, so features computed once are
//! exact for every epoch of a head trained without augmentation ("cached" mode).

use std::path::Path;

use sipl_shards::Dataset;
use sipl_train::augment::resize::resize;
use sipl_train::augment::{MEAN, STD};
use sipl_train::checkpoint::load_model;
use sipl_train::model::{EMBEDDING, PretextModel};
use sipl_train::planar::Planar;
use tch::{Device, Kind, Tensor, nn};

use crate::EvalError;

/// A pretext model's encoder, frozen.
pub struct Encoder {
    _vs: nn::VarStore,
    model: PretextModel,
    device: Device,
}

impl Encoder {
    /// From pretext weights (`best`/`final.safetensors`), or randomly initialised (the
    /// baseline row) when `weights` is `None`.
    pub fn load(weights: Option<&Path>, device: Device, seed: i64) -> Result<Self, EvalError> {
        tch::manual_seed(seed);
        let mut vs = nn::VarStore::new(device);
        let model = PretextModel::new(&vs.root());
        if let Some(w) = weights {
            load_model(w, &vs)?;
        }
        vs.freeze();
        Ok(Encoder { _vs: vs, model, device })
    }

    /// Embeddings [N, 1000] of images `indices` of `ds` at `input_size`², in batches.
    pub fn embed(
        &self,
        ds: &Dataset,
        indices: &[usize],
        input_size: usize,
        batch: usize,
    ) -> Result<Tensor, EvalError> {
        let mut out = Vec::with_capacity(indices.len().div_ceil(batch.max(1)));
        let mut rgb = Vec::new();
        for chunk in indices.chunks(batch.max(1)) {
            let mut pixels = Vec::with_capacity(chunk.len() * 3 * input_size * input_size);
            for &i in chunk {
                let rec =
                    ds.decode_into(i, &mut rgb).map_err(|e| EvalError::Data(e.to_string()))?;
                let (w, h) = (rec.width as usize, rec.height as usize);
                let img = Planar::from_rgb8_window(&rgb, w, (0, 0), (h, w));
                let img = resize(&img, input_size, input_size);
                let n = input_size * input_size;
                for c in 0..3 {
                    pixels.extend(
                        img.data[c * n..(c + 1) * n].iter().map(|v| (v - MEAN[c]) / STD[c]),
                    );
                }
            }
            let x = Tensor::from_slice(&pixels)
                .view([chunk.len() as i64, 3, input_size as i64, input_size as i64])
                .to_device(self.device);
            out.push(tch::no_grad(|| self.model.embed(&x, false)));
        }
        if out.is_empty() {
            return Ok(Tensor::zeros([0, EMBEDDING], (Kind::Float, self.device)));
        }
        Ok(Tensor::cat(&out, 0))
    }
}
