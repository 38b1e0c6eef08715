//! AMD SEV-SNP golden files (`testdata/snp/*`, `testdata/roots/amd_*`) and the
//! simulator. Pinned values come from `testdata/MANIFEST.md`.

// Helpers outside `#[test]` fns panic on bad test data too.
#![allow(clippy::unwrap_used)]

use attestor::ParseError;
use attestor::sim::SimSeed;
use attestor::snp::certs::{
    self, CertTable, Guid, HwIdEncoding, Product, VekExtensions, parse_certificate,
    pem_or_der_certs,
};
use attestor::snp::report::{
    self, GuestPolicy, Report, ReportData, SIGNED_LEN, SignatureAlgorithm, SigningKey, TcbLayout,
    TcbParts, TcbVersion,
};
use attestor::snp::simulate::{self, SnpSimParams};
use p384::ecdsa::signature::Verifier;

use crate::testdata;

/// One MANIFEST report row.
struct Golden {
    report: &'static str,
    cert: &'static str,
    version: u32,
    policy: u64,
    signing_key: SigningKey,
    reported_tcb: u64,
    report_data_prefix: &'static str,
    product: Product,
    product_name: &'static str,
    tcb: TcbParts,
    firmware: &'static str,
}

const fn mg(bootloader: u8, tee: u8, snp: u8, microcode: u8) -> TcbParts {
    TcbParts {
        fmc: None,
        bootloader,
        tee,
        snp,
        microcode,
    }
}

const GOLDEN: [Golden; 7] = [
    Golden {
        report: "snp/milan_virtee_v2_report.bin",
        cert: "snp/milan_virtee_v2_vcek.der",
        version: 2,
        policy: 0x30000,
        signing_key: SigningKey::VCEK,
        reported_tcb: 0x7308000000000003,
        report_data_prefix: "d447b55d197491bfe15cf298f9de9986",
        product: Product::Milan,
        product_name: "Milan-B0",
        tcb: mg(3, 0, 8, 115),
        firmware: "1.52.4",
    },
    Golden {
        report: "snp/milan_gosev_v2_report.bin",
        cert: "snp/milan_gosev_v2_vcek.der",
        version: 2,
        policy: 0xb0000,
        signing_key: SigningKey::VCEK,
        reported_tcb: 0x4405000000000002,
        report_data_prefix: "01020304050000000000000000000000",
        product: Product::Milan,
        product_name: "Milan-B0",
        tcb: mg(2, 0, 5, 68),
        firmware: "1.49.3",
    },
    Golden {
        report: "snp/milan_trustee_v2_report.bin",
        cert: "snp/milan_trustee_v2_vcek.der",
        version: 2,
        policy: 0x3001f,
        signing_key: SigningKey::VCEK,
        reported_tcb: 0x7308000000000003,
        report_data_prefix: "ec6c52d7533cc2c4f45be7849cf112ab",
        product: Product::Milan,
        product_name: "Milan-B0",
        tcb: mg(3, 0, 8, 115),
        firmware: "1.52.4",
    },
    Golden {
        report: "snp/milan_aws_vlek_v3_report.bin",
        cert: "snp/milan_aws_vlek_v3_vlek.pem",
        version: 3,
        policy: 0x30000,
        signing_key: SigningKey::VLEK,
        reported_tcb: 0xd918000000000004,
        report_data_prefix: "87ab7caf510e1b3520dc3cceb64ee441",
        product: Product::Milan,
        product_name: "Milan",
        tcb: mg(4, 0, 24, 217),
        firmware: "1.55.29",
    },
    Golden {
        report: "snp/milan_azure_v3_report.bin",
        cert: "snp/milan_azure_v3_vcek.der",
        version: 3,
        policy: 0x3001f,
        signing_key: SigningKey::VCEK,
        reported_tcb: 0xdb18000000000004,
        report_data_prefix: "af2910341dd8108360e485f1b7249425",
        product: Product::Milan,
        product_name: "Milan-B0",
        tcb: mg(4, 0, 24, 219),
        firmware: "1.55.29",
    },
    Golden {
        report: "snp/genoa_veraison_v3_report.bin",
        cert: "snp/genoa_veraison_v3_vcek.der",
        version: 3,
        policy: 0x30000,
        signing_key: SigningKey::VCEK,
        reported_tcb: 0x541700000000000a,
        report_data_prefix: "4d4944424e48323869696f69736a5079",
        product: Product::Genoa,
        product_name: "Genoa",
        tcb: mg(10, 0, 23, 84),
        firmware: "1.55.40",
    },
    Golden {
        report: "snp/turin_oak_v5_report.bin",
        cert: "snp/turin_oak_v5_vcek.der",
        version: 5,
        policy: 0x30000,
        signing_key: SigningKey::VCEK,
        reported_tcb: 0x4700000002000100,
        report_data_prefix: "e0fd0bdb6aa4030a6ddea9073e1fcec5",
        product: Product::Turin,
        product_name: "Turin",
        tcb: TcbParts {
            fmc: Some(0),
            bootloader: 1,
            tee: 0,
            snp: 2,
            microcode: 71,
        },
        firmware: "1.55.61",
    },
];

