//! The KBS protocol server end to end over tower `oneshot`: auth → attest →
//! resource, and every refusal a 401 with codes and no ciphertext.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha384};
use tower::ServiceExt as _;
use verifier::audit::{AuditEntry, AuditLog, Decision, EntryKind};
use verifier::broker::{
    AppraisalRefused, Appraiser, Attested, Broker, BrokerConfig, BrokerParts, Clock, DecisionLog,
    LogError, PolicySetAdapter, ResourcePolicy, ResourceRequest, SqliteResourceStore, Tee, router,
};
use verifier::denial::{Denial, DenialCode};
use verifier::jwe::{self, Curve, FlattenedJwe, TeeSecretKey};
use verifier::policy::PolicySet;
use verifier::time::UnixTime;

/// TEST ONLY. Stands in for the real appraiser: the "evidence" is
/// `{"report_data": hex(SHA-384(JCS({nonce, tee-pubkey})))}` plus an optional
/// `"tenant"`; it checks that binding and nothing else.
struct BindingOnlyTestAppraiser;

impl Appraiser for BindingOnlyTestAppraiser {
    fn appraise(
        &self,
        _tee: Tee,
        body: &[u8],
        nonce: &str,
        _now: UnixTime,
    ) -> Result<Attested, AppraisalRefused> {
        let bad = |m: &str| vec![Denial::new(DenialCode::EvidenceMalformed, m)];
        let v: Value = serde_json::from_slice(body).map_err(|_| bad("json"))?;
        let key = v["runtime-data"]["tee-pubkey"].clone();
        let ev = &v["tee-evidence"]["primary_evidence"];
        if let Some(ms) = ev["sleep_ms"].as_u64() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if ev["refuse"] == true {
            return Err(vec![Denial::new(DenialCode::DebugEnabled, "debug on")].into());
        }
        if let Some(code) = ev["deny_code"].as_str() {
            let code = DenialCode::from_str_code(code).ok_or_else(|| bad("deny_code"))?;
            return Err(vec![Denial::value(
                code,
                "refused as asked",
                "deny_code",
                code.as_str(),
            )]
            .into());
        }
        let want = report_data(nonce, &key);
        if ev["report_data"].as_str() != Some(want.as_str()) {
            return Err(vec![Denial::new(DenialCode::ReportDataMismatch, "binding")].into());
        }
        let mut claims = json!({"submods": {"cpu0": {"ear.status": "affirming"}}});
        if let Some(t) = ev.get("tenant") {
            claims["tenant"] = t.clone();
        }
        Ok(Attested {
            ear_token: format!("test-ear.{}", &want[..16]),
            tee_pubkey_jwk: key,
            claims_json: claims,
        })
    }
}

fn report_data(nonce: &str, key: &Value) -> String {
    let jcs =
        serde_json_canonicalizer::to_string(&json!({"nonce": nonce, "tee-pubkey": key})).unwrap();
    hex::encode(Sha384::digest(jcs.as_bytes()))
}

/// Denies any tag named `forbidden`, and a tag `deny-<code>` with that code.
struct TagPolicy;
impl ResourcePolicy for TagPolicy {
    fn decide(&self, r: &ResourceRequest<'_>) -> Result<String, Vec<Denial>> {
        if let Some(code) = r.path[2]
            .strip_prefix("deny-")
            .and_then(DenialCode::from_str_code)
        {
            return Err(vec![Denial::value(
                code,
                "refused as asked",
                "tag",
                r.path[2],
            )]);
        }
        if r.path[2] == "forbidden" {
            Err(vec![Denial::value(
                DenialCode::PolicyRejected,
                "tag not allowed",
                "tag",
                r.path[2],
            )])
        } else {
            Ok("test-policy".to_owned())
        }
    }
}

/// Keeps entries in memory; with `fail_allows`, refuses to record any allow.
#[derive(Default)]
struct MemLog(Mutex<Vec<AuditEntry>>, bool);
impl DecisionLog for MemLog {
    fn record(&self, e: &AuditEntry, _evidence: Option<&[u8]>) -> Result<(), LogError> {
        if self.1 && e.decision == Decision::Allow && e.kind == EntryKind::Resource {
            return Err(LogError("disk full".to_owned()));
        }
        self.0.lock().unwrap().push(e.clone());
        Ok(())
    }
}

struct TestClock(AtomicI64);
impl Clock for TestClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

struct Kbs {
    app: Router,
    log: Arc<MemLog>,
    clock: Arc<TestClock>,
}

