//! Greedy generation with a llama-architecture GGUF (SmolLM2-135M-Instruct
//! Q4_1, or the generated tiny model of [`super::tiny`]).
//!
//! The GGUF bytes come from the [`LoadedModel`]; candle reads them through a
//! `Cursor` (`gguf_file::Content::read`, then
//! `quantized_llama::ModelWeights::from_gguf`), with the quantized tensors
//! kept as they are (native quantized matmuls). The prompt is formatted with
//! the GGUF's chat template ([`PromptTemplate`]), prefilled in one forward
//! pass, then decoded one token at a time by argmax (`shared/specs/model.md`
//! §2.2). Never samples, never re-quantizes, never reopens a path.
//!
//! Streaming: [`Generator::generate_with`] hands each token to a callback as
//! soon as it is decoded, with the text it completes ([`TokenStep`]). The
//! byte-level tokenizer can split one UTF-8 character over several tokens, so
//! the bytes of an incomplete character are held back until the token that
//! completes it (or the end); the step texts concatenate exactly to
//! [`Generation::text`], which is checked before the generation is returned.

use std::io::Cursor;
use std::ops::ControlFlow;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::{self, ModelWeights};

use super::compute::{ComputePath, check_numeric_env, gguf_quantization};
use super::gguf_tokenizer::{GgufTokenizer, PromptTemplate};
use super::{InferError, file_name, one_file};
use crate::model::LoadedModel;

/// The most bytes a prompt may have (before the template is applied).
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;
/// The most tokens one generation may ask for.
pub const MAX_NEW_TOKENS: u32 = 2048;
/// GGUF `general.architecture` values this generator runs.
const SUPPORTED_ARCH: &str = "llama";

/// One generation's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Generation {
    /// The generated text, special tokens (and so the stop token) left out.
    pub text: String,
    /// Every generated token id, in order, including the stop token when the
    /// generation ended with one.
    pub token_ids: Vec<u32>,
    /// The token ids of the formatted prompt, as fed to the model.
    pub prompt_token_ids: Vec<u32>,
    /// Why generation stopped.
    pub stop_reason: StopReason,
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced a stop token (the last of `token_ids`).
    Eos,
    /// `max_tokens` tokens were produced.
    MaxTokens,
}

/// One generated token, handed to the callback of [`Generator::generate_with`]
/// as soon as it is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStep {
    /// 0-based position among the generated tokens.
    pub index: usize,
    /// The token id (the stop token too, as in [`Generation::token_ids`]).
    pub id: u32,
    /// The text this token completes; empty for a stop token or while a
    /// character split over tokens is incomplete. The texts of all steps
    /// concatenate to [`Generation::text`].
    pub text: String,
}

/// A loaded generative model, ready for greedy generation.
pub struct Generator {
    model: ModelWeights,
    tokenizer: GgufTokenizer,
    device: Device,
    context: usize,
    compute: ComputePath,
}

impl Generator {
    /// Loads the one `.gguf` file of `model` on the default device: the CPU,
    /// or CUDA device 0 when built with the `cuda` feature.
    pub fn from_loaded(model: &LoadedModel) -> Result<Self, InferError> {
        Self::from_loaded_on(model, &default_device()?)
    }

    /// Loads the one `.gguf` file of `model` on `device`. Refuses (before
    /// loading any weight) when [`check_numeric_env`] does.
    pub fn from_loaded_on(model: &LoadedModel, device: &Device) -> Result<Self, InferError> {
        check_numeric_env()?;
        let file = one_file(model, "`.gguf` file", |f| file_name(f).ends_with(".gguf"))?;
        let mut reader = Cursor::new(file.bytes.as_slice());
        let content =
            gguf_file::Content::read(&mut reader).map_err(InferError::candle("reading gguf"))?;

        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != SUPPORTED_ARCH {
            return Err(InferError::Unsupported {
                what: "general.architecture",
                found: arch,
                supported: SUPPORTED_ARCH,
            });
        }
        let context = match content.metadata.get("llama.context_length") {
            None => quantized_llama::MAX_SEQ_LEN,
            Some(v) => v.to_u32().map_err(|e| InferError::Metadata {
                key: "llama.context_length",
                reason: e.to_string(),
            })? as usize,
        }
        // candle precomputes rotary tables for MAX_SEQ_LEN positions only.
        .min(quantized_llama::MAX_SEQ_LEN);

        check_shape(&content)?;
        let tokenizer = GgufTokenizer::from_gguf(&content)?;
        let quantization = gguf_quantization(&content);
        let weights = ModelWeights::from_gguf(content, &mut reader, device)
            .map_err(InferError::candle("loading gguf weights"))?;
        Ok(Self {
            model: weights,
            tokenizer,
            device: device.clone(),
            context,
            compute: ComputePath::new(device, DType::F32, quantization),
        })
    }

