//! The binding chain (DESIGN.md §3): how a verifier nonce, the session keys and
//! the model commitment get into the GPU SPDM nonce and the CPU report_data.
//!
//! ```text
//! runtime_data  = {"nonce": N, "tee-pubkey": JWK, ["receipt-key": JWK, "model": "sha256:…", "agent": {…}]}
//! h             = SHA-384(JCS(runtime_data))                   (RFC 8785 canonical JSON)
//! GPU nonce     = h[0..32]
//! report_data   = SHA-384(JCS(runtime_data ∪ {"additional-evidence": <JSON string of {"nvidia": …}>})) ‖ 0^16
//! ```
//!
//! For a client that sends only `nonce` and `tee-pubkey` these are exactly the
//! bytes Trustee's KBS client and server compute (guest-components
//! `rcar_client.rs` `get_composite_evidence`): SHA-384, JCS, the
//! `additional-evidence` member always present and an empty string when there
//! is no device. The extension members are optional for the KBS and required
//! by policies that need them.
//!
//! This module computes digests only. Comparing them with evidence is the
//! verifier's job, and it must compare exact lengths: nothing here pads or
//! truncates an *expected* value supplied from outside.

use serde_json::{Map, Value};
use sha2::{Digest, Sha384};

use crate::digest::Sha384Digest;
use crate::error::ParseError;

crate::byte_newtype!(
    /// The 32-byte nonce handed to the GPU (SPDM GET_MEASUREMENTS), `h[0..32]`.
    pub struct GpuNonce(32);
);

crate::byte_newtype!(
    /// The 64 bytes the CPU TEE binds into its report (SNP REPORT_DATA, TDX REPORTDATA):
    /// a SHA-384 digest followed by 16 zero bytes.
    pub struct CpuReportData(64);
);

/// Member names of `runtime_data`.
pub mod member {
    pub const NONCE: &str = "nonce";
    pub const TEE_PUBKEY: &str = "tee-pubkey";
    pub const RECEIPT_KEY: &str = "receipt-key";
    pub const MODEL: &str = "model";
    pub const AGENT: &str = "agent";
    /// Added only for the CPU digest; never part of `runtime_data` itself.
    pub const ADDITIONAL_EVIDENCE: &str = "additional-evidence";
}

/// The `runtime_data` object, kept as the JSON members that were received.
///
/// Unknown members are kept: they are hashed like every other member, so a
/// client's extension can never be silently dropped from the binding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RuntimeData(Map<String, Value>);

impl RuntimeData {
    /// The plain KBS form: `{"nonce", "tee-pubkey"}`.
    pub fn new(nonce: impl Into<String>, tee_pubkey: Value) -> Self {
        let mut m = Map::new();
        m.insert(member::NONCE.into(), Value::String(nonce.into()));
        m.insert(member::TEE_PUBKEY.into(), tee_pubkey);
        Self(m)
    }

    /// Adds the receipt-signing key (a public JWK).
    pub fn with_receipt_key(mut self, jwk: Value) -> Self {
        self.0.insert(member::RECEIPT_KEY.into(), jwk);
        self
    }

    /// Adds the model commitment (`sha256:<hex>`).
    pub fn with_model(mut self, commitment: impl Into<String>) -> Self {
        self.0
            .insert(member::MODEL.into(), Value::String(commitment.into()));
        self
    }

    /// Adds the agent build description.
    pub fn with_agent(mut self, agent: Value) -> Self {
        self.0.insert(member::AGENT.into(), agent);
        self
    }