fn kbs() -> Kbs {
    kbs_with(Arc::new(TagPolicy), Arc::new(MemLog::default()))
}

fn kbs_with(policy: Arc<dyn ResourcePolicy>, log: Arc<MemLog>) -> Kbs {
    let config = BrokerConfig {
        request_timeout: std::time::Duration::from_millis(500),
        ..BrokerConfig::default()
    };
    let store = SqliteResourceStore::in_memory().unwrap();
    store
        .put("default", ["repo", "key", "model"], b"model-key-bytes")
        .unwrap();
    store
        .put("default", ["repo", "key", "forbidden"], b"nope")
        .unwrap();
    store
        .put("acme", ["repo", "key", "model"], b"acme-key")
        .unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000)));
    let broker = Broker::new(
        config,
        BrokerParts {
            appraiser: Arc::new(BindingOnlyTestAppraiser),
            policy,
            store: Arc::new(store),
            log: log.clone(),
            clock: clock.clone(),
        },
    );
    Kbs {
        app: router(Arc::new(broker)),
        log,
        clock,
    }
}

pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) cookie: Option<String>,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

pub(crate) async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, format!("kbs-session-id={c}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
        .and_then(|v| {
            v.split(';')
                .next()
                .and_then(|kv| kv.strip_prefix("kbs-session-id="))
                .map(str::to_owned)
        });
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        cookie,
        content_type,
        body,
    }
}

