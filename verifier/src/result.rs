//! Attestation results: EAR (draft-ietf-rats-ear, profile `#04`) as a JWT signed ES384.
//!
//! One submodule per attester (`cpu`, `gpu0`…, `model`), each with its AR4SI
//! trustworthiness vector, the status derived from it, the policy ids applied
//! (policy text digests included) and, when not affirming, every reason
//! (code, rule, message, expected, found) under `ear_verifier_claims.reasons`.
//! At the top: `iat`, `exp`, `eat_nonce`, `ear_verifier_id`, the overall
//! `ear_status` (the worst submodule's), and three `attestor_*` claims: the
//! roots label (`vendor`/`simulated`/…), the model commitment and the receipt
//! key (JWK). The receipt key also appears as Veraison key attestation
//! (`ear_veraison_key_attestation.akpub`, DER SPKI) in the `cpu` submodule.
//!
//! Claim names and shapes are those of the `ear` crate 0.6.0 (draft-04
//! profile, pinned in [`EAR_PROFILE`]), and a test parses our payload with
//! that crate (pinned `=0.6.0`, a dev-dependency without its `jwt`/`cose`
//! features; its `cmw` dependency is vendored without the build script whose
//! reqwest build-dependency would build OpenSSL). We do not sign or verify
//! through it: its `jwt` feature signs with `jsonwebtoken`'s aws-lc backend
//! and checks `exp` against the system clock, while this verifier takes time
//! as an argument. We sign and verify with the pure-Rust `p384` crate; the JWS
//! is plain RFC 7515 compact ES384, and a test verifies it with
//! `jsonwebtoken` (a stock JOSE library).
//!
//! This module never evaluates policy and never reads the clock.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p384::ecdsa::signature::{Signer as _, Verifier as _};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::pkcs8::EncodePublicKey as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::policy::{AttestationDecision, Reason, Status, TrustVector};
use crate::time::UnixTime;

/// The EAR profile we emit and accept: `ear` 0.6.0's `EAR_PROFILE` (draft -04 names).
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#04";
/// The only JWS algorithm we emit and accept.
pub const JWS_ALG: &str = "ES384";
/// Tolerated clock skew for `iat` in the future, seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// `ear_verifier_id`: who appraised, and which build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierId {
    /// A URI naming the developer.
    pub developer: String,
    /// The build (version and commit).
    pub build: String,
}

/// The EAR claims-set, as signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarClaims {
    /// Always [`EAR_PROFILE`].
    pub eat_profile: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds); always present in our results.
    pub exp: i64,
    /// The relying party's nonce, base64url without padding (8..=64 bytes).
    pub eat_nonce: String,
    /// Who issued it.
    pub ear_verifier_id: VerifierId,
    /// The worst submodule status.
    pub ear_status: Status,
    /// One appraisal per attester.
    pub submods: BTreeMap<String, EarAppraisal>,
    /// `vendor`, `directory`, `simulated` or `none`: the roots that verified the evidence.
    pub attestor_roots: String,
    /// The model commitment bound into the evidence, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestor_model: Option<String>,
    /// The receipt key (JWK) bound into the evidence, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestor_receipt_key: Option<Value>,
}

/// One attester's appraisal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarAppraisal {
    /// Derived from the vector.
    pub ear_status: Status,
    /// The AR4SI vector.
    pub ear_trustworthiness_vector: TrustVector,
    /// The policies applied, in order (each with the SHA-256 of its text).
    pub ear_appraisal_policy_ids: Vec<String>,
    /// `{"reasons": [...]}` when the submodule is not affirming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ear_verifier_claims: Option<VerifierClaims>,
    /// The receipt key as DER SPKI (`cpu` submodule only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ear_veraison_key_attestation: Option<KeyAttestation>,
}

/// Verifier-authority claims of a submodule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierClaims {
    /// Every reason the policy gave.
    pub reasons: Vec<Reason>,
}

