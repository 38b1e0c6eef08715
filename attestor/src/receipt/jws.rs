//! JWS compact serialization restricted to ES384 (RFC 7515 §3.1 and §7.1,
//! RFC 7518 §3.4), and EC P-384 JWKs with their RFC 7638 thumbprints.
//!
//! Written directly on RustCrypto `p384` so the attestor carries no JOSE
//! library. The signature is the fixed-length `R ‖ S` (96 bytes), never DER.
//! Parsing keeps the received base64url segments: the signature is checked over
//! exactly the bytes that were received, never over a re-encoding. This module
//! never accepts an algorithm other than ES384 and never takes the key from the
//! token itself (`jwk`, `jku`, `x5u` and `x5c` header members are ignored; the
//! caller supplies the key).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p384::EncodedPoint;
use p384::ecdsa::signature::{Signer as _, Verifier as _};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{JwsPart, ReceiptError};

/// The only JWS algorithm receipts use and accept.
pub const ALG: &str = "ES384";
/// Length of an ES384 signature: `R ‖ S`, 48 bytes each (RFC 7518 §3.4).
pub const SIGNATURE_LEN: usize = 96;
/// The largest compact JWS accepted, in bytes: a receipt is an audit-log entry,
/// and log entries are at most 64 KiB (DESIGN.md §7).
pub const MAX_COMPACT_LEN: usize = 64 * 1024;
/// Length of one P-384 affine coordinate.
const COORD_LEN: usize = 48;

/// The receipt-signing key: ECDSA P-384, created in the TEE, held in memory.
///
/// There is deliberately no way to export the private scalar, and `Debug`
/// prints only the public thumbprint.
#[derive(Clone)]
pub struct ReceiptKey {
    key: SigningKey,
    public: ReceiptPublicKey,
}

impl ReceiptKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::random(&mut rand_core::OsRng))
    }

    /// Wraps an existing signing key (for example the session's).
    pub fn from_signing_key(key: SigningKey) -> Self {
        let public = ReceiptPublicKey::from_verifying_key(*key.verifying_key());
        Self { key, public }
    }

    /// A key from a 48-byte big-endian scalar (fixed keys for tests and the simulator).
    pub fn from_scalar_bytes(scalar: &[u8; 48]) -> Result<Self, ReceiptError> {
        SigningKey::from_bytes(scalar.into())
            .map(Self::from_signing_key)
            .map_err(|_| ReceiptError::KeyScalarInvalid)
    }

    /// The public half.
    pub fn public_key(&self) -> &ReceiptPublicKey {
        &self.public
    }

    /// The public key as a JWK: `{"kty":"EC","crv":"P-384","x","y","alg":"ES384"}`.
    pub fn public_jwk(&self) -> Value {
        self.public.jwk()
    }

    /// The RFC 7638 thumbprint of the public key (base64url SHA-256), the JWS `kid`.
    pub fn thumbprint(&self) -> &str {
        self.public.thumbprint()
    }

    /// Signs `payload` as a compact JWS with header
    /// `{"alg":"ES384","typ":<typ>,"kid":<thumbprint>}`.
    pub fn sign_compact(&self, typ: &str, payload: &[u8]) -> String {
        // Written out so the member order is fixed whatever serde_json features are on.
        let header = format!(
            r#"{{"alg":{},"typ":{},"kid":{}}}"#,
            Value::from(ALG),
            Value::from(typ),
            Value::from(self.thumbprint())
        );
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let signature: Signature = self.key.sign(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut out);
        out
    }
}

impl From<SigningKey> for ReceiptKey {
    fn from(key: SigningKey) -> Self {
        Self::from_signing_key(key)
    }
}

impl fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptKey(kid={})", self.thumbprint())
    }
}

/// A receipt public key, checked to be a point on P-384, with its thumbprint.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptPublicKey {
    key: VerifyingKey,
    thumbprint: String,
}

