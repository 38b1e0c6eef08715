//! The compute path an inference takes, recorded in each receipt, and the
//! refusal of environment variables that would change it behind our back.
//!
//! `shared/specs/model.md` §2.3: `CANDLE_DEQUANTIZE_ALL` and
//! `CANDLE_DEQUANTIZE_ALL_F16` (read by candle-core's `QMatMul::from_arc`)
//! change SmolLM2's output after about six tokens. candle 0.11.1 also reads
//! `MISTRALRS_FORCE_AVX2` and `MISTRALRS_FORCE_AVXVNNI` to pick its repacked
//! x86 quantized kernels; they are refused too. Thread-count variables
//! (`RAYON_NUM_THREADS`, `CANDLE_NUM_THREADS`) did not change any output in
//! the measurements, so they are recorded (as `threads`), not refused.
//!
//! Never changes the environment (that is `unsafe` in edition 2024 and racy);
//! it only reads it.

use std::collections::BTreeMap;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, DeviceLocation};

use super::InferError;

/// The candle version this crate pins (`=0.11.1` in the workspace manifest);
/// a unit test checks it against `Cargo.lock`.
pub const CANDLE_VERSION: &str = "0.11.1";

/// Environment variables that change candle's numeric path; any of them set
/// (to any value) makes [`check_numeric_env`] refuse.
pub const NUMERIC_ENV_VARS: [&str; 4] = [
    "CANDLE_DEQUANTIZE_ALL",
    "CANDLE_DEQUANTIZE_ALL_F16",
    "MISTRALRS_FORCE_AVX2",
    "MISTRALRS_FORCE_AVXVNNI",
];

/// How an inference was computed: what a receipt records next to the
/// weights' hash, because each of these can change the output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComputePath {
    /// `"cpu"` or `"cuda:<ordinal>"`.
    pub device: String,
    /// Activation dtype, e.g. `"f32"`.
    pub dtype: String,
    /// Weight formats as loaded, e.g. `"gguf native: F32=61 Q4_1=210 Q8_0=1"`
    /// (quantized matmuls on the quantized blocks, nothing dequantized or
    /// re-quantized) or `"none: safetensors F32"`.
    pub quantization: String,
    /// Threads candle's CPU kernels use (`CANDLE_NUM_THREADS`, else
    /// `RAYON_NUM_THREADS`, else physical cores, as candle resolves it).
    pub threads: usize,
    /// CPU features detected at run time that candle's kernels dispatch on.
    pub cpu_features: Vec<String>,
    /// CPU features compiled in (`-C target-cpu` / `target-feature`), which
    /// change auto-vectorised code.
    pub target_features: Vec<String>,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// The candle version ([`CANDLE_VERSION`]).
    pub candle_version: String,
}

/// Refuses to go on when a variable of [`NUMERIC_ENV_VARS`] is set, naming it.
pub fn check_numeric_env() -> Result<(), InferError> {
    check_numeric_env_with(|var| std::env::var_os(var).map(|v| v.to_string_lossy().into_owned()))
}

/// [`check_numeric_env`] over a given environment lookup (for tests and for
/// callers that hold a captured environment).
pub fn check_numeric_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<(), InferError> {
    for var in NUMERIC_ENV_VARS {
        if let Some(value) = lookup(var) {
            return Err(InferError::NumericEnv { var, value });
        }
    }
    Ok(())
}

impl ComputePath {
    /// The path for `device` with activations in `dtype` and weights as
    /// described by `quantization`.
    pub fn new(device: &Device, dtype: DType, quantization: String) -> Self {
        Self {
            device: device_name(device),
            dtype: dtype.as_str().to_owned(),
            quantization,
            threads: candle_threads(),
            cpu_features: cpu_features(),
            target_features: target_features(),
            arch: std::env::consts::ARCH.to_owned(),
            candle_version: CANDLE_VERSION.to_owned(),
        }
    }
}