pub(crate) async fn auth(app: &Router, cookie: Option<&str>) -> (String, String) {
    let r = send(
        app,
        "POST",
        "/kbs/v0/auth",
        cookie,
        Some(json!({"version": "0.4.0", "tee": "snp", "extra-params": {"supported-hash-algorithms": ["sha384"]}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["extra-params"], "");
    let nonce = r.body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&nonce)
            .unwrap()
            .len(),
        32
    );
    (r.cookie.unwrap(), nonce)
}

fn attestation(nonce: &str, key: &Value, extra: Value) -> Value {
    let mut ev = json!({"report_data": report_data(nonce, key)});
    if let (Value::Object(e), Value::Object(x)) = (&mut ev, extra) {
        e.extend(x);
    }
    json!({
        "runtime-data": {"nonce": nonce, "tee-pubkey": key},
        "tee-evidence": {"primary_evidence": ev, "additional_evidence": ""},
    })
}

async fn attest(app: &Router, cookie: &str, body: Value) -> Resp {
    send(app, "POST", "/kbs/v0/attest", Some(cookie), Some(body)).await
}

/// A 401 problem body carrying `code`, and no JWE field anywhere.
fn assert_refused(r: &Resp, code: DenialCode) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert!(r.body["type"].as_str().unwrap().starts_with("https://"));
    assert!(r.body["title"].is_string() && r.body["detail"].is_string());
    let codes: Vec<&str> = r.body["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&code.as_str()), "{codes:?} lacks {code}");
    for field in ["ciphertext", "encrypted_key", "tag", "token"] {
        assert!(r.body.get(field).is_none());
    }
}

async fn attested_session(k: &Kbs, key: &TeeSecretKey, extra: Value) -> String {
    let (cookie, nonce) = auth(&k.app, None).await;
    let r = attest(
        &k.app,
        &cookie,
        attestation(&nonce, &key.public_jwk(), extra),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["token"].as_str().unwrap().starts_with("test-ear."));
    assert_eq!(r.cookie.as_deref(), Some(cookie.as_str()));
    cookie
}

#[tokio::test]
async fn full_flow_releases_to_the_tee_key_p256_and_p384() {
    for curve in [Curve::P256, Curve::P384] {
        let k = kbs();
        let key = TeeSecretKey::generate(curve);
        let cookie = attested_session(&k, &key, json!({})).await;
        let r = send(
            &k.app,
            "GET",
            "/kbs/v0/resource/repo/key/model",
            Some(&cookie),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.content_type, "application/json");
        let jwe: FlattenedJwe = serde_json::from_value(r.body.clone()).unwrap();
        assert!(r.body.get("aad").is_none());
        assert_eq!(jwe::decrypt(&jwe, &key).unwrap(), b"model-key-bytes");
        // Another key cannot open it.
        assert!(jwe::decrypt(&jwe, &TeeSecretKey::generate(curve)).is_err());

        let log = k.log.0.lock().unwrap();
        let kinds: Vec<(EntryKind, Decision)> = log.iter().map(|e| (e.kind, e.decision)).collect();
        assert_eq!(
            kinds,
            [
                (EntryKind::Challenge, Decision::Allow),
                (EntryKind::Appraisal, Decision::Allow),
                (EntryKind::Resource, Decision::Allow)
            ]
        );
        let last = log.last().unwrap();
        assert_eq!(last.resource.as_deref(), Some("kbs:///repo/key/model"));
        assert_eq!(last.ear_status.as_deref(), Some("affirming"));
        assert_eq!(last.policy_id.as_deref(), Some("test-policy"));
        assert!(last.tee_key_thumbprint.is_some());
        assert!(
            log[1]
                .evidence_digest
                .as_deref()
                .unwrap()
                .starts_with("sha256:")
        );
    }
}

#[tokio::test]
async fn bearer_token_works_and_tenants_are_separate() {
    let k = kbs();
    let key = TeeSecretKey::generate(Curve::P256);
    let (cookie, nonce) = auth(&k.app, None).await;
    let r = attest(
        &k.app,
        &cookie,
        attestation(&nonce, &key.public_jwk(), json!({"tenant": "acme"})),
    )
    .await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let req = Request::builder()
        .uri("/kbs/v0/resource/repo/key/model")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = k.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let jwe: FlattenedJwe = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(jwe::decrypt(&jwe, &key).unwrap(), b"acme-key");
    // The default tenant's other resource is not in acme's namespace.
    let r = send(
        &k.app,
        "GET",
        "/kbs/v0/resource/repo/key/other",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::ResourceNotFound);
}

#[tokio::test]
async fn replayed_and_expired_nonces_are_refused() {
    let k = kbs();
    let key = TeeSecretKey::generate(Curve::P256);
    let (cookie, nonce) = auth(&k.app, None).await;
    let body = attestation(&nonce, &key.public_jwk(), json!({}));
    assert_eq!(
        attest(&k.app, &cookie, body.clone()).await.status,
        StatusCode::OK
    );
    // Replay: the nonce is spent; the session's attestation is dropped too.
    assert_refused(
        &attest(&k.app, &cookie, body).await,
        DenialCode::NonceReused,
    );
    let r = send(
        &k.app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::TokenMissing);

    // Expired: a fresh nonce on the same session, answered too late.
    let (cookie2, nonce) = auth(&k.app, Some(&cookie)).await;
    assert_eq!(cookie2, cookie);
    k.clock.0.fetch_add(61, Ordering::SeqCst);
    let r = attest(
        &k.app,
        &cookie,
        attestation(&nonce, &key.public_jwk(), json!({})),
    )
    .await;
    assert_refused(&r, DenialCode::NonceExpired);

    // Another session's nonce.
    let (_, other_nonce) = auth(&k.app, None).await;
    let (cookie3, _) = auth(&k.app, None).await;
    let r = attest(
        &k.app,
        &cookie3,
        attestation(&other_nonce, &key.public_jwk(), json!({})),
    )
    .await;
    assert_refused(&r, DenialCode::NonceMismatch);
}

#[tokio::test]
async fn second_attest_re_appraises_and_a_failure_revokes() {
    let k = kbs();
    let key = TeeSecretKey::generate(Curve::P384);
    let cookie = attested_session(&k, &key, json!({})).await;
    let (_, nonce) = auth(&k.app, Some(&cookie)).await;
    let r = attest(
        &k.app,
        &cookie,
        attestation(&nonce, &key.public_jwk(), json!({"refuse": true})),
    )
    .await;
    assert_refused(&r, DenialCode::DebugEnabled);
    let r = send(
        &k.app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::TokenMissing);
}

#[tokio::test]
async fn refusals_are_401_with_codes_and_all_logged() {
    let k = kbs();
    let key = TeeSecretKey::generate(Curve::P256);
    let app = &k.app;

    // Wrong protocol version.
    let r = send(
        app,
        "POST",
        "/kbs/v0/auth",
        None,
        Some(json!({"version": "0.1.1", "tee": "snp", "extra-params": {}})),
    )
    .await;
    assert_refused(&r, DenialCode::ProtocolVersionMismatch);
    // Wrong cookie.
    let r = attest(
        app,
        "0123456789abcdef",
        attestation("x", &key.public_jwk(), json!({})),
    )
    .await;
    assert_refused(&r, DenialCode::SessionInvalid);
    let r = send(
        app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some("0123456789abcdef"),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::SessionInvalid);
    // Missing token: no cookie, no bearer; and a session not yet attested.
    let r = send(app, "GET", "/kbs/v0/resource/repo/key/model", None, None).await;
    assert_refused(&r, DenialCode::TokenMissing);
    let (fresh, _) = auth(app, None).await;
    let r = send(
        app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&fresh),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::TokenMissing);
    // Appraiser denial: evidence bound to another key.
    let (cookie, nonce) = auth(app, None).await;
    let mut body = attestation(
        &nonce,
        &TeeSecretKey::generate(Curve::P256).public_jwk(),
        json!({}),
    );
    body["runtime-data"]["tee-pubkey"] = key.public_jwk();
    assert_refused(
        &attest(app, &cookie, body).await,
        DenialCode::ReportDataMismatch,
    );
    // Policy deny and unknown resource on an attested session.
    let cookie = attested_session(&k, &key, json!({})).await;
    let r = send(
        app,
        "GET",
        "/kbs/v0/resource/repo/key/forbidden",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::PolicyRejected);
    assert_eq!(r.body["denials"][0]["detail"]["value"], "forbidden");
    let r = send(
        app,
        "GET",
        "/kbs/v0/resource/repo/key/absent",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::ResourceNotFound);
    // Session expiry.
    k.clock.0.fetch_add(301, Ordering::SeqCst);
    let r = send(
        app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::SessionInvalid);

    // 13 requests, 13 entries; the 9 refusals are denies with their codes.
    let log = k.log.0.lock().unwrap();
    assert_eq!(log.len(), 13);
    let denies: Vec<&str> = log
        .iter()
        .filter(|e| e.decision == Decision::Deny)
        .map(|e| e.reasons[0].code.as_str())
        .collect();
    assert_eq!(
        denies,
        [
            "protocol_version_mismatch",
            "session_invalid",
            "session_invalid",
            "token_missing",
            "token_missing",
            "report_data_mismatch",
            "policy_rejected",
            "resource_not_found",
            "session_invalid"
        ]
    );
}

