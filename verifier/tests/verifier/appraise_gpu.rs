//! NVIDIA GPU and RIM appraisal: the real captures in MANIFEST (as of
//! 2025-01-01), a tamper matrix, simulated GPUs with simulated RIMs, and OCSP
//! responses built for the simulated chains.

use std::str::FromStr as _;

use attestor::nvidia::evidence::GpuEvidenceList;
use attestor::nvidia::report::{AttestationReport, SpdmNonce};
use attestor::nvidia::rim::{Rim, RimKind, SimRimSpec, simulate_rim};
use attestor::nvidia::simulate::{GpuSimParams, SimulatedGpu, golden_measurements, simulate};
use attestor::sim::{CertSpec, SimKey, SimSeed};
use der::Encode as _;
use der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use p384::ecdsa::signature::Signer as _;
use verifier::appraise::nvidia::{GpuClaims, GpuCollateral, GpuEvidence, appraise, appraise_list};
use verifier::appraise::ocsp::{RevocationStatus, hash_pair};
use verifier::appraise::rim::{appraise_rim, compare_measurements};
use verifier::appraise::x509::{Cert, certs_from_pem_or_der};
use verifier::denial::{Denial, DenialCode};
use verifier::time::UnixTime;
use verifier::trust::{RootsOrigin, TrustRoots};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, ResponderId,
    ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::testdata_dir;

fn read(rel: &str) -> Vec<u8> {
    let p = testdata_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn at(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

fn as_of() -> UnixTime {
    at("2025-01-01T00:00:00Z")
}

fn vendor() -> TrustRoots {
    TrustRoots::vendor().unwrap()
}

fn codes(denials: &[Denial]) -> Vec<DenialCode> {
    denials.iter().map(|d| d.code).collect()
}

#[track_caller]
fn assert_has(denials: &[Denial], code: DenialCode) {
    assert!(
        denials.iter().any(|d| d.code == code),
        "expected {code}, got {denials:#?}"
    );
}

fn appraise_files(
    report: &str,
    chain: &str,
    collateral: &GpuCollateral<'_>,
) -> Result<GpuClaims, Vec<Denial>> {
    let report = read(report);
    let chain = read(chain);
    let ev = GpuEvidence {
        report: &report,
        chain_pem: &chain,
        expected_nonce: None,
    };
    appraise(&ev, &vendor(), collateral, as_of())
}

// ---------------------------------------------------------------- genuine

#[test]
fn genuine_reports_are_accepted() {
    for (report, chain, arch, fwid_match) in [
        (
            "nvidia/h100_nvtrust_550_report.bin",
            "nvidia/h100_nvtrust_550_chain.pem",
            "HOPPER",
            Some(true),
        ),
        (
            "nvidia/h100_nvat_535_report.bin",
            "nvidia/h100_nvat_535_chain.pem",
            "HOPPER",
            None,
        ),
        (
            "nvidia/gb100_nvat_575_report.bin",
            "nvidia/gb100_nvat_575_chain.pem",
            "BLACKWELL",
            Some(true),
        ),
    ] {
        let claims = appraise_files(report, chain, &GpuCollateral::default())
            .unwrap_or_else(|d| panic!("{report}: {d:#?}"));
        assert_eq!(claims.roots, RootsOrigin::Vendor);
        assert_eq!(claims.arch.as_deref(), Some(arch), "{report}");
        assert_eq!(claims.fwid_match, fwid_match, "{report}");
        assert_eq!(claims.device_chain.len(), 5);
        assert!(!claims.measurements.compared);
        assert_eq!(
            claims.device_revocation.status,
            RevocationStatus::NotChecked
        );
        assert!(!claims.device_revocation.checked());
        assert!(!claims.nonce_checked);
        assert_eq!(claims.measurement_blocks, 64);
    }
    let c = appraise_files(
        "nvidia/h100_nvtrust_550_report.bin",
        "nvidia/h100_nvtrust_550_chain.pem",
        &GpuCollateral::default(),
    )
    .unwrap();
    assert_eq!(c.driver_version.as_deref(), Some("550.90.07"));
    assert_eq!(c.vbios_version.as_deref(), Some("96.00.9F.00.01"));
    assert_eq!(c.hwmodel.as_deref(), Some("GH100 A01 GSP BROM"));
    assert_eq!(c.chip.as_deref(), Some("GH100"));
    assert!(c.nonce.starts_with("931d8dd0"), "{}", c.nonce);
    assert!(c.fwid.as_deref().unwrap().starts_with("f5c384ae"));
    let b = appraise_files(
        "nvidia/gb100_nvat_575_report.bin",
        "nvidia/gb100_nvat_575_chain.pem",
        &GpuCollateral::default(),
    )
    .unwrap();
    assert_eq!(b.driver_version.as_deref(), Some("575.32"));
    assert_eq!(b.vbios_version.as_deref(), Some("97.00.88.00.0F"));
    assert!(b.fwid.as_deref().unwrap().starts_with("d090cab1"));
    // The claims serialize (they are the policy input).
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["roots"], "vendor");
    assert_eq!(json["device_revocation"]["status"], "not_checked");
}

#[test]
fn genuine_json_evidence_is_accepted_with_its_nonce() {
    let list = GpuEvidenceList::parse_json(&read("nvidia/h100_nvat_590_evidence.json")).unwrap();
    let nonce = list.entries[0].nonce.unwrap().into_bytes();
    let claims = appraise_list(
        &list,
        Some(nonce),
        &vendor(),
        &GpuCollateral::default(),
        as_of(),
    )
    .unwrap();
    assert_eq!(claims.len(), 1);
    let c = &claims[0];
    assert!(c.nonce_checked);
    assert_eq!(c.driver_version.as_deref(), Some("590.12"));
    assert_eq!(c.vbios_version.as_deref(), Some("96.00.A5.00.01"));
    assert_eq!(c.mode.as_deref(), Some("ppcie"));
    assert_eq!(c.collection.arch.as_deref(), Some("HOPPER"));
    assert_eq!(c.collection.devtools_mode, None);

    // Another expected nonce: nonce_mismatch.
    let err = appraise_list(
        &list,
        Some([0; 32]),
        &vendor(),
        &GpuCollateral::default(),
        as_of(),
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::NonceMismatch]);
    assert!(err[0].message.starts_with("GPU 0: "), "{}", err[0]);

    // The JSON nonce field disagreeing with the signed request.
    let mut forged = list.clone();
    forged.entries[0].nonce = Some(SpdmNonce([7; 32]));
    let err =
        appraise_list(&forged, None, &vendor(), &GpuCollateral::default(), as_of()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::NonceMismatch]);

    // An empty list is refused.
    let empty = GpuEvidenceList::new(Vec::new());
    let err =
        appraise_list(&empty, None, &vendor(), &GpuCollateral::default(), as_of()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::EvidenceMalformed]);
}

