//! The reviewer CLI: `verifier audit list|show|prove|verify`, working offline
//! from a copy of the data directory (`--data DIR`).
//!
//! Exit codes: 0 success (the proof or the whole log verifies; entries found),
//! 1 a negative answer (does not verify; no such entry; nothing matched),
//! errors (unreadable files, bad arguments) are returned for the binary to
//! print and exit 2. `--server URL` is reserved for reviewing a running
//! verifier and is not implemented yet. This module never modifies a log,
//! except that `prove` signs a new checkpoint when none covers the entry and
//! the directory holds the signing key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::{AuditLog, Decision, EntryFilter, checkpoint, merkle, verify_proof};
use crate::time::UnixTime;

/// Where the log is.
#[derive(Debug, Clone, clap::Args)]
pub struct LogSource {
    /// The verifier's data directory, or a reviewer's copy of it.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A running verifier to ask instead (not yet supported).
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    pub server: Option<String>,
}

/// `verifier audit …` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// List entries, oldest first (exit 1 when none match).
    List {
        #[command(flatten)]
        source: LogSource,
        /// Only allows or only denials.
        #[arg(long, value_enum)]
        decision: Option<DecisionArg>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
        /// One JSON array instead of one line per entry.
        #[arg(long)]
        json: bool,
    },
    /// Show entry N (exit 1 when there is none).
    Show {
        #[command(flatten)]
        source: LogSource,
        /// The entry's index.
        n: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write entry N, its inclusion proof and a signed checkpoint to FILE
    /// (c2sp.org/tlog-proof@v1, entry in the `extra` line).
    Prove {
        #[command(flatten)]
        source: LogSource,
        /// The entry's index.
        n: u64,
        /// Where to write the proof (conventionally `*.tlog-proof`).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify a proof file (--proof), or else the whole log: exit 0 when it
    /// verifies, 1 when it does not.
    Verify {
        #[command(flatten)]
        source: LogSource,
        /// A c2sp.org/tlog-proof@v1 file to verify offline.
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
        /// The log's verifier key (`log_key.pub`) obtained from a trusted
        /// source; defaults to the one in --data DIR.
        #[arg(long = "log-key", value_name = "FILE")]
        log_key: Option<PathBuf>,
    },
}

/// `--decision` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionArg {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
}

/// Runs one subcommand, printing to stdout.
pub fn run_audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_audit_to(cmd, &mut out)
}

