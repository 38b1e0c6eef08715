//! The fuzz bodies of `attestor::fuzzing`, run on stable over the real
//! captures: every truncation and a deterministic set of bit flips per file.
//! A panic here is a parser bug (or a lossy round-trip) found without nightly.

use attestor::fuzzing;

use crate::testdata;

/// Every prefix, then single-bit flips at a stride that covers each region of the
/// file (headers, lengths, signatures) plus every bit of the first 64 bytes.
fn exercise(name: &str, data: &[u8], body: fn(&[u8])) {
    body(data);
    for len in 0..data.len() {
        body(&data[..len]);
    }
    let mut flipped = data.to_vec();
    let stride = (data.len() / 512).max(1);
    let positions = (0..data.len().min(64)).chain((64..data.len()).step_by(stride));
    for pos in positions {
        for bit in 0..8 {
            flipped[pos] ^= 1 << bit;
            body(&flipped);
            flipped[pos] ^= 1 << bit;
        }
    }
    assert_eq!(flipped, data, "{name}: flips not restored");
}

#[test]
fn snp_reports_and_cert_material() {
    for f in [
        "snp/milan_virtee_v2_report.bin",
        "snp/milan_aws_vlek_v3_report.bin",
        "snp/genoa_veraison_v3_report.bin",
        "snp/turin_oak_v5_report.bin",
    ] {
        exercise(f, &testdata(f), fuzzing::snp_report);
    }
    for f in ["snp/milan_virtee_v2_vcek.der", "snp/turin_oak_v5_vcek.der"] {
        exercise(f, &testdata(f), fuzzing::snp_vek_extensions);
    }
}

#[test]
fn tdx_quotes() {
    for f in [
        "tdx/b0c06f_dcapqvl_v4_quote.bin",
        "tdx/90c06f_gotdx_v5_quote.bin",
        "tdx/sigonly_00806f05_azure_v4_quote.bin",
    ] {
        exercise(f, &testdata(f), fuzzing::tdx_quote);
    }
}

#[test]
fn nvidia_reports_chains_and_evidence() {
    for f in [
        "nvidia/h100_nvtrust_550_report.bin",
        "nvidia/h100_nvat_535_report.bin",
        "nvidia/gb100_nvat_575_report.bin",
        "nvidia/neg_h100_invalid_signature_report.bin",
    ] {
        exercise(f, &testdata(f), fuzzing::nvidia_report);
    }
    // Text formats: truncations everywhere, flips sampled (each parse is costlier).
    for f in [
        "nvidia/h100_nvtrust_550_chain.pem",
        "nvidia/h100_nvat_590_evidence.json",
    ] {
        let data = testdata(f);
        let body = if f.ends_with(".pem") {
            fuzzing::nvidia_cert_chain
        } else {
            fuzzing::nvidia_evidence
        };
        exercise(f, &data, body);
    }
}

#[test]
fn nvidia_rims() {
    let data = testdata("nvidia/rim_vbios_gh100_96.00.5E.00.01.swidtag");
    // A RIM parse includes canonicalization: sample truncations rather than all ~40k.
    fuzzing::nvidia_rim(&data);
    for len in (0..data.len()).step_by(97) {
        fuzzing::nvidia_rim(&data[..len]);
    }
    let mut flipped = data.clone();
    for pos in (0..data.len()).step_by(211) {
        flipped[pos] ^= 0x20;
        fuzzing::nvidia_rim(&flipped);
        flipped[pos] ^= 0x20;
    }
}

#[test]
fn bundles_and_runtime_data() {
    let rd = br#"{"nonce":"bm9uY2U=","tee-pubkey":{"kty":"EC","crv":"P-256","x":"a","y":"b"},"model":"sha256:00"}"#;
    exercise("runtime_data", rd, fuzzing::runtime_data);
    let bundle = serde_json::json!({
        "tee": "snp",
        "runtime-data": {"nonce": "bm9uY2U=", "tee-pubkey": {"kty": "EC"}},
        "tee-evidence": {"primary_evidence": {"report": "AQID", "cert_table": "BAU="}, "additional_evidence": ""},
        "simulated": true
    })
    .to_string();
    exercise("bundle", bundle.as_bytes(), fuzzing::evidence_bundle);
}

#[test]
fn sealed_files() {
    use attestor::sealed::{SealKey, seal};
    // Sealed under the key the fuzz body opens with, so the unaltered input
    // takes the decrypting path; every truncation and flip must fail cleanly.
    let key = SealKey::from_bytes([7; 32]);
    let plaintext: Vec<u8> = (0u8..=255).cycle().take(700).collect();
    let sealed = seal(&plaintext, &key, "model.gguf");
    assert_eq!(attestor::sealed::open(&sealed, &key).unwrap(), plaintext);
    exercise("sealed", &sealed, fuzzing::sealed);
    exercise("sealed empty", &seal(b"", &key, ""), fuzzing::sealed);
}