/// The single DER certificate of a `.der` or one-certificate `.pem` file.
fn cert_der(rel: &str) -> Vec<u8> {
    let mut certs = pem_or_der_certs(&testdata(rel)).unwrap();
    assert_eq!(certs.len(), 1, "{rel}");
    certs.remove(0)
}

/// ECDSA P-384/SHA-384 over `raw[..0x2A0]` with the key in `cert_der`'s SPKI,
/// R and S read little-endian from the report: the check a verifier makes.
fn report_signature_verifies(raw: &[u8], cert_der: &[u8]) -> bool {
    let cert = parse_certificate(cert_der).unwrap();
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(
        cert.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let rs = Report::parse(raw).unwrap().signature.to_p384_be().unwrap();
    let Ok(sig) = p384::ecdsa::Signature::from_slice(&rs) else {
        return false;
    };
    key.verify(&raw[..SIGNED_LEN], &sig).is_ok()
}

#[test]
fn every_golden_report_parses_roundtrips_and_matches_manifest() {
    for g in &GOLDEN {
        let raw = testdata(g.report);
        let r = Report::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", g.report));
        assert_eq!(r.to_bytes(), raw, "{}: round trip", g.report);
        assert_eq!(r.version, g.version, "{}", g.report);
        assert_eq!(r.policy, GuestPolicy(g.policy), "{}", g.report);
        assert_eq!(r.vmpl, 0, "{}", g.report);
        assert_eq!(r.key_info.signing_key(), g.signing_key, "{}", g.report);
        assert_eq!(r.signature_algo, SignatureAlgorithm::ECDSA_P384_SHA384);
        assert_eq!(r.reported_tcb, TcbVersion(g.reported_tcb), "{}", g.report);
        assert_eq!(
            r.reported_tcb.parts(g.product.tcb_layout()),
            g.tcb,
            "{}",
            g.report
        );
        assert!(
            r.report_data.to_hex().starts_with(g.report_data_prefix),
            "{}: {}",
            g.report,
            r.report_data
        );
        assert_eq!(r.current_version.to_string(), g.firmware, "{}", g.report);
        assert!(
            r.nonzero_reserved().is_empty(),
            "{}: {:?}",
            g.report,
            r.nonzero_reserved()
        );
        // v3+ carries CPUID; v2 does not, and the parser does not guess.
        if g.version >= 3 {
            assert_eq!(r.product_from_cpuid(), Some(g.product), "{}", g.report);
        } else {
            assert_eq!(r.product_from_cpuid(), None, "{}", g.report);
        }
        assert_eq!(
            r.chip_id.is_zero(),
            g.signing_key == SigningKey::VLEK,
            "{}: chip_id is zero exactly for VLEK",
            g.report
        );
        // The JSON view shows the right TCB view (unambiguous for every golden).
        let json = serde_json::to_value(&r).unwrap();
        let view = match g.product.tcb_layout() {
            TcbLayout::MilanGenoa => "milan_genoa",
            TcbLayout::Turin => "turin",
        };
        assert_eq!(
            json["reported_tcb"][view]["microcode"], g.tcb.microcode,
            "{}",
            g.report
        );
        assert_eq!(
            json["reported_tcb"]["raw"],
            format!("{:#018x}", g.reported_tcb)
        );
        assert_eq!(json["key_info"]["signing_key"], g.signing_key.to_string());
    }
}

#[test]
fn specific_golden_fields() {
    let aws = Report::parse(&testdata("snp/milan_aws_vlek_v3_report.bin")).unwrap();
    let c = aws.cpuid().unwrap();
    assert_eq!((c.family, c.model, c.stepping), (0x19, 0x01, 0x01));
    let genoa = Report::parse(&testdata("snp/genoa_veraison_v3_report.bin")).unwrap();
    let c = genoa.cpuid().unwrap();
    assert_eq!((c.family, c.model, c.stepping), (0x19, 0x11, 0x01));
    let turin = Report::parse(&testdata("snp/turin_oak_v5_report.bin")).unwrap();
    let c = turin.cpuid().unwrap();
    assert_eq!((c.family, c.model, c.stepping), (0x1A, 0x02, 0x01));
    assert_eq!(turin.launch_mit_vector(), Some(0));
    assert_eq!(turin.current_mit_vector(), Some(0));
    let gosev = Report::parse(&testdata("snp/milan_gosev_v2_report.bin")).unwrap();
    assert!(gosev.policy.debug_allowed());
    assert_eq!(gosev.launch_mit_vector(), None);
    let trustee = Report::parse(&testdata("snp/milan_trustee_v2_report.bin")).unwrap();
    assert_eq!(trustee.policy.abi_minor(), 0x1f);
    assert!(!trustee.policy.debug_allowed());
}

#[test]
fn every_golden_vek_has_the_manifest_extensions() {
    for g in &GOLDEN {
        let raw = testdata(g.report);
        let r = Report::parse(&raw).unwrap();
        let der = cert_der(g.cert);
        let ext = VekExtensions::from_der(&der).unwrap_or_else(|e| panic!("{}: {e}", g.cert));
        assert_eq!(ext.product_name, g.product_name, "{}", g.cert);
        assert_eq!(ext.product(), Some(g.product), "{}", g.cert);
        assert_eq!(ext.tcb_parts(), g.tcb, "{}", g.cert);
        assert_eq!(
            ext.tcb_version(g.product.tcb_layout()),
            r.reported_tcb,
            "{}: certified TCB = reported_tcb",
            g.cert
        );
        let expected_struct_version = u32::from(g.product == Product::Turin);
        assert_eq!(ext.struct_version, expected_struct_version, "{}", g.cert);
        if g.signing_key == SigningKey::VLEK {
            assert_eq!(ext.hw_id, None, "{}", g.cert);
            assert_eq!(ext.csp_id.as_deref(), Some("CN=cc-eu-west-1.amazonaws.com"));
        } else {
            let hw = ext.hw_id.as_ref().unwrap();
            assert_eq!(hw.encoding, HwIdEncoding::Raw, "{}", g.cert);
            assert_eq!(hw.bytes.len(), g.product.hw_id_len(), "{}", g.cert);
            assert_eq!(
                hw.bytes[..],
                r.chip_id.0[..g.product.hw_id_len()],
                "{}: hwID = chip_id",
                g.cert
            );
            assert_eq!(ext.csp_id, None);
        }
        // Genuine AMD VEKs have serial 0, which x509-cert must keep accepting.
        let cert = parse_certificate(&der).unwrap();
        assert_eq!(
            cert.tbs_certificate.serial_number.as_bytes(),
            [0],
            "{}",
            g.cert
        );
        let json = serde_json::to_value(&ext).unwrap();
        assert_eq!(json["product_name"], g.product_name);
    }
}

/// RSASSA-PSS/SHA-384 signature of `cert_der` by the key in `issuer_der`,
/// over the TBS as `x509-cert` re-encodes it (which must equal the bytes AMD
/// signed for the genuine certificates to pass).
fn cert_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    use der::Encode;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier as _;
    let cert = parse_certificate(cert_der).unwrap();
    let issuer = parse_certificate(issuer_der).unwrap();
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    let Ok(sig) = rsa::pss::Signature::try_from(cert.signature.raw_bytes()) else {
        return false;
    };
    let tbs = cert.tbs_certificate.to_der().unwrap();
    rsa::pss::VerifyingKey::<sha2::Sha384>::new(key)
        .verify(&tbs, &sig)
        .is_ok()
}

