//! The verifier's attestation result (EAR) as the agent checks it before it
//! lets the result vouch for its receipts.
//!
//! An EAR is a compact JWS, ES384, signed by the verifier's key, whose public
//! JWK the operator configures (`[verifier] ear_key`; `verifier serve` writes
//! it to `DATA/ear_key.jwk`). The agent checks, over the received bytes: the
//! header (`alg` ES384, `typ` JWT, `kid` = RFC 7638 thumbprint of the key, no
//! `crit`), the signature, the EAR profile, `iat` (at most
//! [`MAX_CLOCK_SKEW_SECS`] ahead), `exp`, that `eat_nonce` is the broker's
//! nonce for this attestation, and that the result names this session's
//! receipt key and model commitment: an EAR about another session never
//! vouches for ours.
//!
//! This module does not depend on the verifier crate; the JWS parsing is the
//! receipt library's ([`attestor::receipt::CompactJws`]), which is the same
//! RFC 7515 compact ES384. It never decides whether to serve: [`VerifiedEar`]
//! only reports the status and expiry; the agent decides.

use std::collections::BTreeMap;
use std::path::Path;

use attestor::digest::Sha256Digest;
use attestor::receipt::{CompactJws, EarStatus, ReceiptError, ReceiptPublicKey, Sha256Ref};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::Value;

/// The EAR profile the verifier emits (`ear` 0.6.0, draft -04 names).
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#04";
/// The JWS `typ` of an EAR.
pub const EAR_TYP: &str = "JWT";
/// Tolerated clock skew for an `iat` in the future, seconds (as the verifier).
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// The verifier's EAR signing key (public, P-384).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarKey(ReceiptPublicKey);

impl EarKey {
    /// Reads the public JWK (`kty` EC, `crv` P-384, `x`, `y`; `alg`, if
    /// present, ES384; a private part is refused).
    pub fn from_jwk(jwk: &Value) -> Result<Self, EarError> {
        ReceiptPublicKey::from_jwk(jwk)
            .map(Self)
            .map_err(EarError::Key)
    }

    /// Reads the JWK file `verifier serve` writes (`DATA/ear_key.jwk`).
    pub fn read(path: &Path) -> Result<Self, EarError> {
        let file = |reason: String| EarError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| file(e.to_string()))?;
        let jwk: Value = serde_json::from_slice(&bytes).map_err(|e| file(e.to_string()))?;
        Self::from_jwk(&jwk)
    }

    /// The RFC 7638 thumbprint (the EAR header's `kid`).
    pub fn thumbprint(&self) -> &str {
        self.0.thumbprint()
    }
}

/// What the EAR must be about: this attestation's nonce (as the broker sent
/// it, standard base64), this session's receipt key, this model.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The broker's nonce for this attestation (standard base64).
    pub nonce: &'a str,
    /// The session's receipt public JWK.
    pub receipt_key: &'a Value,
    /// The model commitment bound into the evidence (`sha256:<hex>`).
    pub model: &'a str,
}

/// An EAR whose signature, profile, times and subject were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEar {
    /// The compact token, exactly as received.
    pub token: String,
    /// SHA-256 of the token's bytes (what receipts name as `ear_digest`).
    pub digest: Sha256Ref,
    /// The overall `ear_status`.
    pub status: EarStatus,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// The policy ids of every submodule, in submodule order, without repeats.
    pub policy_ids: Vec<String>,
    /// The trust roots that verified the evidence (`vendor`, `simulated`…).
    pub roots: String,
}

impl VerifiedEar {
    /// Whether this result vouches for serving at `now`: affirming and unexpired.
    pub fn affirms_at(&self, now: u64) -> bool {
        self.status == EarStatus::Affirming && now < self.exp
    }
}