    /// Generates greedily from `prompt` (formatted with [`Self::template`])
    /// until a stop token or `max_tokens` tokens.
    pub fn generate(&mut self, prompt: &str, max_tokens: u32) -> Result<Generation, InferError> {
        self.generate_with(prompt, max_tokens, |_| ControlFlow::Continue(()))
    }

    /// [`Self::generate`], calling `on_token` with each token as soon as it
    /// is decoded (before the next forward pass). When `on_token` breaks,
    /// generation stops at once with [`InferError::Cancelled`]. Input is
    /// checked before the first forward pass, so a refused prompt never
    /// reaches `on_token`.
    pub fn generate_with(
        &mut self,
        prompt: &str,
        max_tokens: u32,
        mut on_token: impl FnMut(&TokenStep) -> ControlFlow<()>,
    ) -> Result<Generation, InferError> {
        if prompt.is_empty() {
            return Err(InferError::Empty {
                what: "prompt".into(),
            });
        }
        if prompt.len() > MAX_PROMPT_BYTES {
            return Err(InferError::TooLong {
                what: "prompt".into(),
                found: prompt.len(),
                max: MAX_PROMPT_BYTES,
                unit: "bytes",
            });
        }
        if max_tokens == 0 || max_tokens > MAX_NEW_TOKENS {
            return Err(InferError::MaxTokens {
                found: max_tokens,
                max: MAX_NEW_TOKENS,
            });
        }
        if let Some(token) = self.tokenizer.control_token_in(prompt) {
            return Err(InferError::ControlToken {
                what: "prompt".into(),
                token: token.to_owned(),
            });
        }
        let formatted = self.tokenizer.template.format(prompt);
        let prompt_token_ids = self.tokenizer.encode(&formatted)?;
        if prompt_token_ids.len() + max_tokens as usize > self.context {
            return Err(InferError::ContextOverflow {
                prompt_tokens: prompt_token_ids.len(),
                max_tokens,
                context: self.context,
            });
        }

        self.model.clear_kv_cache();
        let mut streamed = String::new();
        let result = self.decode(&prompt_token_ids, max_tokens as usize, |step| {
            streamed.push_str(&step.text);
            on_token(step)
        });
        self.model.clear_kv_cache();
        let (token_ids, stop_reason) = result?;
        let shown = match stop_reason {
            StopReason::Eos => token_ids.split_last().map_or(&[][..], |(_, rest)| rest),
            StopReason::MaxTokens => &token_ids[..],
        };
        let text = self.tokenizer.decode(shown)?;
        // Fail closed: what was streamed must be exactly what the receipt
        // will commit to.
        if streamed != text {
            return Err(InferError::StreamText {
                streamed: streamed.len(),
                decoded: text.len(),
            });
        }
        Ok(Generation {
            text,
            token_ids,
            prompt_token_ids,
            stop_reason,
        })
    }

    /// How prompts are formatted before tokenizing.
    pub fn template(&self) -> &PromptTemplate {
        &self.tokenizer.template
    }

    /// The usable context in tokens (prompt plus generated).
    pub fn context_len(&self) -> usize {
        self.context
    }

    /// The compute path every generation of this generator takes.
    pub fn compute_path(&self) -> &ComputePath {
        &self.compute
    }

