//! AMD SEV-SNP appraisal: is this ATTESTATION_REPORT genuine, and what does it say?
//!
//! Checks (`specs/snp-tdx.md` §1.3–§2.3, the union of go-sev-guest `verify` and
//! snpguest; report layout per SEV-SNP ABI spec 56860 rev 1.58 Table 23; VCEK
//! extensions per AMD spec 57230):
//!
//! 1. The report parses (exactly 0x4A0 bytes), its version is 2..=5, reserved
//!    bytes and must-be-zero policy bits are zero and policy bit 17 is one.
//! 2. SIGNATURE_ALGO is ECDSA P-384/SHA-384 and KEY_INFO names the VCEK or VLEK.
//! 3. The product line comes from CPUID (v3+) and from the VEK `productName`;
//!    both present and different is a denial. A v2 report takes the VEK's.
//! 4. VCEK ← ASK ← ARK, or VLEK ← ASVK ← ARK, with the ARK pinned per product
//!    and every certificate valid at `now` (RSASSA-PSS/SHA-384, through
//!    [`super::x509::verify_chain`]). A VEK naming another issuer than the
//!    pinned intermediate is `chain_untrusted` (e.g. simulated evidence under
//!    vendor roots); one naming it but not signed by it is `cert_signature_invalid`.
//! 5. The VEK's ECDSA P-384 signature over the **received** bytes
//!    `report[0x000..0x2A0]`, never over a re-encoding.
//! 6. The VEK's TCB extensions equal REPORTED_TCB in the product's layout
//!    (Turin: fmc, bl, tee, snp, ucode; Milan/Genoa: bl, tee, snp, ucode).
//! 7. VCEK only: hwID equals CHIP_ID. Milan and Genoa compare all 64 bytes.
//!    Turin VCEKs carry 8 bytes; they must equal CHIP_ID[0..8] and CHIP_ID[8..64]
//!    must be zero, which is what the one genuine Turin pair we hold (Oak's
//!    `turin_oc`, FW 1.55.61) shows, and what go-sev-guest PR #193 relies on.
//!    A CHIP_ID masked by the guest policy (KEY_INFO.mask_chip_key and all
//!    zero) cannot be compared: the claims and a warning say so. A VLEK has no
//!    hwID, and its reports carry a zero CHIP_ID.
//! 8. REPORT_DATA equals the expected 64 bytes exactly, when the caller gives them.
//! 9. With a CRL: signed by the pinned ARK (its issuer name must be the ARK's),
//!    current at `now`, and no certificate of the chain that the CRL's issuer
//!    issued (the ASK or ASVK) is listed. The VEK is issued by the ASK, not by
//!    the ARK, so an ARK CRL says nothing about it (RFC 5280 §6.3: a CRL covers
//!    its issuer's certificates; genuine VEKs all have serial 0 anyway).
//!    Without a CRL, the claims say revocation was not checked.
//!
//! Every independent failure is reported, not only the first; any failed
//! cryptographic check means `Err`. This module never applies policy: a
//! debug-enabled guest, an old TCB, SMT or a migration agent are claims (and,
//! for debug, a warning), and Rego decides. Real and simulated evidence go
//! through this same code; the claims carry the roots' origin.

use attestor::snp::certs::{CertTable, Product, VekExtensions};
use attestor::snp::report::{
    self, AuthorKeyDigest, ChipId, Cpuid, FamilyId, FirmwareVersion, GuestPolicy, HostData,
    IdKeyDigest, ImageId, Measurement, PlatformInfo, Report, ReportData, ReportId,
    SignatureAlgorithm, SigningKey, TcbLayout, TcbParts, TcbVersion,
};
use der::Decode;
use serde::Serialize;
use x509_cert::crl::CertificateList;

use super::x509::{self, Cert};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;
use crate::trust::{RootsOrigin, TrustRoots};