// ---------------------------------------------------------------- negatives

#[test]
fn published_negative_report_fails_its_signature() {
    let err = appraise_files(
        "nvidia/neg_h100_invalid_signature_report.bin",
        "nvidia/h100_nvat_535_chain.pem",
        &GpuCollateral::default(),
    )
    .unwrap_err();
    assert_has(&err, DenialCode::SignatureInvalid);
}

#[test]
fn root_only_chain_is_refused() {
    let err = appraise_files(
        "nvidia/h100_nvtrust_550_report.bin",
        "nvidia/neg_h100_chain_case2.pem",
        &GpuCollateral::default(),
    )
    .unwrap_err();
    assert!(
        err.iter().any(|d| matches!(
            d.code,
            DenialCode::ChainMalformed | DenialCode::ChainUntrusted
        )),
        "{err:#?}"
    );
    assert_has(&err, DenialCode::SignatureInvalid);
}

#[test]
fn chain_of_another_gpu_is_refused() {
    let err = appraise_files(
        "nvidia/h100_nvtrust_550_report.bin",
        "nvidia/h100_nvat_535_chain.pem",
        &GpuCollateral::default(),
    )
    .unwrap_err();
    assert_has(&err, DenialCode::SignatureInvalid);
    // The 550 report carries an FWID; the 535 leaf's differs.
    assert_has(&err, DenialCode::FwidMismatch);
}

#[test]
fn chain_without_its_root_is_completed_and_garbage_is_malformed() {
    let report = read("nvidia/h100_nvtrust_550_report.bin");
    let chain = String::from_utf8(read("nvidia/h100_nvtrust_550_chain.pem")).unwrap();
    let end = "-----END CERTIFICATE-----";
    let four: String = chain
        .split_inclusive(end)
        .filter(|b| b.contains(end))
        .take(4)
        .collect();
    let ev = GpuEvidence {
        report: &report,
        chain_pem: four.as_bytes(),
        expected_nonce: None,
    };
    let claims = appraise(&ev, &vendor(), &GpuCollateral::default(), as_of()).unwrap();
    assert_eq!(claims.device_chain.len(), 5);
    assert!(claims.device_chain[4].contains("NVIDIA Device Identity CA"));
    let ev = GpuEvidence {
        report: &report,
        chain_pem: b"not a chain",
        expected_nonce: None,
    };
    let err = appraise(&ev, &vendor(), &GpuCollateral::default(), as_of()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::ChainMalformed]);
}

