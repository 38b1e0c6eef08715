//! The evidence bundle: what an attester sends and a verifier appraises.
//!
//! It mirrors the body of the KBS `POST /kbs/v0/attest` request
//! (specs/kbs-protocol.md §2): `runtime-data`, and `tee-evidence` with
//! `primary_evidence` and the `additional_evidence` string. Raw evidence bytes
//! are kept exactly as received (base64 in JSON), because signatures are
//! checked over the bytes received, never over a re-encoding.
//!
//! Shapes of `primary_evidence`:
//! - `snp`: `{"report": b64(1184-byte report), "cert_table": b64(GHCB table)?}`.
//!   Trustee's own SNP shape carries the `sev` crate's serde object instead of
//!   raw bytes; accepting that form is the key broker's job (it converts it
//!   back to the raw report) and is not done here.
//! - `tdx`: `{"quote": b64(DCAP quote), "cc_eventlog": b64(CCEL)?}`, as Trustee.
//!
//! `additional_evidence` is the JSON string of `{"nvidia": {"device_evidence_list": […]}}`
//! (or empty), kept as the exact string that was hashed into report_data.
//!
//! Nothing here checks a signature or decides anything; `simulated` is the
//! producer's label for display only: the verifier decides by trust roots.

use serde::{Deserialize, Serialize};

use crate::binding::RuntimeData;
use crate::digest::Sha256Digest;
use crate::error::ParseError;

const FORMAT: &str = "evidence bundle";

/// The CPU TEE that produced the primary evidence (KBS `tee` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tee {
    Snp,
    Tdx,
}

impl Tee {
    /// The KBS wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Snp => "snp",
            Self::Tdx => "tdx",
        }
    }
}

/// SEV-SNP primary evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpEvidence {
    /// The attestation report, 1184 bytes as produced by the firmware.
    #[serde(with = "crate::hex::base64")]
    pub report: Vec<u8>,
    /// The GHCB certificate table (configfs-tsm `auxblob`), when the host supplied one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_base64")]
    pub cert_table: Option<Vec<u8>>,
}

/// TDX primary evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxEvidence {
    /// The DCAP quote as produced by the quoting enclave.
    #[serde(with = "crate::hex::base64")]
    pub quote: Vec<u8>,
    /// The CCEL event log, when collected.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_base64")]
    pub cc_eventlog: Option<Vec<u8>>,
}

/// Primary (CPU) evidence of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryEvidence {
    Snp(SnpEvidence),
    Tdx(TdxEvidence),
}

impl PrimaryEvidence {
    pub fn tee(&self) -> Tee {
        match self {
            Self::Snp(_) => Tee::Snp,
            Self::Tdx(_) => Tee::Tdx,
        }
    }
}

/// One attestation's evidence: CPU evidence, device evidence, and the runtime
/// data both are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceBundle {
    pub runtime_data: RuntimeData,
    pub primary: PrimaryEvidence,
    /// Exactly the string hashed into report_data; empty when there is no device.
    pub additional_evidence: String,
    /// The producer says this came from the simulator. Informational only.
    pub simulated: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    tee: Tee,
    #[serde(rename = "runtime-data")]
    runtime_data: serde_json::Value,
    #[serde(rename = "tee-evidence")]
    tee_evidence: WireTeeEvidence,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    simulated: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTeeEvidence {
    primary_evidence: serde_json::Value,
    #[serde(default)]
    additional_evidence: String,
}

