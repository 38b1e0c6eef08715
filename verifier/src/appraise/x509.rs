//! Certificate checks shared by every appraisal: signatures over the bytes
//! that were signed, validity at an explicit time, CA constraints, and chains
//! that must end in a pinned root (compared by bytes, never by name).
//!
//! Supported signature algorithms are exactly those the vendors use:
//! RSASSA-PSS with SHA-384 (AMD), ECDSA P-384/SHA-384 (AMD VCEK/VLEK
//! signatures, NVIDIA), ECDSA P-256/SHA-256 (Intel). Anything else is a
//! denial, not a guess.

use der::{Decode, Encode, Reader, SliceReader};
use sha2::Sha384;
use spki::ObjectIdentifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

/// A certificate with the exact bytes it arrived as.
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Cert {
    /// Parses DER; a failure is a `chain_malformed` denial naming `label`.
    pub fn from_der(der: &[u8], label: &str) -> Result<Self, Denial> {
        let cert = Certificate::from_der(der).map_err(|e| {
            Denial::value(
                DenialCode::ChainMalformed,
                format!("{label}: not an X.509 certificate: {e}"),
                "certificate",
                label,
            )
        })?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    /// The subject as RFC 4514 text.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// The exact to-be-signed bytes as received (not a re-encoding).
    pub fn tbs_bytes(&self) -> Result<&[u8], Denial> {
        tbs_raw(&self.der).ok_or_else(|| {
            Denial::value(
                DenialCode::ChainMalformed,
                "certificate structure unreadable",
                "certificate",
                self.subject(),
            )
        })
    }

    /// The SubjectPublicKeyInfo's key bytes.
    pub fn public_key_bytes(&self) -> &[u8] {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    /// The P-384 key, when that is what the certificate holds.
    pub fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, Denial> {
        p384::ecdsa::VerifyingKey::from_sec1_bytes(self.public_key_bytes()).map_err(|_| {
            Denial::value(
                DenialCode::UnsupportedAlgorithm,
                "certificate key is not ECDSA P-384",
                "subject",
                self.subject(),
            )
        })
    }

    /// The P-256 key, when that is what the certificate holds.
    pub fn p256_key(&self) -> Result<p256::ecdsa::VerifyingKey, Denial> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(self.public_key_bytes()).map_err(|_| {
            Denial::value(
                DenialCode::UnsupportedAlgorithm,
                "certificate key is not ECDSA P-256",
                "subject",
                self.subject(),
            )
        })
    }

    /// Validity window.
    pub fn not_before(&self) -> UnixTime {
        UnixTime::from_x509(&self.cert.tbs_certificate.validity.not_before)
    }

    pub fn not_after(&self) -> UnixTime {
        UnixTime::from_x509(&self.cert.tbs_certificate.validity.not_after)
    }

    /// The raw value of an extension, when present.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// True when basicConstraints says CA.
    pub fn is_ca(&self) -> bool {
        self.extension("2.5.29.19")
            .and_then(|v| BasicConstraints::from_der(v).ok())
            .is_some_and(|bc| bc.ca)
    }
}

/// The to-be-signed part of a certificate or CRL (the first element of the
/// outer SEQUENCE), sliced from the received bytes.
pub fn tbs_raw(der: &[u8]) -> Option<&[u8]> {
    let mut r = SliceReader::new(der).ok()?;
    let _outer = der::Header::decode(&mut r).ok()?;
    let start = usize::try_from(r.position()).ok()?;
    let inner = r.peek_header().ok()?;
    let header_len = usize::try_from(inner.encoded_len().ok()?).ok()?;
    let body_len = usize::try_from(inner.length).ok()?;
    der.get(start..start.checked_add(header_len)?.checked_add(body_len)?)
}

/// Checks `signature` (as carried in an X.509 structure, algorithm `alg`) over
/// `message` with the key in `signer`.
pub fn verify_x509_signature(
    alg: &spki::AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
    signer: &Cert,
    what: &str,
) -> Result<(), Denial> {
    use p256::ecdsa::signature::Verifier as _;
    let bad = || {
        Denial::mismatch(
            DenialCode::CertSignatureInvalid,
            format!("{what}: signature does not verify"),
            "signer",
            signer.subject(),
            "a different key",
        )
    };
    if alg.oid == ECDSA_SHA384 {
        let key = signer.p384_key()?;
        let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
        key.verify(message, &sig).map_err(|_| bad())
    } else if alg.oid == ECDSA_SHA256 {
        let key = signer.p256_key()?;
        let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
        key.verify(message, &sig).map_err(|_| bad())
    } else if alg.oid == RSASSA_PSS {
        use rsa::pkcs8::DecodePublicKey as _;
        let spki_der = signer
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|_| bad())?;
        let key = rsa::RsaPublicKey::from_public_key_der(&spki_der).map_err(|_| {
            Denial::value(
                DenialCode::UnsupportedAlgorithm,
                "signer key is not RSA",
                "subject",
                signer.subject(),
            )
        })?;
        // AMD's parameters: SHA-384, MGF1-SHA-384, salt 48 (checked by the verify).
        let vk = rsa::pss::VerifyingKey::<Sha384>::new(key);
        let sig = rsa::pss::Signature::try_from(signature).map_err(|_| bad())?;
        vk.verify(message, &sig).map_err(|_| bad())
    } else {
        Err(Denial::value(
            DenialCode::UnsupportedAlgorithm,
            format!("{what}: signature algorithm not accepted"),
            "algorithm",
            alg.oid,
        ))
    }
}

