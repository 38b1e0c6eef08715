//! NVIDIA RIM service and OCSP responder (`specs/nvidia-gpu.md` §4.2, §5.1).
//!
//! - RIM: `GET {base}/v1/rim/<id>` returns JSON `{id, rim, sha256, …}` with
//!   `rim` the base64 of the RIM XML. The returned `id` must equal the one
//!   asked for (as NVAT checks), `sha256` must be the SHA-256 of the decoded
//!   XML (or, accepted too, of the base64 text as sent: the service does not
//!   document which), and the XML must parse as a RIM. RIMs are kept forever;
//!   appraisal checks their signature and signing chain at `now`.
//! - OCSP: `POST {base}` with `Content-Type: application/ocsp-request`, one
//!   CertID per request (SHA-384 hashes, as LGV sends; no nonce, because the
//!   cached response is reused offline until `nextUpdate`, as NVIDIA's Trust
//!   Outpost does). Device chains are queried for subjects 1..n−2 (never the
//!   leaf or root), RIM chains for subjects 0..n−2.
//!
//! Optional `Authorization: Bearer <key>` on both. Nothing here verifies a
//! signature: appraisal verifies RIM signatures and OCSP responses (signature,
//! responder chain, CertID, validity window) on every use.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Encode as _;
use der::asn1::{ObjectIdentifier, OctetString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha384};
use spki::AlgorithmIdentifierOwned;
use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};

use attestor::nvidia::report::AttestationReport;
use attestor::nvidia::rim::{Rim, RimArch, driver_rim_id, vbios_rim_id};

use super::cache::{CollateralCache, Item};
use super::http::HttpRequest;
use super::{CollateralError, Fetched, Fetcher, fetch_item};
use crate::appraise::x509::{Cert, certs_from_pem_or_der};
use crate::time::UnixTime;

/// NVIDIA RIM service host.
pub const RIM_BASE: &str = "https://rim.attestation.nvidia.com";
/// NVIDIA OCSP responder.
pub const OCSP_URL: &str = "https://ocsp.ndis.nvidia.com";
/// SHA-384 (NIST), the CertID hash this module sends.
pub const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// `id-pkix-ocsp-basic`.
pub const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");

/// A RIM identifier that is safe as a file name: 1–128 characters from
/// `[A-Za-z0-9._-]`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RimId(String);

impl RimId {
    /// Validates an id such as `NV_GPU_DRIVER_GH100_550.144.03`.
    pub fn new(id: &str) -> Result<Self, CollateralError> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(CollateralError::BadArgument {
                what: "RIM id".to_owned(),
                reason: format!("{id:?} is not 1-128 characters of [A-Za-z0-9._-]"),
            })
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The cache key of an OCSP response: SHA-384 of the issuer's public key
/// bits (the CertID `issuerKeyHash`) and the subject's serial number bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OcspKey {
    /// SHA-384 over the issuer's subjectPublicKey BIT STRING contents.
    pub issuer_key_hash: [u8; 48],
    /// The subject's serial number, as encoded in its certificate.
    pub serial: Vec<u8>,
}

impl OcspKey {
    /// The key for `subject` issued by `issuer`.
    pub fn for_cert(subject: &Cert, issuer: &Cert) -> Self {
        Self {
            issuer_key_hash: issuer_key_hash(issuer),
            serial: subject
                .cert
                .tbs_certificate
                .serial_number
                .as_bytes()
                .to_vec(),
        }
    }

    /// `<issuer key hash hex>_<serial hex>`.
    pub fn file_stem(&self) -> String {
        format!(
            "{}_{}",
            hex::encode(self.issuer_key_hash),
            hex::encode(&self.serial)
        )
    }

    /// Parses [`Self::file_stem`] back (lowercase hex only).
    pub fn from_file_stem(stem: &str) -> Option<Self> {
        let (issuer, serial) = stem.split_once('_')?;
        let lower =
            |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower(issuer) || !lower(serial) {
            return None;
        }
        Some(Self {
            issuer_key_hash: hex::decode(issuer).ok()?.try_into().ok()?,
            serial: hex::decode(serial).ok()?,
        })
    }

