//! The key broker: Trustee's KBS protocol 0.4.0 over HTTP (axum).
//!
//! `POST /kbs/v0/auth`, `POST /kbs/v0/attest`, `GET
//! /kbs/v0/resource/{repo}/{type}/{tag}` with Trustee's JSON shapes, the
//! `kbs-session-id` cookie, an EAR token and a JWE answer
//! ([`crate::jwe`]), so a Trustee client works unchanged. Beyond Trustee:
//! P-384 TEE keys, single-use expiring nonces, a second attest on a session
//! re-appraises (after a fresh `/auth` on the same cookie), every refusal is a
//! 401 RFC 7807 body with stable denial codes, and resources live in per-tenant
//! namespaces ([`ResourceStore`]).
//!
//! Judgment is delegated: evidence to an [`Appraiser`], release to a
//! [`ResourcePolicy`], and every decision is written to a [`DecisionLog`]
//! before it is answered. Fail closed: a secret is released only after the
//! session is attested and unexpired, the policy allows, the resource exists,
//! encryption succeeded and the allow was logged; any error is a 401 without
//! ciphertext. Every answer names the audit entry that recorded it
//! ([`AUDIT_ENTRY_HEADER`]). Appraisals and release decisions run at most
//! [`BrokerConfig::max_concurrent_appraisals`] at once. [`loadgen`] is a
//! loopback load client for tests and benches.

mod adapters;
mod appraiser;
pub mod loadgen;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::{AuditEntry, Decision, EntryKind, Reason};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;

pub use adapters::PolicySetAdapter;
pub use appraiser::PipelineAppraiser;
pub use store::{SqliteResourceStore, StoreError};

/// The protocol version accepted, exactly.
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The session cookie's name.
pub const COOKIE: &str = "kbs-session-id";
/// The prefix of RFC 7807 `type` URIs, as Trustee writes them.
pub const ERROR_TYPE_PREFIX: &str = "https://github.com/confidential-containers/kbs/errors/";
/// Response header naming the audit-log index of the entry that recorded the
/// decision being answered (allow or deny). Absent only when a deny could not
/// be logged. It lets a client or reviewer find the exact entry (`verifier
/// audit show N`), and lets tests check that no answered decision is lost.
/// It reveals only how many decisions the log holds.
pub const AUDIT_ENTRY_HEADER: &str = "x-audit-entry";

/// TEE names (kbs-types `Tee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tee {
    /// Azure SNP vTPM.
    #[serde(rename = "az-snp-vtpm")]
    AzSnpVtpm,
    /// Azure TDX vTPM.
    #[serde(rename = "az-tdx-vtpm")]
    AzTdxVtpm,
    /// NVIDIA GPU.
    #[serde(rename = "nvidia")]
    Nvidia,
    /// Intel SGX.
    #[serde(rename = "sgx")]
    Sgx,
    /// AMD SEV-SNP.
    #[serde(rename = "snp")]
    Snp,
    /// Intel TDX.
    #[serde(rename = "tdx")]
    Tdx,
    /// Arm CCA.
    #[serde(rename = "cca")]
    Cca,
    /// Hygon CSV.
    #[serde(rename = "csv")]
    Csv,
    /// IBM SE.
    #[serde(rename = "se")]
    Se,
    /// Hygon DCU.
    #[serde(rename = "hygondcu")]
    HygonDcu,
    /// TPM.
    #[serde(rename = "tpm")]
    Tpm,
    /// Sample (no TEE).
    #[serde(rename = "sample")]
    Sample,
    /// Sample device.
    #[serde(rename = "sampledevice")]
    SampleDevice,
}

/// What an appraisal vouches for.
#[derive(Debug, Clone, PartialEq)]
pub struct Attested {
    /// The EAR JWT handed to the client.
    pub ear_token: String,
    /// The TEE public JWK bound into the evidence (secrets are encrypted to it).
    pub tee_pubkey_jwk: Value,
    /// The token's claims, for the resource policy.
    pub claims_json: Value,
}

