//! Golden and simulator tests for `attestor::tdx`: every TDX quote in the
//! MANIFEST parses, round-trips byte-exact, and has the field values the
//! MANIFEST states; the signatures that bind a quote together verify on
//! genuine and simulated quotes alike.

use attestor::tdx::certs::{PckExtensions, pck_chain_from_pem};
use attestor::tdx::quote::{BodyType, Quote, TdAttributes};
use der::{Decode, Encode};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::testdata;

/// One MANIFEST row: what the quote must say.
struct Golden {
    file: &'static str,
    version: u16,
    body_type: Option<u16>,
    mrtd_prefix: &'static str,
    report_data_prefix: &'static str,
    tee_tcb_svn: &'static str,
    qe_isv_svn: u16,
    trailing: usize,
    fmspc: &'static str,
    pce_svn: u16,
    cpu_svn: &'static str,
}

const GOLDEN: [Golden; 5] = [
    Golden {
        file: "tdx/b0c06f_dcapqvl_v4_quote.bin",
        version: 4,
        body_type: None,
        mrtd_prefix: "91eb2b44d141d4ec",
        report_data_prefix: "9a9d48e7f6799642d3d1b34e",
        tee_tcb_svn: "06010300000000000000000000000000",
        qe_isv_svn: 6,
        trailing: 70,
        fmspc: "b0c06f000000",
        pce_svn: 11,
        cpu_svn: "03030202040100050000000000000000",
    },
    Golden {
        file: "tdx/90c06f_gotdx_v5_quote.bin",
        version: 5,
        body_type: Some(3),
        mrtd_prefix: "7348651a34b2d2d3",
        report_data_prefix: "945eaacf5abc1f719d8666a9",
        tee_tcb_svn: "0b010400000000000000000000000000",
        qe_isv_svn: 7,
        trailing: 0,
        fmspc: "90c06f000000",
        pce_svn: 13,
        cpu_svn: "04040202040100050000000000000000",
    },
    Golden {
        file: "tdx/00a06d08_trustee_v4_quote.bin",
        version: 4,
        body_type: None,
        mrtd_prefix: "21e8dead92d6c69d",
        report_data_prefix: "26cae1c77185617fb6a03fc2",
        tee_tcb_svn: "05030200000000000000000000000000",
        qe_isv_svn: 7,
        trailing: 70,
        fmspc: "00a06d080000",
        pce_svn: 11,
        cpu_svn: "02020707040100020000000000000000",
    },
    Golden {
        file: "tdx/sigonly_00806f05_azure_v4_quote.bin",
        version: 4,
        body_type: None,
        mrtd_prefix: "024a32b070383331",
        report_data_prefix: "9734504f161d104c74e3165c",
        tee_tcb_svn: "02010600000000000000000000000000",
        qe_isv_svn: 5,
        trailing: 70,
        fmspc: "00806f050000",
        pce_svn: 11,
        cpu_svn: "06060202030100030000000000000000",
    },
    Golden {
        file: "tdx/neg_90c06f_dcapqvl_outdated_v5_quote.bin",
        version: 5,
        body_type: Some(3),
        mrtd_prefix: "273828c46252fcbd",
        report_data_prefix: "d2142b643598eb5fae2bc852",
        tee_tcb_svn: "07010300000000000000000000000000",
        qe_isv_svn: 7,
        trailing: 0,
        fmspc: "90c06f000000",
        pce_svn: 13,
        cpu_svn: "03030202040100030000000000000000",
    },
];

