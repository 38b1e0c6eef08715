//! `guest-agent`: command-line front end of the guest agent.
//!
//! Subcommands:
//! - `hash-model PATH [--json]`: read and hash a model (file or folder) the way
//!   the agent does before serving, and print its commitment (`sha256:<OMS
//!   root>`) and per-file manifest.
//!
//! - `attest [--danger-simulate] [--nonce N] [--model PATH] [--out FILE]`:
//!   fresh session keys, evidence bound to them (DESIGN.md §3), printed as an
//!   evidence bundle.
//! - `detect`: which TEE and GPU interfaces this machine has.
//! - `generate --model PATH [--max-tokens N] [--danger-simulate] [--json] PROMPT`:
//!   one greedy generation with its receipt. `--json` prints one object:
//!   `text`, `token_ids`, `receipt` (compact JWS), `salt` (hex) and
//!   `receipt_key` (public JWK).
//! - `embed --model PATH [--danger-simulate] [--json] TEXT...`: the same with
//!   `embedding` (one vector per text) in place of `text` and `token_ids`.
//! - `serve --config FILE`: the gRPC `GuestAgent` service (config:
//!   [`guest_agent::agent::AgentConfig`]). With a `[verifier]` table it first
//!   attests through the key broker (and fetches `model_key` when set), then
//!   re-attests every `refresh_secs`. Once serving it prints exactly one line
//!   on stdout: `guest-agent: listening on http://ADDR`.
//! - `seal-model PATH --out DIR --key-out FILE [--key-resource REPO/TYPE/TAG]`:
//!   operator tool, run outside the TEE: encrypt a model folder under a fresh
//!   key ([`guest_agent::model::sealed`]), write the key as a JWK (0600, never
//!   over an existing file), print the commitment on stdout and the next steps
//!   on stderr.
//! - `client generate|session --server URL …`: call a running agent
//!   (see `client_cli`).
//!
//! Exit codes: 0 success, 2 error, 3 the key broker denied at start (stderr:
//! `key broker denied: <code>[, <code>…]: <detail>`, then the JSON body).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use guest_agent::model::{self, HashOptions, LoadedModel, Progress};

mod client_cli;

/// The confidential-computing inference guest agent.
#[derive(Debug, Parser)]
#[command(name = "guest-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Command {
    /// Read and hash a model (file or folder) and print its OpenSSF Model
    /// Signing v1.0 commitment and per-file digests.
    HashModel(HashModelArgs),
    /// Create session keys and collect CPU and GPU evidence bound to them;
    /// print the evidence bundle (KBS tee-evidence shape with runtime data).
    Attest(AttestArgs),
    /// Say which TEE and GPU interfaces this machine has, and why not.
    Detect {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One greedy generation with a signed receipt.
    Generate(GenerateArgs),
    /// Sentence embeddings with a signed receipt.
    Embed(EmbedArgs),
    /// Encrypt a model (file or folder) under a fresh key for storage; the
    /// key goes to the key broker, which releases it only to an attested agent.
    SealModel(SealModelArgs),
    /// Serve the GuestAgent gRPC service.
    Serve {
        /// TOML config: listen, model, kind, danger_simulate, and an optional
        /// [verifier] table (url, ear_key, model_key, refresh_secs, on_not_affirming).
        #[arg(long)]
        config: PathBuf,
    },
    /// Call a running agent over gRPC.
    #[command(subcommand)]
    Client(client_cli::ClientCommand),
}