/// The real audit log behind the broker: every request is an entry that verifies.
#[tokio::test]
async fn audit_log_adapter_records_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(dir.path()).unwrap());
    let store = SqliteResourceStore::open(&dir.path().join("resources.sqlite3")).unwrap();
    store.put("default", ["r", "t", "x"], b"s").unwrap();
    let broker = Broker::new(
        BrokerConfig::default(),
        BrokerParts {
            appraiser: Arc::new(BindingOnlyTestAppraiser),
            policy: Arc::new(TagPolicy),
            store: Arc::new(store),
            log: audit.clone(),
            clock: Arc::new(TestClock(AtomicI64::new(1_800_000_000))),
        },
    );
    let app = router(Arc::new(broker));
    let key = TeeSecretKey::generate(Curve::P256);
    let (cookie, nonce) = auth(&app, None).await;
    attest(
        &app,
        &cookie,
        attestation(&nonce, &key.public_jwk(), json!({})),
    )
    .await;
    let r = send(&app, "GET", "/kbs/v0/resource/r/t/x", Some(&cookie), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &app,
        "GET",
        "/kbs/v0/resource/r/t/forbidden",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit.size().unwrap(), 4);
    audit.verify_all().unwrap();
}

/// An allow that cannot be logged is not released.
#[tokio::test]
async fn unloggable_release_is_refused() {
    let k = kbs_with(
        Arc::new(TagPolicy),
        Arc::new(MemLog(Mutex::default(), true)),
    );
    let key = TeeSecretKey::generate(Curve::P256);
    let cookie = attested_session(&k, &key, json!({})).await;
    let r = send(
        &k.app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::BrokerError);
}

/// The real production resource policy behind the adapter: a session whose
/// claims are not a production EAR gets the policy's own codes.
#[tokio::test]
async fn policy_set_adapter_denies_with_policy_codes() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let set = PolicySet::load(&dir, "production").unwrap();
    let k = kbs_with(
        Arc::new(PolicySetAdapter(set.into())),
        Arc::new(MemLog::default()),
    );
    let key = TeeSecretKey::generate(Curve::P256);
    let cookie = attested_session(&k, &key, json!({})).await;
    let r = send(
        &k.app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::PolicyRejected);
    let log = k.log.0.lock().unwrap();
    assert_eq!(log.last().unwrap().decision, Decision::Deny);
    assert_eq!(log.last().unwrap().reasons[0].code, "policy_rejected");
}

/// An appraisal that outlives the request timeout is refused, and the
/// session is not left attested when it finishes later.
#[tokio::test]
async fn timed_out_attestation_leaves_nothing_usable() {
    let k = kbs();
    let key = TeeSecretKey::generate(Curve::P256);
    let (cookie, nonce) = auth(&k.app, None).await;
    let body = attestation(&nonce, &key.public_jwk(), json!({"sleep_ms": 1500}));
    let r = attest(&k.app, &cookie, body).await;
    assert_refused(&r, DenialCode::BrokerError);
    // Let the abandoned appraisal finish.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let r = send(
        &k.app,
        "GET",
        "/kbs/v0/resource/repo/key/model",
        Some(&cookie),
        None,
    )
    .await;
    assert_refused(&r, DenialCode::TokenMissing);
}