/// Why an appraisal refused: every reason, and, when the evidence was judged
/// (a policy said no), the result that says so, so the audit entry of a
/// denial names the EAR, the TEE key and the policies as an allow does.
#[derive(Debug, Clone, PartialEq)]
pub struct AppraisalRefused {
    /// Every reason (never empty when built by the pipeline).
    pub denials: Vec<Denial>,
    /// The non-affirming result, when one was issued (boxed: refusals are
    /// passed by value and mostly carry none).
    pub result: Option<Box<Attested>>,
}

impl From<Vec<Denial>> for AppraisalRefused {
    fn from(denials: Vec<Denial>) -> Self {
        Self {
            denials,
            result: None,
        }
    }
}

/// Appraises a KBS attestation body. Implementations check the evidence and
/// that `nonce` and the TEE key are bound into it (JCS + SHA-384, see
/// shared/specs/kbs-protocol.md §2).
pub trait Appraiser: Send + Sync {
    /// `attestation_json` is the raw `/attest` body.
    fn appraise(
        &self,
        tee: Tee,
        attestation_json: &[u8],
        nonce: &str,
        now: UnixTime,
    ) -> Result<Attested, AppraisalRefused>;
}

/// One resource request, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRequest<'a> {
    /// The tenant namespace.
    pub tenant: &'a str,
    /// `[repository, type, tag]`.
    pub path: [&'a str; 3],
    /// The attested token's claims.
    pub claims: &'a Value,
}

/// Decides whether a resource may be released. `Ok` carries the deciding
/// policy's id.
pub trait ResourcePolicy: Send + Sync {
    /// Allow (`Ok(policy id)`) or every reason to refuse.
    fn decide(&self, request: &ResourceRequest<'_>) -> Result<String, Vec<Denial>>;
}

/// Where resources live, keyed by tenant / repository / type / tag.
pub trait ResourceStore: Send + Sync {
    /// The resource, or `None` when there is none.
    fn get(&self, tenant: &str, path: [&str; 3]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A decision log could not record an entry.
#[derive(Debug, thiserror::Error)]
#[error("decision log: {0}")]
pub struct LogError(pub String);

/// Records every decision before it is answered.
pub trait DecisionLog: Send + Sync {
    /// Appends one entry durably. `evidence`, when given, is the raw bytes
    /// the entry's `evidence_digest` names, to keep beside the log.
    fn record(&self, entry: &AuditEntry, evidence: Option<&[u8]>) -> Result<(), LogError>;

    /// [`record`](Self::record), returning the entry's index when the log
    /// numbers its entries (the broker answers it in [`AUDIT_ENTRY_HEADER`]).
    fn record_indexed(
        &self,
        entry: &AuditEntry,
        evidence: Option<&[u8]>,
    ) -> Result<Option<u64>, LogError> {
        self.record(entry, evidence).map(|()| None)
    }
}

/// The time source (seconds); injectable for tests.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> UnixTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// Lifetimes and tenancy.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// How long a nonce may be answered (seconds).
    pub nonce_ttl_s: i64,
    /// How long a session (cookie and token) lives (seconds; Trustee: 300).
    pub session_ttl_s: i64,
    /// JSON pointer into the attested claims naming the tenant.
    pub tenant_claim: String,
    /// The tenant when the claims name none.
    pub default_tenant: String,
    /// How long one request may take (appraisal included) before it is refused.
    pub request_timeout: Duration,
    /// Attestations and resource decisions (both evaluate Rego) run at most
    /// this many at once; the rest wait their turn within `request_timeout`.
    /// Rego's execution limit is wall-clock time, so running more
    /// evaluations than cores lets it fire under load and deny good evidence.
    pub max_concurrent_appraisals: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            nonce_ttl_s: 60,
            session_ttl_s: 300,
            tenant_claim: "/tenant".to_owned(),
            default_tenant: "default".to_owned(),
            request_timeout: Duration::from_secs(30),
            max_concurrent_appraisals: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get),
        }
    }
}

