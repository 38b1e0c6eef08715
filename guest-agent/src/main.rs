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
//!
//! Exit codes: 0 success, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use guest_agent::model::{self, HashOptions, LoadedModel, Progress};

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
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::HashModel(args) => hash_model(&args),
        Command::Attest(args) => attest(&args),
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
