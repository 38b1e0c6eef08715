//! Golden and simulator tests for `attestor::nvidia`: every NVIDIA item of
//! `testdata/MANIFEST.md` parses, round-trips byte-exact and has the values
//! the MANIFEST states; the SPDM signature is checked with the leaf key as a
//! cross-check the parser's offsets can fail.

use attestor::ParseError;
use attestor::nvidia::certs::{DeviceChain, TcbInfo};
use attestor::nvidia::evidence::{GpuArch, GpuEvidenceList};
use attestor::nvidia::report::{self, AttestationReport, NVDEC0_DISABLED, OpaqueId, SpdmNonce};
use attestor::nvidia::simulate::{self, GpuSimParams};
use attestor::sim::SimSeed;
use p384::ecdsa::signature::Verifier as _;

use crate::testdata;

struct Expect {
    file: &'static str,
    len: usize,
    opaque_len: u16,
    driver: &'static str,
    vbios: &'static str,
    project: &'static str,
    project_sku: &'static str,
    chip_sku: &'static str,
    nonce_prefix: &'static str,
    fwid: Option<(&'static str, &'static str)>,
    board_id: u32,
}

const REPORTS: [Expect; 4] = [
    Expect {
        file: "nvidia/h100_nvtrust_550_report.bin",
        len: 4117,
        opaque_len: 422,
        driver: "550.90.07",
        vbios: "96.00.9F.00.01",
        project: "1010",
        project_sku: "0200",
        chip_sku: "882",
        nonce_prefix: "931d8dd0add203ac",
        fwid: Some(("f5c384ae", "b1f75d")),
        board_id: 0x3b1,
    },
    Expect {
        file: "nvidia/h100_nvat_535_report.bin",
        len: 4052,
        opaque_len: 357,
        driver: "535.86.09",
        vbios: "96.00.5E.00.01",
        project: "1010",
        project_sku: "0200",
        chip_sku: "882",
        nonce_prefix: "27a328247bf7935c",
        fwid: None,
        board_id: 0x3b1,
    },
    Expect {
        file: "nvidia/gb100_nvat_575_report.bin",
        len: 4121,
        opaque_len: 426,
        driver: "575.32",
        vbios: "97.00.88.00.0F",
        project: "G525",
        project_sku: "0220",
        chip_sku: "886",
        nonce_prefix: "931d8dd0add203ac",
        fwid: Some(("d090cab1", "f77502")),
        board_id: 0x66f,
    },
    Expect {
        file: "nvidia/neg_h100_invalid_signature_report.bin",
        len: 4262,
        opaque_len: 567,
        driver: "560.00",
        vbios: "96.00.A5.00.01",
        project: "G520",
        project_sku: "0200",
        chip_sku: "885",
        nonce_prefix: "",
        fwid: Some(("87a82912", "")),
        board_id: 0x437,
    },
];

const CHAINS: [&str; 4] = [
    "nvidia/h100_nvtrust_550_chain.pem",
    "nvidia/h100_nvat_535_chain.pem",
    "nvidia/gb100_nvat_575_chain.pem",
    "nvidia/neg_h100_chain_case2.pem",
];

#[allow(clippy::unwrap_used)] // a test helper, outside #[test]
fn verify(report: &AttestationReport, chain: &DeviceChain) -> bool {
    let key = chain.leaf().unwrap().p384_key().unwrap();
    let sig = p384::ecdsa::Signature::from_slice(&report.signature()).unwrap();
    key.verify(report.signed_bytes(), &sig).is_ok()
}

