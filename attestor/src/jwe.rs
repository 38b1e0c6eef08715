//! JWE to a TEE key, as Trustee's KBS answers a resource request.
//!
//! `alg` `ECDH-ES+A256KW` (RFC 7518 §4.6: ephemeral-static ECDH, Concat KDF
//! with SHA-256, AES-256 key wrap of a random content key, RFC 3394) and `enc`
//! `A256GCM`, in the flattened JSON serialization (RFC 7516 §7.2.2) without
//! `aad`: the GCM additional data is the ASCII of the base64url protected
//! header. The curve follows the TEE key's `crv`: `P-256` (what a stock
//! Trustee client sends) or `P-384` (a superset of Trustee). [`decrypt`] is
//! for the guest side and for tests.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use aes_kw::KekAes256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The key management algorithm.
pub const ALG: &str = "ECDH-ES+A256KW";
/// The content encryption algorithm.
pub const ENC: &str = "A256GCM";

/// A JWE in the flattened JSON serialization, with Trustee's field set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenedJwe {
    /// base64url of the protected header JSON.
    pub protected: String,
    /// base64url of the wrapped content key (40 bytes).
    pub encrypted_key: String,
    /// base64url of the 12-byte GCM nonce.
    pub iv: String,
    /// base64url of the ciphertext.
    pub ciphertext: String,
    /// base64url of the 16-byte GCM tag.
    pub tag: String,
    /// Extra additional data; never set by [`encrypt`], refused by [`decrypt`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad: Option<String>,
}

/// Why a JWE could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    /// The TEE key is not a usable EC public JWK.
    #[error("TEE key is not a usable JWK: {0}")]
    Key(String),
    /// The curve is neither P-256 nor P-384.
    #[error("unsupported curve {0:?} (P-256 and P-384 are supported)")]
    UnsupportedCurve(String),
    /// The JWE is not of the expected shape or algorithms.
    #[error("JWE malformed: {0}")]
    Malformed(String),
    /// Key unwrap or GCM authentication failed.
    #[error("JWE does not decrypt with this key")]
    Decrypt,
    /// Encryption failed (should not happen with valid lengths).
    #[error("JWE encryption failed: {0}")]
    Encrypt(String),
}

/// The supported curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

impl Curve {
    /// The JWK `crv` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    fn parse(crv: &str) -> Result<Self, JweError> {
        match crv {
            "P-256" => Ok(Self::P256),
            "P-384" => Ok(Self::P384),
            other => Err(JweError::UnsupportedCurve(other.to_owned())),
        }
    }
}

/// A TEE public key read from a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeePublicKey {
    /// P-256.
    P256(p256::PublicKey),
    /// P-384.
    P384(p384::PublicKey),
}

impl TeePublicKey {
    /// Reads an EC public JWK (`kty` `EC`, `crv`, `x`, `y`). An `alg`, when
    /// present, must be `ECDH-ES+A256KW`.
    pub fn from_jwk(jwk: &Value) -> Result<Self, JweError> {
        let field = |name: &str| -> Result<&str, JweError> {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JweError::Key(format!("missing string member {name:?}")))
        };
        if field("kty")? != "EC" {
            return Err(JweError::Key("kty is not \"EC\"".to_owned()));
        }
        if let Some(alg) = jwk.get("alg")
            && alg.as_str() != Some(ALG)
        {
            return Err(JweError::Key(format!("alg {alg} is not {ALG:?}")));
        }
        let curve = Curve::parse(field("crv")?)?;
        let x = decode_coordinate(field("x")?, curve, "x")?;
        let y = decode_coordinate(field("y")?, curve, "y")?;
        let mut sec1 = Vec::with_capacity(1 + 2 * x.len());
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        let bad = |_| JweError::Key("point is not on the curve".to_owned());
        Ok(match curve {
            Curve::P256 => Self::P256(p256::PublicKey::from_sec1_bytes(&sec1).map_err(bad)?),
            Curve::P384 => Self::P384(p384::PublicKey::from_sec1_bytes(&sec1).map_err(bad)?),
        })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        match self {
            Self::P256(_) => Curve::P256,
            Self::P384(_) => Curve::P384,
        }
    }

    /// The public JWK (`crv`, `kty`, `x`, `y`).
    pub fn to_jwk(&self) -> Value {
        let sec1 = match self {
            Self::P256(k) => k.to_sec1_bytes(),
            Self::P384(k) => k.to_sec1_bytes(),
        };
        let n = self.curve().coordinate_len();
        let x = sec1.get(1..=n).unwrap_or_default();
        let y = sec1.get(n + 1..).unwrap_or_default();
        json!({"crv": self.curve().name(), "kty": "EC", "x": B64U.encode(x), "y": B64U.encode(y)})
    }
}