#[test]
fn genuine_and_simulated_chains_verify_with_rsa_pss() {
    for product in ["milan", "genoa", "turin"] {
        let ark = cert_der(&format!("roots/amd_{product}_ark.pem"));
        let ask = cert_der(&format!("roots/amd_{product}_ask.pem"));
        assert!(cert_signed_by(&ark, &ark), "{product} ARK self-signed");
        assert!(cert_signed_by(&ask, &ark), "{product} ASK <- ARK");
    }
    for (vcek, ask) in [
        ("snp/milan_virtee_v2_vcek.der", "roots/amd_milan_ask.pem"),
        ("snp/milan_azure_v3_vcek.der", "roots/amd_milan_ask.pem"),
        ("snp/genoa_veraison_v3_vcek.der", "roots/amd_genoa_ask.pem"),
        ("snp/turin_oak_v5_vcek.der", "roots/amd_turin_ask.pem"),
        ("snp/turin_virtee_vcek_only.der", "roots/amd_turin_ask.pem"),
    ] {
        assert!(cert_signed_by(&cert_der(vcek), &cert_der(ask)), "{vcek}");
    }
    let asvk = pem_or_der_certs(&testdata("roots/amd_milan_asvk_ark.pem")).unwrap();
    assert!(cert_signed_by(
        &cert_der("snp/milan_aws_vlek_v3_vlek.pem"),
        &asvk[0]
    ));
    assert!(!cert_signed_by(
        &cert_der("snp/neg_milan_trustee_vcek-invalid-new.der"),
        &cert_der("roots/amd_milan_ask.pem")
    ));
    let sim = simulate::simulate(&SimSeed::DEFAULT, &sim_params(Product::Genoa)).unwrap();
    assert!(cert_signed_by(&sim.ark_der, &sim.ark_der));
    assert!(cert_signed_by(&sim.ask_der, &sim.ark_der));
    assert!(cert_signed_by(&sim.vcek_der, &sim.ask_der));
    assert!(!cert_signed_by(&sim.vcek_der, &sim.ark_der));
    let genuine_ark = cert_der("roots/amd_genoa_ark.pem");
    assert!(!cert_signed_by(&sim.ask_der, &genuine_ark));
}

