//! The tokenizer and chat template of a GGUF, built from its own metadata
//! (so the one file hash covers weights, tokenizer and template).
//!
//! `shared/specs/model.md` §2.4: an HF `tokenizer.json` is assembled in memory
//! from `tokenizer.ggml.tokens`, `merges` and `token_type` and handed to the
//! `tokenizers` crate. For `tokenizer.ggml.pre = smollm` (llama.cpp's
//! pre-type of the same name) the pre-tokenizer is
//! `Sequence[Digits{individual_digits}, ByteLevel{add_prefix_space: false}]`;
//! the decoder is ByteLevel; the BPE has no unk and no byte fallback; control
//! tokens (`token_type` 3) are special added tokens matched whole. This
//! reproduces the tokenizer HF transformers builds from the same GGUF.
//!
//! Never uses candle's `TokenizerFromGguf`: it pre-tokenizes `smollm` with
//! `add_prefix_space = true`, which turns `system` after `<|im_start|>` into
//! `Ġsystem` and changes the prompt and the generation. Never guesses a
//! tokenizer it does not know: other models or pre-types are refused.

use std::collections::{BTreeSet, HashMap};

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use tokenizers::Tokenizer;

use super::InferError;

/// The GGUF `tokenizer.ggml.model` values supported.
const SUPPORTED_MODELS: &str = "gpt2";
/// The GGUF `tokenizer.ggml.pre` values supported.
const SUPPORTED_PRE: &str = "smollm";
/// GGUF token types (llama.cpp `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;
/// ChatML control tokens.
const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";
/// Tokens that end a generation besides the GGUF's eos token, when present.
const END_TOKENS: [&str; 2] = [IM_END, "<|endoftext|>"];

/// How a user prompt is turned into the text that is tokenized.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromptTemplate {
    /// The GGUF has no `tokenizer.chat_template`: the prompt is tokenized as
    /// given.
    Raw,
    /// The GGUF's template is ChatML (SmolLM2's). One user turn, then the
    /// assistant header, exactly as the template renders
    /// `[{"role": "user", …}]` with `add_generation_prompt = true`:
    /// `<|im_start|>system\n{default_system}<|im_end|>\n` (when the template
    /// inserts a default system turn) `<|im_start|>user\n{prompt}<|im_end|>\n`
    /// `<|im_start|>assistant\n`.
    ChatMl {
        /// The system prompt the template inserts when the conversation has
        /// none, taken verbatim from the template text.
        default_system: Option<String>,
    },
}

impl PromptTemplate {
    /// The text to tokenize for one user prompt.
    pub fn format(&self, prompt: &str) -> String {
        match self {
            Self::Raw => prompt.to_owned(),
            Self::ChatMl { default_system } => {
                let mut s = String::new();
                if let Some(system) = default_system {
                    s.push_str(&format!("{IM_START}system\n{system}{IM_END}\n"));
                }
                s.push_str(&format!(
                    "{IM_START}user\n{prompt}{IM_END}\n{IM_START}assistant\n"
                ));
                s
            }
        }
    }

    /// Recognises the template text of `tokenizer.chat_template`.
    fn detect(template: Option<&str>) -> Result<Self, InferError> {
        let Some(t) = template else {
            return Ok(Self::Raw);
        };
        if !(t.contains(IM_START) && t.contains(IM_END) && t.contains("add_generation_prompt")) {
            return Err(InferError::Unsupported {
                what: "chat template",
                found: t.chars().take(120).collect(),
                supported: "ChatML (<|im_start|> … <|im_end|>) or none",
            });
        }
        let marker = format!("{IM_START}system\n");
        let default_system = match t.split_once(&marker) {
            None => None,
            Some((_, rest)) => {
                let (system, _) = rest.split_once(IM_END).unwrap_or((rest, ""));
                // A literal system prompt, not template code.
                if system.contains(['{', '}', '\'', '"', '+']) {
                    return Err(InferError::Unsupported {
                        what: "chat template default system prompt",
                        found: system.chars().take(120).collect(),
                        supported: "a literal string",
                    });
                }
                Some(system.to_owned())
            }
        };
        Ok(Self::ChatMl { default_system })
    }
}