/// The SNP evidence to appraise, as received.
#[derive(Debug, Clone, Copy)]
pub struct SnpEvidence<'a> {
    /// The 1184-byte ATTESTATION_REPORT.
    pub report: &'a [u8],
    /// The VCEK or VLEK certificate (DER or PEM). When absent, it is taken from
    /// `cert_table` (the entry matching the report's KEY_INFO signing key).
    pub vek_der: Option<&'a [u8]>,
    /// The GHCB certificate table (configfs-tsm `auxblob`), when supplied.
    pub cert_table: Option<&'a [u8]>,
    /// The REPORT_DATA the verifier requires, exactly (no padding, no truncation).
    pub expected_report_data: Option<[u8; 64]>,
}

/// Collateral beyond the evidence.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnpCollateral<'a> {
    /// AMD's CRL for the product (`/vcek/v1/{product}/crl` or `/vlek/v1/...`),
    /// DER, RSASSA-PSS signed by the ARK. Absent: revocation is not checked
    /// and the claims say so.
    pub crl_der: Option<&'a [u8]>,
    /// The intermediate to use instead of the one pinned in the roots (ASK for
    /// a VCEK, ASVK for a VLEK): one DER certificate, or a KDS `cert_chain` PEM
    /// bundle (intermediate first, then optionally the ARK). The ARK is always
    /// the pinned one; a bundled ARK that differs from it fails the chain.
    pub chain_override: Option<&'a [u8]>,
}

/// What a genuine SNP report says, for policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpClaims {
    /// Which roots verified the chain: a policy refuses `simulated`.
    pub roots: RootsOrigin,
    /// The product line (CPU generation).
    pub product: Product,
    /// REPORT format version (2, 3, 5).
    pub version: u32,
    /// VCEK or VLEK.
    pub signing_key: SigningKey,
    /// The certificate that signed the report.
    pub vek: VekClaims,
    /// GUEST_POLICY, with every bit named (debug, migrate agent, SMT, …).
    pub policy: GuestPolicy,
    /// True when the guest policy allows debugging (also a warning).
    pub debug: bool,
    /// VMPL the report was requested at.
    pub vmpl: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// MEASUREMENT (launch digest), hex.
    pub measurement: Measurement,
    /// HOST_DATA, hex.
    pub host_data: HostData,
    /// REPORT_DATA, hex.
    pub report_data: ReportData,
    /// True when `expected_report_data` was given and matched.
    pub report_data_checked: bool,
    /// ID_KEY_DIGEST, hex.
    pub id_key_digest: IdKeyDigest,
    /// AUTHOR_KEY_DIGEST, hex.
    pub author_key_digest: AuthorKeyDigest,
    /// KEY_INFO.author_key_en.
    pub author_key_en: bool,
    /// FAMILY_ID, hex.
    pub family_id: FamilyId,
    /// IMAGE_ID, hex.
    pub image_id: ImageId,
    /// REPORT_ID, hex.
    pub report_id: ReportId,
    /// REPORT_ID_MA, hex.
    pub report_id_ma: ReportId,
    /// CHIP_ID, hex (zero for VLEK or masked reports).
    pub chip_id: ChipId,
    /// How CHIP_ID was tied to the certificate.
    pub chip_id_check: ChipIdCheck,
    /// PLATFORM_INFO flags (SMT, TSME, ECC, …).
    pub platform_info: PlatformInfo,
    /// CPUID family/model/stepping (v3+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuid: Option<Cpuid>,
    /// The TCBs, decoded in the product's layout.
    pub tcb: TcbClaims,
    /// Current firmware version (major.minor.build).
    pub current_version: FirmwareVersion,
    /// Committed firmware version.
    pub committed_version: FirmwareVersion,
    /// LAUNCH_MIT_VECTOR (v5), hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_mit_vector: Option<String>,
    /// CURRENT_MIT_VECTOR (v5), hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_mit_vector: Option<String>,
    /// Whether revocation was checked.
    pub revocation: Revocation,
    /// Genuine but unsafe facts (debug enabled, simulated roots, masked chip id).
    pub warnings: Vec<String>,
}

/// The VEK certificate's identity and extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VekClaims {
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// Serial number, hex (0 on genuine AMD VEKs).
    pub serial: String,
    /// Validity window.
    pub not_before: UnixTime,
    /// Validity window.
    pub not_after: UnixTime,
    /// The AMD extensions (productName, SPLs, hwID, cspId).
    pub extensions: VekExtensions,
}