#[test]
fn json_arch_must_match_the_chip() {
    let gpu = sim_gpu(Vec::new());
    let mut entry = gpu.evidence_entry();
    entry.arch = attestor::nvidia::evidence::GpuArch::Blackwell;
    let list = GpuEvidenceList::new(vec![entry.clone()]);
    let err = appraise_list(
        &list,
        None,
        &sim_roots(),
        &GpuCollateral::default(),
        as_of(),
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::ProductMismatch]);
    entry.arch = attestor::nvidia::evidence::GpuArch::Other("LS10".into());
    let list = GpuEvidenceList::new(vec![entry]);
    let err = appraise_list(
        &list,
        None,
        &sim_roots(),
        &GpuCollateral::default(),
        as_of(),
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::UnsupportedFormat]);
}

#[test]
fn wrong_expected_nonce_is_refused() {
    let report = read("nvidia/h100_nvtrust_550_report.bin");
    let chain = read("nvidia/h100_nvtrust_550_chain.pem");
    let right = AttestationReport::parse(&report)
        .unwrap()
        .nonce()
        .into_bytes();
    let ev = |expected| GpuEvidence {
        report: &report,
        chain_pem: &chain,
        expected_nonce: Some(expected),
    };
    let ok = appraise(&ev(right), &vendor(), &GpuCollateral::default(), as_of()).unwrap();
    assert!(ok.nonce_checked);
    let mut wrong = right;
    wrong[31] ^= 1;
    let err = appraise(&ev(wrong), &vendor(), &GpuCollateral::default(), as_of()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::NonceMismatch]);
}

#[test]
fn tampered_bits_break_the_signature() {
    let report = read("nvidia/h100_nvtrust_550_report.bin");
    let chain = read("nvidia/h100_nvtrust_550_chain.pem");
    let parsed = AttestationReport::parse(&report).unwrap();
    let record = usize::try_from(parsed.response.record_length).unwrap();
    let opaque_value = 37 + 8 + record + 32 + 2 + 4;
    let cases = [
        ("request nonce", 4 + 7),
        ("measurement block 1 value", 37 + 8 + 7),
        ("measurement block 64 value", 37 + 8 + record - 1),
        ("responder nonce", 37 + 8 + record + 3),
        ("opaque value", opaque_value),
        ("signature r", report.len() - 96 + 5),
        ("signature s", report.len() - 1),
    ];
    for (what, offset) in cases {
        let mut bad = report.clone();
        bad[offset] ^= 0x01;
        let ev = GpuEvidence {
            report: &bad,
            chain_pem: &chain,
            expected_nonce: None,
        };
        let err = appraise(&ev, &vendor(), &GpuCollateral::default(), as_of()).unwrap_err();
        assert_has(&err, DenialCode::SignatureInvalid);
        assert!(
            err.iter().all(|d| matches!(
                d.code,
                DenialCode::SignatureInvalid | DenialCode::FwidMismatch
            )),
            "{what}: {err:#?}"
        );
    }
    // Truncated: malformed, nothing else attempted.
    let ev = GpuEvidence {
        report: &report[..report.len() - 1],
        chain_pem: &chain,
        expected_nonce: None,
    };
    let err = appraise(&ev, &vendor(), &GpuCollateral::default(), as_of()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::EvidenceMalformed]);
}

