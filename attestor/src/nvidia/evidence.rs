//! NVIDIA GPU evidence as JSON, in the two shapes in use
//! (`specs/nvidia-gpu.md` §1.3):
//!
//! - NVAT (NVIDIA attestation SDK): a list
//!   `[{"arch": "HOPPER", "nonce": hex, "evidence": base64, "certificate": base64(PEM)}, …]`,
//!   newer versions adding `version`, `vbios_version`, `driver_version`;
//! - Trustee / guest-components / our KBS: `{"device_evidence_list":
//!   [{"arch": "Hopper", "uuid", "evidence", "certificate"}, …]}`.
//!
//! `evidence` is hex or base64 (detected as Trustee does: hex first);
//! `certificate` is base64 of the PEM chain. Fields this module does not
//! know are kept. It decodes the transport encodings only: the report and the
//! chain inside are parsed by [`report`](super::report) and
//! [`certs`](super::certs), and nothing here checks a nonce or a signature.
#![warn(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ParseError;
use crate::nvidia::certs::DeviceChain;
use crate::nvidia::report::{AttestationReport, SpdmNonce};

/// Format name in errors.
pub const FORMAT: &str = "nvidia evidence json";

/// GPU architecture as named in evidence JSON. Unknown names are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GpuArch {
    /// Hopper (GH100), NVML architecture 9.
    Hopper,
    /// Blackwell (GB100), NVML architecture 10.
    Blackwell,
    /// Anything else (e.g. `LS10` for an NVSwitch), spelled as received.
    Other(String),
}

impl GpuArch {
    /// From JSON: `HOPPER` (NVAT) and `Hopper` (nvml-wrapper / Trustee) alike.
    pub fn from_name(name: &str) -> Self {
        if name.eq_ignore_ascii_case("hopper") {
            Self::Hopper
        } else if name.eq_ignore_ascii_case("blackwell") {
            Self::Blackwell
        } else {
            Self::Other(name.to_owned())
        }
    }

    /// NVAT's spelling: `HOPPER`, `BLACKWELL`.
    pub fn nvat_name(&self) -> &str {
        match self {
            Self::Hopper => "HOPPER",
            Self::Blackwell => "BLACKWELL",
            Self::Other(s) => s,
        }
    }

    /// Trustee's spelling (nvml-wrapper's `DeviceArchitecture` serde names,
    /// the only ones older Trustee releases accept): `Hopper`, `Blackwell`.
    pub fn kbs_name(&self) -> &str {
        match self {
            Self::Hopper => "Hopper",
            Self::Blackwell => "Blackwell",
            Self::Other(s) => s,
        }
    }
}

impl Serialize for GpuArch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.nvat_name())
    }
}

/// How the `evidence` string was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceEncoding {
    /// Standard base64 (NVAT, current Trustee).
    Base64,
    /// Hex (older guest-components).
    Hex,
}

/// Which JSON shape a list came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceShape {
    /// A bare list (NVAT).
    NvatList,
    /// `{"device_evidence_list": [...]}` (Trustee, KBS).
    DeviceEvidenceList,
}

/// One GPU's evidence, transport encodings removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuEvidenceEntry {
    /// Architecture.
    pub arch: GpuArch,
    /// NVML UUID, when sent (not attested: the report does not contain it).
    pub uuid: Option<String>,
    /// The nonce the collector says it used (NVAT); the report's request
    /// carries the one that counts.
    pub nonce: Option<SpdmNonce>,
    /// The NVML attestation report bytes (SPDM request ‖ response).
    #[serde(with = "crate::hex::base64")]
    pub report: Vec<u8>,
    /// The PEM device chain, leaf first, as sent.
    #[serde(serialize_with = "serialize_text")]
    pub cert_chain_pem: Vec<u8>,
    /// How `evidence` was encoded on the wire.
    pub evidence_encoding: EvidenceEncoding,
    /// Other fields, kept as received (`version`, `driver_version`, …).
    pub extra: BTreeMap<String, Value>,
}