/// The four TCBs of the report in the product's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcbClaims {
    /// The layout used to read them.
    pub layout: TcbLayout,
    /// CURRENT_TCB.
    pub current: TcbClaim,
    /// REPORTED_TCB (equals the VEK's TCB extensions).
    pub reported: TcbClaim,
    /// COMMITTED_TCB.
    pub committed: TcbClaim,
    /// LAUNCH_TCB.
    pub launch: TcbClaim,
}

/// One TCB: raw and per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TcbClaim {
    /// The raw TCB_VERSION, hex.
    pub raw: TcbVersion,
    /// The components.
    pub parts: TcbParts,
}

/// How CHIP_ID was tied to the VEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChipIdCheck {
    /// The VCEK's hwID equals CHIP_ID (Turin: its first 8 bytes, rest zero).
    Matched,
    /// The guest masked CHIP_ID; nothing to compare.
    Masked,
    /// VLEK-signed: the certificate names a cloud provider, not a chip.
    NotApplicableVlek,
}

/// Whether the chain was checked against a CRL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// True when a CRL was supplied, verified and consulted.
    pub checked: bool,
    /// What was checked, or why not.
    pub note: String,
}

/// Appraises an SNP report as of `now`. `Err` holds every failure found.
pub fn appraise(
    evidence: &SnpEvidence<'_>,
    roots: &TrustRoots,
    collateral: &SnpCollateral<'_>,
    now: UnixTime,
) -> Result<SnpClaims, Vec<Denial>> {
    let mut denials = Vec::new();

    // Parse and well-formedness.
    let report = Report::parse(evidence.report).map_err(|e| vec![Denial::malformed(&e)])?;
    let signed = evidence.report.get(..report::SIGNED_LEN).ok_or_else(|| {
        vec![Denial::new(
            DenialCode::EvidenceMalformed,
            "report too short",
        )]
    })?;
    if !(2..=5).contains(&report.version) {
        denials.push(Denial::value(
            DenialCode::UnsupportedFormat,
            "SNP report version not supported (2..=5)",
            "version",
            report.version,
        ));
    }
    for (field, offset) in report.nonzero_reserved() {
        denials.push(Denial::value(
            DenialCode::EvidenceMalformed,
            format!("reserved field {field} is not zero"),
            "offset",
            format!("{offset:#x}"),
        ));
    }
    if !report.policy.reserved_mbo() {
        denials.push(Denial::value(
            DenialCode::EvidenceMalformed,
            "guest policy bit 17 (reserved, must be one) is zero",
            "policy",
            format!("{:#x}", report.policy.0),
        ));
    }

    // Algorithm and signing key.
    let algorithm_ok = report.signature_algo == SignatureAlgorithm::ECDSA_P384_SHA384;
    if !algorithm_ok {
        denials.push(Denial::mismatch(
            DenialCode::UnsupportedAlgorithm,
            "report signature algorithm is not ECDSA P-384/SHA-384",
            "signature_algo",
            SignatureAlgorithm::ECDSA_P384_SHA384,
            report.signature_algo,
        ));
    }
    let signing_key = report.key_info.signing_key();
    let is_vlek = match signing_key {
        SigningKey::VCEK => false,
        SigningKey::VLEK => true,
        other => {
            denials.push(Denial::value(
                DenialCode::SigningKeyUnsupported,
                "report is not signed by a VCEK or VLEK",
                "key_info.signing_key",
                other,
            ));
            return Err(denials);
        }
    };

    // The VEK certificate: given, or from the cert table.
    let vek = match vek_certificate(evidence, is_vlek) {
        Ok(v) => v,
        Err(d) => {
            denials.push(d);
            return Err(denials);
        }
    };
    // Report signature over the received bytes (needs only the VEK
    // key, so it is checked even when nothing else about the VEK can be read).
    if algorithm_ok && let Err(d) = check_report_signature(&report, signed, &vek) {
        denials.push(d);
    }

    let ext = match VekExtensions::from_der(&vek.der) {
        Ok(e) => e,
        Err(e) => {
            denials.push(Denial::value(
                DenialCode::ChainMalformed,
                format!("VEK certificate extensions: {e}"),
                "subject",
                vek.subject(),
            ));
            return Err(denials);
        }
    };

    // Product.
    let product = match resolve_product(&report, &ext) {
        Ok(p) => p,
        Err(d) => {
            denials.push(d);
            return Err(denials);
        }
    };
    let layout = product.tcb_layout();

    // Chain to the pinned ARK.
    let chain_ok = match check_chain(&vek, product, is_vlek, roots, collateral, now) {
        Ok(chain) => {
            // Revocation, only over a chain that verified.
            match check_crl(&chain, collateral.crl_der, now) {
                Ok(r) => Some(r),
                Err(mut d) => {
                    denials.append(&mut d);
                    None
                }
            }
        }
        Err(mut d) => {
            denials.append(&mut d);
            None
        }
    };

    // TCB extensions against REPORTED_TCB.
    let vek_tcb = ext.tcb_version(layout);
    if vek_tcb != report.reported_tcb || ext.fmc_spl.is_some() != (layout == TcbLayout::Turin) {
        denials.push(Denial::mismatch(
            DenialCode::TcbMismatch,
            format!(
                "VEK TCB extensions differ from the report's REPORTED_TCB ({product} layout; VEK {})",
                describe_parts(ext.tcb_parts())
            ),
            "reported_tcb",
            vek_tcb,
            report.reported_tcb,
        ));
    }

    // hwID against CHIP_ID.
    let chip_id_check = match check_chip_id(&report, &ext, product, is_vlek) {
        Ok(c) => Some(c),
        Err(d) => {
            denials.push(d);
            None
        }
    };

    // REPORT_DATA.
    if let Some(expected) = evidence.expected_report_data
        && expected != report.report_data.0
    {
        denials.push(Denial::mismatch(
            DenialCode::ReportDataMismatch,
            "REPORT_DATA differs from the expected value",
            "report_data",
            hex::encode(expected),
            report.report_data.to_hex(),
        ));
    }

    let (Some(revocation), Some(chip_id_check), true) =
        (chain_ok, chip_id_check, denials.is_empty())
    else {
        if denials.is_empty() {
            // Unreachable by construction; never turn a missing result into Ok.
            denials.push(Denial::new(
                DenialCode::EvidenceMalformed,
                "SNP appraisal incomplete",
            ));
        }
        return Err(denials);
    };

    let mut warnings = Vec::new();
    if report.policy.debug_allowed() {
        warnings.push(
            "guest policy allows debugging: the host can read and change guest memory".to_owned(),
        );
    }
    if chip_id_check == ChipIdCheck::Masked {
        warnings.push(
            "CHIP_ID is masked: the report is not tied to a specific chip by its VCEK hwID"
                .to_owned(),
        );
    }
    if roots.is_simulated() {
        warnings.push(
            "verified with the simulator's roots: this proves nothing about hardware".to_owned(),
        );
    }

    let tcb = |raw: TcbVersion| TcbClaim {
        raw,
        parts: raw.parts(layout),
    };
    Ok(SnpClaims {
        roots: roots.origin.clone(),
        product,
        version: report.version,
        signing_key,
        vek: VekClaims {
            subject: vek.subject(),
            issuer: vek.cert.tbs_certificate.issuer.to_string(),
            serial: hex::encode(vek.cert.tbs_certificate.serial_number.as_bytes()),
            not_before: vek.not_before(),
            not_after: vek.not_after(),
            extensions: ext,
        },
        policy: report.policy,
        debug: report.policy.debug_allowed(),
        vmpl: report.vmpl,
        guest_svn: report.guest_svn,
        measurement: report.measurement,
        host_data: report.host_data,
        report_data: report.report_data,
        report_data_checked: evidence.expected_report_data.is_some(),
        id_key_digest: report.id_key_digest,
        author_key_digest: report.author_key_digest,
        author_key_en: report.key_info.author_key_en(),
        family_id: report.family_id,
        image_id: report.image_id,
        report_id: report.report_id,
        report_id_ma: report.report_id_ma,
        chip_id: report.chip_id,
        chip_id_check,
        platform_info: report.platform_info,
        cpuid: report.cpuid(),
        tcb: TcbClaims {
            layout,
            current: tcb(report.current_tcb),
            reported: tcb(report.reported_tcb),
            committed: tcb(report.committed_tcb),
            launch: tcb(report.launch_tcb),
        },
        current_version: report.current_version,
        committed_version: report.committed_version,
        launch_mit_vector: report.launch_mit_vector().map(|v| format!("{v:#018x}")),
        current_mit_vector: report.current_mit_vector().map(|v| format!("{v:#018x}")),
        revocation,
        warnings,
    })
}

