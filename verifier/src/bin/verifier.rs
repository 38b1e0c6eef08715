//! The `verifier` command line.
//!
//! - `inspect FILE`: look inside any evidence file (no judgment).
//! - `check snp|tdx|gpu|rim …`: appraise one piece of evidence offline.
//! - `collateral fetch …`: fetch vendor collateral into a cache directory.
//! - `audit list|show|prove|verify …`: review the decision log offline (`--data DIR`)
//!   or from a running verifier (`--server URL`); `audit reappraise N`: re-run a stored appraisal.
//! - `receipt verify RECEIPT --evidence BUNDLE …`: a receipt back to its evidence and EAR.
//! - `serve [--config FILE] [--dev] [--data DIR] [--listen ADDR] [--policies DIR]`:
//!   the key broker (KBS protocol), its admin API, and the gRPC service
//!   `attestor.v1.Verifier`, all on one port.
//! - `resource put (--data DIR | --server URL --admin-key FILE) [--tenant T] repo/type/tag FILE`:
//!   store a secret for the broker.
//! - `policy put --server URL --admin-key FILE (--resource FILE | --attestation ID FILE)`:
//!   replace a policy of the running broker.
//! - `reference put --server URL --admin-key FILE FILE`: replace its reference values.
//!
//! Exit codes: 0 success (accepted, verifies), 1 denied or does not verify
//! (every reason printed), 2 bad input or usage.

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
    /// Appraise one piece of evidence offline: exit 0 accepted, 1 denied, 2 bad input.
    #[command(subcommand)]
    Check(verifier::check::CheckCommand),
    /// Vendor collateral (AMD KDS, Intel PCS, NVIDIA RIM service and OCSP).
    #[command(subcommand)]
    Collateral(CollateralCommand),
    /// Review the audit log of decisions.
    #[command(subcommand)]
    Audit(verifier::audit::cli::AuditCommand),
    /// Inference receipts.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Run the key broker (Trustee KBS protocol 0.4.0 over HTTP).
    Serve(verifier::serve::ServeArgs),
    /// Secrets the broker releases.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Policies of a running broker (admin API).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Reference values of a running broker (admin API).
    #[command(subcommand)]
    Reference(ReferenceCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Replace the resource policy or one attestation policy (compiled before it is used).
    Put(verifier::admin::cli::PolicyPutArgs),
}

#[derive(Subcommand)]
enum ReferenceCommand {
    /// Replace the reference values (a full replacement, checked before it is used).
    Put(verifier::admin::cli::ReferencePutArgs),
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Follow a receipt back to its evidence and EAR: exit 0 only when every link holds.
    Verify(verifier::appraise::bundle::cli::ReceiptVerifyArgs),
}

#[derive(Subcommand)]
enum ResourceCommand {
    /// Store a secret: in a broker's data directory, or through its admin API.
    Put(verifier::admin::cli::ResourcePutArgs),
}

#[derive(Subcommand)]
enum CollateralCommand {
    /// Fetch what the given evidence needs into a cache directory (network).
    ///
    /// The directory is then what `check … --collateral DIR` reads offline.
    Fetch {
        /// Cache directory.
        #[arg(long)]
        out: PathBuf,
        /// An SEV-SNP report: fetch its VCEK, the product's cert chain and CRL.
        #[arg(long)]
        snp_report: Option<PathBuf>,
        /// A TDX quote: fetch TCB info for its FMSPC, QE identity, PCK and root CRLs.
        #[arg(long)]
        tdx_quote: Option<PathBuf>,
        /// An NVIDIA SPDM report (Hopper): fetch its driver and VBIOS RIMs.
        #[arg(long)]
        gpu_report: Option<PathBuf>,
        /// The GPU's device chain (PEM): also fetch OCSP responses for it.
        #[arg(long)]
        gpu_chain: Option<PathBuf>,
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
        Command::Check(cmd) => verifier::check::run_check(cmd),
        Command::Audit(cmd) => verifier::audit::cli::run_audit(cmd),
        Command::Receipt(ReceiptCommand::Verify(args)) => {
            verifier::appraise::bundle::cli::run_receipt_verify(&args)
        }
        Command::Serve(args) => verifier::serve::serve(&args).map(|()| ExitCode::SUCCESS),
        Command::Resource(ResourceCommand::Put(args)) => verifier::admin::cli::resource_put(&args),
        Command::Policy(PolicyCommand::Put(args)) => verifier::admin::cli::policy_put(&args),
        Command::Reference(ReferenceCommand::Put(args)) => {
            verifier::admin::cli::reference_put(&args)
        }
        Command::Collateral(CollateralCommand::Fetch {
            out,
            snp_report,
            tdx_quote,
            gpu_report,
            gpu_chain,
        }) => collateral_fetch(out, snp_report, tdx_quote, gpu_report, gpu_chain),
    }
}

fn collateral_fetch(
    out: PathBuf,
    snp_report: Option<PathBuf>,
    tdx_quote: Option<PathBuf>,
    gpu_report: Option<PathBuf>,
    gpu_chain: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use verifier::collateral::{CollateralCache, Fetcher, amd, intel, nvidia};
    if snp_report.is_none() && tdx_quote.is_none() && gpu_report.is_none() {
        anyhow::bail!("nothing to fetch: give --snp-report, --tdx-quote or --gpu-report");
    }
    let now = verifier::time::UnixTime::now();
    let fetcher = Fetcher::online()?;
    let cache = CollateralCache::new(&out);
    let mut fetched = Vec::new();
    if let Some(path) = snp_report {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let report = attestor::snp::report::Report::parse(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        let product = report.product_from_cpuid().context(
            "the report has no CPUID fields (v2): its product cannot be told without the VCEK",
        )?;
        let signer = amd::SnpSigner::from_report(&report)?;
        fetched.extend(amd::fetch_snp(&fetcher, &cache, product, &signer, now)?);
    }
    if let Some(path) = tdx_quote {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let fmspc = intel::fmspc_from_quote(&bytes)?;
        fetched.extend(intel::fetch_tdx(
            &fetcher,
            &cache,
            &fmspc,
            intel::TcbUpdate::default(),
            now,
        )?);
    }
    if let Some(path) = gpu_report {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let rim_ids = nvidia::rim_ids_from_report(&bytes, attestor::nvidia::rim::RimArch::Hopper)?;
        let device_chains = gpu_chain
            .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
            .transpose()?
            .into_iter()
            .collect::<Vec<_>>();
        let ocsp = !device_chains.is_empty();
        let request = nvidia::NvidiaRequest {
            rim_ids,
            device_chains,
            ocsp,
        };
        fetched.extend(nvidia::fetch_nvidia(&fetcher, &cache, &request, now)?);
    }
    for f in &fetched {
        println!("{:?}\t{}\t{:?}", f.source, f.path.display(), f.expires);
    }
    Ok(ExitCode::SUCCESS)
}
