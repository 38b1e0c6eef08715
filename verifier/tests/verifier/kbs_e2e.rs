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
    BundleCollateral {
        gpu_rims: attestor::simulate::gpu_rims(&SimSeed::DEFAULT)
            .unwrap()
            .into_iter()
            .map(String::into_bytes)
            .collect(),
        ..BundleCollateral::default()
    }
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

async fn run(set: &str, curve: Curve) -> (StatusCode, Value, TeeSecretKey) {
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
    if r.status != StatusCode::OK {
        return (r.status, r.body, key);
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
    (r.status, r.body, key)
}

#[tokio::test]
async fn development_policy_releases_the_model_key_to_the_tee_key() {
    for curve in [Curve::P256, Curve::P384] {
        let (status, body, key) = run("development", curve).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let jwe: FlattenedJwe = serde_json::from_value(body).unwrap();
        assert_eq!(jwe::decrypt(&jwe, &key).unwrap(), b"the-model-key");
    }
}

#[tokio::test]
async fn production_policy_refuses_simulated_evidence_and_releases_nothing() {
    let (status, body, _) = run("production", Curve::P256).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:#}");
    let codes: Vec<&str> = body["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"simulation_not_allowed"), "{codes:?}");
    assert!(body.get("ciphertext").is_none());
}