/// The VEK from `vek_der`, else from the cert table entry for the signing key.
fn vek_certificate(evidence: &SnpEvidence<'_>, is_vlek: bool) -> Result<Cert, Denial> {
    let label = if is_vlek { "VLEK" } else { "VCEK" };
    if let Some(bytes) = evidence.vek_der {
        let mut certs = x509::certs_from_pem_or_der(bytes, label)?;
        if certs.len() != 1 {
            return Err(Denial::value(
                DenialCode::ChainMalformed,
                format!("expected exactly one {label} certificate"),
                "certificates",
                certs.len(),
            ));
        }
        return Ok(certs.swap_remove(0));
    }
    let Some(table_bytes) = evidence.cert_table else {
        return Err(Denial::value(
            DenialCode::ChainMalformed,
            format!("no {label} certificate supplied (neither given nor in a cert table)"),
            "certificate",
            label,
        ));
    };
    let table = CertTable::parse(table_bytes).map_err(|e| {
        Denial::value(
            DenialCode::ChainMalformed,
            format!("certificate table: {e}"),
            "cert_table",
            table_bytes.len(),
        )
    })?;
    let entry = if is_vlek { table.vlek() } else { table.vcek() };
    let der = entry.ok_or_else(|| {
        Denial::value(
            DenialCode::ChainMalformed,
            format!("the certificate table has no {label} entry"),
            "certificate",
            label,
        )
    })?;
    Cert::from_der(der, label)
}

