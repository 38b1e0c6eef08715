//! Policies and attestation results: the shipped Rego policy sets over the
//! fixtures in `policies/tests/` (the same fixtures OPA runs through
//! `policies/tests/fixtures_test.rego`), and EAR tokens parsed by the `ear`
//! crate and verified by a stock JOSE library.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p384::ecdsa::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use verifier::denial::DenialCode;
use verifier::policy::input::{self, AttestationParts, CpuClaims};
use verifier::policy::{PolicyError, PolicySet, PolicySetName, Status};
use verifier::result::{self, EAR_PROFILE, EarError, VerifierId};
use verifier::time::UnixTime;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn set(name: PolicySetName) -> &'static PolicySet {
    static PRODUCTION: OnceLock<PolicySet> = OnceLock::new();
    static DEVELOPMENT: OnceLock<PolicySet> = OnceLock::new();
    let cell = match name {
        PolicySetName::Production => &PRODUCTION,
        PolicySetName::Development => &DEVELOPMENT,
    };
    cell.get_or_init(|| PolicySet::load(&policies_dir(), name.as_str()).unwrap())
}

fn fixtures() -> Vec<(String, Value)> {
    let dir = policies_dir().join("tests");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let map = file.as_object().unwrap();
        assert_eq!(map.len(), 1, "{stem}: one fixture per file");
        let fixture = map
            .get(&stem)
            .unwrap_or_else(|| panic!("{stem}: key must equal the file name"));
        out.push((stem, fixture.clone()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 30, "fixtures missing");
    out
}

fn codes<'a>(reasons: impl IntoIterator<Item = &'a verifier::policy::Reason>) -> Vec<String> {
    let set: BTreeSet<String> = reasons
        .into_iter()
        .map(|r| r.code.as_str().to_owned())
        .collect();
    set.into_iter().collect()
}

