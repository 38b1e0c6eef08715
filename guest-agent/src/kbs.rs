//! The agent's side of the key broker: Trustee's KBS protocol 0.4.0 over HTTP.
//!
//! [`KbsClient`] speaks the protocol: `POST /kbs/v0/auth` (the TEE name and
//! the hash algorithm we use) gives a nonce and the `kbs-session-id` cookie;
//! `POST /kbs/v0/attest` sends `runtime-data` and `tee-evidence` and gets the
//! EAR token; `GET /kbs/v0/resource/<repo>/<type>/<tag>` gets a JWE
//! (ECDH-ES+A256KW, A256GCM) that only the session's TEE key decrypts.
//! [`KbsAttester`] is one whole attestation for a [`Session`]: auth, evidence
//! collected for the broker's nonce and bound to the session's TEE key,
//! receipt key and model commitment, attest, and the EAR verified with the
//! configured verifier key ([`crate::ear`]).
//!
//! Fails closed: any refusal is a [`KbsError`]; a broker denial keeps its RFC
//! 7807 body ([`Problem`], with the denial codes and values as the broker
//! wrote them). Nothing here ever treats an unverified token as a result, and
//! a released secret exists only in memory.

use std::time::Duration;

use attestor::evidence::{EvidenceBundle, Tee};
use attestor::jwe::{FlattenedJwe, JweError, TeeSecretKey};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, SET_COOKIE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ear::{EarError, EarKey, Expected, VerifiedEar};
use crate::session::{EvidenceSource, Session, SessionError};

/// The KBS protocol version we speak (the broker accepts exactly this).
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The session cookie's name.
pub const COOKIE_NAME: &str = "kbs-session-id";
/// How long one HTTP exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The most bytes of a non-problem error body kept in an error.
const MAX_SHOWN_BODY: usize = 512;

/// An RFC 7807 problem body, as the broker answers a refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type URI (Trustee's error names).
    #[serde(rename = "type", default)]
    pub type_uri: String,
    /// A short title.
    #[serde(default)]
    pub title: String,
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Every denial in words.
    #[serde(default)]
    pub detail: String,
    /// The denials with their stable codes and offending values.
    #[serde(default)]
    pub denials: Vec<ProblemDenial>,
}

/// One denial of a [`Problem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemDenial {
    /// The stable denial code (`simulation_not_allowed`, …).
    pub code: String,
    /// What was wrong.
    #[serde(default)]
    pub message: String,
    /// The offending values (`kind`, `field`, `expected`, `found`, …).
    #[serde(default)]
    pub detail: Value,
}

impl Problem {
    /// The denial codes, in the broker's order.
    pub fn codes(&self) -> Vec<&str> {
        self.denials.iter().map(|d| d.code.as_str()).collect()
    }
}

