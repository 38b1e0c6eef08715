//! Plain-timing benchmarks of the guest agent (`cargo bench -p guest-agent`),
//! printing the ratios measured in this one run:
//!
//! - load+hash vs load only (goal ≤ 1.10);
//! - hashing MB/s vs memcpy and vs single-core SHA-256;
//! - receipt signing time vs one inference (goal ≤ 1%);
//! - tokens per second with and without receipts.
//!
//! By default it uses the tiny generated llama and a 64 MiB synthetic weight
//! file, so it runs in seconds; when `models/` holds the reference models
//! (`scripts/fetch-models`) it uses them instead. Each figure is the best of a
//! few runs (the least disturbed by other load). Numbers from the tiny model
//! say little about a real one: its inference is so short that the signing
//! ratio is pessimistic.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use guest_agent::agent::{Agent, ModelKind};
use guest_agent::infer::Generator;
use guest_agent::infer::tiny::{TINY_GGUF_NAME, tiny_llama_gguf};
use guest_agent::model::{LoadedModel, Progress, load_and_hash};
use guest_agent::session::EvidenceSource;
use sha2::{Digest as _, Sha256};

const RUNS: usize = 5;
const PROMPT: &str = "Write a short story about the sea.";

fn best<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        black_box(f()?);
        best = best.min(start.elapsed());
    }
    Ok(best)
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Reads every regular file under `path` (no hashing): "load only".
fn read_all(path: &Path) -> anyhow::Result<u64> {
    if path.is_file() {
        return Ok(std::fs::read(path)?.len() as u64);
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        if p.is_file() {
            total += std::fs::read(&p)?.len() as u64;
        } else if p.is_dir() {
            total += read_all(&p)?;
        }
    }
    Ok(total)
}

fn main() -> anyhow::Result<()> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let scratch = tempfile::tempdir()?;

    // ---- load + hash vs load only, hashing vs memcpy vs SHA-256
    let weights: PathBuf = if models.join("smollm2").is_dir() {
        models.join("smollm2")
    } else {
        let p = scratch.path().join("weights");
        std::fs::create_dir(&p)?;
        let mut bytes = vec![0u8; 64 << 20];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for chunk in bytes.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (b, v) in chunk.iter_mut().zip(x.to_le_bytes()) {
                *b = v;
            }
        }
        std::fs::write(p.join("weights.bin"), &bytes)?;
        p
    };
    println!("model for load/hash: {}", weights.display());
    let load_only = best(RUNS, || read_all(&weights))?;
    let load_hash = best(RUNS, || Ok(load_and_hash(&weights, Progress::Silent)?))?;
    let total = read_all(&weights)?;
    println!(
        "load only {load_only:?}, load+hash {load_hash:?}: ratio {:.3} (goal <= 1.10)",
        load_hash.as_secs_f64() / load_only.as_secs_f64()
    );
    let buffer = vec![0xA5u8; usize::try_from(total.min(256 << 20))?];
    let mut dest = vec![0u8; buffer.len()];
    let memcpy = best(RUNS, || {
        dest.copy_from_slice(black_box(&buffer));
        Ok(dest.first().copied())
    })?;
    let sha1core = best(RUNS, || Ok(Sha256::digest(black_box(&buffer))))?;
    let n = buffer.len() as u64;
    let hash_rate = mb_per_s(total, load_hash);
    println!(
        "load+hash {hash_rate:.0} MB/s; memcpy {:.0} MB/s (ratio {:.3}); single-core SHA-256 {:.0} MB/s (ratio {:.2})",
        mb_per_s(n, memcpy),
        hash_rate / mb_per_s(n, memcpy),
        mb_per_s(n, sha1core),
        hash_rate / mb_per_s(n, sha1core),
    );

    // ---- receipts: signing vs inference, tokens/s with and without
    let (gen_model, max_tokens): (LoadedModel, u32) = if models.join("smollm2").is_dir() {
        (
            load_and_hash(&models.join("smollm2"), Progress::Silent)?,
            32,
        )
    } else {
        let dir = scratch.path().join("tiny");
        std::fs::create_dir(&dir)?;
        std::fs::write(dir.join(TINY_GGUF_NAME), tiny_llama_gguf(7)?)?;
        (load_and_hash(&dir, Progress::Silent)?, 32)
    };
    let source = EvidenceSource::DangerSimulate {
        tee: attestor::evidence::Tee::Snp,
        gpus: 1,
        seed: attestor::sim::SimSeed::DEFAULT,
    };
    let agent = Agent::start(&gen_model, ModelKind::Generate, &source)?;
    let mut bare = Generator::from_loaded(&gen_model)?;
    let mut tokens = 0usize;
    let without = best(RUNS, || {
        let g = bare.generate(PROMPT, max_tokens)?;
        tokens = g.token_ids.len();
        Ok(g)
    })?;
    let mut receipted_tokens = 0usize;
    let with = best(RUNS, || {
        let r = agent
            .generate("", PROMPT, max_tokens)
            .map_err(|r| anyhow::anyhow!(r.message))
            .context("generate")?;
        receipted_tokens = r.output.token_ids.len();
        Ok(r)
    })?;
    anyhow::ensure!(
        receipted_tokens == tokens,
        "the two paths generated {tokens} and {receipted_tokens} tokens"
    );
    let sign = best(RUNS * 4, || Ok(agent.sign_only(PROMPT.as_bytes(), b"out")?))?;
    println!(
        "one inference ({tokens} tokens) {without:?}; receipt signing {sign:?}: {:.3}% of an inference (goal <= 1%)",
        100.0 * sign.as_secs_f64() / without.as_secs_f64()
    );
    let tps = |d: Duration| tokens as f64 / d.as_secs_f64();
    println!(
        "tokens/s without receipts {:.1}, with receipts {:.1} (ratio {:.3})",
        tps(without),
        tps(with),
        tps(with) / tps(without)
    );
    Ok(())
}
