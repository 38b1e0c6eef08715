//! NVIDIA RIM golden files (MANIFEST `nvidia/rim_*`, `nvidia/neg_rim_*`):
//! parsing, pinned fields, the XML-DSig digest and signature over our
//! canonical XML, and simulated RIMs through the same checks.

#![allow(clippy::unwrap_used)]

use attestor::ParseError;
use attestor::digest::Sha384Digest;
use attestor::nvidia::rim::{
    self, ALG_C14N_11, ALG_ECDSA_SHA384, ALG_ENVELOPED_SIGNATURE, ALG_SHA384, Rim, RimArch,
    RimKind, SimRimSpec,
};
use attestor::sim::SimSeed;
use der::{Decode, Encode};
use p384::ecdsa::signature::Verifier;
use x509_cert::Certificate;

use crate::testdata;

const VBIOS_5E: &str = "nvidia/rim_vbios_gh100_96.00.5E.00.01.swidtag";
const VBIOS_74: &str = "nvidia/rim_vbios_gh100_96.00.74.00.1A.swidtag";
const DRIVER_550: &str = "nvidia/rim_driver_gh100_550.144.03.xml";
const TAMPERED_535: &str = "nvidia/neg_rim_driver_gh100_535.86.09_tampered.xml";
const BAD_SIG_550: &str = "nvidia/neg_rim_driver_gh100_550.144.03_bad_signature.xml";

/// (file, colloquialVersion, kind, active count)
const ALL: [(&str, &str, RimKind, usize); 5] = [
    (VBIOS_5E, "96.00.5E.00.01", RimKind::Vbios, 12),
    (VBIOS_74, "96.00.74.00.1A", RimKind::Vbios, 12),
    (DRIVER_550, "550.144.03", RimKind::Driver, 21),
    (TAMPERED_535, "535.86.09", RimKind::Driver, 22),
    (BAD_SIG_550, "550.144.03", RimKind::Driver, 21),
];

/// What the verifier will do, reduced to the two cryptographic checks.
fn digest_ok(rim: &Rim) -> bool {
    Sha384Digest::of(rim.reference_c14n()).as_bytes().as_slice() == rim.signature.digest_value
}

fn signature_ok(rim: &Rim) -> bool {
    let leaf = Certificate::from_der(&rim.signature.certs_der[0]).unwrap();
    let spki = leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key =
        <p384::ecdsa::VerifyingKey as p384::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
            .unwrap();
    let Ok(sig) = p384::ecdsa::Signature::from_slice(&rim.signature.signature_value) else {
        return false;
    };
    key.verify(rim.signed_info_c14n(), &sig).is_ok()
}

fn common_name(der: &[u8]) -> String {
    let cert = Certificate::from_der(der).unwrap();
    let cn = const_oid::db::rfc4519::CN;
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == cn)
        .map(|atv| {
            der::asn1::Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    der::asn1::PrintableStringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_owned())
                })
                .unwrap()
        })
        .unwrap()
}

