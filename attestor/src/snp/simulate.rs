//! Simulated AMD SEV-SNP evidence: byte-exact ATTESTATION_REPORTs signed by a
//! simulated VCEK ← ASK ← ARK chain, per product (Milan, Genoa, Turin).
//!
//! Follows the same layouts as the real thing (`specs/snp-tdx.md` §1.2–§2.2):
//! RSA-4096 RSASSA-PSS/SHA-384 ARK and ASK, an ECDSA P-384 VCEK carrying the
//! AMD extensions in the same order and encodings as genuine VCEKs (TCB equal
//! to the report's REPORTED_TCB, hwID equal to CHIP_ID, or its first 8 bytes
//! on Turin), and an ECDSA P-384/SHA-384 signature over `report[..0x2A0]`
//! with R and S stored little-endian.
//!
//! Everything derives from a [`SimSeed`]: the same seed and parameters give
//! the same bytes. Every certificate name contains `SIMULATED`. This module
//! never touches real keys or hardware, and nothing it makes chains to an AMD
//! root.

use der::Encode;
use der::asn1::Ia5StringRef;
use p384::ecdsa::signature::Signer;
use rand_core::RngCore;

use crate::sim::{self, CertSpec, SimError, SimKey, SimSeed};
use crate::snp::certs::{
    CertTable, Guid, OID_BL_SPL, OID_FMC_SPL, OID_HW_ID, OID_PRODUCT_NAME, OID_SNP_SPL, OID_SPL_4,
    OID_SPL_5, OID_SPL_6, OID_SPL_7, OID_STRUCT_VERSION, OID_TEE_SPL, OID_UCODE_SPL, Product,
};
use crate::snp::report::{
    AuthorKeyDigest, ChipId, FamilyId, FirmwareVersion, GuestPolicy, HostData, IdKeyDigest,
    ImageId, KeyInfo, Measurement, PlatformInfo, Report, ReportData, ReportId, Signature,
    SignatureAlgorithm, SigningKey, TcbParts, TcbVersion,
};

/// What a simulated report says. Build with [`SnpSimParams::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpSimParams {
    /// Product line: Milan and Genoa give v3 reports, Turin v5.
    pub product: Product,
    /// REPORT_DATA (the binding).
    pub report_data: ReportData,
    /// MEASUREMENT.
    pub measurement: Measurement,
    /// HOST_DATA.
    pub host_data: HostData,
    /// GUEST_POLICY.
    pub policy: GuestPolicy,
    /// VMPL the report is requested at.
    pub vmpl: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// FAMILY_ID.
    pub family_id: FamilyId,
    /// IMAGE_ID.
    pub image_id: ImageId,
    /// Used for REPORTED, CURRENT, COMMITTED and LAUNCH TCB alike, and for the
    /// VCEK's TCB extensions.
    pub tcb: TcbVersion,
    /// CHIP_ID; `None` derives one from the seed (Turin: 8 bytes, then zeros).
    pub chip_id: Option<ChipId>,
    /// PLATFORM_INFO.
    pub platform_info: PlatformInfo,
    /// Current and committed firmware version.
    pub firmware: FirmwareVersion,
}

impl SnpSimParams {
    /// Sensible defaults: debug off, SMT allowed, bit 17 set (policy 0x30000),
    /// VMPL 0, a TCB like a real platform of that product, the measurement of
    /// a fixed simulated image.
    pub fn new(product: Product, report_data: ReportData) -> Self {
        let tcb = match product {
            Product::Milan => TcbParts {
                fmc: None,
                bootloader: 4,
                tee: 0,
                snp: 24,
                microcode: 219,
            },
            Product::Genoa => TcbParts {
                fmc: None,
                bootloader: 10,
                tee: 0,
                snp: 23,
                microcode: 84,
            },
            Product::Turin => TcbParts {
                fmc: Some(0),
                bootloader: 1,
                tee: 0,
                snp: 2,
                microcode: 71,
            },
        };
        Self {
            product,
            report_data,
            measurement: Measurement(
                crate::digest::Sha384Digest::of(
                    b"cc-inference-attestor/sim/snp/measurement SIMULATED",
                )
                .into_bytes(),
            ),
            host_data: HostData([0; 32]),
            policy: GuestPolicy::new(0, 0).with(GuestPolicy::SMT, true),
            vmpl: 0,
            guest_svn: 0,
            family_id: FamilyId([0; 16]),
            image_id: ImageId([0; 16]),
            tcb: TcbVersion::from_parts(product.tcb_layout(), tcb),
            chip_id: None,
            platform_info: PlatformInfo(
                PlatformInfo::SMT_EN | PlatformInfo::ECC_EN | PlatformInfo::ALIAS_CHECK_COMPLETE,
            ),
            firmware: FirmwareVersion {
                major: 1,
                minor: 55,
                build: 40,
            },
        }
    }
}