    /// Token ids of `text` as given (no template), for tests and tools.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, InferError> {
        self.tokenizer.encode(text)
    }

    /// Text of `ids`, special tokens left out.
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, InferError> {
        self.tokenizer.decode(ids)
    }

    /// Prefill, then argmax decoding; `on_token` sees each token before the
    /// next forward pass.
    fn decode(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        mut on_token: impl FnMut(&TokenStep) -> ControlFlow<()>,
    ) -> Result<(Vec<u32>, StopReason), InferError> {
        let mut out = Vec::with_capacity(max_tokens);
        let mut text = TextStream::new(&self.tokenizer);
        let input = Tensor::new(prompt, &self.device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(InferError::candle("prompt tensor"))?;
        let logits = self
            .model
            .forward(&input, 0)
            .map_err(InferError::candle("prefill"))?;
        let mut next = argmax(&logits, 0)?;
        let mut pos = prompt.len();
        loop {
            let index = out.len();
            out.push(next);
            let stop = if self.tokenizer.stop_ids.binary_search(&next).is_ok() {
                // The stop token is not part of the text (see `generate`).
                Some(StopReason::Eos)
            } else {
                text.push(next);
                (out.len() >= max_tokens).then_some(StopReason::MaxTokens)
            };
            let step = TokenStep {
                index,
                id: next,
                text: match stop {
                    Some(_) => text.finish()?,
                    None => text.stable()?,
                },
            };
            if on_token(&step).is_break() {
                return Err(InferError::Cancelled { after: out.len() });
            }
            if let Some(reason) = stop {
                return Ok((out, reason));
            }
            let input = Tensor::new(&[next], &self.device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(InferError::candle("token tensor"))?;
            let logits = self
                .model
                .forward(&input, pos)
                .map_err(InferError::candle("decode step"))?;
            next = argmax(&logits, out.len())?;
            pos += 1;
        }
    }
}

/// Turns generated token ids into text one token at a time.
///
/// It decodes a window of ids (those since the last point where the text was
/// complete), emits what the window's text adds beyond what was already
/// emitted, and holds back trailing U+FFFD: that is what the lossy UTF-8
/// decoding gives for the bytes of a character the next token may complete.
/// When a window's text has no such tail it is complete and the window
/// restarts, so each token costs a decode of a few ids, not of the whole
/// output.
struct TextStream<'t> {
    tokenizer: &'t GgufTokenizer,
    window: Vec<u32>,
    /// The part of the window's text already emitted.
    emitted: String,
}

impl<'t> TextStream<'t> {
    fn new(tokenizer: &'t GgufTokenizer) -> Self {
        Self {
            tokenizer,
            window: Vec::new(),
            emitted: String::new(),
        }
    }

    fn push(&mut self, id: u32) {
        self.window.push(id);
    }

    /// The new text that no later token can change.
    fn stable(&mut self) -> Result<String, InferError> {
        let full = self.tokenizer.decode(&self.window)?;
        let stable = full.trim_end_matches(char::REPLACEMENT_CHARACTER);
        let new = self.delta(stable)?;
        if stable.len() == full.len() {
            self.window.clear();
            self.emitted.clear();
        } else {
            stable.clone_into(&mut self.emitted);
        }
        Ok(new)
    }

    /// All the text not emitted yet, held-back bytes included: the end.
    fn finish(&mut self) -> Result<String, InferError> {
        let full = self.tokenizer.decode(&self.window)?;
        let new = self.delta(&full)?;
        self.window.clear();
        self.emitted.clear();
        Ok(new)
    }

    fn delta(&self, text: &str) -> Result<String, InferError> {
        text.strip_prefix(self.emitted.as_str())
            .map(str::to_owned)
            .ok_or(InferError::StreamText {
                streamed: self.emitted.len(),
                decoded: text.len(),
            })
    }
}