/// Why talking to the key broker failed.
#[derive(Debug, thiserror::Error)]
pub enum KbsError {
    /// The broker URL or a resource path is not usable.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// "broker URL" or "resource path".
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The request did not complete (connection, timeout, TLS).
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The broker refused, with its reasons (RFC 7807 body).
    #[error("key broker denied: {}: {}", .problem.codes().join(", "), .problem.detail)]
    Denied {
        /// The problem body as parsed.
        problem: Box<Problem>,
        /// The body exactly as received.
        body: String,
    },
    /// The broker answered an error status without a problem body.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A successful answer is not of the expected shape.
    #[error("{what}: {reason}")]
    Answer {
        /// Which answer.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The TEE kind could not be determined or evidence could not be collected.
    #[error("evidence: {0}")]
    Evidence(#[from] SessionError),
    /// No CPU TEE on this machine to name in `/auth`.
    #[error("no SEV-SNP or TDX guest interface found; cannot attest")]
    NoTee,
    /// The EAR did not verify.
    #[error("attestation result refused: {0}")]
    Ear(#[from] EarError),
    /// The released resource did not decrypt with the TEE key.
    #[error("resource {path}: {source}")]
    Jwe {
        /// The resource path.
        path: String,
        /// Why.
        #[source]
        source: JweError,
    },
}

impl KbsError {
    /// The problem body when the broker denied.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Denied { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// A KBS protocol client with one broker session (cookie) at a time.
#[derive(Debug, Clone)]
pub struct KbsClient {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
    token: Option<String>,
}

impl KbsClient {
    /// A client for the broker at `url` (`http://host:port` or `https://…`).
    pub fn new(url: &str) -> Result<Self, KbsError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(KbsError::Invalid {
                what: "broker URL",
                value: url.to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| KbsError::Http {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base,
            http,
            cookie: None,
            token: None,
        })
    }

    /// The latest EAR token the broker issued to this client (unverified).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `POST /kbs/v0/auth`: a fresh nonce (standard base64) for this session
    /// (a new session the first time; the same cookie afterwards, so a
    /// re-attestation re-appraises the same session).
    pub async fn auth(&mut self, tee: Tee) -> Result<String, KbsError> {
        let body = json!({
            "version": PROTOCOL_VERSION,
            "tee": tee.as_str(),
            // We bind with SHA-384 only (DESIGN.md §3).
            "extra-params": {"supported-hash-algorithms": ["sha384"]},
        });
        let answer = self.post("/kbs/v0/auth", &body).await?;
        #[derive(Deserialize)]
        struct Challenge {
            nonce: String,
        }
        let challenge: Challenge = parse_answer("auth answer", &answer)?;
        if challenge.nonce.is_empty() {
            return Err(KbsError::Answer {
                what: "auth answer",
                reason: "empty nonce".into(),
            });
        }
        Ok(challenge.nonce)
    }

    /// `POST /kbs/v0/attest` with the bundle's `runtime-data` and
    /// `tee-evidence`; returns the EAR token (not verified here).
    pub async fn attest(&mut self, bundle: &EvidenceBundle) -> Result<String, KbsError> {
        let v = bundle.to_value();
        let body = json!({
            "runtime-data": v.get("runtime-data").cloned().unwrap_or(Value::Null),
            "tee-evidence": v.get("tee-evidence").cloned().unwrap_or(Value::Null),
        });
        let answer = self.post("/kbs/v0/attest", &body).await?;
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let token: Token = parse_answer("attest answer", &answer)?;
        self.token = Some(token.token.clone());
        Ok(token.token)
    }

    /// `GET /kbs/v0/resource/<repo>/<type>/<tag>`, decrypted with `key`.
    pub async fn get_resource(&self, path: &str, key: &TeeSecretKey) -> Result<Vec<u8>, KbsError> {
        let [repo, kind, tag] = resource_path(path)?;
        let url = format!("{}/kbs/v0/resource/{repo}/{kind}/{tag}", self.base);
        let mut request = self.http.get(&url);
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, format!("{COOKIE_NAME}={c}"));
        }
        let response = request.send().await.map_err(|e| http(&url, &e))?;
        let (_, text) = self.read(&url, response).await?;
        let jwe: FlattenedJwe = parse_answer("resource answer", &text)?;
        attestor::jwe::decrypt(&jwe, key).map_err(|source| KbsError::Jwe {
            path: path.to_owned(),
            source,
        })
    }

    async fn post(&mut self, route: &str, body: &Value) -> Result<String, KbsError> {
        let url = format!("{}{route}", self.base);
        let mut request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, format!("{COOKIE_NAME}={c}"));
        }
        let response = request.send().await.map_err(|e| http(&url, &e))?;
        let (headers, text) = self.read(&url, response).await?;
        if let Some(c) = session_cookie(&headers) {
            self.cookie = Some(c);
        }
        Ok(text)
    }

