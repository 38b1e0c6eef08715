//! `verifier inspect`: how a reviewer looks inside evidence.
//!
//! Parses one file with the attestor's parsers and renders it as JSON (hex for
//! byte fields). Detects the kind when not told. Never judges: no signature,
//! chain or policy check happens here; a malformed file is an error naming the
//! format, the field and the offset.

use std::fmt;

use attestor::ParseError;
use der::{Decode, Encode};
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// AMD SEV-SNP attestation report (1184 bytes).
    Snp,
    /// Intel TDX DCAP quote (v4, v5).
    Tdx,
    /// NVIDIA SPDM report (binary) or JSON GPU evidence list.
    Gpu,
    /// NVIDIA reference integrity manifest (SWID XML).
    Rim,
    /// Evidence bundle (KBS tee-evidence shape with runtime data).
    Evidence,
    /// X.509 certificate or chain (DER or PEM).
    Cert,
    /// X.509 certificate revocation list (DER or PEM).
    Crl,
    /// Intel collateral JSON (dcap-qvl bundle, PCS TCB info or QE identity).
    Collateral,
    /// SEV-SNP GHCB certificate table (configfs-tsm auxblob).
    CertTable,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snp => "snp",
            Self::Tdx => "tdx",
            Self::Gpu => "gpu",
            Self::Rim => "rim",
            Self::Evidence => "evidence",
            Self::Cert => "cert",
            Self::Crl => "crl",
            Self::Collateral => "collateral",
            Self::CertTable => "cert-table",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("could not tell what this file holds ({len} bytes); pass --kind")]
    UnknownKind { len: usize },
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Guesses the kind from the bytes.
pub fn detect(bytes: &[u8]) -> Option<Kind> {
    let text_start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| bytes.get(i..))
        .unwrap_or_default();
    if text_start.starts_with(b"<") {
        return Some(Kind::Rim);
    }
    if text_start.starts_with(b"-----BEGIN X509 CRL") {
        return Some(Kind::Crl);
    }
    if text_start.starts_with(b"-----BEGIN") {
        return Some(Kind::Cert);
    }
    if text_start.starts_with(b"{") || text_start.starts_with(b"[") {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        return Some(detect_json(&value));
    }
    if bytes.len() == 1184 {
        let version = bytes.first_chunk::<4>().map(|v| u32::from_le_bytes(*v));
        if matches!(version, Some(2..=5)) {
            return Some(Kind::Snp);
        }
    }
    if let Some(head) = bytes.first_chunk::<8>() {
        let version = u16::from_le_bytes([head[0], head[1]]);
        let tee_type = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if matches!(version, 4 | 5) && tee_type == 0x81 {
            return Some(Kind::Tdx);
        }
        if head[0] == 0x11 && head[1] == 0xE0 {
            return Some(Kind::Gpu);
        }
    }
    if bytes.first() == Some(&0x30) {
        if Certificate::from_der(bytes).is_ok() {
            return Some(Kind::Cert);
        }
        if CertificateList::from_der(bytes).is_ok() {
            return Some(Kind::Crl);
        }
    }
    // A GHCB certificate table starts with a known GUID.
    if attestor::snp::certs::CertTable::parse(bytes).is_ok() {
        return Some(Kind::CertTable);
    }
    None
}

fn detect_json(value: &Value) -> Kind {
    match value {
        Value::Array(_) => Kind::Gpu,
        Value::Object(m) if m.contains_key("tee-evidence") => Kind::Evidence,
        Value::Object(m) if m.contains_key("device_evidence_list") => Kind::Gpu,
        _ => Kind::Collateral,
    }
}

