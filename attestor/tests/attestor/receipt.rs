//! Inference receipts: sign/verify, tampering with each part, algorithm and
//! key confusion, chains, commitments, the RFC 7638 thumbprint, and an
//! independent JOSE implementation (`jsonwebtoken`, RustCrypto backend).

// Test helpers outside #[test] panic on purpose when a fixture is wrong.
#![allow(clippy::unwrap_used)]

use attestor::digest::Sha256Digest;
use attestor::evidence::Tee;
use attestor::receipt::{
    self, AgentBuild, ClaimFacts, DecisionStatus, Decoding, EarStatus, Generation, PolicyDecision,
    ReceiptChain, ReceiptClaims, ReceiptDraft, ReceiptError, ReceiptKey, Runtime, Salt, SessionRef,
    Sha256Ref,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const REQUEST: &[u8] = br#"{"prompt":"What is 2+2?","max_tokens":16}"#;
const RESPONSE: &[u8] = br#"{"text":"4"}"#;

fn key() -> ReceiptKey {
    ReceiptKey::from_scalar_bytes(&[7; 48]).unwrap()
}

fn other_key() -> ReceiptKey {
    ReceiptKey::from_scalar_bytes(&[9; 48]).unwrap()
}

fn salt() -> Salt {
    Salt([0x5a; 32])
}

fn draft(simulated: bool, decision: DecisionStatus) -> ReceiptDraft {
    let model = Sha256Ref(Sha256Digest::of(b"model root"));
    let facts = ClaimFacts {
        model: &model,
        tee: Some(Tee::Snp),
        gpus: 1,
        simulated,
        decision,
    };
    ReceiptDraft {
        iss: "urn:cc-inference-attestor:agent:test".into(),
        iat: 1_763_700_001,
        jti: "receipt-1".into(),
        eat_nonce: Some("bm9uY2Utbm9uY2U".into()),
        session: SessionRef {
            evidence_digest: Sha256Ref(Sha256Digest::of(b"evidence")),
            ear_digest: Some(Sha256Ref(Sha256Digest::of(b"ear"))),
            ear_status: Some(EarStatus::Affirming),
            simulated,
        },
        model_commitment: model,
        input_commitment: receipt::commit_input(&salt(), REQUEST),
        output_digest: receipt::commit_output(&salt(), RESPONSE),
        generation: Generation {
            max_tokens: 16,
            decoding: Decoding::Greedy,
            input_tokens: Some(9),
            output_tokens: Some(1),
        },
        runtime: Runtime {
            agent: AgentBuild {
                name: "guest-agent".into(),
                version: "0.1.0".into(),
                build: None,
            },
            candle_version: "0.9.1".into(),
            compute_path: json!({"device": "cpu", "dtype": "f32"}),
        },
        verifier_policy_id: vec!["dev@sha256:00".into()],
        policy_decision: PolicyDecision {
            status: decision,
            reason: "all submods affirming".into(),
        },
        allowed_claim: receipt::allowed_claim(&facts),
        blocked_claims: receipt::blocked_claims(simulated),
    }
}

fn signed() -> (ReceiptKey, String, ReceiptClaims) {
    let mut chain = ReceiptChain::new(key());
    let s = chain.sign(draft(false, DecisionStatus::Allow)).unwrap();
    (chain.key().clone(), s.compact, s.claims)
}

/// Replaces one segment of a compact JWS, keeping the others.
fn with_segment(compact: &str, index: usize, new: &str) -> String {
    let mut parts: Vec<&str> = compact.split('.').collect();
    parts[index] = new;
    parts.join(".")
}

fn segment_json(compact: &str, index: usize) -> Value {
    let seg = compact.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

fn encode_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn sign_verify_round_trip() {
    let (key, compact, claims) = signed();
    let header = segment_json(&compact, 0);
    assert_eq!(
        header,
        json!({"alg": "ES384", "typ": "inference-receipt+jwt", "kid": key.thumbprint()})
    );
    let sig = URL_SAFE_NO_PAD
        .decode(compact.split('.').nth(2).unwrap())
        .unwrap();
    assert_eq!(sig.len(), 96, "ES384 signature is raw R ‖ S");

    let verified = receipt::verify(&compact, &key.public_jwk()).unwrap();
    assert_eq!(verified, claims);
    assert_eq!(verified.eat_profile, receipt::PROFILE);
    assert_eq!(verified.seq, 0);
    assert_eq!(verified.prev, None);
    verified
        .check_commitments(&salt(), REQUEST, RESPONSE)
        .unwrap();

    // The payload is the claims in declaration order, `prev` null for seq 0.
    let payload = segment_json(&compact, 1);
    assert_eq!(payload["prev"], Value::Null);
    assert_eq!(payload["policy_decision"]["status"], "allow");
    assert_eq!(payload["generation"]["decoding"], "greedy");
    assert!(
        payload["model_commitment"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn changed_claim_with_original_signature_fails() {
    let (key, compact, _) = signed();
    let mut payload = segment_json(&compact, 1);
    payload["generation"]["max_tokens"] = json!(17);
    let forged = with_segment(&compact, 1, &encode_json(&payload));
    assert_eq!(
        receipt::verify(&forged, &key.public_jwk()),
        Err(ReceiptError::SignatureInvalid)
    );
    // Re-encoding the same claims (pretty-printed) also breaks it:
    // the signature covers the received bytes, not a re-serialization.
    let pretty = serde_json::to_vec_pretty(&segment_json(&compact, 1)).unwrap();
    let reordered = with_segment(&compact, 1, &URL_SAFE_NO_PAD.encode(pretty));
    assert_ne!(reordered, compact);
    assert_eq!(
        receipt::verify(&reordered, &key.public_jwk()),
        Err(ReceiptError::SignatureInvalid)
    );
}

#[test]
fn changed_header_fails() {
    let (key, compact, _) = signed();
    let mut header = segment_json(&compact, 0);
    header["x-extra"] = json!(1);
    let forged = with_segment(&compact, 0, &encode_json(&header));
    assert_eq!(
        receipt::verify(&forged, &key.public_jwk()),
        Err(ReceiptError::SignatureInvalid)
    );
}

#[test]
fn wrong_key_fails() {
    let (_, compact, _) = signed();
    let other = other_key();
    // kid first: the receipt names a different key.
    assert!(matches!(
        receipt::verify(&compact, &other.public_jwk()),
        Err(ReceiptError::KidMismatch { .. })
    ));
    // Same kid as the wrong key, signature by the right one: the signature fails.
    let mut header = segment_json(&compact, 0);
    header["kid"] = json!(other.thumbprint());
    let relabelled = with_segment(&compact, 0, &encode_json(&header));
    assert_eq!(
        receipt::verify(&relabelled, &other.public_jwk()),
        Err(ReceiptError::SignatureInvalid)
    );
}

#[test]
fn other_algorithms_refused() {
    let (key, compact, _) = signed();
    for alg in [
        "none", "ES256", "HS384", "es384", "ES384 ", "RS384", "PS384", "ES512",
    ] {
        let mut header = segment_json(&compact, 0);
        header["alg"] = json!(alg);
        let forged = with_segment(&compact, 0, &encode_json(&header));
        assert_eq!(
            receipt::verify(&forged, &key.public_jwk()),
            Err(ReceiptError::AlgorithmRefused { found: alg.into() }),
            "alg {alg:?}"
        );
    }
    // `alg: none` with an empty signature, the classic downgrade.
    let mut header = segment_json(&compact, 0);
    header["alg"] = json!("none");
    let unsigned = format!(
        "{}.{}.",
        encode_json(&header),
        compact.split('.').nth(1).unwrap()
    );
    assert_eq!(
        receipt::verify(&unsigned, &key.public_jwk()),
        Err(ReceiptError::AlgorithmRefused {
            found: "none".into()
        })
    );
}

#[test]
fn header_typ_kid_and_crit_checked() {
    let (key, compact, _) = signed();
    let jwk = key.public_jwk();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut header = segment_json(&compact, 0);
        f(&mut header);
        receipt::verify(&with_segment(&compact, 0, &encode_json(&header)), &jwk)
    };
    assert_eq!(
        edit(&|h| h["kid"] = json!("not-the-thumbprint")),
        Err(ReceiptError::KidMismatch {
            expected: key.thumbprint().into(),
            found: Some("not-the-thumbprint".into())
        })
    );
    assert!(matches!(
        edit(&|h| {
            h.as_object_mut().unwrap().remove("kid");
        }),
        Err(ReceiptError::KidMismatch { found: None, .. })
    ));
    assert!(matches!(
        edit(&|h| h["typ"] = json!("JWT")),
        Err(ReceiptError::TypeMismatch { .. })
    ));
    assert!(matches!(
        edit(&|h| h["crit"] = json!(["b64"])),
        Err(ReceiptError::CriticalHeader { .. })
    ));
}

#[test]
fn malformed_tokens_refused() {
    let (key, compact, _) = signed();
    let jwk = key.public_jwk();
    assert!(matches!(
        receipt::verify("a.b", &jwk),
        Err(ReceiptError::NotCompactJws { parts: 2 })
    ));
    let short_sig = with_segment(&compact, 2, &URL_SAFE_NO_PAD.encode([1u8; 64]));
    assert_eq!(
        receipt::verify(&short_sig, &jwk),
        Err(ReceiptError::SignatureLength {
            expected: 96,
            found: 64
        })
    );
    let padded = format!("{compact}=");
    assert!(matches!(
        receipt::verify(&padded, &jwk),
        Err(ReceiptError::Base64 { .. })
    ));
    // Whitespace anywhere is not base64url.
    let spaced = compact.replacen('.', " .", 1);
    assert!(matches!(
        receipt::verify(&spaced, &jwk),
        Err(ReceiptError::Base64 { .. })
    ));
}

#[test]
fn signed_but_inconsistent_claims_refused() {
    // A correctly signed receipt with an unknown claim, a foreign profile or an
    // unlabelled simulated session still fails: claims are strict.
    let k = key();
    let base = draft(false, DecisionStatus::Allow).into_claims(0, None);
    let sign = |v: &Value| k.sign_compact(receipt::TYP, &serde_json::to_vec(v).unwrap());

    let mut unknown = serde_json::to_value(&base).unwrap();
    unknown["x-new-claim"] = json!(true);
    assert!(matches!(
        receipt::verify(&sign(&unknown), &k.public_jwk()),
        Err(ReceiptError::ClaimsJson { .. })
    ));

    let mut profile = serde_json::to_value(&base).unwrap();
    profile["eat_profile"] = json!("tag:ietf.org,2026:rats/ear#04");
    assert!(matches!(
        receipt::verify(&sign(&profile), &k.public_jwk()),
        Err(ReceiptError::ProfileMismatch { .. })
    ));

    let mut unlabelled = serde_json::to_value(&base).unwrap();
    unlabelled["session"]["simulated"] = json!(true);
    assert!(matches!(
        receipt::verify(&sign(&unlabelled), &k.public_jwk()),
        Err(ReceiptError::SimulatedNotLabelled { .. })
    ));

    let mut prev_on_first = serde_json::to_value(&base).unwrap();
    prev_on_first["prev"] = json!(format!("sha256:{}", "0".repeat(64)));
    assert!(matches!(
        receipt::verify(&sign(&prev_on_first), &k.public_jwk()),
        Err(ReceiptError::SeqPrevInconsistent { seq: 0, .. })
    ));

    let mut upper = serde_json::to_value(&base).unwrap();
    upper["input_commitment"] = json!(format!("sha256:{}", "AB".repeat(32)));
    assert!(matches!(
        receipt::verify(&sign(&upper), &k.public_jwk()),
        Err(ReceiptError::ClaimsJson { .. })
    ));
}

#[test]
fn simulated_session_must_say_simulated() {
    let mut chain = ReceiptChain::new(key());
    let mut d = draft(true, DecisionStatus::Allow);
    assert!(d.allowed_claim.contains("SIMULATED"), "{}", d.allowed_claim);
    let ok = chain.sign(d.clone()).unwrap();
    assert!(ok.claims.session.simulated);

    d.allowed_claim = "Model ran in an attested environment.".into();
    let before = (chain.next_seq(), chain.prev());
    assert!(matches!(
        chain.sign(d),
        Err(ReceiptError::SimulatedNotLabelled { .. })
    ));
    assert_eq!(
        (chain.next_seq(), chain.prev()),
        before,
        "failed sign advanced the chain"
    );
}

#[test]
fn refused_request_gets_a_receipt() {
    let mut chain = ReceiptChain::new(key());
    let mut d = draft(false, DecisionStatus::Deny);
    d.policy_decision.reason = "model commitment not in the allowed list".into();
    d.generation.output_tokens = None;
    let s = chain.sign(d).unwrap();
    let claims = receipt::verify(&s.compact, &chain.key().public_jwk()).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Deny);
    assert!(claims.allowed_claim.contains("refused"));
    assert_eq!(
        segment_json(&s.compact, 1)["policy_decision"]["status"],
        "deny"
    );
}

#[test]
fn chain_links_and_refuses_gaps_and_broken_prev() {
    let mut chain = ReceiptChain::new(key());
    let receipts: Vec<_> = (0..4)
        .map(|i| {
            let mut d = draft(false, DecisionStatus::Allow);
            d.jti = format!("receipt-{i}");
            chain.sign(d).unwrap()
        })
        .collect();
    assert_eq!(chain.next_seq(), 4);
    assert_eq!(receipts[1].claims.prev, Some(receipts[0].digest()));
    let compact: Vec<&str> = receipts.iter().map(|r| r.compact.as_str()).collect();
    let jwk = chain.key().public_jwk();

    let claims = receipt::verify_chain(&compact, &jwk).unwrap();
    assert_eq!(
        claims.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    // A run that starts mid-session still links.
    receipt::verify_chain(&compact[1..], &jwk).unwrap();

    // Gap: receipt 2 missing.
    assert_eq!(
        receipt::verify_chain(&[compact[0], compact[1], compact[3]], &jwk),
        Err(ReceiptError::ChainGap {
            index: 2,
            expected_seq: 2,
            found_seq: 3
        })
    );
    // Reordered.
    assert!(matches!(
        receipt::verify_chain(&[compact[1], compact[0]], &jwk),
        Err(ReceiptError::ChainGap { index: 1, .. })
    ));

    // Broken prev: a receipt at the right seq that does not link to its predecessor.
    let mut other = ReceiptChain::new(key());
    let forked: Vec<_> = (0..2)
        .map(|i| {
            let mut d = draft(false, DecisionStatus::Allow);
            d.jti = format!("fork-{i}");
            other.sign(d).unwrap()
        })
        .collect();
    assert!(matches!(
        receipt::verify_chain(&[compact[0], &forked[1].compact], &jwk),
        Err(ReceiptError::ChainPrevMismatch { index: 1, .. })
    ));

    // A tampered receipt inside the chain names its index.
    let bad = with_segment(compact[2], 2, compact[1].split('.').nth(2).unwrap());
    assert!(matches!(
        receipt::verify_chain(&[compact[0], compact[1], &bad], &jwk),
        Err(ReceiptError::InChain { index: 2, .. })
    ));
}

#[test]
fn commitments_change_with_salt_and_bytes() {
    let s = salt();
    let base = receipt::commit_input(&s, REQUEST);
    assert_eq!(base, receipt::commit_input(&s, REQUEST));
    assert_ne!(base, receipt::commit_input(&Salt([0x5b; 32]), REQUEST));
    assert_ne!(base, receipt::commit_input(&s, &REQUEST[1..]));
    assert_ne!(base.0, receipt::commit_output(&s, REQUEST).0);
    assert_ne!(Salt::random(), Salt::random());

    let (_, _, claims) = signed();
    assert!(matches!(
        claims.check_commitments(&Salt([0; 32]), REQUEST, RESPONSE),
        Err(ReceiptError::InputCommitmentMismatch { .. })
    ));
    assert!(matches!(
        claims.check_commitments(&s, REQUEST, b"{\"text\":\"5\"}"),
        Err(ReceiptError::OutputDigestMismatch { .. })
    ));
    // Request and response swapped: refused.
    assert!(claims.check_commitments(&s, RESPONSE, REQUEST).is_err());
}

/// RFC 7638 thumbprint of a fixed P-384 key (the scalar 0x07 repeated 48 times).
///
/// Computed independently of this crate with Python 3.11: x and y by a
/// pure-Python P-384 scalar multiplication, then
/// `base64.urlsafe_b64encode(hashlib.sha256(json.dumps({crv,kty,x,y},
/// sort_keys=True, separators=(",", ":")).encode()).digest()).rstrip(b"=")`.
#[test]
fn rfc7638_thumbprint_vector() {
    let jwk = json!({
        "kty": "EC",
        "crv": "P-384",
        "x": "sBv8Si1_4gleZifMXK-avRU9W1Uf5_baYV2p0b_RAejRkehZAsCjTqo6FuZmiAtz",
        "y": "BZ9ljE1qblfAlZ3oAQmw-mtWvWPR1XAak9FTIvImehVSZkHGDNB8kSpt9Yqpk9ib"
    });
    const THUMBPRINT: &str = "Xm31K0enizHfVQdOIYQkQJw832W5N03RFUA8fOk-L2s";
    assert_eq!(receipt::jwk_thumbprint(&jwk).unwrap(), THUMBPRINT);
    let k = key();
    assert_eq!(k.thumbprint(), THUMBPRINT);
    assert_eq!(k.public_jwk()["x"], jwk["x"]);
    assert_eq!(k.public_jwk()["y"], jwk["y"]);
    assert_eq!(k.public_jwk()["alg"], "ES384");
    // Optional members do not change the thumbprint.
    let mut with_extra = jwk.clone();
    with_extra["alg"] = json!("ES384");
    with_extra["use"] = json!("sig");
    assert_eq!(receipt::jwk_thumbprint(&with_extra).unwrap(), THUMBPRINT);
}

/// An independent JOSE implementation verifies our receipts.
#[test]
fn stock_jose_library_verifies_receipt() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    let (key, compact, claims) = signed();
    let jwk = key.public_jwk();
    let mut validation = Validation::new(Algorithm::ES384);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();

    let from_xy =
        DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
            .unwrap();
    let data = jsonwebtoken::decode::<Value>(&compact, &from_xy, &validation).unwrap();
    assert_eq!(data.header.alg, Algorithm::ES384);
    assert_eq!(data.header.typ.as_deref(), Some(receipt::TYP));
    assert_eq!(data.header.kid.as_deref(), Some(key.thumbprint()));
    assert_eq!(data.claims, serde_json::to_value(&claims).unwrap());

    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    let from_jwk = DecodingKey::from_jwk(&parsed).unwrap();
    jsonwebtoken::decode::<Value>(&compact, &from_jwk, &validation).unwrap();

    // And it rejects what we reject: a changed claim and a wrong key.
    let mut payload = segment_json(&compact, 1);
    payload["seq"] = json!(5);
    let forged = with_segment(&compact, 1, &encode_json(&payload));
    assert!(jsonwebtoken::decode::<Value>(&forged, &from_xy, &validation).is_err());
    let wrong = other_key().public_jwk();
    let wrong_key =
        DecodingKey::from_ec_components(wrong["x"].as_str().unwrap(), wrong["y"].as_str().unwrap())
            .unwrap();
    assert!(jsonwebtoken::decode::<Value>(&compact, &wrong_key, &validation).is_err());
}

/// Our verifier accepts a token signed by the independent implementation when
/// it carries our header and claims (interop in the other direction).
#[test]
fn token_signed_by_stock_library_verifies() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use p384::pkcs8::EncodePrivateKey as _;

    let scalar = [7u8; 48];
    let secret = p384::SecretKey::from_bytes((&scalar).into()).unwrap();
    let der = secret.to_pkcs8_der().unwrap();
    let encoding = EncodingKey::from_ec_der(der.as_bytes());
    let k = key();
    let mut header = Header::new(Algorithm::ES384);
    header.typ = Some(receipt::TYP.into());
    header.kid = Some(k.thumbprint().into());
    let claims = draft(false, DecisionStatus::Allow).into_claims(0, None);
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert_eq!(receipt::verify(&token, &k.public_jwk()).unwrap(), claims);
}

#[test]
fn fuzz_body_survives_mutations() {
    let (_, compact, claims) = signed();
    receipt::fuzz_parse(compact.as_bytes());
    receipt::fuzz_parse(&claims.to_json().unwrap());
    let bytes = compact.as_bytes();
    for cut in (0..bytes.len()).step_by(7) {
        receipt::fuzz_parse(&bytes[..cut]);
    }
    for i in (0..bytes.len()).step_by(13) {
        let mut flipped = bytes.to_vec();
        flipped[i] ^= 0x01;
        receipt::fuzz_parse(&flipped);
    }
    let json = claims.to_json().unwrap();
    for cut in (0..json.len()).step_by(5) {
        receipt::fuzz_parse(&json[..cut]);
    }
    for junk in [&b""[..], b"..", b"...", b"\xff\xfe", b"{}", b"[]", b"null"] {
        receipt::fuzz_parse(junk);
    }
}
