//! SEV-SNP appraisal over the real captures (MANIFEST "AMD SEV-SNP"), a tamper
//! matrix over the signed region, and simulated evidence under both kinds of roots.

use std::sync::OnceLock;

use attestor::sim::SimSeed;
use attestor::snp::certs::Product;
use attestor::snp::report::{GuestPolicy, ReportData};
use attestor::snp::simulate::{SnpSimParams, simulate};
use verifier::appraise::snp::{ChipIdCheck, SnpClaims, SnpCollateral, SnpEvidence, appraise};
use verifier::denial::{Denial, DenialCode};
use verifier::time::UnixTime;
use verifier::trust::{RootsOrigin, TrustRoots};

use crate::testdata_dir;

/// The MANIFEST's "as of" time for every genuine SNP capture.
const AS_OF: &str = "2025-09-01T00:00:00Z";

fn at(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

fn read(rel: &str) -> Vec<u8> {
    let p = testdata_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn vendor() -> &'static TrustRoots {
    static ROOTS: OnceLock<TrustRoots> = OnceLock::new();
    ROOTS.get_or_init(|| TrustRoots::vendor().unwrap())
}

fn simulated_roots() -> &'static TrustRoots {
    static ROOTS: OnceLock<TrustRoots> = OnceLock::new();
    ROOTS.get_or_init(|| TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap())
}

fn run(report: &[u8], vek: &[u8], roots: &TrustRoots, now: &str) -> Result<SnpClaims, Vec<Denial>> {
    appraise(
        &SnpEvidence {
            report,
            vek_der: Some(vek),
            cert_table: None,
            expected_report_data: None,
        },
        roots,
        &SnpCollateral::default(),
        at(now),
    )
}

fn codes(denials: &[Denial]) -> Vec<DenialCode> {
    denials.iter().map(|d| d.code).collect()
}

#[track_caller]
fn assert_denied_with(result: Result<SnpClaims, Vec<Denial>>, code: DenialCode) -> Vec<Denial> {
    match result {
        Ok(c) => panic!("accepted, expected {code}: {c:?}"),
        Err(d) => {
            assert!(codes(&d).contains(&code), "expected {code}, got {d:#?}");
            d
        }
    }
}

/// (report, VEK, product, report version, signed by VLEK)
const GENUINE: [(&str, &str, Product, u32, bool); 7] = [
    (
        "snp/milan_virtee_v2_report.bin",
        "snp/milan_virtee_v2_vcek.der",
        Product::Milan,
        2,
        false,
    ),
    (
        "snp/milan_gosev_v2_report.bin",
        "snp/milan_gosev_v2_vcek.der",
        Product::Milan,
        2,
        false,
    ),
    (
        "snp/milan_trustee_v2_report.bin",
        "snp/milan_trustee_v2_vcek.der",
        Product::Milan,
        2,
        false,
    ),
    (
        "snp/milan_azure_v3_report.bin",
        "snp/milan_azure_v3_vcek.der",
        Product::Milan,
        3,
        false,
    ),
    (
        "snp/milan_aws_vlek_v3_report.bin",
        "snp/milan_aws_vlek_v3_vlek.pem",
        Product::Milan,
        3,
        true,
    ),
    (
        "snp/genoa_veraison_v3_report.bin",
        "snp/genoa_veraison_v3_vcek.der",
        Product::Genoa,
        3,
        false,
    ),
    (
        "snp/turin_oak_v5_report.bin",
        "snp/turin_oak_v5_vcek.der",
        Product::Turin,
        5,
        false,
    ),
];

