//! OCSP responses (RFC 6960) supplied as collateral: which certificates of a
//! chain they cover, whether they are authentic and current, and what they say.
//!
//! Used for the NVIDIA device chain (subjects 1..n−2) and RIM signing chains
//! (subjects 0..n−2) as `specs/nvidia-gpu.md` §4 describes. A response is
//! accepted only when its `BasicOCSPResponse` signature verifies over the
//! received `tbsResponseData` bytes with the subject's issuer key, or with a
//! delegated responder certificate that issuer signed for `id-kp-OCSPSigning`
//! (RFC 6960 §4.2.2.2; what OpenSSL's `OCSP_basic_verify` requires), and when
//! `thisUpdate ≤ now ≤ nextUpdate`. Responses are used offline, so a request
//! nonce is never required (the cached "Trust Outpost" mode of §4.3).
//!
//! This module never fetches anything and never decides policy: `good`,
//! `revoked`, `unknown` and "not checked" are reported per certificate; the
//! callers turn a verified `revoked` into a denial and leave the rest to policy.
//! An unparseable or unauthentic response is always a denial (`ocsp_invalid`).

use der::{Decode, Encode};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::ObjectIdentifier;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, ResponderId};

use crate::appraise::x509::{
    Cert, check_validity, tbs_raw, verify_issued_by, verify_x509_signature,
};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;

/// id-pkix-ocsp-basic.
const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-kp-OCSPSigning.
const OID_KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// extKeyUsage.
const OID_EXT_KEY_USAGE: &str = "2.5.29.37";
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// How long a response without `nextUpdate` is taken as current after its
/// `thisUpdate` (NVAT's cache default, `specs/nvidia-gpu.md` §4.2).
pub const DEFAULT_VALIDITY_SECS: i64 = 3600;

/// Revocation status of one certificate, or of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStatus {
    /// A verified, current response says good.
    Good,
    /// A verified, current response says revoked.
    Revoked,
    /// A verified, current response says the responder does not know it.
    Unknown,
    /// No response was supplied for it.
    NotChecked,
}

/// What the OCSP collateral says about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRevocation {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Serial number, hex.
    pub serial: String,
    /// The status.
    pub status: RevocationStatus,
    /// `thisUpdate` of the response used.
    pub this_update: Option<UnixTime>,
    /// `nextUpdate` of the response used.
    pub next_update: Option<UnixTime>,
    /// Revocation time, when revoked.
    pub revoked_at: Option<UnixTime>,
    /// CRLReason, when revoked and given (e.g. `KeyCompromise`).
    pub reason: Option<String>,
}

/// What the OCSP collateral says about a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainRevocation {
    /// Aggregate: revoked if any is, else unknown if any is, else not checked
    /// if any is, else good.
    pub status: RevocationStatus,
    /// One entry per certificate that OCSP covers, leaf side first.
    pub certs: Vec<CertRevocation>,
}

impl ChainRevocation {
    /// True when every covered certificate had a verified response.
    pub fn checked(&self) -> bool {
        self.certs
            .iter()
            .all(|c| c.status != RevocationStatus::NotChecked)
    }
}

/// One parsed successful response, with the bytes its signature covers.
#[derive(Debug, Clone)]
struct Parsed {
    /// Position in the collateral, for messages.
    position: usize,
    basic: BasicOcspResponse,
    tbs: Vec<u8>,
    /// The `certs` carried, as received (DER).
    certs: Vec<Vec<u8>>,
}

/// The OCSP responses supplied as collateral, parsed.
#[derive(Debug, Clone, Default)]
pub struct OcspResponses {
    parsed: Vec<Parsed>,
}