/// Parses `bytes` as `kind` (detected when `None`) into a JSON view.
pub fn inspect(bytes: &[u8], kind: Option<Kind>) -> Result<(Kind, Value), InspectError> {
    let kind = match kind {
        Some(k) => k,
        None => detect(bytes).ok_or(InspectError::UnknownKind { len: bytes.len() })?,
    };
    let value = match kind {
        Kind::Snp => view(&attestor::snp::report::Report::parse(bytes)?),
        Kind::Tdx => view(&attestor::tdx::quote::Quote::parse(bytes)?),
        Kind::Gpu => gpu(bytes)?,
        Kind::Rim => view(&attestor::nvidia::rim::Rim::parse(bytes)?),
        Kind::Evidence => evidence(bytes)?,
        Kind::Cert => certs(bytes)?,
        Kind::Crl => crl(bytes)?,
        Kind::Collateral => collateral(bytes)?,
        Kind::CertTable => view(&attestor::snp::certs::CertTable::parse(bytes)?),
    };
    Ok((kind, value))
}

fn view<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn gpu(bytes: &[u8]) -> Result<Value, ParseError> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        let list = attestor::nvidia::evidence::GpuEvidenceList::parse_json(bytes)?;
        let mut devices = Vec::new();
        for (i, entry) in list.entries.iter().enumerate() {
            devices.push(json!({
                "index": i,
                "entry": view(entry),
                "report": view(&attestor::nvidia::report::AttestationReport::parse(&entry.report)?),
                "certificates": certs(&entry.cert_chain_pem)?,
            }));
        }
        Ok(json!({ "devices": devices }))
    } else {
        Ok(view(&attestor::nvidia::report::AttestationReport::parse(
            bytes,
        )?))
    }
}

fn evidence(bytes: &[u8]) -> Result<Value, ParseError> {
    use attestor::evidence::{EvidenceBundle, PrimaryEvidence};
    let bundle = EvidenceBundle::from_json(bytes)?;
    let primary = match &bundle.primary {
        PrimaryEvidence::Snp(e) => json!({
            "report": view(&attestor::snp::report::Report::parse(&e.report)?),
            "cert_table": match &e.cert_table {
                Some(t) => view(&attestor::snp::certs::CertTable::parse(t)?),
                None => Value::Null,
            },
        }),
        PrimaryEvidence::Tdx(e) => json!({
            "quote": view(&attestor::tdx::quote::Quote::parse(&e.quote)?),
            "cc_eventlog_bytes": e.cc_eventlog.as_ref().map(Vec::len),
        }),
    };
    let additional = if bundle.additional_evidence.is_empty() {
        Value::Null
    } else {
        let value: Value = serde_json::from_str(&bundle.additional_evidence)
            .map_err(|e| ParseError::document("evidence bundle", "additional_evidence", e))?;
        match value.get("nvidia") {
            Some(nv) => gpu(nv.to_string().as_bytes())?,
            None => value,
        }
    };
    Ok(json!({
        "tee": bundle.primary.tee(),
        "simulated_label": bundle.simulated,
        "digest": bundle.digest().prefixed(),
        "runtime_data": bundle.runtime_data,
        "binding": {
            "device_digest_sha384": bundle.runtime_data.device_digest(),
            "gpu_nonce": bundle.runtime_data.gpu_nonce(),
            "expected_report_data": bundle.expected_report_data(),
        },
        "primary_evidence": primary,
        "additional_evidence": additional,
    }))
}

/// One or more certificates, DER or PEM.
fn certs(bytes: &[u8]) -> Result<Value, ParseError> {
    let list = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        Certificate::load_pem_chain(bytes).map_err(|e| ParseError::document("x509", "pem", e))?
    } else {
        vec![Certificate::from_der(bytes).map_err(|e| ParseError::document("x509", "der", e))?]
    };
    let views: Vec<Value> = list.iter().map(cert_view).collect::<Result<_, _>>()?;
    Ok(json!({ "count": views.len(), "certificates": views }))
}