#[test]
fn every_genuine_report_is_accepted_as_of_the_manifest_time() {
    for (report, vek, product, version, vlek) in GENUINE {
        let claims = run(&read(report), &read(vek), vendor(), AS_OF)
            .unwrap_or_else(|d| panic!("{report}: {d:#?}"));
        assert_eq!(claims.roots, RootsOrigin::Vendor, "{report}");
        assert_eq!(claims.product, product, "{report}");
        assert_eq!(claims.version, version, "{report}");
        assert_eq!(
            claims.chip_id_check,
            if vlek {
                ChipIdCheck::NotApplicableVlek
            } else {
                ChipIdCheck::Matched
            },
            "{report}"
        );
        assert!(!claims.revocation.checked, "{report}");
        assert!(claims.revocation.note.contains("no CRL"), "{report}");
        // go-sev-guest's capture has policy 0xb0000: debug allowed, a genuine fact.
        let debug = report.contains("gosev");
        assert_eq!(claims.debug, debug, "{report}");
        assert_eq!(
            claims.warnings.len(),
            usize::from(debug),
            "{report}: {:?}",
            claims.warnings
        );
        // Claims are JSON for policy, bytes in hex.
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["measurement"].as_str().unwrap().len(), 96, "{report}");
        assert_eq!(json["report_data"].as_str().unwrap().len(), 128, "{report}");
        assert_eq!(json["policy"]["debug_allowed"], debug, "{report}");
        assert_eq!(json["roots"], "vendor");
    }
}

#[test]
fn genuine_claims_carry_the_manifest_values() {
    let c = run(
        &read("snp/milan_virtee_v2_report.bin"),
        &read("snp/milan_virtee_v2_vcek.der"),
        vendor(),
        AS_OF,
    )
    .unwrap();
    assert_eq!(c.policy.0, 0x30000);
    assert_eq!(c.vmpl, 0);
    assert_eq!(c.tcb.reported.raw.0, 0x7308_0000_0000_0003);
    assert_eq!(
        (
            c.tcb.reported.parts.bootloader,
            c.tcb.reported.parts.snp,
            c.tcb.reported.parts.microcode
        ),
        (3, 8, 115)
    );
    assert_eq!(c.current_version.to_string(), "1.52.4");
    assert!(
        c.report_data
            .to_hex()
            .starts_with("d447b55d197491bfe15cf298f9de9986")
    );
    assert_eq!(c.vek.extensions.product_name, "Milan-B0");
    assert!(c.cpuid.is_none());

    let turin = run(
        &read("snp/turin_oak_v5_report.bin"),
        &read("snp/turin_oak_v5_vcek.der"),
        vendor(),
        AS_OF,
    )
    .unwrap();
    let p = turin.tcb.reported.parts;
    assert_eq!(
        (p.fmc, p.bootloader, p.tee, p.snp, p.microcode),
        (Some(0), 1, 0, 2, 71)
    );
    assert!(turin.launch_mit_vector.is_some());

    let vlek = run(
        &read("snp/milan_aws_vlek_v3_report.bin"),
        &read("snp/milan_aws_vlek_v3_vlek.pem"),
        vendor(),
        AS_OF,
    )
    .unwrap();
    assert_eq!(vlek.signing_key.to_string(), "VLEK");
    assert_eq!(
        vlek.vek.extensions.csp_id.as_deref(),
        Some("CN=cc-eu-west-1.amazonaws.com")
    );
    assert!(vlek.chip_id.is_zero());
}

#[test]
fn forged_vceks_are_denied_with_their_specific_codes() {
    let report = read("snp/milan_trustee_v2_report.bin");
    for forged in [
        "snp/neg_milan_trustee_vcek-invalid-legacy.der",
        "snp/neg_milan_trustee_vcek-invalid-new.der",
    ] {
        let d = assert_denied_with(
            run(&report, &read(forged), vendor(), AS_OF),
            DenialCode::CertSignatureInvalid,
        );
        let c = codes(&d);
        for code in [
            DenialCode::SignatureInvalid,
            DenialCode::TcbMismatch,
            DenialCode::ChipIdMismatch,
        ] {
            assert!(c.contains(&code), "{forged}: expected {code} in {d:#?}");
        }
    }
}

#[test]
fn the_wrong_vlek_is_denied() {
    let d = assert_denied_with(
        run(
            &read("snp/milan_aws_vlek_v3_report.bin"),
            &read("snp/neg_milan_aws_wrong_vlek.pem"),
            vendor(),
            // Inside the wrong VLEK's own validity, so only the pairing fails.
            "2024-01-01T00:00:00Z",
        ),
        DenialCode::SignatureInvalid,
    );
    assert!(codes(&d).contains(&DenialCode::TcbMismatch), "{d:#?}");
    assert!(
        !codes(&d).contains(&DenialCode::CertSignatureInvalid),
        "genuine VLEK: {d:#?}"
    );
}