/// Arguments shared by `generate` and `embed`.
#[derive(Debug, Args)]
struct OneShotArgs {
    /// Model file or folder.
    #[arg(long)]
    model: PathBuf,
    /// Use the SIMULATOR for evidence (receipts say SIMULATED).
    #[arg(long)]
    danger_simulate: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of `generate`.
#[derive(Debug, Args)]
struct GenerateArgs {
    #[command(flatten)]
    common: OneShotArgs,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// The prompt.
    prompt: String,
}

/// Arguments of `embed`.
#[derive(Debug, Args)]
struct EmbedArgs {
    #[command(flatten)]
    common: OneShotArgs,
    /// The texts.
    #[arg(required = true)]
    texts: Vec<String>,
}

/// Arguments of `attest`.
#[derive(Debug, Args)]
struct AttestArgs {
    /// Use the SIMULATOR instead of hardware. Its evidence is signed by
    /// simulated roots that no production verifier trusts.
    #[arg(long)]
    danger_simulate: bool,
    /// With --danger-simulate: which CPU TEE to simulate.
    #[arg(long, value_enum, default_value = "snp", requires = "danger_simulate")]
    tee: TeeArg,
    /// With --danger-simulate: how many H100s to simulate.
    #[arg(long, default_value_t = 1, requires = "danger_simulate")]
    gpus: usize,
    /// The verifier's nonce (base64); a fresh local one when omitted.
    #[arg(long)]
    nonce: Option<String>,
    /// Hash this model (file or folder) and bind its commitment.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write the bundle here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TeeArg {
    Snp,
    Tdx,
}

/// Arguments of `seal-model`.
#[derive(Debug, Args)]
struct SealModelArgs {
    /// Plaintext model file or folder.
    path: PathBuf,
    /// Folder to write sealed.json and the .sealed files to (must not exist,
    /// or be empty).
    #[arg(long)]
    out: PathBuf,
    /// File to write the key to (JWK, mode 0600); never overwritten.
    #[arg(long)]
    key_out: PathBuf,
    /// Key broker resource that will hold the key [default: default/model/<name of PATH>].
    #[arg(long, value_name = "REPO/TYPE/TAG")]
    key_resource: Option<String>,
    /// No progress output on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Arguments of `hash-model`.
#[derive(Debug, Args)]
struct HashModelArgs {
    /// Model file or folder.
    path: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// With --json, include the full in-toto statement (with per-tensor digests).
    #[arg(long, requires = "json")]
    statement: bool,
    /// Extra path to ignore, relative to the model folder (repeatable), as the
    /// stock tool's --ignore-paths.
    #[arg(long = "ignore-path", value_name = "REL_PATH")]
    ignore_paths: Vec<String>,
    /// Hash .git, .gitattributes, .github and .gitignore too.
    #[arg(long)]
    no_ignore_git_paths: bool,
    /// No progress output on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            use guest_agent::kbs::{KbsError, StartError};
            let denied = match err.downcast_ref::<StartError>() {
                Some(StartError::Kbs(e)) => Some(e),
                _ => err.downcast_ref::<KbsError>(),
            };
            if let Some(e @ KbsError::Denied { body, .. }) = denied {
                eprintln!("{e}");
                let pretty = serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| body.clone());
                eprintln!("{pretty}");
                return ExitCode::from(3);
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::HashModel(args) => hash_model(&args),
        Command::Attest(args) => attest(&args),
        Command::Generate(args) => generate(&args),
        Command::Embed(args) => embed(&args),
        Command::SealModel(args) => seal_model(&args),
        Command::Serve { config } => serve(&config),
        Command::Client(command) => client_cli::run(command),
        Command::Detect { json } => {
            let detection = attestor::collect::detect();
            if json {
                println!("{}", serde_json::to_string_pretty(&detection)?);
            } else {
                println!("{detection}");
            }
            Ok(())
        }
    }
}

fn evidence_source(danger_simulate: bool) -> guest_agent::session::EvidenceSource {
    if danger_simulate {
        eprintln!(
            "WARNING: --danger-simulate: evidence comes from the SIMULATOR; receipts say SIMULATED \
             and prove nothing about any hardware."
        );
        guest_agent::session::EvidenceSource::DangerSimulate {
            tee: attestor::evidence::Tee::Snp,
            gpus: 1,
            seed: attestor::sim::SimSeed::DEFAULT,
        }
    } else {
        guest_agent::session::EvidenceSource::Hardware
    }
}

fn start_agent(
    args: &OneShotArgs,
    kind: guest_agent::agent::ModelKind,
) -> anyhow::Result<guest_agent::agent::Agent> {
    let loaded = model::load_and_hash(&args.model, Progress::Auto)
        .with_context(|| format!("hashing model {}", args.model.display()))?;
    Ok(guest_agent::agent::Agent::start(
        &loaded,
        kind,
        &evidence_source(args.danger_simulate),
    )?)
}

fn refused(refusal: guest_agent::agent::Refusal) -> anyhow::Error {
    if let Some((receipt, salt)) = refusal.receipt.as_deref() {
        eprintln!("deny receipt: {}\nsalt: {}", receipt.compact, salt.to_hex());
    }
    anyhow::anyhow!("refused: {}", refusal.message)
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let agent = start_agent(&args.common, guest_agent::agent::ModelKind::Generate)?;
    let out = agent
        .generate("", &args.prompt, args.max_tokens)
        .map_err(refused)?;
    if args.common.json {
        let json = serde_json::json!({
            "text": out.output.text,
            "token_ids": out.output.token_ids,
            "receipt": out.receipt.compact,
            "salt": out.salt.to_hex(),
            "receipt_key": agent.receipt_jwk(),
        });
        println!("{json}");
    } else {
        println!("{}", out.output.text);
        eprintln!(
            "receipt: {}\nsalt: {}",
            out.receipt.compact,
            out.salt.to_hex()
        );
    }
    Ok(())
}

fn embed(args: &EmbedArgs) -> anyhow::Result<()> {
    let agent = start_agent(&args.common, guest_agent::agent::ModelKind::Embed)?;
    let out = agent.embed("", &args.texts).map_err(refused)?;
    if args.common.json {
        let json = serde_json::json!({
            "embedding": out.output,
            "receipt": out.receipt.compact,
            "salt": out.salt.to_hex(),
            "receipt_key": agent.receipt_jwk(),
        });
        println!("{json}");
    } else {
        println!("{}", serde_json::to_string(&out.output)?);
        eprintln!(
            "receipt: {}\nsalt: {}",
            out.receipt.compact,
            out.salt.to_hex()
        );
    }
    Ok(())
}

fn serve(config: &std::path::Path) -> anyhow::Result<()> {
    use guest_agent::agent::{Agent, AgentConfig};
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let config = AgentConfig::from_toml(&text)?;
    let addr: std::net::SocketAddr = config
        .listen
        .parse()
        .with_context(|| format!("listen address {:?}", config.listen))?;
    let source = evidence_source(config.danger_simulate);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let agent = match &config.verifier {
            None => {
                if model::sealed::is_sealed(&config.model) {
                    anyhow::bail!(
                        "{} is a sealed model: only the key broker releases its key, so the \
                         config needs a [verifier] table",
                        config.model.display()
                    );
                }
                let loaded = model::load_and_hash(&config.model, Progress::Auto)
                    .with_context(|| format!("hashing model {}", config.model.display()))?;
                Arc::new(Agent::start(&loaded, config.kind, &source)?)
            }
            Some(v) => {
                let (agent, attester) = guest_agent::kbs::start_attested_agent(
                    v,
                    &config.model,
                    config.kind,
                    source,
                    Progress::Auto,
                )
                .await?;
                let agent = Arc::new(agent);
                tokio::spawn(guest_agent::kbs::keep_attested(
                    Arc::clone(&agent),
                    attester,
                    std::time::Duration::from_secs(v.refresh_secs),
                ));
                agent
            }
        };
        let service = guest_agent::service::AgentService::new(agent);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        println!("guest-agent: listening on http://{local}");
        std::io::Write::flush(&mut std::io::stdout())?;
        tonic::transport::Server::builder()
            .add_service(proto::v1::guest_agent_server::GuestAgentServer::new(
                service,
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .context("serving")
    })
}

fn attest(args: &AttestArgs) -> anyhow::Result<()> {
    use attestor::evidence::Tee;
    use guest_agent::session::{EvidenceSource, Session, local_nonce};

    let source = if args.danger_simulate {
        eprintln!(
            "WARNING: --danger-simulate: evidence comes from the SIMULATOR, signed by simulated roots. \
             It proves nothing about any hardware, and production policy denies it."
        );
        EvidenceSource::DangerSimulate {
            tee: match args.tee {
                TeeArg::Snp => Tee::Snp,
                TeeArg::Tdx => Tee::Tdx,
            },
            gpus: args.gpus,
            seed: attestor::sim::SimSeed::DEFAULT,
        }
    } else {
        EvidenceSource::Hardware
    };
    let commitment = match &args.model {
        Some(path) => {
            let loaded = model::load_and_hash(path, Progress::Auto)
                .with_context(|| format!("hashing model {}", path.display()))?;
            Some(loaded.commitment.to_string())
        }
        None => None,
    };
    let session = Session::new();
    let nonce = args.nonce.clone().unwrap_or_else(local_nonce);
    let runtime_data = session.runtime_data(&nonce, commitment.as_deref());
    let bundle = session
        .collect(runtime_data, &source)
        .context("collecting evidence")?;
    let text = bundle.to_json_pretty();
    match &args.out {
        Some(path) => {
            std::fs::write(path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} ({} evidence{}, digest {})",
                path.display(),
                bundle.primary.tee().as_str(),
                if bundle.simulated { ", SIMULATED" } else { "" },
                bundle.digest().prefixed()
            );
        }
        None => println!("{text}"),
    }
    Ok(())
}