/// A simulated report and its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedSnp {
    /// The 1184-byte ATTESTATION_REPORT.
    pub report: Vec<u8>,
    /// The VCEK certificate (DER).
    pub vcek_der: Vec<u8>,
    /// The ASK certificate (DER).
    pub ask_der: Vec<u8>,
    /// The ARK certificate (DER, self-signed).
    pub ark_der: Vec<u8>,
    /// The GHCB cert table (configfs-tsm `auxblob`): VCEK, ASK, ARK, canonical layout.
    pub cert_table: Vec<u8>,
}

/// The simulated ARK and ASK of one product: the verifier's simulated trust roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedRoots {
    /// The ARK certificate (DER, self-signed).
    pub ark_der: Vec<u8>,
    /// The ASK certificate (DER, signed by the ARK).
    pub ask_der: Vec<u8>,
}

/// Makes a signed report for `params` under `seed`.
pub fn simulate(seed: &SimSeed, params: &SnpSimParams) -> Result<SimulatedSnp, SimError> {
    let product = params.product;
    static VCEKS: sim::Memo<Vec<u8>> = sim::Memo::new();
    let ca = Ca::new(seed, product)?;
    let chip_id = params
        .chip_id
        .unwrap_or_else(|| derive_chip_id(seed, product));

    // The label names everything the certificate depends on (product, chip, TCB).
    let vcek_label = format!("snp/{product}/vcek/{chip_id}/{}", params.tcb);
    let vcek_key = p384::ecdsa::SigningKey::random(&mut sim::rng(seed, &vcek_label));
    let vcek_der = VCEKS.get_or_make(seed, &vcek_label, || {
        vcek_certificate(seed, product, &ca, &vcek_key, params.tcb, &chip_id)
    })?;

    let mut report = unsigned_report(seed, params, chip_id);
    let sig: p384::ecdsa::Signature = vcek_key.sign(&report.signed_bytes());
    let mut rs = [0u8; 96];
    for (dst, src) in rs.iter_mut().zip(sig.to_bytes().iter()) {
        *dst = *src;
    }
    report.signature = Signature::from_p384_be(&rs);
    let report = report.to_bytes();

    let cert_table = CertTable::build(&[
        (Guid::VCEK, vcek_der.clone()),
        (Guid::ASK, ca.ask_der.clone()),
        (Guid::ARK, ca.ark_der.clone()),
    ])
    .to_bytes();
    Ok(SimulatedSnp {
        report,
        vcek_der,
        ask_der: ca.ask_der,
        ark_der: ca.ark_der,
        cert_table,
    })
}

/// The simulated ARK and ASK certificates of `product` under `seed`.
pub fn roots(seed: &SimSeed, product: Product) -> Result<SimulatedRoots, SimError> {
    let ca = Ca::new(seed, product)?;
    Ok(SimulatedRoots {
        ark_der: ca.ark_der,
        ask_der: ca.ask_der,
    })
}

/// The CHIP_ID the simulator uses for `product` under `seed` when the
/// parameters name none: 64 derived bytes, or 8 then zeros on Turin (as on
/// real Turin parts, whose hwID is CHIP_ID[0..8]).
pub fn derive_chip_id(seed: &SimSeed, product: Product) -> ChipId {
    let mut id = [0u8; 64];
    let mut rng = sim::rng(seed, &format!("snp/{product}/chip_id"));
    let (head, _) = id.split_at_mut(product.hw_id_len());
    rng.fill_bytes(head);
    ChipId(id)
}