    /// Parses `runtime_data` received from a client: a JSON object with a string
    /// `nonce` and an object `tee-pubkey`; `additional-evidence` is refused
    /// because it would collide with the CPU digest construction.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        const FORMAT: &str = "runtime_data";
        let Value::Object(map) = value else {
            return Err(ParseError::document(FORMAT, "(root)", "not a JSON object"));
        };
        match map.get(member::NONCE) {
            Some(Value::String(_)) => {}
            Some(_) => return Err(ParseError::document(FORMAT, member::NONCE, "not a string")),
            None => return Err(ParseError::document(FORMAT, member::NONCE, "missing")),
        }
        match map.get(member::TEE_PUBKEY) {
            Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(ParseError::document(
                    FORMAT,
                    member::TEE_PUBKEY,
                    "not a JSON object",
                ));
            }
            None => return Err(ParseError::document(FORMAT, member::TEE_PUBKEY, "missing")),
        }
        if map.contains_key(member::ADDITIONAL_EVIDENCE) {
            return Err(ParseError::document(
                FORMAT,
                member::ADDITIONAL_EVIDENCE,
                "reserved for the CPU digest; must not appear in runtime_data",
            ));
        }
        if map.get(member::MODEL).is_some_and(|v| !v.is_string()) {
            return Err(ParseError::document(FORMAT, member::MODEL, "not a string"));
        }
        Ok(Self(map))
    }

    /// Parses JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ParseError::document("runtime_data", "(root)", e))?;
        Self::from_value(value)
    }

    /// The nonce string as sent by the verifier (base64 in the KBS protocol).
    pub fn nonce(&self) -> &str {
        self.0
            .get(member::NONCE)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The TEE public key (JWK).
    pub fn tee_pubkey(&self) -> Option<&Value> {
        self.0.get(member::TEE_PUBKEY)
    }

    /// The receipt key (JWK), when the client bound one.
    pub fn receipt_key(&self) -> Option<&Value> {
        self.0.get(member::RECEIPT_KEY)
    }

    /// The model commitment, when the client bound one.
    pub fn model(&self) -> Option<&str> {
        self.0.get(member::MODEL).and_then(Value::as_str)
    }

    /// The agent description, when the client bound one.
    pub fn agent(&self) -> Option<&Value> {
        self.0.get(member::AGENT)
    }

    /// All members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.0
    }

    /// `JCS(runtime_data)`: the exact bytes behind [`Self::device_digest`].
    pub fn canonical(&self) -> Vec<u8> {
        jcs(&self.0)
    }

    /// `h = SHA-384(JCS(runtime_data))`.
    pub fn device_digest(&self) -> Sha384Digest {
        Sha384Digest::of(&self.canonical())
    }

    /// The GPU SPDM nonce: the first 32 bytes of `h`.
    pub fn gpu_nonce(&self) -> GpuNonce {
        let h = self.device_digest().into_bytes();
        let mut n = [0u8; 32];
        n.copy_from_slice(&h[..32]);
        GpuNonce(n)
    }

    /// `JCS(runtime_data ∪ {"additional-evidence": additional_evidence})`.
    pub fn canonical_with_additional(&self, additional_evidence: &str) -> Vec<u8> {
        let mut m = self.0.clone();
        m.insert(
            member::ADDITIONAL_EVIDENCE.into(),
            Value::String(additional_evidence.to_owned()),
        );
        jcs(&m)
    }

    /// The CPU report_data: SHA-384 of the canonical runtime data with the
    /// additional evidence string (empty when there is no device), zero-padded to 64.
    pub fn cpu_report_data(&self, additional_evidence: &str) -> CpuReportData {
        let digest: [u8; 48] =
            Sha384::digest(self.canonical_with_additional(additional_evidence)).into();
        let mut out = [0u8; 64];
        for (o, d) in out.iter_mut().zip(digest) {
            *o = d;
        }
        CpuReportData(out)
    }
}

/// RFC 8785 canonical JSON of a map. Serializing a `serde_json::Map` cannot
/// fail (no non-string keys, no non-finite numbers), so an error here is a bug
/// in the canonicalizer; it is surfaced as canonical `null` rather than a panic,
/// which can never match a genuine binding.
fn jcs(map: &Map<String, Value>) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(map).unwrap_or_else(|_| b"null".to_vec())
}