/// Veraison key attestation: `akpub` = base64url(DER SubjectPublicKeyInfo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttestation {
    /// base64url (no padding) DER SPKI.
    pub akpub: String,
}

/// Why a result could not be issued or verified.
#[derive(Debug, thiserror::Error)]
pub enum EarError {
    /// `eat_nonce` must be 8 to 64 bytes.
    #[error("nonce is {0} bytes; an EAR nonce is 8 to 64 bytes")]
    NonceLength(usize),
    /// A decision without submodules cannot be a result.
    #[error("the decision has no submodules")]
    NoSubmods,
    /// The receipt key is not a P-384 public JWK.
    #[error("receipt key: {0}")]
    ReceiptKey(String),
    /// The time-to-live is zero or does not fit.
    #[error("bad time to live {0} s")]
    Ttl(u64),
    /// Not three base64url parts, or not JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A header other than `alg: ES384`.
    #[error("unsupported JWS header: {0}")]
    Algorithm(String),
    /// The signature does not verify under the given key.
    #[error("signature does not verify")]
    Signature,
    /// Not our profile.
    #[error("profile {found:?}, expected {EAR_PROFILE:?}")]
    Profile { found: String },
    /// Expired at `now`.
    #[error("expired at {exp}, checked at {now}")]
    Expired { exp: UnixTime, now: UnixTime },
    /// Issued after `now` (beyond the tolerated skew).
    #[error("issued at {iat}, after {now}")]
    NotYetValid { iat: UnixTime, now: UnixTime },
    /// Internal: JSON encoding failed.
    #[error("encoding: {0}")]
    Encoding(String),
}

/// Builds the EAR claims-set for a decision (no signature).
pub fn ear_claims(
    decision: &AttestationDecision,
    nonce: &[u8],
    receipt_key_jwk: Option<&Value>,
    verifier_id: &VerifierId,
    now: UnixTime,
    ttl_secs: u64,
) -> Result<EarClaims, EarError> {
    if !(8..=64).contains(&nonce.len()) {
        return Err(EarError::NonceLength(nonce.len()));
    }
    if decision.submods.is_empty() {
        return Err(EarError::NoSubmods);
    }
    let ttl = i64::try_from(ttl_secs)
        .ok()
        .filter(|t| *t > 0)
        .ok_or(EarError::Ttl(ttl_secs))?;
    let exp = now.0.checked_add(ttl).ok_or(EarError::Ttl(ttl_secs))?;
    let akpub = receipt_key_jwk.map(receipt_key_spki).transpose()?;

    let submods = decision
        .submods
        .iter()
        .map(|(name, s)| {
            let appraisal = EarAppraisal {
                ear_status: s.status,
                ear_trustworthiness_vector: s.vector.clone(),
                ear_appraisal_policy_ids: s.policy_ids.clone(),
                ear_verifier_claims: (!s.reasons.is_empty()).then(|| VerifierClaims {
                    reasons: s.reasons.clone(),
                }),
                ear_veraison_key_attestation: (name == "cpu")
                    .then(|| akpub.clone())
                    .flatten()
                    .map(|akpub| KeyAttestation { akpub }),
            };
            (name.clone(), appraisal)
        })
        .collect();

    Ok(EarClaims {
        eat_profile: EAR_PROFILE.to_owned(),
        iat: now.0,
        exp,
        eat_nonce: URL_SAFE_NO_PAD.encode(nonce),
        ear_verifier_id: verifier_id.clone(),
        ear_status: decision.status(),
        submods,
        attestor_roots: decision.roots.clone(),
        attestor_model: decision.model_commitment.clone(),
        attestor_receipt_key: receipt_key_jwk.cloned(),
    })
}

