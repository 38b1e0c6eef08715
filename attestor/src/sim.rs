//! Keys and certificates for the simulator, derived deterministically from a seed.
//!
//! Every simulated key comes from `SHA-256(domain ‖ seed ‖ label)` fed to
//! ChaCha20, so the same seed always gives the same roots, chains and
//! evidence. Simulated root and intermediate names always contain
//! `SIMULATED`, so nothing can mistake them for a vendor's. This module never
//! touches real keys or hardware.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use der::{Decode, Encode};
use p384::pkcs8::EncodePublicKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use sha2::{Digest, Sha256, Sha384};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

crate::byte_newtype!(
    /// The seed every simulated key derives from.
    pub struct SimSeed(32);
);

impl SimSeed {
    /// The seed the tests, the demo and `--danger-simulate` use unless told otherwise.
    pub const DEFAULT: SimSeed = SimSeed(*b"cc-inference-attestor/sim/seed/1");
}

/// Marker every simulated certificate name carries.
pub const SIMULATED_MARK: &str = "SIMULATED";

/// Why the simulator could not build something.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator: key generation failed: {0}")]
    Key(String),
    #[error("simulator: certificate encoding failed: {0}")]
    Encoding(String),
}

impl From<der::Error> for SimError {
    fn from(e: der::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}

impl From<spki::Error> for SimError {
    fn from(e: spki::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}

/// A deterministic RNG for one purpose under one seed.
pub fn rng(seed: &SimSeed, label: &str) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"cc-inference-attestor/sim/v1\0");
    h.update(seed.as_bytes());
    h.update(label.as_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// A process-wide memo of values that depend on nothing but a seed and a
/// label (CA certificates, device chains). Re-signing them for every
/// simulated report (RSA-4096 and several P-384 signatures) was most of the
/// cost of simulated evidence, which load tests build by the hundred. The
/// values are deterministic, so the memo changes no output.
pub(crate) struct Memo<V>(OnceLock<Mutex<HashMap<MemoKey, V>>>);

/// A memo key: the seed's bytes and the label.
type MemoKey = ([u8; 32], String);

impl<V: Clone> Memo<V> {
    /// An empty memo (for a `static`).
    pub(crate) const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The value for `(seed, label)`, made by `make` the first time. The lock
    /// is not held while making: two threads may both make it, and both get
    /// the same (deterministic) value.
    pub(crate) fn get_or_make(
        &self,
        seed: &SimSeed,
        label: &str,
        make: impl FnOnce() -> Result<V, SimError>,
    ) -> Result<V, SimError> {
        let map = self.0.get_or_init(Default::default);
        let key = (seed.into_bytes(), label.to_owned());
        let poisoned = |e: std::sync::PoisonError<_>| SimError::Key(format!("memo: {e}"));
        if let Some(v) = map.lock().map_err(poisoned)?.get(&key) {
            return Ok(v.clone());
        }
        let made = make()?;
        Ok(map
            .lock()
            .map_err(poisoned)?
            .entry(key)
            .or_insert(made)
            .clone())
    }
}

/// A simulated signing key.
#[derive(Clone)]
pub enum SimKey {
    /// RSA, signing with RSASSA-PSS/SHA-384 (salt 48), as AMD's ARK/ASK do.
    RsaPss(Arc<RsaPrivateKey>),
    /// ECDSA P-384/SHA-384 (AMD VCEK, NVIDIA device and RIM chains).
    P384(p384::ecdsa::SigningKey),
    /// ECDSA P-256/SHA-256 (Intel PCK chain, TCB signing, attestation keys).
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::RsaPss(_) => "RsaPss",
            Self::P384(_) => "P384",
            Self::P256(_) => "P256",
        };
        write!(f, "SimKey::{kind}(..)")
    }
}

/// RSA key size for simulated AMD roots: the same as AMD's ARK and ASK.
pub const SIM_RSA_BITS: usize = 4096;

impl SimKey {
    /// RSA key for `label`; generated once per process and cached, because
    /// 4096-bit prime generation takes a noticeable time.
    pub fn rsa(seed: &SimSeed, label: &str) -> Result<Self, SimError> {
        #[allow(clippy::type_complexity)]
        static CACHE: OnceLock<Mutex<HashMap<([u8; 32], String), Arc<RsaPrivateKey>>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = (seed.into_bytes(), label.to_owned());
        if let Some(k) = cache
            .lock()
            .map_err(|e| SimError::Key(e.to_string()))?
            .get(&key)
        {
            return Ok(Self::RsaPss(k.clone()));
        }
        let generated = Arc::new(rsa_from_disk_or_generate(seed, label)?);
        cache
            .lock()
            .map_err(|e| SimError::Key(e.to_string()))?
            .insert(key, generated.clone());
        Ok(Self::RsaPss(generated))
    }

