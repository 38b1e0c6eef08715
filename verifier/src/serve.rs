//! `verifier serve`: the key broker (Trustee KBS protocol 0.4.0 over HTTP)
//! and its admin API, on one port.
//!
//! Wires the pieces together: the whole-bundle appraisal pipeline, the Rego
//! policy set (attestation and resource, replaceable through the admin API),
//! the SQLite resource store, and the audit log, all under one data
//! directory. Configuration comes from `--config FILE` ([`crate::config`])
//! with flags overriding it. `--dev` means loopback, the development policy
//! set, the simulator's roots, a data directory of its own, and an admin key
//! generated into it; it says so loudly on start. Without `--dev` the
//! production policy set and the vendors' roots are used, and the admin API
//! refuses every call unless `admin_public_key` is configured.
//!
//! The data directory holds:
//! - `ear_key.pem`: the EAR signing key (ES384, PKCS#8, 0600), created on
//!   first start and reused after, so EARs issued across restarts verify with
//!   the same `ear_key.jwk` (its public JWK, rewritten on every start);
//! - `audit/`: the decision log and its own signing key ([`crate::audit`]);
//! - `resources.sqlite3`: the secrets;
//! - `policies/`: admin uploads, overriding the shipped policy files one by one;
//! - `admin-key.pem` (`--dev` only): the admin private key (Ed25519, 0600).
//!
//! The gRPC service `attestor.v1.Verifier` ([`crate::grpc`]) answers on the
//! same port, over the same verifier and audit log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use p384::ecdsa::SigningKey;
use p384::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};

use crate::admin::{self, Admin, AdminAuth, AdminParts};
use crate::appraise::bundle::{BundleCollateral, Verifier};
use crate::audit::AuditLog;
use crate::broker::{
    Broker, BrokerConfig, BrokerParts, PipelineAppraiser, PolicySetAdapter, SqliteResourceStore,
    SystemClock, router,
};
use crate::config::ServeConfig;
use crate::grpc::VerifierService;
use crate::policy::{LivePolicySet, PolicySet, PolicySetName};
use crate::result::VerifierId;
use crate::trust::TrustRoots;

pub use crate::admin::cli::ResourcePutArgs;

/// The EAR signing key's file in the data directory.
pub const EAR_KEY_FILE: &str = "ear_key.pem";
/// The EAR public key (JWK) in the data directory.
pub const EAR_JWK_FILE: &str = "ear_key.jwk";
/// The admin private key `--dev` generates in the data directory.
pub const DEV_ADMIN_KEY_FILE: &str = "admin-key.pem";
/// Default EAR lifetime (seconds).
pub const DEFAULT_EAR_TTL_SECS: u64 = 300;

/// `verifier serve` arguments.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; see the `verifier::config` docs). Flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Development mode: loopback only, the development policy set, the
    /// SIMULATOR's roots accepted, and an admin key generated in the data
    /// directory. Never for production.
    #[arg(long)]
    pub dev: bool,
    /// Data directory (resource store, audit log, verifier keys, admin uploads).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Listen address; default 127.0.0.1:8080 (with --dev: 127.0.0.1:0, a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Shipped policy directory (default: policies).
    #[arg(long)]
    pub policies: Option<PathBuf>,
}

/// Who may use the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminKey {
    /// Nobody (every admin call is refused).
    DenyAll,
    /// Tokens signed by the key whose public PEM is in this file.
    PublicKeyFile(PathBuf),
    /// `--dev`: `DATA/admin-key.pem`, generated if absent.
    DevGenerated,
}

/// Everything `serve` needs, resolved from the configuration file and flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `--dev` (loopback only, loud warnings).
    pub dev: bool,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data: PathBuf,
    /// The shipped policy directory.
    pub policies: PathBuf,
    /// Which policy set decides.
    pub policy_set: PolicySetName,
    /// Accept the simulator's roots (and its GPU reference manifests).
    pub danger_simulated_roots: bool,
    /// Who may use the admin API.
    pub admin: AdminKey,
    /// Offline collateral cache (`verifier collateral fetch --out`).
    pub collateral: PathBuf,
    /// EAR lifetime.
    pub ear_ttl_secs: u64,
}

