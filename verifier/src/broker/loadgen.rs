//! A loopback load generator for the key broker: many concurrent simulated
//! TEE clients, each doing whole KBS rounds (`/auth` → `/attest` with
//! simulated SEV-SNP + H100 evidence bound to a fresh TEE key → `/resource` →
//! JWE decrypted with that key and compared with the expected secret), with
//! the latency of every request.
//!
//! For the load test, the SIGKILL test and the `kbs_load` bench, against a
//! broker on loopback under the development policy set (`verifier serve --dev`
//! or [`crate::serve::build`] with the simulator's roots). It never judges
//! anything and never hides a failure: every refused or malformed answer is an
//! error in the report, with the status and body. Its evidence is simulated,
//! so a production broker denies it (`simulation_not_allowed`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attestor::binding::RuntimeData;
use attestor::receipt::ReceiptKey;
use attestor::sim::SimSeed;
use attestor::simulate::{EnvironmentSpec, environment};
use serde_json::{Value, json};

use super::{AUDIT_ENTRY_HEADER, COOKIE, PROTOCOL_VERSION};
use crate::jwe::{self, Curve, FlattenedJwe, JweError, TeeSecretKey};

/// The model commitment the development reference values accept (the OMS
/// root of SmolLM2-135M-Instruct Q4_1, `policies/reference/development.json`).
pub const DEVELOPMENT_MODEL: &str =
    "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";

/// The three KBS requests of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `POST /kbs/v0/auth`.
    Auth,
    /// `POST /kbs/v0/attest`.
    Attest,
    /// `GET /kbs/v0/resource/…`.
    Resource,
}

impl RequestKind {
    /// Every kind, in round order.
    pub const ALL: [Self; 3] = [Self::Auth, Self::Attest, Self::Resource];

    /// A short name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Attest => "attest",
            Self::Resource => "resource",
        }
    }

    const fn slot(self) -> usize {
        match self {
            Self::Auth => 0,
            Self::Attest => 1,
            Self::Resource => 2,
        }
    }
}

/// Why a request or a round failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The HTTP exchange itself failed (connect, reset, timeout).
    #[error("{}: transport: {source}", kind.as_str())]
    Transport {
        /// Which request.
        kind: RequestKind,
        /// The error.
        source: reqwest::Error,
    },
    /// The broker answered with a status other than 200.
    #[error("{}: HTTP {status}: {body}", kind.as_str())]
    Refused {
        /// Which request.
        kind: RequestKind,
        /// The HTTP status.
        status: u16,
        /// The body (RFC 7807 for a refusal).
        body: String,
    },
    /// A 200 answer without what the protocol says it carries.
    #[error("{}: {what}", kind.as_str())]
    Protocol {
        /// Which request.
        kind: RequestKind,
        /// What is missing or malformed.
        what: String,
    },
    /// The simulator could not build evidence.
    #[error("building evidence: {0}")]
    Evidence(#[from] attestor::sim::SimError),
    /// The released JWE does not open with the client's TEE key.
    #[error("decrypting the resource: {0}")]
    Decrypt(#[from] JweError),
    /// The JWE opened but holds other bytes than the expected secret.
    #[error("released secret differs: expected {expected} bytes, got {found} bytes")]
    WrongSecret {
        /// Expected length.
        expected: usize,
        /// Received length.
        found: usize,
    },
    /// A client had not finished when the run's time limit was reached.
    #[error("client did not finish within {0:?}")]
    TimedOut(Duration),
    /// A client task panicked or was cancelled.
    #[error("client task: {0}")]
    Task(String),
}

/// One answer from the broker.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Which request.
    pub kind: RequestKind,
    /// HTTP status.
    pub status: u16,
    /// The audit-log index of the entry recording this decision
    /// ([`AUDIT_ENTRY_HEADER`]).
    pub audit_entry: Option<u64>,
    /// The session cookie's value, when the answer sets one.
    pub cookie: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// From sending the request to having read the whole body.
    pub latency: Duration,
}

impl Answer {
    /// The body as JSON, or a protocol error naming the request.
    pub fn json(&self) -> Result<Value, LoadError> {
        serde_json::from_slice(&self.body).map_err(|e| LoadError::Protocol {
            kind: self.kind,
            what: format!("body is not JSON: {e}"),
        })
    }