#[test]
fn device_chain_outside_validity_is_refused() {
    let report = read("nvidia/h100_nvtrust_550_report.bin");
    let chain = read("nvidia/h100_nvtrust_550_chain.pem");
    let ev = GpuEvidence {
        report: &report,
        chain_pem: &chain,
        expected_nonce: None,
    };
    let err = appraise(
        &ev,
        &vendor(),
        &GpuCollateral::default(),
        at("2020-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_has(&err, DenialCode::CertNotYetValid);
}

// ---------------------------------------------------------------- RIMs

const VBIOS_5E: &str = "nvidia/rim_vbios_gh100_96.00.5E.00.01.swidtag";
const VBIOS_74: &str = "nvidia/rim_vbios_gh100_96.00.74.00.1A.swidtag";
const DRIVER_550: &str = "nvidia/rim_driver_gh100_550.144.03.xml";

#[test]
fn genuine_rims_verify() {
    for (file, kind, version) in [
        (VBIOS_5E, RimKind::Vbios, "96.00.5E.00.01"),
        (VBIOS_74, RimKind::Vbios, "96.00.74.00.1A"),
        (DRIVER_550, RimKind::Driver, "550.144.03"),
    ] {
        let claims = appraise_rim(&read(file), &vendor(), as_of())
            .unwrap_or_else(|d| panic!("{file}: {d:#?}"));
        assert_eq!(claims.kind, kind);
        assert_eq!(claims.version, version);
        assert_eq!(claims.signing_chain.len(), 4);
        assert!(claims.signing_chain[0].contains("HCC RIM L4 Signer"));
        assert_eq!(claims.revocation.status, RevocationStatus::NotChecked);
        assert_eq!(claims.revocation.certs.len(), 3);
        assert_eq!(claims.oemid.as_deref(), Some("5703"));
    }
    let vbios = appraise_rim(&read(VBIOS_5E), &vendor(), as_of()).unwrap();
    assert_eq!(
        vbios.active_indices,
        [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    );
    assert_eq!(vbios.chain_expires, at("2025-06-22T09:30:33Z"));
    let driver = appraise_rim(&read(DRIVER_550), &vendor(), as_of()).unwrap();
    assert_eq!(driver.active_indices.len(), 21);
}

#[test]
fn expired_rim_signer_is_refused() {
    let err = appraise_rim(&read(VBIOS_5E), &vendor(), at("2026-01-01T00:00:00Z")).unwrap_err();
    assert_has(&err, DenialCode::CertExpired);
    assert!(
        err.iter().all(|d| d.code == DenialCode::CertExpired),
        "{err:#?}"
    );
}

#[test]
fn tampered_and_badly_signed_rims_are_refused() {
    let err = appraise_rim(
        &read("nvidia/neg_rim_driver_gh100_535.86.09_tampered.xml"),
        &vendor(),
        at("2025-06-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::RimDigestMismatch]);
    let err = appraise_rim(
        &read("nvidia/neg_rim_driver_gh100_550.144.03_bad_signature.xml"),
        &vendor(),
        as_of(),
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::RimSignatureInvalid]);
    // A RIM under the simulated RIM root only: untrusted.
    let err = appraise_rim(
        &read(VBIOS_5E),
        &TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap(),
        as_of(),
    )
    .unwrap_err();
    assert_has(&err, DenialCode::ChainUntrusted);
    // Not XML at all.
    let err = appraise_rim(b"<nope", &vendor(), as_of()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::EvidenceMalformed]);
}

#[test]
fn h100_535_matches_vbios_rim_5e_12_of_12() {
    let report = AttestationReport::parse(&read("nvidia/h100_nvat_535_report.bin")).unwrap();
    let rim = Rim::parse(&read(VBIOS_5E)).unwrap();
    let m = compare_measurements(&report, None, Some(&rim)).unwrap();
    assert!(m.compared);
    assert_eq!(m.matched, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]);
    assert_eq!(m.vbios_version_match, Some(true));
    assert_eq!(m.driver_version_match, None);
    assert!(m.skipped.is_empty());

    // The same through appraise, with the RIM as collateral.
    let xml = read(VBIOS_5E);
    let claims = appraise_files(
        "nvidia/h100_nvat_535_report.bin",
        "nvidia/h100_nvat_535_chain.pem",
        &GpuCollateral {
            rims: vec![&xml],
            ocsp: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(claims.measurements.matched.len(), 12);
    assert_eq!(claims.rims.len(), 1);
    assert_eq!(claims.rims[0].version, "96.00.5E.00.01");
}

#[test]
fn other_vbios_rim_is_refused_for_the_535_report() {
    let report = AttestationReport::parse(&read("nvidia/h100_nvat_535_report.bin")).unwrap();
    let rim = Rim::parse(&read(VBIOS_74)).unwrap();
    let err = compare_measurements(&report, None, Some(&rim)).unwrap_err();
    assert_has(&err, DenialCode::RimVersionMismatch);
    let version = err
        .iter()
        .find(|d| d.code == DenialCode::RimVersionMismatch)
        .unwrap();
    assert!(version.to_string().contains("96.00.74.00.1A"), "{version}");
    assert!(version.to_string().contains("96.00.5E.00.01"), "{version}");
    // A VBIOS RIM in the driver slot is refused too.
    let err = compare_measurements(&report, Some(&rim), None).unwrap_err();
    assert_has(&err, DenialCode::RimVersionMismatch);

    // Through appraise: both VBIOS RIMs offered, the matching one is chosen.
    let (a, b) = (read(VBIOS_74), read(VBIOS_5E));
    let claims = appraise_files(
        "nvidia/h100_nvat_535_report.bin",
        "nvidia/h100_nvat_535_chain.pem",
        &GpuCollateral {
            rims: vec![&a, &b],
            ocsp: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(claims.rims[0].version, "96.00.5E.00.01");
    // Only the wrong one: refused.
    let err = appraise_files(
        "nvidia/h100_nvat_535_report.bin",
        "nvidia/h100_nvat_535_chain.pem",
        &GpuCollateral {
            rims: vec![&a],
            ocsp: Vec::new(),
        },
    )
    .unwrap_err();
    assert_has(&err, DenialCode::RimVersionMismatch);
}

#[test]
fn bad_rim_in_collateral_refuses_the_gpu() {
    let bad = read("nvidia/neg_rim_driver_gh100_550.144.03_bad_signature.xml");
    let err = appraise_files(
        "nvidia/h100_nvtrust_550_report.bin",
        "nvidia/h100_nvtrust_550_chain.pem",
        &GpuCollateral {
            rims: vec![&bad],
            ocsp: Vec::new(),
        },
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::RimSignatureInvalid]);
}

// ---------------------------------------------------------------- simulation

const SIM_DRIVER: &str = "550.90.07";
const SIM_VBIOS: &str = "96.00.9F.00.01";
const NONCE: [u8; 32] = [0x5a; 32];

fn sim_gpu(overrides: Vec<(u8, [u8; 48])>) -> SimulatedGpu {
    let mut p = GpuSimParams::new(SpdmNonce(NONCE));
    p.measurement_overrides = overrides;
    simulate(&SimSeed::DEFAULT, &p).unwrap()
}

/// Simulated driver and VBIOS RIMs from the simulator's golden values,
/// split the way NVIDIA's are (VBIOS 0-6 and 8-12, driver the rest).
fn sim_rims(extra_driver: Vec<(u8, bool, Vec<[u8; 48]>)>) -> (String, String) {
    let mut driver = Vec::new();
    let mut vbios = Vec::new();
    for (block, value) in golden_measurements(&SimSeed::DEFAULT) {
        if value == [0; 48] {
            continue;
        }
        let index = block - 1;
        if index <= 12 && index != 7 {
            vbios.push((index, true, vec![value]));
        } else {
            driver.push((index, true, vec![value]));
        }
    }
    for e in extra_driver {
        driver.retain(|(i, _, _)| *i != e.0);
        driver.push(e);
    }
    let d = simulate_rim(
        &SimSeed::DEFAULT,
        &SimRimSpec::new(RimKind::Driver, SIM_DRIVER, driver),
    )
    .unwrap();
    let v = simulate_rim(
        &SimSeed::DEFAULT,
        &SimRimSpec::new(RimKind::Vbios, SIM_VBIOS, vbios),
    )
    .unwrap();
    (d, v)
}

fn sim_roots() -> TrustRoots {
    TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap()
}

fn appraise_sim(
    gpu: &SimulatedGpu,
    roots: &TrustRoots,
    rims: &[&str],
    ocsp: &[&[u8]],
) -> Result<GpuClaims, Vec<Denial>> {
    let ev = GpuEvidence {
        report: &gpu.report,
        chain_pem: gpu.chain_pem.as_bytes(),
        expected_nonce: Some(NONCE),
    };
    let collateral = GpuCollateral {
        rims: rims.iter().map(|r| r.as_bytes()).collect(),
        ocsp: ocsp.to_vec(),
    };
    appraise(&ev, roots, &collateral, as_of())
}

#[test]
fn simulated_gpu_with_simulated_rims() {
    let gpu = sim_gpu(Vec::new());
    let (driver, vbios) = sim_rims(Vec::new());
    let claims = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap();
    assert_eq!(claims.roots, RootsOrigin::Simulated);
    assert!(claims.measurements.compared);
    assert_eq!(claims.measurements.driver_version_match, Some(true));
    assert_eq!(claims.measurements.vbios_version_match, Some(true));
    // 26 golden values; index 35 is skipped because NVDEC0 is disabled.
    assert_eq!(claims.measurements.matched.len(), 25);
    assert_eq!(
        claims.measurements.skipped.keys().collect::<Vec<_>>(),
        [&35]
    );
    assert_eq!(claims.fwid_match, Some(true));
    assert_eq!(claims.rims.len(), 2);
    assert!(
        claims
            .rims
            .iter()
            .all(|r| r.roots == RootsOrigin::Simulated)
    );
    assert!(claims.device_chain.iter().all(|s| s.contains("SIMULATED")));

    // Vendor roots: the device chain and both RIM chains are untrusted.
    let err = appraise_sim(&gpu, &vendor(), &[&driver, &vbios], &[]).unwrap_err();
    assert_eq!(
        err.iter()
            .filter(|d| d.code == DenialCode::ChainUntrusted)
            .count(),
        3,
        "{err:#?}"
    );
    assert!(
        err.iter().all(|d| d.code == DenialCode::ChainUntrusted),
        "{err:#?}"
    );
}

#[test]
fn simulated_measurement_override_names_the_index() {
    // Block 23 is RIM index 22 (a driver index in the split above).
    let gpu = sim_gpu(vec![(23, [0xEE; 48])]);
    let (driver, vbios) = sim_rims(Vec::new());
    let err = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::MeasurementMismatch]);
    let text = err[0].to_string();
    assert!(text.contains("index 22"), "{text}");
    assert!(text.contains(&"ee".repeat(48)), "{text}");
    let golden = golden_measurements(&SimSeed::DEFAULT)[22].1;
    assert!(text.contains(&hex::encode(golden)), "{text}");
}

#[test]
fn conflicts_alternatives_and_nvdec0() {
    let gpu = sim_gpu(Vec::new());
    let golden = golden_measurements(&SimSeed::DEFAULT);
    // Index 2 (a VBIOS index) also active in the driver RIM: conflict.
    let (driver, vbios) = sim_rims(vec![(2, true, vec![golden[2].1])]);
    let err = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::RimIndexConflict]);

    // Alternatives: the reported value may be any of them.
    let (driver, vbios) = sim_rims(vec![(22, true, vec![[1; 48], golden[22].1, [2; 48]])]);
    let claims = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap();
    assert!(claims.measurements.matched.contains(&22));

    // Index 35 with a value the GPU does not report: skipped, NVDEC0 is disabled.
    let (driver, vbios) = sim_rims(vec![(35, true, vec![[3; 48]])]);
    let claims = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap();
    assert!(claims.measurements.skipped.contains_key(&35));
    assert!(!claims.measurements.matched.contains(&35));

    // An inactive golden value is not compared.
    let (driver, vbios) = sim_rims(vec![(22, false, vec![[9; 48]])]);
    let claims = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap();
    assert!(!claims.measurements.matched.contains(&22));
    assert!(!claims.measurements.sources.contains_key(&22));
}

#[test]
fn simulated_driver_version_mismatch() {
    let mut p = GpuSimParams::new(SpdmNonce(NONCE));
    p.driver_version = "560.35.03".into();
    let gpu = simulate(&SimSeed::DEFAULT, &p).unwrap();
    let (driver, vbios) = sim_rims(Vec::new());
    let err = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::RimVersionMismatch]);
}