impl OcspResponses {
    /// Parses DER `OCSPResponse`s. Each one that is not DER, not
    /// `successful`, or not a basic response is an `ocsp_invalid` denial; the
    /// others are kept.
    pub fn parse(ders: &[&[u8]]) -> (Self, Vec<Denial>) {
        let mut parsed = Vec::new();
        let mut denials = Vec::new();
        for (position, der) in ders.iter().enumerate() {
            match parse_one(position, der) {
                Ok(p) => parsed.push(p),
                Err(d) => denials.push(d),
            }
        }
        (Self { parsed }, denials)
    }

    /// True when no response was supplied.
    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }

    /// Checks the certificates `chain[first..len-1]` (each against the next
    /// one as its issuer; `chain` is leaf first and ends with the root).
    /// Returns what is known and a denial for each response that matched a
    /// certificate but is not authentic or not current, and for each
    /// verified `revoked`.
    pub fn check_chain(
        &self,
        chain: &[Cert],
        first: usize,
        now: UnixTime,
        what: &str,
    ) -> (ChainRevocation, Vec<Denial>) {
        let mut certs = Vec::new();
        let mut denials = Vec::new();
        for pair in chain.get(first..).unwrap_or_default().windows(2) {
            let [subject, issuer] = pair else { continue };
            let (entry, mut ds) = self.check_cert(subject, issuer, now, what);
            certs.push(entry);
            denials.append(&mut ds);
        }
        let any = |s| certs.iter().any(|c: &CertRevocation| c.status == s);
        let status = if any(RevocationStatus::Revoked) {
            RevocationStatus::Revoked
        } else if any(RevocationStatus::Unknown) {
            RevocationStatus::Unknown
        } else if any(RevocationStatus::NotChecked) {
            RevocationStatus::NotChecked
        } else {
            RevocationStatus::Good
        };
        (ChainRevocation { status, certs }, denials)
    }

    fn check_cert(
        &self,
        subject: &Cert,
        issuer: &Cert,
        now: UnixTime,
        what: &str,
    ) -> (CertRevocation, Vec<Denial>) {
        let mut entry = CertRevocation {
            subject: subject.subject(),
            serial: hex::encode(subject.cert.tbs_certificate.serial_number.as_bytes()),
            status: RevocationStatus::NotChecked,
            this_update: None,
            next_update: None,
            revoked_at: None,
            reason: None,
        };
        let mut denials = Vec::new();
        // The first authentic, current response wins; broken ones that match
        // are denials even when another response is fine (fail closed).
        for p in &self.parsed {
            for single in &p.basic.tbs_response_data.responses {
                if !cert_id_matches(&single.cert_id, subject, issuer) {
                    continue;
                }
                let label = format!(
                    "{what}: OCSP response #{} for {}",
                    p.position, entry.subject
                );
                if let Err(d) = verify_response(p, issuer, now, &label) {
                    denials.push(d);
                    continue;
                }
                let this_update = ocsp_time(&single.this_update);
                let next_update = single.next_update.as_ref().map(ocsp_time);
                let until = next_update.unwrap_or(UnixTime(
                    this_update.0.saturating_add(DEFAULT_VALIDITY_SECS),
                ));
                if now < this_update || now > until {
                    denials.push(Denial::validity(
                        DenialCode::OcspInvalid,
                        format!("{label}: not current"),
                        entry.subject.clone(),
                        this_update,
                        until,
                        now,
                    ));
                    continue;
                }
                if entry.status != RevocationStatus::NotChecked {
                    continue;
                }
                entry.this_update = Some(this_update);
                entry.next_update = next_update;
                match &single.cert_status {
                    CertStatus::Good(_) => entry.status = RevocationStatus::Good,
                    CertStatus::Unknown(_) => entry.status = RevocationStatus::Unknown,
                    CertStatus::Revoked(info) => {
                        entry.status = RevocationStatus::Revoked;
                        entry.revoked_at = Some(ocsp_time(&info.revocation_time));
                        entry.reason = info.revocation_reason.map(|r| format!("{r:?}"));
                    }
                }
            }
        }
        if entry.status == RevocationStatus::Revoked {
            denials.push(Denial::value(
                DenialCode::CertRevoked,
                format!(
                    "{what}: certificate revoked ({})",
                    entry.reason.as_deref().unwrap_or("no reason given")
                ),
                "subject",
                &entry.subject,
            ));
        }
        (entry, denials)
    }
}