    /// `Ok(self)` for a 200, else [`LoadError::Refused`] with the body.
    pub fn ok(self) -> Result<Self, LoadError> {
        if self.status == 200 {
            Ok(self)
        } else {
            Err(LoadError::Refused {
                kind: self.kind,
                status: self.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
            })
        }
    }

    /// The denial codes of an RFC 7807 refusal body (empty for anything else).
    pub fn denial_codes(&self) -> Vec<String> {
        let Ok(body) = serde_json::from_slice::<Value>(&self.body) else {
            return Vec::new();
        };
        body.get("denials")
            .and_then(Value::as_array)
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| d.get("code").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A KBS protocol client over one connection pool (no proxy: loopback).
#[derive(Debug, Clone)]
pub struct KbsClient {
    http: reqwest::Client,
    base: String,
    /// Evidence is built at most this many at once (one per core): hundreds
    /// of clients building at the same moment would starve the broker on the
    /// same machine, whose Rego time limit is wall-clock.
    builders: Arc<tokio::sync::Semaphore>,
}

impl KbsClient {
    /// A client for the broker at `base_url` (`http://127.0.0.1:PORT`);
    /// every request gives up after `request_timeout`.
    pub fn new(base_url: &str, request_timeout: Duration) -> Result<Self, LoadError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(request_timeout)
            .build()
            .map_err(|source| LoadError::Transport {
                kind: RequestKind::Auth,
                source,
            })?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            builders: Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    /// `POST /kbs/v0/auth` for an SNP TEE, on an existing session or a new one.
    pub async fn auth(&self, cookie: Option<&str>) -> Result<Answer, LoadError> {
        let body = json!({"version": PROTOCOL_VERSION, "tee": "snp", "extra-params": ""});
        let req = self
            .http
            .post(format!("{}/kbs/v0/auth", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        send(RequestKind::Auth, with_cookie(req, cookie)).await
    }

    /// `POST /kbs/v0/attest` with a prepared body ([`attest_body`]).
    pub async fn attest(&self, cookie: Option<&str>, body: Vec<u8>) -> Result<Answer, LoadError> {
        let req = self
            .http
            .post(format!("{}/kbs/v0/attest", self.base))
            .header("content-type", "application/json")
            .body(body);
        send(RequestKind::Attest, with_cookie(req, cookie)).await
    }

    /// `GET /kbs/v0/resource/<path>` (`repository/type/tag`).
    pub async fn resource(&self, cookie: Option<&str>, path: &str) -> Result<Answer, LoadError> {
        let req = self
            .http
            .get(format!("{}/kbs/v0/resource/{path}", self.base));
        send(RequestKind::Resource, with_cookie(req, cookie)).await
    }

    /// [`attest_body`] off the async threads, a few at a time.
    pub async fn build_attest_body(
        &self,
        nonce: &str,
        key: &TeeSecretKey,
        model: &str,
    ) -> Result<Vec<u8>, LoadError> {
        let permit = self
            .builders
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| LoadError::Task(e.to_string()))?;
        let (nonce, key, model) = (nonce.to_owned(), key.clone(), model.to_owned());
        let now = u64::try_from(crate::time::UnixTime::now().0).unwrap_or(0);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            attest_body(&nonce, &key, &model, now)
        })
        .await
        .map_err(|e| LoadError::Task(e.to_string()))?
    }
}

fn with_cookie(req: reqwest::RequestBuilder, cookie: Option<&str>) -> reqwest::RequestBuilder {
    match cookie {
        Some(c) => req.header("cookie", format!("{COOKIE}={c}")),
        None => req,
    }
}

async fn send(kind: RequestKind, req: reqwest::RequestBuilder) -> Result<Answer, LoadError> {
    let transport = |source| LoadError::Transport { kind, source };
    let start = Instant::now();
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(transport)?.to_vec();
    let latency = start.elapsed();
    let audit_entry = headers
        .get(AUDIT_ENTRY_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned());
    Ok(Answer {
        kind,
        status,
        audit_entry,
        cookie,
        body,
        latency,
    })
}

/// The `/attest` body for simulated SEV-SNP + H100 evidence bound to
/// `nonce`, the TEE key `key`, a fresh receipt key and `model` (KBS
/// `runtime-data` + `tee-evidence`). CPU-bound: call it off the async threads.
pub fn attest_body(
    nonce: &str,
    key: &TeeSecretKey,
    model: &str,
    now_unix: u64,
) -> Result<Vec<u8>, LoadError> {
    let rd = RuntimeData::new(nonce, key.public_jwk())
        .with_receipt_key(ReceiptKey::generate().public_jwk())
        .with_model(model);
    let env = environment(&SimSeed::DEFAULT, &EnvironmentSpec::snp_h100(now_unix), rd)?;
    let v = env.bundle.to_value();
    let body = json!({"runtime-data": v["runtime-data"], "tee-evidence": v["tee-evidence"]});
    Ok(body.to_string().into_bytes())
}

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Concurrent clients, all started at once.
    pub clients: usize,
    /// Whole rounds each client does, one after another (each with a fresh
    /// TEE key and a fresh session).
    pub rounds: usize,
    /// The TEE key curve.
    pub curve: Curve,
    /// The resource fetched, `repository/type/tag`.
    pub resource: String,
    /// What the resource must decrypt to.
    pub secret: Vec<u8>,
    /// The model commitment bound into the evidence.
    pub model: String,
    /// The whole run stops after this long; unfinished clients are errors.
    pub time_limit: Duration,
}