fn cert_view(cert: &Certificate) -> Result<Value, ParseError> {
    let tbs = &cert.tbs_certificate;
    let der = cert
        .to_der()
        .map_err(|e| ParseError::document("x509", "der", e))?;
    let extensions: Vec<Value> = tbs
        .extensions
        .iter()
        .flatten()
        .map(|e| {
            json!({
                "oid": e.extn_id.to_string(),
                "critical": e.critical,
                "value": hex::encode(e.extn_value.as_bytes()),
            })
        })
        .collect();
    let has = |prefix: &str| {
        tbs.extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id.to_string().starts_with(prefix))
    };
    let mut vendor = serde_json::Map::new();
    if has("1.3.6.1.4.1.3704.1.") {
        vendor.insert(
            "amd_vek".into(),
            view(&attestor::snp::certs::VekExtensions::from_der(&der)?),
        );
    }
    if has("1.2.840.113741.1.13.1") {
        vendor.insert(
            "intel_pck".into(),
            view(&attestor::tdx::certs::PckExtensions::from_der(&der)?),
        );
    }
    Ok(json!({
        "subject": tbs.subject.to_string(),
        "issuer": tbs.issuer.to_string(),
        "serial": hex::encode(tbs.serial_number.as_bytes()),
        "not_before": tbs.validity.not_before.to_string(),
        "not_after": tbs.validity.not_after.to_string(),
        "signature_algorithm": cert.signature_algorithm.oid.to_string(),
        "public_key_algorithm": tbs.subject_public_key_info.algorithm.oid.to_string(),
        "sha256_fingerprint": attestor::digest::Sha256Digest::of(&der),
        "extensions": extensions,
        "vendor": vendor,
    }))
}

fn crl(bytes: &[u8]) -> Result<Value, ParseError> {
    let der;
    let bytes = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let (_, d) =
            der::pem::decode_vec(bytes).map_err(|e| ParseError::document("crl", "pem", e))?;
        der = d;
        &der[..]
    } else {
        bytes
    };
    let crl =
        CertificateList::from_der(bytes).map_err(|e| ParseError::document("crl", "der", e))?;
    Ok(crl_view(&crl))
}

fn crl_view(crl: &CertificateList) -> Value {
    let tbs = &crl.tbs_cert_list;
    let revoked: Vec<String> = tbs
        .revoked_certificates
        .iter()
        .flatten()
        .map(|r| hex::encode(r.serial_number.as_bytes()))
        .collect();
    json!({
        "issuer": tbs.issuer.to_string(),
        "this_update": tbs.this_update.to_string(),
        "next_update": tbs.next_update.map(|t| t.to_string()),
        "signature_algorithm": crl.signature_algorithm.oid.to_string(),
        "revoked_count": revoked.len(),
        "revoked_serials": revoked,
    })
}

/// Intel collateral: a dcap-qvl bundle (inner JSON strings and hex CRLs
/// decoded) or a raw PCS TCB info / QE identity body.
fn collateral(bytes: &[u8]) -> Result<Value, ParseError> {
    let doc = |e: serde_json::Error| ParseError::document("collateral", "(root)", e);
    let mut value: Value = serde_json::from_slice(bytes).map_err(doc)?;
    let Value::Object(map) = &mut value else {
        return Err(ParseError::document(
            "collateral",
            "(root)",
            "not a JSON object",
        ));
    };
    for key in ["tcb_info", "qe_identity"] {
        if let Some(Value::String(inner)) = map.get(key) {
            let parsed: Value = serde_json::from_str(inner)
                .map_err(|e| ParseError::document("collateral", "tcb_info/qe_identity", e))?;
            map.insert(format!("{key}_parsed"), parsed);
        }
    }
    for key in ["pck_crl", "root_ca_crl"] {
        if let Some(Value::String(h)) = map.get(key) {
            let der =
                hex::decode(h).map_err(|e| ParseError::document("collateral", "crl hex", e))?;
            let crl = CertificateList::from_der(&der)
                .map_err(|e| ParseError::document("collateral", "crl", e))?;
            map.insert(format!("{key}_parsed"), crl_view(&crl));
        }
    }
    Ok(value)
}