impl GpuEvidenceEntry {
    /// An entry for freshly collected (or simulated) evidence.
    pub fn new(
        arch: GpuArch,
        uuid: Option<String>,
        report: Vec<u8>,
        cert_chain_pem: Vec<u8>,
    ) -> Self {
        Self {
            arch,
            uuid,
            nonce: None,
            report,
            cert_chain_pem,
            evidence_encoding: EvidenceEncoding::Base64,
            extra: BTreeMap::new(),
        }
    }

    /// Parses the report bytes.
    pub fn parse_report(&self) -> Result<AttestationReport, ParseError> {
        AttestationReport::parse(&self.report)
    }

    /// Parses the certificate chain.
    pub fn parse_chain(&self) -> Result<DeviceChain, ParseError> {
        DeviceChain::from_pem(&self.cert_chain_pem)
    }

    fn from_json(index: usize, value: &Value) -> Result<Self, ParseError> {
        let err = |field: &'static str, reason: String| {
            ParseError::document(FORMAT, field, format!("entry {index}: {reason}"))
        };
        let obj = value
            .as_object()
            .ok_or_else(|| err("entry", "not an object".to_owned()))?;
        let string = |field: &'static str| -> Result<Option<&str>, ParseError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(err(field, "not a string".to_owned())),
            }
        };
        let required =
            |field: &'static str| string(field)?.ok_or_else(|| err(field, "missing".to_owned()));
        let arch = GpuArch::from_name(required("arch")?);
        let uuid = string("uuid")?.map(str::to_owned);
        let nonce = string("nonce")?
            .map(|n| SpdmNonce::from_hex(n).map_err(|e| err("nonce", e.to_string())))
            .transpose()?;
        let evidence = required("evidence")?.trim();
        let (report, evidence_encoding) = match ::hex::decode(evidence) {
            Ok(bytes) => (bytes, EvidenceEncoding::Hex),
            Err(_) => (
                STANDARD
                    .decode(strip_ws(evidence))
                    .map_err(|e| err("evidence", format!("neither hex nor base64: {e}")))?,
                EvidenceEncoding::Base64,
            ),
        };
        let cert_chain_pem = STANDARD
            .decode(strip_ws(required("certificate")?))
            .map_err(|e| err("certificate", format!("not base64: {e}")))?;
        let extra = obj
            .iter()
            .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            arch,
            uuid,
            nonce,
            report,
            cert_chain_pem,
            evidence_encoding,
            extra,
        })
    }

    fn to_json(&self, arch: &str) -> Value {
        let mut obj: Map<String, Value> = self
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        obj.insert("arch".into(), Value::from(arch));
        if let Some(uuid) = &self.uuid {
            obj.insert("uuid".into(), Value::from(uuid.as_str()));
        }
        if let Some(nonce) = &self.nonce {
            obj.insert("nonce".into(), Value::from(nonce.to_hex()));
        }
        obj.insert(
            "evidence".into(),
            Value::from(STANDARD.encode(&self.report)),
        );
        obj.insert(
            "certificate".into(),
            Value::from(STANDARD.encode(&self.cert_chain_pem)),
        );
        Value::Object(obj)
    }
}

const KNOWN_FIELDS: [&str; 5] = ["arch", "uuid", "nonce", "evidence", "certificate"];

/// The evidence of every GPU in the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuEvidenceList {
    /// The shape it was received in.
    pub shape: EvidenceShape,
    /// One entry per GPU, in the order received.
    pub entries: Vec<GpuEvidenceEntry>,
}

impl GpuEvidenceList {
    /// A list in our KBS shape.
    pub fn new(entries: Vec<GpuEvidenceEntry>) -> Self {
        Self {
            shape: EvidenceShape::DeviceEvidenceList,
            entries,
        }
    }