#[test]
fn devtools_mode_is_a_warning_and_a_claim() {
    let gpu = sim_gpu(Vec::new());
    let mut entry = gpu.evidence_entry();
    entry
        .extra
        .insert("cc_mode".into(), serde_json::Value::from("devtools"));
    let list = GpuEvidenceList::new(vec![entry]);
    let claims = appraise_list(
        &list,
        Some(NONCE),
        &sim_roots(),
        &GpuCollateral::default(),
        as_of(),
    )
    .unwrap();
    assert_eq!(claims[0].collection.devtools_mode, Some(true));
    assert_eq!(claims[0].collection.cc_mode.as_deref(), Some("devtools"));
    assert!(
        claims[0].warnings.iter().any(|w| w.contains("devtools")),
        "{:?}",
        claims[0].warnings
    );
    // Without the field: no warning.
    let list = GpuEvidenceList::new(vec![gpu.evidence_entry()]);
    let claims = appraise_list(
        &list,
        Some(NONCE),
        &sim_roots(),
        &GpuCollateral::default(),
        as_of(),
    )
    .unwrap();
    assert!(claims[0].warnings.is_empty(), "{:?}", claims[0].warnings);
    assert_eq!(claims[0].collection.devtools_mode, None);
}

// ---------------------------------------------------------------- OCSP

