//! `verifier check …`: appraise one piece of evidence offline and say why.
//!
//! Exit codes: 0 accepted, 1 denied (every reason printed), 2 bad input or usage.
//! Claims (or denials) print as JSON with `--json`, otherwise as short text.
//! Warnings (genuine but unsafe: debug on, TCB out of date, GPU devtools) are
//! printed on stderr even when accepted: policy, not appraisal, refuses them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;
use crate::trust::TrustRoots;

/// Options every check shares.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Appraise as of this time (RFC 3339); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Print claims or denials as JSON.
    #[arg(long)]
    pub json: bool,
    /// Replace the built-in vendor roots with the files in this directory.
    #[arg(long, conflicts_with = "danger_simulated_roots")]
    pub roots: Option<PathBuf>,
    /// Trust the SIMULATOR's roots instead of the vendors' (development only:
    /// evidence accepted this way proves nothing about hardware).
    #[arg(long)]
    pub danger_simulated_roots: bool,
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// An SEV-SNP attestation report.
    Snp {
        report: PathBuf,
        /// The VCEK or VLEK certificate (DER or PEM).
        #[arg(long)]
        cert: PathBuf,
        /// ASK/ASVK (+ ARK) PEM, when not the built-in ones.
        #[arg(long)]
        chain: Option<PathBuf>,
        /// An AMD CRL for the product.
        #[arg(long)]
        crl: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// A TDX DCAP quote.
    Tdx {
        quote: PathBuf,
        /// Collateral: one dcap-qvl JSON file, or a directory of Intel PCS files.
        #[arg(long)]
        collateral: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// An NVIDIA GPU SPDM report (binary) or JSON evidence list.
    Gpu {
        report: PathBuf,
        /// The device certificate chain (PEM); not needed for JSON evidence.
        #[arg(long)]
        chain: Option<PathBuf>,
        /// Driver or VBIOS RIM (repeatable).
        #[arg(long = "rim")]
        rims: Vec<PathBuf>,
        /// Expected nonce (64 hex digits).
        #[arg(long)]
        nonce: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// An NVIDIA RIM's signature and chain.
    Rim {
        rim: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

/// Runs one `verifier check` subcommand.
pub fn run_check(cmd: CheckCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CheckCommand::Snp {
            report,
            cert,
            chain,
            crl,
            common,
        } => {
            let ctx = Context::new(&common)?;
            let report = read(&report)?;
            let cert = read(&cert)?;
            let chain = chain.map(|p| read(&p)).transpose()?;
            let crl = crl.map(|p| read(&p)).transpose()?;
            let evidence = crate::appraise::snp::SnpEvidence {
                report: &report,
                vek_der: Some(&cert),
                cert_table: None,
                expected_report_data: None,
            };
            let collateral = crate::appraise::snp::SnpCollateral {
                crl_der: crl.as_deref(),
                chain_override: chain.as_deref(),
            };
            let result =
                crate::appraise::snp::appraise(&evidence, &ctx.roots, &collateral, ctx.now);
            ctx.report("snp", result.map(|c| (c.warnings.clone(), c)))
        }
        CheckCommand::Tdx {
            quote,
            collateral,
            common,
        } => {
            let ctx = Context::new(&common)?;
            let quote = read(&quote)?;
            let collateral = crate::appraise::tdx::TdxCollateral::from_path(&collateral)
                .with_context(|| format!("reading collateral {}", collateral.display()))?;
            let evidence = crate::appraise::tdx::TdxEvidence {
                quote: &quote,
                cc_eventlog: None,
                expected_report_data: None,
            };
            let result =
                crate::appraise::tdx::appraise(&evidence, &ctx.roots, Some(&collateral), ctx.now);
            ctx.report("tdx", result.map(|c| (c.warnings.clone(), c)))
        }
        CheckCommand::Gpu {
            report,
            chain,
            rims,
            nonce,
            common,
        } => {
            let ctx = Context::new(&common)?;
            let bytes = read(&report)?;
            let rims: Vec<Vec<u8>> = rims.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
            let collateral = crate::appraise::nvidia::GpuCollateral {
                rims: rims.iter().map(Vec::as_slice).collect(),
                ocsp: Vec::new(),
            };
            let nonce = nonce
                .map(|n| {
                    attestor::hex::decode_array::<32>(&n).context("--nonce must be 64 hex digits")
                })
                .transpose()?;
            let trimmed = bytes.trim_ascii_start();
            if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
                let list = attestor::nvidia::evidence::GpuEvidenceList::parse_json(&bytes)
                    .with_context(|| format!("parsing GPU evidence {}", report.display()))?;
                let result = crate::appraise::nvidia::appraise_list(
                    &list,
                    nonce,
                    &ctx.roots,
                    &collateral,
                    ctx.now,
                );
                ctx.report(
                    "gpu",
                    result.map(|c| (c.iter().flat_map(|g| g.warnings.clone()).collect(), c)),
                )
            } else {
                let chain = chain
                    .map(|p| read(&p))
                    .transpose()?
                    .context("--chain is required for a binary SPDM report")?;
                let evidence = crate::appraise::nvidia::GpuEvidence {
                    report: &bytes,
                    chain_pem: &chain,
                    expected_nonce: nonce,
                };
                let result =
                    crate::appraise::nvidia::appraise(&evidence, &ctx.roots, &collateral, ctx.now);
                ctx.report("gpu", result.map(|c| (c.warnings.clone(), c)))
            }
        }
        CheckCommand::Rim { rim, common } => {
            let ctx = Context::new(&common)?;
            let xml = read(&rim)?;
            let result = crate::appraise::rim::appraise_rim(&xml, &ctx.roots, ctx.now);
            ctx.report("rim", result.map(|c| (c.warnings.clone(), c)))
        }
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

struct Context {
    roots: TrustRoots,
    now: UnixTime,
    json: bool,
}

impl Context {
    fn new(common: &Common) -> anyhow::Result<Self> {
        let now = match &common.at {
            Some(at) => UnixTime::parse_rfc3339(at)?,
            None => UnixTime::now(),
        };
        let roots = match &common.roots {
            Some(dir) => TrustRoots::from_dir(dir)?,
            None if common.danger_simulated_roots => {
                eprintln!(
                    "WARNING: --danger-simulated-roots: trusting the simulator's roots, not the vendors'"
                );
                TrustRoots::danger_simulated(&attestor::sim::SimSeed::DEFAULT)?
            }
            None => TrustRoots::vendor()?,
        };
        Ok(Self {
            roots,
            now,
            json: common.json,
        })
    }

    /// Prints the outcome; malformed evidence is bad input (exit 2), any other
    /// denial exit 1, acceptance exit 0 (warnings on stderr).
    fn report<C: serde::Serialize>(
        &self,
        kind: &str,
        result: Result<(Vec<String>, C), Vec<Denial>>,
    ) -> anyhow::Result<ExitCode> {
        match result {
            Ok((warnings, claims)) => {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                if self.json {
                    let out = serde_json::json!({"kind": kind, "accepted": true, "at": self.now, "claims": claims, "warnings": warnings});
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!(
                        "ACCEPTED: {kind} evidence verified as of {} ({} roots)",
                        self.now,
                        roots_label(&self.roots)
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(denials) => {
                let malformed = !denials.is_empty()
                    && denials.iter().all(|d| {
                        matches!(
                            d.code,
                            DenialCode::EvidenceMalformed | DenialCode::UnsupportedFormat
                        )
                    });
                if self.json {
                    let out = serde_json::json!({"kind": kind, "accepted": false, "at": self.now, "denials": denials});
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!(
                        "DENIED: {kind} evidence as of {} ({} reasons)",
                        self.now,
                        denials.len()
                    );
                    for d in &denials {
                        println!("  - {d}");
                    }
                }
                if malformed {
                    eprintln!("error: the {kind} evidence is malformed");
                    Ok(ExitCode::from(2))
                } else {
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

fn roots_label(roots: &TrustRoots) -> &'static str {
    match roots.origin {
        crate::trust::RootsOrigin::Vendor => "vendor",
        crate::trust::RootsOrigin::Directory(_) => "operator-supplied",
        crate::trust::RootsOrigin::Simulated => "SIMULATED",
    }
}
