//! NVIDIA GPU appraisal (Hopper, Blackwell in CC mode), in the order of
//! `specs/nvidia-gpu.md` §7: parse the SPDM report and device chain strictly
//! (§2, §3.1) → report signature, ECDSA P-384 over request ‖
//! response-without-signature with the leaf key (§2.5) → device chain to the
//! pinned NVIDIA Device Identity CA, valid at `now` (§3.2) → FWID in the leaf
//! (Hopper and Blackwell forms) equals the opaque FWID (§3.3) → device OCSP
//! for certificates 1..n−2 (§4) → nonce (§6.1) → RIMs: XML signature, chain,
//! OCSP (§5.3, [`rim`](super::rim)) → versions (§5.4) → golden measurements
//! (§5.5) → mode facts as claims (§6.2).
//!
//! Every check that can run independently runs, and all failures are
//! returned. A failed cryptographic check, a revoked certificate or a
//! measurement mismatch is never `Ok`. Policy is not decided here: without
//! RIMs the claims say measurements were not compared; without OCSP
//! responses they say revocation was not checked; devtools mode (an
//! unauthenticated NVML fact carried beside the evidence) is a claim and a
//! warning. Only the trust roots differ between real and simulated GPUs.

use attestor::nvidia::certs::DeviceChain;
use attestor::nvidia::evidence::{GpuArch, GpuEvidenceEntry, GpuEvidenceList};
use attestor::nvidia::report::{AttestationReport, NVDEC0_DISABLED, NVDEC0_ENABLED};
use attestor::nvidia::rim::{Rim, RimKind};
use serde::Serialize;
use serde_json::Value;

use crate::appraise::ocsp::{ChainRevocation, OcspResponses, complete_chain};
use crate::appraise::rim::{
    MeasurementClaims, RimClaims, appraise_rim_with_ocsp, compare_measurements,
};
use crate::appraise::x509::{Cert, verify_chain};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;
use crate::trust::{RootsOrigin, TrustRoots};

/// Certificates in a Hopper or Blackwell device chain, root included (§3.1).
pub const DEVICE_CHAIN_LEN: usize = 5;
/// Highest OPAQUE_DATA_VERSION understood (NVAT refuses newer, §6.2).
pub const MAX_OPAQUE_DATA_VERSION: u64 = 1;

/// One GPU's evidence as received.
#[derive(Debug, Clone, Copy)]
pub struct GpuEvidence<'a> {
    /// The NVML attestation report (SPDM request ‖ response).
    pub report: &'a [u8],
    /// The device chain, concatenated PEM, leaf first.
    pub chain_pem: &'a [u8],
    /// The nonce the verifier chose, when this appraisal checks it.
    pub expected_nonce: Option<[u8; 32]>,
}

/// Collateral for GPU appraisal.
#[derive(Debug, Clone, Default)]
pub struct GpuCollateral<'a> {
    /// Driver and/or VBIOS RIM XML documents (for one or several GPUs).
    pub rims: Vec<&'a [u8]>,
    /// DER OCSP responses for device and RIM chain certificates.
    pub ocsp: Vec<&'a [u8]>,
}

/// Facts reported by NVML at collection time, carried beside the evidence.
/// None of them is authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectionFacts {
    /// NVML UUID, when sent.
    pub uuid: Option<String>,
    /// Architecture as the collector named it.
    pub arch: Option<String>,
    /// `cc_mode` as sent (e.g. `on`, `devtools`).
    pub cc_mode: Option<String>,
    /// Devtools mode, when the collector said.
    pub devtools_mode: Option<bool>,
}