#[test]
fn golden_quotes_parse_roundtrip_and_match_manifest() {
    for g in &GOLDEN {
        let bytes = testdata(g.file);
        let q = Quote::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", g.file));
        assert_eq!(q.to_bytes(), bytes, "{}: round-trip", g.file);
        assert_eq!(q.header.version, g.version, "{}", g.file);
        assert_eq!(
            q.body_descriptor.map(|d| d.body_type.0),
            g.body_type,
            "{}",
            g.file
        );
        let r = q.report();
        assert!(r.mr_td.to_hex().starts_with(g.mrtd_prefix), "{}", g.file);
        assert!(
            r.report_data.to_hex().starts_with(g.report_data_prefix),
            "{}",
            g.file
        );
        assert_eq!(r.tee_tcb_svn.to_hex(), g.tee_tcb_svn, "{}", g.file);
        assert_eq!(r.xfam.0 & 0x3, 0x3, "{}: x87 and SSE always on", g.file);
        let qe = q.qe_report_cert_data().expect("type 6");
        assert_eq!(qe.qe_report.isv_svn, g.qe_isv_svn, "{}", g.file);
        assert_eq!(qe.qe_report.isv_prod_id, 2, "{}: TD_QE", g.file);
        assert_eq!(q.trailing.0.len(), g.trailing, "{}", g.file);
        assert!(q.trailing.all_zero(), "{}", g.file);
        assert_eq!(q.signed_len(), if g.version == 4 { 632 } else { 702 });
        assert_eq!(q.signed_bytes(), &bytes[..q.signed_len()]);

        let chain = pck_chain_from_pem(q.pck_chain_pem().expect("pck chain")).unwrap();
        assert_eq!(chain.len(), 3, "{}", g.file);
        assert_eq!(
            chain[2],
            testdata("roots/intel_sgx_root_ca.der"),
            "{}: root",
            g.file
        );
        let ext = PckExtensions::from_der(&chain[0]).unwrap();
        assert_eq!(ext.fmspc.to_hex(), g.fmspc, "{}", g.file);
        assert_eq!(ext.tcb.pce_svn, g.pce_svn, "{}", g.file);
        assert_eq!(ext.tcb.cpu_svn.to_hex(), g.cpu_svn, "{}", g.file);
        assert_eq!(ext.pce_id.to_hex(), "0000", "{}", g.file);
        // The CPUSVN entry repeats the 16 component SVNs.
        assert_eq!(ext.tcb.comp_svns, ext.tcb.cpu_svn.0, "{}", g.file);

        // The JSON view is what `verifier inspect` prints.
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(json["header"]["version"], g.version);
        assert!(
            json["body"]["mr_td"]
                .as_str()
                .unwrap()
                .starts_with(g.mrtd_prefix)
        );
    }
}

#[test]
fn golden_td_attributes_and_v5_fields() {
    let q = Quote::parse(&testdata("tdx/b0c06f_dcapqvl_v4_quote.bin")).unwrap();
    let a = q.report().td_attributes;
    assert_eq!(a, TdAttributes(TdAttributes::SEPT_VE_DISABLE));
    assert!(a.sept_ve_disable() && !a.debug() && !a.migratable() && !a.pks() && !a.perfmon());
    assert_eq!(q.report().xfam.0, 0x0000_0000_0006_02e7);
    let json = serde_json::to_value(&q).unwrap();
    assert_eq!(json["body"]["td_attributes"]["sept_ve_disable"], true);
    assert_eq!(json["body"]["td_attributes"]["value"], "0000000010000000");
    assert_eq!(json["trailing"]["len"], 70);

    let q5 = Quote::parse(&testdata("tdx/90c06f_gotdx_v5_quote.bin")).unwrap();
    let d = q5.body_descriptor.unwrap();
    assert_eq!((d.body_type, d.size), (BodyType::TD15, 648));
    let td15 = q5.td15().unwrap();
    assert_eq!(
        td15.tee_tcb_svn2.to_hex(),
        "0d010400000000000000000000000000"
    );
    assert!(td15.mr_service_td.is_zero());
}

#[test]
fn golden_pck_extension_reencodes_byte_exact() {
    for g in &GOLDEN {
        let q = Quote::parse(&testdata(g.file)).unwrap();
        let chain = pck_chain_from_pem(q.pck_chain_pem().unwrap()).unwrap();
        let cert = Certificate::from_der(&chain[0]).unwrap();
        let received = cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == attestor::tdx::certs::SGX_EXTENSION_OID)
            .unwrap()
            .extn_value
            .as_bytes()
            .to_vec();
        let ext = PckExtensions::from_extension_value(&received).unwrap();
        assert_eq!(ext.to_extension_value().unwrap(), received, "{}", g.file);
    }
}

