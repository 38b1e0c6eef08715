//! Why something was refused: a stable code, human text, and the offending values.
//!
//! Codes are part of the public interface (CLI `--json`, gRPC, EAR results,
//! audit entries). Their strings are written out below, never derived from
//! Rust identifiers, and a unit test pins every one, so renaming a variant can
//! never silently change a wire code.

use std::fmt;

use serde::Serialize;

use crate::time::UnixTime;

/// A stable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenialCode {
    // Evidence as a whole.
    EvidenceMalformed,
    UnsupportedFormat,
    UnsupportedAlgorithm,
    SignatureInvalid,
    ReportDataMismatch,
    NonceMismatch,
    // Certificate chains.
    ChainMalformed,
    ChainUntrusted,
    CertSignatureInvalid,
    CertExpired,
    CertNotYetValid,
    CertConstraintsInvalid,
    CertRevoked,
    CrlInvalid,
    CrlExpired,
    OcspInvalid,
    // AMD SEV-SNP.
    TcbMismatch,
    ChipIdMismatch,
    ProductMismatch,
    SigningKeyUnsupported,
    // Intel TDX.
    CollateralMissing,
    CollateralInvalid,
    CollateralExpired,
    FmspcMismatch,
    TcbLevelNotFound,
    TcbRevoked,
    QeReportInvalid,
    QeIdentityMismatch,
    QuoteVerificationFailed,
    EventLogMismatch,
    // NVIDIA GPU.
    FwidMismatch,
    RimMissing,
    RimSignatureInvalid,
    RimDigestMismatch,
    RimVersionMismatch,
    RimIndexConflict,
    MeasurementMismatch,
    MeasurementMissing,
    // Policy and broker.
    SimulationNotAllowed,
    PolicyRejected,
    DebugEnabled,
    TcbBelowMinimum,
    GpuModeRejected,
    ModelMismatch,
    BindingUnverified,
    // Receipts (`appraise::bundle::Verifier::verify_receipt`).
    /// The receipt does not parse or its signature does not verify.
    ReceiptInvalid,
    /// The receipt is not signed by the receipt key bound into the evidence.
    ReceiptKeyMismatch,
    /// The receipt names other evidence than the bundle given.
    EvidenceDigestMismatch,
    /// The EAR does not verify with the verifier's key (signature, profile, time).
    EarInvalid,
    /// The EAR is not the one the receipt names, or names another receipt key or nonce.
    EarMismatch,
    // Key broker protocol (KBS).
    SessionInvalid,
    TokenMissing,
    NonceReused,
    NonceExpired,
    ProtocolVersionMismatch,
    ResourceNotFound,
    BrokerError,
    // Admin API.
    /// An admin call without a valid admin token (missing, malformed, wrong
    /// key, expired, too long-lived), or with the admin API disabled.
    AdminUnauthorized,
    /// An authorized admin update that does not validate (policy does not
    /// compile, reference values malformed, bad resource path); nothing changed.
    AdminUpdateInvalid,
}

