//! A simulated NVIDIA H100 in CC mode: an SPDM GET_MEASUREMENTS report
//! byte-compatible with the real ones (`specs/nvidia-gpu.md` §2) and a
//! 5-certificate device chain shaped like NVIDIA's (§3.1), signed by keys
//! derived from a [`SimSeed`].
//!
//! Every certificate name carries `SIMULATED`, and the root is the
//! simulator's own, so this evidence only ever verifies against the
//! simulator's trust root. It never touches hardware or real keys. The same
//! seed and parameters always give the same bytes (ECDSA is RFC 6979).

use der::Encode;
use der::asn1::{Any, ObjectIdentifier, OctetString};
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer as _;
use rand_core::RngCore as _;
use x509_cert::Certificate;

use crate::nvidia::certs::OID_HOPPER_FWID;
use crate::nvidia::evidence::{GpuArch, GpuEvidenceEntry};
use crate::nvidia::report::{
    Fwid, MeasurementBlock, NVDEC0_DISABLED, OpaqueData, OpaqueEntry, OpaqueId, SpdmNonce,
    SpdmRequest, SpdmResponse, SpdmSignature, vbios_version_bytes,
};
use crate::sim::{self, CertSpec, SimError, SimKey, SimSeed};

/// Number of measurement blocks an H100 reports.
pub const BLOCK_COUNT: u8 = 64;

/// Blocks that are all-zero (inactive) on the real H100 samples, kept zero here.
const INACTIVE_BLOCKS: [u8; 38] = [
    1, 9, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24, 25, 29, 42, 43, 44, 45, 46, 47, 48, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64,
];

/// Subjects, root first. Issuers are the previous entry.
const ROOT: &str = "CN=NVIDIA Device Identity CA SIMULATED,O=NVIDIA SIMULATED";
const IDENTITY: &str = "CN=NVIDIA GH100 Identity SIMULATED,O=NVIDIA SIMULATED";
const PROVISIONER: &str = "CN=NVIDIA GH100 Provisioner ICA 1 SIMULATED,O=NVIDIA SIMULATED";
const BROM: &str = "CN=GH100 A01 GSP BROM SIMULATED,O=NVIDIA SIMULATED";
const LEAF: &str = "CN=GH100 A01 GSP FMC LF SIMULATED,O=NVIDIA SIMULATED";

/// 9999-12-31T23:59:59Z, the notAfter of every genuine device certificate.
const NOT_AFTER: u64 = 253_402_300_799;

/// SHA-384.
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");

/// What the simulated GPU is asked for and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuSimParams {
    /// The caller's nonce, placed in the SPDM request.
    pub nonce: SpdmNonce,
    /// Opaque DRIVER_VERSION.
    pub driver_version: String,
    /// Opaque VBIOS_VERSION in RIM form, `96.00.9F.00.01`.
    pub vbios_version: String,
    /// Replaces the golden value of these blocks (1-based index): a tampered GPU.
    pub measurement_overrides: Vec<(u8, [u8; 48])>,
}

impl GpuSimParams {
    /// An untampered H100 on driver 550.90.07, VBIOS 96.00.9F.00.01.
    pub fn new(nonce: SpdmNonce) -> Self {
        Self {
            nonce,
            driver_version: "550.90.07".to_owned(),
            vbios_version: "96.00.9F.00.01".to_owned(),
            measurement_overrides: Vec::new(),
        }
    }
}

/// A simulated GPU's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedGpu {
    /// The NVML attestation report (request ‖ signed response).
    pub report: Vec<u8>,
    /// The device chain, PEM, leaf first, root last.
    pub chain_pem: String,
    /// The simulated root (`NVIDIA Device Identity CA SIMULATED`), DER.
    pub root_der: Vec<u8>,
    /// The 64 blocks reported (1-based index, value), overrides applied.
    pub measurements: Vec<(u8, [u8; 48])>,
}

