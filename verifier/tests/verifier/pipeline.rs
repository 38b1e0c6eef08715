//! The whole pipeline over a simulated SEV-SNP + H100 bundle: appraisal,
//! binding, policy, EAR, and receipt chains.

use std::path::PathBuf;
use std::sync::OnceLock;

use attestor::binding::{RuntimeData, nvidia_additional_evidence};
use attestor::evidence::{EvidenceBundle, PrimaryEvidence, SnpEvidence};
use attestor::nvidia::evidence::GpuEvidenceList;
use attestor::nvidia::report::SpdmNonce;
use attestor::nvidia::simulate::{GpuSimParams, simulate as gpu_simulate};
use attestor::receipt::{
    AgentBuild, ClaimFacts, DecisionStatus, Decoding, EarStatus, Generation, PolicyDecision,
    ReceiptChain, ReceiptDraft, ReceiptKey, Runtime, Salt, SessionRef, Sha256Ref,
};
use attestor::sim::SimSeed;
use attestor::simulate::{EnvironmentSpec, environment};
use attestor::snp::certs::Product;
use attestor::snp::report::ReportData;
use attestor::snp::simulate::{SnpSimParams, simulate as snp_simulate};
use p384::ecdsa::SigningKey;
use serde_json::json;
use verifier::appraise::bundle::{BundleCollateral, Decision, Verifier};
use verifier::denial::{Denial, DenialCode};
use verifier::policy::{PolicySet, Status};
use verifier::result::{self, VerifierId};
use verifier::time::UnixTime;
use verifier::trust::TrustRoots;

const NOW: i64 = 1_767_225_600;
const NONCE: &str = "cmVseWluZyBwYXJ0eSBub25jZSwgMzIgYnl0ZXMhISE=";
const MODEL: &str = "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";

fn now() -> UnixTime {
    UnixTime(NOW)
}

fn codes(denials: &[Denial]) -> Vec<DenialCode> {
    denials.iter().map(|d| d.code).collect()
}

fn assert_has(denials: &[Denial], code: DenialCode) {
    assert!(
        denials.iter().any(|d| d.code == code),
        "expected {code}, got {denials:#?}"
    );
}

fn receipt_key(byte: u8) -> ReceiptKey {
    ReceiptKey::from_scalar_bytes(&[byte; 48]).unwrap()
}

fn runtime_data(key: &ReceiptKey) -> RuntimeData {
    RuntimeData::new(
        NONCE,
        json!({"kty": "EC", "crv": "P-256", "x": "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis",
               "y": "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}),
    )
    .with_receipt_key(key.public_jwk())
    .with_model(MODEL)
}

/// The simulated SNP + H100 environment of `attestor::simulate::environment`,
/// with the GPU entry carrying `"cc_mode": "on"` as NVML reports it (the
/// simulator's entries carry no collection facts, which the GPU policy refuses:
/// see `simulator_bundle_without_cc_mode_is_refused_by_gpu_policy`).
fn bundle_for(key: &ReceiptKey) -> EvidenceBundle {
    let seed = SimSeed::DEFAULT;
    let rd = runtime_data(key);
    let params = GpuSimParams::new(SpdmNonce::new(rd.gpu_nonce().into_bytes()));
    let mut entry = gpu_simulate(&seed, &params).unwrap().evidence_entry();
    entry.uuid = Some("GPU-SIMULATED-0000".to_owned());
    entry.extra.insert("cc_mode".to_owned(), json!("on"));
    let list = GpuEvidenceList::new(vec![entry]);
    let items = list.to_kbs_json()["device_evidence_list"]
        .as_array()
        .unwrap()
        .clone();
    let additional_evidence = nvidia_additional_evidence(&items);
    let report_data = rd.cpu_report_data(&additional_evidence).into_bytes();
    let snp = snp_simulate(
        &seed,
        &SnpSimParams::new(Product::Milan, ReportData::new(report_data)),
    )
    .unwrap();
    EvidenceBundle {
        runtime_data: rd,
        primary: PrimaryEvidence::Snp(SnpEvidence {
            report: snp.report,
            cert_table: Some(snp.cert_table),
        }),
        additional_evidence,
        simulated: true,
    }
}

fn bundle() -> &'static EvidenceBundle {
    static B: OnceLock<EvidenceBundle> = OnceLock::new();
    B.get_or_init(|| bundle_for(&receipt_key(7)))
}

/// Simulated driver and VBIOS RIMs from the simulator's golden values.
fn collateral() -> BundleCollateral {
    BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap()
}

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn verifier(policy: &str, simulated_roots: bool) -> Verifier {
    let roots = if simulated_roots {
        TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap()
    } else {
        TrustRoots::vendor().unwrap()
    };
    Verifier::new(
        roots,
        PolicySet::load(&policies_dir(), policy).unwrap(),
        SigningKey::from_slice(&[3u8; 48]).unwrap(),
        VerifierId {
            developer: "https://example.invalid/attestor-verifier".to_owned(),
            build: "0.1.0+test".to_owned(),
        },
        300,
    )
}

fn development() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| verifier("development", true))
}