#[test]
fn a_vcek_from_another_chip_is_denied() {
    // gosev's Milan report with virtee's Milan VCEK, and Genoa's with Milan's.
    let d = assert_denied_with(
        run(
            &read("snp/milan_gosev_v2_report.bin"),
            &read("snp/milan_virtee_v2_vcek.der"),
            vendor(),
            AS_OF,
        ),
        DenialCode::SignatureInvalid,
    );
    assert!(codes(&d).contains(&DenialCode::ChipIdMismatch), "{d:#?}");
    assert!(codes(&d).contains(&DenialCode::TcbMismatch), "{d:#?}");
    let d = assert_denied_with(
        run(
            &read("snp/genoa_veraison_v3_report.bin"),
            &read("snp/milan_azure_v3_vcek.der"),
            vendor(),
            AS_OF,
        ),
        DenialCode::SignatureInvalid,
    );
    assert!(codes(&d).contains(&DenialCode::ProductMismatch), "{d:#?}");
    // The chain-only Turin VCEK with the Oak Turin report.
    let d = assert_denied_with(
        run(
            &read("snp/turin_oak_v5_report.bin"),
            &read("snp/turin_virtee_vcek_only.der"),
            vendor(),
            AS_OF,
        ),
        DenialCode::SignatureInvalid,
    );
    assert!(codes(&d).contains(&DenialCode::ChipIdMismatch), "{d:#?}");
}

#[test]
fn certificates_are_checked_at_now() {
    let report = read("snp/milan_virtee_v2_report.bin");
    let vcek = read("snp/milan_virtee_v2_vcek.der");
    let d = assert_denied_with(
        run(&report, &vcek, vendor(), "2031-01-01T00:00:00Z"),
        DenialCode::CertExpired,
    );
    assert_eq!(
        codes(&d),
        vec![DenialCode::CertExpired],
        "only the VCEK expired: {d:#?}"
    );
    assert_denied_with(
        run(&report, &vcek, vendor(), "2022-01-01T00:00:00Z"),
        DenialCode::CertNotYetValid,
    );
    // The AWS VLEK lives one year.
    assert_denied_with(
        run(
            &read("snp/milan_aws_vlek_v3_report.bin"),
            &read("snp/milan_aws_vlek_v3_vlek.pem"),
            vendor(),
            "2026-01-01T00:00:00Z",
        ),
        DenialCode::CertExpired,
    );
}

#[test]
fn report_data_must_match_exactly() {
    let report = read("snp/milan_azure_v3_report.bin");
    let vcek = read("snp/milan_azure_v3_vcek.der");
    let actual: [u8; 64] = report[0x50..0x90].try_into().unwrap();
    let mut evidence = SnpEvidence {
        report: &report,
        vek_der: Some(&vcek),
        cert_table: None,
        expected_report_data: Some(actual),
    };
    let ok = appraise(&evidence, vendor(), &SnpCollateral::default(), at(AS_OF)).unwrap();
    assert!(ok.report_data_checked);
    let mut wrong = actual;
    wrong[63] ^= 1;
    evidence.expected_report_data = Some(wrong);
    let d = appraise(&evidence, vendor(), &SnpCollateral::default(), at(AS_OF)).unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::ReportDataMismatch]);
}