impl SimulatedGpu {
    /// The evidence as one JSON evidence entry (arch Hopper, a simulated uuid).
    pub fn evidence_entry(&self) -> GpuEvidenceEntry {
        GpuEvidenceEntry::new(
            GpuArch::Hopper,
            Some("GPU-00000000-0000-0000-0000-SIMULATED000".to_owned()),
            self.report.clone(),
            self.chain_pem.clone().into_bytes(),
        )
    }
}

/// Simulates one attestation of an H100 under `seed`.
pub fn simulate(seed: &SimSeed, params: &GpuSimParams) -> Result<SimulatedGpu, SimError> {
    let chain = Chain::build(seed)?;
    let mut measurements = golden_measurements(seed);
    for (index, value) in &params.measurement_overrides {
        let slot = measurements
            .iter_mut()
            .find(|(i, _)| i == index)
            .ok_or_else(|| {
                SimError::Encoding(format!("measurement override: no block {index} (1..=64)"))
            })?;
        slot.1 = *value;
    }
    let vbios = vbios_version_bytes(&params.vbios_version).ok_or_else(|| {
        SimError::Encoding(format!(
            "vbios_version {:?}: expected five dot-separated hex bytes",
            params.vbios_version
        ))
    })?;

    let blocks = measurements
        .iter()
        .map(|(i, v)| MeasurementBlock::digest(*i, v))
        .collect();
    let opaque = opaque_data(params, vbios, chain.fwid);
    let mut responder_nonce = [0u8; 32];
    sim::rng(
        seed,
        &format!("nvidia-gh100-responder-nonce:{}", params.nonce),
    )
    .fill_bytes(&mut responder_nonce);
    let mut response = SpdmResponse::new(
        blocks,
        SpdmNonce(responder_nonce),
        opaque,
        SpdmSignature([0; 96]),
    )
    .map_err(|e| SimError::Encoding(e.to_string()))?;

    let mut report = SpdmRequest::new(params.nonce).to_bytes().to_vec();
    report.extend(response.to_bytes_unsigned());
    let signature: p384::ecdsa::Signature = chain.leaf_key.sign(&report);
    let mut raw = [0u8; 96];
    for (o, b) in raw.iter_mut().zip(signature.to_bytes()) {
        *o = b;
    }
    response.signature = SpdmSignature(raw);
    report.extend(response.signature.as_bytes());

    Ok(SimulatedGpu {
        report,
        chain_pem: chain.pem()?,
        root_der: chain.root_der()?,
        measurements,
    })
}

/// The simulated device root CA, DER: the trust root for simulated GPUs.
pub fn root_ca(seed: &SimSeed) -> Result<Vec<u8>, SimError> {
    Chain::build(seed)?.root_der()
}

/// The simulated device chain, PEM, leaf first.
pub fn chain_pem(seed: &SimSeed) -> Result<String, SimError> {
    Chain::build(seed)?.pem()
}

/// The FWID the simulated firmware reports and the leaf certificate carries.
pub fn fwid(seed: &SimSeed) -> Fwid {
    let mut f = [0u8; 48];
    sim::rng(seed, "nvidia-gh100-fmc-fwid").fill_bytes(&mut f);
    Fwid(f)
}

/// What an untampered simulated GPU measures: 64 blocks (1-based index,
/// SHA-384-sized value), zero where the real H100 reports inactive blocks.
/// A simulated RIM built from the non-zero ones matches (RIM index = block − 1).
pub fn golden_measurements(seed: &SimSeed) -> Vec<(u8, [u8; 48])> {
    (1..=BLOCK_COUNT)
        .map(|i| {
            let mut v = [0u8; 48];
            if !INACTIVE_BLOCKS.contains(&i) {
                sim::rng(seed, &format!("nvidia-gh100-measurement-{i}")).fill_bytes(&mut v);
            }
            (i, v)
        })
        .collect()
}

