//! The admin API and `verifier serve`'s configuration: tokens that are not
//! right change nothing, uploads take effect for the next decision (and
//! persist), a policy that does not compile is refused while the old one
//! keeps deciding, and the EAR key survives restarts.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use verifier::admin::token;
use verifier::audit::{AuditLog, Decision, EntryFilter, EntryKind};
use verifier::broker::{ResourceStore as _, SqliteResourceStore};
use verifier::config::ServeConfig;
use verifier::jwe::{self, Curve, FlattenedJwe, TeeSecretKey};
use verifier::policy::PolicySetName;
use verifier::serve::{AdminKey, ServeArgs, ServeOptions, Service, build_service};
use verifier::time::UnixTime;

use crate::broker::{auth, send};
use crate::kbs_e2e::{MODEL, attest_body, policies};

const RESOURCE: &str = "/kbs/v0/resource/default/model/smollm2-135m-instruct";

fn options(data: &Path, admin: AdminKey) -> ServeOptions {
    ServeOptions {
        dev: true,
        listen: "127.0.0.1:0".parse().unwrap(),
        data: data.to_owned(),
        policies: policies(),
        policy_set: PolicySetName::Development,
        danger_simulated_roots: true,
        admin,
        collateral: data.join("collateral"),
        ear_ttl_secs: 300,
    }
}