/// Flips one bit in each field group of the signed region of a v3 report.
#[test]
fn tamper_matrix_every_signed_field_breaks_the_signature() {
    let report = read("snp/milan_azure_v3_report.bin");
    let vcek = read("snp/milan_azure_v3_vcek.der");
    run(&report, &vcek, vendor(), AS_OF).unwrap();
    // (field, byte offset, bit, extra code expected beside signature_invalid)
    let matrix: &[(&str, usize, u8, Option<DenialCode>)] = &[
        ("version", 0x000, 2, Some(DenialCode::UnsupportedFormat)),
        ("guest_svn", 0x004, 0, None),
        ("policy.debug", 0x008 + 2, 3, None),
        ("policy.smt", 0x008 + 2, 0, None),
        ("family_id", 0x010, 0, None),
        ("image_id", 0x020, 7, None),
        ("vmpl", 0x030, 0, None),
        ("current_tcb", 0x038, 0, None),
        ("platform_info", 0x040, 1, None),
        ("key_info.author_key_en", 0x048, 0, None),
        (
            "reserved_04c",
            0x04C,
            0,
            Some(DenialCode::EvidenceMalformed),
        ),
        ("report_data", 0x050, 0, None),
        ("report_data.last", 0x08F, 7, None),
        ("measurement", 0x090, 0, None),
        ("host_data", 0x0C0, 0, None),
        ("id_key_digest", 0x0E0, 0, None),
        ("author_key_digest", 0x110, 0, None),
        ("report_id", 0x140, 0, None),
        ("report_id_ma", 0x160, 0, None),
        ("reported_tcb", 0x180, 0, Some(DenialCode::TcbMismatch)),
        ("cpuid.stepping", 0x18A, 1, None),
        (
            "reserved_18b",
            0x18B,
            0,
            Some(DenialCode::EvidenceMalformed),
        ),
        ("chip_id", 0x1A0, 0, Some(DenialCode::ChipIdMismatch)),
        ("chip_id.last", 0x1DF, 7, Some(DenialCode::ChipIdMismatch)),
        ("committed_tcb", 0x1E0, 0, None),
        ("current_version", 0x1E8, 0, None),
        ("committed_version", 0x1EC, 0, None),
        ("launch_tcb", 0x1F0, 0, None),
        (
            "launch_mit_vector (reserved in v3)",
            0x1F8,
            0,
            Some(DenialCode::EvidenceMalformed),
        ),
        (
            "reserved_208",
            0x208,
            0,
            Some(DenialCode::EvidenceMalformed),
        ),
        (
            "reserved_29f",
            0x29F,
            7,
            Some(DenialCode::EvidenceMalformed),
        ),
        ("signature.r", 0x2A0, 0, None),
        ("signature.r.msb", 0x2A0 + 47, 7, None),
        ("signature.s", 0x2E8, 0, None),
        (
            "signature.r[48..72]",
            0x2A0 + 50,
            0,
            Some(DenialCode::EvidenceMalformed),
        ),
    ];
    for &(field, offset, bit, extra) in matrix {
        let mut t = report.clone();
        t[offset] ^= 1 << bit;
        let d = assert_denied_with(
            run(&t, &vcek, vendor(), AS_OF),
            DenialCode::SignatureInvalid,
        );
        if let Some(code) = extra {
            assert!(
                codes(&d).contains(&code),
                "{field}: expected {code} in {d:#?}"
            );
        }
    }
    // The algorithm field: an unknown algorithm is refused before any signature check.
    let mut t = report.clone();
    t[0x034] ^= 2;
    assert_denied_with(
        run(&t, &vcek, vendor(), AS_OF),
        DenialCode::UnsupportedAlgorithm,
    );
    // Signing key NONE (7) or reserved (2).
    for key in [7u8, 2] {
        let mut t = report.clone();
        t[0x048] = (t[0x048] & !0x1C) | (key << 2);
        assert_denied_with(
            run(&t, &vcek, vendor(), AS_OF),
            DenialCode::SigningKeyUnsupported,
        );
    }
    // The reserved tail of the signature block is not signed, but must be zero.
    let mut t = report.clone();
    t[0x400] ^= 1;
    let d = run(&t, &vcek, vendor(), AS_OF).unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::EvidenceMalformed]);
    // Truncated or extended reports do not parse.
    assert_denied_with(
        run(&report[..0x49F], &vcek, vendor(), AS_OF),
        DenialCode::EvidenceMalformed,
    );
    let mut long = report.clone();
    long.push(0);
    assert_denied_with(
        run(&long, &vcek, vendor(), AS_OF),
        DenialCode::EvidenceMalformed,
    );
}

#[test]
fn missing_vek_is_chain_malformed() {
    let report = read("snp/milan_azure_v3_report.bin");
    let d = appraise(
        &SnpEvidence {
            report: &report,
            vek_der: None,
            cert_table: None,
            expected_report_data: None,
        },
        vendor(),
        &SnpCollateral::default(),
        at(AS_OF),
    )
    .unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::ChainMalformed]);
}

