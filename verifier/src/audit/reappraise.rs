//! `verifier audit reappraise N`: re-run the appraisal of an entry's stored
//! evidence, as of then or as of now, and say what differs from the decision
//! the log recorded.
//!
//! The evidence is the raw bytes stored under the entry's `evidence_digest`
//! (a bundle sent to the gRPC `Appraise`, or a KBS `/attest` body, whose TEE
//! is named in `/auth` rather than the body: it is read from the primary
//! evidence's shape, SNP `report` or TDX `quote`). The policy set is the one
//! the entry records (`policy_id` = `<set>/<policy>@sha256:…`), else
//! `--policy`. The expected nonce is not checked again (it was single-use and
//! checked when the decision was made); the binding of the nonce, keys and
//! GPU evidence into the CPU report is. Differences are the decision, the EAR
//! status (where one was recorded: a KBS deny records none) and the reasons
//! (by code and field). It never writes to the log.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use attestor::digest::Sha256Digest;
use attestor::evidence::EvidenceBundle;
use attestor::sim::SimSeed;
use p384::ecdsa::SigningKey;
use serde_json::{Value, json};

use super::{AuditLog, Decision, EntryKind, Reason};
use crate::appraise::bundle::Verifier;
use crate::policy::{PolicySet, PolicySetName};
use crate::result::VerifierId;
use crate::time::UnixTime;
use crate::trust::TrustRoots;

/// Arguments of `verifier audit reappraise`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReappraiseArgs {
    /// The verifier's data directory, or a copy of it (entries and evidence).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The entry's index.
    pub n: u64,
    /// Appraise as of this time (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The policy set (production or development) when the entry records none.
    #[arg(long, value_name = "SET")]
    pub policy: Option<String>,
    /// The folder holding the policy sets.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub policies: PathBuf,
    /// Trust the simulator's roots (and use its RIMs) instead of the vendors'.
    #[arg(long)]
    pub danger_simulated_roots: bool,
    /// An NVIDIA RIM (repeatable), besides those in DIR/collateral/nvidia/rim.
    #[arg(long = "rim", value_name = "FILE")]
    pub rims: Vec<PathBuf>,
}