impl DenialCode {
    /// Every code, for the pinning test and for documentation.
    pub const ALL: &'static [DenialCode] = &[
        Self::EvidenceMalformed,
        Self::UnsupportedFormat,
        Self::UnsupportedAlgorithm,
        Self::SignatureInvalid,
        Self::ReportDataMismatch,
        Self::NonceMismatch,
        Self::ChainMalformed,
        Self::ChainUntrusted,
        Self::CertSignatureInvalid,
        Self::CertExpired,
        Self::CertNotYetValid,
        Self::CertConstraintsInvalid,
        Self::CertRevoked,
        Self::CrlInvalid,
        Self::CrlExpired,
        Self::OcspInvalid,
        Self::TcbMismatch,
        Self::ChipIdMismatch,
        Self::ProductMismatch,
        Self::SigningKeyUnsupported,
        Self::CollateralMissing,
        Self::CollateralInvalid,
        Self::CollateralExpired,
        Self::FmspcMismatch,
        Self::TcbLevelNotFound,
        Self::TcbRevoked,
        Self::QeReportInvalid,
        Self::QeIdentityMismatch,
        Self::QuoteVerificationFailed,
        Self::EventLogMismatch,
        Self::FwidMismatch,
        Self::RimMissing,
        Self::RimSignatureInvalid,
        Self::RimDigestMismatch,
        Self::RimVersionMismatch,
        Self::RimIndexConflict,
        Self::MeasurementMismatch,
        Self::MeasurementMissing,
        Self::SimulationNotAllowed,
        Self::PolicyRejected,
        Self::DebugEnabled,
        Self::TcbBelowMinimum,
        Self::GpuModeRejected,
        Self::ModelMismatch,
        Self::BindingUnverified,
        Self::ReceiptInvalid,
        Self::ReceiptKeyMismatch,
        Self::EvidenceDigestMismatch,
        Self::EarInvalid,
        Self::EarMismatch,
        Self::SessionInvalid,
        Self::TokenMissing,
        Self::NonceReused,
        Self::NonceExpired,
        Self::ProtocolVersionMismatch,
        Self::ResourceNotFound,
        Self::BrokerError,
        Self::AdminUnauthorized,
        Self::AdminUpdateInvalid,
    ];

    /// The wire string. Written out; never change one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EvidenceMalformed => "evidence_malformed",
            Self::UnsupportedFormat => "unsupported_format",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::SignatureInvalid => "signature_invalid",
            Self::ReportDataMismatch => "report_data_mismatch",
            Self::NonceMismatch => "nonce_mismatch",
            Self::ChainMalformed => "chain_malformed",
            Self::ChainUntrusted => "chain_untrusted",
            Self::CertSignatureInvalid => "cert_signature_invalid",
            Self::CertExpired => "cert_expired",
            Self::CertNotYetValid => "cert_not_yet_valid",
            Self::CertConstraintsInvalid => "cert_constraints_invalid",
            Self::CertRevoked => "cert_revoked",
            Self::CrlInvalid => "crl_invalid",
            Self::CrlExpired => "crl_expired",
            Self::OcspInvalid => "ocsp_invalid",
            Self::TcbMismatch => "tcb_mismatch",
            Self::ChipIdMismatch => "chip_id_mismatch",
            Self::ProductMismatch => "product_mismatch",
            Self::SigningKeyUnsupported => "signing_key_unsupported",
            Self::CollateralMissing => "collateral_missing",
            Self::CollateralInvalid => "collateral_invalid",
            Self::CollateralExpired => "collateral_expired",
            Self::FmspcMismatch => "fmspc_mismatch",
            Self::TcbLevelNotFound => "tcb_level_not_found",
            Self::TcbRevoked => "tcb_revoked",
            Self::QeReportInvalid => "qe_report_invalid",
            Self::QeIdentityMismatch => "qe_identity_mismatch",
            Self::QuoteVerificationFailed => "quote_verification_failed",
            Self::EventLogMismatch => "event_log_mismatch",
            Self::FwidMismatch => "fwid_mismatch",
            Self::RimMissing => "rim_missing",
            Self::RimSignatureInvalid => "rim_signature_invalid",
            Self::RimDigestMismatch => "rim_digest_mismatch",
            Self::RimVersionMismatch => "rim_version_mismatch",
            Self::RimIndexConflict => "rim_index_conflict",
            Self::MeasurementMismatch => "measurement_mismatch",
            Self::MeasurementMissing => "measurement_missing",
            Self::SimulationNotAllowed => "simulation_not_allowed",
            Self::PolicyRejected => "policy_rejected",
            Self::DebugEnabled => "debug_enabled",
            Self::TcbBelowMinimum => "tcb_below_minimum",
            Self::GpuModeRejected => "gpu_mode_rejected",
            Self::ModelMismatch => "model_mismatch",
            Self::BindingUnverified => "binding_unverified",
            Self::ReceiptInvalid => "receipt_invalid",
            Self::ReceiptKeyMismatch => "receipt_key_mismatch",
            Self::EvidenceDigestMismatch => "evidence_digest_mismatch",
            Self::EarInvalid => "ear_invalid",
            Self::EarMismatch => "ear_mismatch",
            Self::SessionInvalid => "session_invalid",
            Self::TokenMissing => "token_missing",
            Self::NonceReused => "nonce_reused",
            Self::NonceExpired => "nonce_expired",
            Self::ProtocolVersionMismatch => "protocol_version_mismatch",
            Self::ResourceNotFound => "resource_not_found",
            Self::BrokerError => "broker_error",
            Self::AdminUnauthorized => "admin_unauthorized",
            Self::AdminUpdateInvalid => "admin_update_invalid",
        }
    }

    /// Parses a wire string.
    pub fn from_str_code(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for DenialCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DenialCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for DenialCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_str_code(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown denial code {text:?}")))
    }
}

/// The values behind a denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// Nothing beyond the message.
    None,
    /// A field whose value differs from what was required.
    Mismatch {
        field: String,
        expected: String,
        found: String,
    },
    /// A certificate, CRL or collateral item used outside its validity window.
    Validity {
        subject: String,
        not_before: UnixTime,
        not_after: UnixTime,
        at: UnixTime,
    },
    /// A single offending value.
    Value { field: String, value: String },
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Mismatch {
                field,
                expected,
                found,
            } => write!(f, "{field}: expected {expected}, found {found}"),
            Self::Validity {
                subject,
                not_before,
                not_after,
                at,
            } => write!(
                f,
                "{subject} valid {not_before}..{not_after}, checked at {at}"
            ),
            Self::Value { field, value } => write!(f, "{field} = {value}"),
        }
    }
}