#[test]
fn every_golden_signature_verifies_over_the_raw_bytes() {
    // The cross-check that our endianness and signed range match real hardware.
    for g in &GOLDEN {
        let raw = testdata(g.report);
        assert!(
            report_signature_verifies(&raw, &cert_der(g.cert)),
            "{}",
            g.report
        );
        let mut tampered = raw.clone();
        tampered[0x50] ^= 1;
        assert!(!report_signature_verifies(&tampered, &cert_der(g.cert)));
    }
}

#[test]
fn other_certificates_parse() {
    let turin = VekExtensions::from_der(&cert_der("snp/turin_virtee_vcek_only.der")).unwrap();
    assert_eq!(turin.product_name, "Turin");
    assert_eq!(
        turin.tcb_parts(),
        TcbParts {
            fmc: Some(0),
            bootloader: 0,
            tee: 0,
            snp: 0,
            microcode: 9
        }
    );
    assert_eq!(turin.hw_id.unwrap().bytes.len(), 8);

    let legacy =
        VekExtensions::from_der(&cert_der("snp/neg_milan_trustee_vcek-invalid-legacy.der"))
            .unwrap();
    let hw = legacy.hw_id.clone().unwrap();
    assert_eq!(hw.encoding, HwIdEncoding::Raw);
    assert_eq!(hw.bytes, (0u8..64).collect::<Vec<_>>());
    assert_eq!(
        legacy.tcb_parts(),
        TcbParts {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 10,
            microcode: 169
        }
    );

    let new =
        VekExtensions::from_der(&cert_der("snp/neg_milan_trustee_vcek-invalid-new.der")).unwrap();
    let hw = new.hw_id.unwrap();
    assert_eq!(hw.encoding, HwIdEncoding::OctetString);
    assert_eq!(hw.bytes, (0u8..64).collect::<Vec<_>>());
    assert_eq!((new.bl_spl, new.snp_spl, new.ucode_spl), (0, 0, 30));

    let wrong = VekExtensions::from_der(&cert_der("snp/neg_milan_aws_wrong_vlek.pem")).unwrap();
    assert_eq!(
        wrong.csp_id.as_deref(),
        Some("CN=cc-us-east-2.amazonaws.com")
    );
    assert_eq!((wrong.bl_spl, wrong.snp_spl, wrong.ucode_spl), (3, 10, 115));
    // The wrong VLEK did not sign the AWS report.
    let aws = testdata("snp/milan_aws_vlek_v3_report.bin");
    assert!(!report_signature_verifies(
        &aws,
        &cert_der("snp/neg_milan_aws_wrong_vlek.pem")
    ));
    // Nor did the forged VCEKs sign the trustee report.
    let trustee = testdata("snp/milan_trustee_v2_report.bin");
    assert!(!report_signature_verifies(
        &trustee,
        &cert_der("snp/neg_milan_trustee_vcek-invalid-legacy.der")
    ));
}