#[test]
fn reports_parse_roundtrip_and_match_manifest() {
    for e in &REPORTS {
        let bytes = testdata(e.file);
        assert_eq!(bytes.len(), e.len, "{}", e.file);
        let r = AttestationReport::parse(&bytes).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(r.to_bytes(), bytes, "{} round-trip", e.file);
        assert_eq!(r.raw(), &bytes[..]);
        assert!(
            r.trailing.is_empty(),
            "{}: no bytes after the signature",
            e.file
        );
        assert_eq!(r.signed_bytes(), &bytes[..bytes.len() - 96]);
        assert_eq!(r.signature(), bytes[bytes.len() - 96..]);

        assert_eq!(
            (r.request.param1, r.request.param2, r.request.slot),
            (1, 0xff, 0)
        );
        assert!(r.nonce().to_hex().starts_with(e.nonce_prefix), "{}", e.file);
        assert_ne!(r.response.responder_nonce, r.nonce());
        assert_eq!(r.response.number_of_blocks, 64);
        assert_eq!(r.response.record_length, 3520);
        assert_eq!(r.response.blocks.len(), 64);
        for (i, b) in r.response.blocks.iter().enumerate() {
            assert_eq!(usize::from(b.index), i + 1);
            assert_eq!(b.value.len(), 48);
            assert_eq!(b.value_type.0, 1);
        }
        assert_eq!(r.measurements().len(), 64);
        assert_eq!(r.measurement(1), Some(&[0u8; 48][..]));
        assert_eq!(r.response.opaque_length, e.opaque_len);

        let o = r.opaque();
        assert_eq!(o.driver_version().as_deref(), Some(e.driver), "{}", e.file);
        assert_eq!(o.vbios_version().as_deref(), Some(e.vbios), "{}", e.file);
        assert_eq!(o.project().as_deref(), Some(e.project));
        assert_eq!(o.project_sku().as_deref(), Some(e.project_sku));
        assert_eq!(o.chip_sku().as_deref(), Some(e.chip_sku));
        assert_eq!(o.board_id(), Some(e.board_id));
        assert_eq!(o.nvdec0_status(), Some(NVDEC0_DISABLED));
        assert_eq!(o.msrscnt().map(|m| m.len()), Some(64));
        assert!(o.unknown_ids().is_empty(), "{}", e.file);
        assert_eq!(o.chip_info(), None);
        match (e.fwid, o.fwid()) {
            (Some((pre, post)), Some(f)) => {
                assert!(f.to_hex().starts_with(pre) && f.to_hex().ends_with(post))
            }
            (None, None) => {}
            (want, got) => panic!("{}: FWID {want:?} vs {got:?}", e.file),
        }
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["request"]["nonce"], r.nonce().to_hex());
    }
}

#[test]
fn opaque_details_per_sample() {
    let gb = AttestationReport::parse(&testdata("nvidia/gb100_nvat_575_report.bin")).unwrap();
    assert_eq!(gb.opaque().opaque_data_version(), Some(0));
    assert_eq!(
        gb.opaque().entry(OpaqueId::SYS_ENABLE_STATUS),
        Some(&[7, 7][..])
    );
    assert_eq!(gb.opaque().protected_pcie_status(), None);
    let h = AttestationReport::parse(&testdata("nvidia/h100_nvtrust_550_report.bin")).unwrap();
    assert_eq!(h.opaque().protected_pcie_status(), Some(0x55));
    assert_eq!(h.opaque().opaque_data_version(), None);
    let neg = AttestationReport::parse(&testdata("nvidia/neg_h100_invalid_signature_report.bin"))
        .unwrap();
    assert_eq!(neg.opaque().protected_pcie_status(), Some(0xaa));
    assert_eq!(neg.opaque().switch_pdis().map(|p| p.len()), Some(18));
}