fn decode_coordinate(text: &str, curve: Curve, name: &str) -> Result<Vec<u8>, JweError> {
    let bytes = B64U
        .decode(text)
        .map_err(|e| JweError::Key(format!("{name} is not base64url: {e}")))?;
    if bytes.len() != curve.coordinate_len() {
        return Err(JweError::Key(format!(
            "{name} is {} bytes, {} needs {}",
            bytes.len(),
            curve.name(),
            curve.coordinate_len()
        )));
    }
    Ok(bytes)
}

/// A TEE secret key (the guest side).
#[derive(Clone)]
pub enum TeeSecretKey {
    /// P-256.
    P256(p256::SecretKey),
    /// P-384.
    P384(p384::SecretKey),
}

impl std::fmt::Debug for TeeSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TeeSecretKey({})", self.public().curve().name())
    }
}

impl TeeSecretKey {
    /// A fresh random key on `curve`.
    pub fn generate(curve: Curve) -> Self {
        match curve {
            Curve::P256 => Self::P256(p256::SecretKey::random(&mut OsRng)),
            Curve::P384 => Self::P384(p384::SecretKey::random(&mut OsRng)),
        }
    }

    /// The public half.
    pub fn public(&self) -> TeePublicKey {
        match self {
            Self::P256(k) => TeePublicKey::P256(k.public_key()),
            Self::P384(k) => TeePublicKey::P384(k.public_key()),
        }
    }

    /// The public JWK as a Trustee client sends it in `tee-pubkey`
    /// (with `alg` `ECDH-ES+A256KW`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public().to_jwk();
        if let Value::Object(map) = &mut jwk {
            map.insert("alg".to_owned(), Value::String(ALG.to_owned()));
        }
        jwk
    }

    /// ECDH with a peer public key on the same curve.
    fn agree(&self, peer: &TeePublicKey) -> Result<Vec<u8>, JweError> {
        match (self, peer) {
            (Self::P256(s), TeePublicKey::P256(p)) => {
                let z = p256::ecdh::diffie_hellman(s.to_nonzero_scalar(), p.as_affine());
                Ok(z.raw_secret_bytes().to_vec())
            }
            (Self::P384(s), TeePublicKey::P384(p)) => {
                let z = p384::ecdh::diffie_hellman(s.to_nonzero_scalar(), p.as_affine());
                Ok(z.raw_secret_bytes().to_vec())
            }
            _ => Err(JweError::Malformed(
                "epk curve differs from the key's curve".to_owned(),
            )),
        }
    }
}