/// What an authentic GPU report says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuClaims {
    /// Which roots verified the chains.
    pub roots: RootsOrigin,
    /// `HOPPER` or `BLACKWELL`, from the chip named by the device chain.
    pub arch: Option<String>,
    /// The chip (`GH100`, `GB100`), from certificate 1's common name.
    pub chip: Option<String>,
    /// `hwmodel`: common name of certificate 1.
    pub hwmodel: Option<String>,
    /// `ueid`: leaf serial number in decimal.
    pub ueid: Option<String>,
    /// The caller's nonce from the signed request, hex.
    pub nonce: String,
    /// True when it was compared with an expected nonce (and matched).
    pub nonce_checked: bool,
    /// Opaque DRIVER_VERSION.
    pub driver_version: Option<String>,
    /// Opaque VBIOS_VERSION, formatted (`96.00.9F.00.01`).
    pub vbios_version: Option<String>,
    /// Opaque PROJECT (VBIOS RIM id part, e.g. `1010`).
    pub project: Option<String>,
    /// Opaque PROJECT_SKU (VBIOS RIM id part, e.g. `0200`).
    pub project_sku: Option<String>,
    /// Opaque CHIP_SKU (VBIOS RIM id part, e.g. `882`).
    pub chip_sku: Option<String>,
    /// Opaque CHIP_INFO (Blackwell).
    pub chip_info: Option<String>,
    /// Opaque BOARD_ID.
    pub board_id: Option<u32>,
    /// Opaque FWID, hex.
    pub fwid: Option<String>,
    /// FWID equals the leaf certificate's (`None`: the report has no FWID,
    /// old drivers; NVIDIA skips the check then).
    pub fwid_match: Option<bool>,
    /// OPAQUE_DATA_VERSION.
    pub opaque_data_version: Option<u64>,
    /// GPU mode from FEATURE_FLAG (`spt`, `mpt`, `ppcie`, `unknown`); `None`
    /// when the opaque data version does not define it.
    pub mode: Option<String>,
    /// PROTECTED_PCIE_STATUS: `enabled`, `disabled`, or the raw value.
    pub protected_pcie: Option<String>,
    /// NVDEC0_STATUS: `enabled`, `disabled`, or the raw value.
    pub nvdec0: Option<String>,
    /// SWITCH_PDI entries (NVAT form: each 8 bytes reversed, upper hex).
    pub switch_pdis: Vec<String>,
    /// Measurement blocks in the report.
    pub measurement_blocks: usize,
    /// Device chain subjects, leaf first, pinned root last.
    pub device_chain: Vec<String>,
    /// Earliest `notAfter` in the device chain.
    pub device_chain_expires: UnixTime,
    /// OCSP status of device certificates 1..n−2.
    pub device_revocation: ChainRevocation,
    /// The RIMs used (authentic ones only), driver first.
    pub rims: Vec<RimClaims>,
    /// The golden-measurement comparison.
    pub measurements: MeasurementClaims,
    /// Unauthenticated collection facts.
    pub collection: CollectionFacts,
    /// Genuine but worth a look (devtools mode, unsigned trailing bytes…).
    pub warnings: Vec<String>,
}

/// Collateral parsed and appraised once, for one or several GPUs.
struct Prepared {
    ocsp: OcspResponses,
    rims: Vec<(RimClaims, Rim)>,
    denials: Vec<Denial>,
}

impl Prepared {
    fn new(collateral: &GpuCollateral<'_>, roots: &TrustRoots, now: UnixTime) -> Self {
        let (ocsp, mut denials) = OcspResponses::parse(&collateral.ocsp);
        let mut rims = Vec::new();
        for xml in &collateral.rims {
            match appraise_rim_with_ocsp(xml, roots, &ocsp, now) {
                Ok(r) => rims.push(r),
                Err(mut ds) => denials.append(&mut ds),
            }
        }
        Self {
            ocsp,
            rims,
            denials,
        }
    }

    /// The RIM of `kind` for a GPU reporting `version`: the first whose
    /// version matches, else the first of that kind (which then fails the
    /// version check), else none.
    fn select(&self, kind: RimKind, version: Option<&str>) -> Option<&(RimClaims, Rim)> {
        let mut of_kind = self.rims.iter().filter(|(c, _)| c.kind == kind);
        let first = of_kind.clone().next();
        of_kind
            .find(|(c, _)| version.is_some_and(|v| v.eq_ignore_ascii_case(&c.version)))
            .or(first)
    }
}

/// Appraises one GPU's report and device chain, with RIMs and OCSP responses
/// when supplied, as of `now`.
pub fn appraise(
    evidence: &GpuEvidence<'_>,
    roots: &TrustRoots,
    collateral: &GpuCollateral<'_>,
    now: UnixTime,
) -> Result<GpuClaims, Vec<Denial>> {
    let prepared = Prepared::new(collateral, roots, now);
    let (claims, mut denials) = appraise_one(evidence, roots, &prepared, now);
    let mut all = prepared.denials;
    all.append(&mut denials);
    match claims {
        Some(c) if all.is_empty() => Ok(c),
        _ => Err(all),
    }
}