/// Everything the broker delegates to.
pub struct BrokerParts {
    /// Evidence appraisal.
    pub appraiser: Arc<dyn Appraiser>,
    /// Release decisions.
    pub policy: Arc<dyn ResourcePolicy>,
    /// Secrets.
    pub store: Arc<dyn ResourceStore>,
    /// Audit.
    pub log: Arc<dyn DecisionLog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone)]
struct Session {
    tee: Tee,
    expires: UnixTime,
    /// The outstanding nonce and its expiry; taken by the first `/attest`.
    nonce: Option<(String, UnixTime)>,
    attested: Option<Attested>,
}

/// The broker's state, shared by the handlers.
pub struct Broker {
    config: BrokerConfig,
    parts: BrokerParts,
    sessions: Mutex<HashMap<String, Session>>,
    /// Permits for [`BrokerConfig::max_concurrent_appraisals`].
    appraisals: Arc<tokio::sync::Semaphore>,
}

/// A refusal: always 401 with an RFC 7807 body.
#[derive(Debug)]
struct Refusal {
    variant: &'static str,
    title: &'static str,
    denials: Vec<Denial>,
    /// The non-affirming result behind an appraisal refusal, for the audit
    /// entry only: it is never sent to the client.
    judged: Option<Box<Attested>>,
}

impl Refusal {
    fn new(variant: &'static str, title: &'static str, denials: Vec<Denial>) -> Self {
        Self {
            variant,
            title,
            denials,
            judged: None,
        }
    }
    fn one(variant: &'static str, title: &'static str, denial: Denial) -> Self {
        Self::new(variant, title, vec![denial])
    }
}

/// Names the audit entry that recorded the decision a response answers.
fn with_audit_entry(mut resp: Response, index: Option<u64>) -> Response {
    if let Some(n) = index {
        resp.headers_mut()
            .insert(AUDIT_ENTRY_HEADER, HeaderValue::from(n));
    }
    resp
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let detail = self
            .denials
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let body = json!({
            "type": format!("{ERROR_TYPE_PREFIX}{}", self.variant),
            "title": self.title,
            "status": 401,
            "detail": detail,
            "denials": self.denials,
        });
        let mut resp = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

#[derive(Deserialize)]
struct AuthRequest {
    version: String,
    tee: Tee,
    #[serde(rename = "extra-params", default)]
    _extra_params: Value,
}

#[derive(Deserialize)]
struct RuntimeData {
    nonce: String,
    #[serde(rename = "tee-pubkey")]
    tee_pubkey: Value,
}

#[derive(Deserialize)]
struct AttestRequest {
    #[serde(rename = "runtime-data")]
    runtime_data: RuntimeData,
    #[serde(rename = "tee-evidence")]
    _tee_evidence: Value,
}

fn sha256_label(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// RFC 7638 thumbprint (SHA-256, base64url) of an EC public JWK.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        s("crv")?,
        s("kty")?,
        s("x")?,
        s("y")?
    );
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(canonical)))
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = v.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

fn broker_error(message: impl Into<String>) -> Denial {
    Denial::new(DenialCode::BrokerError, message)
}