#[test]
fn chains_parse_and_bind_to_reports() {
    for file in CHAINS {
        let pem = testdata(file);
        let chain = DeviceChain::from_pem(&pem).unwrap_or_else(|e| panic!("{file}: {e}"));
        let again = DeviceChain::from_pem(chain.to_pem().as_bytes()).unwrap();
        assert_eq!(again, chain);
        let root = DeviceChain::from_pem(&testdata("roots/nvidia_device_identity_ca.pem")).unwrap();
        assert_eq!(
            chain.root().unwrap().der(),
            root.certs()[0].der(),
            "{file}: root"
        );
        if file.contains("case2") {
            assert_eq!(chain.len(), 1);
            assert_eq!(chain.leaf_fwid(), None);
            continue;
        }
        assert_eq!(chain.len(), 5, "{file}");
        let subjects = chain.subjects();
        assert!(subjects[0].contains("GSP FMC LF"), "{subjects:?}");
        assert!(subjects[4].contains("NVIDIA Device Identity CA"));
        for c in chain.certs() {
            c.p384_key().unwrap();
        }
    }
    assert_eq!(
        DeviceChain::from_pem(&testdata("roots/nvidia_device_identity_ca.pem"))
            .unwrap()
            .certs()[0]
            .fingerprint()
            .to_hex(),
        "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
    );

    let h = DeviceChain::from_pem(&testdata("nvidia/h100_nvtrust_550_chain.pem")).unwrap();
    assert!(matches!(h.leaf_tcb_info(), Ok(Some(TcbInfo::Hopper(_)))));
    assert_eq!(h.hwmodel().as_deref(), Some("GH100 A01 GSP BROM"));
    assert_eq!(
        h.ueid().as_deref(),
        Some("478176379286082186618948445787393647364802107249")
    );
    let hr = AttestationReport::parse(&testdata("nvidia/h100_nvtrust_550_report.bin")).unwrap();
    assert_eq!(h.leaf_fwid(), hr.opaque().fwid());
    assert!(h.leaf_fwid().is_some());

    let b = DeviceChain::from_pem(&testdata("nvidia/gb100_nvat_575_chain.pem")).unwrap();
    let Ok(Some(TcbInfo::Dice(dice))) = b.leaf_tcb_info() else {
        panic!("Blackwell DiceTcbInfo expected")
    };
    assert_eq!(dice.vendor.as_deref(), Some("NVIDIA"));
    assert_eq!(dice.model.as_deref(), Some("GB100 A01 GSP"));
    assert_eq!(b.hwmodel().as_deref(), Some("GB100 A01 GSP BROM"));
    let br = AttestationReport::parse(&testdata("nvidia/gb100_nvat_575_report.bin")).unwrap();
    assert_eq!(b.leaf_fwid(), br.opaque().fwid());
    assert!(b.leaf_fwid().unwrap().to_hex().starts_with("d090cab1"));

    // 535: the old driver reports no FWID; the chain is still a Hopper one.
    let c535 = DeviceChain::from_pem(&testdata("nvidia/h100_nvat_535_chain.pem")).unwrap();
    assert_eq!(c535.hwmodel().as_deref(), Some("GH100 A01 GSP BROM"));
}

#[test]
fn spdm_signatures_verify_with_the_leaf_key() {
    for (report, chain) in [
        (
            "nvidia/h100_nvtrust_550_report.bin",
            "nvidia/h100_nvtrust_550_chain.pem",
        ),
        (
            "nvidia/h100_nvat_535_report.bin",
            "nvidia/h100_nvat_535_chain.pem",
        ),
        (
            "nvidia/gb100_nvat_575_report.bin",
            "nvidia/gb100_nvat_575_chain.pem",
        ),
    ] {
        let r = AttestationReport::parse(&testdata(report)).unwrap();
        let c = DeviceChain::from_pem(&testdata(chain)).unwrap();
        assert!(verify(&r, &c), "{report} must verify under {chain}");
    }
    // The MANIFEST pairs the negative with `h100_nvat_570_chain.pem`, which is not in
    // testdata; it must fail under every device chain that is.
    let neg = AttestationReport::parse(&testdata("nvidia/neg_h100_invalid_signature_report.bin"))
        .unwrap();
    for chain in &CHAINS[..3] {
        let c = DeviceChain::from_pem(&testdata(chain)).unwrap();
        assert!(!verify(&neg, &c), "negative verified under {chain}");
        assert_ne!(c.leaf_fwid(), neg.opaque().fwid());
    }
}