/// Appraises every GPU of a JSON evidence list (NVAT or KBS shape). Each
/// entry's own `nonce` field, when present, must equal its signed request
/// nonce; `expected_nonce` is checked against every report. The list must not
/// be empty. Denials name the GPU by position.
pub fn appraise_list(
    list: &GpuEvidenceList,
    expected_nonce: Option<[u8; 32]>,
    roots: &TrustRoots,
    collateral: &GpuCollateral<'_>,
    now: UnixTime,
) -> Result<Vec<GpuClaims>, Vec<Denial>> {
    let prepared = Prepared::new(collateral, roots, now);
    let mut denials = prepared.denials.clone();
    if list.entries.is_empty() {
        denials.push(Denial::new(
            DenialCode::EvidenceMalformed,
            "GPU evidence list is empty",
        ));
    }
    let mut out = Vec::new();
    for (i, entry) in list.entries.iter().enumerate() {
        let evidence = GpuEvidence {
            report: &entry.report,
            chain_pem: &entry.cert_chain_pem,
            expected_nonce,
        };
        let (claims, mut ds) = appraise_one(&evidence, roots, &prepared, now);
        if let Some(mut claims) = claims {
            ds.append(&mut check_entry(entry, &mut claims));
            out.push(claims);
        }
        for d in &mut ds {
            d.message = format!("GPU {i}: {}", d.message);
        }
        denials.append(&mut ds);
    }
    if denials.is_empty() {
        Ok(out)
    } else {
        Err(denials)
    }
}

/// Checks an entry's JSON fields against its appraised report and records
/// the unauthenticated collection facts.
fn check_entry(entry: &GpuEvidenceEntry, claims: &mut GpuClaims) -> Vec<Denial> {
    let mut denials = Vec::new();
    if let Some(nonce) = &entry.nonce
        && nonce.to_hex() != claims.nonce
    {
        denials.push(Denial::mismatch(
            DenialCode::NonceMismatch,
            "the entry's nonce field differs from the signed SPDM request nonce",
            "nonce",
            &claims.nonce,
            nonce.to_hex(),
        ));
    }
    let expected_arch = match &entry.arch {
        GpuArch::Hopper => Some("HOPPER"),
        GpuArch::Blackwell => Some("BLACKWELL"),
        GpuArch::Other(name) => {
            denials.push(Denial::value(
                DenialCode::UnsupportedFormat,
                "GPU architecture not supported",
                "arch",
                name,
            ));
            None
        }
    };
    if let Some(arch) = expected_arch
        && claims.arch.as_deref() != Some(arch)
    {
        denials.push(Denial::mismatch(
            DenialCode::ProductMismatch,
            "the entry's arch differs from the chip its device chain names",
            "arch",
            claims.arch.as_deref().unwrap_or("(unknown chip)"),
            arch,
        ));
    }
    let facts = collection_facts(entry);
    if facts.devtools_mode == Some(true) {
        claims.warnings.push(
            "GPU reported in CC devtools mode by NVML (unauthenticated): not a production \
             configuration; measurements are not expected to match the RIMs"
                .to_owned(),
        );
    }
    claims.collection = facts;
    denials
}

