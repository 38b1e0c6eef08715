//! `guest-agent client …`: call a running agent over gRPC
//! ([`guest_agent::client`]) and print what it answered.
//!
//! - `client generate --server URL [--max-tokens N] [--stream] [--json]
//!   [--receipt-out FILE] PROMPT`: one generation; its receipt is checked
//!   (signature with the session's receipt key, key bound in the evidence,
//!   commitments over the prompt, text and salt) before anything is printed
//!   as a result. With `--stream` the text is printed as the tokens arrive
//!   (without `--json`). `--json` prints one object: `text`, `token_ids`,
//!   `receipt`, `salt` (hex) and `receipt_key` (public JWK).
//! - `client session --server URL [--bundle-out FILE] [--ear-out FILE]
//!   [--json]`: the agent's evidence bundle (written byte for byte as
//!   received), EAR and public keys. `--ear-out` fails when the agent has no
//!   EAR (it has not been appraised), after writing the bundle.
//!
//! A refusal prints its deny receipt on stderr and fails (exit code 2, as
//! every error of this binary).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use guest_agent::client::{AgentClient, ClientError, ClientGeneration};

/// `guest-agent client` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Ask a running agent for one generation and check its receipt.
    Generate(GenerateArgs),
    /// Fetch a running agent's evidence bundle, EAR and public keys.
    Session(SessionArgs),
}

/// Arguments of `client generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The agent's gRPC address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    server: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// Use GenerateStream: text is printed token by token as it arrives.
    #[arg(long)]
    stream: bool,
    /// Print one JSON object: text, token_ids, receipt, salt, receipt_key.
    #[arg(long)]
    json: bool,
    /// Also write the receipt (compact JWS) to this file.
    #[arg(long, value_name = "FILE")]
    receipt_out: Option<PathBuf>,
    /// The prompt.
    prompt: String,
}

/// Arguments of `client session`.
#[derive(Debug, Args)]
pub(crate) struct SessionArgs {
    /// The agent's gRPC address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    server: String,
    /// Write the evidence bundle (JSON, as received) to this file.
    #[arg(long, value_name = "FILE")]
    bundle_out: Option<PathBuf>,
    /// Write the EAR (compact JWS) to this file; fails when there is none.
    #[arg(long, value_name = "FILE")]
    ear_out: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs one `client` subcommand.
pub(crate) fn run(command: ClientCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            ClientCommand::Generate(args) => generate(&args).await,
            ClientCommand::Session(args) => session(&args).await,
        }
    })
}

async fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let mut client = AgentClient::connect(&args.server).await?;
    let result = if args.stream {
        let print = !args.json;
        let mut stdout = std::io::stdout();
        let out = client
            .generate_stream(&args.prompt, args.max_tokens, |text| {
                if print {
                    // Best effort: the text is only for display here; what
                    // counts is the checked result below.
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                }
            })
            .await;
        if print {
            println!();
        }
        out
    } else {
        client.generate(&args.prompt, args.max_tokens).await
    };
    let out = result.map_err(refused)?;
    if let Some(path) = &args.receipt_out {
        write(path, out.receipt.as_bytes())?;
    }
    if args.json {
        println!("{}", generation_json(&out));
    } else {
        if !args.stream {
            println!("{}", out.text);
        }
        eprintln!(
            "receipt: {}\nsalt: {}\nreceipt verified with the session's receipt key (seq {}, decision {:?}); \
             check it back to the evidence with `verifier receipt verify`",
            out.receipt,
            out.salt.to_hex(),
            out.claims.seq,
            out.claims.policy_decision.status,
        );
    }
    Ok(())
}

/// Contract D's object: `{text, token_ids, receipt, salt, receipt_key}`.
fn generation_json(out: &ClientGeneration) -> serde_json::Value {
    serde_json::json!({
        "text": out.text,
        "token_ids": out.token_ids,
        "receipt": out.receipt,
        "salt": out.salt.to_hex(),
        "receipt_key": out.receipt_key,
    })
}

async fn session(args: &SessionArgs) -> anyhow::Result<()> {
    let mut client = AgentClient::connect(&args.server).await?;
    let s = client.session().await?;
    let digest = s.bundle.digest().prefixed();
    if let Some(path) = &args.bundle_out {
        write(path, s.bundle_json.as_bytes())?;
    }
    if args.json {
        let json = serde_json::json!({
            "evidence_bundle": s.bundle.to_value(),
            "evidence_digest": digest,
            "ear": s.ear,
            "receipt_key": s.receipt_key,
            "tee_key": s.tee_key,
            "simulated": s.simulated,
        });
        println!("{json}");
    } else {
        println!(
            "evidence: {}{}, digest {digest}",
            s.bundle.primary.tee().as_str(),
            if s.simulated {
                ", SIMULATED (proves nothing about any hardware)"
            } else {
                ""
            },
        );
        println!("receipt key: {}", s.receipt_key);
        println!("TEE key: {}", s.tee_key);
        match &s.ear {
            Some(ear) => println!("EAR: {} bytes", ear.len()),
            None => println!("EAR: none (no verifier has appraised this session)"),
        }
    }
    if let Some(path) = &args.ear_out {
        let ear = s.ear.as_deref().with_context(|| {
            format!(
                "the agent has no EAR (no verifier has appraised this session); {} not written",
                path.display()
            )
        })?;
        write(path, ear.as_bytes())?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Prints a refusal's deny receipt on stderr, and turns it into the error.
fn refused(error: ClientError) -> anyhow::Error {
    if let ClientError::Refused {
        deny_receipt: Some(receipt),
        deny_salt,
        ..
    } = &error
    {
        eprintln!(
            "deny receipt: {receipt}\nsalt: {}",
            deny_salt.as_deref().unwrap_or("(none)")
        );
    }
    error.into()
}