fn sim_milan(policy: Option<GuestPolicy>) -> attestor::snp::simulate::SimulatedSnp {
    let mut params = SnpSimParams::new(Product::Milan, ReportData([0x42; 64]));
    if let Some(p) = policy {
        params.policy = p;
    }
    simulate(&SimSeed::DEFAULT, &params).unwrap()
}

#[test]
fn simulated_reports_need_simulated_roots() {
    for product in Product::ALL {
        let sim = simulate(
            &SimSeed::DEFAULT,
            &SnpSimParams::new(product, ReportData([0x42; 64])),
        )
        .unwrap();
        // The VCEK from the cert table (no vek_der), as a guest sends it.
        let evidence = SnpEvidence {
            report: &sim.report,
            vek_der: None,
            cert_table: Some(&sim.cert_table),
            expected_report_data: Some([0x42; 64]),
        };
        let now = at(AS_OF);
        let claims = appraise(&evidence, simulated_roots(), &SnpCollateral::default(), now)
            .unwrap_or_else(|d| panic!("{product}: {d:#?}"));
        assert_eq!(claims.roots, RootsOrigin::Simulated);
        assert_eq!(claims.product, product);
        assert!(claims.warnings.iter().any(|w| w.contains("simulator")));
        let d = appraise(&evidence, vendor(), &SnpCollateral::default(), now).unwrap_err();
        assert!(
            codes(&d).contains(&DenialCode::ChainUntrusted),
            "{product}: {d:#?}"
        );
    }
}

#[test]
fn a_debug_policy_is_a_claim_and_a_warning_not_a_denial() {
    let sim = sim_milan(Some(GuestPolicy::new(0, 0).with(GuestPolicy::DEBUG, true)));
    let claims = run(&sim.report, &sim.vcek_der, simulated_roots(), AS_OF).unwrap();
    assert!(claims.debug);
    assert!(claims.policy.debug_allowed());
    assert!(
        claims.warnings.iter().any(|w| w.contains("debug")),
        "{:?}",
        claims.warnings
    );
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["policy"]["debug_allowed"], true);
    assert_eq!(json["roots"], "simulated");
}

#[test]
fn chain_override_replaces_the_pinned_intermediate_but_never_the_ark() {
    let sim = sim_milan(None);
    let evidence = SnpEvidence {
        report: &sim.report,
        vek_der: Some(&sim.vcek_der),
        cert_table: None,
        expected_report_data: None,
    };
    let now = at(AS_OF);
    // The simulated ASK as an override, checked against the pinned simulated ARK.
    let ok = SnpCollateral {
        crl_der: None,
        chain_override: Some(&sim.ask_der),
    };
    appraise(&evidence, simulated_roots(), &ok, now).unwrap();
    // Under the vendor roots the simulated ASK (and ARK) are refused.
    let d = appraise(&evidence, vendor(), &ok, now).unwrap_err();
    assert!(codes(&d).contains(&DenialCode::ChainUntrusted), "{d:#?}");
    // A genuine AMD ASK does not certify the simulated VCEK.
    let genuine_ask = vendor().amd(Product::Milan).unwrap().ask.clone();
    let bad = SnpCollateral {
        crl_der: None,
        chain_override: Some(&genuine_ask),
    };
    assert!(appraise(&evidence, simulated_roots(), &bad, now).is_err());
}

#[test]
fn the_vek_comes_from_the_cert_table_by_signing_key() {
    use attestor::snp::certs::{CertTable, Guid};
    let vlek_pem = read("snp/milan_aws_vlek_v3_vlek.pem");
    let vlek = attestor::snp::certs::pem_or_der_certs(&vlek_pem)
        .unwrap()
        .remove(0);
    let report = read("snp/milan_aws_vlek_v3_report.bin");
    let evidence = |table: &[u8]| {
        appraise(
            &SnpEvidence {
                report: &report,
                vek_der: None,
                cert_table: Some(table),
                expected_report_data: None,
            },
            vendor(),
            &SnpCollateral::default(),
            at(AS_OF),
        )
    };
    let with_vlek = CertTable::build(&[(Guid::VLEK, vlek.clone())]).to_bytes();
    evidence(&with_vlek).unwrap();
    // A VLEK-signed report finds no VLEK in a table holding only a VCEK entry.
    let vcek_only = CertTable::build(&[(Guid::VCEK, vlek)]).to_bytes();
    let d = evidence(&vcek_only).unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::ChainMalformed]);
    let d = evidence(b"garbage").unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::ChainMalformed]);
}