fn seal_model(args: &SealModelArgs) -> anyhow::Result<()> {
    use guest_agent::model::sealed;
    let resource = args
        .key_resource
        .clone()
        .unwrap_or_else(|| sealed::default_key_resource(&args.path));
    sealed::check_key_resource(&resource)?;
    let progress = if args.quiet {
        Progress::Silent
    } else {
        Progress::Auto
    };
    let key = attestor::sealed::SealKey::generate();
    // The key file first: refuse early, before any sealing, if it exists.
    sealed::write_key_file(&args.key_out, &key).context("writing the key file")?;
    let manifest = match sealed::seal_folder(&args.path, &args.out, &key, &resource, progress) {
        Ok(m) => m,
        Err(err) => {
            // A key for nothing would only invite confusion.
            let _ = std::fs::remove_file(&args.key_out);
            return Err(err).with_context(|| format!("sealing {}", args.path.display()));
        }
    };
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    println!("{}", manifest.model_commitment);
    eprintln!(
        "sealed {} files ({total} bytes) of {} into {}\n\
         model commitment: {}\n\
         key: {} (JWK, mode 0600), for key broker resource {resource}\n\
         next: store the key in the broker, then delete the key file:\n  \
         verifier resource put --data DATA {resource} {}\n  \
         (or: verifier resource put --server URL --admin-key FILE {resource} {})\n\
         then serve the sealed folder: model = \"{}\" in the agent's config",
        manifest.files.len(),
        args.path.display(),
        args.out.display(),
        manifest.model_commitment,
        args.key_out.display(),
        args.key_out.display(),
        args.key_out.display(),
        args.out.display(),
    );
    Ok(())
}

