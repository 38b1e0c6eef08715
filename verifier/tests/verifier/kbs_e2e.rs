//! The key broker with the real pipeline behind it: a simulated SEV-SNP + H100
//! environment attests over the KBS protocol and receives the model key
//! encrypted to its TEE key, under the development policy set; the production
//! policy set refuses the same evidence and releases nothing.

use std::path::PathBuf;
use std::sync::Arc;

use attestor::binding::RuntimeData;
use attestor::receipt::ReceiptKey;
use attestor::sim::SimSeed;
use attestor::simulate::{EnvironmentSpec, environment};
use axum::http::StatusCode;
use serde_json::{Value, json};
use verifier::appraise::bundle::BundleCollateral;
use verifier::audit::{AuditEntry, Decision, EntryKind};
use verifier::broker::SqliteResourceStore;
use verifier::jwe::{self, Curve, FlattenedJwe, TeeSecretKey};
use verifier::trust::TrustRoots;

use crate::broker::{auth, send};

/// The reference SmolLM2 commitment the development reference values name.
pub(crate) const MODEL: &str =
    "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";

pub(crate) fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn collateral() -> BundleCollateral {
    BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap()
}

fn now_unix() -> u64 {
    u64::try_from(verifier::time::UnixTime::now().0).unwrap()
}

/// The KBS attest body for a simulated environment bound to `nonce` and `key`.
pub(crate) fn attest_body(nonce: &str, key: &TeeSecretKey) -> Value {
    let rd = RuntimeData::new(nonce, key.public_jwk())
        .with_receipt_key(ReceiptKey::generate().public_jwk())
        .with_model(MODEL);
    let env = environment(
        &SimSeed::DEFAULT,
        &EnvironmentSpec::snp_h100(now_unix()),
        rd,
    )
    .unwrap();
    let v = env.bundle.to_value();
    json!({"runtime-data": v["runtime-data"], "tee-evidence": v["tee-evidence"]})
}

/// The answer to the attest (when refused) or to the resource request, the
/// TEE key, and the audit log's last entry.
async fn run(set: &str, curve: Curve) -> (StatusCode, Value, TeeSecretKey, AuditEntry) {
    let dir = tempfile::tempdir().unwrap();
    let roots = TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let broker = verifier::serve::build(dir.path(), &policies(), set, roots, collateral()).unwrap();
    SqliteResourceStore::open(&dir.path().join("resources.sqlite3"))
        .unwrap()
        .put(
            "default",
            ["default", "model", "smollm2-135m-instruct"],
            b"the-model-key",
        )
        .unwrap();
    let app = verifier::broker::router(Arc::new(broker));
    let (cookie, nonce) = auth(&app, None).await;
    let key = TeeSecretKey::generate(curve);
    let r = send(
        &app,
        "POST",
        "/kbs/v0/attest",
        Some(&cookie),
        Some(attest_body(&nonce, &key)),
    )
    .await;
    let last_entry = |dir: &std::path::Path| {
        let log = verifier::audit::AuditLog::open_existing(&dir.join("audit")).unwrap();
        log.verify_all().unwrap();
        log.entry(log.size().unwrap() - 1).unwrap().unwrap()
    };
    if r.status != StatusCode::OK {
        return (r.status, r.body, key, last_entry(dir.path()));
    }
    assert!(r.body["token"].is_string());
    let r = send(
        &app,
        "GET",
        "/kbs/v0/resource/default/model/smollm2-135m-instruct",
        Some(&cookie),
        None,
    )
    .await;
    // The audit log holds every request and verifies.
    let log = verifier::audit::AuditLog::open_existing(&dir.path().join("audit")).unwrap();
    assert!(log.size().unwrap() >= 3);
    log.verify_all().unwrap();
    (r.status, r.body, key, last_entry(dir.path()))
}

#[tokio::test]
async fn development_policy_releases_the_model_key_to_the_tee_key() {
    for curve in [Curve::P256, Curve::P384] {
        let (status, body, key, entry) = run("development", curve).await;
        assert_eq!(entry.kind, EntryKind::Resource);
        assert_eq!(entry.decision, Decision::Allow);
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let jwe: FlattenedJwe = serde_json::from_value(body).unwrap();
        assert_eq!(jwe::decrypt(&jwe, &key).unwrap(), b"the-model-key");
    }
}

#[tokio::test]
async fn production_policy_refuses_simulated_evidence_and_releases_nothing() {
    let (status, body, key, entry) = run("production", Curve::P256).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:#}");
    let codes: Vec<&str> = body["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"simulation_not_allowed"), "{codes:?}");
    assert!(body.get("ciphertext").is_none());
    assert!(body.get("token").is_none(), "a refused client gets no EAR");
    // The reviewer's entry for the denial names what an allow names: the
    // evidence, the TEE key, the (non-affirming) EAR and the deciding policies.
    assert_eq!(entry.kind, EntryKind::Appraisal);
    assert_eq!(entry.decision, Decision::Deny);
    assert!(entry.evidence_digest.is_some());
    assert_eq!(
        entry.tee_key_thumbprint,
        verifier::broker::jwk_thumbprint(&key.public_jwk())
    );
    assert!(entry.ear_digest.is_some());
    assert_eq!(entry.ear_status.as_deref(), Some("contraindicated"));
    let policy = entry.policy_id.unwrap();
    assert!(policy.starts_with("production/cpu@sha256:"), "{policy}");
    assert!(
        entry
            .reasons
            .iter()
            .any(|r| r.code == "simulation_not_allowed")
    );
}