#[test]
fn simulated_bundle_is_allowed_under_development() {
    let v = development();
    let a = v
        .appraise_bundle(bundle(), &collateral(), Some(NONCE), now())
        .unwrap();
    assert_eq!(a.decision, Decision::Allow, "{:#?}", a.denials);
    assert!(a.denials.is_empty());
    assert!(a.is_allowed());
    assert!(a.binding_verified);
    assert_eq!(a.gpus.len(), 1);
    assert_eq!(a.evidence_digest, bundle().digest());
    assert_eq!(a.attestation.roots, "simulated");
    let claims = result::verify_ear(&a.ear, v.ear_key(), now()).unwrap();
    assert_eq!(claims.ear_status, Status::Affirming);
    assert_eq!(claims.attestor_model.as_deref(), Some(MODEL));
    assert_eq!(
        claims.attestor_receipt_key.as_ref(),
        bundle().runtime_data.receipt_key()
    );
    assert!(claims.submods.contains_key("gpu0"));
}

#[test]
fn production_refuses_simulation() {
    // Production policy over simulated roots: genuine to those roots, refused by policy.
    let a = verifier("production", true)
        .appraise_bundle(bundle(), &collateral(), Some(NONCE), now())
        .unwrap();
    assert_eq!(a.decision, Decision::Deny);
    assert_has(&a.denials, DenialCode::SimulationNotAllowed);
    let v = verifier("production", true);
    let claims = result::verify_ear(&a.ear, v.ear_key(), now()).unwrap();
    assert_ne!(claims.ear_status, Status::Affirming);

    // Vendor roots: nothing is trusted, no EAR.
    let err = verifier("production", false)
        .appraise_bundle(bundle(), &collateral(), Some(NONCE), now())
        .unwrap_err();
    assert_has(&err, DenialCode::ChainUntrusted);
}

#[test]
fn nonce_mismatch_is_refused() {
    let err = development()
        .appraise_bundle(bundle(), &collateral(), Some("b3RoZXIgbm9uY2U="), now())
        .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::NonceMismatch], "{err:#?}");
}

#[test]
fn swapped_runtime_data_breaks_the_binding() {
    let mut swapped = bundle().clone();
    swapped.runtime_data = runtime_data(&receipt_key(9));
    let err = development()
        .appraise_bundle(&swapped, &collateral(), Some(NONCE), now())
        .unwrap_err();
    assert_has(&err, DenialCode::ReportDataMismatch);
    // The GPU's SPDM nonce was derived from the original runtime data too.
    assert_has(&err, DenialCode::NonceMismatch);
}

fn draft(evidence: &EvidenceBundle, ear: Option<&str>) -> ReceiptDraft {
    let salt = Salt::new([1; 32]);
    let model: Sha256Ref = MODEL.parse().unwrap();
    let allowed = attestor::receipt::allowed_claim(&ClaimFacts {
        model: &model,
        tee: Some(attestor::evidence::Tee::Snp),
        gpus: 1,
        simulated: true,
        decision: DecisionStatus::Allow,
    });
    ReceiptDraft {
        iss: "agent-test".to_owned(),
        iat: u64::try_from(NOW).unwrap(),
        jti: "r-0".to_owned(),
        eat_nonce: None,
        session: SessionRef {
            evidence_digest: Sha256Ref(evidence.digest()),
            ear_digest: ear.map(|e| Sha256Ref(attestor::digest::Sha256Digest::of(e.as_bytes()))),
            ear_status: ear.map(|_| EarStatus::Affirming),
            simulated: true,
        },
        model_commitment: model,
        input_commitment: attestor::receipt::commit_input(&salt, b"prompt"),
        output_digest: attestor::receipt::commit_output(&salt, b"answer"),
        generation: Generation {
            max_tokens: 16,
            decoding: Decoding::Greedy,
            input_tokens: None,
            output_tokens: None,
        },
        runtime: Runtime {
            agent: AgentBuild {
                name: "guest-agent".to_owned(),
                version: "0.1.0".to_owned(),
                build: None,
            },
            candle_version: "0.9".to_owned(),
            compute_path: json!({}),
        },
        verifier_policy_id: Vec::new(),
        policy_decision: PolicyDecision {
            status: DecisionStatus::Allow,
            reason: "attested".to_owned(),
        },
        allowed_claim: allowed,
        blocked_claims: attestor::receipt::blocked_claims(true),
    }
}