/// Runs one subcommand, printing to `out` (for tests and embedding).
pub fn run_audit_to(cmd: AuditCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::List {
            source,
            decision,
            since,
            json,
        } => {
            let log = open(&source)?;
            let since = since
                .map(|s| UnixTime::parse_rfc3339(&s))
                .transpose()
                .context("--since")?;
            let filter = EntryFilter {
                decision: decision.map(|d| match d {
                    DecisionArg::Allow => Decision::Allow,
                    DecisionArg::Deny => Decision::Deny,
                }),
                kind: None,
                since,
            };
            let entries = log.entries(&filter)?;
            if json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|(i, e)| serde_json::json!({ "index": i, "entry": e }))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for (i, e) in &entries {
                    let reasons: Vec<&str> = e.reasons.iter().map(|r| r.code.as_str()).collect();
                    writeln!(
                        out,
                        "{i:>6}  {}  {:<5}  {:<9}  {}  {}  {}",
                        e.time,
                        e.decision.as_str(),
                        e.kind.as_str(),
                        e.request_id,
                        e.resource.as_deref().unwrap_or("-"),
                        if reasons.is_empty() {
                            "-".to_owned()
                        } else {
                            reasons.join(",")
                        }
                    )?;
                }
            }
            Ok(exit(!entries.is_empty()))
        }
        AuditCommand::Show { source, n, json } => {
            let log = open(&source)?;
            let Some(body) = log.entry_bytes(n)? else {
                writeln!(out, "no entry {n}: the log has {} entries", log.size()?)?;
                return Ok(ExitCode::from(1));
            };
            let entry = super::AuditEntry::from_canonical_bytes(&body)
                .with_context(|| format!("entry {n}"))?;
            let leaf = merkle::leaf_hash(&body);
            if json {
                let v = serde_json::json!({ "index": n, "leaf_hash": leaf, "entry": entry });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "entry {n}\nleaf hash {leaf}")?;
                writeln!(out, "{}", serde_json::to_string_pretty(&entry)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove {
            source,
            n,
            out: file,
        } => {
            let log = open(&source)?;
            let size = log.size()?;
            if n >= size {
                writeln!(out, "no entry {n}: the log has {size} entries")?;
                return Ok(ExitCode::from(1));
            }
            let text = log.prove(n)?;
            std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
            let verified = verify_proof(&text, log.verifier_key())?;
            writeln!(
                out,
                "wrote {}: entry {n} in {} at tree size {} (root {})",
                file.display(),
                verified.origin,
                verified.tree_size,
                verified.root.to_base64()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            source,
            proof,
            log_key,
        } => {
            not_yet(&source)?;
            let key = match (&log_key, &source.data) {
                (Some(file), _) => Some(read_key(file)?),
                (None, Some(dir)) if proof.is_some() => {
                    Some(read_key(&log_dir(dir).join(super::PUB_KEY_FILE))?)
                }
                (None, _) => None,
            };
            match proof {
                Some(file) => {
                    let Some(key) = key else {
                        bail!("--proof needs the log's key: --log-key FILE (or --data DIR)");
                    };
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    match verify_proof(&text, &key) {
                        Ok(v) => {
                            writeln!(
                                out,
                                "OK: entry {} is in {} at tree size {} (root {})",
                                v.index,
                                v.origin,
                                v.tree_size,
                                v.root.to_base64()
                            )?;
                            writeln!(out, "{}", v.entry_json)?;
                            Ok(ExitCode::SUCCESS)
                        }
                        Err(e) => {
                            writeln!(out, "FAILED: {}: {e}", file.display())?;
                            Ok(ExitCode::from(1))
                        }
                    }
                }
                None => {
                    let log = open(&source)?;
                    let key = key.unwrap_or_else(|| log.verifier_key().to_owned());
                    match log.verify_all_with_key(&key) {
                        Ok(()) => {
                            let size = log.size()?;
                            let checkpoints = log.checkpoints()?.len();
                            writeln!(
                                out,
                                "OK: {size} entries, {checkpoints} signed checkpoints, root {}",
                                log.root(size)?.to_base64()
                            )?;
                            Ok(ExitCode::SUCCESS)
                        }
                        Err(problems) => {
                            for p in &problems {
                                writeln!(out, "problem: {p}")?;
                            }
                            writeln!(out, "FAILED: {} problems", problems.len())?;
                            Ok(ExitCode::from(1))
                        }
                    }
                }
            }
        }
    }
}

fn open(source: &LogSource) -> anyhow::Result<AuditLog> {
    not_yet(source)?;
    let Some(dir) = &source.data else {
        bail!("--data DIR is required (the verifier's data directory, or a copy of it)");
    };
    let dir = log_dir(dir);
    AuditLog::open_existing(&dir)
        .with_context(|| format!("opening the audit log in {}", dir.display()))
}

/// The log's own directory, or the `audit` folder inside a `verifier serve`
/// data directory (so `--data` takes either).
fn log_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("audit");
    if !dir.join(super::DB_FILE).exists() && inner.join(super::DB_FILE).exists() {
        inner
    } else {
        dir.to_owned()
    }
}

fn not_yet(source: &LogSource) -> anyhow::Result<()> {
    if let Some(url) = &source.server {
        bail!(
            "--server {url}: reviewing a running verifier is not yet supported; \
             use --data DIR with a copy of its data directory"
        );
    }
    Ok(())
}

fn read_key(file: &Path) -> anyhow::Result<String> {
    let key = std::fs::read_to_string(file)
        .with_context(|| format!("reading the log key {}", file.display()))?;
    let key = key.trim().to_owned();
    checkpoint::check_verifier_key(&key)
        .with_context(|| format!("the log key in {}", file.display()))?;
    Ok(key)
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