/// `uuid`, `arch` and any `cc_mode` / devtools field from the entry.
fn collection_facts(entry: &GpuEvidenceEntry) -> CollectionFacts {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cc_mode = entry.extra.get("cc_mode").map(text);
    let flag = [
        "devtools_mode",
        "devtools",
        "devToolsMode",
        "dev_tools_mode",
    ]
    .iter()
    .find_map(|k| entry.extra.get(*k))
    .and_then(|v| match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "devtools" => Some(true),
            "off" | "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    });
    let from_mode = cc_mode
        .as_deref()
        .map(|m| m.to_ascii_lowercase().contains("devtools"));
    let devtools_mode = match (flag, from_mode) {
        (Some(a), Some(b)) => Some(a || b),
        (a, b) => a.or(b),
    };
    CollectionFacts {
        uuid: entry.uuid.clone(),
        arch: Some(entry.arch.nvat_name().to_owned()),
        cc_mode,
        devtools_mode,
    }
}

/// The checks for one GPU. Returns claims when the evidence parsed (even if
/// some checks failed: the caller refuses whenever there are denials).
fn appraise_one(
    evidence: &GpuEvidence<'_>,
    roots: &TrustRoots,
    prepared: &Prepared,
    now: UnixTime,
) -> (Option<GpuClaims>, Vec<Denial>) {
    let mut denials = Vec::new();
    let mut warnings = Vec::new();

    // Parse (§2, §3.1).
    let report = AttestationReport::parse(evidence.report).map_err(|e| Denial::malformed(&e));
    let chain = DeviceChain::from_pem(evidence.chain_pem).map_err(|e| {
        Denial::value(
            DenialCode::ChainMalformed,
            format!("device chain: {e}"),
            "certificates",
            "device chain",
        )
    });
    let certs = chain.as_ref().ok().map(|c| {
        c.certs()
            .iter()
            .enumerate()
            .map(|(i, d)| Cert::from_der(d.der(), &format!("device certificate {i}")))
            .collect::<Result<Vec<_>, _>>()
    });
    let (report, chain, certs) = match (report, chain, certs) {
        (Ok(r), Ok(c), Some(Ok(certs))) => (r, c, certs),
        (r, c, certs) => {
            denials.extend(r.err());
            denials.extend(c.err());
            denials.extend(certs.and_then(Result::err));
            return (None, denials);
        }
    };

    // Request and opaque-data strictness beyond the parser.
    let request = &report.request;
    if !request.requests_signature() || !request.requests_all_measurements() || request.slot != 0 {
        denials.push(Denial::value(
            DenialCode::EvidenceMalformed,
            "SPDM request must ask for all measurements, signed, from slot 0",
            "request param1/param2/slot",
            format!(
                "0x{:02x}/0x{:02x}/{}",
                request.param1, request.param2, request.slot
            ),
        ));
    }
    let opaque = report.opaque();
    if let Some(v) = opaque.opaque_data_version()
        && v > MAX_OPAQUE_DATA_VERSION
    {
        denials.push(Denial::value(
            DenialCode::UnsupportedFormat,
            format!("OPAQUE_DATA_VERSION above {MAX_OPAQUE_DATA_VERSION} is not understood"),
            "OPAQUE_DATA_VERSION",
            v,
        ));
    }
    if !report.trailing.is_empty() {
        warnings.push(format!(
            "{} unsigned byte(s) after the report signature were ignored",
            report.trailing.len()
        ));
    }
    let unknown = opaque.unknown_ids();
    if !unknown.is_empty() {
        warnings.push(format!(
            "opaque data carries field ids without a defined meaning: {:?}",
            unknown.iter().map(|id| id.0).collect::<Vec<_>>()
        ));
    }

    // Report signature with the leaf key (§2.5).
    if let Some(leaf) = certs.first() {
        match leaf.p384_key() {
            Ok(key) => {
                use p384::ecdsa::signature::Verifier as _;
                let ok = p384::ecdsa::Signature::from_slice(&report.signature())
                    .ok()
                    .is_some_and(|sig| key.verify(report.signed_bytes(), &sig).is_ok());
                if !ok {
                    denials.push(Denial::value(
                        DenialCode::SignatureInvalid,
                        "GPU report signature does not verify with the leaf certificate's key",
                        "leaf",
                        leaf.subject(),
                    ));
                }
            }
            Err(d) => denials.push(d),
        }
        if leaf.is_ca() {
            denials.push(Denial::value(
                DenialCode::CertConstraintsInvalid,
                "the report-signing leaf certificate is a CA",
                "subject",
                leaf.subject(),
            ));
        }
    }

    // Device chain to the pinned root, valid at `now` (§3.2).
    let root = Cert::from_der(&roots.nvidia_device_root, "pinned NVIDIA device root");
    let full = match &root {
        Ok(root) => complete_chain(&certs, root),
        Err(d) => {
            denials.push(d.clone());
            certs.clone()
        }
    };
    if full.len() != DEVICE_CHAIN_LEN {
        denials.push(Denial::mismatch(
            DenialCode::ChainMalformed,
            "device chain must hold leaf, BROM, provisioner, identity and root certificates",
            "certificates",
            DEVICE_CHAIN_LEN,
            full.len(),
        ));
    }
    if let Err(mut ds) = verify_chain(&certs, &roots.nvidia_device_root, now) {
        denials.append(&mut ds);
    }

    // FWID (§3.3).
    let leaf_fwid = chain.leaf_tcb_info();
    let fwid_match = match (opaque.fwid(), leaf_fwid) {
        (None, _) => None,
        (Some(found), Ok(Some(tcb))) if tcb.fwid() == Some(found) => Some(true),
        (Some(found), leaf) => {
            let expected = match leaf {
                Ok(Some(tcb)) => tcb
                    .fwid()
                    .map_or("(no FWID in the extension)".to_owned(), |f| f.to_hex()),
                Ok(None) => "(leaf has no FWID extension)".to_owned(),
                Err(e) => format!("(leaf FWID extension malformed: {e})"),
            };
            denials.push(Denial::mismatch(
                DenialCode::FwidMismatch,
                "opaque FWID differs from the leaf certificate's",
                "FWID",
                expected,
                found.to_hex(),
            ));
            Some(false)
        }
    };

    // Device OCSP, certificates 1..n−2 (§4.1).
    let (device_revocation, mut ds) = prepared.ocsp.check_chain(&full, 1, now, "device chain");
    denials.append(&mut ds);

    // Nonce (§6.1).
    let nonce = report.nonce();
    if let Some(expected) = evidence.expected_nonce
        && nonce.into_bytes() != expected
    {
        denials.push(Denial::mismatch(
            DenialCode::NonceMismatch,
            "GPU report nonce differs from the expected nonce",
            "nonce",
            hex::encode(expected),
            nonce.to_hex(),
        ));
    }

    // RIMs, versions and golden measurements (§5.4, §5.5).
    let driver_version = opaque.driver_version();
    let vbios_version = opaque.vbios_version();
    let driver = prepared.select(RimKind::Driver, driver_version.as_deref());
    let vbios = prepared.select(RimKind::Vbios, vbios_version.as_deref());
    let measurements =
        match compare_measurements(&report, driver.map(|(_, r)| r), vbios.map(|(_, r)| r)) {
            Ok(m) => m,
            Err(mut ds) => {
                denials.append(&mut ds);
                MeasurementClaims::not_compared()
            }
        };

    let hwmodel = chain.hwmodel();
    let chip = hwmodel
        .as_deref()
        .and_then(|h| h.split_whitespace().next())
        .map(str::to_owned);
    let arch = chip.as_deref().and_then(|c| {
        if c.starts_with("GH") {
            Some("HOPPER".to_owned())
        } else if c.starts_with("GB") {
            Some("BLACKWELL".to_owned())
        } else {
            None
        }
    });
    let opaque_data_version = opaque.opaque_data_version();
    let mode = match (opaque_data_version, opaque.feature_flag()) {
        (Some(v), Some(flag)) if v >= 1 => Some(
            match flag {
                0 => "spt",
                1 => "mpt",
                2 => "ppcie",
                _ => "unknown",
            }
            .to_owned(),
        ),
        _ => None,
    };
    let status = |v: Option<u8>| {
        v.map(|b| match b {
            NVDEC0_ENABLED => "enabled".to_owned(),
            NVDEC0_DISABLED => "disabled".to_owned(),
            other => format!("0x{other:02x}"),
        })
    };
    let claims = GpuClaims {
        roots: roots.origin.clone(),
        arch,
        chip,
        hwmodel,
        ueid: chain.ueid(),
        nonce: nonce.to_hex(),
        nonce_checked: evidence.expected_nonce.is_some(),
        driver_version,
        vbios_version,
        project: opaque.project(),
        project_sku: opaque.project_sku(),
        chip_sku: opaque.chip_sku(),
        chip_info: opaque.chip_info(),
        board_id: opaque.board_id(),
        fwid: opaque.fwid().map(|f| f.to_hex()),
        fwid_match,
        opaque_data_version,
        mode,
        protected_pcie: status(opaque.protected_pcie_status()),
        nvdec0: status(opaque.nvdec0_status()),
        switch_pdis: opaque
            .switch_pdis()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let mut r = *p;
                r.reverse();
                hex::encode_upper(r)
            })
            .collect(),
        measurement_blocks: report.response.blocks.len(),
        device_chain: full.iter().map(Cert::subject).collect(),
        device_chain_expires: full
            .iter()
            .map(Cert::not_after)
            .min()
            .unwrap_or(UnixTime(i64::MIN)),
        device_revocation,
        rims: driver
            .into_iter()
            .chain(vbios)
            .map(|(c, _)| c.clone())
            .collect(),
        measurements,
        collection: CollectionFacts::default(),
        warnings,
    };
    (Some(claims), denials)
}