fn sign(key: ReceiptKey, d: ReceiptDraft) -> String {
    ReceiptChain::new(key).sign(d).unwrap().compact
}

#[test]
fn valid_receipt_chain_verifies_end_to_end() {
    let v = development();
    let ear = v
        .appraise_bundle(bundle(), &collateral(), Some(NONCE), now())
        .unwrap()
        .ear;
    let receipt = sign(receipt_key(7), draft(bundle(), Some(&ear)));
    let ok = v
        .verify_receipt(&receipt, bundle(), &collateral(), Some(&ear), now())
        .unwrap();
    assert_eq!(ok.receipt.model_commitment.to_string(), MODEL);
    assert_eq!(ok.ear.unwrap().ear_status, Status::Affirming);
    assert!(ok.appraisal.is_allowed());
    assert_eq!(ok.receipt_key_thumbprint, receipt_key(7).thumbprint());

    // Without an EAR the evidence links still hold.
    assert!(
        v.verify_receipt(&receipt, bundle(), &collateral(), None, now())
            .is_ok()
    );

    // Another EAR (issued later, so other bytes) is not the one the receipt names.
    let other = v
        .appraise_bundle(bundle(), &collateral(), None, UnixTime(NOW + 1))
        .unwrap()
        .ear;
    let err = v
        .verify_receipt(&receipt, bundle(), &collateral(), Some(&other), now())
        .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::EarMismatch], "{err:#?}");

    // An EAR signed by another verifier is invalid.
    let stranger = verifier("development", true)
        .with_ear_key(*SigningKey::from_slice(&[4u8; 48]).unwrap().verifying_key());
    let err = stranger
        .verify_receipt(&receipt, bundle(), &collateral(), Some(&ear), now())
        .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::EarInvalid], "{err:#?}");
}

#[test]
fn receipt_of_another_key_is_refused() {
    let receipt = sign(receipt_key(8), draft(bundle(), None));
    let err = development()
        .verify_receipt(&receipt, bundle(), &collateral(), None, now())
        .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::ReceiptKeyMismatch], "{err:#?}");
}

#[test]
fn broken_receipt_links_are_named() {
    let v = development();
    // Evidence digest of another bundle (same key, different session).
    let mut other = bundle().clone();
    other.simulated = false;
    let receipt = sign(receipt_key(7), draft(&other, None));
    let err = v
        .verify_receipt(&receipt, bundle(), &collateral(), None, now())
        .unwrap_err();
    assert_eq!(
        codes(&err),
        [DenialCode::EvidenceDigestMismatch],
        "{err:#?}"
    );

    // A tampered signature.
    let good = sign(receipt_key(7), draft(bundle(), None));
    let mut tampered = good.clone();
    let last = if tampered.ends_with('A') { 'B' } else { 'A' };
    tampered.pop();
    tampered.push(last);
    let err = v
        .verify_receipt(&tampered, bundle(), &collateral(), None, now())
        .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::ReceiptInvalid], "{err:#?}");
    let err = v
        .verify_receipt("not a receipt", bundle(), &collateral(), None, now())
        .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::ReceiptInvalid], "{err:#?}");
}