#[test]
fn amd_roots_parse_and_carry_no_vek_extensions() {
    for product in ["milan", "genoa", "turin"] {
        for (kind, count) in [("ark", 1), ("ask", 1), ("asvk_ark", 2)] {
            let rel = format!("roots/amd_{product}_{kind}.pem");
            let certs = pem_or_der_certs(&testdata(&rel)).unwrap();
            assert_eq!(certs.len(), count, "{rel}");
            for der in &certs {
                let cert = parse_certificate(der).unwrap();
                let cn = cert.tbs_certificate.subject.to_string();
                assert!(cn.contains("Advanced Micro Devices"), "{rel}: {cn}");
                assert!(matches!(
                    VekExtensions::from_der(der),
                    Err(ParseError::Document {
                        field: "structVersion",
                        ..
                    })
                ));
            }
        }
    }
    // The DER path gives the file back unchanged.
    let der = testdata("snp/milan_virtee_v2_vcek.der");
    assert_eq!(pem_or_der_certs(&der).unwrap(), vec![der]);
}

#[test]
fn cert_table_built_from_genuine_certs_roundtrips() {
    let vcek = cert_der("snp/genoa_veraison_v3_vcek.der");
    let ask = cert_der("roots/amd_genoa_ask.pem");
    let ark = cert_der("roots/amd_genoa_ark.pem");
    let table = CertTable::build(&[
        (Guid::VCEK, vcek.clone()),
        (Guid::ASK, ask.clone()),
        (Guid::ARK, ark.clone()),
    ]);
    let bytes = table.to_bytes();
    let parsed = CertTable::parse(&bytes).unwrap();
    assert_eq!(parsed, table);
    assert_eq!(parsed.to_bytes(), bytes);
    assert_eq!(parsed.vcek(), Some(vcek.as_slice()));
    assert_eq!(parsed.ask(), Some(ask.as_slice()));
    assert_eq!(parsed.ark(), Some(ark.as_slice()));
    // Header of entry 0: VCEK GUID, data right after the 4 × 24-byte headers.
    assert_eq!(bytes[..16], Guid::VCEK.0);
    assert_eq!(bytes[16..20], 96u32.to_le_bytes());
    assert_eq!(
        bytes[20..24],
        u32::try_from(vcek.len()).unwrap().to_le_bytes()
    );
    let json = serde_json::to_value(&parsed).unwrap();
    assert_eq!(json[0]["guid"], "63da758d-e664-4564-adc5-f4b93be8accd");
    assert_eq!(json[2]["kind"], "ARK");
}