/// Subject and issuer names (RFC 4514), every one marked SIMULATED.
fn ark_name(product: Product) -> String {
    format!("CN=ARK-{product} SIMULATED,O=SIMULATED AMD,OU=Engineering")
}

fn ask_name(product: Product) -> String {
    format!("CN=SEV-{product} SIMULATED,O=SIMULATED AMD,OU=Engineering")
}

const VCEK_NAME: &str = "CN=SEV-VCEK SIMULATED,O=SIMULATED AMD,OU=Engineering";

/// The ARK and ASK keys and certificates of one product.
#[derive(Clone)]
struct Ca {
    ask_key: SimKey,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
}

impl Ca {
    /// Made once per seed and product (see [`sim::Memo`]).
    fn new(seed: &SimSeed, product: Product) -> Result<Self, SimError> {
        static CAS: sim::Memo<Ca> = sim::Memo::new();
        CAS.get_or_make(seed, &format!("snp/{product}/ca"), || {
            Self::make(seed, product)
        })
    }

    fn make(seed: &SimSeed, product: Product) -> Result<Self, SimError> {
        let ark_key = SimKey::rsa(seed, &format!("snp/{product}/ark"))?;
        let ask_key = SimKey::rsa(seed, &format!("snp/{product}/ask"))?;
        let ark_spec = CertSpec::new(ark_name(product), &[1]).ca(Some(1));
        let ark = sim::issue(
            &ark_spec,
            ark_key.spki()?,
            &ark_spec.subject,
            &ark_key,
            &mut sim::rng(seed, &format!("snp/{product}/ark-cert")),
        )?;
        let ask_spec = CertSpec::new(ask_name(product), &[2]).ca(Some(0));
        let ask = sim::issue(
            &ask_spec,
            ask_key.spki()?,
            &ark_spec.subject,
            &ark_key,
            &mut sim::rng(seed, &format!("snp/{product}/ask-cert")),
        )?;
        Ok(Self {
            ask_key,
            ark_der: ark.to_der()?,
            ask_der: ask.to_der()?,
        })
    }
}

/// A VCEK certificate with the AMD extensions in the order and encodings AMD
/// uses (compare `openssl asn1parse` of `testdata/snp/*_vcek.der`), serial 0
/// like the genuine ones.
fn vcek_certificate(
    seed: &SimSeed,
    product: Product,
    ca: &Ca,
    vcek_key: &p384::ecdsa::SigningKey,
    tcb: TcbVersion,
    chip_id: &ChipId,
) -> Result<Vec<u8>, SimError> {
    let parts = tcb.parts(product.tcb_layout());
    let int = |v: u8| -> Result<Vec<u8>, SimError> { Ok(v.to_der()?) };
    let (struct_version, product_name) = match product {
        Product::Milan => (0u8, "Milan-B0"),
        Product::Genoa => (0, "Genoa"),
        Product::Turin => (1, "Turin"),
    };
    let mut exts: Vec<(spki::ObjectIdentifier, Vec<u8>)> = vec![
        (OID_STRUCT_VERSION, int(struct_version)?),
        (OID_PRODUCT_NAME, Ia5StringRef::new(product_name)?.to_der()?),
    ];
    match product {
        Product::Milan | Product::Genoa => exts.extend([
            (OID_BL_SPL, int(parts.bootloader)?),
            (OID_TEE_SPL, int(parts.tee)?),
            (OID_SPL_4, int(0)?),
            (OID_SPL_5, int(0)?),
            (OID_SPL_6, int(0)?),
            (OID_SPL_7, int(0)?),
            (OID_SNP_SPL, int(parts.snp)?),
            (OID_UCODE_SPL, int(parts.microcode)?),
        ]),
        Product::Turin => exts.extend([
            (OID_FMC_SPL, int(parts.fmc.unwrap_or(0))?),
            (OID_BL_SPL, int(parts.bootloader)?),
            (OID_TEE_SPL, int(parts.tee)?),
            (OID_SNP_SPL, int(parts.snp)?),
            (OID_SPL_5, int(0)?),
            (OID_SPL_6, int(0)?),
            (OID_SPL_7, int(0)?),
            (OID_UCODE_SPL, int(parts.microcode)?),
        ]),
    }
    let (hw_id, _) = chip_id.as_bytes().split_at(product.hw_id_len());
    exts.push((OID_HW_ID, hw_id.to_vec()));

    let mut spec = CertSpec::new(VCEK_NAME, &[0]);
    for (oid, value) in exts {
        spec = spec.extension(&oid.to_string(), false, value)?;
    }
    let cert = sim::issue(
        &spec,
        SimKey::P384(vcek_key.clone()).spki()?,
        &ask_name(product),
        &ca.ask_key,
        &mut sim::rng(seed, &format!("snp/{product}/vcek-cert/{chip_id}/{tcb}")),
    )?;
    Ok(cert.to_der()?)
}

