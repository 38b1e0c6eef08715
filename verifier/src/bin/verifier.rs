//! The `verifier` command line: inspect evidence (and, as they land, appraise,
//! serve the key broker, and review the audit log).
//!
//! Exit codes: 0 success (accepted), 1 denied (every reason printed), 2 bad
//! input or usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use verifier::inspect::{self, Kind};

#[derive(Parser)]
#[command(
    name = "verifier",
    version,
    about = "Appraise confidential-computing evidence and receipts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse an evidence file and print it as JSON (hex for byte fields).
    ///
    /// Checks nothing cryptographic: this is for looking inside evidence.
    Inspect {
        /// The file to read.
        file: PathBuf,
        /// What the file holds; detected from its bytes when omitted.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect { file, kind } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (kind, value) = inspect::inspect(&bytes, kind)
                .with_context(|| format!("inspecting {}", file.display()))?;
            let out = serde_json::json!({ "kind": kind.as_str(), "file": file.display().to_string(), "parsed": value });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