const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");

fn gtime(t: UnixTime) -> OcspGeneralizedTime {
    OcspGeneralizedTime(
        GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            u64::try_from(t.0).unwrap(),
        ))
        .unwrap(),
    )
}

fn p384_key(label: &str) -> p384::ecdsa::SigningKey {
    match SimKey::p384(&SimSeed::DEFAULT, label) {
        SimKey::P384(k) => k,
        _ => unreachable!(),
    }
}

struct OcspSpec<'a> {
    subject: &'a Cert,
    issuer: &'a Cert,
    status: CertStatus,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    hash: ObjectIdentifier,
    signer: p384::ecdsa::SigningKey,
    responder: ResponderId,
    certs: Option<Vec<x509_cert::Certificate>>,
}

impl<'a> OcspSpec<'a> {
    /// A good response signed by the issuer itself, valid a day around `as_of`.
    fn good(subject: &'a Cert, issuer: &'a Cert, issuer_key: &str) -> Self {
        Self {
            subject,
            issuer,
            status: CertStatus::good(),
            this_update: UnixTime(as_of().0 - 3600),
            next_update: Some(UnixTime(as_of().0 + 86_400)),
            hash: SHA1,
            signer: p384_key(issuer_key),
            responder: ResponderId::ByName(issuer.cert.tbs_certificate.subject.clone()),
            certs: None,
        }
    }