/// A development server with a `--dev` admin key; returns its router and the key.
fn dev_service(data: &Path) -> (Service, Router, SigningKey) {
    let service = build_service(&options(data, AdminKey::DevGenerated)).unwrap();
    let key_file = service.admin_key_file.clone().unwrap();
    assert_eq!(key_file, data.join("admin-key.pem"));
    let key = token::read_signing_key(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let app = service.router();
    (service, app, key)
}

fn now() -> UnixTime {
    UnixTime::now()
}

fn good_token(key: &SigningKey) -> String {
    token::mint(key, now(), Some("test"))
}

/// A token with arbitrary header and claims, signed by `key`.
fn signed(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Answer {
    fn codes(&self) -> Vec<String> {
        self.body["denials"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["code"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn admin_post(app: &Router, uri: &str, bearer: Option<&str>, body: Vec<u8>) -> Answer {
    let mut req = Request::builder().method("POST").uri(uri);
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn policy_body(text: &str) -> Vec<u8> {
    json!({"policy": URL_SAFE_NO_PAD.encode(text)})
        .to_string()
        .into_bytes()
}

fn attestation_policy_body(id: &str, text: &str) -> Vec<u8> {
    json!({"type": "rego", "policy_id": id, "policy": URL_SAFE_NO_PAD.encode(text)})
        .to_string()
        .into_bytes()
}

/// One KBS round: auth → attest → resource. Returns the attest answer
/// (status, body) and, when the attest passed, the resource answer and key.
async fn kbs_round(app: &Router) -> (StatusCode, Value, Option<(StatusCode, Value)>, TeeSecretKey) {
    let (cookie, nonce) = auth(app, None).await;
    let key = TeeSecretKey::generate(Curve::P256);
    let r = send(
        app,
        "POST",
        "/kbs/v0/attest",
        Some(&cookie),
        Some(attest_body(&nonce, &key)),
    )
    .await;
    if r.status != StatusCode::OK {
        return (r.status, r.body, None, key);
    }
    let attest = r.body;
    let r = send(app, "GET", RESOURCE, Some(&cookie), None).await;
    (StatusCode::OK, attest, Some((r.status, r.body)), key)
}

fn ear_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn stored(data: &Path) -> Option<Vec<u8>> {
    SqliteResourceStore::open(&data.join("resources.sqlite3"))
        .unwrap()
        .get("default", ["default", "model", "smollm2-135m-instruct"])
        .unwrap()
}

#[tokio::test]
async fn refused_tokens_are_401_with_a_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_service, app, key) = dev_service(dir.path());
    let stranger = SigningKey::from_bytes(&[7; 32]);
    let t = now().0;
    let header = json!({"alg": "EdDSA", "typ": "JWT"});
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("wrong key", Some(good_token(&stranger))),
        (
            "expired",
            Some(signed(
                &key,
                &header,
                &json!({"iat": t - 200, "exp": t - 100}),
            )),
        ),
        ("malformed", Some("not.a-token".to_owned())),
        ("no exp", Some(signed(&key, &header, &json!({"iat": t})))),
        (
            "too long-lived",
            Some(signed(&key, &header, &json!({"iat": t, "exp": t + 3600}))),
        ),
        (
            "alg none",
            Some(signed(
                &key,
                &json!({"alg": "none"}),
                &json!({"iat": t, "exp": t + 60}),
            )),
        ),
    ];
    let policy_dir = dir.path().join("policies");
    for (what, bearer) in &cases {
        let r = admin_post(&app, RESOURCE, bearer.as_deref(), b"stolen".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        assert_eq!(r.codes(), ["admin_unauthorized"], "{what}");
        assert_eq!(r.content_type, "application/problem+json", "{what}");
        let r = admin_post(
            &app,
            "/kbs/v0/resource-policy",
            bearer.as_deref(),
            policy_body("package attestor.development.resource\nimport rego.v1\nresult := {\"allow\": true, \"reasons\": []}\n"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        assert_eq!(r.codes(), ["admin_unauthorized"], "{what}");
    }
    assert_eq!(stored(dir.path()), None, "no refused call stored anything");

    // A good token is accepted once; replayed, it is refused and changes nothing.
    let once = good_token(&key);
    let r = admin_post(&app, RESOURCE, Some(&once), b"first".to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = admin_post(&app, RESOURCE, Some(&once), b"replayed".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.codes(), ["admin_unauthorized"]);
    assert!(r.body["detail"].as_str().unwrap().contains("already used"));
    assert_eq!(stored(dir.path()).as_deref(), Some(&b"first"[..]));

    // The expired token's denial names the values.
    let r = admin_post(&app, RESOURCE, cases[2].1.as_deref(), b"x".to_vec()).await;
    assert_eq!(r.body["denials"][0]["detail"]["field"], "exp");
    assert_eq!(
        r.body["denials"][0]["detail"]["found"],
        (t - 100).to_string()
    );

    assert!(!policy_dir.exists(), "nothing uploaded");
    // Every refusal is an audit entry of kind admin.
    let log = AuditLog::open_existing(&dir.path().join("audit")).unwrap();
    let denied = log
        .entries(&EntryFilter {
            kind: Some(EntryKind::Admin),
            decision: Some(Decision::Deny),
            since: None,
        })
        .unwrap();
    assert_eq!(denied.len(), cases.len() * 2 + 2);
    assert_eq!(denied[0].1.reasons[0].code, "admin_unauthorized");
    assert_eq!(
        denied[0].1.resource.as_deref(),
        Some("kbs:///default/model/smollm2-135m-instruct")
    );
    log.verify_all().unwrap();
}

#[tokio::test]
async fn without_an_admin_key_every_call_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let service = build_service(&options(dir.path(), AdminKey::DenyAll)).unwrap();
    assert!(!service.admin.is_enabled());
    assert!(!dir.path().join("admin-key.pem").exists());
    let app = service.router();
    let any_key = SigningKey::from_bytes(&[1; 32]);
    let r = admin_post(&app, RESOURCE, Some(&good_token(&any_key)), b"x".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.codes(), ["admin_unauthorized"]);
    assert!(
        r.body["detail"].as_str().unwrap().contains("disabled"),
        "{}",
        r.body
    );
    assert_eq!(stored(dir.path()), None);
}

#[tokio::test]
async fn a_resource_put_through_the_admin_api_is_released_through_kbs() {
    let dir = tempfile::tempdir().unwrap();
    let (_service, app, key) = dev_service(dir.path());
    let r = admin_post(
        &app,
        RESOURCE,
        Some(&good_token(&key)),
        b"admin-set-key".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["bytes"], 13);
    assert_eq!(r.body["tenant"], "default");
    // Another tenant's namespace is separate.
    let r = admin_post(
        &app,
        &format!("{RESOURCE}?tenant=other"),
        Some(&good_token(&key)),
        b"other".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tenant"], "other");
    assert_eq!(stored(dir.path()).as_deref(), Some(&b"admin-set-key"[..]));

    let (status, body, resource, tee_key) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, body) = resource.unwrap();
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let jwe: FlattenedJwe = serde_json::from_value(body).unwrap();
    assert_eq!(jwe::decrypt(&jwe, &tee_key).unwrap(), b"admin-set-key");

    let log = AuditLog::open_existing(&dir.path().join("audit")).unwrap();
    let allowed = log
        .entries(&EntryFilter {
            kind: Some(EntryKind::Admin),
            decision: Some(Decision::Allow),
            since: None,
        })
        .unwrap();
    assert_eq!(allowed.len(), 2);
    assert_eq!(
        allowed[1].1.resource.as_deref(),
        Some("other:kbs:///default/model/smollm2-135m-instruct")
    );
    assert!(allowed[0].1.request_id.ends_with(":test"));
}

#[tokio::test]
async fn a_policy_that_does_not_compile_is_refused_and_the_old_one_still_decides() {
    let dir = tempfile::tempdir().unwrap();
    let (service, app, key) = dev_service(dir.path());
    let before = service.admin_key_file.clone();
    assert!(before.is_some());
    let r = admin_post(&app, RESOURCE, Some(&good_token(&key)), b"k".to_vec()).await;
    assert_eq!(r.status, StatusCode::OK);

    let broken = "package attestor.development.resource\nimport rego.v1\nresult := {\n";
    let r = admin_post(
        &app,
        "/kbs/v0/resource-policy",
        Some(&good_token(&key)),
        policy_body(broken),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.codes(), ["admin_update_invalid"]);
    // Compiles, but not the entry point the set needs.
    let wrong_package = "package somewhere.else\nimport rego.v1\nresult := 1\n";
    let r = admin_post(
        &app,
        "/kbs/v0/attestation-policy",
        Some(&good_token(&key)),
        attestation_policy_body("cpu", wrong_package),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.codes(), ["admin_update_invalid"]);
    let r = admin_post(
        &app,
        "/kbs/v0/attestation-policy",
        Some(&good_token(&key)),
        attestation_policy_body("tpm", broken),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("\"tpm\""));
    // Compiles, right entry point, but its answer is malformed.
    let malformed = "package attestor.development.resource\nimport rego.v1\nresult := {\"allow\": \"yes\", \"reasons\": []}\n";
    let r = admin_post(
        &app,
        "/kbs/v0/resource-policy",
        Some(&good_token(&key)),
        policy_body(malformed),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("`allow` is not a boolean"),
        "{}",
        r.body
    );
    assert!(!dir.path().join("policies").exists());

    // The shipped policies still decide: the key is released.
    let (status, body, resource, _) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(resource.unwrap().0, StatusCode::OK);

    // A valid resource policy that refuses everything takes effect at once.
    let deny_all = r#"package attestor.development.resource
import rego.v1
result := {"allow": false, "reasons": [{"code": "policy_rejected", "rule": "admin.freeze", "message": "releases frozen by the operator"}]}
"#;
    let r = admin_post(
        &app,
        "/kbs/v0/resource-policy",
        Some(&good_token(&key)),
        policy_body(deny_all),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(deny_all));
    let new_id = format!("development/resource@sha256:{digest}");
    assert!(
        r.body["policy_ids"]
            .as_array()
            .unwrap()
            .contains(&json!(new_id)),
        "{}",
        r.body
    );
    let (status, body, resource, _) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, body) = resource.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:#}");
    assert_eq!(body["denials"][0]["code"], "policy_rejected");
    assert!(body["detail"].as_str().unwrap().contains("admin.freeze"));
    assert!(body.get("ciphertext").is_none());

    // An attestation policy update changes the policy id in later EARs.
    let shipped = std::fs::read_to_string(policies().join("development/cpu.rego")).unwrap();
    let edited = format!("{shipped}\n# reviewed by the operator\n");
    let r = admin_post(
        &app,
        "/kbs/v0/attestation-policy",
        Some(&good_token(&key)),
        attestation_policy_body("default_cpu", &edited),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cpu_id = format!(
        "development/cpu@sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&edited))
    );
    let (status, body, _, _) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let ear = ear_payload(body["token"].as_str().unwrap()).to_string();
    assert!(ear.contains(&cpu_id), "{ear}");

    // Both uploads persist: a restart on the same data keeps them.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("policies/development/resource.rego")).unwrap(),
        deny_all
    );
    // The exact text behind each id is archived by digest.
    let archived = format!("policies/archive/development-resource-{digest}.rego");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(archived)).unwrap(),
        deny_all
    );
    drop((service, app));
    let again = build_service(&options(dir.path(), AdminKey::DevGenerated)).unwrap();
    let (status, body, resource, _) = kbs_round(&again.router()).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert!(
        ear_payload(body["token"].as_str().unwrap())
            .to_string()
            .contains(&cpu_id)
    );
    assert_eq!(resource.unwrap().0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_reference_value_update_changes_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (_service, app, key) = dev_service(dir.path());
    let r = admin_post(&app, RESOURCE, Some(&good_token(&key)), b"k".to_vec()).await;
    assert_eq!(r.status, StatusCode::OK);
    let (status, body, resource, _) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(resource.unwrap().0, StatusCode::OK);

    // Malformed reference values are refused; nothing changes.
    for bad in [
        json!({"development": 5}),
        json!({"production": {}}),
        json!([1]),
    ] {
        let r = admin_post(
            &app,
            "/kbs/v0/reference-value",
            Some(&good_token(&key)),
            bad.to_string().into_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.codes(), ["admin_update_invalid"]);
    }

    // The reference model is no longer allowed.
    let text = std::fs::read_to_string(policies().join("reference/development.json")).unwrap();
    let other = format!("sha256:{}", "00".repeat(32));
    let edited: Value = serde_json::from_str(&text.replace(MODEL, &other)).unwrap();
    let r = admin_post(
        &app,
        "/kbs/v0/reference-value",
        Some(&good_token(&key)),
        edited.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, body, resource, _) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:#}");
    assert!(resource.is_none());
    let codes: Vec<&str> = body["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"model_mismatch"), "{codes:?}");
    assert!(body["detail"].as_str().unwrap().contains(MODEL), "{body:#}");
    assert!(
        dir.path()
            .join("policies/reference/development.json")
            .is_file()
    );
    let id = r.body["policy_ids"][4].as_str().unwrap();
    let hex = id.strip_prefix("development/reference@sha256:").unwrap();
    let archived = format!("policies/archive/development-reference-{hex}.json");
    let archived: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(archived)).unwrap()).unwrap();
    assert_eq!(archived, edited);
}

#[tokio::test]
async fn the_ear_key_persists_across_builds() {
    let dir = tempfile::tempdir().unwrap();
    let roots =
        || verifier::trust::TrustRoots::danger_simulated(&attestor::sim::SimSeed::DEFAULT).unwrap();
    let collateral = || {
        verifier::appraise::bundle::BundleCollateral::danger_simulated(
            &attestor::sim::SimSeed::DEFAULT,
        )
        .unwrap()
    };
    let first = verifier::serve::build(
        dir.path(),
        &policies(),
        "development",
        roots(),
        collateral(),
    )
    .unwrap();
    drop(first);
    let jwk1 = std::fs::read_to_string(dir.path().join("ear_key.jwk")).unwrap();
    let pem1 = std::fs::read(dir.path().join("ear_key.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("ear_key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = verifier::serve::build(
        dir.path(),
        &policies(),
        "development",
        roots(),
        collateral(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ear_key.jwk")).unwrap(),
        jwk1
    );
    assert_eq!(std::fs::read(dir.path().join("ear_key.pem")).unwrap(), pem1);

    // An EAR from the second instance verifies with the first instance's public key.
    let app = verifier::broker::router(std::sync::Arc::new(second));
    let (status, body, _, _) = kbs_round(&app).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let jwk: Value = serde_json::from_str(&jwk1).unwrap();
    let bare = json!({"kty": "EC", "crv": "P-384", "x": jwk["x"], "y": jwk["y"]});
    let key: p384::ecdsa::VerifyingKey = p384::PublicKey::from_jwk_str(&bare.to_string())
        .unwrap()
        .into();
    let claims =
        verifier::result::verify_ear(body["token"].as_str().unwrap(), &key, now()).unwrap();
    assert!(!claims.submods.is_empty());

    // A key file others can read is refused, not used.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.path().join("ear_key.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = verifier::serve::build(
            dir.path(),
            &policies(),
            "development",
            roots(),
            collateral(),
        )
        .err()
        .unwrap();
        assert!(format!("{err:#}").contains("readable by others"), "{err:#}");
    }
}

#[test]
fn configuration_files_parse_and_refuse_what_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verifier.toml");
    std::fs::write(
        &path,
        r#"
listen = "127.0.0.1:9999"
data = "state"
policies = "/opt/policies"
policy_set = "development"
danger_simulated_roots = true
admin_public_key = "admin.pub.pem"
collateral = "cache"
ear_ttl_secs = 120
"#,
    )
    .unwrap();
    let c = ServeConfig::read(&path).unwrap();
    assert_eq!(c.listen, Some("127.0.0.1:9999".parse().unwrap()));
    assert_eq!(c.data, Some(dir.path().join("state")));
    assert_eq!(c.policies, Some(PathBuf::from("/opt/policies")));
    assert_eq!(c.policy_set(), PolicySetName::Development);
    assert!(c.danger_simulated_roots);
    assert_eq!(c.admin_public_key, Some(dir.path().join("admin.pub.pem")));
    assert_eq!(c.collateral, Some(dir.path().join("cache")));
    assert_eq!(c.ear_ttl_secs, Some(120));

    // Flags override the file.
    let args = ServeArgs {
        config: Some(path.clone()),
        listen: Some("127.0.0.1:7777".parse().unwrap()),
        ..ServeArgs::default()
    };
    let o = ServeOptions::resolve(&args).unwrap();
    assert_eq!(o.listen, "127.0.0.1:7777".parse().unwrap());
    assert_eq!(o.data, dir.path().join("state"));
    assert_eq!(
        o.admin,
        AdminKey::PublicKeyFile(dir.path().join("admin.pub.pem"))
    );
    assert_eq!(o.ear_ttl_secs, 120);

    // The safe defaults: production, vendor roots, no admin.
    let o = ServeOptions::resolve(&ServeArgs::default()).unwrap();
    assert_eq!(o.policy_set, PolicySetName::Production);
    assert!(!o.danger_simulated_roots);
    assert_eq!(o.admin, AdminKey::DenyAll);

    // --dev: development, simulated roots, a generated admin key unless one
    // is configured; it refuses a file that asks for production.
    let o = ServeOptions::resolve(&ServeArgs {
        dev: true,
        ..ServeArgs::default()
    })
    .unwrap();
    assert_eq!(o.policy_set, PolicySetName::Development);
    assert!(o.danger_simulated_roots);
    assert_eq!(o.admin, AdminKey::DevGenerated);
    assert!(o.listen.ip().is_loopback());
    let production = dir.path().join("production.toml");
    std::fs::write(&production, "policy_set = \"production\"\n").unwrap();
    let err = ServeOptions::resolve(&ServeArgs {
        dev: true,
        config: Some(production),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("--dev uses the development policy set"),
        "{err}"
    );

    let refused = [
        (
            "listen = \"127.0.0.1:1\"\nadmin_key = \"x\"\n",
            "unknown field `admin_key`",
        ),
        (
            "danger_simulated_roots = true\n",
            "needs policy_set = \"development\"",
        ),
        (
            "policy_set = \"staging\"\n",
            "unknown policy set \"staging\"",
        ),
        ("ear_ttl_secs = 0\n", "at least 1"),
        ("listen = 5\n", "invalid type"),
    ];
    for (text, want) in refused {
        let err = ServeConfig::parse(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn a_dev_admin_key_is_created_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let first = build_service(&options(dir.path(), AdminKey::DevGenerated)).unwrap();
    let pem = std::fs::read(first.admin_key_file.as_ref().unwrap()).unwrap();
    drop(first);
    let second = build_service(&options(dir.path(), AdminKey::DevGenerated)).unwrap();
    assert_eq!(
        std::fs::read(second.admin_key_file.as_ref().unwrap()).unwrap(),
        pem
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("admin-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Kills the server it holds when dropped, so a failing test leaves no process behind.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_admin_cli_talks_to_a_running_server() {
    use std::ffi::OsStr;
    use std::io::BufRead as _;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_verifier"))
        .arg("serve")
        .arg("--dev")
        .arg("--data")
        .arg(&data)
        .arg("--policies")
        .arg(policies())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let admin_key = data.join("admin-key.pem");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"cli-secret").unwrap();
    let os = |s: &Path| s.as_os_str().to_owned();

    // resource put over the network: stored under the tenant given.
    let (code, out, err) = crate::verifier(&[
        OsStr::new("resource"),
        OsStr::new("put"),
        OsStr::new("--server"),
        OsStr::new(&url),
        OsStr::new("--admin-key"),
        &os(&admin_key),
        OsStr::new("--tenant"),
        OsStr::new("t1"),
        OsStr::new("default/model/smollm2-135m-instruct"),
        &os(&secret),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["tenant"], "t1");
    assert_eq!(answer["bytes"], 10);

    // A key the server does not trust: refused, exit 1, the code printed.
    let stranger = dir.path().join("stranger.pem");
    std::fs::write(&stranger, token::generate_pem().unwrap().1).unwrap();
    let (code, _, err) = crate::verifier(&[
        OsStr::new("resource"),
        OsStr::new("put"),
        OsStr::new("--server"),
        OsStr::new(&url),
        OsStr::new("--admin-key"),
        &os(&stranger),
        OsStr::new("default/model/x"),
        &os(&secret),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("admin_unauthorized"), "{err}");

    // policy put: a broken policy is refused (1), a good one accepted (0).
    let broken = dir.path().join("broken.rego");
    std::fs::write(
        &broken,
        "package attestor.development.resource\nresult := {\n",
    )
    .unwrap();
    let (code, _, err) = crate::verifier(&[
        OsStr::new("policy"),
        OsStr::new("put"),
        OsStr::new("--server"),
        OsStr::new(&url),
        OsStr::new("--admin-key"),
        &os(&admin_key),
        OsStr::new("--resource"),
        &os(&broken),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("admin_update_invalid"), "{err}");
    let cpu = policies().join("development/cpu.rego");
    let (code, out, err) = crate::verifier(&[
        OsStr::new("policy"),
        OsStr::new("put"),
        OsStr::new("--server"),
        OsStr::new(&url),
        OsStr::new("--admin-key"),
        &os(&admin_key),
        OsStr::new("--attestation"),
        OsStr::new("cpu"),
        &os(&cpu),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("development/cpu@sha256:"), "{out}");

    // reference put: the shipped values, accepted.
    let reference = policies().join("reference/development.json");
    let (code, out, err) = crate::verifier(&[
        OsStr::new("reference"),
        OsStr::new("put"),
        OsStr::new("--server"),
        OsStr::new(&url),
        OsStr::new("--admin-key"),
        &os(&admin_key),
        &os(&reference),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("development/reference@sha256:"), "{out}");
    drop(server);

    // Offline: --data writes the store directly; --data with --server is a usage error.
    let (code, _, err) = crate::verifier(&[
        OsStr::new("resource"),
        OsStr::new("put"),
        OsStr::new("--data"),
        &os(&data),
        OsStr::new("default/model/offline"),
        &os(&secret),
    ]);
    assert_eq!(code, 0, "{err}");
    let store = SqliteResourceStore::open(&data.join("resources.sqlite3")).unwrap();
    assert_eq!(
        store
            .get("default", ["default", "model", "offline"])
            .unwrap()
            .as_deref(),
        Some(&b"cli-secret"[..])
    );
    assert_eq!(
        store
            .get("t1", ["default", "model", "smollm2-135m-instruct"])
            .unwrap()
            .as_deref(),
        Some(&b"cli-secret"[..])
    );
    let (code, _, _) = crate::verifier(&[
        OsStr::new("resource"),
        OsStr::new("put"),
        OsStr::new("--data"),
        &os(&data),
        OsStr::new("--server"),
        OsStr::new(&url),
        OsStr::new("a/b/c"),
        &os(&secret),
    ]);
    assert_eq!(code, 2);
}