impl ReceiptPublicKey {
    /// Wraps a verifying key.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        let (x, y) = coordinates(&key);
        let thumbprint = thumbprint_of("EC", "P-384", &x, &y);
        Self { key, thumbprint }
    }

    /// Reads a public JWK: `kty` "EC", `crv` "P-384", `x` and `y` canonical
    /// base64url of 48 bytes each, a point on the curve; `alg`, if present,
    /// "ES384". A JWK carrying a private part (`d`) is refused: a private
    /// key where a public one belongs means it has leaked.
    pub fn from_jwk(jwk: &Value) -> Result<Self, ReceiptError> {
        let Value::Object(members) = jwk else {
            return Err(ReceiptError::Jwk {
                member: "(root)",
                reason: "not a JSON object".into(),
            });
        };
        if members.contains_key("d") {
            return Err(ReceiptError::JwkPrivate);
        }
        let text = |member: &'static str| match members.get(member) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(ReceiptError::Jwk {
                member,
                reason: "not a string".into(),
            }),
            None => Err(ReceiptError::Jwk {
                member,
                reason: "missing".into(),
            }),
        };
        let expect = |member: &'static str, want: &str| -> Result<(), ReceiptError> {
            let found = text(member)?;
            if found == want {
                Ok(())
            } else {
                Err(ReceiptError::Jwk {
                    member,
                    reason: format!("expected {want:?}, found {found:?}"),
                })
            }
        };
        expect("kty", "EC")?;
        expect("crv", "P-384")?;
        if members.contains_key("alg") {
            expect("alg", ALG)?;
        }
        let x = coordinate(text("x")?, "x")?;
        let y = coordinate(text("y")?, "y")?;
        let point = EncodedPoint::from_affine_coordinates((&x).into(), (&y).into(), false);
        let key = VerifyingKey::from_encoded_point(&point).map_err(|_| ReceiptError::Jwk {
            member: "x",
            reason: "(x, y) is not a point on P-384".into(),
        })?;
        Ok(Self::from_verifying_key(key))
    }

    /// The public JWK, with `alg` "ES384".
    pub fn jwk(&self) -> Value {
        let (x, y) = coordinates(&self.key);
        json!({"kty": "EC", "crv": "P-384", "x": x, "y": y, "alg": ALG})
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256(`{"crv","kty","x","y"}`)).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The ECDSA verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks an ES384 signature (`R ‖ S`) over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ReceiptError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(ReceiptError::SignatureLength {
                expected: SIGNATURE_LEN,
                found: signature.len(),
            });
        }
        let signature =
            Signature::from_slice(signature).map_err(|_| ReceiptError::SignatureInvalid)?;
        self.key
            .verify(message, &signature)
            .map_err(|_| ReceiptError::SignatureInvalid)
    }
}

impl fmt::Debug for ReceiptPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptPublicKey(kid={})", self.thumbprint)
    }
}

/// The RFC 7638 thumbprint of an EC JWK given as JSON: the required members
/// `crv`, `kty`, `x`, `y` (strings, used exactly as given), in that order, no
/// whitespace, SHA-256, base64url without padding. Other members are ignored.
/// Does not check that the key is valid; [`ReceiptPublicKey::from_jwk`] does.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, ReceiptError> {
    let text = |member: &'static str| {
        jwk.get(member)
            .and_then(Value::as_str)
            .ok_or(ReceiptError::Jwk {
                member,
                reason: "missing or not a string".into(),
            })
    };
    Ok(thumbprint_of(
        text("kty")?,
        text("crv")?,
        text("x")?,
        text("y")?,
    ))
}

/// A compact JWS split into its parts, decoded but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactJws<'a> {
    /// `B64U(header) '.' B64U(payload)`: the exact bytes the signature covers.
    pub signing_input: &'a str,
    /// The protected header.
    pub header: JwsHeader,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
    /// The decoded signature bytes (any length here; checked on verification).
    pub signature: Vec<u8>,
}

/// The protected header members a receipt verifier reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JwsHeader {
    /// `alg`.
    pub alg: String,
    /// `typ`, when present.
    pub typ: Option<String>,
    /// `kid`, when present.
    pub kid: Option<String>,
    /// Names listed in `crit`, when present (receipts understand none).
    pub crit: Option<Vec<String>>,
}

/// The header as it is deserialized: named members, so a duplicated member is
/// an error rather than "last one wins"; unknown members are ignored as
/// RFC 7515 §4 requires (only `crit` can make them mandatory).
#[derive(serde::Deserialize)]
struct WireHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Vec<String>>,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes `header.payload.signature`. Each segment must be
    /// canonical base64url without padding; the header must be a JSON object.
    pub fn parse(compact: &'a str) -> Result<Self, ReceiptError> {
        if compact.len() > MAX_COMPACT_LEN {
            return Err(ReceiptError::TooLarge {
                len: compact.len(),
                max: MAX_COMPACT_LEN,
            });
        }
        let parts = compact.split('.').count();
        let (signing_input, signature_b64) = match compact.rsplit_once('.') {
            Some(split) if parts == 3 => split,
            _ => return Err(ReceiptError::NotCompactJws { parts }),
        };
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(ReceiptError::NotCompactJws { parts })?;
        let header_bytes = decode(header_b64, JwsPart::Header)?;
        let payload = decode(payload_b64, JwsPart::Payload)?;
        let signature = decode(signature_b64, JwsPart::Signature)?;
        let header = parse_header(&header_bytes)?;
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// Checks the header for a receipt signed by `key`: `alg` exactly ES384,
    /// no `crit`, `typ` exactly `typ`, `kid` equal to the key's thumbprint.
    pub fn check_header(&self, typ: &str, key: &ReceiptPublicKey) -> Result<(), ReceiptError> {
        if self.header.alg != ALG {
            return Err(ReceiptError::AlgorithmRefused {
                found: self.header.alg.clone(),
            });
        }
        if let Some(crit) = &self.header.crit {
            return Err(ReceiptError::CriticalHeader {
                names: crit.clone(),
            });
        }
        if self.header.typ.as_deref() != Some(typ) {
            return Err(ReceiptError::TypeMismatch {
                expected: typ.to_owned(),
                found: self.header.typ.clone(),
            });
        }
        if self.header.kid.as_deref() != Some(key.thumbprint()) {
            return Err(ReceiptError::KidMismatch {
                expected: key.thumbprint().to_owned(),
                found: self.header.kid.clone(),
            });
        }
        Ok(())
    }

    /// Checks the signature over the received signing input.
    pub fn check_signature(&self, key: &ReceiptPublicKey) -> Result<(), ReceiptError> {
        key.verify(self.signing_input.as_bytes(), &self.signature)
    }
}

