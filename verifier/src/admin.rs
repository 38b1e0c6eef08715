//! The admin API: an authenticated operator sets resources, policies and
//! reference values while the broker runs (Trustee KBS admin shapes,
//! shared/specs/kbs-protocol.md §5).
//!
//! | Route | Body |
//! | --- | --- |
//! | `POST /kbs/v0/resource/<repo>/<type>/<tag>[?tenant=T]` | the raw secret bytes |
//! | `POST /kbs/v0/resource-policy` | `{"policy": "<base64url Rego>"}` |
//! | `POST /kbs/v0/attestation-policy` | `{"type": "rego", "policy_id": "cpu"\|"gpu"\|"model", "policy": "<base64url Rego>"}` (`default_cpu`… accepted as Trustee spells them) |
//! | `POST /kbs/v0/reference-value` | our reference values, the file shape of `policies/reference/<set>.json`: `{"<set>": {...}}`, a full replacement |
//!
//! Every call carries `Authorization: Bearer <JWT>`, EdDSA-signed by the
//! admin key ([`token`]: `exp` and `iat` required, lifetime at most 5
//! minutes, each token accepted once); without a configured key the API is
//! [`AdminAuth::DenyAll`]. A policy or reference update is compiled and
//! checked before it replaces anything ([`crate::policy::PolicySet::with_policy`]),
//! written under `DATA/policies/` so a restart keeps it, and takes effect for
//! the next appraisal or release through the shared [`LivePolicySet`]; the
//! new policy ids (SHA-256 of the text) then appear in every EAR.
//!
//! Every call, allowed or refused, is an audit entry of kind `admin`
//! (`resource` names the target, `policy_id`/`policy_digest` the new policy;
//! the secret itself is never logged, not even its digest). An authorized
//! update is logged as allowed *before* it is applied, so an acknowledged
//! change is always in the log; if applying it then fails, a second entry
//! (deny, `broker_error`) says so and the caller gets a 500.
//! Refusals are RFC 7807 bodies with stable codes: `admin_unauthorized` (401)
//! and `admin_update_invalid` (400). This module must never change anything
//! for a call that is not authorized, nor put in force a policy that did not
//! compile.

pub mod cli;
pub mod token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::audit::{AuditEntry, Decision, EntryKind, Reason};
use crate::broker::{Clock, DecisionLog, ERROR_TYPE_PREFIX, SqliteResourceStore};
use crate::denial::{Denial, DenialCode};
use crate::policy::{
    ATTESTATION_POLICIES, LivePolicySet, PolicySet, RESOURCE_POLICY, policy_path, reference_path,
};

pub use token::TokenError;

/// Where an admin's policy and reference uploads are kept, under the data
/// directory; they override the shipped policy directory file by file.
pub const POLICY_DIR: &str = "policies";
/// Under [`POLICY_DIR`]: every upload ever put in force, named
/// `<set>-<policy>-<sha256 hex>.rego` or `<set>-reference-<sha256 hex of JCS>.json`.
pub const ARCHIVE_DIR: &str = "archive";

/// Who may call the admin API.
#[derive(Debug, Clone)]
pub enum AdminAuth {
    /// Nobody: every call is refused (no admin key configured).
    DenyAll,
    /// Bearer tokens signed by this Ed25519 key.
    PublicKey(VerifyingKey),
}