fn want_strings(want: &Value, key: &str) -> Vec<String> {
    want.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn check_reasons(
    what: &str,
    reasons: &[verifier::policy::Reason],
    want: &Value,
    failures: &mut Vec<String>,
) {
    let mut want_codes = want_strings(want, "codes");
    want_codes.sort();
    let got = codes(reasons);
    if got != want_codes {
        failures.push(format!("{what}: codes {got:?}, expected {want_codes:?}"));
    }
    for rule in want_strings(want, "rules") {
        if !reasons.iter().any(|r| r.rule == rule) {
            failures.push(format!("{what}: no reason for rule {rule}"));
        }
    }
}

/// Every fixture, through the Rust API, for each set it names.
#[test]
fn fixtures_pass() {
    let mut failures = Vec::new();
    for (name, fixture) in fixtures() {
        for set_name in want_strings(&fixture, "sets") {
            let policies = set(PolicySetName::parse(&set_name).unwrap());
            let what = format!("{name} ({set_name})");
            let expect = &fixture["expect"];
            match fixture["kind"].as_str().unwrap() {
                "attestation" => {
                    let decision = policies.evaluate_attestation(&fixture["input"]).unwrap();
                    for (submod, want) in expect["submods"].as_object().unwrap() {
                        let Some(got) = decision.submods.get(submod) else {
                            failures.push(format!("{what}: no submodule {submod}"));
                            continue;
                        };
                        let what = format!("{what} {submod}");
                        if got.status.as_str() != want["status"] {
                            failures.push(format!(
                                "{what}: status {}, expected {} (reasons {:?})",
                                got.status, want["status"], got.reasons
                            ));
                        }
                        check_reasons(&what, &got.reasons, want, &mut failures);
                        for (claim, value) in want
                            .get("vector")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                        {
                            let found = got.vector.claim(claim);
                            if found.map(i64::from) != value.as_i64() {
                                failures
                                    .push(format!("{what}: {claim} = {found:?}, expected {value}"));
                            }
                        }
                    }
                }
                "resource" => {
                    let decision = policies.evaluate_resource(&fixture["input"]).unwrap();
                    if Value::Bool(decision.allow) != expect["allow"] {
                        failures.push(format!(
                            "{what}: allow {}, reasons {:?}",
                            decision.allow, decision.reasons
                        ));
                    }
                    check_reasons(&what, &decision.reasons, expect, &mut failures);
                }
                other => panic!("{name}: unknown kind {other}"),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The Rego test rule that OPA users run (`opa test policies/`) passes in regorus too.
#[test]
fn rego_fixture_test_passes_in_regorus() {
    let dir = policies_dir();
    let mut engine = regorus::Engine::new();
    let mut data = json!({"reference": {}, "tests": {}});
    for set_name in PolicySetName::ALL {
        for policy in ["cpu", "gpu", "model", "resource"] {
            engine
                .add_policy_from_file(dir.join(set_name.as_str()).join(format!("{policy}.rego")))
                .unwrap();
        }
        let file: Value = serde_json::from_slice(
            &std::fs::read(dir.join("reference").join(format!("{set_name}.json"))).unwrap(),
        )
        .unwrap();
        data["reference"][set_name.as_str()] = file[set_name.as_str()].clone();
    }
    for (name, fixture) in fixtures() {
        data["tests"][name] = fixture;
    }
    engine
        .add_policy_from_file(dir.join("tests/fixtures_test.rego"))
        .unwrap();
    engine.add_data(regorus::Value::from(data)).unwrap();
    let failures = engine
        .eval_rule("data.attestor.tests.failures".to_owned())
        .unwrap();
    assert_eq!(
        serde_json::to_value(&failures).unwrap(),
        json!([]),
        "fixtures failing under the Rego test rule"
    );
    let passed = engine
        .eval_rule("data.attestor.tests.test_every_fixture_passes".to_owned())
        .unwrap();
    assert_eq!(passed, regorus::Value::Bool(true));
}

/// The development set is the production set renamed, accepting more roots:
/// the committed files equal what `policies/gen-development.sh` makes.
#[test]
fn development_is_production_with_other_roots() {
    let dir = policies_dir();
    for policy in ["cpu", "gpu", "model", "resource"] {
        let production =
            std::fs::read_to_string(dir.join("production").join(format!("{policy}.rego"))).unwrap();
        let development =
            std::fs::read_to_string(dir.join("development").join(format!("{policy}.rego")))
                .unwrap();
        let expected: String = production
            .replace("production", "development")
            .lines()
            .map(|line| {
                if line.starts_with("accepted_roots := ") {
                    r#"accepted_roots := {"vendor", "directory", "simulated"}"#.to_owned()
                } else if line.starts_with("accepted_policy_sets := ") {
                    r#"accepted_policy_sets := {"production", "development"}"#.to_owned()
                } else {
                    line.to_owned()
                }
            })
            .map(|l| l + "\n")
            .collect();
        assert_eq!(
            development, expected,
            "{policy}.rego: run policies/gen-development.sh"
        );
        assert!(production.contains("accepted_roots := {\"vendor\"}\n"));
    }
}

#[test]
fn policy_ids_carry_the_sha256_of_the_policy_text() {
    let dir = policies_dir();
    let ids = set(PolicySetName::Production).policy_ids();
    for (id, policy) in ids.iter().zip(["cpu", "gpu", "model", "resource"]) {
        let text = std::fs::read(dir.join("production").join(format!("{policy}.rego"))).unwrap();
        assert_eq!(
            id,
            &format!(
                "production/{policy}@sha256:{}",
                hex::encode(Sha256::digest(&text))
            )
        );
    }
    assert!(ids[4].starts_with("production/reference@sha256:"));
    assert_ne!(
        set(PolicySetName::Development).policy_ids()[0],
        ids[0],
        "the sets' texts differ"
    );
}

#[test]
fn unknown_set_and_bad_input_are_errors() {
    assert!(matches!(
        PolicySet::load(&policies_dir(), "staging"),
        Err(PolicyError::UnknownSet(_))
    ));
    let p = set(PolicySetName::Production);
    assert!(matches!(
        p.evaluate_attestation(&json!([])),
        Err(PolicyError::Input(_))
    ));
    assert!(matches!(
        p.evaluate_attestation(&json!({"gpus": 3})),
        Err(PolicyError::Input(_))
    ));
    assert!(matches!(
        p.evaluate_attestation(&json!({"reference": "x"})),
        Err(PolicyError::Input(_))
    ));
}

/// Claims shaped like the appraisal modules' output (SNP, one GPU), simulated.
fn simulated_snp_input(debug: bool) -> Value {
    let snp = json!({
        "roots": "simulated", "product": "Milan", "version": 3, "debug": debug,
        "report_data_checked": true, "vmpl": 0, "guest_svn": 0,
        "measurement": "02dbf47276177f7cf4a1ff69a9b29e7dba4be4de305c90308223beb89c0dca67e4c015faad83dee71d38aeb816ec3138",
        "host_data": "00".repeat(32),
        "policy": {"raw": "0x0000000000030000", "smt_allowed": true, "migrate_ma_allowed": false, "debug_allowed": debug},
        "platform_info": {"raw": "0x0000000000000025", "smt_enabled": true},
        "tcb": {"layout": "MilanGenoa",
                "reported": {"raw": "0xdb18000000000004", "parts": {"bootloader": 4, "tee": 0, "snp": 24, "microcode": 219}}},
        "revocation": {"checked": false, "note": "no CRL"},
        "warnings": ["simulated roots"]
    });
    let gpu = json!({
        "roots": "simulated", "arch": "HOPPER", "nonce_checked": true,
        "driver_version": "550.90.07", "vbios_version": "96.00.9F.00.01", "fwid_match": true,
        "measurements": {"compared": true, "driver_version_match": true, "vbios_version_match": true,
                         "matched": [1, 2, 3], "skipped": {}, "sources": {}},
        "device_revocation": {"status": "not_checked", "certs": []},
        "collection": {"cc_mode": "on", "devtools_mode": false},
        "warnings": []
    });
    input::attestation_input(&AttestationParts {
        cpu: Some(CpuClaims::Snp(&snp)),
        gpus: &[gpu],
        runtime_data: Some(&json!({
            "nonce": "bm9uY2U",
            "model": "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4"
        })),
        cpu_binding_verified: true,
    })
}

#[test]
fn claims_built_input_production_denies_simulation_development_accepts() {
    let input = simulated_snp_input(false);
    let production = set(PolicySetName::Production)
        .evaluate_attestation(&input)
        .unwrap();
    assert_eq!(production.status(), Status::Contraindicated);
    let denials = production.denials();
    assert!(
        denials
            .iter()
            .any(|d| d.code == DenialCode::SimulationNotAllowed)
    );
    assert!(
        production.submods["cpu"]
            .reasons
            .iter()
            .any(|r| r.code == DenialCode::SimulationNotAllowed && r.rule == "cpu.roots")
    );

    let development = set(PolicySetName::Development)
        .evaluate_attestation(&input)
        .unwrap();
    assert!(development.is_affirming(), "{:?}", development.denials());
    assert_eq!(
        development.submods.keys().collect::<Vec<_>>(),
        ["cpu", "gpu0", "model"]
    );
    assert_eq!(development.roots, "simulated");
    assert_eq!(development.policy_ids.len(), 4);
    assert!(development.policy_ids[0].starts_with("development/cpu@sha256:"));

    let debug = set(PolicySetName::Development)
        .evaluate_attestation(&simulated_snp_input(true))
        .unwrap();
    let cpu = &debug.submods["cpu"];
    assert_eq!(cpu.status, Status::Contraindicated);
    let reason = cpu
        .reasons
        .iter()
        .find(|r| r.code == DenialCode::DebugEnabled)
        .unwrap();
    assert_eq!(reason.rule, "cpu.policy.debug_allowed");
    assert_eq!(
        (reason.expected.clone(), reason.found.clone()),
        (json!(false), json!(true))
    );
}

fn receipt_key() -> (SigningKey, Value) {
    let key = SigningKey::from_slice(&[7u8; 48]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-384",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    (key, jwk)
}

fn verifier_id() -> VerifierId {
    VerifierId {
        developer: "https://example.invalid/attestor-verifier".to_owned(),
        build: "0.1.0+test".to_owned(),
    }
}

const NONCE: &[u8] = b"a relying party nonce, 32 bytes!";

/// Issue → parse with the `ear` crate → verify with `jsonwebtoken` and with
/// `verify_ear` → tampering fails everywhere.
#[test]
fn ear_round_trip_parses_with_ear_and_verifies_with_jose() {
    let decision = set(PolicySetName::Development)
        .evaluate_attestation(&simulated_snp_input(false))
        .unwrap();
    let signer = SigningKey::from_slice(&[3u8; 48]).unwrap();
    let (_, receipt_jwk) = receipt_key();
    // The `ear` crate checks `exp` against the system clock: issue "now".
    let now = UnixTime::now();
    let token = result::issue_ear(
        &decision,
        NONCE,
        Some(&receipt_jwk),
        &signer,
        &verifier_id(),
        now,
        300,
    )
    .unwrap();

    // 1. Our verification, as of now.
    let claims = result::verify_ear(&token, signer.verifying_key(), now).unwrap();
    assert_eq!(claims.eat_profile, EAR_PROFILE);
    assert_eq!(claims.ear_status, Status::Affirming);
    assert_eq!(claims.exp, now.0 + 300);
    assert_eq!(claims.attestor_roots, "simulated");
    assert_eq!(claims.attestor_receipt_key.as_ref(), Some(&receipt_jwk));
    assert!(claims.submods["cpu"].ear_veraison_key_attestation.is_some());

    // 2. The payload has the EAR draft-04 shape.
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let parsed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(parsed["eat_profile"], "tag:ietf.org,2026:rats/ear#04");
    assert_eq!(parsed["ear_status"], "affirming");
    assert_eq!(parsed["exp"], now.0 + 300);
    assert_eq!(
        parsed["ear_verifier_id"]["developer"],
        verifier_id().developer
    );
    let submods: Vec<&String> = parsed["submods"].as_object().unwrap().keys().collect();
    assert_eq!(submods, ["cpu", "gpu0", "model"]);
    let cpu = &parsed["submods"]["cpu"];
    assert_eq!(cpu["ear_status"], "affirming");
    assert_eq!(cpu["ear_trustworthiness_vector"]["hardware"], 2);
    assert!(cpu["ear_veraison_key_attestation"]["akpub"].is_string());
    assert_eq!(
        parsed["submods"]["model"]["ear_trustworthiness_vector"]["file-system"],
        2
    );
    assert!(parsed["eat_nonce"].is_string());

    // 2b. The EAR reference implementation (the `ear` crate, pinned 0.6.0,
    //     draft-04 profile) parses the same payload and finds it valid.
    let reference: ear::Ear = serde_json::from_slice(&payload).unwrap();
    reference.validate().unwrap();
    assert_eq!(reference.profile, ear::EAR_PROFILE);
    assert_eq!(reference.profile, EAR_PROFILE);
    assert_eq!(reference.iat, now.0);
    assert_eq!(reference.exp, Some(now.0 + 300));
    assert_eq!(reference.vid.developer, verifier_id().developer);
    assert_eq!(reference.status, Some(ear::TrustTier::Affirming));
    let names: Vec<&String> = reference.submods.keys().collect();
    assert_eq!(names, ["cpu", "gpu0", "model"]);
    assert_eq!(
        reference.submods["cpu"].status,
        ear::TrustTier::Affirming,
        "{:?}",
        reference.submods["cpu"]
    );
    assert!(reference.submods["cpu"].key_attestation.is_some());
    // A contraindicated overall status over affirming submodules is the
    // reference's own consistency rule: our result must not contradict it.
    let mut worse: Value = parsed.clone();
    worse["submods"]["cpu"]["ear_status"] = "contraindicated".into();
    let refused = serde_json::from_slice::<ear::Ear>(&serde_json::to_vec(&worse).unwrap())
        .expect_err("ear_status affirming above a contraindicated submodule");
    assert!(
        refused.to_string().contains("more trustworthy"),
        "{refused}"
    );

    // 3. A stock JOSE library verifies the signature with the verifier's public key.
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let jwk = result::public_jwk(signer.verifying_key());
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES384);
    validation.set_required_spec_claims(&["exp", "iat"]);
    let decoded = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    assert_eq!(decoded.claims["eat_profile"], EAR_PROFILE);
    assert_eq!(decoded.header.kid.as_deref(), jwk["kid"].as_str());

    // 4. Tampering: a changed payload, a signature by another key, a later time.
    let mut other = claims.clone();
    other.ear_status = Status::Affirming;
    other.attestor_roots = "vendor".to_owned();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(matches!(
        result::verify_ear(&tampered, signer.verifying_key(), now),
        Err(EarError::Signature)
    ));
    assert!(jsonwebtoken::decode::<Value>(&tampered, &key, &validation).is_err());
    let (stranger, _) = receipt_key();
    assert!(matches!(
        result::verify_ear(&token, stranger.verifying_key(), now),
        Err(EarError::Signature)
    ));
    assert!(matches!(
        result::verify_ear(&token, signer.verifying_key(), UnixTime(now.0 + 300)),
        Err(EarError::Expired { .. })
    ));
    assert!(matches!(
        result::verify_ear(&token, signer.verifying_key(), UnixTime(now.0 - 3600)),
        Err(EarError::NotYetValid { .. })
    ));
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    assert!(matches!(
        result::verify_ear(&alg_none, signer.verifying_key(), now),
        Err(EarError::Algorithm(_))
    ));
    assert!(matches!(
        result::verify_ear("a.b", signer.verifying_key(), now),
        Err(EarError::Malformed(_))
    ));
}

/// A deny carries every reason, and historical results verify "as of then".
#[test]
fn ear_of_a_deny_carries_every_reason() {
    let decision = set(PolicySetName::Production)
        .evaluate_attestation(&simulated_snp_input(true))
        .unwrap();
    let signer = SigningKey::from_slice(&[5u8; 48]).unwrap();
    let then = UnixTime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let token =
        result::issue_ear(&decision, NONCE, None, &signer, &verifier_id(), then, 300).unwrap();
    let claims = result::verify_ear(&token, signer.verifying_key(), UnixTime(then.0 + 10)).unwrap();
    assert_eq!(claims.ear_status, Status::Contraindicated);
    let cpu = &claims.submods["cpu"];
    let reasons = &cpu.ear_verifier_claims.as_ref().unwrap().reasons;
    let codes: BTreeSet<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
    // The shipped production values name no launch measurement yet: that too.
    assert_eq!(
        codes,
        BTreeSet::from([
            "debug_enabled",
            "measurement_mismatch",
            "simulation_not_allowed"
        ])
    );
    assert!(
        reasons
            .iter()
            .all(|r| !r.rule.is_empty() && !r.message.is_empty())
    );
    assert!(
        cpu.ear_appraisal_policy_ids
            .iter()
            .any(|id| id.starts_with("production/cpu@sha256:"))
    );
    assert_eq!(
        cpu.ear_trustworthiness_vector.claim("configuration"),
        Some(96)
    );
    assert!(claims.attestor_receipt_key.is_none());

    // The raw JSON has the reasons where a stock EAR reader finds verifier claims.
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let first = &payload["submods"]["cpu"]["ear_verifier_claims"]["reasons"][0];
    for key in ["code", "rule", "message", "expected", "found"] {
        assert!(first.get(key).is_some(), "reason without {key}");
    }
}

#[test]
fn ear_refuses_bad_arguments() {
    let decision = set(PolicySetName::Development)
        .evaluate_attestation(&simulated_snp_input(false))
        .unwrap();
    let signer = SigningKey::from_slice(&[3u8; 48]).unwrap();
    let now = UnixTime(1_767_225_600);
    let issue = |nonce: &[u8], key: Option<&Value>, ttl: u64| {
        result::issue_ear(&decision, nonce, key, &signer, &verifier_id(), now, ttl)
    };
    assert!(matches!(
        issue(b"short", None, 60),
        Err(EarError::NonceLength(5))
    ));
    assert!(matches!(
        issue(&[0; 65], None, 60),
        Err(EarError::NonceLength(65))
    ));
    assert!(matches!(issue(NONCE, None, 0), Err(EarError::Ttl(0))));
    let p256 = json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
    assert!(matches!(
        issue(NONCE, Some(&p256), 60),
        Err(EarError::ReceiptKey(_))
    ));
    let (_, mut private) = receipt_key();
    private["d"] = json!("AA");
    assert!(matches!(
        issue(NONCE, Some(&private), 60),
        Err(EarError::ReceiptKey(_))
    ));
}

/// The resource policy over an issued result: development releases the
/// simulated session's key, production refuses it.
#[test]
fn resource_policy_over_an_issued_result() {
    let decision = set(PolicySetName::Development)
        .evaluate_attestation(&simulated_snp_input(false))
        .unwrap();
    let signer = SigningKey::from_slice(&[3u8; 48]).unwrap();
    let (_, receipt_jwk) = receipt_key();
    let now = UnixTime(1_767_225_600);
    let token = result::issue_ear(
        &decision,
        NONCE,
        Some(&receipt_jwk),
        &signer,
        &verifier_id(),
        now,
        300,
    )
    .unwrap();
    let claims = result::verify_ear(&token, signer.verifying_key(), now).unwrap();
    let ear_json = serde_json::to_value(&claims).unwrap();
    let commitment = claims.attestor_model.as_deref();
    let request = input::resource_input(
        ["default", "model", "smollm2-135m-instruct"],
        None,
        &ear_json,
        commitment,
        Some(&receipt_jwk),
    );
    let dev = set(PolicySetName::Development)
        .evaluate_resource(&request)
        .unwrap();
    assert!(dev.allow, "{:?}", dev.reasons);
    assert!(dev.policy_ids[0].starts_with("development/resource@sha256:"));

    let prod = set(PolicySetName::Production)
        .evaluate_resource(&request)
        .unwrap();
    assert!(!prod.allow);
    let got: BTreeSet<&str> = prod.reasons.iter().map(|r| r.code.as_str()).collect();
    assert!(got.contains("simulation_not_allowed"), "{got:?}");
    // The development policy ids are refused by the production broker too.
    assert!(
        prod.reasons
            .iter()
            .any(|r| r.rule.ends_with("ear_appraisal_policy_ids"))
    );

    // Another receipt key than the attested one: refused even in development.
    let other_key = SigningKey::from_slice(&[9u8; 48]).unwrap();
    let point = other_key.verifying_key().to_encoded_point(false);
    let other_jwk = json!({"kty": "EC", "crv": "P-384",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
    let request = input::resource_input(
        ["default", "model", "smollm2-135m-instruct"],
        None,
        &ear_json,
        commitment,
        Some(&other_jwk),
    );
    let dev = set(PolicySetName::Development)
        .evaluate_resource(&request)
        .unwrap();
    assert!(!dev.allow);
    assert_eq!(dev.reasons[0].code, DenialCode::BindingUnverified);
}