#[test]
fn fuzz_bodies_run_over_goldens() {
    for g in &GOLDEN {
        let raw = testdata(g.report);
        report::fuzz_roundtrip(&raw);
        certs::fuzz_vek_extensions(&cert_der(g.cert));
    }
    // Every truncation and single-bit flip of a genuine Turin report and VCEK.
    let raw = testdata("snp/turin_oak_v5_report.bin");
    for bit in 0..raw.len() * 8 {
        let mut v = raw.clone();
        v[bit / 8] ^= 1 << (bit % 8);
        report::fuzz_roundtrip(&v);
    }
    let der = cert_der("snp/turin_oak_v5_vcek.der");
    for len in 0..der.len() {
        certs::fuzz_vek_extensions(&der[..len]);
    }
    for bit in 0..der.len() * 8 {
        let mut v = der.clone();
        v[bit / 8] ^= 1 << (bit % 8);
        certs::fuzz_vek_extensions(&v);
    }
    let pem = testdata("roots/amd_milan_asvk_ark.pem");
    for len in (0..pem.len()).step_by(7) {
        certs::fuzz_vek_extensions(&pem[..len]);
    }
    // A cert table built from genuine certificates, truncated and flipped.
    let table =
        CertTable::build(&[(Guid::VCEK, der.clone()), (Guid::ARK, vec![1, 2, 3])]).to_bytes();
    for len in 0..=table.len() {
        certs::fuzz_roundtrip(&table[..len]);
    }
    for bit in 0..table.len() * 8 {
        let mut v = table.clone();
        v[bit / 8] ^= 1 << (bit % 8);
        certs::fuzz_roundtrip(&v);
    }
}

fn sim_params(product: Product) -> SnpSimParams {
    let mut data = [0u8; 64];
    data[..5].copy_from_slice(b"nonce");
    SnpSimParams::new(product, ReportData(data))
}

