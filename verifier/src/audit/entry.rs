//! One audit-log entry: a decision (appraisal or resource request, allow or
//! deny) as canonical JSON (RFC 8785 JCS).
//!
//! The canonical bytes are what the Merkle tree hashes, so an entry must
//! serialize to exactly one byte string: [`AuditEntry::from_canonical_bytes`]
//! refuses any input that does not re-encode to itself. Each entry is at most
//! [`MAX_ENTRY_LEN`] bytes (C2SP tlog-tiles stores entries with a uint16
//! length); raw evidence never goes in an entry, only its digest (the log
//! stores the bytes beside it, see `AuditLog::put_evidence`).
//! Never decides anything: it records the decision the caller made.

use serde::{Deserialize, Deserializer, Serialize};

use crate::denial::{Denial, Detail};
use crate::time::UnixTime;

/// The largest canonical entry, in bytes (C2SP tlog-tiles entry bundles use a
/// uint16 length prefix).
pub const MAX_ENTRY_LEN: usize = 0xFFFF;

/// A decision recorded in the audit log.
///
/// Optional fields are left out of the JSON when absent. Digests are written
/// `sha256:<hex>` (`evidence_digest` must be what `AuditLog::put_evidence`
/// returned, prefixed, so a reviewer can fetch the bytes and re-appraise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// When the decision was made (RFC 3339, UTC, whole seconds).
    #[serde(deserialize_with = "rfc3339")]
    pub time: UnixTime,
    /// The request (or session) this decision answered.
    pub request_id: String,
    /// What was decided on.
    pub kind: EntryKind,
    /// The resource requested (`kind = resource`), e.g. `kbs:///repo/type/tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `sha256:<hex>` of the raw evidence bundle, stored beside the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_digest: Option<String>,
    /// RFC 7638 thumbprint of the TEE key the result or secret was bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee_key_thumbprint: Option<String>,
    /// `sha256:<hex>` of the EAR token issued (or presented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ear_digest: Option<String>,
    /// The EAR's overall status (`affirming`, `warning`, `contraindicated`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ear_status: Option<String>,
    /// The policy that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// `sha256:<hex>` of the policy text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// Allow or deny.
    pub decision: Decision,
    /// Why (every denial for a deny; may be empty for an allow).
    #[serde(default)]
    pub reasons: Vec<Reason>,
}

/// What an entry decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// An evidence appraisal (attestation).
    Appraisal,
    /// A resource (secret) request to the key broker.
    Resource,
    /// An admin API call (resource, policy or reference-value update), allowed or refused.
    Admin,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Accepted / released.
    Allow,
    /// Refused.
    Deny,
}

/// One reason for a decision: a stable code and the values involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Stable code (a `DenialCode` string, or a policy's own code).
    pub code: String,
    /// Human-readable text.
    pub message: String,
    /// The field concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The value required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The value found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

/// An entry that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The canonical JSON is larger than [`MAX_ENTRY_LEN`].
    #[error("entry is {len} bytes of canonical JSON, over the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON of the entry's shape.
    #[error("entry is not valid: {0}")]
    Json(String),
    /// Valid, but not the canonical (JCS) encoding of itself.
    #[error("entry bytes are not canonical JSON (RFC 8785)")]
    NotCanonical,
}

impl AuditEntry {
    /// An entry with only the required fields set.
    pub fn new(
        time: UnixTime,
        request_id: impl Into<String>,
        kind: EntryKind,
        decision: Decision,
    ) -> Self {
        Self {
            time,
            request_id: request_id.into(),
            kind,
            resource: None,
            evidence_digest: None,
            tee_key_thumbprint: None,
            ear_digest: None,
            ear_status: None,
            policy_id: None,
            policy_digest: None,
            decision,
            reasons: Vec::new(),
        }
    }

