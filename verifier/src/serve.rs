//! `verifier serve`: the key broker (Trustee KBS protocol 0.4.0 over HTTP).
//!
//! Wires the pieces together: the whole-bundle appraisal pipeline, the Rego
//! policy set (attestation and resource), the SQLite resource store, and the
//! audit log, all under one data directory. `--dev` means loopback, the
//! development policy set, the simulator's roots, and a data directory of its
//! own; it says so loudly on start. Without `--dev` the production policy set
//! and the vendors' roots are used.
//!
//! The gRPC service ([`crate::grpc`]) answers on the same port.
//! Not yet here (see the README): the admin HTTP API and a configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::appraise::bundle::{BundleCollateral, Verifier};
use crate::audit::AuditLog;
use crate::broker::{
    Broker, BrokerConfig, BrokerParts, PipelineAppraiser, PolicySetAdapter, SqliteResourceStore,
    SystemClock, router,
};
use crate::grpc::VerifierService;
use crate::policy::PolicySet;
use crate::result::VerifierId;
use crate::trust::TrustRoots;

/// `verifier serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Development mode: loopback only, the development policy set, and the
    /// SIMULATOR's roots accepted. Never for production.
    #[arg(long)]
    pub dev: bool,
    /// Data directory (resource store, audit log, verifier keys).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Listen address; default 127.0.0.1:8080 (with --dev: 127.0.0.1:0, a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Policy directory.
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
}

/// `verifier resource put` arguments: store a secret offline (the broker may be running).
#[derive(Debug, clap::Args)]
pub struct ResourcePutArgs {
    /// Data directory of the broker.
    #[arg(long)]
    pub data: PathBuf,
    /// Tenant namespace.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Resource path `repository/type/tag`.
    pub path: String,
    /// File holding the secret.
    pub file: PathBuf,
}

/// Stores one resource.
pub fn resource_put(args: &ResourcePutArgs) -> anyhow::Result<()> {
    let parts: Vec<&str> = args.path.split('/').collect();
    let [repo, kind, tag] = parts.as_slice() else {
        anyhow::bail!(
            "resource path must be repository/type/tag, got {:?}",
            args.path
        );
    };
    let value =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let store = SqliteResourceStore::open(&args.data.join("resources.sqlite3"))?;
    store.put(&args.tenant, [repo, kind, tag], &value)?;
    eprintln!(
        "stored {} bytes at {}/{}",
        value.len(),
        args.tenant,
        args.path
    );
    Ok(())
}

/// Runs the broker until interrupted.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let data = args.data.clone().unwrap_or_else(|| {
        PathBuf::from(if args.dev {
            ".verifier-dev"
        } else {
            "verifier-data"
        })
    });
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let (set, roots) = if args.dev {
        (
            "development",
            TrustRoots::danger_simulated(&attestor::sim::SimSeed::DEFAULT)
                .context("simulated roots")?,
        )
    } else {
        ("production", TrustRoots::vendor()?)
    };
    let listen = args.listen.unwrap_or_else(|| {
        if args.dev {
            SocketAddr::from(([127, 0, 0, 1], 0))
        } else {
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    });
    if args.dev && !listen.ip().is_loopback() {
        anyhow::bail!("--dev listens on loopback only, not {listen}");
    }
    let collateral = if args.dev {
        // The simulator's GPU comes with the simulator's reference manifests.
        BundleCollateral {
            gpu_rims: attestor::simulate::gpu_rims(&attestor::sim::SimSeed::DEFAULT)
                .context("simulated RIMs")?
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            ..BundleCollateral::default()
        }
    } else {
        offline_collateral(&data.join("collateral"))?
    };
    let (broker, grpc) = build_with_grpc(&data, &args.policies, set, roots, collateral)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        if args.dev {
            eprintln!(
                "WARNING: --dev: development policy set and the SIMULATOR's roots are accepted"
            );
        }
        println!(
            "verifier: listening on http://{addr} (policy set {set}, data {})",
            data.display()
        );
        axum::serve(
            listener,
            crate::grpc::with_grpc(router(Arc::new(broker)), grpc),
        )
        .await
        .context("serving")
    })
}

/// Reference manifests for GPUs from a collateral cache (`verifier collateral
/// fetch --out DIR/collateral`): every `nvidia/rim/*.xml`. Missing is fine:
/// then GPUs cannot be compared and the policy decides.
pub fn offline_collateral(dir: &Path) -> anyhow::Result<BundleCollateral> {
    let mut collateral = BundleCollateral::default();
    let rim_dir = dir.join("nvidia").join("rim");
    if let Ok(entries) = std::fs::read_dir(&rim_dir) {
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "xml") {
                collateral.gpu_rims.push(
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                );
            }
        }
    }
    Ok(collateral)
}

/// Builds a broker from a data directory, a policy set, roots and collateral.
pub fn build(
    data: &Path,
    policies: &Path,
    set: &str,
    roots: TrustRoots,
    collateral: BundleCollateral,
) -> anyhow::Result<Broker> {
    build_with_grpc(data, policies, set, roots, collateral).map(|(broker, _)| broker)
}

/// [`build`], and the gRPC service over the same verifier and audit log.
pub fn build_with_grpc(
    data: &Path,
    policies: &Path,
    set: &str,
    roots: TrustRoots,
    collateral: BundleCollateral,
) -> anyhow::Result<(Broker, VerifierService)> {
    let policy = PolicySet::load(policies, set)
        .with_context(|| format!("loading policy set {set} from {}", policies.display()))?;
    let signing_key = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let ear_jwk = crate::result::public_jwk(signing_key.verifying_key());
    std::fs::write(
        data.join("ear_key.jwk"),
        serde_json::to_vec_pretty(&ear_jwk)?,
    )
    .context("writing the EAR public key")?;
    let verifier_id = VerifierId {
        developer: "https://github.com/cc-inference-attestor".into(),
        build: concat!("verifier ", env!("CARGO_PKG_VERSION")).into(),
    };
    let verifier = Arc::new(Verifier::new(
        roots,
        policy.clone(),
        signing_key,
        verifier_id,
        300,
    ));
    let store = SqliteResourceStore::open(&data.join("resources.sqlite3"))?;
    let audit = Arc::new(AuditLog::open(&data.join("audit"))?);
    let grpc = VerifierService::new(
        verifier.clone(),
        collateral.clone(),
        audit.clone(),
        Arc::new(SystemClock),
    );
    let broker = Broker::new(
        BrokerConfig::default(),
        BrokerParts {
            appraiser: Arc::new(PipelineAppraiser::shared(verifier, collateral)),
            policy: Arc::new(PolicySetAdapter(policy)),
            store: Arc::new(store),
            log: audit,
            clock: Arc::new(SystemClock),
        },
    );
    Ok((broker, grpc))
}
