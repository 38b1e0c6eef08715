//! The admin CLI: `verifier resource put`, `verifier policy put`,
//! `verifier reference put`.
//!
//! Over the network each call mints a short-lived admin token (EdDSA, the
//! key from `--admin-key`) and POSTs to the admin API; a refusal prints the
//! server's RFC 7807 body and exits 1. `resource put --data DIR` instead
//! writes into a broker's data directory directly (no token: whoever can
//! write the directory is already its administrator).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::token;
use crate::broker::SqliteResourceStore;
use crate::time::UnixTime;

/// Where to send an admin call.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The verifier's URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub server: String,
    /// The admin private key (Ed25519 PKCS#8 PEM; `verifier serve --dev` writes DATA/admin-key.pem).
    #[arg(long)]
    pub admin_key: PathBuf,
}

/// `verifier resource put` arguments.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["data", "server"]))]
pub struct ResourcePutArgs {
    /// Write into this broker data directory directly (the broker may be running).
    #[arg(long, conflicts_with_all = ["server", "admin_key"])]
    pub data: Option<PathBuf>,
    /// Send to this verifier's admin API (needs --admin-key).
    #[arg(long, requires = "admin_key")]
    pub server: Option<String>,
    /// The admin private key (Ed25519 PKCS#8 PEM).
    #[arg(long)]
    pub admin_key: Option<PathBuf>,
    /// Tenant namespace (default: `default`, or the server's default tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Resource path `repository/type/tag`.
    pub path: String,
    /// File holding the secret.
    pub file: PathBuf,
}

/// `verifier policy put` arguments.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["resource", "attestation"]))]
pub struct PolicyPutArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Replace the resource policy with this Rego file.
    #[arg(long, value_name = "FILE")]
    pub resource: Option<PathBuf>,
    /// Replace one attestation policy (`cpu`, `gpu` or `model`) with a Rego file.
    #[arg(long, num_args = 2, value_names = ["ID", "FILE"])]
    pub attestation: Option<Vec<String>>,
}

/// `verifier reference put` arguments.
#[derive(Debug, clap::Args)]
pub struct ReferencePutArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Reference values, shaped like `policies/reference/<set>.json` (a full replacement).
    pub file: PathBuf,
}

/// Runs `verifier resource put`.
pub fn resource_put(args: &ResourcePutArgs) -> anyhow::Result<ExitCode> {
    let parts: Vec<&str> = args.path.split('/').collect();
    let [repo, kind, tag] = parts.as_slice() else {
        bail!(
            "resource path must be repository/type/tag, got {:?}",
            args.path
        );
    };
    let value = read(&args.file)?;
    if let (Some(server), Some(key)) = (&args.server, &args.admin_key) {
        let mut url = reqwest::Url::parse(&format!(
            "{}/kbs/v0/resource/{repo}/{kind}/{tag}",
            server.trim_end_matches('/')
        ))
        .with_context(|| format!("--server {server:?}"))?;
        if let Some(t) = &args.tenant {
            url.query_pairs_mut().append_pair("tenant", t);
        }
        return post(url.as_str(), key, value, "application/octet-stream");
    }
    let Some(data) = &args.data else {
        bail!("give --data DIR or --server URL --admin-key FILE");
    };
    let tenant = args.tenant.as_deref().unwrap_or("default");
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let store = SqliteResourceStore::open(&data.join("resources.sqlite3"))?;
    store.put(tenant, [repo, kind, tag], &value)?;
    eprintln!("stored {} bytes at {tenant}/{}", value.len(), args.path);
    Ok(ExitCode::SUCCESS)
}

/// Runs `verifier policy put`.
pub fn policy_put(args: &PolicyPutArgs) -> anyhow::Result<ExitCode> {
    let base = args.server.server.trim_end_matches('/');
    let (url, body) = match (&args.resource, args.attestation.as_deref()) {
        (Some(file), None) => (
            format!("{base}/kbs/v0/resource-policy"),
            json!({"policy": URL_SAFE_NO_PAD.encode(read(file)?)}),
        ),
        (None, Some([id, file])) => (
            format!("{base}/kbs/v0/attestation-policy"),
            json!({
                "type": "rego",
                "policy_id": id,
                "policy": URL_SAFE_NO_PAD.encode(read(Path::new(file))?),
            }),
        ),
        _ => bail!("give --resource FILE or --attestation ID FILE"),
    };
    post(
        &url,
        &args.server.admin_key,
        body.to_string().into_bytes(),
        "application/json",
    )
}

/// Runs `verifier reference put`.
pub fn reference_put(args: &ReferencePutArgs) -> anyhow::Result<ExitCode> {
    let body = read(&args.file)?;
    // Checked here too, so a typo is reported before anything is sent.
    serde_json::from_slice::<Value>(&body)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let url = format!(
        "{}/kbs/v0/reference-value",
        args.server.server.trim_end_matches('/')
    );
    post(&url, &args.server.admin_key, body, "application/json")
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// POSTs with a fresh admin token; prints the answer. Exit 0 on 2xx, 1 on a
/// refusal (the problem body on stderr).
fn post(url: &str, key_file: &Path, body: Vec<u8>, content_type: &str) -> anyhow::Result<ExitCode> {
    let pem = std::fs::read_to_string(key_file)
        .with_context(|| format!("reading {}", key_file.display()))?;
    let key = token::read_signing_key(&pem)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("admin key {}", key_file.display()))?;
    let bearer = token::mint(&key, UnixTime::now(), Some("verifier-cli"));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let resp = client
        .post(url)
        .bearer_auth(bearer)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().context("reading the answer")?;
    if status.is_success() {
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    } else {
        let shown = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(text);
        eprintln!("refused ({status}):\n{shown}");
        Ok(ExitCode::from(1))
    }
}