/// `chain` (leaf first) completed with the pinned `root` when it stops just
/// below it; returned as given when it already ends in `root` or does not
/// lead to it (then path validation refuses it anyway).
pub fn complete_chain(chain: &[Cert], root: &Cert) -> Vec<Cert> {
    let mut full = chain.to_vec();
    if let Some(last) = chain.last()
        && last.der != root.der
        && last.cert.tbs_certificate.issuer == root.cert.tbs_certificate.subject
        && last.cert.tbs_certificate.subject != root.cert.tbs_certificate.subject
    {
        full.push(root.clone());
    }
    full
}

fn parse_one(position: usize, der: &[u8]) -> Result<Parsed, Denial> {
    let bad = |why: String| {
        Denial::value(
            DenialCode::OcspInvalid,
            format!("OCSP response #{position}: {why}"),
            "ocsp_response",
            position,
        )
    };
    let resp = OcspResponse::from_der(der).map_err(|e| bad(format!("not DER: {e}")))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(bad(format!("status {:?}", resp.response_status)));
    }
    let bytes = resp
        .response_bytes
        .ok_or_else(|| bad("successful but without responseBytes".into()))?;
    if bytes.response_type != OID_OCSP_BASIC {
        return Err(bad(format!("response type {}", bytes.response_type)));
    }
    let inner = bytes.response.as_bytes();
    let basic =
        BasicOcspResponse::from_der(inner).map_err(|e| bad(format!("BasicOCSPResponse: {e}")))?;
    let tbs = tbs_raw(inner)
        .ok_or_else(|| bad("tbsResponseData unreadable".into()))?
        .to_vec();
    let certs = carried_certs(inner).ok_or_else(|| bad("certs unreadable".into()))?;
    Ok(Parsed {
        position,
        basic,
        tbs,
        certs,
    })
}

/// The `[0] EXPLICIT SEQUENCE OF Certificate` of a BasicOCSPResponse, each
/// certificate sliced from the received bytes.
fn carried_certs(basic: &[u8]) -> Option<Vec<Vec<u8>>> {
    use der::{Reader as _, SliceReader};
    let mut r = SliceReader::new(basic).ok()?;
    let _outer = der::Header::decode(&mut r).ok()?;
    for _ in 0..3 {
        r.tlv_bytes().ok()?; // tbsResponseData, signatureAlgorithm, signature
    }
    let mut out = Vec::new();
    if r.is_finished() {
        return Some(out);
    }
    let _explicit = der::Header::decode(&mut r).ok()?;
    let _sequence = der::Header::decode(&mut r).ok()?;
    while !r.is_finished() {
        out.push(r.tlv_bytes().ok()?.to_vec());
    }
    Some(out)
}

/// The issuer's key or a delegated responder it certified signed the response.
fn verify_response(p: &Parsed, issuer: &Cert, now: UnixTime, label: &str) -> Result<(), Denial> {
    let invalid = |why: &str| {
        Denial::value(
            DenialCode::OcspInvalid,
            format!("{label}: {why}"),
            "responder",
            responder_text(&p.basic.tbs_response_data.responder_id),
        )
    };
    let signature = p
        .basic
        .signature
        .as_bytes()
        .ok_or_else(|| invalid("signature has unused bits"))?;
    let signer = if responder_is(&p.basic.tbs_response_data.responder_id, issuer) {
        issuer.clone()
    } else {
        let delegated = p
            .certs
            .iter()
            .filter_map(|der| Cert::from_der(der, "OCSP responder").ok())
            .find(|c| responder_is(&p.basic.tbs_response_data.responder_id, c))
            .ok_or_else(|| {
                invalid("responder is neither the issuer nor a certificate it carries")
            })?;
        verify_issued_by(&delegated, issuer)
            .map_err(|_| invalid("responder certificate not issued by the subject's issuer"))?;
        if !has_ocsp_signing(&delegated) {
            return Err(invalid("responder certificate lacks id-kp-OCSPSigning"));
        }
        check_validity(&delegated, now).map_err(|d| Denial {
            code: DenialCode::OcspInvalid,
            message: format!("{label}: responder certificate: {}", d.message),
            detail: d.detail,
        })?;
        delegated
    };
    verify_x509_signature(
        &p.basic.signature_algorithm,
        &p.tbs,
        signature,
        &signer,
        label,
    )
    .map_err(|d| match d.code {
        DenialCode::UnsupportedAlgorithm => d,
        _ => invalid("signature does not verify"),
    })
}