#[test]
fn turin_hwid_is_the_first_8_bytes_and_the_rest_of_chip_id_must_be_zero() {
    let report = read("snp/turin_oak_v5_report.bin");
    let vcek = read("snp/turin_oak_v5_vcek.der");
    // The genuine pair: 8 bytes of hwID, CHIP_ID[8..64] zero.
    assert!(report[0x1A8..0x1E0].iter().all(|&b| b == 0));
    for offset in [0x1A0, 0x1A7, 0x1A8, 0x1DF] {
        let mut t = report.clone();
        t[offset] ^= 1;
        let d = assert_denied_with(run(&t, &vcek, vendor(), AS_OF), DenialCode::ChipIdMismatch);
        assert!(codes(&d).contains(&DenialCode::SignatureInvalid), "{d:#?}");
    }
}

/// Re-signs a simulated Milan report after `edit`, with the simulator's VCEK key.
fn resign_sim_milan(edit: impl FnOnce(&mut attestor::snp::report::Report)) -> (Vec<u8>, Vec<u8>) {
    use attestor::sim::SimKey;
    use attestor::snp::report::{ChipId, Report, Signature};
    use p384::ecdsa::signature::Signer;
    let mut params = SnpSimParams::new(Product::Milan, ReportData([0x42; 64]));
    params.chip_id = Some(ChipId([0; 64]));
    let sim = simulate(&SimSeed::DEFAULT, &params).unwrap();
    let mut report = Report::parse(&sim.report).unwrap();
    // The simulator's VCEK key label (attestor::snp::simulate).
    let label = format!("snp/Milan/vcek/{}/{}", report.chip_id, report.reported_tcb);
    let SimKey::P384(key) = SimKey::p384(&SimSeed::DEFAULT, &label) else {
        unreachable!()
    };
    edit(&mut report);
    let sig: p384::ecdsa::Signature = key.sign(&report.signed_bytes());
    let bytes = sig.to_bytes();
    let rs: [u8; 96] = bytes[..].try_into().unwrap();
    report.signature = Signature::from_p384_be(&rs);
    (report.to_bytes(), sim.vcek_der)
}

#[test]
fn a_masked_chip_id_is_a_claim_and_a_warning() {
    use attestor::snp::report::KeyInfo;
    // Unchanged (zero CHIP_ID, mask bit clear): the re-signing is right, and
    // the zero CHIP_ID equals the zero hwID the simulator certified.
    let (report, vcek) = resign_sim_milan(|_| {});
    let c = run(&report, &vcek, simulated_roots(), AS_OF).unwrap();
    assert_eq!(c.chip_id_check, ChipIdCheck::Matched);
    // Mask bit set: nothing to compare, said in the claims.
    let (report, vcek) = resign_sim_milan(|r| r.key_info = KeyInfo(r.key_info.0 | 2));
    let c = run(&report, &vcek, simulated_roots(), AS_OF).unwrap();
    assert_eq!(c.chip_id_check, ChipIdCheck::Masked);
    assert!(
        c.warnings.iter().any(|w| w.contains("masked")),
        "{:?}",
        c.warnings
    );
    // A correctly signed report whose REPORTED_TCB differs from the VCEK's.
    let (report, vcek) = resign_sim_milan(|r| r.reported_tcb.0 += 1);
    let d = run(&report, &vcek, simulated_roots(), AS_OF).unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::TcbMismatch]);
    // A correctly signed report with a CPUID naming another product.
    let (report, vcek) = resign_sim_milan(|r| r.cpuid_raw = [0x19, 0x11, 0x01]);
    let d = run(&report, &vcek, simulated_roots(), AS_OF).unwrap_err();
    assert_eq!(codes(&d), vec![DenialCode::ProductMismatch]);
}