/// Checks that `child` was signed by `issuer`'s key.
///
/// Positive results are remembered per exact (child DER, issuer DER) pair:
/// whether one byte string signed another never changes, so a long-running
/// verifier need not redo RSA-4096 and P-384 chain signatures for every
/// appraisal. Only signatures are cached; validity, CA constraints and
/// pinning are checked on every call.
pub fn verify_issued_by(child: &Cert, issuer: &Cert) -> Result<(), Denial> {
    let key = pair_key(child, issuer);
    if verified_pairs().lock().is_ok_and(|set| set.contains(&key)) {
        return Ok(());
    }
    verify_issued_by_uncached(child, issuer)?;
    if let Ok(mut set) = verified_pairs().lock() {
        if set.len() >= VERIFIED_PAIRS_MAX {
            set.clear();
        }
        set.insert(key);
    }
    Ok(())
}

/// Forgets every remembered signature (benchmarks measure the cold path with it).
pub fn clear_verification_cache() {
    if let Ok(mut set) = verified_pairs().lock() {
        set.clear();
    }
}

const VERIFIED_PAIRS_MAX: usize = 4096;

fn verified_pairs() -> &'static std::sync::Mutex<std::collections::HashSet<[u8; 32]>> {
    static SET: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<[u8; 32]>>> =
        std::sync::OnceLock::new();
    SET.get_or_init(Default::default)
}

fn pair_key(child: &Cert, issuer: &Cert) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(Sha256::digest(&child.der));
    h.update(Sha256::digest(&issuer.der));
    h.finalize().into()
}

fn verify_issued_by_uncached(child: &Cert, issuer: &Cert) -> Result<(), Denial> {
    let tbs = child.tbs_bytes()?;
    let sig = child.cert.signature.as_bytes().ok_or_else(|| {
        Denial::value(
            DenialCode::ChainMalformed,
            "signature has unused bits",
            "subject",
            child.subject(),
        )
    })?;
    verify_x509_signature(
        &child.cert.signature_algorithm,
        tbs,
        sig,
        issuer,
        &format!("certificate {}", child.subject()),
    )
}

/// Checks `now` is inside the certificate's validity window.
pub fn check_validity(cert: &Cert, now: UnixTime) -> Result<(), Denial> {
    let (nb, na) = (cert.not_before(), cert.not_after());
    if now < nb {
        return Err(Denial::validity(
            DenialCode::CertNotYetValid,
            "certificate not yet valid",
            cert.subject(),
            nb,
            na,
            now,
        ));
    }
    if now > na {
        return Err(Denial::validity(
            DenialCode::CertExpired,
            "certificate expired",
            cert.subject(),
            nb,
            na,
            now,
        ));
    }
    Ok(())
}

/// Verifies a chain given leaf first. The last certificate must equal
/// `pinned_root` byte for byte (a chain that omits its root is completed with
/// it); every certificate is checked against its issuer, every issuer must be
/// a CA, and all must be valid at `now`. Every failure is returned, not just
/// the first.
pub fn verify_chain(chain: &[Cert], pinned_root: &[u8], now: UnixTime) -> Result<(), Vec<Denial>> {
    let mut denials = Vec::new();
    let root = match Cert::from_der(pinned_root, "pinned root") {
        Ok(r) => r,
        Err(d) => return Err(vec![d]),
    };
    let Some(last) = chain.last() else {
        return Err(vec![Denial::new(
            DenialCode::ChainMalformed,
            "empty certificate chain",
        )]);
    };
    let mut full: Vec<&Cert> = chain.iter().collect();
    if last.der != root.der {
        // The chain may stop below the root; then its top must be issued by the pinned root.
        if last.cert.tbs_certificate.issuer != root.cert.tbs_certificate.subject {
            denials.push(Denial::mismatch(
                DenialCode::ChainUntrusted,
                "chain does not end in the pinned root",
                "root",
                root.subject(),
                last.subject(),
            ));
            return Err(denials);
        }
        full.push(&root);
    }
    if let Err(d) = verify_issued_by(&root, &root) {
        denials.push(d);
    }
    for pair in full.windows(2) {
        let [child, issuer] = pair else { continue };
        if let Err(d) = verify_issued_by(child, issuer) {
            denials.push(d);
        }
        if !issuer.is_ca() {
            denials.push(Denial::value(
                DenialCode::CertConstraintsInvalid,
                "issuer is not a CA (basicConstraints)",
                "subject",
                issuer.subject(),
            ));
        }
    }
    for c in &full {
        if let Err(d) = check_validity(c, now) {
            denials.push(d);
        }
    }
    if denials.is_empty() {
        Ok(())
    } else {
        Err(denials)
    }
}