    /// Parses either shape from JSON text.
    pub fn parse_json(json: &[u8]) -> Result<Self, ParseError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| ParseError::document(FORMAT, "json", e))?;
        Self::from_value(&value)
    }

    /// Parses either shape from a JSON value (e.g. the `nvidia` member of
    /// KBS `additional_evidence`).
    pub fn from_value(value: &Value) -> Result<Self, ParseError> {
        let (shape, list) = match value {
            Value::Array(list) => (EvidenceShape::NvatList, list),
            Value::Object(obj) => match obj.get("device_evidence_list") {
                Some(Value::Array(list)) => (EvidenceShape::DeviceEvidenceList, list),
                Some(_) => {
                    return Err(ParseError::document(
                        FORMAT,
                        "device_evidence_list",
                        "not an array",
                    ));
                }
                None => {
                    return Err(ParseError::document(
                        FORMAT,
                        "device_evidence_list",
                        "missing (expected a list or {\"device_evidence_list\": [...]})",
                    ));
                }
            },
            _ => {
                return Err(ParseError::document(
                    FORMAT,
                    "json",
                    "expected a list or {\"device_evidence_list\": [...]}",
                ));
            }
        };
        let entries = list
            .iter()
            .enumerate()
            .map(|(i, v)| GpuEvidenceEntry::from_json(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { shape, entries })
    }

    /// `{"device_evidence_list": [{"arch", "uuid", "evidence", "certificate", …}]}`
    /// with base64 encodings and Trustee's architecture names; `nonce` and
    /// extra fields are included when present.
    pub fn to_kbs_json(&self) -> Value {
        let list = self
            .entries
            .iter()
            .map(|e| e.to_json(e.arch.kbs_name()))
            .collect::<Vec<_>>();
        let mut obj = Map::new();
        obj.insert("device_evidence_list".into(), Value::Array(list));
        Value::Object(obj)
    }

    /// The NVAT list shape, with NVAT's architecture names.
    pub fn to_nvat_json(&self) -> Value {
        Value::Array(
            self.entries
                .iter()
                .map(|e| e.to_json(e.arch.nvat_name()))
                .collect(),
        )
    }
}

fn strip_ws(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

fn serialize_text<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v))
}

