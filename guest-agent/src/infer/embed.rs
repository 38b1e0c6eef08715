//! Sentence embeddings with a BERT safetensors model (all-MiniLM-L6-v2, or
//! the generated tiny BERT of [`super::tiny`]).
//!
//! `shared/specs/model.md` §2.5: `config.json` deserialises into candle's
//! `bert::Config`; the weights are read from the safetensors bytes
//! (`candle_core::safetensors::load_buffer`), the tokenizer from the
//! `tokenizer.json` bytes with its padding and truncation switched off;
//! `BertModel::forward(ids, token_type_ids = 0, mask = 1)`, then the mean
//! over tokens and L2 normalisation. Each text is its own forward pass (no
//! padding), so a text's embedding does not depend on the other texts of
//! the call.
//!
//! Never truncates: a text over [`MAX_EMBED_TOKENS`] tokens is an error
//! (sentence-transformers would cut it at 256 tokens, the model's
//! `max_seq_length`, and embed the rest of the text nowhere). Never reopens a
//! path: every file comes from the [`LoadedModel`].

use std::collections::BTreeSet;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use super::compute::ComputePath;
use super::generate::default_device;
use super::{InferError, file_name, one_file};
use crate::model::LoadedModel;

/// The most texts one call may embed.
pub const MAX_EMBED_TEXTS: usize = 64;
/// The most bytes one text may have.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// The most tokens one text may have, `[CLS]` and `[SEP]` included: the
/// `max_seq_length` sentence-transformers uses for all-MiniLM-L6-v2 (and
/// never more than the model's `max_position_embeddings`).
pub const MAX_EMBED_TOKENS: usize = 256;

/// A loaded embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    max_tokens: usize,
    dim: usize,
    compute: ComputePath,
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and the one `.safetensors` file
    /// of `model` on the default device (CPU, or CUDA 0 with `cuda`).
    pub fn from_loaded(model: &LoadedModel) -> Result<Self, InferError> {
        Self::from_loaded_on(model, &default_device()?)
    }

    /// As [`Self::from_loaded`], on `device`.
    pub fn from_loaded_on(model: &LoadedModel, device: &Device) -> Result<Self, InferError> {
        super::check_numeric_env()?;
        let config_file = one_file(model, "`config.json`", |f| {
            f.rel_path == "config.json" || f.rel_path.ends_with("/config.json")
        })?;
        let tokenizer_file = one_file(model, "`tokenizer.json`", |f| {
            f.rel_path == "tokenizer.json" || f.rel_path.ends_with("/tokenizer.json")
        })?;
        let weights_file = one_file(model, "`.safetensors` file", |f| {
            file_name(f).ends_with(".safetensors")
        })?;

        let config: Config =
            serde_json::from_slice(&config_file.bytes).map_err(|source| InferError::Json {
                file: config_file.rel_path.clone(),
                source,
            })?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_file.bytes)
            .map_err(InferError::tokenizer("reading tokenizer.json"))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(InferError::tokenizer("switching truncation off"))?;

        let tensors = candle_core::safetensors::load_buffer(&weights_file.bytes, device)
            .map_err(InferError::candle("reading safetensors"))?;
        let dtypes: BTreeSet<String> = tensors
            .values()
            .map(|t| t.dtype().as_str().to_uppercase())
            .collect();
        let quantization = format!(
            "none: safetensors {}",
            dtypes.into_iter().collect::<Vec<_>>().join(" ")
        );
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let bert = BertModel::load(vb, &config).map_err(InferError::candle("loading bert"))?;
        Ok(Self {
            model: bert,
            tokenizer,
            device: device.clone(),
            max_tokens: MAX_EMBED_TOKENS.min(config.max_position_embeddings),
            dim: config.hidden_size,
            compute: ComputePath::new(device, DType::F32, quantization),
        })
    }

    /// One L2-normalised embedding per text, in order.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferError> {
        if texts.is_empty() {
            return Err(InferError::Empty {
                what: "texts".into(),
            });
        }
        if texts.len() > MAX_EMBED_TEXTS {
            return Err(InferError::TooLong {
                what: "texts".into(),
                found: texts.len(),
                max: MAX_EMBED_TEXTS,
                unit: "texts",
            });
        }
        // Check every input before computing anything.
        let mut all_ids = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            all_ids.push(self.token_ids(i, text)?);
        }
        all_ids.iter().map(|ids| self.embed_ids(ids)).collect()
    }

    /// Token ids of text number `index`, `[CLS]` and `[SEP]` included,
    /// checked against the limits.
    pub fn token_ids(&self, index: usize, text: &str) -> Result<Vec<u32>, InferError> {
        if text.trim().is_empty() {
            return Err(InferError::Empty {
                what: format!("text {index}"),
            });
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(InferError::TooLong {
                what: format!("text {index}"),
                found: text.len(),
                max: MAX_TEXT_BYTES,
                unit: "bytes",
            });
        }
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(InferError::tokenizer("encoding"))?;
        let ids = enc.get_ids().to_vec();
        if ids.len() > self.max_tokens {
            return Err(InferError::TooLong {
                what: format!("text {index}"),
                found: ids.len(),
                max: self.max_tokens,
                unit: "tokens",
            });
        }
        Ok(ids)
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The compute path every embedding of this embedder takes.
    pub fn compute_path(&self) -> &ComputePath {
        &self.compute
    }

    fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>, InferError> {
        let c = InferError::candle("embedding");
        let run = || -> candle_core::Result<Vec<f32>> {
            let ids = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
            let type_ids = ids.zeros_like()?;
            let mask = ids.ones_like()?;
            let h = self.model.forward(&ids, &type_ids, Some(&mask))?;
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let pooled = h.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)?;
            let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
            pooled.broadcast_div(&norm)?.squeeze(0)?.to_vec1()
        };
        let v = run().map_err(c)?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(InferError::NonFinite { step: 0 });
        }
        Ok(v)
    }
}