impl LoadSpec {
    /// `clients` × `rounds` full rounds fetching `resource`, which must hold
    /// `secret`; P-256 keys, the development model, a 5-minute limit.
    pub fn new(clients: usize, rounds: usize, resource: &str, secret: &[u8]) -> Self {
        Self {
            clients,
            rounds,
            curve: Curve::P256,
            resource: resource.to_owned(),
            secret: secret.to_vec(),
            model: DEVELOPMENT_MODEL.to_owned(),
            time_limit: Duration::from_secs(300),
        }
    }
}

/// The latencies of one successful round.
#[derive(Debug, Clone, Copy)]
pub struct RoundTimes {
    /// `/auth`.
    pub auth: Duration,
    /// `/attest`.
    pub attest: Duration,
    /// `/resource`.
    pub resource: Duration,
}

/// One whole round: auth, attest (evidence built for the nonce and a fresh
/// key), fetch, decrypt, compare. Any refusal or mismatch is an error.
pub async fn round(client: &KbsClient, spec: &LoadSpec) -> Result<RoundTimes, LoadError> {
    let auth = client.auth(None).await?.ok()?;
    let cookie = auth.cookie.clone().ok_or(LoadError::Protocol {
        kind: RequestKind::Auth,
        what: format!("no {COOKIE} cookie"),
    })?;
    let nonce = auth
        .json()?
        .get("nonce")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(LoadError::Protocol {
            kind: RequestKind::Auth,
            what: "no nonce".into(),
        })?;
    let key = TeeSecretKey::generate(spec.curve);
    let body = client.build_attest_body(&nonce, &key, &spec.model).await?;
    let attest = client.attest(Some(&cookie), body).await?.ok()?;
    if attest
        .json()?
        .get("token")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(LoadError::Protocol {
            kind: RequestKind::Attest,
            what: "no token".into(),
        });
    }
    let resource = client.resource(Some(&cookie), &spec.resource).await?.ok()?;
    let jwe: FlattenedJwe =
        serde_json::from_slice(&resource.body).map_err(|e| LoadError::Protocol {
            kind: RequestKind::Resource,
            what: format!("not a flattened JWE: {e}"),
        })?;
    let secret = jwe::decrypt(&jwe, &key)?;
    if secret != spec.secret {
        return Err(LoadError::WrongSecret {
            expected: spec.secret.len(),
            found: secret.len(),
        });
    }
    Ok(RoundTimes {
        auth: auth.latency,
        attest: attest.latency,
        resource: resource.latency,
    })
}

/// What a load run measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Concurrent clients.
    pub clients: usize,
    /// Rounds completed without error.
    pub rounds_ok: usize,
    /// Every failure (a failed round ends its client).
    pub errors: Vec<LoadError>,
    /// From the first request to the last answer.
    pub wall: Duration,
    latencies: [Vec<Duration>; 3],
}

impl LoadReport {
    /// The `p`-th percentile (nearest rank, `0 < p ≤ 100`) of successful
    /// requests of `kind`.
    pub fn percentile(&self, kind: RequestKind, p: f64) -> Option<Duration> {
        let mut v = self.latencies.get(kind.slot())?.clone();
        if v.is_empty() || !(p > 0.0 && p <= 100.0) {
            return None;
        }
        v.sort_unstable();
        // Nearest rank: ceil(p/100 · n), 1-based; in 1..=n because 0 < p ≤ 100,
        // so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
        v.get(rank.saturating_sub(1)).copied()
    }