    /// True when a response's CertID is for this key: the serial matches, and
    /// the issuer key hash too when the CertID uses SHA-384 (a SHA-1 CertID
    /// cannot be compared here; appraisal matches it against the chain).
    pub fn matches(&self, id: &CertId) -> bool {
        id.serial_number.as_bytes() == self.serial.as_slice()
            && (id.hash_algorithm.oid != ID_SHA384
                || id.issuer_key_hash.as_bytes() == self.issuer_key_hash.as_slice())
    }
}

/// What to fetch for GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvidiaRequest {
    /// Driver and VBIOS RIM ids.
    pub rim_ids: Vec<RimId>,
    /// Device certificate chains (PEM or DER, leaf first, root last), one per GPU.
    pub device_chains: Vec<Vec<u8>>,
    /// Also fetch OCSP responses for the device chains and the RIM signing chains.
    pub ocsp: bool,
}

/// The RIM service URL for an id.
pub fn rim_url(base: &str, id: &RimId) -> String {
    format!("{base}/v1/rim/{}", id.as_str())
}

/// The driver and VBIOS RIM ids for an SPDM attestation report (from its
/// opaque data; ids as `attestor::nvidia::rim` builds them).
pub fn rim_ids_from_report(report: &[u8], arch: RimArch) -> Result<Vec<RimId>, CollateralError> {
    let what = "GPU attestation report";
    let report = AttestationReport::parse(report).map_err(|e| CollateralError::invalid(what, e))?;
    let opaque = report.opaque();
    let missing =
        |field: &str| CollateralError::invalid(what, format!("opaque data lacks {field}"));
    let driver = opaque
        .driver_version()
        .ok_or_else(|| missing("driver version"))?;
    let vbios = opaque
        .vbios_version()
        .ok_or_else(|| missing("VBIOS version"))?;
    let project = opaque.project().ok_or_else(|| missing("project"))?;
    let project_sku = opaque.project_sku().ok_or_else(|| missing("project SKU"))?;
    let chip_sku = opaque.chip_sku().ok_or_else(|| missing("chip SKU"))?;
    let chip_info = opaque.chip_info();
    Ok(vec![
        RimId::new(&driver_rim_id(arch, chip_info.as_deref(), &driver))?,
        RimId::new(&vbios_rim_id(&project, &project_sku, &chip_sku, &vbios))?,
    ])
}

/// Decodes and checks a RIM service response for `id`; returns the XML.
pub fn rim_from_response(id: &RimId, body: &[u8]) -> Result<Vec<u8>, CollateralError> {
    #[derive(Deserialize)]
    struct RimResponse {
        id: String,
        rim: String,
        sha256: String,
    }
    let what = format!("RIM service response for {}", id.as_str());
    let response: RimResponse =
        serde_json::from_slice(body).map_err(|e| CollateralError::invalid(&what, e))?;
    if response.id != id.as_str() {
        return Err(CollateralError::invalid(
            &what,
            format!("id {:?} is not the one requested", response.id),
        ));
    }
    let xml = STANDARD
        .decode(response.rim.trim())
        .map_err(|e| CollateralError::invalid(&what, format!("rim is not base64: {e}")))?;
    let expected = hex::decode(response.sha256.trim())
        .map_err(|_| CollateralError::invalid(&what, "sha256 is not hex"))?;
    let of_xml = Sha256::digest(&xml);
    let of_text = Sha256::digest(response.rim.as_bytes());
    if expected[..] != of_xml[..] && expected[..] != of_text[..] {
        return Err(CollateralError::invalid(
            &what,
            format!(
                "sha256 {} matches neither the RIM ({}) nor its base64 text",
                response.sha256,
                hex::encode(of_xml)
            ),
        ));
    }
    Rim::parse(&xml).map_err(|e| CollateralError::invalid(&what, e))?;
    Ok(xml)
}