    /// The RFC 8785 canonical JSON bytes the log hashes (≤ [`MAX_ENTRY_LEN`]).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, EntryError> {
        let bytes =
            serde_json_canonicalizer::to_vec(self).map_err(|e| EntryError::Json(e.to_string()))?;
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLarge {
                len: bytes.len(),
                max: MAX_ENTRY_LEN,
            });
        }
        Ok(bytes)
    }

    /// Parses entry bytes, requiring them to be exactly the canonical encoding.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLarge {
                len: bytes.len(),
                max: MAX_ENTRY_LEN,
            });
        }
        let entry: Self =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Json(e.to_string()))?;
        if entry.canonical_bytes()? != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }
}

impl EntryKind {
    /// The JSON string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Appraisal => "appraisal",
            Self::Resource => "resource",
            Self::Admin => "admin",
        }
    }
}

impl Decision {
    /// The JSON string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl Reason {
    /// A reason with only a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
            expected: None,
            found: None,
        }
    }
}

impl From<&Denial> for Reason {
    fn from(d: &Denial) -> Self {
        let mut r = Self::new(d.code.as_str(), d.message.clone());
        match &d.detail {
            Detail::None => {}
            Detail::Mismatch {
                field,
                expected,
                found,
            } => {
                r.field = Some(field.clone());
                r.expected = Some(expected.clone());
                r.found = Some(found.clone());
            }
            Detail::Validity {
                subject,
                not_before,
                not_after,
                at,
            } => {
                r.field = Some(subject.clone());
                r.expected = Some(format!("{not_before}..{not_after}"));
                r.found = Some(at.to_string());
            }
            Detail::Value { field, value } => {
                r.field = Some(field.clone());
                r.found = Some(value.clone());
            }
        }
        r
    }
}

fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<UnixTime, D::Error> {
    let text = String::deserialize(d)?;
    UnixTime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::DenialCode;

    fn sample() -> AuditEntry {
        let mut e = AuditEntry::new(
            UnixTime(1_756_684_800),
            "req-1",
            EntryKind::Resource,
            Decision::Deny,
        );
        e.resource = Some("kbs:///default/key/model".into());
        e.reasons.push(Reason::from(&Denial::mismatch(
            DenialCode::MeasurementMismatch,
            "launch measurement differs",
            "measurement",
            "aa",
            "bb",
        )));
        e
    }

    #[test]
    fn canonical_form_is_pinned() {
        let bytes = sample().canonical_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"decision":"deny","kind":"resource","reasons":[{"code":"measurement_mismatch","expected":"aa","field":"measurement","found":"bb","message":"launch measurement differs"}],"request_id":"req-1","resource":"kbs:///default/key/model","time":"2025-09-01T00:00:00Z"}"#
        );
        assert_eq!(AuditEntry::from_canonical_bytes(&bytes).unwrap(), sample());
    }

    #[test]
    fn non_canonical_and_unknown_fields_are_refused() {
        let spaced = br#"{"decision": "deny","kind":"resource","reasons":[],"request_id":"r","time":"2025-09-01T00:00:00Z"}"#;
        assert_eq!(
            AuditEntry::from_canonical_bytes(spaced),
            Err(EntryError::NotCanonical)
        );
        let offset = br#"{"decision":"deny","kind":"resource","reasons":[],"request_id":"r","time":"2025-09-01T02:00:00+02:00"}"#;
        assert_eq!(
            AuditEntry::from_canonical_bytes(offset),
            Err(EntryError::NotCanonical)
        );
        let extra = br#"{"decision":"deny","extra":1,"kind":"resource","reasons":[],"request_id":"r","time":"2025-09-01T00:00:00Z"}"#;
        assert!(matches!(
            AuditEntry::from_canonical_bytes(extra),
            Err(EntryError::Json(_))
        ));
    }

    #[test]
    fn size_limit() {
        let mut e = sample();
        e.request_id = "x".repeat(MAX_ENTRY_LEN);
        assert!(matches!(
            e.canonical_bytes(),
            Err(EntryError::TooLarge { .. })
        ));
    }
}