    /// Successful requests of `kind`.
    pub fn count(&self, kind: RequestKind) -> usize {
        self.latencies.get(kind.slot()).map_or(0, Vec::len)
    }

    /// Successful requests per second, all kinds together.
    pub fn requests_per_s(&self) -> f64 {
        let n: usize = RequestKind::ALL.iter().map(|k| self.count(*k)).sum();
        n as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// Whole rounds (attest + secret released) per second.
    pub fn rounds_per_s(&self) -> f64 {
        self.rounds_ok as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        writeln!(
            f,
            "{} clients, {} rounds ok, {} errors in {:.2} s: {:.1} rounds/s, {:.1} requests/s",
            self.clients,
            self.rounds_ok,
            self.errors.len(),
            self.wall.as_secs_f64(),
            self.rounds_per_s(),
            self.requests_per_s()
        )?;
        for kind in RequestKind::ALL {
            writeln!(
                f,
                "  {:<8} n={:<5} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
                kind.as_str(),
                self.count(kind),
                ms(self.percentile(kind, 50.0)),
                ms(self.percentile(kind, 99.0)),
                ms(self.percentile(kind, 100.0)),
            )?;
        }
        for e in self.errors.iter().take(5) {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

/// Runs `spec.clients` concurrent clients against `base_url`, each doing
/// `spec.rounds` rounds, and stops by itself at `spec.time_limit`.
pub async fn run(base_url: &str, spec: &LoadSpec) -> LoadReport {
    let mut report = LoadReport {
        clients: spec.clients,
        rounds_ok: 0,
        errors: Vec::new(),
        wall: Duration::ZERO,
        latencies: [Vec::new(), Vec::new(), Vec::new()],
    };
    let client = match KbsClient::new(base_url, spec.time_limit) {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.clients {
        let (client, spec) = (client.clone(), spec.clone());
        tasks.spawn(async move {
            let mut times = Vec::with_capacity(spec.rounds);
            for _ in 0..spec.rounds {
                match round(&client, &spec).await {
                    Ok(t) => times.push(t),
                    Err(e) => return (times, Some(e)),
                }
            }
            (times, None)
        });
    }
    let deadline = tokio::time::Instant::now() + spec.time_limit;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok((times, error)))) => {
                report.rounds_ok += times.len();
                for t in times {
                    for (kind, d) in [
                        (RequestKind::Auth, t.auth),
                        (RequestKind::Attest, t.attest),
                        (RequestKind::Resource, t.resource),
                    ] {
                        if let Some(v) = report.latencies.get_mut(kind.slot()) {
                            v.push(d);
                        }
                    }
                }
                report.errors.extend(error);
            }
            Ok(Some(Err(e))) => report.errors.push(LoadError::Task(e.to_string())),
            Err(_) => {
                for _ in 0..tasks.len() {
                    report.errors.push(LoadError::TimedOut(spec.time_limit));
                }
                tasks.abort_all();
                break;
            }
        }
    }
    report.wall = start.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(auth_ms: &[u64]) -> LoadReport {
        LoadReport {
            clients: 1,
            rounds_ok: auth_ms.len(),
            errors: Vec::new(),
            wall: Duration::from_secs(2),
            latencies: [
                auth_ms.iter().map(|&m| Duration::from_millis(m)).collect(),
                Vec::new(),
                Vec::new(),
            ],
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let r = report(&(1..=100).rev().collect::<Vec<_>>());
        let p = |q| r.percentile(RequestKind::Auth, q).map(|d| d.as_millis());
        assert_eq!(p(50.0), Some(50));
        assert_eq!(p(99.0), Some(99));
        assert_eq!(p(100.0), Some(100));
        assert_eq!(p(0.5), Some(1));
        assert_eq!(p(0.0), None);
        assert_eq!(r.percentile(RequestKind::Attest, 50.0), None);
        assert_eq!(r.rounds_per_s(), 50.0);
        assert_eq!(r.requests_per_s(), 50.0);
    }

    #[test]
    fn a_small_sample_takes_its_largest_for_p99() {
        let r = report(&[7, 3, 5]);
        assert_eq!(
            r.percentile(RequestKind::Auth, 99.0),
            Some(Duration::from_millis(7))
        );
        assert_eq!(
            r.percentile(RequestKind::Auth, 50.0),
            Some(Duration::from_millis(5))
        );
    }
}