/// Opaque entries in the order of the 550.90.07 sample, plus OPAQUE_DATA_VERSION 0.
fn opaque_data(params: &GpuSimParams, vbios: [u8; 8], fwid: Fwid) -> OpaqueData {
    let msrscnt: Vec<u8> = (1..=BLOCK_COUNT)
        .flat_map(|i| u32::from(!INACTIVE_BLOCKS.contains(&i)).to_le_bytes())
        .collect();
    let mut driver = params.driver_version.as_bytes().to_vec();
    driver.push(0);
    OpaqueData {
        entries: vec![
            OpaqueEntry::new(OpaqueId::VBIOS_VERSION, &vbios),
            OpaqueEntry::new(OpaqueId::BOARD_ID, &0x3b1u32.to_le_bytes()),
            OpaqueEntry::new(OpaqueId::CHIP_SKU, b"882\0\0\0\0\0\0"),
            OpaqueEntry::new(OpaqueId::CHIP_SKU_MOD, b"0\0\0\0\0"),
            OpaqueEntry::new(OpaqueId::PROJECT, b"1010\0"),
            OpaqueEntry::new(OpaqueId::PROJECT_SKU, b"0200\0"),
            OpaqueEntry::new(OpaqueId::PROJECT_SKU_MOD, b"\0\0"),
            OpaqueEntry::new(OpaqueId::DRIVER_VERSION, &driver),
            OpaqueEntry::new(OpaqueId::GPU_INFO, &[0x80, 0x01, 0, 0, 0, 0, 0, 0]),
            OpaqueEntry::new(OpaqueId::MSRSCNT, &msrscnt),
            OpaqueEntry::new(OpaqueId::CPRINFO, &[0x00, 0xc0, 0x01, 0x00]),
            OpaqueEntry::new(OpaqueId::NVDEC0_STATUS, &[NVDEC0_DISABLED]),
            OpaqueEntry::new(OpaqueId::FWID, fwid.as_bytes()),
            OpaqueEntry::new(OpaqueId::PROTECTED_PCIE_STATUS, &[0x55]),
            OpaqueEntry::new(OpaqueId::OPAQUE_DATA_VERSION, &[0, 0]),
        ],
    }
}

/// The five certificates, root first, and the leaf's signing key.
#[derive(Clone)]
struct Chain {
    certs: Vec<Certificate>,
    leaf_key: SigningKey,
    fwid: Fwid,
}

impl Chain {
    /// Made once per seed (see [`sim::Memo`]).
    fn build(seed: &SimSeed) -> Result<Self, SimError> {
        static CHAINS: sim::Memo<Chain> = sim::Memo::new();
        CHAINS.get_or_make(seed, "nvidia-gh100-chain", || Self::make(seed))
    }

    fn make(seed: &SimSeed) -> Result<Self, SimError> {
        let fwid = fwid(seed);
        let levels: [(&str, &str, Option<Option<u8>>); 5] = [
            (ROOT, "nvidia-device-root", Some(None)),
            (IDENTITY, "nvidia-gh100-identity", Some(Some(2))),
            (PROVISIONER, "nvidia-gh100-provisioner-ica", Some(Some(1))),
            (BROM, "nvidia-gh100-brom", Some(Some(0))),
            (LEAF, "nvidia-gh100-fmc-lf", None),
        ];
        let mut certs = Vec::with_capacity(levels.len());
        let mut issuer: Option<(&str, SimKey)> = None;
        for (subject, label, ca) in levels {
            let key = SimKey::p384(seed, label);
            let mut spec = CertSpec::new(subject, &serial(seed, label));
            spec.not_after = NOT_AFTER;
            spec.ca = ca;
            if ca.is_none() {
                spec = spec.extension(
                    &OID_HOPPER_FWID.to_string(),
                    false,
                    hopper_fwid_ext(seed, fwid)?,
                )?;
            }
            let (issuer_name, issuer_key) = match &issuer {
                Some((name, k)) => (*name, k),
                None => (subject, &key),
            };
            let mut rng = sim::rng(seed, &format!("{label}-cert"));
            certs.push(sim::issue(
                &spec,
                key.spki()?,
                issuer_name,
                issuer_key,
                &mut rng,
            )?);
            issuer = Some((subject, key));
        }
        let leaf_key = match issuer {
            Some((_, SimKey::P384(k))) => k,
            _ => return Err(SimError::Key("leaf key is not P-384".to_owned())),
        };
        Ok(Self {
            certs,
            leaf_key,
            fwid,
        })
    }

