//! Plain-timing benchmarks of the guest agent (`cargo bench -p guest-agent`),
//! printing the ratios measured in this one run:
//!
//! - load+hash vs load only (goal ≤ 1.10);
//! - hashing MB/s vs memcpy and vs single-core SHA-256;
//! - receipt signing time vs one inference (goal ≤ 1%);
//! - tokens per second with and without receipts, and streamed token by
//!   token (in process, and over gRPC `GenerateStream` on loopback TCP).
//!
//! By default it uses the tiny generated llama and a 64 MiB synthetic weight
//! file, so it runs in seconds; when `models/` holds the reference models
//! (`scripts/fetch-models`) it uses them instead. Each figure is the best of a
//! few runs (the least disturbed by other load), and the variants compared
//! in a ratio run interleaved, round by round, so that load from other
//! processes on a shared machine falls on all of them alike. Numbers from the tiny model
//! say little about a real one: its inference is so short that the signing
//! ratio is pessimistic.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
/// `scripts/fetch-models`' folder of the reference generative model.
const SMOLLM2: &str = "smollm2-135m-instruct";

/// A measured variant: one timed run per call.
type Variant<'a> = Box<dyn FnMut() -> anyhow::Result<()> + 'a>;

/// Runs every variant once per round, `rounds` rounds, interleaved (A B C,
/// A B C, …) so that a burst of load on a shared machine hits every variant
/// alike; returns the best time of each (the least disturbed run).
fn interleaved(rounds: usize, variants: &mut [Variant<'_>]) -> anyhow::Result<Vec<Duration>> {
    let mut best = vec![Duration::MAX; variants.len()];
    for _ in 0..rounds {
        for (variant, best) in variants.iter_mut().zip(&mut best) {
            let start = Instant::now();
            variant()?;
            *best = (*best).min(start.elapsed());
        }
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
    // The figures depend on the machine and on what else runs on it: say so.
    println!(
        "machine: {} cores available, RAYON_NUM_THREADS={}, load average at start: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "(unset)".into()),
        load_average()
    );

    // ---- load + hash vs load only, hashing vs memcpy vs SHA-256
    let weights: PathBuf = if models.join(SMOLLM2).is_dir() {
        models.join(SMOLLM2)
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
    let times = interleaved(
        RUNS,
        &mut [
            Box::new(|| {
                black_box(read_all(&weights)?);
                Ok(())
            }),
            Box::new(|| {
                black_box(load_and_hash(&weights, Progress::Silent)?);
                Ok(())
            }),
        ],
    )?;
    let (load_only, load_hash) = (times[0], times[1]);
    let total = read_all(&weights)?;
    println!(
        "load only {load_only:?}, load+hash {load_hash:?}: ratio {:.3} (goal <= 1.10)",
        load_hash.as_secs_f64() / load_only.as_secs_f64()
    );
    let buffer = vec![0xA5u8; usize::try_from(total.min(256 << 20))?];
    let mut dest = vec![0u8; buffer.len()];
    let times = interleaved(
        RUNS,
        &mut [
            Box::new(|| {
                dest.copy_from_slice(black_box(&buffer));
                black_box(dest.first());
                Ok(())
            }),
            Box::new(|| {
                black_box(Sha256::digest(black_box(&buffer)));
                Ok(())
            }),
        ],
    )?;
    let (memcpy, sha1core) = (times[0], times[1]);
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
    let (gen_model, max_tokens): (LoadedModel, u32) = if models.join(SMOLLM2).is_dir() {
        (load_and_hash(&models.join(SMOLLM2), Progress::Silent)?, 32)
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
    println!(
        "model for inference: {} ({max_tokens} tokens, greedy)",
        gen_model.manifest.model_name
    );
    let agent = Arc::new(Agent::start(&gen_model, ModelKind::Generate, &source)?);
    let mut bare = Generator::from_loaded(&gen_model)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut client = runtime.block_on(grpc_client(&agent))?;
    let mut tokens = [0usize; 4];
    let [bare_n, receipted_n, streamed_n, grpc_n] = &mut tokens;
    let mut first_chunk = Duration::MAX;
    let times = interleaved(
        RUNS,
        &mut [
            Box::new(|| {
                *bare_n = bare.generate(PROMPT, max_tokens)?.token_ids.len();
                Ok(())
            }),
            Box::new(|| {
                let r = agent
                    .generate("", PROMPT, max_tokens)
                    .map_err(|r| anyhow::anyhow!(r.message))
                    .context("generate")?;
                *receipted_n = r.output.token_ids.len();
                Ok(())
            }),
            Box::new(|| {
                let mut text = String::new();
                let r = agent
                    .generate_stream("", PROMPT, max_tokens, |step| {
                        text.push_str(&step.text);
                        ControlFlow::Continue(())
                    })
                    .map_err(|r| anyhow::anyhow!(r.message))
                    .context("generate_stream")?;
                anyhow::ensure!(text == r.output.text, "streamed text differs");
                *streamed_n = r.output.token_ids.len();
                Ok(())
            }),
            Box::new(|| {
                let (n, first) = runtime.block_on(grpc_stream(&mut client, max_tokens))?;
                *grpc_n = n;
                first_chunk = first_chunk.min(first);
                Ok(())
            }),
        ],
    )?;
    let (without, with, streamed, grpc) = (times[0], times[1], times[2], times[3]);
    anyhow::ensure!(
        tokens.iter().all(|&n| n == tokens[0]),
        "the paths generated different numbers of tokens: {tokens:?}"
    );
    let tokens = tokens[0];
    let sign = interleaved(
        RUNS * 4,
        &mut [Box::new(|| {
            black_box(agent.sign_only(PROMPT.as_bytes(), b"out")?);
            Ok(())
        })],
    )?[0];
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
    println!(
        "tokens/s streamed in process {:.1} (ratio {:.3}), over gRPC GenerateStream on loopback {:.1} (ratio {:.3}); first chunk after {first_chunk:?}",
        tps(streamed),
        tps(streamed) / tps(without),
        tps(grpc),
        tps(grpc) / tps(without),
    );
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// `/proc/loadavg`'s first three fields, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// A client of `agent`'s gRPC service, served on a loopback TCP port.
async fn grpc_client(
    agent: &Arc<Agent>,
) -> anyhow::Result<proto::v1::guest_agent_client::GuestAgentClient<tonic::transport::Channel>> {
    use proto::v1::guest_agent_server::GuestAgentServer;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let service = guest_agent::service::AgentService::new(Arc::clone(agent));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GuestAgentServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Ok(proto::v1::guest_agent_client::GuestAgentClient::connect(url).await?)
}

/// One whole `GenerateStream` call (every chunk and the receipt received):
/// the tokens it streamed and the time to its first chunk.
async fn grpc_stream(
    client: &mut proto::v1::guest_agent_client::GuestAgentClient<tonic::transport::Channel>,
    max_tokens: u32,
) -> anyhow::Result<(usize, Duration)> {
    let start = Instant::now();
    let mut stream = client
        .generate_stream(proto::v1::GenerateRequest {
            model: String::new(),
            prompt: PROMPT.into(),
            max_tokens,
        })
        .await?
        .into_inner();
    let mut first = None;
    let mut tokens = 0;
    let mut receipt = false;
    while let Some(chunk) = stream.message().await? {
        first.get_or_insert_with(|| start.elapsed());
        tokens += chunk.token_ids.len();
        receipt |= !chunk.receipt.is_empty();
    }
    anyhow::ensure!(receipt, "the stream ended without a receipt");
    Ok((tokens, first.unwrap_or_default()))
}