/// A GGUF's tokenizer with what generation needs to know about its tokens.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    /// The HF tokenizer built from the metadata.
    pub tokenizer: Tokenizer,
    /// Prepended to each prompt when `tokenizer.ggml.add_bos_token` is true.
    pub bos: Option<u32>,
    /// Token ids that end a generation: the eos token, plus `<|im_end|>` and
    /// `<|endoftext|>` when the vocabulary has them. Sorted.
    pub stop_ids: Vec<u32>,
    /// The text of every special (control) token; user text containing one
    /// is refused.
    pub control_tokens: Vec<String>,
    /// How prompts are formatted.
    pub template: PromptTemplate,
}

impl GgufTokenizer {
    /// Builds the tokenizer from `content`'s metadata.
    pub fn from_gguf(content: &Content) -> Result<Self, InferError> {
        let md = Metadata(&content.metadata);
        let model = md.string("tokenizer.ggml.model")?;
        if model != SUPPORTED_MODELS {
            return Err(InferError::Unsupported {
                what: "tokenizer.ggml.model",
                found: model.to_owned(),
                supported: SUPPORTED_MODELS,
            });
        }
        let pre = md.string("tokenizer.ggml.pre")?;
        if pre != SUPPORTED_PRE {
            return Err(InferError::Unsupported {
                what: "tokenizer.ggml.pre",
                found: pre.to_owned(),
                supported: SUPPORTED_PRE,
            });
        }
        let tokens = md.strings("tokenizer.ggml.tokens")?;
        let types = md.ints("tokenizer.ggml.token_type")?;
        if types.len() != tokens.len() {
            return Err(InferError::Metadata {
                key: "tokenizer.ggml.token_type",
                reason: format!("{} entries for {} tokens", types.len(), tokens.len()),
            });
        }
        let merges = md.strings("tokenizer.ggml.merges")?;

        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(tokens.len());
        let mut added = Vec::new();
        let mut control_tokens = Vec::new();
        for (i, (token, ty)) in tokens.iter().zip(&types).enumerate() {
            let id = u32::try_from(i).map_err(|_| InferError::Metadata {
                key: "tokenizer.ggml.tokens",
                reason: "more than 2^32 tokens".into(),
            })?;
            if ids.insert(token, id).is_some() {
                return Err(InferError::Metadata {
                    key: "tokenizer.ggml.tokens",
                    reason: format!("token {token:?} appears twice"),
                });
            }
            vocab.insert((*token).to_owned(), json!(id));
            if *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED {
                let special = *ty == TOKEN_TYPE_CONTROL;
                added.push(json!({"id": id, "content": token, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false, "special": special}));
                if special {
                    control_tokens.push((*token).to_owned());
                }
            }
        }
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for m in &merges {
            let (a, b) = m.split_once(' ').ok_or_else(|| InferError::Metadata {
                key: "tokenizer.ggml.merges",
                reason: format!("merge {m:?} is not two tokens separated by a space"),
            })?;
            merge_pairs.push(json!([a, b]));
        }

        let config = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added, "normalizer": null,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merge_pairs},
        });
        let bytes = serde_json::to_vec(&config).map_err(|source| InferError::Json {
            file: "tokenizer built from gguf metadata".into(),
            source,
        })?;
        let tokenizer =
            Tokenizer::from_bytes(bytes).map_err(InferError::tokenizer("building from gguf"))?;

        let id_of = |key: &'static str| -> Result<u32, InferError> {
            let id = md.u32(key)?;
            if (id as usize) < tokens.len() {
                Ok(id)
            } else {
                Err(InferError::Metadata {
                    key,
                    reason: format!("id {id} outside the vocabulary of {}", tokens.len()),
                })
            }
        };
        let eos = id_of("tokenizer.ggml.eos_token_id")?;
        let add_bos = md
            .optional_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(false);
        let bos = if add_bos {
            Some(id_of("tokenizer.ggml.bos_token_id")?)
        } else {
            None
        };
        let mut stop_ids: BTreeSet<u32> = END_TOKENS
            .iter()
            .filter_map(|t| ids.get(t).copied())
            .collect();
        stop_ids.insert(eos);

        let template = PromptTemplate::detect(md.optional_string("tokenizer.chat_template")?)?;
        if let PromptTemplate::ChatMl { .. } = template {
            for t in [IM_START, IM_END] {
                if !control_tokens.iter().any(|c| c == t) {
                    return Err(InferError::Metadata {
                        key: "tokenizer.ggml.token_type",
                        reason: format!("ChatML template but {t} is not a control token"),
                    });
                }
            }
        }
        Ok(Self {
            tokenizer,
            bos,
            stop_ids: stop_ids.into_iter().collect(),
            control_tokens,
            template,
        })
    }

    /// Token ids of `text` exactly as given (no template), with the bos
    /// token when the GGUF asks for one.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(InferError::tokenizer("encoding"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        ids.extend(self.bos);
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InferError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(InferError::tokenizer("decoding"))
    }

    /// The first control token that `text` contains, if any.
    pub fn control_token_in(&self, text: &str) -> Option<&str> {
        self.control_tokens
            .iter()
            .find(|t| text.contains(t.as_str()))
            .map(String::as_str)
    }
}