#[test]
fn nvat_590_json_evidence() {
    let json = testdata("nvidia/h100_nvat_590_evidence.json");
    let list = GpuEvidenceList::parse_json(&json).unwrap();
    assert_eq!(list.entries.len(), 1);
    let e = &list.entries[0];
    assert_eq!(e.arch, GpuArch::Hopper);
    assert!(e.extra.is_empty());
    let r = e.parse_report().unwrap();
    assert_eq!(r.to_bytes(), e.report);
    assert_eq!(e.report.len(), 4274);
    assert_eq!(e.nonce, Some(r.nonce()), "JSON nonce = SPDM request nonce");
    assert!(r.nonce().to_hex().starts_with("e97b23a1718095a0"));
    let o = r.opaque();
    assert_eq!(o.driver_version().as_deref(), Some("590.12"));
    assert_eq!(o.vbios_version().as_deref(), Some("96.00.A5.00.01"));
    assert_eq!(o.opaque_data_version(), Some(1));
    assert_eq!(o.feature_flag(), Some(2), "PPCIE");
    assert_eq!(r.response.opaque_length, 579);
    let chain = e.parse_chain().unwrap();
    assert_eq!(chain.len(), 5);
    assert_eq!(chain.leaf_fwid(), o.fwid());
    assert!(verify(&r, &chain));
    assert!(chain.certs()[1].subject().contains("412921CE551E4EEDA3"));

    // KBS shape and back.
    let kbs = serde_json::to_vec(&list.to_kbs_json()).unwrap();
    let back = GpuEvidenceList::parse_json(&kbs).unwrap();
    assert_eq!(back.entries[0].report, e.report);
    assert_eq!(back.entries[0].cert_chain_pem, e.cert_chain_pem);
    assert_eq!(
        list.to_kbs_json()["device_evidence_list"][0]["arch"],
        "Hopper"
    );
    let nvat = serde_json::to_vec(&list.to_nvat_json()).unwrap();
    assert_eq!(
        GpuEvidenceList::parse_json(&nvat).unwrap().entries,
        list.entries
    );
    attestor::nvidia::evidence::fuzz_roundtrip(&json);
}

#[test]
fn simulated_gpu_roundtrips_and_verifies_under_its_own_root() {
    let nonce = SpdmNonce([0xab; 32]);
    let gpu = simulate::simulate(&SimSeed::DEFAULT, &GpuSimParams::new(nonce)).unwrap();
    let r = AttestationReport::parse(&gpu.report).unwrap();
    assert_eq!(r.to_bytes(), gpu.report);
    assert_eq!(r.nonce(), nonce);
    assert_eq!(r.response.number_of_blocks, 64);
    let o = r.opaque();
    assert_eq!(o.driver_version().as_deref(), Some("550.90.07"));
    assert_eq!(o.vbios_version().as_deref(), Some("96.00.9F.00.01"));
    assert_eq!(
        (o.project(), o.project_sku(), o.chip_sku()),
        (Some("1010".into()), Some("0200".into()), Some("882".into()))
    );
    assert_eq!(o.nvdec0_status(), Some(NVDEC0_DISABLED));
    assert_eq!(o.opaque_data_version(), Some(0));
    assert_eq!(o.msrscnt().map(|m| m.len()), Some(64));

    let chain = DeviceChain::from_pem(gpu.chain_pem.as_bytes()).unwrap();
    assert_eq!(chain.len(), 5);
    assert!(matches!(
        chain.leaf_tcb_info(),
        Ok(Some(TcbInfo::Hopper(_)))
    ));
    assert_eq!(chain.leaf_fwid(), o.fwid());
    assert_eq!(
        chain.hwmodel().as_deref(),
        Some("GH100 A01 GSP BROM SIMULATED")
    );
    assert!(chain.ueid().is_some());
    assert_eq!(chain.root().unwrap().der(), gpu.root_der);
    assert_eq!(simulate::root_ca(&SimSeed::DEFAULT).unwrap(), gpu.root_der);
    assert!(verify(&r, &chain));

    // The simulated chain does not verify a genuine report, nor a genuine chain a simulated one.
    let genuine = DeviceChain::from_pem(&testdata("nvidia/h100_nvtrust_550_chain.pem")).unwrap();
    assert!(!verify(&r, &genuine));
    assert_ne!(genuine.root().unwrap().der(), gpu.root_der);

    // Measurements: golden unless overridden; a flipped byte breaks the signature.
    let golden = simulate::golden_measurements(&SimSeed::DEFAULT);
    assert_eq!(gpu.measurements, golden);
    for (i, v) in &golden {
        assert_eq!(r.measurement(*i), Some(&v[..]));
    }
    let mut params = GpuSimParams::new(nonce);
    params.measurement_overrides.push((5, [0xee; 48]));
    params.driver_version = "535.86.09".into();
    let tampered = simulate::simulate(&SimSeed::DEFAULT, &params).unwrap();
    let t = AttestationReport::parse(&tampered.report).unwrap();
    assert_eq!(t.measurement(5), Some(&[0xee; 48][..]));
    assert_eq!(t.opaque().driver_version().as_deref(), Some("535.86.09"));
    assert!(verify(&t, &chain), "still signed by the simulated GPU");
    let mut flipped = gpu.report.clone();
    flipped[200] ^= 1; // inside block 3's value
    assert!(!verify(
        &AttestationReport::parse(&flipped).unwrap(),
        &chain
    ));

    // Another seed, another root.
    let other = simulate::simulate(&SimSeed([7; 32]), &GpuSimParams::new(nonce)).unwrap();
    assert_ne!(other.root_der, gpu.root_der);

    // As JSON evidence, through the KBS shape.
    let list = GpuEvidenceList::new(vec![gpu.evidence_entry()]);
    let json = serde_json::to_vec(&list.to_kbs_json()).unwrap();
    let back = GpuEvidenceList::parse_json(&json).unwrap();
    assert_eq!(back.entries[0].report, gpu.report);
    assert_eq!(back.entries[0].cert_chain_pem, gpu.chain_pem.as_bytes());
}