impl EvidenceBundle {
    /// Parses the bundle's JSON text; every failure names the member.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| ParseError::document(FORMAT, "(root)", e))?;
        let runtime_data = RuntimeData::from_value(wire.runtime_data)?;
        let primary = match wire.tee {
            Tee::Snp => PrimaryEvidence::Snp(
                serde_json::from_value(wire.tee_evidence.primary_evidence).map_err(|e| {
                    ParseError::document(FORMAT, "tee-evidence.primary_evidence", e)
                })?,
            ),
            Tee::Tdx => PrimaryEvidence::Tdx(
                serde_json::from_value(wire.tee_evidence.primary_evidence).map_err(|e| {
                    ParseError::document(FORMAT, "tee-evidence.primary_evidence", e)
                })?,
            ),
        };
        Ok(Self {
            runtime_data,
            primary,
            additional_evidence: wire.tee_evidence.additional_evidence,
            simulated: wire.simulated,
        })
    }

    /// The bundle as a JSON value in the wire shape.
    pub fn to_value(&self) -> serde_json::Value {
        let primary_evidence = match &self.primary {
            PrimaryEvidence::Snp(e) => serde_json::to_value(e),
            PrimaryEvidence::Tdx(e) => serde_json::to_value(e),
        }
        .unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "tee": self.primary.tee(),
            "runtime-data": self.runtime_data,
            "tee-evidence": {
                "primary_evidence": primary_evidence,
                "additional_evidence": self.additional_evidence,
            },
            "simulated": self.simulated,
        })
    }

    /// Pretty JSON text.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }

    /// SHA-256 over the RFC 8785 canonical JSON of the bundle: the digest the
    /// audit log and receipts refer to. Stable across re-serialization.
    pub fn digest(&self) -> Sha256Digest {
        let canonical = serde_json_canonicalizer::to_vec(&self.to_value()).unwrap_or_default();
        Sha256Digest::of(&canonical)
    }

    /// The report_data this bundle's CPU evidence must carry.
    pub fn expected_report_data(&self) -> crate::binding::CpuReportData {
        self.runtime_data.cpu_report_data(&self.additional_evidence)
    }
}

/// `Option<Vec<u8>>` as optional base64.
mod opt_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| STANDARD.decode(t.trim()).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> EvidenceBundle {
        EvidenceBundle {
            runtime_data: RuntimeData::new(
                "bm9uY2U=",
                json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}),
            ),
            primary: PrimaryEvidence::Snp(SnpEvidence {
                report: vec![1, 2, 3],
                cert_table: Some(vec![4, 5]),
            }),
            additional_evidence: r#"{"nvidia":{"device_evidence_list":[]}}"#.into(),
            simulated: true,
        }
    }

    #[test]
    fn roundtrip_keeps_bytes_and_digest() {
        let b = bundle();
        let text = b.to_json_pretty();
        let back = EvidenceBundle::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.digest(), b.digest());
        let mut changed = b.clone();
        changed.additional_evidence.push(' ');
        assert_ne!(changed.digest(), b.digest());
    }

    #[test]
    fn tdx_shape_matches_trustee_names() {
        let v = json!({
            "tee": "tdx",
            "runtime-data": {"nonce": "n", "tee-pubkey": {"kty": "EC"}},
            "tee-evidence": {"primary_evidence": {"quote": "AQID", "cc_eventlog": "BA=="}, "additional_evidence": ""}
        });
        let b = EvidenceBundle::from_json(v.to_string().as_bytes()).unwrap();
        match &b.primary {
            PrimaryEvidence::Tdx(t) => {
                assert_eq!(t.quote, vec![1, 2, 3]);
                assert_eq!(t.cc_eventlog.as_deref(), Some(&[4u8][..]));
            }
            PrimaryEvidence::Snp(_) => panic!("wrong kind"),
        }
        assert!(!b.simulated);
    }

    #[test]
    fn malformed_bundles_name_the_member() {
        let bad_b64 = json!({
            "tee": "snp",
            "runtime-data": {"nonce": "n", "tee-pubkey": {}},
            "tee-evidence": {"primary_evidence": {"report": "!!"}}
        });
        let err = EvidenceBundle::from_json(bad_b64.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("tee-evidence.primary_evidence"));
        let bad_rd = json!({
            "tee": "snp",
            "runtime-data": {"tee-pubkey": {}},
            "tee-evidence": {"primary_evidence": {"report": ""}}
        });
        let err = EvidenceBundle::from_json(bad_rd.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("nonce"));
        assert!(EvidenceBundle::from_json(b"{").is_err());
        let unknown_tee =
            json!({"tee": "sgx", "runtime-data": {}, "tee-evidence": {"primary_evidence": {}}});
        assert!(EvidenceBundle::from_json(unknown_tee.to_string().as_bytes()).is_err());
    }
}