/// The product line: CPUID (v3+) and the VEK's productName must agree.
fn resolve_product(report: &Report, ext: &VekExtensions) -> Result<Product, Denial> {
    let from_vek = ext.product();
    match (report.cpuid(), from_vek) {
        (Some(cpuid), vek) => {
            let from_cpuid = report.product_from_cpuid();
            match (from_cpuid, vek) {
                (Some(c), Some(v)) if c == v => Ok(c),
                (Some(c), Some(v)) => Err(Denial::mismatch(
                    DenialCode::ProductMismatch,
                    "the report's CPUID and the VEK productName name different products",
                    "product",
                    v,
                    c,
                )),
                (Some(c), None) => Err(Denial::mismatch(
                    DenialCode::ProductMismatch,
                    "the VEK productName names no supported product",
                    "productName",
                    c,
                    &ext.product_name,
                )),
                (None, _) => Err(Denial::mismatch(
                    DenialCode::ProductMismatch,
                    "the report's CPUID family/model is not a supported product",
                    "cpuid",
                    &ext.product_name,
                    format!(
                        "family {:#x} model {:#x} stepping {:#x}",
                        cpuid.family, cpuid.model, cpuid.stepping
                    ),
                )),
            }
        }
        (None, Some(v)) => Ok(v),
        (None, None) => Err(Denial::value(
            DenialCode::UnsupportedFormat,
            "v2 report and the VEK productName names no supported product",
            "productName",
            &ext.product_name,
        )),
    }
}

/// The verified chain, VEK first, ending at the pinned ARK.
struct Chain {
    intermediate: Cert,
    ark: Cert,
}