#[test]
fn versioned_opaque_data_is_refused() {
    // The 550 report with its opaque data replaced by an NVDAOD header of the same length.
    let mut bytes = testdata("nvidia/h100_nvtrust_550_report.bin");
    let opaque_at = 37 + 8 + 3520 + 32 + 2;
    bytes[opaque_at..opaque_at + 12].copy_from_slice(b"NVDAOD\0\0\x02\0\0\0");
    let err = AttestationReport::parse(&bytes).unwrap_err();
    assert!(
        matches!(&err, ParseError::Unsupported { what, .. } if what.contains("NVDAOD")),
        "{err:?}"
    );
}

#[test]
fn fuzz_bodies_over_goldens() {
    // (file, sampling step outside the record): every bit of one report, a
    // seventh of another's, to keep the debug-build run short.
    for (file, step) in [
        ("nvidia/h100_nvtrust_550_report.bin", 1),
        ("nvidia/gb100_nvat_575_report.bin", 7),
    ] {
        let bytes = testdata(file);
        // Every cut and bit flip in the headers and the opaque data; a sample
        // inside the (uniform, 64 × 55-byte) measurement record and the signature.
        let record = 64..37 + 8 + 3520;
        for cut in 0..=bytes.len() {
            if (!record.contains(&cut) || cut % 11 == 0) && cut % step == 0 {
                report::fuzz_roundtrip(&bytes[..cut]);
            }
        }
        for bit in 0..bytes.len() * 8 {
            let byte = bit / 8;
            let signature = byte + 96 >= bytes.len();
            if (record.contains(&byte) || signature) && bit % 31 != 0 || bit % step != 0 {
                continue;
            }
            let mut b = bytes.clone();
            b[byte] ^= 1 << (bit % 8);
            report::fuzz_roundtrip(&b);
        }
    }
    let pem = testdata("nvidia/h100_nvtrust_550_chain.pem");
    attestor::nvidia::certs::fuzz_roundtrip(&pem);
    for cut in (0..=pem.len()).step_by(13) {
        attestor::nvidia::certs::fuzz_roundtrip(&pem[..cut]);
    }
    for bit in (0..pem.len() * 8).step_by(11) {
        let mut b = pem.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        attestor::nvidia::certs::fuzz_roundtrip(&b);
    }
}
