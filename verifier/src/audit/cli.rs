//! The reviewer CLI: `verifier audit list|show|prove|verify|reappraise`,
//! working offline from a copy of the data directory (`--data DIR`) or, for
//! list/show/prove/verify, over the network from a running verifier
//! (`--server URL`, its gRPC service).
//!
//! Exit codes: 0 success (the proof or the whole log verifies; entries found;
//! re-appraisal identical), 1 a negative answer (does not verify; no such
//! entry; nothing matched; re-appraisal differs), errors (unreadable files,
//! bad arguments, unreachable server) are returned for the binary to print
//! and exit 2. This module never modifies a log, except that `prove` signs a
//! new checkpoint when none covers the entry and the directory holds the
//! signing key (a server does the same).
//!
//! `verify --server URL` needs `--log-key FILE` from a trusted source (never
//! the server's own word). Without `--proof` it proves that the server's
//! entries `0..N` hash (RFC 9162) to the root of its current checkpoint,
//! signed by that key: what the server serves is exactly the log it signed.
//! With `--proof FILE` it verifies the proof offline, then proves with a
//! consistency proof that the server's current signed checkpoint extends the
//! tree the proof was made against: the entry is still in the log, which was
//! not rewritten or forked since. Neither proves that the server shows every
//! reviewer the same log (that needs witnesses cosigning checkpoints).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::remote::Remote;
use super::{
    AuditEntry, AuditLog, Decision, EntryFilter, TlogProof, checkpoint, merkle, verify_consistency,
    verify_proof,
};
use crate::time::UnixTime;