impl ServeOptions {
    /// Merges the configuration file (if any) and the flags (which win).
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => ServeConfig::read(path)?,
            None => ServeConfig::default(),
        };
        let mut policy_set = file.policy_set();
        let mut danger_simulated_roots = file.danger_simulated_roots;
        if args.dev {
            if file.policy_set.is_some() && policy_set != PolicySetName::Development {
                anyhow::bail!(
                    "--dev uses the development policy set, but the configuration says {policy_set}"
                );
            }
            policy_set = PolicySetName::Development;
            danger_simulated_roots = true;
        }
        let data = args.data.clone().or(file.data).unwrap_or_else(|| {
            PathBuf::from(if args.dev {
                ".verifier-dev"
            } else {
                "verifier-data"
            })
        });
        let listen = args.listen.or(file.listen).unwrap_or_else(|| {
            if args.dev {
                SocketAddr::from(([127, 0, 0, 1], 0))
            } else {
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        });
        if args.dev && !listen.ip().is_loopback() {
            anyhow::bail!("--dev listens on loopback only, not {listen}");
        }
        let admin = match (file.admin_public_key, args.dev) {
            (Some(path), _) => AdminKey::PublicKeyFile(path),
            (None, true) => AdminKey::DevGenerated,
            (None, false) => AdminKey::DenyAll,
        };
        Ok(Self {
            dev: args.dev,
            listen,
            collateral: file.collateral.unwrap_or_else(|| data.join("collateral")),
            data,
            policies: args
                .policies
                .clone()
                .or(file.policies)
                .unwrap_or_else(|| PathBuf::from("policies")),
            policy_set,
            danger_simulated_roots,
            admin,
            ear_ttl_secs: file.ear_ttl_secs.unwrap_or(DEFAULT_EAR_TTL_SECS),
        })
    }
}

/// A built server: the broker and the admin API over the same state.
pub struct Service {
    /// The KBS protocol.
    pub broker: Arc<Broker>,
    /// The admin API.
    pub admin: Arc<Admin>,
    /// `--dev`: the generated admin private key's path.
    pub admin_key_file: Option<PathBuf>,
    /// The gRPC service (same verifier and audit log as the broker).
    pub grpc: VerifierService,
}

impl Service {
    /// The KBS and admin routes, and the gRPC service, on one router.
    pub fn router(&self) -> axum::Router {
        crate::grpc::with_grpc(
            router(self.broker.clone()).merge(admin::router(self.admin.clone())),
            self.grpc.clone(),
        )
    }
}

/// Runs the broker until interrupted.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let opts = ServeOptions::resolve(args)?;
    let service = build_service(&opts)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listening on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        if opts.danger_simulated_roots {
            eprintln!(
                "WARNING: {}development policy set and the SIMULATOR's roots are accepted",
                if opts.dev { "--dev: " } else { "" }
            );
        }
        match (&opts.admin, &service.admin_key_file) {
            (AdminKey::DenyAll, _) => eprintln!(
                "admin API: disabled (DenyAll): no admin_public_key configured, every admin call is refused"
            ),
            (AdminKey::PublicKeyFile(p), _) => {
                eprintln!("admin API: tokens signed by the key in {}", p.display());
            }
            (AdminKey::DevGenerated, Some(p)) => eprintln!(
                "admin API: --dev admin key {} (use it with --admin-key)",
                p.display()
            ),
            (AdminKey::DevGenerated, None) => {}
        }
        println!(
            "verifier: listening on http://{addr} (policy set {}, data {})",
            opts.policy_set,
            opts.data.display()
        );
        axum::serve(listener, service.router())
            .await
            .context("serving")
    })
}