    async fn read(
        &self,
        url: &str,
        response: reqwest::Response,
    ) -> Result<(HeaderMap, String), KbsError> {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| http(url, &e))?;
        if status == StatusCode::OK {
            return Ok((headers, text));
        }
        match serde_json::from_str::<Problem>(&text) {
            Ok(problem) if !problem.type_uri.is_empty() => Err(KbsError::Denied {
                problem: Box::new(problem),
                body: text,
            }),
            _ => Err(KbsError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                body: text.chars().take(MAX_SHOWN_BODY).collect(),
            }),
        }
    }
}

fn http(url: &str, e: &reqwest::Error) -> KbsError {
    KbsError::Http {
        url: url.to_owned(),
        // The chain names the cause (connection refused, timeout…).
        reason: std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": "),
    }
}

fn parse_answer<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, KbsError> {
    serde_json::from_str(text).map_err(|e| KbsError::Answer {
        what,
        reason: e.to_string(),
    })
}

/// The `kbs-session-id` value of a `Set-Cookie` header.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `repo/type/tag`: exactly three non-empty segments of URL-safe characters.
pub fn resource_path(path: &str) -> Result<[&str; 3], KbsError> {
    let invalid = || KbsError::Invalid {
        what: "resource path",
        value: path.chars().take(200).collect(),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let [repo, kind, tag] = parts.as_slice() else {
        return Err(invalid());
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if [repo, kind, tag].iter().all(|s| ok(s)) {
        Ok([repo, kind, tag])
    } else {
        Err(invalid())
    }
}

/// The KBS TEE name for an evidence source.
pub fn source_tee(source: &EvidenceSource) -> Result<Tee, KbsError> {
    match source {
        EvidenceSource::DangerSimulate { tee, .. } => Ok(*tee),
        EvidenceSource::Hardware => match attestor::collect::detect().cpu_kind() {
            Some(attestor::collect::CpuKind::Snp) => Ok(Tee::Snp),
            Some(attestor::collect::CpuKind::Tdx) => Ok(Tee::Tdx),
            None => Err(KbsError::NoTee),
        },
    }
}

/// One verified attestation: the bundle the broker appraised and its EAR.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// The evidence bundle that was sent and appraised.
    pub bundle: EvidenceBundle,
    /// The verified result.
    pub ear: VerifiedEar,
}

/// Attests a session through the broker, again whenever asked.
#[derive(Debug, Clone)]
pub struct KbsAttester {
    client: KbsClient,
    ear_key: EarKey,
    source: EvidenceSource,
    model: String,
}

impl KbsAttester {
    /// An attester for the model commitment `model` (`sha256:<hex>`).
    pub fn new(client: KbsClient, ear_key: EarKey, source: EvidenceSource, model: String) -> Self {
        Self {
            client,
            ear_key,
            source,
            model,
        }
    }

    /// The underlying client (its cookie names the attested session).
    pub fn client(&self) -> &KbsClient {
        &self.client
    }

    /// auth → evidence bound to the broker's nonce, the session's keys and
    /// the model → attest → EAR verified with the verifier's key.
    pub async fn attest(&mut self, session: &Session) -> Result<Attestation, KbsError> {
        let tee = source_tee(&self.source)?;
        let nonce = self.client.auth(tee).await?;
        let runtime_data = session.runtime_data(&nonce, Some(&self.model));
        // Simulated or hardware collection is short and synchronous.
        let bundle = session.collect(runtime_data, &self.source)?;
        let token = self.client.attest(&bundle).await?;
        let receipt_key = session.receipt_key_jwk();
        let expected = Expected {
            nonce: &nonce,
            receipt_key: &receipt_key,
            model: &self.model,
        };
        let ear = crate::ear::verify(&token, &self.ear_key, &expected, unix_now())?;
        Ok(Attestation { bundle, ear })
    }

    /// A resource released to the attested session, decrypted with its TEE key.
    pub async fn get_resource(&self, path: &str, session: &Session) -> Result<Vec<u8>, KbsError> {
        self.client.get_resource(path, session.tee_secret()).await
    }
}

/// Why an attested agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The key broker refused, could not be reached, or its result did not verify.
    #[error(transparent)]
    Kbs(#[from] KbsError),
    /// The model could not be read, hashed or opened.
    #[error("model {path}: {source}")]
    Model {
        /// The model path.
        path: String,
        /// Why.
        #[source]
        source: crate::model::ModelError,
    },
    /// The released resource is not a model sealing key.
    #[error("the key broker released {resource}, but it is not a model key: {reason}")]
    SealKey {
        /// The resource path.
        resource: String,
        /// Why.
        reason: String,
    },
    /// The agent could not be built over the loaded model.
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
}

/// Starts an agent attested through the key broker of `config` (the
/// `[verifier]` table): fresh session keys; attest with the model
/// commitment; fetch the key resource; load; then the engine. Returns the
/// agent and the attester to re-attest with.
///
/// - A **sealed** folder ([`crate::model::sealed::is_sealed`]): the
///   commitment `sealed.json` claims is attested, the key resource is
///   `model_key` or else the manifest's `key_resource`, and the weights are
///   decrypted in memory and hashed by `load_sealed`, which refuses a root
///   other than the attested commitment. Nothing is decrypted before the
///   broker released the key to this attested session.
/// - A **plain** model: hashed first, its commitment attested; `model_key`,
///   when set, is fetched only to prove the broker's resource policy
///   releases it to this session, and the bytes are dropped.
pub async fn start_attested_agent(
    config: &crate::agent::VerifierConfig,
    model: &std::path::Path,
    kind: crate::agent::ModelKind,
    source: EvidenceSource,
    progress: crate::model::Progress,
) -> Result<(crate::agent::Agent, KbsAttester), StartError> {
    let model_err = |source| StartError::Model {
        path: model.display().to_string(),
        source,
    };
    use crate::model::sealed::{SealedManifest, is_sealed, load_sealed};
    let ear_key = EarKey::read(&config.ear_key).map_err(KbsError::Ear)?;
    let session = Session::new();
    // A sealed folder is attested with the commitment its manifest claims;
    // load_sealed later refuses weights whose root differs from it.
    let (commitment, key_path, plain) = if is_sealed(model) {
        let manifest = SealedManifest::read(model).map_err(model_err)?;
        let key_path = config
            .model_key
            .clone()
            .unwrap_or_else(|| manifest.key_resource.clone());
        (manifest.model_commitment.to_string(), Some(key_path), None)
    } else {
        let loaded = crate::model::load_and_hash(model, progress).map_err(model_err)?;
        (
            loaded.commitment.to_string(),
            config.model_key.clone(),
            Some(loaded),
        )
    };
    let mut attester = KbsAttester::new(KbsClient::new(&config.url)?, ear_key, source, commitment);
    let attestation = attester.attest(&session).await?;
    eprintln!(
        "guest-agent: attested to {}: EAR {:?} (roots {}), valid until {}",
        config.url,
        attestation.ear.status,
        attestation.ear.roots,
        rfc3339(attestation.ear.exp)
    );
    let secret = match &key_path {
        Some(path) => {
            let secret = zeroize::Zeroizing::new(attester.get_resource(path, &session).await?);
            eprintln!(
                "guest-agent: key broker released {path} ({} bytes)",
                secret.len()
            );
            Some(secret)
        }
        None => None,
    };
    let loaded = match (plain, secret) {
        // A plain model: the key, if one was fetched, is dropped unused.
        (Some(loaded), _) => loaded,
        (None, Some(secret)) => {
            let key = attestor::sealed::SealKey::from_jwk_bytes(&secret).map_err(|e| {
                StartError::SealKey {
                    resource: key_path.clone().unwrap_or_default(),
                    reason: e.to_string(),
                }
            })?;
            load_sealed(model, &key, progress).map_err(model_err)?
        }
        (None, None) => {
            return Err(StartError::SealKey {
                resource: String::new(),
                reason: "a sealed model needs a key resource".into(),
            });
        }
    };
    let agent = crate::agent::Agent::start_attested(
        session,
        &loaded,
        kind,
        attestation,
        config.on_not_affirming,
    )?;
    Ok((agent, attester))
}

/// How long to wait before the next re-attestation: `refresh`, but no later
/// than 80% of the way to the current result's expiry (so a fresh result is
/// in place before the old one lapses), and soon (at most
/// [`RETRY_AFTER_FAILURE`]) after a failure. At least one second.
pub fn next_refresh(ear: Option<&VerifiedEar>, refresh: Duration, now: u64) -> Duration {
    let wait = match ear {
        Some(ear) => {
            let left = ear.exp.saturating_sub(now);
            refresh.min(Duration::from_secs(left.saturating_mul(4) / 5))
        }
        None => refresh.min(RETRY_AFTER_FAILURE),
    };
    wait.max(Duration::from_secs(1))
}

/// The longest wait before retrying after a failed attestation.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// Re-attests `agent`'s session forever on the [`next_refresh`] schedule.
/// A success replaces the agent's bundle and result; a failure (denial,
/// unreachable broker, a result that does not verify) leaves the agent with
/// no affirming result until a later attestation succeeds. Each outcome is
/// one line on stderr.
pub async fn keep_attested(
    agent: std::sync::Arc<crate::agent::Agent>,
    mut attester: KbsAttester,
    refresh: Duration,
) {
    loop {
        tokio::time::sleep(next_refresh(agent.ear().as_ref(), refresh, unix_now())).await;
        match attester.attest(agent.session()).await {
            Ok(attestation) => {
                let (status, exp) = (attestation.ear.status, attestation.ear.exp);
                match agent.set_attestation(attestation) {
                    Ok(()) => eprintln!(
                        "guest-agent: re-attested: EAR {status:?}, valid until {}",
                        rfc3339(exp)
                    ),
                    Err(e) => eprintln!("guest-agent: re-attestation refused: {e}"),
                }
            }
            Err(e) => {
                eprintln!("guest-agent: re-attestation failed: {e}");
                agent.attestation_failed(e.to_string());
            }
        }
    }
}

/// Now, Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A Unix time as RFC 3339 for log lines (the number itself when out of range).
fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_are_three_safe_segments() {
        assert_eq!(
            resource_path("default/model/smollm2-135m-instruct").unwrap(),
            ["default", "model", "smollm2-135m-instruct"]
        );
        for bad in [
            "",
            "a/b",
            "a/b/c/d",
            "a//c",
            "../b/c",
            "a/b/c?x=1",
            "a/b/%2e%2e",
        ] {
            assert!(resource_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn problem_bodies_keep_codes_and_values() {
        let body = r#"{"type":"https://github.com/confidential-containers/kbs/errors/AttestationFailed",
            "title":"evidence refused","status":401,"detail":"x; y",
            "denials":[{"code":"simulation_not_allowed","message":"sim","detail":{"kind":"value","field":"roots","value":"simulated"}},
                       {"code":"model_mismatch","message":"m","detail":{"kind":"none"}}]}"#;
        let p: Problem = serde_json::from_str(body).unwrap();
        assert_eq!(p.codes(), ["simulation_not_allowed", "model_mismatch"]);
        assert_eq!(p.denials[0].detail["value"], "simulated");
        let e = KbsError::Denied {
            problem: Box::new(p),
            body: body.into(),
        };
        assert_eq!(
            e.to_string(),
            "key broker denied: simulation_not_allowed, model_mismatch: x; y"
        );
    }

    #[test]
    fn set_cookie_is_read() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            "kbs-session-id=abc123; Path=/kbs/v0; Max-Age=300; HttpOnly"
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn log_times_are_rfc3339() {
        assert_eq!(super::rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(
            super::rfc3339(u64::MAX),
            format!("{} (Unix time)", u64::MAX)
        );
    }
}