/// Where the log is.
#[derive(Debug, Clone, clap::Args)]
pub struct LogSource {
    /// The verifier's data directory, or a reviewer's copy of it.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A running verifier to ask instead (its gRPC service, `http://HOST:PORT`).
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
        /// source; defaults to the one in --data DIR (required with --server).
        #[arg(long = "log-key", value_name = "FILE")]
        log_key: Option<PathBuf>,
    },
    /// Re-run the appraisal of entry N's stored evidence as of --at (or now)
    /// and show what differs from the recorded decision: exit 0 when
    /// identical, 1 when it differs.
    Reappraise(super::reappraise::ReappraiseArgs),
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
            let since_time = since
                .as_deref()
                .map(UnixTime::parse_rfc3339)
                .transpose()
                .context("--since")?;
            let decision = decision.map(|d| match d {
                DecisionArg::Allow => Decision::Allow,
                DecisionArg::Deny => Decision::Deny,
            });
            let entries = match &source.server {
                Some(url) => Remote::connect(url)?
                    .entries(decision, since.as_deref(), 0, None)?
                    .into_iter()
                    .map(|(i, body)| {
                        AuditEntry::from_canonical_bytes(&body)
                            .map(|e| (i, e))
                            .with_context(|| format!("entry {i} from {url}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
                None => open(&source)?.entries(&EntryFilter {
                    decision,
                    kind: None,
                    since: since_time,
                })?,
            };
            print_entries(out, &entries, json)?;
            Ok(exit(!entries.is_empty()))
        }
        AuditCommand::Show { source, n, json } => {
            let body = match &source.server {
                Some(url) => Remote::connect(url)?
                    .entries(None, None, n, Some(n.saturating_add(1)))?
                    .into_iter()
                    .find(|(i, _)| *i == n)
                    .map(|(_, b)| b),
                None => {
                    let log = open(&source)?;
                    let body = log.entry_bytes(n)?;
                    if body.is_none() {
                        writeln!(out, "no entry {n}: the log has {} entries", log.size()?)?;
                    }
                    body
                }
            };
            let Some(body) = body else {
                if source.server.is_some() {
                    writeln!(out, "no entry {n}")?;
                }
                return Ok(ExitCode::from(1));
            };
            let entry =
                AuditEntry::from_canonical_bytes(&body).with_context(|| format!("entry {n}"))?;
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
            if let Some(url) = &source.server {
                return prove_remote(url, n, &file, out);
            }
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
            if let Some(url) = &source.server {
                let Some(key_file) = log_key else {
                    bail!(
                        "--server needs --log-key FILE: over the network the log's key must \
                         come from a source you trust, not from the server"
                    );
                };
                return verify_remote(url, proof.as_deref(), &read_key(&key_file)?, out);
            }
            let key = match (&log_key, &source.data) {
                (Some(file), _) => Some(read_key(file)?),
                (None, Some(dir)) if proof.is_some() => {
                    Some(read_key(&dir.join(super::PUB_KEY_FILE))?)
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
        AuditCommand::Reappraise(args) => super::reappraise::run_reappraise(&args, out),
    }
}

fn print_entries(
    out: &mut dyn Write,
    entries: &[(u64, AuditEntry)],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|(i, e)| serde_json::json!({ "index": i, "entry": e }))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    for (i, e) in entries {
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
    Ok(())
}

/// `prove --server`: the server's proof, written as served, and checked
/// against the key the server announces (a reviewer then checks it against a
/// trusted key with `verify --proof FILE --log-key FILE`).
fn prove_remote(url: &str, n: u64, file: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut remote = Remote::connect(url)?;
    let Some(text) = remote.inclusion_proof(n)? else {
        writeln!(out, "no entry {n} on {url}")?;
        return Ok(ExitCode::from(1));
    };
    let announced = remote.checkpoint()?.log_key;
    let verified = match verify_proof(&text, &announced) {
        Ok(v) if v.index == n => v,
        Ok(v) => {
            writeln!(
                out,
                "FAILED: asked for entry {n}, the server proved {}",
                v.index
            )?;
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            writeln!(out, "FAILED: the server's proof does not verify: {e}")?;
            return Ok(ExitCode::from(1));
        }
    };
    std::fs::write(file, &text).with_context(|| format!("writing {}", file.display()))?;
    writeln!(
        out,
        "wrote {}: entry {n} in {} at tree size {} (root {}); checked against the key the \
         server announces, {announced}: check it against a trusted key with \
         `verifier audit verify --proof {} --log-key FILE`",
        file.display(),
        verified.origin,
        verified.tree_size,
        verified.root.to_base64(),
        file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `verify --server` (see the module docs for what each form proves).
fn verify_remote(
    url: &str,
    proof: Option<&Path>,
    key: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut remote = Remote::connect(url)?;
    let note = remote.checkpoint()?.note;
    let current = match checkpoint::open(&note, key) {
        Ok(c) => c,
        Err(e) => {
            writeln!(out, "FAILED: the server's checkpoint does not verify: {e}")?;
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(file) = proof {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let v = match verify_proof(&text, key) {
            Ok(v) => v,
            Err(e) => {
                writeln!(out, "FAILED: {}: {e}", file.display())?;
                return Ok(ExitCode::from(1));
            }
        };
        if current.size < v.tree_size {
            writeln!(
                out,
                "FAILED: the server's signed log has {} entries, fewer than the {} the proof was \
                 made against (truncated or forked)",
                current.size, v.tree_size
            )?;
            return Ok(ExitCode::from(1));
        }
        let old_note = TlogProof::parse(&text)?.checkpoint;
        let hashes = remote.consistency_proof(v.tree_size, current.size)?;
        return match verify_consistency(&old_note, &note, &hashes, key) {
            Ok(()) => {
                writeln!(
                    out,
                    "OK: entry {} is in {} at tree size {}, and the server's current checkpoint \
                     (size {}, root {}) is consistent with it",
                    v.index,
                    v.origin,
                    v.tree_size,
                    current.size,
                    current.root.to_base64()
                )?;
                writeln!(out, "{}", v.entry_json)?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                writeln!(
                    out,
                    "FAILED: the server's checkpoint (size {}) does not extend the proof's \
                     tree (size {}): {e}",
                    current.size, v.tree_size
                )?;
                Ok(ExitCode::from(1))
            }
        };
    }
    let entries = remote.entries(None, None, 0, Some(current.size))?;
    let mut tree = merkle::MemoryTree::new();
    for (i, body) in &entries {
        if *i != tree.size() {
            writeln!(out, "FAILED: the server skipped entry {}", tree.size())?;
            return Ok(ExitCode::from(1));
        }
        if let Err(e) = AuditEntry::from_canonical_bytes(body) {
            writeln!(out, "FAILED: entry {i}: {e}")?;
            return Ok(ExitCode::from(1));
        }
        tree.push(merkle::leaf_hash(body))?;
    }
    if tree.size() != current.size {
        writeln!(
            out,
            "FAILED: the server served {} entries, its checkpoint covers {}",
            tree.size(),
            current.size
        )?;
        return Ok(ExitCode::from(1));
    }
    let root = tree.root(current.size)?;
    if root != current.root {
        writeln!(
            out,
            "FAILED: the {} entries served hash to {}, the signed checkpoint says {}",
            current.size,
            root.to_base64(),
            current.root.to_base64()
        )?;
        return Ok(ExitCode::from(1));
    }
    writeln!(
        out,
        "OK: the {} entries {url} serves hash to the root of its checkpoint signed by the given \
         key ({}, root {})",
        current.size,
        current.origin,
        root.to_base64()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn open(source: &LogSource) -> anyhow::Result<AuditLog> {
    let Some(dir) = &source.data else {
        bail!("--data DIR or --server URL is required");
    };
    AuditLog::open_existing(dir)
        .with_context(|| format!("opening the audit log in {}", dir.display()))
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