/// Over a real loopback socket with a stock HTTP client (reqwest), as a
/// Trustee client would talk to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_listener_full_flow() {
    let k = kbs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, k.app.clone()).into_future());
    let key = TeeSecretKey::generate(Curve::P384);
    let jwk = key.public_jwk();
    let plain = tokio::task::spawn_blocking(move || {
        let base = format!("http://{addr}/kbs/v0");
        let client = reqwest::blocking::Client::new();
        let r = client
            .post(format!("{base}/auth"))
            .header("content-type", "application/json")
            .body(json!({"version": "0.4.0", "tee": "tdx", "extra-params": ""}).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let nonce = serde_json::from_str::<Value>(&r.text().unwrap()).unwrap()["nonce"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = client
            .post(format!("{base}/attest"))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body(attestation(&nonce, &jwk, json!({})).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .get(format!("{base}/resource/repo/key/model"))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        serde_json::from_str::<FlattenedJwe>(&r.text().unwrap()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(jwe::decrypt(&plain, &key).unwrap(), b"model-key-bytes");
    server.abort();
}

/// Every denial code, raised by the appraisal and by the resource policy in
/// turn: a 401 naming it, no ciphertext or token anywhere, the secret never
/// released afterwards on that session, and a deny entry with the code logged.
#[tokio::test]
async fn every_denial_code_withholds_the_secret_and_is_logged() {
    let log = Arc::new(MemLog::default());
    let store = SqliteResourceStore::in_memory().unwrap();
    for code in DenialCode::ALL {
        let tag = format!("deny-{}", code.as_str());
        store
            .put("default", ["repo", "key", tag.as_str()], b"model-key-bytes")
            .unwrap();
    }
    let broker = Broker::new(
        BrokerConfig::default(),
        BrokerParts {
            appraiser: Arc::new(BindingOnlyTestAppraiser),
            policy: Arc::new(TagPolicy),
            store: Arc::new(store),
            log: log.clone(),
            clock: Arc::new(TestClock(AtomicI64::new(1_800_000_000))),
        },
    );
    let app = router(Arc::new(broker));
    let key = TeeSecretKey::generate(Curve::P384);
    let no_secret = |r: &Resp| {
        let text = r.body.to_string();
        assert!(
            !text.contains("ciphertext") && !text.contains("model-key"),
            "{text}"
        );
    };
    for &code in DenialCode::ALL {
        let tag = format!("deny-{}", code.as_str());
        let uri = format!("/kbs/v0/resource/repo/key/{tag}");
        // Refused by the appraisal: no token, and the session releases nothing.
        let (cookie, nonce) = auth(&app, None).await;
        let r = attest(
            &app,
            &cookie,
            attestation(
                &nonce,
                &key.public_jwk(),
                json!({"deny_code": code.as_str()}),
            ),
        )
        .await;
        assert_refused(&r, code);
        no_secret(&r);
        let r = send(&app, "GET", &uri, Some(&cookie), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{code}: {}", r.body);
        no_secret(&r);
        // Refused by the resource policy after a good attestation.
        let (cookie, nonce) = auth(&app, None).await;
        let r = attest(
            &app,
            &cookie,
            attestation(&nonce, &key.public_jwk(), json!({})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = send(&app, "GET", &uri, Some(&cookie), None).await;
        assert_refused(&r, code);
        no_secret(&r);

        let entries = log.0.lock().unwrap();
        let denied_with = |kind: EntryKind| {
            entries.iter().any(|e| {
                e.kind == kind
                    && e.decision == Decision::Deny
                    && e.reasons.iter().any(|x| x.code == code.as_str())
            })
        };
        assert!(
            denied_with(EntryKind::Appraisal),
            "{code}: no appraisal deny logged"
        );
        assert!(
            denied_with(EntryKind::Resource),
            "{code}: no resource deny logged"
        );
    }
    // Nothing was ever released.
    let entries = log.0.lock().unwrap();
    assert!(
        !entries
            .iter()
            .any(|e| e.kind == EntryKind::Resource && e.decision == Decision::Allow)
    );
    assert!(
        DenialCode::ALL.len() > 40,
        "the list of codes is the pinned one"
    );
}
