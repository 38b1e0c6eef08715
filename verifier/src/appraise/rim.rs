//! NVIDIA Reference Integrity Manifests: the XML signature, its signing chain,
//! and the golden-measurement comparison against a GPU report
//! (`specs/nvidia-gpu.md` §5.3 signature, §5.4 version checks, §5.5
//! comparison; §4 OCSP for the signing chain).
//!
//! The signature is verified in pure Rust over the canonical forms the
//! attestor's parser computes from the received bytes
//! ([`Rim::reference_c14n`], [`Rim::signed_info_c14n`]): the DigestValue must
//! be SHA-384 of the document without its signature, and the SignatureValue an
//! ECDSA P-384 / SHA-384 signature over the canonical `SignedInfo`, by the
//! first embedded certificate, whose chain must end in the pinned NVIDIA RIM
//! root and be valid at `now`. Only the algorithms NVIDIA uses are accepted.
//!
//! This module never fetches a RIM, never applies policy (which RIMs are
//! required is the policy's business: no RIM means "not compared" in the
//! claims), and never returns `Ok` after a failed cryptographic check or a
//! measurement mismatch.

use std::collections::BTreeMap;

use attestor::nvidia::report::{AttestationReport, NVDEC0_DISABLED, NVDEC0_ENABLED};
use attestor::nvidia::rim::{
    ALG_C14N_10, ALG_C14N_11, ALG_ECDSA_SHA384, ALG_ENVELOPED_SIGNATURE, ALG_SHA384, Rim, RimKind,
};
use serde::Serialize;
use sha2::{Digest, Sha384};

use crate::appraise::ocsp::{ChainRevocation, OcspResponses, complete_chain};
use crate::appraise::x509::{Cert, verify_chain};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;
use crate::trust::{RootsOrigin, TrustRoots};

/// The measurement index whose comparison depends on NVDEC0_STATUS (§5.5 step 3).
pub const NVDEC0_INDEX: u8 = 35;

/// What an authentic RIM says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimClaims {
    /// Driver or VBIOS.
    pub kind: RimKind,
    /// `colloquialVersion`.
    pub version: String,
    /// `SoftwareIdentity/@name` (the chip, e.g. `GH100`).
    pub name: String,
    /// `Meta/@product`.
    pub product: Option<String>,
    /// `tagId`.
    pub tag_id: String,
    /// `FirmwareManufacturerId` (the `oemid` claim, `5703` for NVIDIA).
    pub oemid: Option<String>,
    /// Active measurement indices (0-based).
    pub active_indices: Vec<u8>,
    /// Subjects of the signing chain, signer first (pinned root last).
    pub signing_chain: Vec<String>,
    /// Earliest `notAfter` in the signing chain: refresh the RIM before it.
    pub chain_expires: UnixTime,
    /// OCSP status of the signing chain (signer to the certificate below the root).
    pub revocation: ChainRevocation,
    /// Which roots verified the chain.
    pub roots: RootsOrigin,
    /// Genuine but worth a look (nothing today; kept for the shape).
    pub warnings: Vec<String>,
}

/// The outcome of comparing a report with its RIMs (§5.4, §5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementClaims {
    /// True when at least one RIM was compared.
    pub compared: bool,
    /// Driver RIM version equals the report's DRIVER_VERSION (`None`: no driver RIM).
    pub driver_version_match: Option<bool>,
    /// VBIOS RIM version equals the report's VBIOS_VERSION (`None`: no VBIOS RIM).
    pub vbios_version_match: Option<bool>,
    /// Indices compared and matched (0-based RIM index; report block is index + 1).
    pub matched: Vec<u8>,
    /// Indices that were active in a RIM but skipped, with the reason.
    pub skipped: BTreeMap<u8, String>,
    /// Which RIM each compared index came from.
    pub sources: BTreeMap<u8, RimKind>,
}

impl MeasurementClaims {
    /// Claims for "no RIM supplied": nothing compared.
    pub fn not_compared() -> Self {
        Self {
            compared: false,
            driver_version_match: None,
            vbios_version_match: None,
            matched: Vec::new(),
            skipped: BTreeMap::new(),
            sources: BTreeMap::new(),
        }
    }
}

