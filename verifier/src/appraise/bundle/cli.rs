//! `verifier receipt verify`: does a receipt's whole chain hold?
//!
//! Receipt signature → receipt key bound into the evidence → evidence
//! appraisal (roots, policy) → evidence digest → model → EAR (when given).
//! Exit codes: 0 only when every link holds; 1 with every broken link named;
//! bad input (unreadable or unparsable files, bad arguments) is an `Err` the
//! binary prints and exits 2 for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use attestor::evidence::EvidenceBundle;
use attestor::sim::SimSeed;
use p384::ecdsa::{SigningKey, VerifyingKey};
use serde_json::{Value, json};

use super::{BundleCollateral, Verifier};
use crate::appraise::tdx::TdxCollateral;
use crate::policy::PolicySet;
use crate::result::VerifierId;
use crate::time::UnixTime;
use crate::trust::TrustRoots;

/// Arguments of `verifier receipt verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiptVerifyArgs {
    /// The receipt file (compact JWS).
    pub receipt: PathBuf,
    /// The session's evidence bundle (JSON).
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,
    /// The session's EAR (compact JWS); checked when given.
    #[arg(long, value_name = "FILE", requires = "ear_key")]
    pub ear: Option<PathBuf>,
    /// The public JWK of the verifier that issued the EAR (required with --ear).
    #[arg(long = "ear-key", value_name = "FILE")]
    pub ear_key: Option<PathBuf>,
    /// Appraise as of this time (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The policy set: production or development.
    #[arg(long, value_name = "SET", default_value = "production")]
    pub policy: String,
    /// The folder holding the policy sets.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub policies: PathBuf,
    /// Trust the simulator's roots instead of the vendors' (development only).
    #[arg(long)]
    pub danger_simulated_roots: bool,
    /// Intel collateral for a TDX quote (dcap-qvl QuoteCollateralV3 JSON, or a PCS folder).
    #[arg(long = "tdx-collateral", value_name = "PATH")]
    pub tdx_collateral: Option<PathBuf>,
    /// AMD CRL (DER) for the SNP product.
    #[arg(long = "snp-crl", value_name = "FILE")]
    pub snp_crl: Option<PathBuf>,
    /// An NVIDIA RIM (repeatable).
    #[arg(long = "rim", value_name = "FILE")]
    pub rims: Vec<PathBuf>,
    /// An NVIDIA OCSP response, DER (repeatable).
    #[arg(long = "ocsp", value_name = "FILE")]
    pub ocsp: Vec<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read(path)?).with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The P-384 public key of a JWK (`kty`, `crv`, `x`, `y`; other members ignored).
fn ear_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let jwk: Value = serde_json::from_slice(&read(path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    if jwk.get("d").is_some() {
        bail!("{}: a private key was given", path.display());
    }
    let member = |m: &str| jwk.get(m).cloned().unwrap_or(Value::Null);
    let public =
        json!({"kty": member("kty"), "crv": member("crv"), "x": member("x"), "y": member("y")});
    let key = p384::PublicKey::from_jwk_str(&public.to_string())
        .map_err(|_| anyhow::anyhow!("{}: not an EC P-384 public JWK", path.display()))?;
    Ok(VerifyingKey::from(key))
}

fn collateral(args: &ReceiptVerifyArgs) -> anyhow::Result<BundleCollateral> {
    let tdx = args
        .tdx_collateral
        .as_deref()
        .map(|p| TdxCollateral::from_path(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut gpu_rims: Vec<Vec<u8>> = args
        .rims
        .iter()
        .map(|p| read(p))
        .collect::<Result<_, _>>()?;
    if args.danger_simulated_roots {
        // The simulator's GPUs come with the simulator's reference manifests,
        // as `verifier serve --dev` and `audit reappraise` use them.
        gpu_rims.extend(BundleCollateral::danger_simulated(&SimSeed::DEFAULT)?.gpu_rims);
    }
    Ok(BundleCollateral {
        tdx,
        snp_crl: args.snp_crl.as_deref().map(read).transpose()?,
        gpu_rims,
        gpu_ocsp: args
            .ocsp
            .iter()
            .map(|p| read(p))
            .collect::<Result<_, _>>()?,
    })
}

/// Runs `verifier receipt verify`.
pub fn run_receipt_verify(args: &ReceiptVerifyArgs) -> anyhow::Result<ExitCode> {
    let receipt = read_text(&args.receipt)?;
    let bundle = EvidenceBundle::from_json(&read(&args.evidence)?)
        .with_context(|| format!("parsing {}", args.evidence.display()))?;
    let ear = args.ear.as_deref().map(read_text).transpose()?;
    let key = match (&ear, &args.ear_key) {
        (Some(_), Some(path)) => Some(ear_key(path)?),
        (Some(_), None) => bail!("--ear needs --ear-key (the issuing verifier's public JWK)"),
        (None, _) => None,
    };
    let now = match &args.at {
        Some(text) => UnixTime::parse_rfc3339(text).context("--at")?,
        None => UnixTime::now(),
    };
    let roots = if args.danger_simulated_roots {
        TrustRoots::danger_simulated(&SimSeed::DEFAULT)?
    } else {
        TrustRoots::vendor()?
    };
    let policy = PolicySet::load(&args.policies, &args.policy)
        .with_context(|| format!("loading policy set {:?}", args.policy))?;
    // The EAR this run issues internally is never shown: an ephemeral key.
    let signing_key = SigningKey::random(&mut rand_core::OsRng);
    let id = VerifierId {
        developer: "verifier receipt verify".to_owned(),
        build: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut verifier = Verifier::new(roots, policy, signing_key, id, 300);
    if let Some(key) = key {
        verifier = verifier.with_ear_key(key);
    }
    let outcome =
        verifier.verify_receipt(&receipt, &bundle, &collateral(args)?, ear.as_deref(), now);
    let (ok, out) = match &outcome {
        Ok(v) => (
            true,
            json!({
                "verified": true,
                "at": now.to_rfc3339(),
                "receipt_key": v.receipt_key_thumbprint,
                "evidence_digest": v.appraisal.evidence_digest.prefixed(),
                "model_commitment": v.receipt.model_commitment.to_string(),
                "ear_checked": v.ear.is_some(),
                "allowed_claim": v.receipt.allowed_claim,
                "blocked_claims": v.receipt.blocked_claims,
            }),
        ),
        Err(denials) => (
            false,
            json!({"verified": false, "at": now.to_rfc3339(), "denials": denials}),
        ),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match &outcome {
            Ok(v) => {
                println!("receipt verified: every link holds");
                println!("  receipt key      {}", v.receipt_key_thumbprint);
                println!(
                    "  evidence digest  {}",
                    v.appraisal.evidence_digest.prefixed()
                );
                println!("  model            {}", v.receipt.model_commitment);
                println!(
                    "  EAR              {}",
                    if v.ear.is_some() {
                        "checked"
                    } else {
                        "not given"
                    }
                );
                println!("  claim            {}", v.receipt.allowed_claim);
            }
            Err(denials) => {
                println!("receipt NOT verified:");
                for d in denials {
                    println!("  {d}");
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