/// A DER OCSPRequest for `subject` issued by `issuer` (SHA-384 CertID, no
/// nonce, unsigned).
pub fn ocsp_request(subject: &Cert, issuer: &Cert) -> Result<Vec<u8>, CollateralError> {
    let what = "OCSP request";
    let name_der = issuer
        .cert
        .tbs_certificate
        .subject
        .to_der()
        .map_err(|e| CollateralError::invalid(what, e))?;
    let octets = |b: &[u8]| OctetString::new(b).map_err(|e| CollateralError::invalid(what, e));
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA384,
            parameters: None,
        },
        issuer_name_hash: octets(&Sha384::digest(&name_der))?,
        issuer_key_hash: octets(&issuer_key_hash(issuer))?,
        serial_number: subject.cert.tbs_certificate.serial_number.clone(),
    };
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(|e| CollateralError::invalid(what, e))
}

/// Fetches RIMs and (when asked) OCSP responses into `cache`. RIMs already
/// cached are not fetched again; OCSP responses only when missing or stale
/// (unless `fetcher.refresh_all`).
pub fn fetch_nvidia(
    fetcher: &Fetcher,
    cache: &CollateralCache,
    request: &NvidiaRequest,
    now: UnixTime,
) -> Result<Vec<Fetched>, CollateralError> {
    let base = fetcher.endpoints.nvidia_rim.trim_end_matches('/');
    let mut out = Vec::new();
    let mut rim_chains = Vec::new();
    for id in &request.rim_ids {
        let item = Item::Rim { id: id.clone() };
        out.push(fetch_item(fetcher, cache, &item, now, || {
            let body = fetcher
                .send(&with_key(fetcher, HttpRequest::get(rim_url(base, id))))?
                .body;
            rim_from_response(id, &body)
        })?);
        if request.ocsp {
            let xml = std::fs::read(cache.path(&item)).map_err(|source| CollateralError::Io {
                path: cache.path(&item),
                source,
            })?;
            let rim = Rim::parse(&xml).map_err(|e| CollateralError::invalid(id.as_str(), e))?;
            let chain = rim
                .signature
                .certs_der
                .iter()
                .map(|d| Cert::from_der(d, id.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|d| CollateralError::invalid(id.as_str(), d))?;
            rim_chains.push(chain);
        }
    }
    if request.ocsp {
        for chain in &rim_chains {
            out.extend(fetch_ocsp_chain(fetcher, cache, chain, 0, now)?);
        }
        for pem in &request.device_chains {
            let chain = certs_from_pem_or_der(pem, "GPU device chain")
                .map_err(|d| CollateralError::invalid("GPU device chain", d))?;
            out.extend(fetch_ocsp_chain(fetcher, cache, &chain, 1, now)?);
        }
    }
    Ok(out)
}

/// Fetches OCSP responses for `chain[i]` against `chain[i + 1]`, for `i` from
/// `first` to n−2 (the root, last, is never a subject).
pub fn fetch_ocsp_chain(
    fetcher: &Fetcher,
    cache: &CollateralCache,
    chain: &[Cert],
    first: usize,
    now: UnixTime,
) -> Result<Vec<Fetched>, CollateralError> {
    let url = fetcher.endpoints.nvidia_ocsp.clone();
    let mut out = Vec::new();
    for pair in chain.windows(2).skip(first) {
        let [subject, issuer] = pair else { continue };
        let item = Item::Ocsp {
            key: OcspKey::for_cert(subject, issuer),
        };
        out.push(fetch_item(fetcher, cache, &item, now, || {
            let der = ocsp_request(subject, issuer)?;
            let request = HttpRequest::post(url.as_str(), "application/ocsp-request", der)
                .header("Accept", "application/ocsp-response");
            Ok(fetcher.send(&with_key(fetcher, request))?.body)
        })?);
    }
    Ok(out)
}

fn with_key(fetcher: &Fetcher, request: HttpRequest) -> HttpRequest {
    match &fetcher.nvidia_service_key {
        Some(key) => request.header("Authorization", &format!("Bearer {key}")),
        None => request,
    }
}

fn issuer_key_hash(issuer: &Cert) -> [u8; 48] {
    let digest = Sha384::digest(
        issuer
            .cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    );
    let mut out = [0u8; 48];
    out.copy_from_slice(&digest);
    out
}