/// Appraises one RIM document on its own: parse, algorithms, digest,
/// signature, signing chain to `roots.nvidia_rim_root` valid at `now`.
/// Revocation is reported as not checked (see [`appraise_rim_with_ocsp`]).
pub fn appraise_rim(
    xml: &[u8],
    roots: &TrustRoots,
    now: UnixTime,
) -> Result<RimClaims, Vec<Denial>> {
    appraise_rim_with_ocsp(xml, roots, &OcspResponses::default(), now).map(|(claims, _)| claims)
}

/// [`appraise_rim`] with OCSP responses for the signing chain (subjects 0..n−2,
/// §4.1). Also returns the parsed RIM for the measurement comparison.
pub fn appraise_rim_with_ocsp(
    xml: &[u8],
    roots: &TrustRoots,
    ocsp: &OcspResponses,
    now: UnixTime,
) -> Result<(RimClaims, Rim), Vec<Denial>> {
    let rim = Rim::parse(xml).map_err(|e| {
        vec![Denial::new(
            DenialCode::EvidenceMalformed,
            format!("RIM: {e}"),
        )]
    })?;
    let kind = rim.kind.ok_or_else(|| {
        vec![Denial::value(
            DenialCode::UnsupportedFormat,
            "RIM colloquialVersion is neither a driver nor a VBIOS version",
            "colloquialVersion",
            &rim.meta.colloquial_version,
        )]
    })?;
    check_algorithms(&rim)?;
    let label = format!("RIM {}", rim.meta.colloquial_version);
    let mut denials = Vec::new();

    // Reference digest over the document without its signature.
    let digest = Sha384::digest(rim.reference_c14n());
    if digest[..] != rim.signature.digest_value[..] {
        denials.push(Denial::mismatch(
            DenialCode::RimDigestMismatch,
            format!("{label}: document digest differs from the signed DigestValue"),
            "DigestValue",
            hex::encode(&rim.signature.digest_value),
            hex::encode(digest),
        ));
    }

    // The embedded chain, signer first.
    let certs: Vec<Cert> = match rim
        .signature
        .certs_der
        .iter()
        .enumerate()
        .map(|(i, der)| Cert::from_der(der, &format!("{label} certificate {i}")))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(c) => c,
        Err(d) => {
            denials.push(d);
            return Err(denials);
        }
    };
    let Some(signer) = certs.first() else {
        denials.push(Denial::new(
            DenialCode::ChainMalformed,
            format!("{label}: no X509Certificate in KeyInfo"),
        ));
        return Err(denials);
    };

    // Signature over the canonical SignedInfo with the signer's key.
    match signer.p384_key() {
        Ok(key) => {
            use p384::ecdsa::signature::Verifier as _;
            let ok = p384::ecdsa::Signature::from_slice(&rim.signature.signature_value)
                .ok()
                .is_some_and(|sig| key.verify(rim.signed_info_c14n(), &sig).is_ok());
            if !ok {
                denials.push(Denial::value(
                    DenialCode::RimSignatureInvalid,
                    format!("{label}: SignatureValue does not verify with the signer's key"),
                    "signer",
                    signer.subject(),
                ));
            }
        }
        Err(d) => denials.push(d),
    }

    // Signing chain to the pinned RIM root, valid at `now`.
    let root = match Cert::from_der(&roots.nvidia_rim_root, "pinned NVIDIA RIM root") {
        Ok(r) => r,
        Err(d) => {
            denials.push(d);
            return Err(denials);
        }
    };
    if certs.len() < 2 || certs.iter().take(1).any(|c| c.der == root.der) {
        denials.push(Denial::value(
            DenialCode::ChainMalformed,
            format!("{label}: signing chain too short"),
            "certificates",
            certs.len(),
        ));
    }
    if let Err(mut ds) = verify_chain(&certs, &roots.nvidia_rim_root, now) {
        denials.append(&mut ds);
    }
    let full = complete_chain(&certs, &root);
    let (revocation, mut ds) = ocsp.check_chain(&full, 0, now, &label);
    denials.append(&mut ds);

    if !denials.is_empty() {
        return Err(denials);
    }
    let claims = RimClaims {
        kind,
        version: rim.meta.colloquial_version.clone(),
        name: rim.identity.name.clone(),
        product: rim.meta.product.clone(),
        tag_id: rim.identity.tag_id.clone(),
        oemid: rim.meta.tcg.firmware_manufacturer_id.clone(),
        active_indices: rim.active_measurements().map(|m| m.index).collect(),
        signing_chain: full.iter().map(Cert::subject).collect(),
        chain_expires: full
            .iter()
            .map(Cert::not_after)
            .min()
            .unwrap_or(UnixTime(i64::MIN)),
        revocation,
        roots: roots.origin.clone(),
        warnings: Vec::new(),
    };
    Ok((claims, rim))
}