/// Concat KDF (NIST SP 800-56A §5.8.1) with SHA-256 as RFC 7518 §4.6.2 uses
/// it: `OtherInfo = len‖AlgorithmID ‖ len‖PartyUInfo ‖ len‖PartyVInfo ‖
/// keydatalen(bits, u32 BE)`. Returns `keydatalen_bits / 8` bytes.
pub fn concat_kdf_sha256(
    z: &[u8],
    algorithm_id: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    keydatalen_bits: u32,
) -> Vec<u8> {
    let mut other = Vec::new();
    for part in [algorithm_id, party_u, party_v] {
        other.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        other.extend_from_slice(part);
    }
    other.extend_from_slice(&keydatalen_bits.to_be_bytes());
    let want = usize::try_from(keydatalen_bits / 8).unwrap_or(0);
    let mut out = Vec::with_capacity(want + 32);
    let mut counter: u32 = 1;
    while out.len() < want {
        let mut h = Sha256::new();
        h.update(counter.to_be_bytes());
        h.update(z);
        h.update(&other);
        out.extend_from_slice(&h.finalize());
        counter = counter.saturating_add(1);
    }
    out.truncate(want);
    out
}

fn kek(z: &[u8], apu: &[u8], apv: &[u8]) -> Result<KekAes256, JweError> {
    let key = concat_kdf_sha256(z, ALG.as_bytes(), apu, apv, 256);
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| JweError::Encrypt("KDF output length".to_owned()))?;
    Ok(KekAes256::from(key))
}

/// Encrypts `plaintext` to the TEE public JWK.
pub fn encrypt(tee_jwk: &Value, plaintext: &[u8]) -> Result<FlattenedJwe, JweError> {
    let recipient = TeePublicKey::from_jwk(tee_jwk)?;
    let ephemeral = TeeSecretKey::generate(recipient.curve());
    let z = ephemeral.agree(&recipient)?;
    let header = json!({"alg": ALG, "enc": ENC, "epk": ephemeral.public().to_jwk()});
    let protected = B64U.encode(header.to_string());

    let mut cek = [0u8; 32];
    OsRng.fill_bytes(&mut cek);
    let encrypted_key = kek(&z, b"", b"")?
        .wrap_vec(&cek)
        .map_err(|e| JweError::Encrypt(e.to_string()))?;
    let mut iv = [0u8; 12];
    OsRng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|e| JweError::Encrypt(e.to_string()))?;
    let mut sealed = cipher
        .encrypt(
            &Nonce::from(iv),
            Payload {
                msg: plaintext,
                aad: protected.as_bytes(),
            },
        )
        .map_err(|e| JweError::Encrypt(e.to_string()))?;
    let tag = sealed.split_off(sealed.len().saturating_sub(16));
    Ok(FlattenedJwe {
        protected,
        encrypted_key: B64U.encode(encrypted_key),
        iv: B64U.encode(iv),
        ciphertext: B64U.encode(sealed),
        tag: B64U.encode(tag),
        aad: None,
    })
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, JweError> {
    B64U.decode(text)
        .map_err(|e| JweError::Malformed(format!("{field} is not base64url: {e}")))
}