fn responder_is(id: &ResponderId, cert: &Cert) -> bool {
    match id {
        ResponderId::ByName(name) => *name == cert.cert.tbs_certificate.subject,
        ResponderId::ByKey(hash) => hash.as_bytes() == &Sha1::digest(cert.public_key_bytes())[..],
    }
}

fn responder_text(id: &ResponderId) -> String {
    match id {
        ResponderId::ByName(name) => name.to_string(),
        ResponderId::ByKey(hash) => format!("key sha1 {}", hex::encode(hash.as_bytes())),
    }
}

fn has_ocsp_signing(cert: &Cert) -> bool {
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    cert.extension(OID_EXT_KEY_USAGE)
        .and_then(|v| ExtendedKeyUsage::from_der(v).ok())
        .is_some_and(|eku| eku.0.iter().any(|o| o.to_string() == OID_KP_OCSP_SIGNING))
}

/// CertID: same serial, and the issuer's name and key under the named hash.
fn cert_id_matches(id: &x509_ocsp::CertId, subject: &Cert, issuer: &Cert) -> bool {
    if id.serial_number != subject.cert.tbs_certificate.serial_number {
        return false;
    }
    let Ok(name) = issuer.cert.tbs_certificate.subject.to_der() else {
        return false;
    };
    let key = issuer.public_key_bytes();
    let Some((name_hash, key_hash)) = hash_pair(&id.hash_algorithm.oid, &name, key) else {
        return false;
    };
    id.issuer_name_hash.as_bytes() == name_hash.as_slice()
        && id.issuer_key_hash.as_bytes() == key_hash.as_slice()
}

/// The CertID hashes of (issuer name, issuer key) under `alg`, for the
/// algorithms responders use (NVAT SHA-1, LGV SHA-384).
pub fn hash_pair(alg: &ObjectIdentifier, name: &[u8], key: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn pair<D: Digest>(name: &[u8], key: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (D::digest(name).to_vec(), D::digest(key).to_vec())
    }
    Some(match *alg {
        OID_SHA1 => pair::<Sha1>(name, key),
        OID_SHA256 => pair::<Sha256>(name, key),
        OID_SHA384 => pair::<Sha384>(name, key),
        OID_SHA512 => pair::<Sha512>(name, key),
        _ => return None,
    })
}

fn ocsp_time(t: &x509_ocsp::OcspGeneralizedTime) -> UnixTime {
    UnixTime(i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_is_ocsp_invalid() {
        let (set, denials) = OcspResponses::parse(&[b"junk".as_slice()]);
        assert!(set.is_empty());
        assert_eq!(denials.len(), 1);
        assert_eq!(denials[0].code, DenialCode::OcspInvalid);
        // tryLater (3), no responseBytes.
        let try_later = OcspResponse::try_later().to_der().unwrap();
        let (_, denials) = OcspResponses::parse(&[try_later.as_slice()]);
        assert_eq!(denials[0].code, DenialCode::OcspInvalid);
        assert!(denials[0].message.contains("TryLater"), "{}", denials[0]);
    }
}