/// The `SignedInfo` must name exactly NVIDIA's algorithms (§5.3): inclusive
/// C14N (1.1, or 1.0 which gives the same bytes for these documents),
/// ECDSA-SHA384, one whole-document reference with the enveloped-signature
/// transform, SHA-384.
fn check_algorithms(rim: &Rim) -> Result<(), Vec<Denial>> {
    let s = &rim.signature;
    let c14n_ok = |uri: &str| uri == ALG_C14N_11 || uri == ALG_C14N_10;
    let mut denials = Vec::new();
    let mut require = |ok: bool, field: &str, expected: &str, found: &str| {
        if !ok {
            denials.push(Denial::mismatch(
                DenialCode::UnsupportedAlgorithm,
                "RIM signature uses an algorithm or reference that is not accepted",
                field,
                expected,
                found,
            ));
        }
    };
    require(
        c14n_ok(&s.c14n_method),
        "CanonicalizationMethod",
        ALG_C14N_11,
        &s.c14n_method,
    );
    require(
        s.signature_method == ALG_ECDSA_SHA384,
        "SignatureMethod",
        ALG_ECDSA_SHA384,
        &s.signature_method,
    );
    require(
        s.reference_uri.is_empty(),
        "Reference/@URI",
        "",
        &s.reference_uri,
    );
    let transforms_ok = match s.transforms.as_slice() {
        [enveloped] => enveloped == ALG_ENVELOPED_SIGNATURE,
        [enveloped, c14n] => enveloped == ALG_ENVELOPED_SIGNATURE && c14n_ok(c14n),
        _ => false,
    };
    require(
        transforms_ok,
        "Transforms",
        &format!("{ALG_ENVELOPED_SIGNATURE} {ALG_C14N_11}"),
        &s.transforms.join(" "),
    );
    require(
        s.digest_method == ALG_SHA384,
        "DigestMethod",
        ALG_SHA384,
        &s.digest_method,
    );
    if denials.is_empty() {
        Ok(())
    } else {
        Err(denials)
    }
}

