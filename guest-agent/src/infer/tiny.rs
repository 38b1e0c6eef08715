//! Tiny models with seeded weights, generated in memory, so tests run the
//! same [`Generator`](super::Generator) and [`Embedder`](super::Embedder)
//! code as the reference models in milliseconds and with no download.
//!
//! - [`tiny_llama_gguf`]: a 2-block llama GGUF laid out like SmolLM2's
//!   (Q4_1 block weights, F32 norms, Q8_0 tied `token_embd`), with a GPT-2
//!   byte-level BPE vocabulary in its metadata (`pre = smollm`), the SmolLM2
//!   chat template and ChatML control tokens.
//! - [`tiny_bert_files`]: `config.json`, `tokenizer.json` (WordPiece) and a
//!   F32 `model.safetensors` for a 2-layer BERT.
//!
//! The weights are noise from a seeded generator: the outputs mean nothing,
//! but they are fixed by the seed, which is what tests need. Never used
//! outside tests and demos: these are not models anyone should serve.

use std::io::Cursor;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::json;

use super::InferError;

/// The name to give [`tiny_llama_gguf`]'s bytes on disk.
pub const TINY_GGUF_NAME: &str = "tiny-llama.gguf";
/// The usable context of the tiny llama, in tokens.
pub const TINY_CONTEXT: u32 = 256;

/// SmolLM2's chat template, verbatim from its GGUF.
pub const SMOLLM2_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const D: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 128;
const BLOCKS: usize = 2;
/// Control tokens, then the 256 byte tokens, then the merges' results.
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const MERGES: [(&str, &str); 8] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("Ġ", "a"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "s"),
];

/// A tiny llama GGUF (version 2, as candle writes it) with weights drawn
/// from `seed`.
pub fn tiny_llama_gguf(seed: u64) -> Result<Vec<u8>, InferError> {
    let c = InferError::candle("writing the tiny gguf");
    build_gguf(seed).map_err(c)
}

fn build_gguf(seed: u64) -> candle_core::Result<Vec<u8>> {
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| (*s).to_owned()).collect();
    let mut types = vec![3i32; SPECIALS.len()];
    tokens.extend(byte_chars().into_iter().map(String::from));
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    types.resize(tokens.len(), 1);
    let vocab = tokens.len();
    let merges: Vec<Value> = MERGES
        .iter()
        .map(|(a, b)| Value::String(format!("{a} {b}")))
        .collect();

    let u32v = |n: usize| Value::U32(u32::try_from(n).unwrap_or(u32::MAX));
    let s = |x: &str| Value::String(x.to_owned());
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", s("llama")),
        ("general.name", s("tiny test llama (seeded noise)")),
        ("llama.block_count", u32v(BLOCKS)),
        ("llama.context_length", Value::U32(TINY_CONTEXT)),
        ("llama.embedding_length", u32v(D)),
        ("llama.feed_forward_length", u32v(FFN)),
        ("llama.attention.head_count", u32v(HEADS)),
        ("llama.attention.head_count_kv", u32v(KV_HEADS)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.rope.dimension_count", u32v(D / HEADS)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.vocab_size", u32v(vocab)),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("smollm")),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.merges", Value::Array(merges)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        ("tokenizer.chat_template", s(SMOLLM2_CHAT_TEMPLATE)),
    ];

    let mut rng = SplitMix(seed);
    let dev = Device::Cpu;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    // Embeddings small next to the blocks' output, so the tied output layer
    // does not just echo the last input token.
    tensors.push((
        "token_embd.weight".into(),
        rng.qtensor(&[vocab, D], 0.5, GgmlDType::Q8_0, &dev)?,
    ));
    tensors.push(("output_norm.weight".into(), rng.norm_weight(D, &dev)?));
    let kv = D / HEADS * KV_HEADS;
    let w = 3.0 / (D as f32).sqrt();
    for b in 0..BLOCKS {
        let p = |n: &str| format!("blk.{b}.{n}.weight");
        for (name, shape, scale) in [
            ("attn_q", [D, D], w),
            ("attn_k", [kv, D], w),
            ("attn_v", [kv, D], w),
            ("attn_output", [D, D], w),
            ("ffn_gate", [FFN, D], w),
            ("ffn_up", [FFN, D], w),
            ("ffn_down", [D, FFN], 3.0 / (FFN as f32).sqrt()),
        ] {
            tensors.push((p(name), rng.qtensor(&shape, scale, GgmlDType::Q4_1, &dev)?));
        }
        tensors.push((p("attn_norm"), rng.norm_weight(D, &dev)?));
        tensors.push((p("ffn_norm"), rng.norm_weight(D, &dev)?));
    }

    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts)?;
    Ok(out.into_inner())
}