    fn build(&self) -> Vec<u8> {
        let name = self.issuer.cert.tbs_certificate.subject.to_der().unwrap();
        let (name_hash, key_hash) =
            hash_pair(&self.hash, &name, self.issuer.public_key_bytes()).unwrap();
        let cert_id = CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid: self.hash,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new(name_hash).unwrap(),
            issuer_key_hash: OctetString::new(key_hash).unwrap(),
            serial_number: self.subject.cert.tbs_certificate.serial_number.clone(),
        };
        let tbs = ResponseData {
            version: Version::V1,
            responder_id: self.responder.clone(),
            produced_at: gtime(self.this_update),
            responses: vec![SingleResponse {
                cert_id,
                cert_status: self.status,
                this_update: gtime(self.this_update),
                next_update: self.next_update.map(gtime),
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let sig: p384::ecdsa::Signature = self.signer.sign(&tbs.to_der().unwrap());
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: spki::AlgorithmIdentifierOwned {
                oid: ECDSA_SHA384,
                parameters: None,
            },
            signature: BitString::from_bytes(sig.to_der().as_bytes()).unwrap(),
            certs: self.certs.clone(),
        };
        OcspResponse::successful(basic).unwrap().to_der().unwrap()
    }
}

/// The simulated device chain (leaf first, root last) and the labels of the
/// keys that issued certificates 1, 2, 3.
fn sim_device_chain(gpu: &SimulatedGpu) -> Vec<Cert> {
    certs_from_pem_or_der(gpu.chain_pem.as_bytes(), "sim").unwrap()
}
const DEVICE_ISSUER_KEYS: [&str; 3] = [
    "nvidia-gh100-provisioner-ica",
    "nvidia-gh100-identity",
    "nvidia-device-root",
];

#[test]
fn ocsp_good_for_the_whole_device_chain() {
    let gpu = sim_gpu(Vec::new());
    let chain = sim_device_chain(&gpu);
    let responses: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            let mut spec = OcspSpec::good(&chain[i], &chain[i + 1], DEVICE_ISSUER_KEYS[i - 1]);
            if i == 2 {
                spec.hash = SHA384;
                spec.responder = ResponderId::ByKey(
                    OctetString::new(
                        <sha1::Sha1 as sha2::Digest>::digest(chain[i + 1].public_key_bytes())
                            .to_vec(),
                    )
                    .unwrap(),
                );
            }
            spec.build()
        })
        .collect();
    let refs: Vec<&[u8]> = responses.iter().map(Vec::as_slice).collect();
    let claims = appraise_sim(&gpu, &sim_roots(), &[], &refs).unwrap();
    assert_eq!(claims.device_revocation.status, RevocationStatus::Good);
    assert!(claims.device_revocation.checked());
    assert_eq!(claims.device_revocation.certs.len(), 3);
    // One of three: the aggregate says not checked.
    let claims = appraise_sim(&gpu, &sim_roots(), &[], &refs[..1]).unwrap();
    assert_eq!(
        claims.device_revocation.status,
        RevocationStatus::NotChecked
    );
    assert_eq!(
        claims.device_revocation.certs[0].status,
        RevocationStatus::Good
    );
}

#[test]
fn ocsp_revoked_unknown_forged_and_stale() {
    let gpu = sim_gpu(Vec::new());
    let chain = sim_device_chain(&gpu);
    let base = || OcspSpec::good(&chain[1], &chain[2], DEVICE_ISSUER_KEYS[0]);

    let mut revoked = base();
    revoked.status = CertStatus::revoked(RevokedInfo {
        revocation_time: gtime(UnixTime(as_of().0 - 7200)),
        revocation_reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
    });
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&revoked.build()]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::CertRevoked]);
    assert!(err[0].message.contains("KeyCompromise"), "{}", err[0]);

    let mut unknown = base();
    unknown.status = CertStatus::unknown();
    let claims = appraise_sim(&gpu, &sim_roots(), &[], &[&unknown.build()]).unwrap();
    assert_eq!(claims.device_revocation.status, RevocationStatus::Unknown);

    // Signed by a key that is not the issuer's.
    let mut forged = base();
    forged.signer = p384_key("someone-else");
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&forged.build()]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);

    // Past nextUpdate.
    let mut stale = base();
    stale.this_update = UnixTime(as_of().0 - 10 * 86_400);
    stale.next_update = Some(UnixTime(as_of().0 - 86_400));
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&stale.build()]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);

    // No nextUpdate: current for an hour after thisUpdate only.
    let mut open = base();
    open.next_update = None;
    open.this_update = UnixTime(as_of().0 - 7200);
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&open.build()]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);

    // From the future.
    let mut early = base();
    early.this_update = UnixTime(as_of().0 + 60);
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&early.build()]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);

    // For another certificate (wrong serial): ignored, not checked.
    let mut other = base();
    other.subject = &chain[0];
    let claims = appraise_sim(&gpu, &sim_roots(), &[], &[&other.build()]).unwrap();
    assert_eq!(
        claims.device_revocation.status,
        RevocationStatus::NotChecked
    );

    // Garbage: invalid.
    let err = appraise_sim(
        &gpu,
        &sim_roots(),
        &[],
        &[b"\x30\x03\x0a\x01\x00".as_slice()],
    )
    .unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);
}