fn check_chain(
    vek: &Cert,
    product: Product,
    is_vlek: bool,
    roots: &TrustRoots,
    collateral: &SnpCollateral<'_>,
    now: UnixTime,
) -> Result<Chain, Vec<Denial>> {
    let pinned = roots.amd(product).ok_or_else(|| {
        vec![Denial::value(
            DenialCode::ChainUntrusted,
            "no AMD roots pinned for this product",
            "product",
            product,
        )]
    })?;
    let ark = Cert::from_der(&pinned.ark, "pinned ARK").map_err(|d| vec![d])?;
    let name = if is_vlek { "ASVK" } else { "ASK" };
    let mut chain = vec![vek.clone()];
    match collateral.chain_override {
        Some(bytes) => {
            let certs = x509::certs_from_pem_or_der(bytes, name).map_err(|d| vec![d])?;
            if certs.is_empty() || certs.len() > 2 {
                return Err(vec![Denial::value(
                    DenialCode::ChainMalformed,
                    format!("chain override must hold the {name} and at most the ARK"),
                    "certificates",
                    certs.len(),
                )]);
            }
            chain.extend(certs);
        }
        None => {
            let der = if is_vlek {
                pinned.asvk.as_deref()
            } else {
                Some(pinned.ask.as_slice())
            };
            let der = der.ok_or_else(|| {
                vec![Denial::value(
                    DenialCode::ChainUntrusted,
                    format!("no {name} pinned for this product"),
                    "product",
                    product,
                )]
            })?;
            chain.push(Cert::from_der(der, name).map_err(|d| vec![d])?);
        }
    }
    // A VEK that names another issuer than the pinned intermediate does not
    // chain to the pinned roots at all (e.g. simulated evidence under vendor
    // roots): untrusted, rather than a bad signature by the wrong key.
    if let Some(inter) = chain.get(1) {
        let named = &vek.cert.tbs_certificate.issuer;
        if *named != inter.cert.tbs_certificate.subject {
            return Err(vec![Denial::mismatch(
                DenialCode::ChainUntrusted,
                format!("the VEK is not issued by the pinned {product} {name}"),
                "issuer",
                inter.subject(),
                named.to_string(),
            )]);
        }
    }
    x509::verify_chain(&chain, &pinned.ark, now)?;
    let intermediate = chain
        .into_iter()
        .nth(1)
        .ok_or_else(|| vec![Denial::new(DenialCode::ChainMalformed, "no intermediate")])?;
    Ok(Chain { intermediate, ark })
}

/// ECDSA P-384/SHA-384 by the VEK over `signed` (the received 0x2A0 bytes).
fn check_report_signature(report: &Report, signed: &[u8], vek: &Cert) -> Result<(), Denial> {
    use p384::ecdsa::signature::Verifier as _;
    let key = vek.p384_key()?;
    let invalid = |why: String| {
        Denial::mismatch(
            DenialCode::SignatureInvalid,
            format!("report signature does not verify with the VEK: {why}"),
            "signer",
            vek.subject(),
            "a different key or altered bytes",
        )
    };
    let rs = report
        .signature
        .to_p384_be()
        .map_err(|e| invalid(e.to_string()))?;
    // `r ‖ s`, big-endian; zero or out-of-range scalars are refused here.
    let sig = p384::ecdsa::Signature::from_slice(&rs).map_err(|e| invalid(e.to_string()))?;
    key.verify(signed, &sig).map_err(|e| invalid(e.to_string()))
}

/// VCEK hwID against CHIP_ID (see the module doc for Turin and masking).
fn check_chip_id(
    report: &Report,
    ext: &VekExtensions,
    product: Product,
    is_vlek: bool,
) -> Result<ChipIdCheck, Denial> {
    if is_vlek {
        return Ok(ChipIdCheck::NotApplicableVlek);
    }
    let chip_id = report.chip_id.as_bytes();
    if report.key_info.mask_chip_key() && report.chip_id.is_zero() {
        return Ok(ChipIdCheck::Masked);
    }
    let mismatch = |found: String| {
        Denial::mismatch(
            DenialCode::ChipIdMismatch,
            format!("VCEK hwID does not match the report's CHIP_ID ({product})"),
            "chip_id",
            report.chip_id.to_hex(),
            found,
        )
    };
    let Some(hw_id) = &ext.hw_id else {
        return Err(mismatch("no hwID extension in the VCEK".to_owned()));
    };
    let (head, tail) = chip_id.split_at(product.hw_id_len().min(chip_id.len()));
    if hw_id.bytes.len() != product.hw_id_len()
        || hw_id.bytes.as_slice() != head
        || tail.iter().any(|&b| b != 0)
    {
        return Err(mismatch(format!("hwID {}", hex::encode(&hw_id.bytes))));
    }
    Ok(ChipIdCheck::Matched)
}