/// Compares a report with its driver and/or VBIOS RIM (§5.4, §5.5). The RIMs
/// must already be appraised ([`appraise_rim`]); this checks only content:
/// each RIM in the slot of its kind, versions equal to the report's signed
/// opaque DRIVER_VERSION / VBIOS_VERSION, no index active in both, index 35
/// per NVDEC0_STATUS, and every other active golden index `i` matched by
/// report block `i + 1` (same length, equal to one alternative). Every
/// failure is returned. With neither RIM, nothing is compared.
pub fn compare_measurements(
    report: &AttestationReport,
    driver: Option<&Rim>,
    vbios: Option<&Rim>,
) -> Result<MeasurementClaims, Vec<Denial>> {
    let mut claims = MeasurementClaims::not_compared();
    if driver.is_none() && vbios.is_none() {
        return Ok(claims);
    }
    claims.compared = true;
    let mut denials = Vec::new();
    let opaque = report.opaque();

    let slots = [
        (
            RimKind::Driver,
            driver,
            opaque.driver_version(),
            "DRIVER_VERSION",
        ),
        (
            RimKind::Vbios,
            vbios,
            opaque.vbios_version(),
            "VBIOS_VERSION",
        ),
    ];
    for (kind, rim, reported, field) in &slots {
        let Some(rim) = rim else { continue };
        let matches = if rim.kind != Some(*kind) {
            denials.push(Denial::mismatch(
                DenialCode::RimVersionMismatch,
                format!("a {kind:?} RIM was expected in this slot"),
                "colloquialVersion",
                format!("{kind:?} RIM"),
                &rim.meta.colloquial_version,
            ));
            false
        } else {
            let ok = reported
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(rim.meta.colloquial_version.trim()));
            if !ok {
                denials.push(Denial::mismatch(
                    DenialCode::RimVersionMismatch,
                    format!("{kind:?} RIM version differs from the report's signed {field}"),
                    field.to_string(),
                    &rim.meta.colloquial_version,
                    reported.as_deref().unwrap_or("(absent)"),
                ));
            }
            ok
        };
        match kind {
            RimKind::Driver => claims.driver_version_match = Some(matches),
            RimKind::Vbios => claims.vbios_version_match = Some(matches),
        }
    }

    // Union of active golden values; an index active in both RIMs is a conflict.
    let mut golden: BTreeMap<u8, (RimKind, &attestor::nvidia::rim::RimMeasurement)> =
        BTreeMap::new();
    for (kind, rim) in [(RimKind::Driver, driver), (RimKind::Vbios, vbios)] {
        for m in rim.into_iter().flat_map(Rim::active_measurements) {
            if let Some((other, _)) = golden.get(&m.index) {
                denials.push(Denial::mismatch(
                    DenialCode::RimIndexConflict,
                    format!("measurement index {} is active in both RIMs", m.index),
                    format!("index {}", m.index),
                    format!("{other:?} only"),
                    format!("{other:?} and {kind:?}"),
                ));
                continue;
            }
            golden.insert(m.index, (kind, m));
        }
    }

    for (&index, &(kind, m)) in &golden {
        claims.sources.insert(index, kind);
        if index == NVDEC0_INDEX {
            match opaque.nvdec0_status() {
                Some(NVDEC0_DISABLED) => {
                    claims
                        .skipped
                        .insert(index, "NVDEC0 disabled (NVDEC0_STATUS 0x55)".into());
                    continue;
                }
                Some(NVDEC0_ENABLED) => {}
                other => {
                    denials.push(Denial::value(
                        DenialCode::EvidenceMalformed,
                        "NVDEC0_STATUS is neither enabled (0xaa) nor disabled (0x55)",
                        "NVDEC0_STATUS",
                        other.map_or("(absent)".to_owned(), |v| format!("0x{v:02x}")),
                    ));
                    continue;
                }
            }
        }
        let expected = || {
            m.alternatives
                .iter()
                .map(hex::encode)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let Some(found) = index.checked_add(1).and_then(|b| report.measurement(b)) else {
            denials.push(Denial::mismatch(
                DenialCode::MeasurementMissing,
                format!(
                    "measurement index {index} ({kind:?} RIM) has no report block {}",
                    u16::from(index) + 1
                ),
                format!("index {index}"),
                expected(),
                "(absent)",
            ));
            continue;
        };
        let size_ok = usize::try_from(m.size).is_ok_and(|s| s == found.len());
        if size_ok && m.alternatives.iter().any(|a| a.as_slice() == found) {
            claims.matched.push(index);
        } else {
            denials.push(Denial::mismatch(
                DenialCode::MeasurementMismatch,
                format!(
                    "measurement index {index} ({kind:?} RIM, {} bytes) differs from report block {}",
                    m.size,
                    u16::from(index) + 1
                ),
                format!("index {index}"),
                expected(),
                hex::encode(found),
            ));
        }
    }
    if denials.is_empty() {
        Ok(claims)
    } else {
        Err(denials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_compare_is_not_compared() {
        let gpu = attestor::nvidia::simulate::simulate(
            &attestor::sim::SimSeed::DEFAULT,
            &attestor::nvidia::simulate::GpuSimParams::new(attestor::nvidia::report::SpdmNonce(
                [1; 32],
            )),
        )
        .unwrap();
        let report = AttestationReport::parse(&gpu.report).unwrap();
        let claims = compare_measurements(&report, None, None).unwrap();
        assert!(!claims.compared);
        assert!(claims.matched.is_empty());
    }
}