/// The files of a tiny BERT embedding model (weights drawn from `seed`):
/// `(name, bytes)` for `config.json`, `tokenizer.json`, `model.safetensors`.
pub fn tiny_bert_files(seed: u64) -> Result<Vec<(&'static str, Vec<u8>)>, InferError> {
    const H: usize = 32;
    const I: usize = 64;
    const LAYERS: usize = 2;
    const POSITIONS: usize = 64;
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for w in [
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "paris", "is", "capital",
        "of", "france", "city",
    ] {
        vocab.push(w.to_owned());
    }
    for ch in 'a'..='z' {
        vocab.push(ch.to_string());
        vocab.push(format!("##{ch}"));
    }
    let v = vocab.len();

    let config = json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": H, "intermediate_size": I, "num_hidden_layers": LAYERS,
        "num_attention_heads": 4, "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
        "vocab_size": v, "layer_norm_eps": 1e-12, "pad_token_id": 0, "initializer_range": 0.02,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "position_embedding_type": "absolute", "use_cache": true,
    });
    let added: Vec<_> = (0..5)
        .map(|i| {
            json!({"id": i, "content": vocab.get(i), "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let tokenizer = json!({
        "version": "1.0",
        // As the reference tokenizer.json ships: the embedder must switch both off.
        "truncation": {"max_length": 8, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
            "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab_map},
    });

    let mut rng = SplitMix(seed);
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut put = |name: String, shape: Vec<usize>, values: Vec<f32>| t.push((name, shape, values));
    let mut uniform = |n: usize, scale: f32| (0..n).map(|_| rng.uniform() * scale).collect();
    put(
        "embeddings.word_embeddings.weight".into(),
        vec![v, H],
        uniform(v * H, 1.0),
    );
    put(
        "embeddings.position_embeddings.weight".into(),
        vec![POSITIONS, H],
        uniform(POSITIONS * H, 0.1),
    );
    put(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, H],
        uniform(2 * H, 0.1),
    );
    let ln = |put: &mut dyn FnMut(String, Vec<usize>, Vec<f32>), p: &str| {
        put(format!("{p}.LayerNorm.weight"), vec![H], vec![1.0; H]);
        put(format!("{p}.LayerNorm.bias"), vec![H], vec![0.0; H]);
    };
    ln(&mut put, "embeddings");
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", H, H),
            ("attention.self.key", H, H),
            ("attention.self.value", H, H),
            ("attention.output.dense", H, H),
            ("intermediate.dense", I, H),
            ("output.dense", H, I),
        ] {
            let s = 1.0 / (inp as f32).sqrt();
            put(
                format!("{p}.{name}.weight"),
                vec![out, inp],
                uniform(out * inp, s),
            );
            put(format!("{p}.{name}.bias"), vec![out], uniform(out, 0.05));
        }
        ln(&mut put, &format!("{p}.attention.output"));
        ln(&mut put, &format!("{p}.output"));
    }
    let json_bytes = |v: &serde_json::Value, file: &str| {
        serde_json::to_vec_pretty(v).map_err(|source| InferError::Json {
            file: file.to_owned(),
            source,
        })
    };
    Ok(vec![
        ("config.json", json_bytes(&config, "config.json")?),
        ("tokenizer.json", json_bytes(&tokenizer, "tokenizer.json")?),
        (
            "model.safetensors",
            safetensors_f32(&t).map_err(|source| InferError::Json {
                file: "model.safetensors header".into(),
                source,
            })?,
        ),
    ])
}

/// A minimal safetensors writer: 8-byte header length, JSON header, then
/// the F32 little-endian data in order.
fn safetensors_f32(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<Vec<u8>, serde_json::Error> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + values.len() * 4;
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut head = serde_json::to_vec(&header)?;
    // Pad the header to 8 bytes with spaces, as the reference writer does.
    while head.len() % 8 != 0 {
        head.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + head.len() + offset);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    for (_, _, values) in tensors {
        for x in values {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(out)
}

/// GPT-2's byte → printable character table, in byte order.
fn byte_chars() -> Vec<char> {
    let mut extra = 0u32;
    (0u8..=255)
        .map(|b| {
            let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
            if printable {
                char::from(b)
            } else {
                let c = char::from_u32(256 + extra).unwrap_or('\u{FFFD}');
                extra += 1;
                c
            }
        })
        .collect()
}

/// SplitMix64: a small, well-known generator, enough for test weights.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        // 24 random bits: exact in f32.
        #[allow(clippy::cast_possible_truncation)]
        let bits = (self.next() >> 40) as u32;
        bits as f32 / (1u32 << 23) as f32 - 1.0
    }

    fn qtensor(
        &mut self,
        shape: &[usize],
        scale: f32,
        dtype: GgmlDType,
        dev: &Device,
    ) -> candle_core::Result<QTensor> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.uniform() * scale).collect();
        QTensor::quantize(&Tensor::from_vec(values, shape, dev)?, dtype)
    }

    fn norm_weight(&mut self, n: usize, dev: &Device) -> candle_core::Result<QTensor> {
        let values: Vec<f32> = (0..n).map(|_| 1.0 + 0.1 * self.uniform()).collect();
        QTensor::quantize(&Tensor::from_vec(values, n, dev)?, GgmlDType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_onto_gpt2_characters() {
        let chars = byte_chars();
        assert_eq!(chars.len(), 256);
        let set: std::collections::HashSet<_> = chars.iter().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(chars[usize::from(b' ')], 'Ġ');
        assert_eq!(chars[usize::from(b'\n')], 'Ċ');
        assert_eq!(chars[usize::from(b'a')], 'a');
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(tiny_llama_gguf(7).unwrap(), tiny_llama_gguf(7).unwrap());
        assert_ne!(tiny_llama_gguf(7).unwrap(), tiny_llama_gguf(8).unwrap());
        assert_eq!(tiny_bert_files(7).unwrap(), tiny_bert_files(7).unwrap());
    }
}