mod crl {
    //! CRLs built with the simulator's ARK key.

    use std::str::FromStr;
    use std::time::Duration;

    use attestor::sim::{SimKey, SimSeed};
    use der::Encode;
    use der::asn1::{BitString, UtcTime};
    use x509_cert::Version;
    use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::Time;

    use super::*;

    fn utc(unix: u64) -> Time {
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix)).unwrap())
    }

    /// A CRL over `revoked` serials, signed by `signer_label`'s simulated key,
    /// valid 2025-08-01 .. 2025-10-01.
    fn crl(signer_label: &str, issuer: &str, revoked: &[&[u8]]) -> Vec<u8> {
        let key = SimKey::rsa(&SimSeed::DEFAULT, signer_label).unwrap();
        let alg = key.signature_algorithm().unwrap();
        let revoked: Vec<RevokedCert> = revoked
            .iter()
            .map(|s| RevokedCert {
                serial_number: SerialNumber::new(s).unwrap(),
                revocation_date: utc(1_753_000_000),
                crl_entry_extensions: None,
            })
            .collect();
        let tbs = TbsCertList {
            version: Version::V2,
            signature: alg.clone(),
            issuer: Name::from_str(issuer).unwrap(),
            this_update: utc(1_754_006_400),
            next_update: Some(utc(1_759_276_800)),
            revoked_certificates: (!revoked.is_empty()).then_some(revoked),
            crl_extensions: None,
        };
        let sig = key.sign_x509(
            &tbs.to_der().unwrap(),
            &mut attestor::sim::rng(&SimSeed::DEFAULT, "test-crl"),
        );
        CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: alg,
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    const ARK: &str = "CN=ARK-Milan SIMULATED,O=SIMULATED AMD,OU=Engineering";

    fn appraise_with(crl_der: &[u8], now: &str) -> Result<SnpClaims, Vec<Denial>> {
        let sim = sim_milan(None);
        appraise(
            &SnpEvidence {
                report: &sim.report,
                vek_der: Some(&sim.vcek_der),
                cert_table: None,
                expected_report_data: None,
            },
            simulated_roots(),
            &SnpCollateral {
                crl_der: Some(crl_der),
                chain_override: None,
            },
            at(now),
        )
    }

    #[test]
    fn a_current_crl_signed_by_the_ark_is_checked() {
        let c = appraise_with(&crl("snp/Milan/ark", ARK, &[&[9]]), AS_OF).unwrap();
        assert!(c.revocation.checked, "{:?}", c.revocation);
    }

    #[test]
    fn a_revoked_ask_is_denied() {
        // The simulated ASK has serial 2.
        let d = appraise_with(&crl("snp/Milan/ark", ARK, &[&[9], &[2]]), AS_OF).unwrap_err();
        assert_eq!(codes(&d), vec![DenialCode::CertRevoked]);
    }

    #[test]
    fn an_expired_crl_is_denied() {
        let d = appraise_with(&crl("snp/Milan/ark", ARK, &[]), "2025-11-01T00:00:00Z").unwrap_err();
        assert_eq!(codes(&d), vec![DenialCode::CrlExpired]);
    }

    #[test]
    fn a_crl_not_signed_by_the_ark_is_denied() {
        // Signed by the ASK's key under the ARK's name.
        let d = appraise_with(&crl("snp/Milan/ask", ARK, &[]), AS_OF).unwrap_err();
        assert_eq!(codes(&d), vec![DenialCode::CrlInvalid]);
        // Another issuer name.
        let d = appraise_with(
            &crl(
                "snp/Milan/ark",
                "CN=SEV-Milan SIMULATED,O=SIMULATED AMD,OU=Engineering",
                &[],
            ),
            AS_OF,
        )
        .unwrap_err();
        assert_eq!(codes(&d), vec![DenialCode::CrlInvalid]);
        // Garbage.
        let d = appraise_with(b"not a crl", AS_OF).unwrap_err();
        assert_eq!(codes(&d), vec![DenialCode::CrlInvalid]);
    }
}