#[test]
fn simulated_reports_of_every_product_verify_and_match_their_vcek() {
    for product in Product::ALL {
        let params = sim_params(product);
        let sim = simulate::simulate(&SimSeed::DEFAULT, &params).unwrap();
        let r = Report::parse(&sim.report).unwrap();
        assert_eq!(r.to_bytes(), sim.report, "{product}");
        assert!(r.nonzero_reserved().is_empty(), "{product}");
        assert_eq!(r.product_from_cpuid(), Some(product));
        assert_eq!(r.version, if product == Product::Turin { 5 } else { 3 });
        assert_eq!(r.report_data, params.report_data);
        assert_eq!(r.key_info.signing_key(), SigningKey::VCEK);
        assert!(!r.policy.debug_allowed() && r.policy.smt_allowed() && r.policy.reserved_mbo());

        // The signature verifies over the raw signed range with the VCEK key,
        // and would not if the range or the endianness were wrong.
        assert!(
            report_signature_verifies(&sim.report, &sim.vcek_der),
            "{product}"
        );
        let mut tampered = sim.report.clone();
        tampered[SIGNED_LEN - 1] ^= 1;
        assert!(!report_signature_verifies(&tampered, &sim.vcek_der));
        let mut swapped = r.clone();
        swapped.signature.r[..48].reverse();
        swapped.signature.s[..48].reverse();
        assert!(!report_signature_verifies(
            &swapped.to_bytes(),
            &sim.vcek_der
        ));

        // The VCEK carries the same extensions a genuine one of this product does.
        let ext = VekExtensions::from_der(&sim.vcek_der).unwrap();
        assert_eq!(ext.product(), Some(product));
        assert_eq!(ext.tcb_version(product.tcb_layout()), r.reported_tcb);
        assert_eq!(ext.fmc_spl.is_some(), product == Product::Turin);
        let hw = ext.hw_id.as_ref().unwrap();
        assert_eq!(hw.encoding, HwIdEncoding::Raw);
        assert_eq!(hw.bytes[..], r.chip_id.0[..product.hw_id_len()]);
        let genuine = match product {
            Product::Milan => "snp/milan_virtee_v2_vcek.der",
            Product::Genoa => "snp/genoa_veraison_v3_vcek.der",
            Product::Turin => "snp/turin_oak_v5_vcek.der",
        };
        let genuine = VekExtensions::from_der(&cert_der(genuine)).unwrap();
        assert_eq!(ext.struct_version, genuine.struct_version);
        assert_eq!(ext.product_name, genuine.product_name);
        let oids = |e: &VekExtensions| e.other.iter().map(|o| o.oid.clone()).collect::<Vec<_>>();
        assert_eq!(oids(&ext), oids(&genuine), "{product}: reserved SPL set");

        // Names are marked simulated, and the table holds the three certificates.
        for der in [&sim.vcek_der, &sim.ask_der, &sim.ark_der] {
            let cert = parse_certificate(der).unwrap();
            assert!(
                cert.tbs_certificate
                    .subject
                    .to_string()
                    .contains(attestor::sim::SIMULATED_MARK)
            );
        }
        let ark = parse_certificate(&sim.ark_der).unwrap();
        assert!(
            ark.tbs_certificate
                .subject
                .to_string()
                .contains(&format!("ARK-{product}"))
        );
        let table = CertTable::parse(&sim.cert_table).unwrap();
        assert_eq!(table.to_bytes(), sim.cert_table);
        assert_eq!(table.vcek(), Some(sim.vcek_der.as_slice()));
        assert_eq!(table.ask(), Some(sim.ask_der.as_slice()));
        assert_eq!(table.ark(), Some(sim.ark_der.as_slice()));
        let roots = simulate::roots(&SimSeed::DEFAULT, product).unwrap();
        assert_eq!(roots.ark_der, sim.ark_der);
        assert_eq!(roots.ask_der, sim.ask_der);
    }
}

#[test]
fn simulation_is_deterministic_and_seed_separated() {
    let params = sim_params(Product::Milan);
    let a = simulate::simulate(&SimSeed::DEFAULT, &params).unwrap();
    let b = simulate::simulate(&SimSeed::DEFAULT, &params).unwrap();
    assert_eq!(a, b);
    let mut other = params.clone();
    other.report_data.0[0] ^= 1;
    other.vmpl = 1;
    let c = simulate::simulate(&SimSeed::DEFAULT, &other).unwrap();
    assert_ne!(a.report, c.report);
    assert_eq!(a.vcek_der, c.vcek_der, "same chip and TCB: same VCEK");
    assert_eq!(Report::parse(&c.report).unwrap().vmpl, 1);
    let mut tcb = params.clone();
    tcb.tcb = TcbVersion::from_parts(
        TcbLayout::MilanGenoa,
        TcbParts {
            fmc: None,
            bootloader: 5,
            tee: 0,
            snp: 25,
            microcode: 220,
        },
    );
    let d = simulate::simulate(&SimSeed::DEFAULT, &tcb).unwrap();
    assert_ne!(a.vcek_der, d.vcek_der, "a new TCB gets a new VCEK");
    assert_eq!(a.ark_der, d.ark_der);
    assert!(report_signature_verifies(&d.report, &d.vcek_der));
    assert!(!report_signature_verifies(&d.report, &a.vcek_der));
}