#[test]
fn all_rims_parse_round_trip_and_pin_fields() {
    for (file, version, kind, active) in ALL {
        let bytes = testdata(file);
        let rim = Rim::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(rim.to_bytes(), bytes, "{file}");
        assert_eq!(rim.raw(), bytes.as_slice(), "{file}");
        assert_eq!(rim.meta.colloquial_version, version, "{file}");
        assert_eq!(rim.rim_kind(), Some(kind), "{file}");
        assert_eq!(rim.active_measurements().count(), active, "{file}");
        assert_eq!(rim.measurements.len(), 64, "{file}");
        assert_eq!(rim.identity.name, "GH100", "{file}");
        assert_eq!(rim.identity.tag_id.len(), 96, "{file}");
        assert_eq!(rim.meta.product.as_deref(), Some("GH100"));
        assert_eq!(
            rim.meta.tcg.firmware_manufacturer_id.as_deref(),
            Some("5703")
        );
        assert_eq!(rim.entities[0].name, "NVIDIA Corporation");
        assert_eq!(rim.entities[0].roles, ["softwareCreator", "tagCreator"]);
        for m in &rim.measurements {
            assert_eq!(m.size, 48);
            assert!(m.alternatives.iter().all(|a| a.len() == 48));
        }
        let s = &rim.signature;
        assert_eq!(s.c14n_method, ALG_C14N_11);
        assert_eq!(s.signature_method, ALG_ECDSA_SHA384);
        assert_eq!(s.reference_uri, "");
        assert_eq!(s.transforms, [ALG_ENVELOPED_SIGNATURE, ALG_C14N_11]);
        assert_eq!(s.digest_method, ALG_SHA384);
        assert_eq!(s.digest_value.len(), 48);
        assert_eq!(s.signature_value.len(), 96);
        assert_eq!(s.certs_der.len(), 4, "{file}");
        assert_eq!(common_name(&s.certs_der[0]), "HCC RIM L4 Signer", "{file}");
        assert_eq!(common_name(&s.certs_der[3]), "NVIDIA CoRIM signing Root CA");
        let json = serde_json::to_string_pretty(&rim).unwrap();
        assert!(json.contains(version));
        rim::fuzz_roundtrip(&bytes);
    }
}

#[test]
fn pinned_measurements() {
    let vbios = Rim::parse(&testdata(VBIOS_5E)).unwrap();
    let m12 = &vbios.measurements[12];
    assert_eq!(
        (m12.index, m12.active, m12.alternatives.len()),
        (12, true, 4)
    );
    assert_eq!(
        hex::encode(&m12.alternatives[1]),
        "758af96044c700f98a85347be27124d51c05b8784ba216b629b9aaab6d538c759aed9922a133e4ac473564d359b271d5"
    );
    assert_eq!(vbios.measurements[1].name, "HashedMeasurement_1_FSP");
    let active: Vec<u8> = vbios.active_measurements().map(|m| m.index).collect();
    assert_eq!(active, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]);

    let driver = Rim::parse(&testdata(DRIVER_550)).unwrap();
    let active: Vec<u8> = driver.active_measurements().map(|m| m.index).collect();
    let mut expected = vec![7];
    expected.extend(21..=40);
    assert_eq!(active, expected);
    assert_eq!(driver.measurements[35].alternatives.len(), 4);
    assert_eq!(
        hex::encode(&driver.measurements[7].alternatives[0]),
        "4a5e4b3d501fe31f91bd8b6f2921b58437704a504dbedba971440e840c938c805612689ae3ac04b1009515a179063d49"
    );
}

#[test]
fn digest_and_signature_of_valid_rims_verify() {
    for file in [VBIOS_5E, VBIOS_74, DRIVER_550] {
        let rim = Rim::parse(&testdata(file)).unwrap();
        assert!(digest_ok(&rim), "{file}: digest");
        assert!(signature_ok(&rim), "{file}: signature");
    }
}

#[test]
fn tampered_rim_fails_the_digest() {
    let rim = Rim::parse(&testdata(TAMPERED_535)).unwrap();
    assert!(!digest_ok(&rim));
    // SignedInfo itself is intact: only the reference digest exposes the edit.
    assert!(signature_ok(&rim));
}

#[test]
fn bad_signature_rim_fails_the_signature() {
    let rim = Rim::parse(&testdata(BAD_SIG_550)).unwrap();
    assert!(digest_ok(&rim));
    assert!(!signature_ok(&rim));
}