impl Broker {
    /// A broker with no sessions.
    pub fn new(config: BrokerConfig, parts: BrokerParts) -> Self {
        let permits = config.max_concurrent_appraisals.max(1);
        Self {
            config,
            parts,
            sessions: Mutex::new(HashMap::new()),
            appraisals: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// This broker with another [`BrokerConfig::request_timeout`] (for
    /// brokers built elsewhere, e.g. by `serve::build`).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A poisoned map only means a handler panicked; its state is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log(&self, entry: AuditEntry, evidence: Option<&[u8]>) -> Result<Option<u64>, Refusal> {
        self.parts
            .log
            .record_indexed(&entry, evidence)
            .map_err(|e| {
                Refusal::one(
                    "InternalError",
                    "decision could not be logged",
                    broker_error(e.to_string()),
                )
            })
    }

    /// Logs a deny; returns its index when it was logged.
    fn log_deny(
        &self,
        request_id: &str,
        kind: EntryKind,
        resource: Option<String>,
        r: &Refusal,
    ) -> Option<u64> {
        let mut entry = AuditEntry::new(self.parts.clock.now(), request_id, kind, Decision::Deny);
        entry.resource = resource;
        entry.reasons = r.denials.iter().map(Reason::from).collect();
        // A deny is answered as a deny whether or not it could be logged.
        self.parts.log.record_indexed(&entry, None).ok().flatten()
    }

    /// Logs a deny and answers it, naming its entry.
    fn deny(
        &self,
        request_id: &str,
        kind: EntryKind,
        resource: Option<String>,
        r: Refusal,
    ) -> Response {
        let index = self.log_deny(request_id, kind, resource, &r);
        with_audit_entry(r.into_response(), index)
    }

    fn set_cookie(&self, id: &str) -> HeaderValue {
        let text = format!(
            "{COOKIE}={id}; Path=/kbs/v0; Max-Age={}; HttpOnly; SameSite=Strict",
            self.config.session_ttl_s
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `POST /kbs/v0/auth`.
    fn auth(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.parts.clock.now();
        let cookie = session_cookie(headers);
        let request_id = cookie
            .clone()
            .unwrap_or_else(|| "unauthenticated".to_owned());
        let req: AuthRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                let r = Refusal::one(
                    "InvalidRequest",
                    "malformed request",
                    Denial::new(DenialCode::EvidenceMalformed, format!("request body: {e}")),
                );
                return self.deny(&request_id, EntryKind::Challenge, None, r);
            }
        };
        if req.version != PROTOCOL_VERSION {
            let r = Refusal::one(
                "ProtocolVersion",
                "KBS Client Protocol Version Mismatch",
                Denial::mismatch(
                    DenialCode::ProtocolVersionMismatch,
                    "unsupported KBS protocol version",
                    "version",
                    PROTOCOL_VERSION,
                    &req.version,
                ),
            );
            return self.deny(&request_id, EntryKind::Challenge, None, r);
        }
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let nonce = base64::engine::general_purpose::STANDARD.encode(raw);
        let nonce_expires = UnixTime(now.0.saturating_add(self.config.nonce_ttl_s));
        let expires = UnixTime(now.0.saturating_add(self.config.session_ttl_s));
        let id = {
            let mut sessions = self.sessions();
            sessions.retain(|_, s| s.expires.0 > now.0);
            // A live session asking again gets a fresh nonce (to re-attest);
            // its earlier attestation stays until that attest is answered.
            match cookie.filter(|c| {
                sessions
                    .get(c)
                    .is_some_and(|s| s.tee == req.tee && s.expires.0 > now.0)
            }) {
                Some(id) => {
                    if let Some(s) = sessions.get_mut(&id) {
                        s.nonce = Some((nonce.clone(), nonce_expires));
                        s.expires = expires;
                    }
                    id
                }
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    sessions.insert(
                        id.clone(),
                        Session {
                            tee: req.tee,
                            expires,
                            nonce: Some((nonce.clone(), nonce_expires)),
                            attested: None,
                        },
                    );
                    id
                }
            }
        };
        let mut entry = AuditEntry::new(now, &id, EntryKind::Challenge, Decision::Allow);
        entry.policy_id = Some("kbs:challenge".to_owned());
        let index = match self.log(entry, None) {
            Ok(index) => index,
            Err(r) => {
                self.sessions().remove(&id);
                return r.into_response();
            }
        };
        let body = json!({"nonce": nonce, "extra-params": ""});
        let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::SET_COOKIE, self.set_cookie(&id));
        with_audit_entry(resp, index)
    }

    /// `POST /kbs/v0/attest`.
    fn attest(&self, headers: &HeaderMap, body: &[u8], abandoned: &AtomicBool) -> Response {
        let Some(id) = session_cookie(headers) else {
            let r = Refusal::one(
                "UnAuthenticatedCookie",
                "no session",
                Denial::new(DenialCode::SessionInvalid, "no kbs-session-id cookie"),
            );
            return self.deny("unauthenticated", EntryKind::Appraisal, None, r);
        };
        match self.attest_session(&id, body, abandoned) {
            Ok((token, index)) => {
                let mut resp =
                    (StatusCode::OK, axum::Json(json!({"token": token}))).into_response();
                resp.headers_mut()
                    .insert(header::SET_COOKIE, self.set_cookie(&id));
                with_audit_entry(resp, index)
            }
            Err(r) => {
                let index = self.log_attest_deny(&id, body, &r);
                with_audit_entry(r.into_response(), index)
            }
        }
    }

    /// Logs a refused attestation with its raw body stored by digest, so a
    /// reviewer can re-appraise a deny as well as an allow. When the body
    /// cannot be stored, the deny is still logged (without it). Returns the
    /// entry's index when it was logged.
    fn log_attest_deny(&self, request_id: &str, body: &[u8], r: &Refusal) -> Option<u64> {
        if body.is_empty() {
            return self.log_deny(request_id, EntryKind::Appraisal, None, r);
        }
        let mut entry = AuditEntry::new(
            self.parts.clock.now(),
            request_id,
            EntryKind::Appraisal,
            Decision::Deny,
        );
        entry.evidence_digest = Some(sha256_label(body));
        entry.reasons = r.denials.iter().map(Reason::from).collect();
        if let Some(judged) = &r.judged {
            entry.tee_key_thumbprint = jwk_thumbprint(&judged.tee_pubkey_jwk);
            entry.ear_digest = Some(sha256_label(judged.ear_token.as_bytes()));
            entry.ear_status = overall_status(&judged.claims_json);
            entry.policy_id = ear_policy_ids(&judged.claims_json);
        }
        match self.parts.log.record_indexed(&entry, Some(body)) {
            Ok(index) => index,
            Err(_) => self.log_deny(request_id, EntryKind::Appraisal, None, r),
        }
    }

    fn attest_session(
        &self,
        id: &str,
        body: &[u8],
        abandoned: &AtomicBool,
    ) -> Result<(String, Option<u64>), Refusal> {
        let now = self.parts.clock.now();
        // Take the nonce and drop any earlier attestation: whatever happens
        // next, this session is attested only if this evidence passes.
        let (tee, nonce) = {
            let mut sessions = self.sessions();
            let session = sessions
                .get_mut(id)
                .filter(|s| s.expires.0 > now.0)
                .ok_or_else(|| {
                    Refusal::one(
                        "UnAuthenticatedCookie",
                        "unknown or expired session",
                        Denial::new(DenialCode::SessionInvalid, "unknown or expired session"),
                    )
                })?;
            session.attested = None;
            (session.tee, session.nonce.take())
        };
        let nonce_refusal = |d| Refusal::one("AttestationFailed", "nonce refused", d);
        let Some((nonce, nonce_expires)) = nonce else {
            return Err(nonce_refusal(Denial::new(
                DenialCode::NonceReused,
                "this session's nonce was already used; ask /auth for a new one",
            )));
        };
        if now.0 >= nonce_expires.0 {
            return Err(nonce_refusal(Denial::validity(
                DenialCode::NonceExpired,
                "nonce expired",
                "nonce",
                UnixTime(nonce_expires.0.saturating_sub(self.config.nonce_ttl_s)),
                nonce_expires,
                now,
            )));
        }
        let req: AttestRequest = serde_json::from_slice(body).map_err(|e| {
            Refusal::one(
                "InvalidRequest",
                "malformed attestation",
                Denial::new(
                    DenialCode::EvidenceMalformed,
                    format!("attestation body: {e}"),
                ),
            )
        })?;
        if req.runtime_data.nonce != nonce {
            return Err(nonce_refusal(Denial::mismatch(
                DenialCode::NonceMismatch,
                "runtime-data nonce is not this session's nonce",
                "runtime-data.nonce",
                &nonce,
                &req.runtime_data.nonce,
            )));
        }
        let attested = self
            .parts
            .appraiser
            .appraise(tee, body, &nonce, now)
            .map_err(|refused| {
                let d = if refused.denials.is_empty() {
                    vec![broker_error("appraiser refused without a reason")]
                } else {
                    refused.denials
                };
                let mut r = Refusal::new("AttestationFailed", "evidence refused", d);
                r.judged = refused.result;
                r
            })?;
        // The key secrets go to must be the key the client sent and the
        // appraiser found bound, and one we can encrypt to.
        if attested.tee_pubkey_jwk != req.runtime_data.tee_pubkey {
            return Err(Refusal::one(
                "AttestationFailed",
                "TEE key not bound",
                Denial::new(
                    DenialCode::BindingUnverified,
                    "appraised TEE key differs from runtime-data tee-pubkey",
                ),
            ));
        }
        if let Err(e) = crate::jwe::TeePublicKey::from_jwk(&attested.tee_pubkey_jwk) {
            return Err(Refusal::one(
                "AttestationFailed",
                "TEE key unusable",
                Denial::new(DenialCode::UnsupportedAlgorithm, e.to_string()),
            ));
        }
        let mut entry = AuditEntry::new(now, id, EntryKind::Appraisal, Decision::Allow);
        entry.evidence_digest = Some(sha256_label(body));
        entry.tee_key_thumbprint = jwk_thumbprint(&attested.tee_pubkey_jwk);
        entry.ear_digest = Some(sha256_label(attested.ear_token.as_bytes()));
        entry.ear_status = overall_status(&attested.claims_json);
        entry.policy_id = ear_policy_ids(&attested.claims_json);
        let index = self.log(entry, Some(body))?;
        let token = attested.ear_token.clone();
        let mut sessions = self.sessions();
        let session = sessions.get_mut(id).ok_or_else(|| {
            Refusal::one(
                "UnAuthenticatedCookie",
                "session vanished",
                Denial::new(
                    DenialCode::SessionInvalid,
                    "session expired during appraisal",
                ),
            )
        })?;
        // Checked under the sessions lock the timeout path also takes.
        if abandoned.load(Ordering::SeqCst) {
            return Err(Refusal::one(
                "InternalError",
                "request timed out",
                broker_error("attestation abandoned after the request timed out"),
            ));
        }
        session.attested = Some(attested);
        Ok((token, index))
    }

    /// `GET /kbs/v0/resource/{repo}/{type}/{tag}`.
    fn resource(&self, headers: &HeaderMap, path: [&str; 3]) -> Response {
        let resource = format!("kbs:///{}/{}/{}", path[0], path[1], path[2]);
        let request_id = session_cookie(headers).unwrap_or_else(|| "unauthenticated".to_owned());
        match self.release(headers, path, &resource) {
            Ok((jwe, index)) => {
                with_audit_entry((StatusCode::OK, axum::Json(jwe)).into_response(), index)
            }
            Err(r) => self.deny(&request_id, EntryKind::Resource, Some(resource), r),
        }
    }

    fn release(
        &self,
        headers: &HeaderMap,
        path: [&str; 3],
        resource: &str,
    ) -> Result<(crate::jwe::FlattenedJwe, Option<u64>), Refusal> {
        let now = self.parts.clock.now();
        let token_refusal = |d| Refusal::one("TokenNotFound", "no valid attestation token", d);
        let (id, attested) = {
            let sessions = self.sessions();
            let found = if let Some(id) = session_cookie(headers) {
                let s = sessions.get(&id).ok_or_else(|| {
                    token_refusal(Denial::new(
                        DenialCode::SessionInvalid,
                        "unknown session cookie",
                    ))
                })?;
                Some((id, s))
            } else if let Some(token) = bearer(headers) {
                sessions
                    .iter()
                    .find(|(_, s)| s.attested.as_ref().is_some_and(|a| a.ear_token == token))
                    .map(|(id, s)| (id.clone(), s))
            } else {
                None
            };
            let (id, s) = found.ok_or_else(|| {
                token_refusal(Denial::new(
                    DenialCode::TokenMissing,
                    "no session cookie and no known bearer token",
                ))
            })?;
            if s.expires.0 <= now.0 {
                return Err(token_refusal(Denial::new(
                    DenialCode::SessionInvalid,
                    "session expired",
                )));
            }
            let a = s.attested.clone().ok_or_else(|| {
                token_refusal(Denial::new(
                    DenialCode::TokenMissing,
                    "session is not attested",
                ))
            })?;
            (id, a)
        };
        let tenant = attested
            .claims_json
            .pointer(&self.config.tenant_claim)
            .and_then(Value::as_str)
            .unwrap_or(&self.config.default_tenant)
            .to_owned();
        let policy_id = self
            .parts
            .policy
            .decide(&ResourceRequest {
                tenant: &tenant,
                path,
                claims: &attested.claims_json,
            })
            .map_err(|d| {
                let d = if d.is_empty() {
                    vec![Denial::new(DenialCode::PolicyRejected, "policy denied")]
                } else {
                    d
                };
                Refusal::new("PolicyDeny", "resource policy denied", d)
            })?;
        let secret = self
            .parts
            .store
            .get(&tenant, path)
            .map_err(|e| {
                Refusal::one(
                    "InternalError",
                    "resource store failed",
                    broker_error(e.to_string()),
                )
            })?
            .ok_or_else(|| {
                Refusal::one(
                    "ResourceNotFound",
                    "no such resource",
                    Denial::value(
                        DenialCode::ResourceNotFound,
                        "no such resource for this tenant",
                        "resource",
                        format!("{tenant}:{resource}"),
                    ),
                )
            })?;
        let jwe = crate::jwe::encrypt(&attested.tee_pubkey_jwk, &secret).map_err(|e| {
            Refusal::one(
                "InternalError",
                "encryption failed",
                broker_error(e.to_string()),
            )
        })?;
        let mut entry = AuditEntry::new(now, &id, EntryKind::Resource, Decision::Allow);
        entry.resource = Some(resource.to_owned());
        entry.tee_key_thumbprint = jwk_thumbprint(&attested.tee_pubkey_jwk);
        entry.ear_digest = Some(sha256_label(attested.ear_token.as_bytes()));
        entry.ear_status = overall_status(&attested.claims_json);
        entry.policy_id = Some(policy_id);
        let index = self.log(entry, None)?;
        Ok((jwe, index))
    }
}