/// Checks the head counts candle divides by, so a malformed GGUF is an
/// error rather than a panic inside `from_gguf`.
fn check_shape(content: &gguf_file::Content) -> Result<(), InferError> {
    let get = |key: &'static str| -> Result<u32, InferError> {
        let v = content.metadata.get(key).ok_or(InferError::Metadata {
            key,
            reason: "missing".into(),
        })?;
        let n = v.to_u32().map_err(|e| InferError::Metadata {
            key,
            reason: e.to_string(),
        })?;
        if n == 0 {
            return Err(InferError::Metadata {
                key,
                reason: "is zero".into(),
            });
        }
        Ok(n)
    };
    let heads = get("llama.attention.head_count")?;
    let kv_heads = get("llama.attention.head_count_kv")?;
    let embedding = get("llama.embedding_length")?;
    let rope_dim = get("llama.rope.dimension_count")?;
    if heads % kv_heads != 0 {
        return Err(InferError::Metadata {
            key: "llama.attention.head_count_kv",
            reason: format!("{kv_heads} does not divide head_count {heads}"),
        });
    }
    if embedding % heads != 0 || rope_dim > embedding / heads {
        return Err(InferError::Metadata {
            key: "llama.embedding_length",
            reason: format!(
                "{embedding} is not a multiple of head_count {heads} with rope dimension {rope_dim} ≤ head size"
            ),
        });
    }
    Ok(())
}

/// The index of the largest logit; the lowest index wins ties. NaN or
/// infinite logits are an error rather than an arbitrary pick.
fn argmax(logits: &Tensor, step: usize) -> Result<u32, InferError> {
    let values: Vec<f32> = logits
        .squeeze(0)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1())
        .map_err(InferError::candle("reading logits"))?;
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err(InferError::NonFinite { step });
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    let (i, _) = best.ok_or(InferError::NonFinite { step })?;
    u32::try_from(i).map_err(|_| InferError::NonFinite { step })
}

/// The CPU, or CUDA device 0 with the `cuda` feature (an error, not a silent
/// fallback to the CPU, when there is no usable GPU).
pub(crate) fn default_device() -> Result<Device, InferError> {
    #[cfg(feature = "cuda")]
    {
        Device::new_cuda(0).map_err(InferError::candle("opening cuda device 0"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_tokenizer() -> GgufTokenizer {
        let bytes = crate::infer::tiny::tiny_llama_gguf(1).unwrap();
        let content = gguf_file::Content::read(&mut Cursor::new(bytes)).unwrap();
        GgufTokenizer::from_gguf(&content).unwrap()
    }

    #[test]
    fn text_stream_holds_back_characters_split_over_tokens() {
        let tok = tiny_tokenizer();
        // The tiny vocabulary has no merges for these: one token per byte.
        let text = "aé漢🤖b";
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids.len(), text.len(), "{ids:?}");
        let mut stream = TextStream::new(&tok);
        let mut steps = Vec::new();
        for &id in &ids {
            stream.push(id);
            steps.push(stream.stable().unwrap());
        }
        assert_eq!(
            steps,
            ["a", "", "é", "", "", "漢", "", "", "", "🤖", "b"],
            "each character comes out whole, with the token that completes it"
        );
        assert_eq!(stream.finish().unwrap(), "");
        assert_eq!(steps.concat(), tok.decode(&ids).unwrap());
    }

    #[test]
    fn text_stream_flushes_an_incomplete_tail_at_the_end() {
        let tok = tiny_tokenizer();
        let ids = tok.encode("x漢").unwrap();
        // "x" then the first two of the three bytes of 漢: the end comes
        // before the character is complete.
        let cut = &ids[..3];
        let mut stream = TextStream::new(&tok);
        stream.push(cut[0]);
        assert_eq!(stream.stable().unwrap(), "x");
        stream.push(cut[1]);
        assert_eq!(stream.stable().unwrap(), "");
        stream.push(cut[2]);
        let last = stream.finish().unwrap();
        assert_eq!(last, "\u{FFFD}");
        assert_eq!(format!("x{last}"), tok.decode(cut).unwrap());
    }

    #[test]
    fn argmax_takes_the_lowest_index_on_ties_and_refuses_nan() {
        let t = Tensor::new(&[[0.5f32, 2.0, -1.0, 2.0]], &Device::Cpu).unwrap();
        assert_eq!(argmax(&t, 0).unwrap(), 1);
        let t = Tensor::new(&[[0.5f32, f32::NAN]], &Device::Cpu).unwrap();
        assert!(matches!(
            argmax(&t, 3),
            Err(InferError::NonFinite { step: 3 })
        ));
        let t = Tensor::new(&[[f32::NEG_INFINITY]], &Device::Cpu).unwrap();
        assert!(matches!(argmax(&t, 0), Err(InferError::NonFinite { .. })));
    }
}