/// Summarises a GGUF's tensor formats, e.g. `"gguf native: F32=61 Q4_1=210"`.
pub(crate) fn gguf_quantization(content: &gguf_file::Content) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for info in content.tensor_infos.values() {
        *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!("gguf native: {}", parts.join(" "))
}

fn device_name(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".to_owned(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// candle's own resolution of its CPU pool size (`utils::candle_num_threads`
/// is private): `CANDLE_NUM_THREADS` if a positive integer, else
/// [`candle_core::utils::get_num_threads`].
fn candle_threads() -> usize {
    std::env::var("CANDLE_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(candle_core::utils::get_num_threads)
}

#[cfg(target_arch = "x86_64")]
fn cpu_features() -> Vec<String> {
    let detected = [
        ("sse4.1", std::is_x86_feature_detected!("sse4.1")),
        ("avx", std::is_x86_feature_detected!("avx")),
        ("avx2", std::is_x86_feature_detected!("avx2")),
        ("fma", std::is_x86_feature_detected!("fma")),
        ("f16c", std::is_x86_feature_detected!("f16c")),
        ("avx512f", std::is_x86_feature_detected!("avx512f")),
        ("avx512bw", std::is_x86_feature_detected!("avx512bw")),
        ("avx512vl", std::is_x86_feature_detected!("avx512vl")),
        ("avx512vnni", std::is_x86_feature_detected!("avx512vnni")),
        ("avx512bf16", std::is_x86_feature_detected!("avx512bf16")),
    ];
    detected
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

#[cfg(target_arch = "aarch64")]
fn cpu_features() -> Vec<String> {
    let detected = [
        ("neon", std::arch::is_aarch64_feature_detected!("neon")),
        (
            "dotprod",
            std::arch::is_aarch64_feature_detected!("dotprod"),
        ),
        ("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")),
        ("fp16", std::arch::is_aarch64_feature_detected!("fp16")),
    ];
    detected
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_features() -> Vec<String> {
    Vec::new()
}

fn target_features() -> Vec<String> {
    let compiled = [
        ("sse4.1", cfg!(target_feature = "sse4.1")),
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("f16c", cfg!(target_feature = "f16c")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("avx512bw", cfg!(target_feature = "avx512bw")),
        ("avx512vl", cfg!(target_feature = "avx512vl")),
        ("avx512vnni", cfg!(target_feature = "avx512vnni")),
        ("neon", cfg!(target_feature = "neon")),
        ("dotprod", cfg!(target_feature = "dotprod")),
        ("i8mm", cfg!(target_feature = "i8mm")),
        ("fp16", cfg!(target_feature = "fp16")),
    ];
    compiled
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_numeric_variable_is_refused_by_name() {
        assert!(check_numeric_env_with(|_| None).is_ok());
        for var in NUMERIC_ENV_VARS {
            // Any value, even candle's "off" spellings: set means refused.
            for value in ["1", "0", ""] {
                let err =
                    check_numeric_env_with(|v| (v == var).then(|| value.to_owned())).unwrap_err();
                assert!(
                    matches!(&err, InferError::NumericEnv { var: v, .. } if *v == var),
                    "{err}"
                );
                assert!(err.to_string().contains(var), "{err}");
            }
        }
    }

    #[test]
    fn candle_version_matches_the_lock_file() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        for name in ["candle-core", "candle-nn", "candle-transformers"] {
            let entry = format!("name = \"{name}\"\nversion = \"{CANDLE_VERSION}\"\n");
            assert!(
                lock.contains(&entry),
                "{name} {CANDLE_VERSION} not in Cargo.lock"
            );
        }
    }

    #[test]
    fn compute_path_describes_the_cpu() {
        let p = ComputePath::new(&Device::Cpu, DType::F32, "none".into());
        assert_eq!(p.device, "cpu");
        assert_eq!(p.dtype, "f32");
        assert!(p.threads >= 1);
        assert_eq!(p.candle_version, CANDLE_VERSION);
        assert_eq!(p.arch, std::env::consts::ARCH);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            p.cpu_features.contains(&"avx2".to_owned()),
            std::is_x86_feature_detected!("avx2")
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["device"], "cpu");
    }
}