/// Why an EAR was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EarError {
    /// The key file could not be read.
    #[error("EAR key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key is not a P-384 public JWK.
    #[error("EAR key: {0}")]
    Key(#[source] ReceiptError),
    /// The JWS is malformed, or its header or signature does not check out.
    #[error("EAR token: {0}")]
    Jws(#[source] ReceiptError),
    /// The claims are not an EAR of the expected shape.
    #[error("EAR claims: {reason}")]
    Claims {
        /// The JSON error.
        reason: String,
    },
    /// Another EAR profile.
    #[error("EAR profile {found:?} is not {EAR_PROFILE:?}")]
    Profile {
        /// The profile found.
        found: String,
    },
    /// `iat` is in the future beyond the tolerated skew.
    #[error("EAR issued at {iat}, after now ({now}) plus {MAX_CLOCK_SKEW_SECS} s")]
    NotYetValid {
        /// `iat`.
        iat: i64,
        /// Now.
        now: u64,
    },
    /// `exp` has passed.
    #[error("EAR expired at {exp}; now is {now}")]
    Expired {
        /// `exp`.
        exp: i64,
        /// Now.
        now: u64,
    },
    /// The result answers another nonce.
    #[error("EAR eat_nonce {found:?} is not this attestation's nonce {expected:?}")]
    Nonce {
        /// base64url of the broker's nonce bytes.
        expected: String,
        /// The token's `eat_nonce`.
        found: String,
    },
    /// The result names another receipt key (or none).
    #[error("EAR receipt key {found:?} is not this session's {expected:?}")]
    ReceiptKey {
        /// This session's receipt key thumbprint.
        expected: String,
        /// The thumbprint the EAR names, if any.
        found: Option<String>,
    },
    /// The result names another model (or none).
    #[error("EAR model {found:?} is not the loaded model {expected:?}")]
    Model {
        /// The commitment the agent bound.
        expected: String,
        /// The commitment the EAR names, if any.
        found: Option<String>,
    },
}

/// The claims the agent reads; the rest of the EAR is left to reviewers.
#[derive(Deserialize)]
struct Claims {
    eat_profile: String,
    iat: i64,
    exp: i64,
    eat_nonce: String,
    ear_status: EarStatus,
    #[serde(default)]
    submods: BTreeMap<String, Submod>,
    attestor_roots: String,
    #[serde(default)]
    attestor_model: Option<String>,
    #[serde(default)]
    attestor_receipt_key: Option<Value>,
}

#[derive(Deserialize)]
struct Submod {
    #[serde(default)]
    ear_appraisal_policy_ids: Vec<String>,
}

/// Verifies `token` as of `now` (Unix seconds) with `key`, for `expected`.
pub fn verify(
    token: &str,
    key: &EarKey,
    expected: &Expected<'_>,
    now: u64,
) -> Result<VerifiedEar, EarError> {
    let jws = CompactJws::parse(token).map_err(EarError::Jws)?;
    jws.check_header(EAR_TYP, &key.0).map_err(EarError::Jws)?;
    jws.check_signature(&key.0).map_err(EarError::Jws)?;
    let claims: Claims = serde_json::from_slice(&jws.payload).map_err(|e| EarError::Claims {
        reason: e.to_string(),
    })?;
    if claims.eat_profile != EAR_PROFILE {
        return Err(EarError::Profile {
            found: claims.eat_profile,
        });
    }
    let (iat, exp) = (claims.iat, claims.exp);
    let iat_u = u64::try_from(iat).map_err(|_| EarError::Claims {
        reason: format!("iat {iat} is negative"),
    })?;
    if iat_u > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(EarError::NotYetValid { iat, now });
    }
    let exp_u = u64::try_from(exp).map_err(|_| EarError::Expired { exp, now })?;
    if exp_u <= now {
        return Err(EarError::Expired { exp, now });
    }
    // The verifier writes the decoded nonce bytes as base64url; a nonce that
    // is not base64 is compared as its text bytes, as the verifier does.
    let nonce_bytes = STANDARD
        .decode(expected.nonce)
        .or_else(|_| URL_SAFE_NO_PAD.decode(expected.nonce))
        .unwrap_or_else(|_| expected.nonce.as_bytes().to_vec());
    let want_nonce = URL_SAFE_NO_PAD.encode(nonce_bytes);
    if claims.eat_nonce != want_nonce {
        return Err(EarError::Nonce {
            expected: want_nonce,
            found: claims.eat_nonce,
        });
    }
    let ours = attestor::receipt::jwk_thumbprint(expected.receipt_key).map_err(EarError::Key)?;
    let theirs = claims
        .attestor_receipt_key
        .as_ref()
        .and_then(|k| attestor::receipt::jwk_thumbprint(k).ok());
    if theirs.as_deref() != Some(ours.as_str()) {
        return Err(EarError::ReceiptKey {
            expected: ours,
            found: theirs,
        });
    }
    if claims.attestor_model.as_deref() != Some(expected.model) {
        return Err(EarError::Model {
            expected: expected.model.to_owned(),
            found: claims.attestor_model,
        });
    }
    let mut policy_ids: Vec<String> = Vec::new();
    for id in claims
        .submods
        .into_values()
        .flat_map(|s| s.ear_appraisal_policy_ids)
    {
        if !policy_ids.contains(&id) {
            policy_ids.push(id);
        }
    }
    Ok(VerifiedEar {
        token: token.to_owned(),
        digest: Sha256Ref(Sha256Digest::of(token.as_bytes())),
        status: claims.ear_status,
        iat: iat_u,
        exp: exp_u,
        policy_ids,
        roots: claims.attestor_roots,
    })
}
