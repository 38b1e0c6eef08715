//! Admin bearer tokens: compact JWS, `alg` EdDSA (Ed25519, RFC 8037), over
//! claims with a required, short `exp` and a required `iat`.
//!
//! The server checks a token with the one configured admin public key; the
//! CLI mints one with the admin private key for each call. Both keys are PEM
//! (PKCS#8 private, SPKI public), so `openssl genpkey -algorithm ed25519`
//! keys work too. Never accepts another `alg`, a token without `exp`, one
//! whose lifetime exceeds [`MAX_LIFETIME_S`], or one issued in the future
//! beyond [`CLOCK_SKEW_S`]: a leaked token is worth minutes, not forever;
//! and the server accepts each token once ([`crate::admin::Admin`]), so
//! minted tokens carry a random `jti`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::time::UnixTime;

/// The longest `exp - iat` accepted (seconds).
pub const MAX_LIFETIME_S: i64 = 300;
/// How far a token's `iat` may be ahead of the server's clock (seconds).
pub const CLOCK_SKEW_S: i64 = 60;
/// The lifetime of tokens the CLI mints (seconds).
pub const CLI_LIFETIME_S: i64 = 120;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// The admin API has no key configured: every call is refused.
    #[error("the admin API is disabled (no admin public key configured)")]
    Disabled,
    /// Not three base64url parts of JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A header `alg` other than EdDSA.
    #[error("token alg {0:?} is not EdDSA")]
    Algorithm(String),
    /// The signature does not verify with the admin key.
    #[error("token signature does not verify with the admin public key")]
    Signature,
    /// `exp` is not after now.
    #[error("token expired at {exp}, now {now}")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The server's time.
        now: i64,
    },
    /// `iat` is ahead of the server's clock by more than the skew.
    #[error("token issued at {iat}, in the future (now {now}, skew {CLOCK_SKEW_S}s)")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The server's time.
        now: i64,
    },
    /// This exact token was already accepted once.
    #[error("token already used (each admin token is accepted once)")]
    Replayed,
    /// `exp - iat` exceeds [`MAX_LIFETIME_S`], or `exp` is before `iat`.
    #[error("token lifetime {lifetime}s is outside 1..={MAX_LIFETIME_S}s")]
    Lifetime {
        /// `exp - iat`.
        lifetime: i64,
    },
}

/// The claims of an admin token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminClaims {
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Who is calling (free text, recorded in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// A random token id, so two tokens minted in the same second differ
    /// (the server accepts each token once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Mints a token valid from `now` for [`CLI_LIFETIME_S`].
pub fn mint(key: &SigningKey, now: UnixTime, sub: Option<&str>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let claims = AdminClaims {
        iat: now.0,
        exp: now.0.saturating_add(CLI_LIFETIME_S),
        sub: sub.map(str::to_owned),
        jti: Some(random_id()),
    };
    // Serializing two integers and a string cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = key.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

fn random_id() -> String {
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    hex::encode(id)
}

/// Checks a token with `key` as of `now` (see the module docs for the rules).
pub fn verify(token: &str, key: &VerifyingKey, now: UnixTime) -> Result<AdminClaims, TokenError> {
    let malformed = |what: &str| TokenError::Malformed(what.to_owned());
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    let decode = |part: &str, name: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| TokenError::Malformed(format!("{name}: {e}")))
    };
    let header: Header = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    if header.alg != "EdDSA" {
        return Err(TokenError::Algorithm(header.alg));
    }
    let signature_bytes: [u8; 64] = decode(signature, "signature")?
        .try_into()
        .map_err(|_| malformed("signature is not 64 bytes"))?;
    let (signing_input, _) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("signing input"))?;
    key.verify_strict(
        signing_input.as_bytes(),
        &Signature::from_bytes(&signature_bytes),
    )
    .map_err(|_| TokenError::Signature)?;
    // Claims are read only once the signature holds.
    let claims: AdminClaims = serde_json::from_slice(&decode(payload, "claims")?)
        .map_err(|e| TokenError::Malformed(format!("claims (exp and iat are required): {e}")))?;
    if claims.exp <= now.0 {
        return Err(TokenError::Expired {
            exp: claims.exp,
            now: now.0,
        });
    }
    if claims.iat > now.0.saturating_add(CLOCK_SKEW_S) {
        return Err(TokenError::IssuedInFuture {
            iat: claims.iat,
            now: now.0,
        });
    }
    let lifetime = claims.exp.saturating_sub(claims.iat);
    if !(1..=MAX_LIFETIME_S).contains(&lifetime) {
        return Err(TokenError::Lifetime { lifetime });
    }
    Ok(claims)
}

/// Reads an Ed25519 private key (PKCS#8 PEM).
pub fn read_signing_key(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| format!("not an Ed25519 PKCS#8 PEM key: {e}"))
}

/// Reads an Ed25519 public key (SPKI PEM), or the public half of a PKCS#8
/// private key PEM (so `--dev`'s key file works as both).
pub fn read_verifying_key(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem)
        .or_else(|_| read_signing_key(pem).map(|k| k.verifying_key()))
        .map_err(|e| format!("not an Ed25519 SPKI or PKCS#8 PEM key: {e}"))
}

/// A fresh Ed25519 key as PKCS#8 PEM.
pub fn generate_pem() -> Result<(SigningKey, String), String> {
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    Ok((key, pem.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn minted_tokens_verify_and_everything_else_is_refused() {
        let now = UnixTime(1_800_000_000);
        let k = key(1);
        let t = mint(&k, now, Some("ops"));
        let claims = verify(&t, &k.verifying_key(), now).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("ops"));
        assert_eq!(claims.exp - claims.iat, CLI_LIFETIME_S);
        assert_eq!(
            verify(&t, &key(2).verifying_key(), now),
            Err(TokenError::Signature)
        );
        let later = UnixTime(now.0 + CLI_LIFETIME_S);
        assert_eq!(
            verify(&t, &k.verifying_key(), later),
            Err(TokenError::Expired {
                exp: later.0,
                now: later.0
            })
        );
        let early = UnixTime(now.0 - CLOCK_SKEW_S - 1);
        assert!(matches!(
            verify(&t, &k.verifying_key(), early),
            Err(TokenError::IssuedInFuture { .. })
        ));
        assert!(matches!(
            verify("a.b", &k.verifying_key(), now),
            Err(TokenError::Malformed(_))
        ));
        // A flipped claim byte breaks the signature.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let claims = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        let forged = String::from_utf8(claims).unwrap().replace("ops", "opz");
        parts[1] = URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(
            verify(&parts.join("."), &k.verifying_key(), now),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let (k, pem) = generate_pem().unwrap();
        assert_eq!(read_signing_key(&pem).unwrap().to_bytes(), k.to_bytes());
        assert_eq!(read_verifying_key(&pem).unwrap(), k.verifying_key());
    }
}