/// Fuzz body: parse JSON evidence; if it parses, the KBS and NVAT
/// re-encodings parse back to the same entries (encoding aside). Skipped for
/// lists holding a report whose base64 is also valid hex: the wire format is
/// ambiguous there (as in Trustee); an SPDM report never is (its base64
/// starts `EeAB/`).
pub fn fuzz_roundtrip(data: &[u8]) {
    let ambiguous = |r: &[u8]| ::hex::decode(STANDARD.encode(r)).is_ok();
    if let Ok(list) = GpuEvidenceList::parse_json(data) {
        if list.entries.iter().any(|e| ambiguous(&e.report)) {
            return;
        }
        for (out, shape) in [
            (list.to_kbs_json(), EvidenceShape::DeviceEvidenceList),
            (list.to_nvat_json(), EvidenceShape::NvatList),
        ] {
            let back = GpuEvidenceList::from_value(&out)
                .unwrap_or_else(|e| panic!("re-encoded evidence refused: {e}"));
            assert_eq!(back.shape, shape);
            assert_eq!(back.entries.len(), list.entries.len());
            for (a, b) in back.entries.iter().zip(&list.entries) {
                assert_eq!(
                    (
                        &a.arch,
                        &a.uuid,
                        &a.nonce,
                        &a.report,
                        &a.cert_chain_pem,
                        &a.extra
                    ),
                    (
                        &b.arch,
                        &b.uuid,
                        &b.nonce,
                        &b.report,
                        &b.cert_chain_pem,
                        &b.extra
                    )
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(json: &str) -> (&'static str, String) {
        match GpuEvidenceList::parse_json(json.as_bytes()).unwrap_err() {
            ParseError::Document { field, reason, .. } => (field, reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_shapes_and_both_encodings() {
        let nvat = r#"[{"arch":"HOPPER","nonce":"0000000000000000000000000000000000000000000000000000000000000001",
            "evidence":"EeAB/w==","certificate":"LS0t","version":"1.0"}]"#;
        let l = GpuEvidenceList::parse_json(nvat.as_bytes()).unwrap();
        assert_eq!(l.shape, EvidenceShape::NvatList);
        let e = &l.entries[0];
        assert_eq!(e.arch, GpuArch::Hopper);
        assert_eq!(e.report, [0x11, 0xe0, 0x01, 0xff]);
        assert_eq!(e.evidence_encoding, EvidenceEncoding::Base64);
        assert_eq!(e.cert_chain_pem, b"---");
        assert_eq!(e.nonce.unwrap().0[31], 1);
        assert_eq!(e.extra["version"], "1.0");

        let kbs = r#"{"device_evidence_list":[{"arch":"Blackwell","uuid":"GPU-1","evidence":"11e001ff","certificate":"LS0t"},
            {"arch":"LS10","evidence":"","certificate":""}]}"#;
        let l = GpuEvidenceList::parse_json(kbs.as_bytes()).unwrap();
        assert_eq!(l.shape, EvidenceShape::DeviceEvidenceList);
        assert_eq!(l.entries[0].arch, GpuArch::Blackwell);
        assert_eq!(l.entries[0].uuid.as_deref(), Some("GPU-1"));
        assert_eq!(l.entries[0].evidence_encoding, EvidenceEncoding::Hex);
        assert_eq!(l.entries[0].report, [0x11, 0xe0, 0x01, 0xff]);
        assert_eq!(l.entries[1].arch, GpuArch::Other("LS10".into()));
        let out = l.to_kbs_json();
        assert_eq!(out["device_evidence_list"][0]["arch"], "Blackwell");
        assert_eq!(out["device_evidence_list"][0]["evidence"], "EeAB/w==");
        assert_eq!(l.to_nvat_json()[0]["arch"], "BLACKWELL");
        fuzz_roundtrip(kbs.as_bytes());
        fuzz_roundtrip(nvat.as_bytes());
    }

    #[test]
    fn errors_name_entry_and_field() {
        let (f, r) = field_of(r#"[{"arch":"HOPPER","evidence":"!!","certificate":""}]"#);
        assert_eq!(f, "evidence");
        assert!(r.starts_with("entry 0:"), "{r}");
        let (f, r) = field_of(
            r#"{"device_evidence_list":[{"arch":"Hopper","evidence":"","certificate":""},{"arch":"Hopper","evidence":""}]}"#,
        );
        assert_eq!((f, r.as_str()), ("certificate", "entry 1: missing"));
        assert_eq!(field_of(r#"[{"evidence":"","certificate":""}]"#).0, "arch");
        assert_eq!(
            field_of(r#"[{"arch":1,"evidence":"","certificate":""}]"#).0,
            "arch"
        );
        assert_eq!(
            field_of(r#"[{"arch":"x","nonce":"00","evidence":"","certificate":""}]"#).0,
            "nonce"
        );
        assert_eq!(
            field_of(r#"[{"arch":"x","evidence":"","certificate":"%"}]"#).0,
            "certificate"
        );
        assert_eq!(field_of(r#"[1]"#).0, "entry");
        assert_eq!(field_of(r#"{"a":1}"#).0, "device_evidence_list");
        assert_eq!(
            field_of(r#"{"device_evidence_list":{}}"#).0,
            "device_evidence_list"
        );
        assert_eq!(field_of("3").0, "json");
        assert_eq!(field_of("[").0, "json");
    }

    #[test]
    fn fuzz_body_survives_truncations_and_bit_flips() {
        let text = br#"{"device_evidence_list":[{"arch":"Hopper","uuid":"u","evidence":"11e0","certificate":"LS0t","x":[1]}]}"#;
        for cut in 0..=text.len() {
            fuzz_roundtrip(&text[..cut]);
        }
        for bit in 0..text.len() * 8 {
            let mut b = text.to_vec();
            b[bit / 8] ^= 1 << (bit % 8);
            fuzz_roundtrip(&b);
        }
    }
}