impl AdminAuth {
    /// Checks the request's bearer token as of `now` (signature and times;
    /// [`Admin`] also refuses a token it has already accepted).
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        now: crate::time::UnixTime,
    ) -> Result<token::AdminClaims, TokenError> {
        let key = match self {
            Self::DenyAll => return Err(TokenError::Disabled),
            Self::PublicKey(key) => key,
        };
        token::verify(bearer(headers).ok_or(TokenError::Missing)?, key, now)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// What the admin API changes, and where it records that it did.
pub struct AdminParts {
    /// Who may call.
    pub auth: AdminAuth,
    /// The data directory (uploads go to `DATA/policies/`).
    pub data: PathBuf,
    /// The policy set the appraiser and the resource policy share.
    pub policy: LivePolicySet,
    /// The broker's resource store.
    pub store: Arc<SqliteResourceStore>,
    /// The audit log.
    pub log: Arc<dyn DecisionLog>,
    /// Time (token expiry, entry times).
    pub clock: Arc<dyn Clock>,
    /// The tenant when a resource upload names none.
    pub default_tenant: String,
}

/// The admin API's state.
pub struct Admin {
    parts: AdminParts,
    /// Updates are applied one at a time, so two uploads cannot interleave
    /// their validate-persist-replace steps and lose one.
    updating: Mutex<()>,
    /// Tokens accepted and not yet expired (token → `exp`): a token is
    /// accepted once, so one captured in transit cannot be replayed.
    used: Mutex<HashMap<String, i64>>,
}

/// One admin operation, parsed from its route.
#[derive(Debug)]
enum Operation {
    PutResource {
        tenant: Option<String>,
        path: [String; 3],
        value: Bytes,
    },
    ResourcePolicy(Bytes),
    AttestationPolicy(Bytes),
    ReferenceValue(Bytes),
}

impl Operation {
    fn target(&self) -> String {
        match self {
            Self::PutResource { path, .. } => {
                format!("kbs:///{}/{}/{}", path[0], path[1], path[2])
            }
            Self::ResourcePolicy(_) => "admin:resource-policy".to_owned(),
            Self::AttestationPolicy(_) => "admin:attestation-policy".to_owned(),
            Self::ReferenceValue(_) => "admin:reference-value".to_owned(),
        }
    }
}

/// A refusal: 401 (not authorized) or 400 (invalid update) or 500, RFC 7807.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    variant: &'static str,
    title: &'static str,
    /// Boxed: a refusal travels through every `Result` here and stays small.
    denial: Box<Denial>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("{ERROR_TYPE_PREFIX}{}", self.variant),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.denial.to_string(),
            "denials": [self.denial],
        });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        variant: "InvalidRequest",
        title: "admin update refused",
        denial: Box::new(Denial::new(DenialCode::AdminUpdateInvalid, message)),
    }
}

fn internal(message: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        variant: "InternalError",
        title: "admin update failed",
        denial: Box::new(Denial::new(DenialCode::BrokerError, message)),
    }
}

fn unauthorized(e: &TokenError) -> Refusal {
    let denial = match e {
        TokenError::Expired { exp, now } => Denial::mismatch(
            DenialCode::AdminUnauthorized,
            e.to_string(),
            "exp",
            format!("> {now}"),
            exp.to_string(),
        ),
        _ => Denial::new(DenialCode::AdminUnauthorized, e.to_string()),
    };
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        variant: "AdminAuth",
        title: "admin authentication failed",
        denial: Box::new(denial),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcePolicyBody {
    policy: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestationPolicyBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    policy_id: String,
    policy: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Rego text from base64url (Trustee writes it without padding; padded is accepted).
fn rego_text(b64: &str) -> Result<String, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64.trim())
        .or_else(|_| URL_SAFE.decode(b64.trim()))
        .map_err(|e| invalid(format!("policy is not base64url: {e}")))?;
    String::from_utf8(bytes).map_err(|e| invalid(format!("policy is not UTF-8: {e}")))
}