#[test]
fn canonical_signed_info_carries_inherited_namespaces() {
    let rim = Rim::parse(&testdata(DRIVER_550)).unwrap();
    let si = std::str::from_utf8(rim.signed_info_c14n()).unwrap();
    assert!(si.starts_with(
        "<ds:SignedInfo xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" \
         xmlns:ns0=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" \
         xmlns:ns2=\"http://www.w3.org/2001/04/xmlenc#sha384\"><ds:CanonicalizationMethod "
    ));
    assert!(si.ends_with("</ds:DigestValue></ds:Reference></ds:SignedInfo>"));
    let reference = std::str::from_utf8(rim.reference_c14n()).unwrap();
    assert!(reference.ends_with("</ns0:Payload>\n</SoftwareIdentity>"));
    assert!(!reference.contains("ds:"));
}

#[test]
fn dtd_and_entities_are_refused() {
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" name="&lol3;"/>"#;
    assert!(matches!(
        Rim::parse(laughs),
        Err(ParseError::Document {
            field: "document",
            ..
        })
    ));
    // The same with the real document behind a DTD.
    let mut real = b"<!DOCTYPE SoftwareIdentity>\n".to_vec();
    real.extend(testdata(DRIVER_550));
    assert!(matches!(
        Rim::parse(&real),
        Err(ParseError::Document { .. })
    ));
}