/// The `additional_evidence` string for a list of NVIDIA device evidence
/// entries (each `{"arch", "uuid", "evidence", "certificate"}`): the JSON text
/// of `{"nvidia": {"device_evidence_list": [...]}}`, or the empty string when
/// there are no GPUs, as Trustee's client sends.
pub fn nvidia_additional_evidence(device_evidence_list: &[Value]) -> String {
    if device_evidence_list.is_empty() {
        return String::new();
    }
    let value = serde_json::json!({"nvidia": {"device_evidence_list": device_evidence_list}});
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A fixed P-256 JWK in the shape guest-components' TeeKeyPair exports.
    fn tee_jwk() -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": "ECDH-ES+A256KW",
            "x": "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis",
            "y": "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"
        })
    }

    const NONCE: &str = "t0pYjVJwNCrqZ2bGVYSxRb4d+7cAfTk6Ka0G4ffg8Qc=";

    // The expected digests below were computed independently with Python's
    // hashlib over json.dumps(obj, sort_keys=True, separators=(",", ":")),
    // which equals RFC 8785 JCS for these ASCII-only, integer-free objects.

    #[test]
    fn trustee_plain_client_vector() {
        let rd = RuntimeData::new(NONCE, tee_jwk());
        assert_eq!(
            String::from_utf8(rd.canonical()).unwrap(),
            concat!(
                r#"{"nonce":"t0pYjVJwNCrqZ2bGVYSxRb4d+7cAfTk6Ka0G4ffg8Qc=","#,
                r#""tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","#,
                r#""x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","#,
                r#""y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}}"#
            )
        );
        assert_eq!(rd.device_digest().to_hex(), PLAIN_H);
        assert_eq!(rd.gpu_nonce().to_hex(), &PLAIN_H[..64]);
        // No GPU: the additional evidence is the empty string, still present.
        assert_eq!(
            rd.cpu_report_data("").to_hex(),
            format!("{PLAIN_CPU_NO_GPU}{}", "0".repeat(32))
        );
    }

    #[test]
    fn extended_runtime_data_vector() {
        let rd = RuntimeData::new(NONCE, tee_jwk())
            .with_model("sha256:0000000000000000000000000000000000000000000000000000000000000001")
            .with_agent(json!({"name": "guest-agent", "version": "0.1.0"}));
        assert_eq!(rd.device_digest().to_hex(), EXT_H);
        let ae = nvidia_additional_evidence(&[json!({"arch": "HOPPER", "uuid": "GPU-0"})]);
        assert_eq!(
            ae,
            r#"{"nvidia":{"device_evidence_list":[{"arch":"HOPPER","uuid":"GPU-0"}]}}"#
        );
        assert_eq!(
            rd.cpu_report_data(&ae).to_hex(),
            format!("{EXT_CPU}{}", "0".repeat(32))
        );
    }

    #[test]
    fn every_member_changes_the_binding() {
        let base = RuntimeData::new(NONCE, tee_jwk());
        let other_nonce = RuntimeData::new("AAAA", tee_jwk());
        let with_model = base.clone().with_model("sha256:00");
        assert_ne!(base.device_digest(), other_nonce.device_digest());
        assert_ne!(base.device_digest(), with_model.device_digest());
        assert_ne!(base.cpu_report_data(""), base.cpu_report_data("{}"));
    }

    #[test]
    fn parse_refuses_malformed_runtime_data() {
        assert!(RuntimeData::from_json(b"[]").is_err());
        assert!(RuntimeData::from_json(br#"{"tee-pubkey":{}}"#).is_err());
        assert!(RuntimeData::from_json(br#"{"nonce":1,"tee-pubkey":{}}"#).is_err());
        assert!(RuntimeData::from_json(br#"{"nonce":"n","tee-pubkey":"k"}"#).is_err());
        let err =
            RuntimeData::from_json(br#"{"nonce":"n","tee-pubkey":{},"additional-evidence":""}"#)
                .unwrap_err();
        assert_eq!(err.field(), Some("additional-evidence"));
        let ok = RuntimeData::from_json(br#"{"nonce":"n","tee-pubkey":{"kty":"EC"},"x-ext":1}"#)
            .unwrap();
        assert_eq!(ok.nonce(), "n");
        assert!(ok.canonical().windows(5).any(|w| w == b"x-ext"));
    }

    #[test]
    fn no_gpu_means_empty_additional_evidence() {
        assert_eq!(nvidia_additional_evidence(&[]), "");
    }

    const PLAIN_H: &str = "678100d0e087a715f41338e41f274237ab195862a3b972fb8c3d0381828b91f8a2de17a0cf5b5b1095faa8d3181fe4a9";
    const PLAIN_CPU_NO_GPU: &str = "dfde351d26d41cdfa9a1eb03f8547948792d691116c695f10a1702fad47a732530a5865dda165af102bfb69902734c7e";
    const EXT_H: &str = "131289f872082890f8c6ee7dd6b11703634f9ae5c8a520001742fbb8c99cb57159babd2c9aa83d90fa7d0774c73d9676";
    const EXT_CPU: &str = "06044522cf098474f8cec463e3e34fc62e5a6fe1500538f5c0f5e2cbcea718226d2f04828d70572d06e6cf34470a6568";
}