/// The report with a zero signature block.
fn unsigned_report(seed: &SimSeed, p: &SnpSimParams, chip_id: ChipId) -> Report {
    let (version, cpuid) = match p.product {
        Product::Milan => (3, [0x19, 0x01, 0x01]),
        Product::Genoa => (3, [0x19, 0x11, 0x01]),
        Product::Turin => (5, [0x1A, 0x02, 0x01]),
    };
    let mut report_id = [0u8; 32];
    sim::rng(seed, &format!("snp/report_id/{}", p.report_data)).fill_bytes(&mut report_id);
    Report {
        version,
        guest_svn: p.guest_svn,
        policy: p.policy,
        family_id: p.family_id,
        image_id: p.image_id,
        vmpl: p.vmpl,
        signature_algo: SignatureAlgorithm::ECDSA_P384_SHA384,
        current_tcb: p.tcb,
        platform_info: p.platform_info,
        key_info: KeyInfo::new(SigningKey::VCEK),
        reserved_04c: [0; 4],
        report_data: p.report_data,
        measurement: p.measurement,
        host_data: p.host_data,
        id_key_digest: IdKeyDigest([0; 48]),
        author_key_digest: AuthorKeyDigest([0; 48]),
        report_id: ReportId(report_id),
        report_id_ma: ReportId([0xFF; 32]),
        reported_tcb: p.tcb,
        cpuid_raw: cpuid,
        reserved_18b: [0; 0x15],
        chip_id,
        committed_tcb: p.tcb,
        current_version: p.firmware,
        reserved_1eb: 0,
        committed_version: p.firmware,
        reserved_1ef: 0,
        launch_tcb: p.tcb,
        launch_mit_vector_raw: 0,
        current_mit_vector_raw: 0,
        reserved_208: [0; 0x98],
        signature: Signature::from_p384_be(&[0; 96]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::certs::{HwIdEncoding, VekExtensions};
    use crate::snp::report::LEN;

    #[test]
    fn milan_report_is_well_formed_and_certified() {
        let params = SnpSimParams::new(Product::Milan, ReportData([7; 64]));
        let sim = simulate(&SimSeed::DEFAULT, &params).unwrap();
        assert_eq!(sim.report.len(), LEN);
        let r = Report::parse(&sim.report).unwrap();
        assert_eq!(r.to_bytes(), sim.report);
        assert_eq!(r.version, 3);
        assert_eq!(r.product_from_cpuid(), Some(Product::Milan));
        assert!(r.nonzero_reserved().is_empty());
        assert_eq!(r.policy.0, 0x30000);
        let ext = VekExtensions::from_der(&sim.vcek_der).unwrap();
        assert_eq!(ext.product(), Some(Product::Milan));
        assert_eq!(ext.tcb_version(Product::Milan.tcb_layout()), r.reported_tcb);
        let hw = ext.hw_id.unwrap();
        assert_eq!(hw.encoding, HwIdEncoding::Raw);
        assert_eq!(hw.bytes, r.chip_id.0.to_vec());
        let table = CertTable::parse(&sim.cert_table).unwrap();
        assert_eq!(table.vcek(), Some(sim.vcek_der.as_slice()));
        assert_eq!(table.ark(), Some(sim.ark_der.as_slice()));
        let roots = roots(&SimSeed::DEFAULT, Product::Milan).unwrap();
        assert_eq!((roots.ark_der, roots.ask_der), (sim.ark_der, sim.ask_der));
    }
}