/// Verifies the CRL (when given) and checks the chain against it.
fn check_crl(
    chain: &Chain,
    crl_der: Option<&[u8]>,
    now: UnixTime,
) -> Result<Revocation, Vec<Denial>> {
    let Some(der) = crl_der else {
        return Ok(Revocation {
            checked: false,
            note: "no CRL supplied: the ASK/ASVK was not checked for revocation".to_owned(),
        });
    };
    let invalid = |why: String| vec![Denial::new(DenialCode::CrlInvalid, why)];
    let crl = CertificateList::from_der(der).map_err(|e| invalid(format!("CRL: {e}")))?;
    let tbs = &crl.tbs_cert_list;
    if tbs.issuer != chain.ark.cert.tbs_certificate.subject {
        return Err(vec![Denial::mismatch(
            DenialCode::CrlInvalid,
            "CRL is not issued by the pinned ARK",
            "issuer",
            chain.ark.subject(),
            tbs.issuer.to_string(),
        )]);
    }
    let tbs_bytes = x509::tbs_raw(der).ok_or_else(|| invalid("CRL structure unreadable".into()))?;
    let sig = crl
        .signature
        .as_bytes()
        .ok_or_else(|| invalid("CRL signature has unused bits".into()))?;
    x509::verify_x509_signature(&crl.signature_algorithm, tbs_bytes, sig, &chain.ark, "CRL")
        .map_err(|d| {
            vec![Denial {
                code: if d.code == DenialCode::CertSignatureInvalid {
                    DenialCode::CrlInvalid
                } else {
                    d.code
                },
                ..d
            }]
        })?;
    let this_update = UnixTime::from_x509(&tbs.this_update);
    let Some(next_update) = tbs.next_update.as_ref().map(UnixTime::from_x509) else {
        return Err(invalid("CRL has no nextUpdate".into()));
    };
    if now < this_update {
        return Err(vec![Denial::validity(
            DenialCode::CrlInvalid,
            "CRL not yet valid",
            tbs.issuer.to_string(),
            this_update,
            next_update,
            now,
        )]);
    }
    if now > next_update {
        return Err(vec![Denial::validity(
            DenialCode::CrlExpired,
            "CRL is past its nextUpdate",
            tbs.issuer.to_string(),
            this_update,
            next_update,
            now,
        )]);
    }
    // A CRL covers the certificates its issuer issued: here the ASK/ASVK.
    let inter = &chain.intermediate.cert.tbs_certificate;
    let mut denials = Vec::new();
    if inter.issuer == tbs.issuer {
        for revoked in tbs.revoked_certificates.iter().flatten() {
            if revoked.serial_number == inter.serial_number {
                denials.push(Denial::value(
                    DenialCode::CertRevoked,
                    format!("{} is revoked", chain.intermediate.subject()),
                    "serial",
                    hex::encode(inter.serial_number.as_bytes()),
                ));
            }
        }
    }
    if !denials.is_empty() {
        return Err(denials);
    }
    Ok(Revocation {
        checked: true,
        note: format!(
            "CRL by {} (thisUpdate {this_update}, nextUpdate {next_update}): {} not revoked",
            chain.ark.subject(),
            chain.intermediate.subject()
        ),
    })
}

fn describe_parts(p: TcbParts) -> String {
    let fmc = p.fmc.map(|f| format!("fmc={f} ")).unwrap_or_default();
    format!(
        "{fmc}bl={} tee={} snp={} ucode={}",
        p.bootloader, p.tee, p.snp, p.microcode
    )
}