    /// P-384 key for `label`.
    pub fn p384(seed: &SimSeed, label: &str) -> Self {
        Self::P384(p384::ecdsa::SigningKey::random(&mut rng(seed, label)))
    }

    /// P-256 key for `label`.
    pub fn p256(seed: &SimSeed, label: &str) -> Self {
        Self::P256(p256::ecdsa::SigningKey::random(&mut rng(seed, label)))
    }

    /// The public key as X.509 SubjectPublicKeyInfo.
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, SimError> {
        let der = match self {
            Self::RsaPss(k) => rsa::pkcs8::EncodePublicKey::to_public_key_der(&k.to_public_key())?,
            Self::P384(k) => k.verifying_key().to_public_key_der()?,
            Self::P256(k) => k.verifying_key().to_public_key_der()?,
        };
        Ok(SubjectPublicKeyInfoOwned::from_der(der.as_bytes())?)
    }

    /// The X.509 signature algorithm this key signs certificates with.
    pub fn signature_algorithm(&self) -> Result<AlgorithmIdentifierOwned, SimError> {
        Ok(match self {
            Self::RsaPss(_) => rsa::pss::get_default_pss_signature_algo_id::<Sha384>()?,
            Self::P384(_) => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA384,
                parameters: None,
            },
            Self::P256(_) => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
        })
    }

    /// Signs `msg` as X.509 wants it: RSA-PSS bytes, or a DER ECDSA signature.
    /// `rng` feeds the PSS salt, so simulated certificates stay deterministic.
    pub fn sign_x509(&self, msg: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
        match self {
            Self::RsaPss(k) => rsa::pss::SigningKey::<Sha384>::new((**k).clone())
                .sign_with_rng(rng, msg)
                .to_vec(),
            Self::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
            Self::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

/// Generates the RSA key for `(seed, label)`, memoised on disk.
///
/// Generation is deterministic, so the cache only saves time (seconds per key,
/// paid by every test process otherwise). A cached file is used only if it
/// parses as a valid RSA key of the simulator's size; anything else is
/// regenerated. The file name is a digest of the derivation inputs. The cache
/// holds simulator keys only, which no production trust store accepts: whoever
/// can write it can at most change what the simulator signs with. Disable it
/// with `CC_ATTESTOR_SIM_CACHE=off`; relocate it by setting that variable to a
/// directory.
fn rsa_from_disk_or_generate(seed: &SimSeed, label: &str) -> Result<RsaPrivateKey, SimError> {
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let generate = || {
        RsaPrivateKey::new(&mut rng(seed, label), SIM_RSA_BITS)
            .map_err(|e| SimError::Key(e.to_string()))
    };
    let dir = match std::env::var_os("CC_ATTESTOR_SIM_CACHE") {
        Some(v) if v == "off" => return generate(),
        Some(v) => std::path::PathBuf::from(v),
        None => std::env::temp_dir().join("cc-attestor-sim-rsa"),
    };
    let mut h = Sha256::new();
    h.update(b"cc-inference-attestor/sim/rsa-cache/v1\0");
    h.update(seed.as_bytes());
    h.update(label.as_bytes());
    h.update(SIM_RSA_BITS.to_le_bytes());
    let path = dir.join(format!("{}.p8", ::hex::encode(h.finalize())));
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|der| RsaPrivateKey::from_pkcs8_der(&der).ok())
        .filter(|key| {
            rsa::traits::PublicKeyParts::size(key) * 8 == SIM_RSA_BITS && key.validate().is_ok()
        });
    if let Some(key) = cached {
        return Ok(key);
    }
    let key = generate()?;
    // Best effort: a read-only or missing temp dir only costs time.
    if let Ok(doc) = key.to_pkcs8_der() {
        let tmp = dir.join(format!(
            "{}.{}.tmp",
            path.display().to_string().len(),
            std::process::id()
        ));
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&tmp, doc.as_bytes()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(key)
}

/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// What a simulated certificate says.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// RFC 4514 subject, e.g. `CN=SEV-Milan SIMULATED,O=Simulated`.
    pub subject: String,
    /// Serial number bytes (big-endian, positive).
    pub serial: Vec<u8>,
    /// Validity as Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    /// `Some(path_len)` for a CA.
    pub ca: Option<Option<u8>>,
    /// Extra extensions (vendor OIDs), appended after basicConstraints/keyUsage.
    pub extensions: Vec<Extension>,
}

impl CertSpec {
    /// A spec with the given subject and the default simulated validity
    /// (2020-01-01 to 2049-12-31).
    pub fn new(subject: impl Into<String>, serial: &[u8]) -> Self {
        Self {
            subject: subject.into(),
            serial: serial.to_vec(),
            not_before: 1_577_836_800,
            not_after: 2_524_607_999,
            ca: None,
            extensions: Vec::new(),
        }
    }

    pub fn ca(mut self, path_len: Option<u8>) -> Self {
        self.ca = Some(path_len);
        self
    }

    pub fn extension(
        mut self,
        oid: &str,
        critical: bool,
        value_der: Vec<u8>,
    ) -> Result<Self, SimError> {
        self.extensions.push(Extension {
            extn_id: ObjectIdentifier::new(oid).map_err(|e| SimError::Encoding(e.to_string()))?,
            critical,
            extn_value: OctetString::new(value_der)?,
        });
        Ok(self)
    }
}

/// Issues a certificate for `subject_spki`, signed by `issuer_key` under `issuer_name`
/// (pass the spec's own subject and key for a self-signed root).
pub fn issue(
    spec: &CertSpec,
    subject_spki: SubjectPublicKeyInfoOwned,
    issuer_name: &str,
    issuer_key: &SimKey,
    rng: &mut ChaCha20Rng,
) -> Result<Certificate, SimError> {
    let mut extensions = Vec::new();
    let key_usage = if let Some(path_len) = spec.ca {
        extensions.push(Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            critical: true,
            extn_value: OctetString::new(
                BasicConstraints {
                    ca: true,
                    path_len_constraint: path_len,
                }
                .to_der()?,
            )?,
        });
        KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
    } else {
        KeyUsage(KeyUsages::DigitalSignature.into())
    };
    extensions.push(Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_KEY_USAGE,
        critical: true,
        extn_value: OctetString::new(key_usage.to_der()?)?,
    });
    extensions.extend(spec.extensions.iter().cloned());

    let signature = issuer_key.signature_algorithm()?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&spec.serial)?,
        signature: signature.clone(),
        issuer: Name::from_str(issuer_name)?,
        validity: Validity {
            not_before: x509_time(spec.not_before)?,
            not_after: x509_time(spec.not_after)?,
        },
        subject: Name::from_str(&spec.subject)?,
        subject_public_key_info: subject_spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signed = issuer_key.sign_x509(&tbs.to_der()?, rng);
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: signature,
        signature: BitString::from_bytes(&signed)?,
    })
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
fn x509_time(unix: u64) -> Result<Time, SimError> {
    let d = Duration::from_secs(unix);
    if unix < 2_524_608_000 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?))
    }
}