/// Builds the broker and the admin API from resolved options.
pub fn build_service(opts: &ServeOptions) -> anyhow::Result<Service> {
    std::fs::create_dir_all(&opts.data)
        .with_context(|| format!("creating {}", opts.data.display()))?;
    let mut collateral = offline_collateral(&opts.collateral)?;
    let roots = if opts.danger_simulated_roots {
        if opts.policy_set != PolicySetName::Development {
            anyhow::bail!(
                "the simulator's roots are accepted only with the development policy set"
            );
        }
        // The simulator's GPU comes with the simulator's reference manifests.
        collateral.gpu_rims.extend(
            BundleCollateral::danger_simulated(&attestor::sim::SimSeed::DEFAULT)
                .context("simulated RIMs")?
                .gpu_rims,
        );
        TrustRoots::danger_simulated(&attestor::sim::SimSeed::DEFAULT).context("simulated roots")?
    } else {
        TrustRoots::vendor()?
    };
    let (auth, admin_key_file) = match &opts.admin {
        AdminKey::DenyAll => (AdminAuth::DenyAll, None),
        AdminKey::PublicKeyFile(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading the admin public key {}", path.display()))?;
            let key = admin::token::read_verifying_key(&pem)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("admin public key {}", path.display()))?;
            (AdminAuth::PublicKey(key), None)
        }
        AdminKey::DevGenerated => {
            let path = opts.data.join(DEV_ADMIN_KEY_FILE);
            let key = load_or_create_dev_admin_key(&path)?;
            (AdminAuth::PublicKey(key), Some(path))
        }
    };
    let (broker, admin, grpc) = assemble(
        &opts.data,
        &opts.policies,
        opts.policy_set,
        roots,
        collateral,
        auth,
        opts.ear_ttl_secs,
    )?;
    Ok(Service {
        broker: Arc::new(broker),
        admin: Arc::new(admin),
        admin_key_file,
        grpc,
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

/// Builds a broker from a data directory, a policy set, roots and collateral
/// (the admin API refusing everything; see [`build_service`] for all of it).
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
    let set = PolicySetName::parse(set)?;
    let (broker, _admin, grpc) = assemble(
        data,
        policies,
        set,
        roots,
        collateral,
        AdminAuth::DenyAll,
        DEFAULT_EAR_TTL_SECS,
    )?;
    Ok((broker, grpc))
}

fn assemble(
    data: &Path,
    policies: &Path,
    set: PolicySetName,
    roots: TrustRoots,
    collateral: BundleCollateral,
    auth: AdminAuth,
    ear_ttl_secs: u64,
) -> anyhow::Result<(Broker, Admin, VerifierService)> {
    let uploads = data.join(admin::POLICY_DIR);
    let policy =
        PolicySet::load_layered(&[&uploads, policies], set.as_str()).with_context(|| {
            format!(
                "loading policy set {set} from {} (admin uploads in {})",
                policies.display(),
                uploads.display()
            )
        })?;
    let policy = LivePolicySet::new(policy);
    let signing_key = load_or_create_ear_key(data)?;
    let verifier_id = VerifierId {
        developer: "https://github.com/cc-inference-attestor".into(),
        build: concat!("verifier ", env!("CARGO_PKG_VERSION")).into(),
    };
    let verifier = Arc::new(Verifier::new(
        roots,
        policy.clone(),
        signing_key,
        verifier_id,
        ear_ttl_secs,
    ));
    let store = Arc::new(SqliteResourceStore::open(&data.join("resources.sqlite3"))?);
    let audit = Arc::new(AuditLog::open(&data.join("audit"))?);
    let clock = Arc::new(SystemClock);
    let grpc = VerifierService::new(
        verifier.clone(),
        collateral.clone(),
        audit.clone(),
        clock.clone(),
    );
    let config = BrokerConfig::default();
    let admin = Admin::new(AdminParts {
        auth,
        data: data.to_owned(),
        policy: policy.clone(),
        store: store.clone(),
        log: audit.clone(),
        clock: clock.clone(),
        default_tenant: config.default_tenant.clone(),
    });
    let broker = Broker::new(
        config,
        BrokerParts {
            appraiser: Arc::new(PipelineAppraiser::shared(verifier, collateral)),
            policy: Arc::new(PolicySetAdapter(policy)),
            store,
            log: audit,
            clock,
        },
    );
    Ok((broker, admin, grpc))
}

/// The EAR signing key of a data directory: `DATA/ear_key.pem` (PKCS#8 PEM,
/// 0600), created on first use; `DATA/ear_key.jwk` is rewritten from it.
/// A key file readable by group or others is refused rather than used.
pub fn load_or_create_ear_key(data: &Path) -> anyhow::Result<SigningKey> {
    let path = data.join(EAR_KEY_FILE);
    let key = if path.exists() {
        check_private(&path)?;
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{}: not a P-384 PKCS#8 key: {e}", path.display()))?
    } else {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the EAR key: {e}"))?;
        write_private(&path, pem.as_bytes())?;
        key
    };
    let jwk = crate::result::public_jwk(key.verifying_key());
    std::fs::write(data.join(EAR_JWK_FILE), serde_json::to_vec_pretty(&jwk)?)
        .context("writing the EAR public key")?;
    Ok(key)
}

fn load_or_create_dev_admin_key(path: &Path) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    if path.exists() {
        check_private(path)?;
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = admin::token::read_signing_key(&pem)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("admin key {}", path.display()))?;
        return Ok(key.verifying_key());
    }
    let (key, pem) = admin::token::generate_pem().map_err(anyhow::Error::msg)?;
    write_private(path, pem.as_bytes())?;
    Ok(key.verifying_key())
}

/// Writes a new private key file, 0600, through a temporary file so a crash
/// never leaves half a key.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("creating {}", path.display()))
}

/// Refuses a private key file that group or others may read.
fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}