/// One reason for refusing evidence, a receipt or a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Denial {
    pub code: DenialCode,
    pub message: String,
    pub detail: Detail,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if self.detail != Detail::None {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl Denial {
    /// A denial with only a message.
    pub fn new(code: DenialCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: Detail::None,
        }
    }

    /// A denial for a field whose value differs from the required one.
    pub fn mismatch(
        code: DenialCode,
        message: impl Into<String>,
        field: impl Into<String>,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            detail: Detail::Mismatch {
                field: field.into(),
                expected: expected.to_string(),
                found: found.to_string(),
            },
        }
    }

    /// A denial for something used outside its validity window.
    pub fn validity(
        code: DenialCode,
        message: impl Into<String>,
        subject: impl Into<String>,
        not_before: UnixTime,
        not_after: UnixTime,
        at: UnixTime,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            detail: Detail::Validity {
                subject: subject.into(),
                not_before,
                not_after,
                at,
            },
        }
    }

    /// A denial naming one offending value.
    pub fn value(
        code: DenialCode,
        message: impl Into<String>,
        field: impl Into<String>,
        value: impl fmt::Display,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            detail: Detail::Value {
                field: field.into(),
                value: value.to_string(),
            },
        }
    }

    /// A parse failure of untrusted evidence.
    pub fn malformed(err: &attestor::ParseError) -> Self {
        let code = match err {
            attestor::ParseError::Unsupported { .. } => DenialCode::UnsupportedFormat,
            _ => DenialCode::EvidenceMalformed,
        };
        Self::new(code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code's wire string, pinned. Changing one of these is a breaking change.
    #[test]
    fn codes_are_pinned() {
        let pinned = [
            "evidence_malformed",
            "unsupported_format",
            "unsupported_algorithm",
            "signature_invalid",
            "report_data_mismatch",
            "nonce_mismatch",
            "chain_malformed",
            "chain_untrusted",
            "cert_signature_invalid",
            "cert_expired",
            "cert_not_yet_valid",
            "cert_constraints_invalid",
            "cert_revoked",
            "crl_invalid",
            "crl_expired",
            "ocsp_invalid",
            "tcb_mismatch",
            "chip_id_mismatch",
            "product_mismatch",
            "signing_key_unsupported",
            "collateral_missing",
            "collateral_invalid",
            "collateral_expired",
            "fmspc_mismatch",
            "tcb_level_not_found",
            "tcb_revoked",
            "qe_report_invalid",
            "qe_identity_mismatch",
            "quote_verification_failed",
            "event_log_mismatch",
            "fwid_mismatch",
            "rim_missing",
            "rim_signature_invalid",
            "rim_digest_mismatch",
            "rim_version_mismatch",
            "rim_index_conflict",
            "measurement_mismatch",
            "measurement_missing",
            "simulation_not_allowed",
            "policy_rejected",
            "debug_enabled",
            "tcb_below_minimum",
            "gpu_mode_rejected",
            "model_mismatch",
            "binding_unverified",
            "receipt_invalid",
            "receipt_key_mismatch",
            "evidence_digest_mismatch",
            "ear_invalid",
            "ear_mismatch",
            "session_invalid",
            "token_missing",
            "nonce_reused",
            "nonce_expired",
            "protocol_version_mismatch",
            "resource_not_found",
            "broker_error",
            "admin_unauthorized",
            "admin_update_invalid",
        ];
        let actual: Vec<&str> = DenialCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(actual, pinned);
        for c in DenialCode::ALL {
            assert_eq!(DenialCode::from_str_code(c.as_str()), Some(*c));
        }
    }

    #[test]
    fn display_and_json_carry_the_values() {
        let d = Denial::mismatch(
            DenialCode::TcbMismatch,
            "VCEK TCB differs from the report",
            "reported_tcb",
            "0x7308000000000003",
            "0x7309000000000003",
        );
        assert_eq!(
            d.to_string(),
            "tcb_mismatch: VCEK TCB differs from the report (reported_tcb: expected 0x7308000000000003, found 0x7309000000000003)"
        );
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(j["code"], "tcb_mismatch");
        assert_eq!(j["detail"]["kind"], "mismatch");
        assert_eq!(j["detail"]["expected"], "0x7308000000000003");
    }
}
