//! A whole simulated environment (CPU TEE + H100) bound to one runtime_data:
//! the binding chain of DESIGN.md §3 holds in the bytes, and breaks when it should.

use attestor::binding::RuntimeData;
use attestor::evidence::{EvidenceBundle, PrimaryEvidence, Tee};
use attestor::nvidia::evidence::GpuEvidenceList;
use attestor::nvidia::report::AttestationReport;
use attestor::sim::SimSeed;
use attestor::simulate::{EnvironmentSpec, environment};
use serde_json::json;

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn runtime_data() -> RuntimeData {
    RuntimeData::new(
        "c2ltdWxhdGVkLW5vbmNlLTMyLWJ5dGVzLWxvbmctLS0=",
        json!({"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "AA", "y": "AQ"}),
    )
    .with_model("sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4")
}

fn gpu_nonces(bundle: &EvidenceBundle) -> Vec<[u8; 32]> {
    let v: serde_json::Value = serde_json::from_str(&bundle.additional_evidence).unwrap();
    let list = GpuEvidenceList::from_value(&v["nvidia"]).unwrap();
    list.entries
        .iter()
        .map(|e| {
            AttestationReport::parse(&e.report)
                .unwrap()
                .nonce()
                .into_bytes()
        })
        .collect()
}

#[test]
fn snp_h100_binding_holds_in_the_bytes() {
    let env = environment(
        &SimSeed::DEFAULT,
        &EnvironmentSpec::snp_h100(NOW),
        runtime_data(),
    )
    .unwrap();
    let bundle = &env.bundle;
    assert!(bundle.simulated);
    let PrimaryEvidence::Snp(snp) = &bundle.primary else {
        panic!("not SNP")
    };
    let report = attestor::snp::report::Report::parse(&snp.report).unwrap();
    assert_eq!(report.report_data.0, bundle.expected_report_data().0);
    assert_eq!(gpu_nonces(bundle), vec![bundle.runtime_data.gpu_nonce().0]);

    // The bundle survives JSON, and its digest is stable.
    let back = EvidenceBundle::from_json(bundle.to_json_pretty().as_bytes()).unwrap();
    assert_eq!(&back, bundle);
    assert_eq!(back.digest(), bundle.digest());

    // Another runtime_data (another nonce) no longer matches the evidence.
    let mut other = bundle.clone();
    other.runtime_data = RuntimeData::new("b3RoZXI=", json!({"kty": "EC"}));
    assert_ne!(other.expected_report_data().0, report.report_data.0);
    // Changing the GPU evidence string breaks the CPU binding.
    let mut swapped = bundle.clone();
    swapped.additional_evidence =
        swapped
            .additional_evidence
            .replacen("GPU-SIMULATED-0000", "GPU-SIMULATED-0001", 1);
    assert_ne!(swapped.expected_report_data().0, report.report_data.0);
}

#[test]
fn tdx_h100_binding_holds_and_collateral_comes_along() {
    let env = environment(
        &SimSeed::DEFAULT,
        &EnvironmentSpec::tdx_h100(NOW),
        runtime_data(),
    )
    .unwrap();
    let bundle = &env.bundle;
    assert_eq!(bundle.primary.tee(), Tee::Tdx);
    let PrimaryEvidence::Tdx(tdx) = &bundle.primary else {
        panic!("not TDX")
    };
    let quote = attestor::tdx::quote::Quote::parse(&tdx.quote).unwrap();
    assert_eq!(
        quote.report().report_data.0,
        bundle.expected_report_data().0
    );
    assert_eq!(gpu_nonces(bundle), vec![bundle.runtime_data.gpu_nonce().0]);
    let collateral: serde_json::Value =
        serde_json::from_str(env.tdx_collateral_json.as_deref().unwrap()).unwrap();
    assert!(collateral["tcb_info"].is_string());
}

#[test]
fn no_gpu_means_empty_additional_evidence_and_still_bound() {
    let mut spec = EnvironmentSpec::snp_h100(NOW);
    spec.gpus = 0;
    let env = environment(&SimSeed::DEFAULT, &spec, runtime_data()).unwrap();
    assert_eq!(env.bundle.additional_evidence, "");
    let PrimaryEvidence::Snp(snp) = &env.bundle.primary else {
        panic!("not SNP")
    };
    let report = attestor::snp::report::Report::parse(&snp.report).unwrap();
    assert_eq!(report.report_data.0, runtime_data().cpu_report_data("").0);
}

#[test]
fn two_gpus_each_carry_the_nonce() {
    let mut spec = EnvironmentSpec::snp_h100(NOW);
    spec.gpus = 2;
    let env = environment(&SimSeed::DEFAULT, &spec, runtime_data()).unwrap();
    let nonce = env.bundle.runtime_data.gpu_nonce().0;
    assert_eq!(gpu_nonces(&env.bundle), vec![nonce, nonce]);
}