/// PEM text of a certificate.
pub fn to_pem(cert: &Certificate) -> Result<String, SimError> {
    use der::EncodePem;
    Ok(cert.to_pem(der::pem::LineEnding::LF)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_label_separated() {
        let a = SimKey::p384(&SimSeed::DEFAULT, "a");
        let a2 = SimKey::p384(&SimSeed::DEFAULT, "a");
        let b = SimKey::p384(&SimSeed::DEFAULT, "b");
        assert_eq!(a.spki().unwrap(), a2.spki().unwrap());
        assert_ne!(a.spki().unwrap(), b.spki().unwrap());
    }

    #[test]
    fn self_signed_p384_root_verifies() {
        use p384::ecdsa::signature::Verifier;
        let key = SimKey::p384(&SimSeed::DEFAULT, "root");
        let spec = CertSpec::new("CN=Test Root SIMULATED,O=Simulated", &[1]).ca(None);
        let mut r = rng(&SimSeed::DEFAULT, "root-cert");
        let cert = issue(&spec, key.spki().unwrap(), &spec.subject, &key, &mut r).unwrap();
        let der = cert.to_der().unwrap();
        let parsed = Certificate::from_der(&der).unwrap();
        let tbs = parsed.tbs_certificate.to_der().unwrap();
        let sig = p384::ecdsa::Signature::from_der(parsed.signature.raw_bytes()).unwrap();
        let SimKey::P384(sk) = key else {
            unreachable!()
        };
        sk.verifying_key().verify(&tbs, &sig).unwrap();
        assert!(
            parsed
                .tbs_certificate
                .subject
                .to_string()
                .contains(SIMULATED_MARK)
        );
    }
}
