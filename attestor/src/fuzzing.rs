//! Fuzz bodies, one per parser of untrusted input.
//!
//! Each parses arbitrary bytes and, when they parse, re-encodes and asserts the
//! result equals the input (or, for JSON documents, that parsing the
//! re-encoding gives the same value): a property that can fail. The cargo-fuzz
//! targets in `fuzz/` call these; `tests/attestor/fuzz_bodies.rs` runs them on
//! stable over the real captures with every truncation and bit flips.
//! Nothing here may panic except those assertions.

use crate::binding::RuntimeData;
use crate::evidence::EvidenceBundle;

/// SEV-SNP attestation report: parse, serialize, identical bytes.
pub fn snp_report(data: &[u8]) {
    crate::snp::report::fuzz_roundtrip(data);
}

/// SEV-SNP GHCB certificate table (configfs-tsm auxblob).
pub fn snp_cert_table(data: &[u8]) {
    crate::snp::certs::fuzz_roundtrip(data);
}

/// AMD VCEK/VLEK certificate extensions.
pub fn snp_vek_extensions(data: &[u8]) {
    crate::snp::certs::fuzz_vek_extensions(data);
}

/// Intel TDX DCAP quote: parse, serialize, identical bytes.
pub fn tdx_quote(data: &[u8]) {
    crate::tdx::quote::fuzz_roundtrip(data);
}

/// NVIDIA SPDM GET_MEASUREMENTS request and response: parse, serialize, identical bytes.
pub fn nvidia_report(data: &[u8]) {
    crate::nvidia::report::fuzz_roundtrip(data);
}

/// NVIDIA device certificate chain (PEM).
pub fn nvidia_cert_chain(data: &[u8]) {
    crate::nvidia::certs::fuzz_roundtrip(data);
}

/// NVIDIA JSON evidence list (NVAT or KBS shape).
pub fn nvidia_evidence(data: &[u8]) {
    crate::nvidia::evidence::fuzz_roundtrip(data);
}

/// Inference receipts (JWS compact + claims).
pub fn receipt(data: &[u8]) {
    crate::receipt::fuzz_parse(data);
}

/// NVIDIA RIM (SWID XML), including canonicalization.
pub fn nvidia_rim(data: &[u8]) {
    crate::nvidia::rim::fuzz_roundtrip(data);
}

/// Sealed model files: the header round-trips, opening never panics, and
/// seal-then-open gives the input back.
pub fn sealed(data: &[u8]) {
    crate::sealed::fuzz_roundtrip(data);
}

/// The KBS evidence bundle: parse, re-serialize, parse again: same bundle and digest.
pub fn evidence_bundle(data: &[u8]) {
    if let Ok(bundle) = EvidenceBundle::from_json(data) {
        let text = bundle.to_json_pretty();
        let again = EvidenceBundle::from_json(text.as_bytes());
        assert_eq!(
            again.as_ref(),
            Ok(&bundle),
            "bundle did not survive re-serialization"
        );
        if let Ok(again) = again {
            assert_eq!(again.digest(), bundle.digest());
        }
        let _ = bundle.expected_report_data();
    }
}

/// `runtime_data`: parse; the canonical form parses back and is a fixed point
/// (JCS may rewrite number spellings, so bytes are compared, not values).
pub fn runtime_data(data: &[u8]) {
    if let Ok(rd) = RuntimeData::from_json(data) {
        let canonical = rd.canonical();
        let again = RuntimeData::from_json(&canonical).map(|r| r.canonical());
        assert_eq!(
            again.as_deref(),
            Ok(&canonical[..]),
            "canonical form is not a fixed point"
        );
        let _ = rd.gpu_nonce();
        let _ = rd.cpu_report_data("");
    }
}