/// Decrypts a JWE made by [`encrypt`] (or any ECDH-ES+A256KW / A256GCM
/// flattened JWE with `epk` in the protected header) with the TEE secret key.
pub fn decrypt(jwe: &FlattenedJwe, key: &TeeSecretKey) -> Result<Vec<u8>, JweError> {
    if jwe.aad.is_some() {
        return Err(JweError::Malformed("aad is not supported".to_owned()));
    }
    let header: Value = serde_json::from_slice(&b64("protected", &jwe.protected)?)
        .map_err(|e| JweError::Malformed(format!("protected header: {e}")))?;
    if header.get("alg").and_then(Value::as_str) != Some(ALG) {
        return Err(JweError::Malformed(format!("alg is not {ALG}")));
    }
    if header.get("enc").and_then(Value::as_str) != Some(ENC) {
        return Err(JweError::Malformed(format!("enc is not {ENC}")));
    }
    if header.get("zip").is_some() || header.get("crit").is_some() {
        return Err(JweError::Malformed("zip/crit are not supported".to_owned()));
    }
    let epk = header
        .get("epk")
        .ok_or_else(|| JweError::Malformed("no epk".to_owned()))?;
    let epk = TeePublicKey::from_jwk(epk).map_err(|e| JweError::Malformed(format!("epk: {e}")))?;
    let party = |name: &str| -> Result<Vec<u8>, JweError> {
        match header.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => b64(name, s),
            Some(_) => Err(JweError::Malformed(format!("{name} is not a string"))),
        }
    };
    let z = key.agree(&epk)?;
    let cek = kek(&z, &party("apu")?, &party("apv")?)?
        .unwrap_vec(&b64("encrypted_key", &jwe.encrypted_key)?)
        .map_err(|_| JweError::Decrypt)?;
    let iv = b64("iv", &jwe.iv)?;
    let iv: [u8; 12] = iv
        .try_into()
        .map_err(|v: Vec<u8>| JweError::Malformed(format!("iv is {} bytes, not 12", v.len())))?;
    let tag = b64("tag", &jwe.tag)?;
    if tag.len() != 16 {
        return Err(JweError::Malformed(format!(
            "tag is {} bytes, not 16",
            tag.len()
        )));
    }
    let mut sealed = b64("ciphertext", &jwe.ciphertext)?;
    sealed.extend_from_slice(&tag);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| JweError::Decrypt)?;
    cipher
        .decrypt(
            &Nonce::from(iv),
            Payload {
                msg: &sealed,
                aad: jwe.protected.as_bytes(),
            },
        )
        .map_err(|_| JweError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix C: ECDH-ES key agreement and Concat KDF.
    #[test]
    fn rfc7518_appendix_c() {
        let bob_d = B64U
            .decode("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw")
            .unwrap();
        let bob = TeeSecretKey::P256(p256::SecretKey::from_slice(&bob_d).unwrap());
        let alice_epk = json!({"kty": "EC", "crv": "P-256",
            "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
            "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"});
        let z = bob
            .agree(&TeePublicKey::from_jwk(&alice_epk).unwrap())
            .unwrap();
        let expected_z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        assert_eq!(z, expected_z);
        let key = concat_kdf_sha256(&z, b"A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(B64U.encode(key), "VqqN6vgjbSBcIijNcacQGg");
        // Bob's public key from the same appendix.
        assert_eq!(
            bob.public().to_jwk(),
            json!({"kty": "EC", "crv": "P-256",
                "x": "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
                "y": "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"})
        );
    }

    #[test]
    fn round_trip_both_curves_and_tamper() {
        for curve in [Curve::P256, Curve::P384] {
            let key = TeeSecretKey::generate(curve);
            let jwe = encrypt(&key.public_jwk(), b"model key").unwrap();
            assert_eq!(B64U.decode(&jwe.encrypted_key).unwrap().len(), 40);
            let header: Value =
                serde_json::from_slice(&B64U.decode(&jwe.protected).unwrap()).unwrap();
            assert_eq!(header["epk"]["crv"], curve.name());
            assert_eq!(decrypt(&jwe, &key).unwrap(), b"model key");

            let other = TeeSecretKey::generate(curve);
            assert_eq!(decrypt(&jwe, &other), Err(JweError::Decrypt));
            let mut bad = jwe.clone();
            bad.tag = B64U.encode([0u8; 16]);
            assert_eq!(decrypt(&bad, &key), Err(JweError::Decrypt));
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        let good = TeeSecretKey::generate(Curve::P256).public_jwk();
        let mut k = good.clone();
        k["crv"] = json!("P-521");
        assert!(matches!(
            encrypt(&k, b"x"),
            Err(JweError::UnsupportedCurve(_))
        ));
        let mut k = good.clone();
        k["x"] = json!("AAAA");
        assert!(matches!(encrypt(&k, b"x"), Err(JweError::Key(_))));
        let mut k = good.clone();
        k["alg"] = json!("RSA-OAEP-256");
        assert!(matches!(encrypt(&k, b"x"), Err(JweError::Key(_))));
        let mut k = good;
        k["y"] = k["x"].clone();
        assert!(matches!(encrypt(&k, b"x"), Err(JweError::Key(_))));
    }
}