/// Parses a PEM bundle or single DER into certificates (leaf first as given).
pub fn certs_from_pem_or_der(bytes: &[u8], label: &str) -> Result<Vec<Cert>, Denial> {
    let ders = attestor::snp::certs::pem_or_der_certs(bytes).map_err(|e| {
        Denial::value(
            DenialCode::ChainMalformed,
            format!("{label}: {e}"),
            "certificates",
            label,
        )
    })?;
    ders.iter().map(|d| Cert::from_der(d, label)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::TrustRoots;
    use attestor::snp::certs::Product;

    fn testdata(rel: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/testdata")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn at(s: &str) -> UnixTime {
        UnixTime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn nvidia_device_chain_verifies_to_the_pinned_root() {
        let roots = TrustRoots::vendor().unwrap();
        let chain =
            certs_from_pem_or_der(&testdata("nvidia/h100_nvtrust_550_chain.pem"), "chain").unwrap();
        verify_chain(
            &chain,
            &roots.nvidia_device_root,
            at("2025-01-01T00:00:00Z"),
        )
        .unwrap();
        // Wrong root: untrusted.
        let err =
            verify_chain(&chain, &roots.nvidia_rim_root, at("2025-01-01T00:00:00Z")).unwrap_err();
        assert_eq!(err[0].code, DenialCode::ChainUntrusted);
        // Before the device certs existed: not yet valid.
        let err = verify_chain(
            &chain,
            &roots.nvidia_device_root,
            at("2020-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert!(
            err.iter().any(|d| d.code == DenialCode::CertNotYetValid),
            "{err:?}"
        );
    }

    #[test]
    fn amd_rsa_pss_chain_verifies() {
        let roots = TrustRoots::vendor().unwrap();
        let milan = roots.amd(Product::Milan).unwrap();
        let vcek = Cert::from_der(&testdata("snp/milan_virtee_v2_vcek.der"), "vcek").unwrap();
        let ask = Cert::from_der(&milan.ask, "ask").unwrap();
        verify_chain(
            &[vcek.clone(), ask.clone()],
            &milan.ark,
            at("2025-09-01T00:00:00Z"),
        )
        .unwrap();
        // A forged VCEK-shaped cert does not verify under the ASK.
        let forged = Cert::from_der(
            &testdata("snp/neg_milan_trustee_vcek-invalid-legacy.der"),
            "vcek",
        )
        .unwrap();
        let err = verify_chain(&[forged, ask], &milan.ark, at("2025-09-01T00:00:00Z")).unwrap_err();
        assert!(
            err.iter()
                .any(|d| d.code == DenialCode::CertSignatureInvalid),
            "{err:?}"
        );
        // The Milan VCEK against Genoa's roots: untrusted.
        let genoa = roots.amd(Product::Genoa).unwrap();
        let gask = Cert::from_der(&genoa.ask, "ask").unwrap();
        assert!(verify_chain(&[vcek, gask], &genoa.ark, at("2025-09-01T00:00:00Z")).is_err());
    }

    #[test]
    fn intel_p256_chain_verifies() {
        let roots = TrustRoots::vendor().unwrap();
        let chain = certs_from_pem_or_der(
            &testdata("tdx/collateral_tinfoil_2026-01/tcb_signing_chain.pem"),
            "tcb",
        )
        .unwrap();
        verify_chain(&chain, &roots.intel_root, at("2026-01-20T00:00:00Z")).unwrap();
    }

    #[test]
    fn tbs_slice_is_what_was_signed() {
        let der = testdata("snp/milan_virtee_v2_vcek.der");
        let c = Cert::from_der(&der, "vcek").unwrap();
        assert_eq!(
            c.tbs_bytes().unwrap(),
            &c.cert.tbs_certificate.to_der().unwrap()[..]
        );
        assert!(tbs_raw(&[0x30, 0x05, 0x30]).is_none());
        assert!(tbs_raw(&[]).is_none());
    }
}