/// Issues the EAR for a decision: compact JWS, ES384, header
/// `{"alg":"ES384","typ":"JWT","kid":<RFC 7638 thumbprint of the verifier key>}`.
/// `now` is the issue time; the result expires `ttl_secs` later.
pub fn issue_ear(
    decision: &AttestationDecision,
    nonce: &[u8],
    receipt_key_jwk: Option<&Value>,
    signing_key: &SigningKey,
    verifier_id: &VerifierId,
    now: UnixTime,
    ttl_secs: u64,
) -> Result<String, EarError> {
    let claims = ear_claims(decision, nonce, receipt_key_jwk, verifier_id, now, ttl_secs)?;
    sign_claims(&claims, signing_key)
}

/// Signs a claims-set as a compact ES384 JWS.
pub fn sign_claims(claims: &EarClaims, signing_key: &SigningKey) -> Result<String, EarError> {
    let header = json!({
        "alg": JWS_ALG,
        "typ": "JWT",
        "kid": jwk_thumbprint(signing_key.verifying_key()),
    });
    let header = serde_json::to_vec(&header).map_err(|e| EarError::Encoding(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| EarError::Encoding(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature: Signature = signing_key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// Verifies an EAR as of `now`: ES384 signature over the received bytes with
/// `key`, our profile, `iat` not after `now` (60 s skew), `exp` after `now`.
pub fn verify_ear(token: &str, key: &VerifyingKey, now: UnixTime) -> Result<EarClaims, EarError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EarError::Malformed(
            "not three dot-separated parts".to_owned(),
        ));
    };
    let decode = |what: &str, part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| EarError::Malformed(format!("{what}: {e}")))
    };
    let header: Value = serde_json::from_slice(&decode("header", h)?)
        .map_err(|e| EarError::Malformed(format!("header: {e}")))?;
    if header.get("alg").and_then(Value::as_str) != Some(JWS_ALG) {
        return Err(EarError::Algorithm(header.to_string()));
    }
    // Refuse anything that would change how the payload is read (RFC 7515 §4.1.11).
    if header.get("crit").is_some() || header.get("b64").is_some() {
        return Err(EarError::Algorithm(header.to_string()));
    }
    let signature =
        Signature::from_slice(&decode("signature", s)?).map_err(|_| EarError::Signature)?;
    let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or_default();
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|_| EarError::Signature)?;

    let claims: EarClaims = serde_json::from_slice(&decode("payload", p)?)
        .map_err(|e| EarError::Malformed(format!("payload: {e}")))?;
    if claims.eat_profile != EAR_PROFILE {
        return Err(EarError::Profile {
            found: claims.eat_profile,
        });
    }
    if claims.iat > now.0.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(EarError::NotYetValid {
            iat: UnixTime(claims.iat),
            now,
        });
    }
    if claims.exp <= now.0 {
        return Err(EarError::Expired {
            exp: UnixTime(claims.exp),
            now,
        });
    }
    Ok(claims)
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-384 public key.
pub fn jwk_thumbprint(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let coord =
        |c: Option<&p384::FieldBytes>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(
        r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
        coord(point.x()),
        coord(point.y())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public JWK of a P-384 verifying key (for relying parties).
pub fn public_jwk(key: &VerifyingKey) -> Value {
    let point = key.to_encoded_point(false);
    let coord =
        |c: Option<&p384::FieldBytes>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
    json!({
        "kty": "EC",
        "crv": "P-384",
        "alg": JWS_ALG,
        "x": coord(point.x()),
        "y": coord(point.y()),
        "kid": jwk_thumbprint(key),
    })
}

fn receipt_key_spki(jwk: &Value) -> Result<String, EarError> {
    if jwk.get("d").is_some() {
        return Err(EarError::ReceiptKey("a private key was given".to_owned()));
    }
    // The receipt library's own parser: it accepts the `alg` member its keys carry.
    let key = attestor::receipt::ReceiptPublicKey::from_jwk(jwk)
        .map(|k| p384::PublicKey::from(k.verifying_key()))
        .map_err(|_| EarError::ReceiptKey("not an EC P-384 public JWK".to_owned()))?;
    let der = key
        .to_public_key_der()
        .map_err(|e| EarError::ReceiptKey(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(der.as_bytes()))
}