fn hash_model(args: &HashModelArgs) -> anyhow::Result<()> {
    let options = HashOptions {
        ignore_git_paths: !args.no_ignore_git_paths,
        ignore_paths: args.ignore_paths.clone(),
        ..HashOptions::default()
    };
    let progress = if args.quiet {
        Progress::Silent
    } else {
        Progress::Auto
    };
    let loaded = model::load_and_hash_with(&args.path, &options, progress)
        .with_context(|| format!("hashing model {}", args.path.display()))?;
    if args.json {
        let json = serde_json::to_string_pretty(&json_report(&loaded, args.statement))?;
        println!("{json}");
    } else {
        print!("{}", text_report(&loaded));
    }
    Ok(())
}

/// `{"commitment", "model_name", "serialization", "files": [{"path", "sha256", "size"}], ...}`.
fn json_report(loaded: &LoadedModel, with_statement: bool) -> serde_json::Value {
    let m = &loaded.manifest;
    let files: Vec<_> = loaded
        .files
        .iter()
        .map(|f| {
            let mut entry = serde_json::json!({
                "path": f.rel_path,
                "sha256": f.sha256,
                "size": f.size(),
            });
            if let Some(t) = m.tensor_digests.get(&f.rel_path) {
                entry["tensors"] = t.len().into();
            }
            entry
        })
        .collect();
    let mut out = serde_json::json!({
        "commitment": loaded.commitment,
        "model_name": m.model_name,
        "predicate_type": model::oms::PREDICATE_TYPE,
        "serialization": m.serialization,
        "total_size": loaded.total_bytes(),
        "files": files,
    });
    if with_statement {
        out["statement"] = serde_json::to_value(m.statement()).unwrap_or_default();
    }
    out
}

/// The commitment, then one `sha256  size  path` line per file (in OMS order).
fn text_report(loaded: &LoadedModel) -> String {
    let m = &loaded.manifest;
    let mut out = format!("{}\n", loaded.commitment);
    out.push_str(&format!(
        "# OMS v1.0 root of {:?}: {} files, {} bytes, serialization {}/{}\n",
        m.model_name,
        loaded.files.len(),
        loaded.total_bytes(),
        m.serialization.method,
        m.serialization.hash_type,
    ));
    for f in &loaded.files {
        let tensors = m
            .tensor_digests
            .get(&f.rel_path)
            .map(|t| format!("  ({} tensors)", t.len()))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  {:>12}  {}{tensors}\n",
            f.sha256,
            f.size(),
            f.rel_path
        ));
    }
    out
}