#[test]
fn opaque_data_namespace_is_refused() {
    let text = String::from_utf8(testdata(DRIVER_550)).unwrap();
    let edited = text.replacen(
        "name=\"Measurement_7\"",
        "xmlns:ns3=\"https://docs.nvidia.com/attestation/specs/latest/opaque-data.html\" ns3:minSvn=\"3\" name=\"Measurement_7\"",
        1,
    );
    assert_ne!(edited, text);
    let err = Rim::parse(edited.as_bytes()).unwrap_err();
    assert!(matches!(err, ParseError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("minSvn"), "{err}");
}

#[test]
fn rim_ids() {
    assert_eq!(
        rim::driver_rim_id(RimArch::Hopper, None, "550.144.03\0"),
        "NV_GPU_DRIVER_GH100_550.144.03"
    );
    assert_eq!(
        rim::driver_rim_id(RimArch::Blackwell, Some("GB100\0\0"), "575.32"),
        "NV_GPU_CC_DRIVER_GB100_575.32"
    );
    assert_eq!(
        rim::driver_rim_id(RimArch::Blackwell, None, "590.12"),
        "NV_GPU_CC_DRIVER_GB100_590.12"
    );
    assert_eq!(
        rim::vbios_rim_id("1010\0\0", "0200", "882\0", "96.00.9f.00.01"),
        "NV_GPU_VBIOS_1010_0200_882_96009F0001"
    );
    assert_eq!(
        rim::vbios_rim_id("G525", "0220", "886", "97.00.88.00.0F"),
        "NV_GPU_VBIOS_G525_0220_886_970088000F"
    );
}

fn sim_spec() -> SimRimSpec {
    SimRimSpec::new(
        RimKind::Driver,
        "550.144.03",
        vec![
            (7, true, vec![[0x11; 48]]),
            (21, true, vec![[0x22; 48], [0x23; 48]]),
            (35, true, vec![[0x35; 48]; 4]),
            (40, false, vec![[0x40; 48]]),
        ],
    )
}

#[test]
fn simulated_rim_verifies_with_the_same_checks() {
    let seed = SimSeed::DEFAULT;
    let xml = rim::simulate_rim(&seed, &sim_spec()).unwrap();
    assert_eq!(
        xml,
        rim::simulate_rim(&seed, &sim_spec()).unwrap(),
        "deterministic"
    );
    let rim = Rim::parse(xml.as_bytes()).unwrap();
    assert_eq!(rim.rim_kind(), Some(RimKind::Driver));
    assert_eq!(rim.meta.colloquial_version, "550.144.03");
    assert_eq!(rim.measurements.len(), 64);
    let active: Vec<u8> = rim.active_measurements().map(|m| m.index).collect();
    assert_eq!(active, [7, 21, 35]);
    assert_eq!(
        rim.measurements[21].alternatives,
        [vec![0x22; 48], vec![0x23; 48]]
    );
    assert!(digest_ok(&rim));
    assert!(signature_ok(&rim));
    rim::fuzz_roundtrip(xml.as_bytes());

    // The chain: names marked, each signed by the next, root as exported.
    let certs = &rim.signature.certs_der;
    assert_eq!(certs.len(), 4);
    assert_eq!(common_name(&certs[0]), "HCC RIM L4 Signer SIMULATED");
    assert_eq!(
        common_name(&certs[1]),
        "NVIDIA Reference Value L3 GH100 SIMULATED"
    );
    assert_eq!(
        common_name(&certs[2]),
        "NVIDIA Reference Value GH100 CA SIMULATED"
    );
    assert_eq!(
        common_name(&certs[3]),
        "NVIDIA CoRIM signing Root CA SIMULATED"
    );
    assert_eq!(certs[3], rim::rim_root_ca(&seed).unwrap());
    for pair in certs.windows(2) {
        let child = Certificate::from_der(&pair[0]).unwrap();
        let issuer = Certificate::from_der(&pair[1]).unwrap();
        assert_eq!(child.tbs_certificate.issuer, issuer.tbs_certificate.subject);
        let spki = issuer
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        let key =
            <p384::ecdsa::VerifyingKey as p384::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
                .unwrap();
        let sig = p384::ecdsa::Signature::from_der(child.signature.raw_bytes()).unwrap();
        key.verify(&child.tbs_certificate.to_der().unwrap(), &sig)
            .unwrap();
    }
}

#[test]
fn simulated_rim_edit_breaks_the_digest() {
    let xml = rim::simulate_rim(&SimSeed::DEFAULT, &sim_spec()).unwrap();
    let edited = xml.replacen(&"11".repeat(48), &format!("12{}", "11".repeat(47)), 1);
    assert_ne!(edited, xml);
    let rim = Rim::parse(edited.as_bytes()).unwrap();
    assert!(!digest_ok(&rim));
    assert!(signature_ok(&rim));
}

#[test]
fn simulated_vbios_rim_and_signer_validity() {
    let mut spec = SimRimSpec::new(
        RimKind::Vbios,
        "96.00.5E.00.01",
        vec![(0, true, vec![[0; 48]])],
    );
    spec.not_before = 1_700_000_000;
    spec.not_after = 1_800_000_000;
    let rim = Rim::parse(
        rim::simulate_rim(&SimSeed::DEFAULT, &spec)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(rim.rim_kind(), Some(RimKind::Vbios));
    assert!(digest_ok(&rim) && signature_ok(&rim));
    let leaf = Certificate::from_der(&rim.signature.certs_der[0]).unwrap();
    let validity = leaf.tbs_certificate.validity;
    assert_eq!(
        validity.not_before.to_unix_duration().as_secs(),
        1_700_000_000
    );
    assert_eq!(
        validity.not_after.to_unix_duration().as_secs(),
        1_800_000_000
    );
    // Bad specs are refused, not written.
    let bad = SimRimSpec::new(
        RimKind::Vbios,
        "96.00.5E.00.01",
        vec![(64, true, vec![[0; 48]])],
    );
    assert!(rim::simulate_rim(&SimSeed::DEFAULT, &bad).is_err());
    let dup = SimRimSpec::new(
        RimKind::Vbios,
        "96.00.5E.00.01",
        vec![(1, true, vec![[0; 48]]), (1, false, vec![[0; 48]])],
    );
    assert!(rim::simulate_rim(&SimSeed::DEFAULT, &dup).is_err());
}

#[test]
fn fuzz_body_over_sampled_truncations_and_flips_of_a_real_rim() {
    let bytes = testdata(VBIOS_5E);
    for len in (0..bytes.len()).step_by(61) {
        rim::fuzz_roundtrip(&bytes[..len]);
    }
    for i in (0..bytes.len()).step_by(53) {
        let mut flipped = bytes.clone();
        flipped[i] ^= 1 << (i % 8);
        rim::fuzz_roundtrip(&flipped);
    }
}