/// Typed access to GGUF metadata with errors that name the key.
struct Metadata<'a>(&'a HashMap<String, Value>);

impl<'a> Metadata<'a> {
    fn value(&self, key: &'static str) -> Result<&'a Value, InferError> {
        self.0.get(key).ok_or(InferError::Metadata {
            key,
            reason: "missing".into(),
        })
    }

    fn string(&self, key: &'static str) -> Result<&'a str, InferError> {
        self.value(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|e| wrong(key, &e))
    }

    fn optional_string(&self, key: &'static str) -> Result<Option<&'a str>, InferError> {
        self.0
            .get(key)
            .map(|v| {
                v.to_string()
                    .map(String::as_str)
                    .map_err(|e| wrong(key, &e))
            })
            .transpose()
    }

    fn optional_bool(&self, key: &'static str) -> Result<Option<bool>, InferError> {
        self.0
            .get(key)
            .map(|v| v.to_bool().map_err(|e| wrong(key, &e)))
            .transpose()
    }

    fn u32(&self, key: &'static str) -> Result<u32, InferError> {
        self.value(key)?.to_u32().map_err(|e| wrong(key, &e))
    }

    fn strings(&self, key: &'static str) -> Result<Vec<&'a str>, InferError> {
        self.value(key)?
            .to_vec()
            .map_err(|e| wrong(key, &e))?
            .iter()
            .map(|v| {
                v.to_string()
                    .map(String::as_str)
                    .map_err(|e| wrong(key, &e))
            })
            .collect()
    }

    fn ints(&self, key: &'static str) -> Result<Vec<i64>, InferError> {
        self.value(key)?
            .to_vec()
            .map_err(|e| wrong(key, &e))?
            .iter()
            .map(|v| match v {
                Value::I32(x) => Ok(i64::from(*x)),
                Value::U32(x) => Ok(i64::from(*x)),
                Value::I8(x) => Ok(i64::from(*x)),
                Value::U8(x) => Ok(i64::from(*x)),
                Value::I16(x) => Ok(i64::from(*x)),
                Value::U16(x) => Ok(i64::from(*x)),
                other => Err(InferError::Metadata {
                    key,
                    reason: format!("expected integers, found {:?}", other.value_type()),
                }),
            })
            .collect()
    }
}

fn wrong(key: &'static str, e: &candle_core::Error) -> InferError {
    InferError::Metadata {
        key,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::infer::tiny::tiny_llama_gguf;

    fn tiny_content() -> Content {
        let bytes = tiny_llama_gguf(1).unwrap();
        Content::read(&mut Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn control_tokens_match_whole_and_no_prefix_space_is_added() {
        let t = GgufTokenizer::from_gguf(&tiny_content()).unwrap();
        let system = t.encode("system").unwrap();
        let ids = t.encode("<|im_start|>system").unwrap();
        assert_eq!(ids[0], 1);
        assert_eq!(ids[1..], system[..]);
        // The merges apply: " the" is one token.
        assert_eq!(t.encode(" the").unwrap().len(), 1);
        // Digits split one by one.
        assert_eq!(t.encode("2024").unwrap().len(), 4);
        assert_eq!(
            t.decode(&t.encode("héllo 2024 the\n").unwrap()).unwrap(),
            "héllo 2024 the\n"
        );
        assert_eq!(t.stop_ids, [0, 2]);
        assert_eq!(t.bos, None);
        assert_eq!(t.control_token_in("a <|im_end|> b"), Some("<|im_end|>"));
        assert_eq!(t.control_token_in("a <|im_en b"), None);
    }

    #[test]
    fn unknown_or_malformed_tokenizer_metadata_is_refused() {
        let set = |key: &str, v: Value| {
            let mut c = tiny_content();
            c.metadata.insert(key.to_owned(), v);
            GgufTokenizer::from_gguf(&c).err().unwrap()
        };
        let err = set("tokenizer.ggml.pre", Value::String("llama-bpe".into()));
        assert!(
            matches!(
                err,
                InferError::Unsupported {
                    what: "tokenizer.ggml.pre",
                    ..
                }
            ),
            "{err}"
        );
        let err = set("tokenizer.ggml.model", Value::String("llama".into()));
        assert!(matches!(err, InferError::Unsupported { .. }), "{err}");
        let err = set("tokenizer.ggml.eos_token_id", Value::U32(1 << 20));
        assert!(err.to_string().contains("outside the vocabulary"), "{err}");
        let err = set(
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("ab".into())]),
        );
        assert!(
            matches!(
                err,
                InferError::Metadata {
                    key: "tokenizer.ggml.merges",
                    ..
                }
            ),
            "{err}"
        );
        let err = set(
            "tokenizer.ggml.token_type",
            Value::Array(vec![Value::I32(3)]),
        );
        assert!(
            matches!(
                err,
                InferError::Metadata {
                    key: "tokenizer.ggml.token_type",
                    ..
                }
            ),
            "{err}"
        );
        let err = set(
            "tokenizer.ggml.tokens",
            Value::Array(vec![Value::String("a".into()); 267]),
        );
        assert!(err.to_string().contains("appears twice"), "{err}");
        let mut c = tiny_content();
        c.metadata.remove("tokenizer.ggml.eos_token_id");
        let err = GgufTokenizer::from_gguf(&c).err().unwrap();
        assert_eq!(
            err.to_string(),
            "gguf metadata tokenizer.ggml.eos_token_id: missing"
        );
    }

    const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_is_chatml_with_its_default_system_prompt() {
        let t = PromptTemplate::detect(Some(SMOLLM2_TEMPLATE)).unwrap();
        assert_eq!(
            t,
            PromptTemplate::ChatMl {
                default_system: Some(
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into()
                )
            }
        );
        // The prompt of shared/specs/model.md §2.2.
        assert_eq!(
            t.format("Write a short story about a robot who learns to paint."),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite a short story about a robot who learns to paint.<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn no_template_is_raw_and_unknown_templates_are_refused() {
        assert_eq!(PromptTemplate::detect(None).unwrap(), PromptTemplate::Raw);
        assert_eq!(PromptTemplate::Raw.format("x y"), "x y");
        let llama3 = "{{ '<|start_header_id|>' + message['role'] }}{% if add_generation_prompt %}";
        assert!(matches!(
            PromptTemplate::detect(Some(llama3)),
            Err(InferError::Unsupported { .. })
        ));
        let chatml_no_default = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}";
        assert_eq!(
            PromptTemplate::detect(Some(chatml_no_default)).unwrap(),
            PromptTemplate::ChatMl {
                default_system: None
            }
        );
    }
}