/// Runs `verifier audit reappraise`: exit 0 when the decision is identical,
/// 1 when it differs; bad input is an `Err`.
pub fn run_reappraise(args: &ReappraiseArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let log = AuditLog::open_existing(&args.data.join("audit"))
        .or_else(|_| AuditLog::open_existing(&args.data))
        .with_context(|| format!("opening the audit log in {}", args.data.display()))?;
    let Some(entry) = log.entry(args.n)? else {
        bail!("no entry {}: the log has {} entries", args.n, log.size()?);
    };
    if entry.kind != EntryKind::Appraisal {
        bail!(
            "entry {} is a {} decision: only appraisals can be re-appraised",
            args.n,
            entry.kind.as_str()
        );
    }
    let Some(named) = entry.evidence_digest.as_deref() else {
        bail!("entry {} names no evidence (nothing was appraised)", args.n);
    };
    let digest = named
        .strip_prefix("sha256:")
        .and_then(|h| Sha256Digest::from_hex(h).ok())
        .with_context(|| format!("entry {}: evidence digest {named:?}", args.n))?;
    let Some(raw) = log.evidence(&digest)? else {
        bail!("entry {}: evidence {named} is not stored", args.n);
    };

    let recorded_set = entry
        .policy_id
        .as_deref()
        .and_then(|id| id.split('/').next())
        .and_then(|s| PolicySetName::parse(s).ok());
    let set = match (recorded_set, args.policy.as_deref()) {
        (Some(r), Some(flag)) if r.as_str() != flag => bail!(
            "entry {} was decided under policy set {r}; --policy {flag} contradicts it",
            args.n
        ),
        (Some(r), _) => r.as_str().to_owned(),
        (None, Some(flag)) => flag.to_owned(),
        (None, None) => bail!(
            "entry {} records no policy set: give --policy production|development",
            args.n
        ),
    };
    // The admin's uploads in the data directory override the shipped files,
    // as they did for the server that decided.
    let uploads = args.data.join(crate::admin::POLICY_DIR);
    let policy = PolicySet::load_layered(&[&uploads, &args.policies], &set)
        .with_context(|| format!("loading policy set {set:?}"))?;
    let roots = if args.danger_simulated_roots {
        TrustRoots::danger_simulated(&SimSeed::DEFAULT)?
    } else {
        TrustRoots::vendor()?
    };
    let mut collateral = crate::serve::offline_collateral(&args.data.join("collateral"))?;
    if args.danger_simulated_roots {
        collateral.gpu_rims.extend(
            crate::appraise::bundle::BundleCollateral::danger_simulated(&SimSeed::DEFAULT)?
                .gpu_rims,
        );
    }
    for rim in &args.rims {
        collateral
            .gpu_rims
            .push(std::fs::read(rim).with_context(|| format!("reading {}", rim.display()))?);
    }
    let at = match &args.at {
        Some(text) => UnixTime::parse_rfc3339(text).context("--at")?,
        None => UnixTime::now(),
    };
    // The EAR this run issues is never shown: an ephemeral key.
    let verifier = Verifier::new(
        roots,
        policy,
        SigningKey::random(&mut rand_core::OsRng),
        VerifierId {
            developer: "verifier audit reappraise".to_owned(),
            build: env!("CARGO_PKG_VERSION").to_owned(),
        },
        300,
    );

    let outcome = stored_bundle(&raw)
        .map_err(|e| vec![e])
        .and_then(|b| verifier.appraise_bundle(&b, &collateral, None, at));
    let (decision, status, policy_ids, denials) = match &outcome {
        Ok(a) => (
            if a.is_allowed() {
                Decision::Allow
            } else {
                Decision::Deny
            },
            Some(a.attestation.status().as_str().to_owned()),
            Some(a.attestation.policy_ids.join("+")),
            a.denials.clone(),
        ),
        Err(d) => (Decision::Deny, None, None, d.clone()),
    };
    let now_reasons: Vec<Reason> = denials.iter().map(Reason::from).collect();
    let key = |r: &Reason| (r.code.clone(), r.field.clone().unwrap_or_default());
    let recorded_keys: BTreeSet<_> = entry.reasons.iter().map(key).collect();
    let now_keys: BTreeSet<_> = now_reasons.iter().map(key).collect();
    let added: Vec<&Reason> = now_reasons
        .iter()
        .filter(|r| !recorded_keys.contains(&key(r)))
        .collect();
    let removed: Vec<&Reason> = entry
        .reasons
        .iter()
        .filter(|r| !now_keys.contains(&key(r)))
        .collect();
    // A KBS deny records no EAR status (none is issued to the client), so
    // the status is compared only where one was recorded.
    let status_differs = entry.ear_status.is_some() && status != entry.ear_status;
    let identical =
        decision == entry.decision && !status_differs && added.is_empty() && removed.is_empty();
    // Ids are compared as sets: the broker records them in EAR submodule order.
    let id_set = |ids: &str| ids.split('+').map(str::to_owned).collect::<BTreeSet<_>>();
    let policy_changed = match (&entry.policy_id, &policy_ids) {
        (Some(was), Some(now)) => id_set(was) != id_set(now),
        _ => false,
    };

    if args.json {
        let side = |d: Decision, s: &Option<String>, r: &[Reason]| json!({"decision": d.as_str(), "ear_status": s, "reasons": r});
        let doc = json!({
            "index": args.n,
            "identical": identical,
            "at": at.to_rfc3339(),
            "policy_set": set,
            "policy_changed": policy_changed,
            "evidence_digest": named,
            "recorded": side(entry.decision, &entry.ear_status, &entry.reasons),
            "reappraised": side(decision, &status, &now_reasons),
            "added": added,
            "removed": removed,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        writeln!(
            out,
            "entry {}: recorded {} ({}) at {}; re-appraised as of {} with policy set {set}",
            args.n,
            entry.decision.as_str(),
            entry.ear_status.as_deref().unwrap_or("no EAR"),
            entry.time.to_rfc3339(),
            at.to_rfc3339()
        )?;
        if policy_changed {
            writeln!(out, "note: the policy texts differ from those recorded")?;
        }
        if identical {
            writeln!(
                out,
                "identical: {} ({}), {} reasons",
                decision.as_str(),
                status.as_deref().unwrap_or("no EAR"),
                now_reasons.len()
            )?;
        } else {
            writeln!(out, "DIFFERS:")?;
            if decision != entry.decision {
                writeln!(
                    out,
                    "  decision  {} -> {}",
                    entry.decision.as_str(),
                    decision.as_str()
                )?;
            }
            if status_differs {
                writeln!(
                    out,
                    "  status    {} -> {}",
                    entry.ear_status.as_deref().unwrap_or("no EAR"),
                    status.as_deref().unwrap_or("no EAR")
                )?;
            }
            for r in &added {
                writeln!(out, "  + {}", reason_line(r))?;
            }
            for r in &removed {
                writeln!(out, "  - {}", reason_line(r))?;
            }
        }
    }
    Ok(if identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn reason_line(r: &Reason) -> String {
    let mut line = format!("{}: {}", r.code, r.message);
    if let Some(f) = &r.field {
        line.push_str(&format!(" [{f}"));
        if let Some(e) = &r.expected {
            line.push_str(&format!(": expected {e}"));
        }
        if let Some(found) = &r.found {
            line.push_str(&format!(", found {found}"));
        }
        line.push(']');
    }
    line
}

/// The stored bytes as a bundle; a KBS `/attest` body gets its `tee` from the
/// shape of its primary evidence.
fn stored_bundle(raw: &[u8]) -> Result<EvidenceBundle, crate::denial::Denial> {
    let first = match EvidenceBundle::from_json(raw) {
        Ok(b) => return Ok(b),
        Err(e) => e,
    };
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(raw) else {
        return Err(crate::denial::Denial::malformed(&first));
    };
    if body.contains_key("tee") {
        return Err(crate::denial::Denial::malformed(&first));
    }
    let primary = body
        .get("tee-evidence")
        .and_then(|t| t.get("primary_evidence"));
    let tee = match primary {
        Some(p) if p.get("report").is_some() => "snp",
        Some(p) if p.get("quote").is_some() => "tdx",
        _ => return Err(crate::denial::Denial::malformed(&first)),
    };
    body.insert("tee".to_owned(), Value::from(tee));
    let text = serde_json::to_vec(&Value::Object(body))
        .map_err(|_| crate::denial::Denial::malformed(&first))?;
    EvidenceBundle::from_json(&text).map_err(|e| crate::denial::Denial::malformed(&e))
}