/// The EAR's overall `ear_status`, else the worst submodule status (our
/// EARs write `ear_status`; the EAR draft's JSON names are `ear.status`).
fn overall_status(claims: &Value) -> Option<String> {
    const ORDER: [&str; 4] = ["contraindicated", "warning", "affirming", "none"];
    if let Some(s) = claims.get("ear_status").and_then(Value::as_str) {
        return Some(s.to_owned());
    }
    let submods = claims.get("submods")?.as_object()?;
    submods
        .values()
        .filter_map(|s| {
            s.get("ear.status")
                .or_else(|| s.get("ear_status"))
                .and_then(Value::as_str)
        })
        .min_by_key(|s| ORDER.iter().position(|o| o == s).unwrap_or(0))
        .map(str::to_owned)
}

/// The policy ids the EAR's submodules name, each once, joined with `+`
/// (`<set>/<policy>@sha256:…`), so a reviewer knows which set decided.
fn ear_policy_ids(claims: &Value) -> Option<String> {
    let mut ids: Vec<&str> = Vec::new();
    for submod in claims.get("submods")?.as_object()?.values() {
        let named = submod
            .get("ear_appraisal_policy_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for id in named {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    (!ids.is_empty()).then(|| ids.join("+"))
}

/// Whether a handler waits for one of the
/// [`BrokerConfig::max_concurrent_appraisals`] permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// Cheap: runs at once.
    None,
    /// Evaluates policy: waits for a permit.
    Appraisal,
}

/// Runs a handler off the async threads, within the configured time (waiting
/// for a permit included). On a timeout the request is refused and abandoned:
/// an attestation still in flight will not mark the session attested, and
/// one that already did is revoked, so a timed-out request never leaves
/// anything usable behind.
async fn guarded<F>(
    b: Arc<Broker>,
    kind: EntryKind,
    limit: Limit,
    headers: &HeaderMap,
    f: F,
) -> Response
where
    F: FnOnce(&Broker, &AtomicBool) -> Response + Send + 'static,
{
    let abandoned = Arc::new(AtomicBool::new(false));
    let task = {
        let (b, abandoned) = (b.clone(), abandoned.clone());
        async move {
            let permit = match limit {
                Limit::None => None,
                // Never closed, so acquiring only waits.
                Limit::Appraisal => b.appraisals.clone().acquire_owned().await.ok(),
            };
            tokio::task::spawn_blocking(move || {
                // Held until the work is done, even when the request has
                // already timed out, so the limit bounds the work running.
                let _permit = permit;
                f(&b, &abandoned)
            })
            .await
        }
    };
    let refusal = match tokio::time::timeout(b.config.request_timeout, task).await {
        Ok(Ok(r)) => return r,
        Ok(Err(e)) => Refusal::one(
            "InternalError",
            "handler failed",
            broker_error(e.to_string()),
        ),
        Err(_) => Refusal::one(
            "InternalError",
            "request timed out",
            broker_error(format!(
                "no answer within {} ms",
                b.config.request_timeout.as_millis()
            )),
        ),
    };
    let id = session_cookie(headers);
    {
        let mut sessions = b.sessions();
        abandoned.store(true, Ordering::SeqCst);
        if kind == EntryKind::Appraisal
            && let Some(s) = id.as_ref().and_then(|id| sessions.get_mut(id))
        {
            s.attested = None;
        }
    }
    b.deny(
        id.as_deref().unwrap_or("unauthenticated"),
        kind,
        None,
        refusal,
    )
}

async fn auth_handler(State(b): State<Arc<Broker>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = headers.clone();
    guarded(b, EntryKind::Challenge, Limit::None, &h, move |b, _| {
        b.auth(&headers, &body)
    })
    .await
}

async fn attest_handler(State(b): State<Arc<Broker>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = headers.clone();
    guarded(
        b,
        EntryKind::Appraisal,
        Limit::Appraisal,
        &h,
        move |b, abandoned| b.attest(&headers, &body, abandoned),
    )
    .await
}

async fn resource_handler(
    State(b): State<Arc<Broker>>,
    Path((repo, kind, tag)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let h = headers.clone();
    guarded(b, EntryKind::Resource, Limit::Appraisal, &h, move |b, _| {
        b.resource(&headers, [&repo, &kind, &tag])
    })
    .await
}

/// The KBS routes under `/kbs/v0`.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/kbs/v0/auth", post(auth_handler))
        .route("/kbs/v0/attest", post(attest_handler))
        .route(
            "/kbs/v0/resource/{repo}/{type}/{tag}",
            get(resource_handler),
        )
        .with_state(broker)
}