    fn pem(&self) -> Result<String, SimError> {
        let mut out = String::new();
        for cert in self.certs.iter().rev() {
            out.push_str(&sim::to_pem(cert)?);
        }
        Ok(out)
    }

    fn root_der(&self) -> Result<Vec<u8>, SimError> {
        let root = self
            .certs
            .first()
            .ok_or_else(|| SimError::Encoding("empty chain".to_owned()))?;
        Ok(root.to_der()?)
    }
}

/// Hopper's FWID extension value, structured like the genuine one:
/// `SEQUENCE { INTEGER 1, SubjectPublicKeyInfo, SEQUENCE { sha384, OCTET STRING fwid } }`.
fn hopper_fwid_ext(seed: &SimSeed, fwid: Fwid) -> Result<Vec<u8>, SimError> {
    let alias = SimKey::p384(seed, "nvidia-gh100-fmc-alias").spki()?;
    let mut digest = OID_SHA384.to_der()?;
    digest.extend(OctetString::new(fwid.as_bytes().to_vec())?.to_der()?);
    let mut content = 1u8.to_der()?;
    content.extend(alias.to_der()?);
    content.extend(Any::new(der::Tag::Sequence, digest)?.to_der()?);
    Ok(Any::new(der::Tag::Sequence, content)?.to_der()?)
}

/// A positive serial number: 20 bytes like NVIDIA's, top bit clear, non-zero lead.
fn serial(seed: &SimSeed, label: &str) -> Vec<u8> {
    let mut s = [0u8; 20];
    sim::rng(seed, &format!("{label}-serial")).fill_bytes(&mut s);
    if let Some(first) = s.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    s.to_vec()
}

#[cfg(test)]
mod tests {
    use p384::ecdsa::signature::Verifier as _;

    use super::*;
    use crate::nvidia::certs::DeviceChain;
    use crate::nvidia::report::AttestationReport;

    #[test]
    fn simulated_report_parses_verifies_and_is_deterministic() {
        let nonce = SpdmNonce([0x42; 32]);
        let gpu = simulate(&SimSeed::DEFAULT, &GpuSimParams::new(nonce)).unwrap();
        let again = simulate(&SimSeed::DEFAULT, &GpuSimParams::new(nonce)).unwrap();
        assert_eq!(gpu, again);
        let report = AttestationReport::parse(&gpu.report).unwrap();
        assert_eq!(report.to_bytes(), gpu.report);
        assert_eq!(report.nonce(), nonce);
        let chain = DeviceChain::from_pem(gpu.chain_pem.as_bytes()).unwrap();
        assert_eq!(chain.len(), 5);
        assert_eq!(chain.root().unwrap().der(), gpu.root_der);
        assert_eq!(chain.leaf_fwid(), report.opaque().fwid());
        assert_eq!(chain.leaf_fwid(), Some(fwid(&SimSeed::DEFAULT)));
        let key = chain.leaf().unwrap().p384_key().unwrap();
        let sig = p384::ecdsa::Signature::from_slice(&report.signature()).unwrap();
        key.verify(report.signed_bytes(), &sig).unwrap();
        assert!(
            chain
                .subjects()
                .iter()
                .all(|s| s.contains(sim::SIMULATED_MARK))
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut p = GpuSimParams::new(SpdmNonce([0; 32]));
        p.measurement_overrides.push((65, [1; 48]));
        assert!(simulate(&SimSeed::DEFAULT, &p).is_err());
        let mut p = GpuSimParams::new(SpdmNonce([0; 32]));
        p.vbios_version = "96.00".into();
        assert!(simulate(&SimSeed::DEFAULT, &p).is_err());
    }
}