/// One resource path component: what `verifier resource put` and the KBS
/// route accept (no separators, no dot segments, no control characters).
fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && c.len() <= 256
        && c.chars()
            .all(|ch| !ch.is_control() && ch != '/' && ch != '\\')
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Admin {
    /// The admin API over `parts`.
    pub fn new(parts: AdminParts) -> Self {
        Self {
            parts,
            updating: Mutex::new(()),
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any call can succeed (a key is configured).
    pub fn is_enabled(&self) -> bool {
        matches!(self.parts.auth, AdminAuth::PublicKey(_))
    }

    fn handle(&self, headers: &HeaderMap, op: Operation) -> Response {
        let now = self.parts.clock.now();
        let request_id = format!("admin:{}", uuid::Uuid::new_v4().simple());
        let mut entry = AuditEntry::new(now, &request_id, EntryKind::Admin, Decision::Allow);
        entry.resource = Some(op.target());
        let outcome = self
            .parts
            .auth
            .authorize(headers, now)
            .and_then(|claims| self.first_use(headers, &claims, now).map(|()| claims))
            .map_err(|e| unauthorized(&e))
            .and_then(|claims| {
                if let Some(sub) = claims.sub {
                    // Bounded and printable: it goes into every entry of this caller.
                    let sub: String = sub.chars().filter(|c| !c.is_control()).take(64).collect();
                    entry.request_id = format!("{request_id}:{sub}");
                }
                self.apply(op, &mut entry)
            });
        match outcome {
            Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
            Err(r) => {
                entry.decision = Decision::Deny;
                entry.reasons = vec![Reason::from(&*r.denial)];
                // A refusal is answered as one whether or not it could be logged.
                let _ = self.parts.log.record(&entry, None);
                r.into_response()
            }
        }
    }

    /// Remembers a verified token until it expires; refuses it the second time.
    fn first_use(
        &self,
        headers: &HeaderMap,
        claims: &token::AdminClaims,
        now: crate::time::UnixTime,
    ) -> Result<(), TokenError> {
        let token = bearer(headers).ok_or(TokenError::Missing)?;
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        used.retain(|_, exp| *exp > now.0);
        if used.insert(token.to_owned(), claims.exp).is_some() {
            return Err(TokenError::Replayed);
        }
        Ok(())
    }

    /// Validates, logs, persists and puts in force one authorized update.
    fn apply(&self, op: Operation, entry: &mut AuditEntry) -> Result<Value, Refusal> {
        let _one_at_a_time = self.updating.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            Operation::PutResource {
                tenant,
                path,
                value,
            } => {
                if let Some(bad) = path.iter().find(|c| !valid_component(c)) {
                    return Err(invalid(format!("bad resource path component {bad:?}")));
                }
                let tenant = tenant.unwrap_or_else(|| self.parts.default_tenant.clone());
                if !valid_component(&tenant) {
                    return Err(invalid(format!("bad tenant {tenant:?}")));
                }
                // No digest of the secret is logged: a low-entropy secret
                // could be guessed from it.
                entry.resource = Some(format!(
                    "{tenant}:{}",
                    entry.resource.take().unwrap_or_default()
                ));
                self.record(entry)?;
                let [repo, kind, tag] = &path;
                self.parts
                    .store
                    .put(&tenant, [repo, kind, tag], &value)
                    .map_err(|e| internal(e.to_string()))?;
                Ok(json!({
                    "tenant": tenant,
                    "resource": format!("{repo}/{kind}/{tag}"),
                    "bytes": value.len(),
                }))
            }
            Operation::ResourcePolicy(body) => {
                let req: ResourcePolicyBody = serde_json::from_slice(&body)
                    .map_err(|e| invalid(format!("resource-policy body: {e}")))?;
                let text = rego_text(&req.policy)?;
                self.replace_policy(RESOURCE_POLICY, text, entry)
            }
            Operation::AttestationPolicy(body) => {
                let req: AttestationPolicyBody = serde_json::from_slice(&body)
                    .map_err(|e| invalid(format!("attestation-policy body: {e}")))?;
                if let Some(kind) = req.kind.as_deref().filter(|k| *k != "rego") {
                    return Err(invalid(format!("policy type {kind:?} is not rego")));
                }
                let id = req
                    .policy_id
                    .strip_prefix("default_")
                    .unwrap_or(&req.policy_id);
                let Some(policy) = ATTESTATION_POLICIES.into_iter().find(|p| *p == id) else {
                    return Err(invalid(format!(
                        "policy_id {:?} is not one of cpu, gpu, model",
                        req.policy_id
                    )));
                };
                let text = rego_text(&req.policy)?;
                self.replace_policy(policy, text, entry)
            }
            Operation::ReferenceValue(body) => {
                let file: Value = serde_json::from_slice(&body)
                    .map_err(|e| invalid(format!("reference values: {e}")))?;
                let current = self.parts.policy.current();
                let next = current
                    .with_reference_values(&file)
                    .map_err(|e| invalid(e.to_string()))?;
                let id = next.policy_ids().last().cloned().unwrap_or_default();
                // The id names the SHA-256 of the values' canonical JSON.
                let digest = id.rsplit_once("@sha256:").map(|(_, d)| d.to_owned());
                entry.policy_id = Some(id);
                entry.policy_digest = digest.as_ref().map(|d| format!("sha256:{d}"));
                self.record(entry)?;
                let pretty =
                    serde_json::to_vec_pretty(&file).map_err(|e| internal(e.to_string()))?;
                let archived = format!(
                    "{}-reference-{}.json",
                    next.name(),
                    digest.unwrap_or_default()
                );
                self.persist(
                    &reference_path(&self.policy_dir(), next.name()),
                    &archived,
                    &pretty,
                )?;
                Ok(self.put_in_force(next))
            }
        }
    }

    fn replace_policy(
        &self,
        policy: &str,
        text: String,
        entry: &mut AuditEntry,
    ) -> Result<Value, Refusal> {
        let current = self.parts.policy.current();
        let digest = sha256_hex(text.as_bytes());
        let next = current
            .with_policy(policy, text.clone())
            .map_err(|e| invalid(e.to_string()))?;
        entry.policy_id = next
            .policy_ids()
            .into_iter()
            .find(|id| id.starts_with(&format!("{}/{policy}@", next.name())));
        entry.policy_digest = Some(format!("sha256:{digest}"));
        self.record(entry)?;
        let path = policy_path(&self.policy_dir(), next.name(), policy);
        let archived = format!("{}-{policy}-{digest}.rego", next.name());
        self.persist(&path, &archived, text.as_bytes())?;
        Ok(self.put_in_force(next))
    }

    /// Writes an upload where the next start loads it, and a copy named by
    /// its digest under `DATA/policies/archive/`, so the exact text behind
    /// every policy id an EAR or audit entry names stays available to a
    /// reviewer after later updates.
    fn persist(&self, path: &Path, archived: &str, bytes: &[u8]) -> Result<(), Refusal> {
        let archive = self.policy_dir().join(ARCHIVE_DIR).join(archived);
        for p in [archive.as_path(), path] {
            write_atomically(p, bytes).map_err(|e| internal(format!("{}: {e}", p.display())))?;
        }
        Ok(())
    }

    fn put_in_force(&self, next: PolicySet) -> Value {
        let ids = next.policy_ids();
        self.parts.policy.replace(next);
        json!({ "policy_ids": ids })
    }

    /// The allow is logged before anything changes: an acknowledged change
    /// is always in the log.
    fn record(&self, entry: &AuditEntry) -> Result<(), Refusal> {
        self.parts
            .log
            .record(entry, None)
            .map_err(|e| internal(format!("the update could not be logged: {e}")))
    }

    fn policy_dir(&self) -> PathBuf {
        self.parts.data.join(POLICY_DIR)
    }
}

#[derive(Deserialize)]
struct TenantQuery {
    tenant: Option<String>,
}

/// Runs one operation off the async threads (SQLite and Rego compilation block).
async fn run(admin: Arc<Admin>, headers: HeaderMap, op: Operation) -> Response {
    match tokio::task::spawn_blocking(move || admin.handle(&headers, op)).await {
        Ok(r) => r,
        Err(e) => internal(format!("admin handler failed: {e}")).into_response(),
    }
}

async fn put_resource(
    State(admin): State<Arc<Admin>>,
    UrlPath((repo, kind, tag)): UrlPath<(String, String, String)>,
    Query(q): Query<TenantQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = Operation::PutResource {
        tenant: q.tenant,
        path: [repo, kind, tag],
        value: body,
    };
    run(admin, headers, op).await
}

async fn resource_policy(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(admin, headers, Operation::ResourcePolicy(body)).await
}

async fn attestation_policy(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(admin, headers, Operation::AttestationPolicy(body)).await
}

async fn reference_value(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(admin, headers, Operation::ReferenceValue(body)).await
}

/// The admin routes; merge with [`crate::broker::router`] (the resource
/// path is shared: GET there, POST here).
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/kbs/v0/resource/{repo}/{type}/{tag}", post(put_resource))
        .route("/kbs/v0/resource-policy", post(resource_policy))
        .route("/kbs/v0/attestation-policy", post(attestation_policy))
        .route("/kbs/v0/reference-value", post(reference_value))
        .with_state(admin)
}