fn parse_header(bytes: &[u8]) -> Result<JwsHeader, ReceiptError> {
    // A derived struct would also accept a JSON array; a header is an object.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ReceiptError::HeaderJson {
            reason: "not a JSON object".into(),
        });
    }
    let wire: WireHeader = serde_json::from_slice(bytes).map_err(|e| ReceiptError::HeaderJson {
        reason: e.to_string(),
    })?;
    Ok(JwsHeader {
        alg: wire.alg,
        typ: wire.typ,
        kid: wire.kid,
        crit: wire.crit,
    })
}

fn decode(text: &str, part: JwsPart) -> Result<Vec<u8>, ReceiptError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| ReceiptError::Base64 {
            part,
            reason: e.to_string(),
        })
}

fn coordinate(text: &str, member: &'static str) -> Result<[u8; COORD_LEN], ReceiptError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| ReceiptError::Jwk {
            member,
            reason: format!("not canonical base64url: {e}"),
        })?;
    <[u8; COORD_LEN]>::try_from(bytes.as_slice()).map_err(|_| ReceiptError::Jwk {
        member,
        reason: format!("expected {COORD_LEN} bytes, found {}", bytes.len()),
    })
}

fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    // A verifying key is never the identity, so both coordinates exist.
    let x = point.x().map(|x| URL_SAFE_NO_PAD.encode(x));
    let y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y));
    (x.unwrap_or_default(), y.unwrap_or_default())
}

fn thumbprint_of(kty: &str, crv: &str, x: &str, y: &str) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2); strings are
    // JSON-escaped by serde_json so any value hashes as its canonical JSON.
    let canonical = format!(
        r#"{{"crv":{},"kty":{},"x":{},"y":{}}}"#,
        Value::from(crv),
        Value::from(kty),
        Value::from(x),
        Value::from(y)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ReceiptKey {
        ReceiptKey::from_scalar_bytes(&[7u8; 48]).unwrap()
    }

    #[test]
    fn signature_is_raw_r_s_and_verifies() {
        let k = key();
        let compact = k.sign_compact("t+jwt", b"{}");
        let jws = CompactJws::parse(&compact).unwrap();
        assert_eq!(jws.signature.len(), SIGNATURE_LEN);
        assert_eq!(jws.header.alg, "ES384");
        jws.check_header("t+jwt", k.public_key()).unwrap();
        jws.check_signature(k.public_key()).unwrap();
    }

    #[test]
    fn jwk_round_trip_and_refusals() {
        let k = key();
        let jwk = k.public_jwk();
        let back = ReceiptPublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(&back, k.public_key());
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), k.thumbprint());

        let mut private = jwk.clone();
        private["d"] = Value::from("AAAA");
        assert_eq!(
            ReceiptPublicKey::from_jwk(&private),
            Err(ReceiptError::JwkPrivate)
        );
        let mut p256 = jwk.clone();
        p256["crv"] = Value::from("P-256");
        assert!(matches!(
            ReceiptPublicKey::from_jwk(&p256),
            Err(ReceiptError::Jwk { member: "crv", .. })
        ));
        let mut off_curve = jwk.clone();
        off_curve["y"] = off_curve["x"].clone();
        assert!(matches!(
            ReceiptPublicKey::from_jwk(&off_curve),
            Err(ReceiptError::Jwk { member: "x", .. })
        ));
        let mut padded = jwk;
        padded["x"] = Value::from(format!("{}=", padded["x"].as_str().unwrap()));
        assert!(matches!(
            ReceiptPublicKey::from_jwk(&padded),
            Err(ReceiptError::Jwk { member: "x", .. })
        ));
    }

    #[test]
    fn parse_refuses_wrong_shapes() {
        assert_eq!(
            CompactJws::parse("a.b"),
            Err(ReceiptError::NotCompactJws { parts: 2 })
        );
        assert_eq!(
            CompactJws::parse("a.b.c.d"),
            Err(ReceiptError::NotCompactJws { parts: 4 })
        );
        let array = URL_SAFE_NO_PAD.encode(r#"["ES384"]"#);
        assert!(matches!(
            CompactJws::parse(&format!("{array}..")),
            Err(ReceiptError::HeaderJson { .. })
        ));
        let dup = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES384","alg":"none"}"#);
        assert!(matches!(
            CompactJws::parse(&format!("{dup}..")),
            Err(ReceiptError::HeaderJson { .. })
        ));
        assert!(matches!(
            CompactJws::parse("e30=.."),
            Err(ReceiptError::Base64 {
                part: JwsPart::Header,
                ..
            })
        ));
        let big = "a".repeat(MAX_COMPACT_LEN + 1);
        assert!(matches!(
            CompactJws::parse(&big),
            Err(ReceiptError::TooLarge { .. })
        ));
    }
}