/// The cryptographic bindings inside one quote, checked with p256 directly.
#[allow(clippy::unwrap_used, clippy::expect_used)] // test helper
fn check_quote_bindings(q: &Quote) {
    let sd = &q.signature_data;
    // Quote signature: attestation key over the received header+body bytes.
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(sd.attestation_key.as_bytes());
    let ak = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let sig = Signature::from_slice(sd.signature.as_bytes()).unwrap();
    ak.verify(q.signed_bytes(), &sig).expect("quote signature");

    // QE report_data[0..32] = SHA-256(attestation key ‖ QE auth data).
    let qe = q.qe_report_cert_data().unwrap();
    let mut h = Sha256::new();
    h.update(sd.attestation_key.as_bytes());
    h.update(&qe.qe_auth_data);
    assert_eq!(&qe.qe_report.report_data.0[..32], &h.finalize()[..]);
    assert!(qe.qe_report.report_data.0[32..].iter().all(|&b| b == 0));

    // QE report signature: PCK leaf key over the received 384 report bytes.
    let chain = pck_chain_from_pem(q.pck_chain_pem().unwrap()).unwrap();
    let leaf = Certificate::from_der(&chain[0]).unwrap();
    let pck = VerifyingKey::from_sec1_bytes(
        leaf.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let qe_sig = Signature::from_slice(qe.qe_report_signature.as_bytes()).unwrap();
    pck.verify(q.qe_report_bytes().unwrap(), &qe_sig)
        .expect("QE report signature");

    // Each certificate is signed by the next (ECDSA P-256/SHA-256).
    for pair in chain.windows(2) {
        let child = Certificate::from_der(&pair[0]).unwrap();
        let parent = Certificate::from_der(&pair[1]).unwrap();
        let key = VerifyingKey::from_sec1_bytes(
            parent
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        )
        .unwrap();
        let sig = Signature::from_der(child.signature.raw_bytes()).unwrap();
        key.verify(&child.tbs_certificate.to_der().unwrap(), &sig)
            .expect("chain signature");
    }
}

#[test]
fn golden_quote_signatures_verify() {
    for g in &GOLDEN {
        let q = Quote::parse(&testdata(g.file)).unwrap();
        check_quote_bindings(&q);
    }
}

#[test]
fn tampered_golden_quote_fails_signature() {
    let mut bytes = testdata("tdx/b0c06f_dcapqvl_v4_quote.bin");
    bytes[184] ^= 1; // first MRTD byte
    let q = Quote::parse(&bytes).unwrap();
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(q.signature_data.attestation_key.as_bytes());
    let ak = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let sig = Signature::from_slice(q.signature_data.signature.as_bytes()).unwrap();
    assert!(ak.verify(q.signed_bytes(), &sig).is_err());
}

#[test]
fn golden_fuzz_bodies_hold() {
    for g in &GOLDEN {
        let bytes = testdata(g.file);
        attestor::tdx::quote::fuzz_roundtrip(&bytes);
        let q = Quote::parse(&bytes).unwrap();
        attestor::tdx::certs::fuzz_roundtrip(q.pck_chain_pem().unwrap());
    }
}

mod simulated {
    use attestor::sim::SimSeed;
    use attestor::tdx::certs::{PckExtensions, pck_chain_from_pem};
    use attestor::tdx::quote::{Quote, TdReportData};
    use attestor::tdx::simulate::{QuoteCollateralV3, TdxSimParams, root_ca, simulate};
    use der::{Decode, Encode};
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use x509_cert::Certificate;
    use x509_cert::crl::CertificateList;

    use super::check_quote_bindings;
    use crate::testdata;

    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    #[allow(clippy::unwrap_used, clippy::expect_used)] // test helper
    fn key_of(cert: &Certificate) -> VerifyingKey {
        VerifyingKey::from_sec1_bytes(
            cert.tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        )
        .unwrap()
    }

    #[allow(clippy::unwrap_used, clippy::expect_used)] // test helper
    fn first_cert(pem: &str) -> Certificate {
        Certificate::from_der(&pck_chain_from_pem(pem.as_bytes()).unwrap()[0]).unwrap()
    }

    #[test]
    fn simulated_quote_binds_like_a_genuine_one() {
        let params = TdxSimParams::new(TdReportData([0x42; 64]));
        let sim = simulate(&SimSeed::DEFAULT, &params, NOW).unwrap();
        let q = Quote::parse(&sim.quote).unwrap();
        assert_eq!(q.to_bytes(), sim.quote);
        attestor::tdx::quote::fuzz_roundtrip(&sim.quote);
        check_quote_bindings(&q);
        assert_eq!(q.report().report_data.0, [0x42; 64]);
        assert!(q.report().td_attributes.sept_ve_disable());
        assert_eq!(q.report().xfam.0, 0x602e7);

        let chain = pck_chain_from_pem(q.pck_chain_pem().unwrap()).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[2], sim.root_ca_der);
        assert_eq!(root_ca(&SimSeed::DEFAULT).unwrap(), sim.root_ca_der);
        let names: Vec<String> = chain
            .iter()
            .map(|c| {
                Certificate::from_der(c)
                    .unwrap()
                    .tbs_certificate
                    .subject
                    .to_string()
            })
            .collect();
        assert!(names.iter().all(|n| n.contains("SIMULATED")), "{names:?}");
        assert!(names[0].contains("Intel SGX PCK Certificate SIMULATED"));
        assert!(names[1].contains("Intel SGX PCK Platform CA SIMULATED"));
        assert!(names[2].contains("Intel SGX Root CA SIMULATED"));
    }

    #[test]
    fn simulated_tamper_breaks_quote_signature() {
        let sim = simulate(
            &SimSeed::DEFAULT,
            &TdxSimParams::new(TdReportData([1; 64])),
            NOW,
        )
        .unwrap();
        let mut bytes = sim.quote.clone();
        bytes[600] ^= 0x80; // inside report_data
        let q = Quote::parse(&bytes).unwrap();
        let mut sec1 = vec![0x04];
        sec1.extend_from_slice(q.signature_data.attestation_key.as_bytes());
        let ak = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let sig = Signature::from_slice(q.signature_data.signature.as_bytes()).unwrap();
        assert!(ak.verify(q.signed_bytes(), &sig).is_err());
    }

    #[test]
    fn simulated_collateral_is_signed_and_matches_the_quote() {
        let params = TdxSimParams::new(TdReportData([9; 64]));
        let sim = simulate(&SimSeed::DEFAULT, &params, NOW).unwrap();
        let json: serde_json::Value = serde_json::from_str(&sim.collateral_json).unwrap();
        let c: QuoteCollateralV3 = serde_json::from_value(json).unwrap();
        let root = Certificate::from_der(&sim.root_ca_der).unwrap();

        // tcbInfo and QE identity: signed over the exact strings by the TCB signing cert.
        let signer = first_cert(&c.tcb_info_issuer_chain);
        assert!(
            signer
                .tbs_certificate
                .subject
                .to_string()
                .contains("Intel SGX TCB Signing SIMULATED")
        );
        let sig = Signature::from_der(signer.signature.raw_bytes()).unwrap();
        key_of(&root)
            .verify(&signer.tbs_certificate.to_der().unwrap(), &sig)
            .expect("TCB signing cert issued by the root");
        let tcb_sig = Signature::from_slice(&c.tcb_info_signature).unwrap();
        key_of(&signer)
            .verify(c.tcb_info.as_bytes(), &tcb_sig)
            .expect("tcb_info signature");
        let qe_sig = Signature::from_slice(&c.qe_identity_signature).unwrap();
        key_of(&signer)
            .verify(c.qe_identity.as_bytes(), &qe_sig)
            .expect("qe_identity signature");
        let mut changed = c.tcb_info.clone().into_bytes();
        changed[10] ^= 1;
        assert!(key_of(&signer).verify(&changed, &tcb_sig).is_err());

        // CRLs: the root CRL by the root, the PCK CRL by the Platform CA.
        let ca = first_cert(&c.pck_crl_issuer_chain);
        for (crl_der, issuer) in [(&c.root_ca_crl, &root), (&c.pck_crl, &ca)] {
            let crl = CertificateList::from_der(crl_der).unwrap();
            assert_eq!(crl.tbs_cert_list.issuer, issuer.tbs_certificate.subject);
            let sig = Signature::from_der(crl.signature.raw_bytes()).unwrap();
            key_of(issuer)
                .verify(&crl.tbs_cert_list.to_der().unwrap(), &sig)
                .expect("CRL signature");
            let next = crl.tbs_cert_list.next_update.unwrap();
            assert_eq!(next.to_unix_duration().as_secs(), NOW + 30 * 86_400);
        }

        // tcbInfo agrees with the PCK certificate and the TD report.
        let q = Quote::parse(&sim.quote).unwrap();
        let chain = pck_chain_from_pem(q.pck_chain_pem().unwrap()).unwrap();
        let ext = PckExtensions::from_der(&chain[0]).unwrap();
        let info: serde_json::Value = serde_json::from_str(&c.tcb_info).unwrap();
        assert_eq!(info["id"], "TDX");
        assert_eq!(info["version"], 3);
        assert_eq!(
            info["fmspc"].as_str().unwrap().to_lowercase(),
            ext.fmspc.to_hex()
        );
        assert_eq!(info["pceId"].as_str().unwrap(), "0000");
        let up = &info["tcbLevels"][0];
        assert_eq!(up["tcbStatus"], "UpToDate");
        assert_eq!(up["tcb"]["pcesvn"], ext.tcb.pce_svn);
        for (i, comp) in up["tcb"]["sgxtcbcomponents"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(comp["svn"], ext.tcb.comp_svns[i]);
        }
        for (i, comp) in up["tcb"]["tdxtcbcomponents"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(comp["svn"], q.report().tee_tcb_svn.0[i]);
        }
        assert_eq!(info["tcbLevels"][1]["tcbStatus"], "OutOfDate");
        assert_eq!(
            info["tdxModule"]["mrsigner"]
                .as_str()
                .unwrap()
                .to_lowercase(),
            q.report().mr_signer_seam.to_hex()
        );
        let module = &info["tdxModuleIdentities"][0];
        assert_eq!(
            module["id"],
            format!("TDX_{:02X}", q.report().tee_tcb_svn.0[1])
        );
        assert_eq!(
            module["tcbLevels"][0]["tcb"]["isvsvn"],
            q.report().tee_tcb_svn.0[0]
        );

        // QE identity agrees with the QE report.
        let qe = &q.qe_report_cert_data().unwrap().qe_report;
        let id: serde_json::Value = serde_json::from_str(&c.qe_identity).unwrap();
        assert_eq!(id["id"], "TD_QE");
        assert_eq!(
            id["mrsigner"].as_str().unwrap().to_lowercase(),
            qe.mr_signer.to_hex()
        );
        assert_eq!(id["isvprodid"], qe.isv_prod_id);
        assert_eq!(id["tcbLevels"][0]["tcb"]["isvsvn"], qe.isv_svn);
        let mask = hex::decode(id["attributesMask"].as_str().unwrap()).unwrap();
        let want = hex::decode(id["attributes"].as_str().unwrap()).unwrap();
        let masked: Vec<u8> = qe
            .attributes
            .0
            .iter()
            .zip(&mask)
            .map(|(a, m)| a & m)
            .collect();
        assert_eq!(masked, want);
    }

    #[test]
    fn collateral_shape_matches_the_genuine_file() {
        let real = testdata("tdx/b0c06f_dcapqvl_collateral.json");
        let real_json: serde_json::Value = serde_json::from_slice(&real).unwrap();
        let parsed: QuoteCollateralV3 = serde_json::from_value(real_json.clone()).unwrap();
        // Re-serializing the genuine file loses nothing.
        assert_eq!(serde_json::to_value(&parsed).unwrap(), real_json);

        let sim = simulate(
            &SimSeed::DEFAULT,
            &TdxSimParams::new(TdReportData([0; 64])),
            NOW,
        )
        .unwrap();
        let sim_json: serde_json::Value = serde_json::from_str(&sim.collateral_json).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&sim_json), keys(&real_json));
        // The signed documents have the genuine top-level keys too.
        for field in ["tcb_info", "qe_identity"] {
            let r: serde_json::Value =
                serde_json::from_str(real_json[field].as_str().unwrap()).unwrap();
            let s: serde_json::Value =
                serde_json::from_str(sim_json[field].as_str().unwrap()).unwrap();
            assert_eq!(keys(&s), keys(&r), "{field}");
        }
    }
}