#[test]
fn simulator_bundle_without_cc_mode_is_refused_by_gpu_policy() {
    // Cryptographically sound, but the GPU entry carries no NVML `cc_mode`,
    // so the GPU policy cannot affirm (fail closed on a missing fact).
    let mut spec = EnvironmentSpec::snp_h100(u64::try_from(NOW).unwrap());
    spec.gpu_cc_mode = None;
    let env = environment(&SimSeed::DEFAULT, &spec, runtime_data(&receipt_key(7))).unwrap();
    let a = development()
        .appraise_bundle(&env.bundle, &collateral(), Some(NONCE), now())
        .unwrap();
    assert_eq!(a.decision, Decision::Deny);
    assert_eq!(
        codes(&a.denials),
        [DenialCode::GpuModeRejected, DenialCode::GpuModeRejected],
        "{:#?}",
        a.denials
    );
}

#[test]
fn receipt_verify_cli_exit_codes() {
    use std::process::ExitCode;
    use verifier::appraise::bundle::cli::{ReceiptVerifyArgs, run_receipt_verify};

    let v = development();
    let ear = v
        .appraise_bundle(bundle(), &collateral(), Some(NONCE), now())
        .unwrap()
        .ear;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let c = collateral();
    let args = ReceiptVerifyArgs {
        receipt: write(
            "r.jws",
            sign(receipt_key(7), draft(bundle(), Some(&ear))).as_bytes(),
        ),
        evidence: write("e.json", bundle().to_json_pretty().as_bytes()),
        ear: Some(write("ear.jwt", ear.as_bytes())),
        ear_key: Some(write(
            "ear.jwk",
            result::public_jwk(v.ear_key()).to_string().as_bytes(),
        )),
        at: Some(now().to_rfc3339()),
        json: true,
        policy: "development".to_owned(),
        policies: policies_dir(),
        danger_simulated_roots: true,
        tdx_collateral: None,
        snp_crl: None,
        rims: vec![
            write("d.rim", &c.gpu_rims[0]),
            write("v.rim", &c.gpu_rims[1]),
        ],
        ocsp: Vec::new(),
    };
    assert_eq!(run_receipt_verify(&args).unwrap(), ExitCode::SUCCESS);

    // Production policy over the same simulated session: a broken link, exit 1.
    let production = ReceiptVerifyArgs {
        policy: "production".to_owned(),
        ..args.clone()
    };
    assert_eq!(run_receipt_verify(&production).unwrap(), ExitCode::from(1));

    // A receipt by another key: exit 1.
    let other = ReceiptVerifyArgs {
        receipt: write(
            "o.jws",
            sign(receipt_key(8), draft(bundle(), None)).as_bytes(),
        ),
        ..args.clone()
    };
    assert_eq!(run_receipt_verify(&other).unwrap(), ExitCode::from(1));

    // Bad input: an error (exit 2 in the binary).
    let missing = ReceiptVerifyArgs {
        evidence: dir.path().join("absent.json"),
        ..args.clone()
    };
    assert!(run_receipt_verify(&missing).is_err());
    let no_key = ReceiptVerifyArgs {
        ear_key: None,
        ..args
    };
    assert!(run_receipt_verify(&no_key).is_err());
}

#[test]
fn tdx_bundle_goes_through_the_same_pipeline() {
    let spec = EnvironmentSpec::tdx_h100(u64::try_from(NOW).unwrap());
    let env = environment(&SimSeed::DEFAULT, &spec, runtime_data(&receipt_key(7))).unwrap();
    let tdx = verifier::appraise::tdx::TdxCollateral::from_json(
        env.tdx_collateral_json.as_deref().unwrap().as_bytes(),
    )
    .unwrap();
    let with_tdx = BundleCollateral {
        tdx: Some(tdx),
        ..collateral()
    };
    let at = UnixTime(NOW + 3600);
    let a = development()
        .appraise_bundle(&env.bundle, &with_tdx, Some(NONCE), at)
        .unwrap();
    assert!(matches!(
        a.cpu,
        verifier::appraise::bundle::CpuAppraisal::Tdx(_)
    ));
    // Only the simulator's missing NVML facts keep it from affirming.
    assert!(
        a.denials
            .iter()
            .all(|d| d.code == DenialCode::GpuModeRejected),
        "{:#?}",
        a.denials
    );
    // Without Intel collateral a TDX quote is refused.
    let err = development()
        .appraise_bundle(&env.bundle, &collateral(), Some(NONCE), at)
        .unwrap_err();
    assert_has(&err, DenialCode::CollateralMissing);
}
