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