#[test]
fn ocsp_delegated_responder() {
    let gpu = sim_gpu(Vec::new());
    let chain = sim_device_chain(&gpu);
    let issuer = &chain[2];
    let issuer_key = SimKey::p384(&SimSeed::DEFAULT, DEVICE_ISSUER_KEYS[0]);
    let responder_key = SimKey::p384(&SimSeed::DEFAULT, "ocsp-responder");
    let eku = x509_cert::ext::pkix::ExtendedKeyUsage(vec![ObjectIdentifier::new_unwrap(
        "1.3.6.1.5.5.7.3.9",
    )])
    .to_der()
    .unwrap();
    let issue = |with_eku: bool, by: &SimKey| {
        let mut spec = CertSpec::new("CN=OCSP Responder SIMULATED,O=NVIDIA SIMULATED", &[0x33]);
        if with_eku {
            spec = spec.extension("2.5.29.37", false, eku.clone()).unwrap();
        }
        let mut rng = attestor::sim::rng(&SimSeed::DEFAULT, "ocsp-responder-cert");
        attestor::sim::issue(
            &spec,
            responder_key.spki().unwrap(),
            &issuer.subject(),
            by,
            &mut rng,
        )
        .unwrap()
    };
    let build = |cert: x509_cert::Certificate| {
        let mut spec = OcspSpec::good(&chain[1], issuer, "ocsp-responder");
        spec.responder = ResponderId::ByName(cert.tbs_certificate.subject.clone());
        spec.certs = Some(vec![cert]);
        spec.build()
    };
    let good = build(issue(true, &issuer_key));
    let claims = appraise_sim(&gpu, &sim_roots(), &[], &[&good]).unwrap();
    assert_eq!(
        claims.device_revocation.certs[0].status,
        RevocationStatus::Good
    );
    // Without id-kp-OCSPSigning, or certified by someone else: invalid.
    let no_eku = build(issue(false, &issuer_key));
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&no_eku]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);
    let stranger = build(issue(true, &SimKey::p384(&SimSeed::DEFAULT, "stranger")));
    let err = appraise_sim(&gpu, &sim_roots(), &[], &[&stranger]).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::OcspInvalid]);
}

#[test]
fn ocsp_for_a_rim_signing_chain() {
    let gpu = sim_gpu(Vec::new());
    let (driver, vbios) = sim_rims(Vec::new());
    let rim = Rim::parse(driver.as_bytes()).unwrap();
    let chain: Vec<Cert> = rim
        .signature
        .certs_der
        .iter()
        .map(|d| Cert::from_der(d, "rim").unwrap())
        .collect();
    assert_eq!(chain.len(), 4);
    let keys = [
        "nvidia-rim/GH100/l3",
        "nvidia-rim/GH100/ca",
        "nvidia-rim/root",
    ];
    let good: Vec<Vec<u8>> = (0..3)
        .map(|i| OcspSpec::good(&chain[i], &chain[i + 1], keys[i]).build())
        .collect();
    let refs: Vec<&[u8]> = good.iter().map(Vec::as_slice).collect();
    let claims = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &refs).unwrap();
    let driver_claims = claims
        .rims
        .iter()
        .find(|r| r.kind == RimKind::Driver)
        .unwrap();
    assert_eq!(driver_claims.revocation.status, RevocationStatus::Good);
    // The simulator signs both RIMs with the same GH100 chain: covered too.
    let vbios_claims = claims
        .rims
        .iter()
        .find(|r| r.kind == RimKind::Vbios)
        .unwrap();
    assert_eq!(vbios_claims.revocation.status, RevocationStatus::Good);

    // The signer revoked: the GPU is refused.
    let mut revoked = OcspSpec::good(&chain[0], &chain[1], keys[0]);
    revoked.status = CertStatus::revoked(RevokedInfo {
        revocation_time: gtime(UnixTime(as_of().0 - 7200)),
        revocation_reason: None,
    });
    let revoked = revoked.build();
    let err = appraise_sim(&gpu, &sim_roots(), &[&driver, &vbios], &[&revoked]).unwrap_err();
    assert_has(&err, DenialCode::CertRevoked);
}

#[test]
fn names_roundtrip_for_the_simulated_issuers() {
    // The delegated-responder test issues under `Cert::subject()` text.
    let gpu = sim_gpu(Vec::new());
    let chain = sim_device_chain(&gpu);
    let name = x509_cert::name::Name::from_str(&chain[2].subject()).unwrap();
    assert_eq!(name, chain[2].cert.tbs_certificate.subject);
}
