//! Intel TDX appraisal: a DCAP v4/v5 quote, optionally its CCEL event log,
//! against the Intel SGX Root CA and offline collateral, at an explicit time.
//!
//! Checks (`specs/snp-tdx.md` §5.5, the union of go-tdx-guest and dcap-qvl):
//! 1. Offline, our own code over the received bytes: the quote signature by
//!    the attestation key (header ‖ body), the QE report signature by the PCK
//!    leaf, QE report_data\[0..32\] = SHA-256(attestation key ‖ QE auth data),
//!    the PCK chain to the pinned root at `now` (`appraise::x509`), and the
//!    caller's expected REPORTDATA.
//! 2. With collateral, dcap-qvl 0.7 (pure Rust, no network): TCB info and QE
//!    identity signatures and windows, CRLs and revocation, QE identity, TCB
//!    level matching (SGX components, PCESVN, TEE_TCB_SVN, TDX module
//!    identity), and the converged TCB status with advisory IDs.
//! 3. With an event log, its replay must reproduce RTMR0–3 ([`ccel`]).
//!
//! Without collateral the quote is never accepted (`collateral_missing`): no
//! TCB status means not verified; the denial says which offline checks passed.
//! Genuine but unsafe facts (DEBUG, a TCB status other than UpToDate) are
//! claims with a warning, never a denial: policy decides. A `Revoked` TCB is
//! a denial. dcap-qvl itself still refuses a few TD attribute settings even
//! with debug and service TDs allowed (reserved bits, MIGRATABLE, no
//! SEPT_VE_DISABLE); those come back as `quote_verification_failed`.
//!
//! This module never reads the clock, never fetches collateral and never
//! applies policy.

pub mod ccel;
pub mod collateral;

use dcap_qvl::configs::RustCryptoConfig;
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{QuotePolicy, TcbStatus};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use attestor::tdx::certs::{CpuSvn, Fmspc, PceId, PckExtensions, pck_chain_from_pem};
use attestor::tdx::quote::{
    AttestationKeyType, INTEL_QE_VENDOR_ID, MrConfigId, MrOwner, MrOwnerConfig, MrSeam,
    MrServiceTd, MrSignerSeam, Mrtd, Quote, Rtmr, SeamAttributes, TdAttributes, TdReportData,
    TeeTcbSvn, TeeType, Xfam,
};

pub use collateral::{CollateralError, PcsCollateral, QuoteCollateralV3, TdxCollateral};

use crate::appraise::x509::{Cert, verify_chain};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;
use crate::trust::{RootsOrigin, TrustRoots};

/// The TDX evidence to appraise, as received.
#[derive(Debug, Clone, Copy)]
pub struct TdxEvidence<'a> {
    /// The DCAP quote bytes.
    pub quote: &'a [u8],
    /// The CCEL event log, when the attester sent one.
    pub cc_eventlog: Option<&'a [u8]>,
    /// REPORTDATA the quote must carry (the session binding), when known.
    pub expected_report_data: Option<[u8; 64]>,
}

/// What a verified TDX quote says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxClaims {
    /// Which roots verified it (policy refuses `simulated` in production).
    pub roots: RootsOrigin,
    /// Quote version (4 or 5).
    pub quote_version: u16,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: TeeTcbSvn,
    /// MRSEAM: the TDX module.
    pub mr_seam: MrSeam,
    /// MRSIGNERSEAM.
    pub mr_signer_seam: MrSignerSeam,
    /// SEAM_ATTRIBUTES.
    pub seam_attributes: SeamAttributes,
    /// TD_ATTRIBUTES (value and decoded bits).
    pub td_attributes: TdAttributes,
    /// TD_ATTRIBUTES.DEBUG: the host can read and write the TD's memory.
    pub debug: bool,
    /// XFAM.
    pub xfam: Xfam,
    /// MRTD: the initial TD image (firmware).
    pub mr_td: Mrtd,
    /// MRCONFIGID.
    pub mr_config_id: MrConfigId,
    /// MROWNER.
    pub mr_owner: MrOwner,
    /// MROWNERCONFIG.
    pub mr_owner_config: MrOwnerConfig,
    /// RTMR0–3.
    pub rtmrs: [Rtmr; 4],
    /// REPORTDATA.
    pub report_data: TdReportData,
    /// TD 1.5: TEE_TCB_SVN_2 (the current TCB).
    pub tee_tcb_svn2: Option<TeeTcbSvn>,
    /// TD 1.5: MRSERVICETD.
    pub mr_service_td: Option<MrServiceTd>,
    /// The platform, from the verified PCK certificate.
    pub platform: TdxPlatform,
    /// TCB status from the collateral.
    pub tcb: TdxTcb,
    /// The replayed event log, when one was given.
    pub event_log: Option<EventLogClaims>,
    /// Genuine but unsafe facts, for policy and for people.
    pub warnings: Vec<String>,
}

/// Platform identity from the PCK certificate's SGX extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxPlatform {
    /// FMSPC.
    pub fmspc: Fmspc,
    /// PCE-ID.
    pub pce_id: PceId,
    /// PCESVN.
    pub pce_svn: u16,
    /// CPUSVN.
    pub cpu_svn: CpuSvn,
    /// SGX type (0 standard, 1 scalable, 2 scalable with integrity).
    pub sgx_type: u8,
    /// Platform CA certificates only: dynamic platform.
    pub dynamic_platform: Option<bool>,
    /// Platform CA certificates only: cached keys.
    pub cached_keys: Option<bool>,
    /// Platform CA certificates only: SMT enabled.
    pub smt_enabled: Option<bool>,
    /// The PCK certificate's issuer.
    pub pck_issuer: String,
}

/// The TCB verdict from the collateral (dcap-qvl's Intel-QVL algorithm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxTcb {
    /// Converged status (platform, TDX module, QE; TD 1.5 relaunch advice).
    pub status: TdxTcbStatus,
    /// Advisory IDs of the matched levels.
    pub advisory_ids: Vec<String>,
    /// The matched platform level's status (converged with the TDX module).
    pub platform_status: TdxTcbStatus,
    /// The matched platform level's date.
    pub platform_tcb_date: String,
    /// TD 1.5: the status of the level matched by the current TCB.
    pub current_status: Option<TdxTcbStatus>,
    /// The matched QE identity level's status.
    pub qe_status: TdxTcbStatus,
    /// The matched QE identity level's date.
    pub qe_tcb_date: String,
    /// The QE's ISVSVN.
    pub qe_isv_svn: u16,
    /// Lower of the TCB info's and QE identity's tcbEvaluationDataNumber.
    pub tcb_eval_data_number: u32,
    /// Latest issue date over the collateral.
    pub collateral_issued: UnixTime,
    /// Earliest expiry over the collateral (its weakest link).
    pub collateral_expires: UnixTime,
}

/// Intel TCB statuses, with stable wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TdxTcbStatus {
    UpToDate,
    SwHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSwHardeningNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    TdRelaunchAdvised,
    TdRelaunchAdvisedConfigurationNeeded,
    Revoked,
}

impl TdxTcbStatus {
    /// Intel's spelling. Written out; never change one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SwHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::TdRelaunchAdvised => "TDRelaunchAdvised",
            Self::TdRelaunchAdvisedConfigurationNeeded => "TDRelaunchAdvisedConfigurationNeeded",
            Self::Revoked => "Revoked",
        }
    }

    fn from_dcap(s: TcbStatus) -> Self {
        match s {
            TcbStatus::UpToDate => Self::UpToDate,
            TcbStatus::SWHardeningNeeded => Self::SwHardeningNeeded,
            TcbStatus::ConfigurationNeeded => Self::ConfigurationNeeded,
            TcbStatus::ConfigurationAndSWHardeningNeeded => Self::ConfigurationAndSwHardeningNeeded,
            TcbStatus::OutOfDate => Self::OutOfDate,
            TcbStatus::OutOfDateConfigurationNeeded => Self::OutOfDateConfigurationNeeded,
            TcbStatus::TDRelaunchAdvised => Self::TdRelaunchAdvised,
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                Self::TdRelaunchAdvisedConfigurationNeeded
            }
            TcbStatus::Revoked => Self::Revoked,
        }
    }
}

impl std::fmt::Display for TdxTcbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TdxTcbStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A replayed CCEL: it reproduced the quote's RTMRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLogClaims {
    /// Extends per RTMR.
    pub extends: [u32; 4],
    /// Every event (type, register, SHA-384 digest, data), for reference-value policies.
    pub events: Vec<ccel::EventSummary>,
}

/// Appraises a TDX quote. `Ok` only when every check passed, collateral included.
pub fn appraise(
    evidence: &TdxEvidence<'_>,
    roots: &TrustRoots,
    collateral: Option<&TdxCollateral>,
    now: UnixTime,
) -> Result<TdxClaims, Vec<Denial>> {
    let quote = Quote::parse(evidence.quote).map_err(|e| vec![Denial::malformed(&e)])?;
    let mut denials = Vec::new();
    let mut offline = Offline::default();

    check_header(&quote, &mut denials);
    offline.quote_signature = record(&mut denials, verify_quote_signature(&quote));
    let pck = offline_pck_checks(&quote, roots, now, &mut offline, &mut denials);

    let report = quote.report();
    if let Some(expected) = evidence
        .expected_report_data
        .filter(|e| *e != report.report_data.0)
    {
        denials.push(Denial::mismatch(
            DenialCode::ReportDataMismatch,
            "the quote's REPORTDATA is not the expected binding",
            "report_data",
            hex::encode(expected),
            report.report_data,
        ));
    }

    let event_log = match evidence.cc_eventlog {
        Some(bytes) => replay_event_log(bytes, &report.rtmrs, &mut denials),
        None => None,
    };

    let Some(collateral) = collateral else {
        denials.push(Denial::new(
            DenialCode::CollateralMissing,
            format!(
                "no TDX collateral (TCB info, QE identity, CRLs): the TCB status cannot be \
                 evaluated, so the quote is not verified; offline checks at {now}: {}",
                offline.describe()
            ),
        ));
        return Err(denials);
    };
    let Some(pck) = pck else {
        // Without a readable PCK certificate the collateral cannot even be chosen.
        if denials.is_empty() {
            denials.push(Denial::new(
                DenialCode::QuoteVerificationFailed,
                "no PCK certificate to select the collateral with",
            ));
        }
        return Err(denials);
    };

    let tcb = match run_dcap_qvl(evidence.quote, roots, collateral, &pck, now) {
        Ok(tcb) => Some(tcb),
        Err(d) => {
            // The offline checks already named quote-side failures; keep one reason per code.
            if !denials.iter().any(|x| x.code == d.code) {
                denials.push(d);
            }
            None
        }
    };
    let Some(tcb) = tcb.filter(|_| denials.is_empty()) else {
        return Err(denials);
    };
    if tcb.status == TdxTcbStatus::Revoked {
        return Err(vec![Denial::value(
            DenialCode::TcbRevoked,
            "the platform's TCB level is revoked",
            "tcb_status",
            tcb.status,
        )]);
    }

    let mut warnings = Vec::new();
    if roots.is_simulated() {
        warnings.push(
            "verified with the simulator's roots: this proves nothing about hardware".to_owned(),
        );
    }
    if report.td_attributes.debug() {
        warnings.push(
            "TD_ATTRIBUTES.DEBUG is set: the host can read and modify the TD's memory".to_owned(),
        );
    }
    if tcb.status != TdxTcbStatus::UpToDate {
        let advisories = if tcb.advisory_ids.is_empty() {
            "none listed".to_owned()
        } else {
            tcb.advisory_ids.join(", ")
        };
        warnings.push(format!(
            "TCB status is {} (advisories: {advisories})",
            tcb.status
        ));
    }
    if !quote.trailing.all_zero() {
        warnings.push(format!(
            "{} unsigned non-zero bytes follow the quote's signature data",
            quote.trailing.0.len()
        ));
    }

    let td15 = quote.td15();
    Ok(TdxClaims {
        roots: roots.origin.clone(),
        quote_version: quote.header.version,
        tee_tcb_svn: report.tee_tcb_svn,
        mr_seam: report.mr_seam,
        mr_signer_seam: report.mr_signer_seam,
        seam_attributes: report.seam_attributes,
        td_attributes: report.td_attributes,
        debug: report.td_attributes.debug(),
        xfam: report.xfam,
        mr_td: report.mr_td,
        mr_config_id: report.mr_config_id,
        mr_owner: report.mr_owner,
        mr_owner_config: report.mr_owner_config,
        rtmrs: report.rtmrs,
        report_data: report.report_data,
        tee_tcb_svn2: td15.map(|b| b.tee_tcb_svn2),
        mr_service_td: td15.map(|b| b.mr_service_td),
        platform: pck.platform,
        tcb,
        event_log,
        warnings,
    })
}

/// Which offline checks passed (`None`: not reached).
#[derive(Debug, Default)]
struct Offline {
    quote_signature: Option<bool>,
    pck_chain: Option<bool>,
    qe_report_signature: Option<bool>,
    qe_binding: Option<bool>,
}

impl Offline {
    fn describe(&self) -> String {
        let word = |v: Option<bool>| match v {
            Some(true) => "OK",
            Some(false) => "FAILED",
            None => "not checked",
        };
        format!(
            "quote signature by the attestation key {}; PCK chain to the pinned Intel root {}; \
             QE report signature by the PCK {}; QE report binds the attestation key {}",
            word(self.quote_signature),
            word(self.pck_chain),
            word(self.qe_report_signature),
            word(self.qe_binding),
        )
    }
}

/// What the offline checks learned about the PCK certificate.
struct PckFacts {
    platform: TdxPlatform,
    issuer: x509_cert::name::Name,
}

fn record(denials: &mut Vec<Denial>, r: Result<(), Denial>) -> Option<bool> {
    match r {
        Ok(()) => Some(true),
        Err(d) => {
            denials.push(d);
            Some(false)
        }
    }
}

fn check_header(quote: &Quote, denials: &mut Vec<Denial>) {
    let h = &quote.header;
    if h.tee_type != TeeType::TDX {
        denials.push(Denial::mismatch(
            DenialCode::UnsupportedFormat,
            "not a TDX quote",
            "tee_type",
            format!("{:#x}", TeeType::TDX.0),
            format!("{:#x}", h.tee_type.0),
        ));
    }
    if h.att_key_type != AttestationKeyType::ECDSA_P256 {
        denials.push(Denial::mismatch(
            DenialCode::UnsupportedAlgorithm,
            "attestation key type is not ECDSA P-256",
            "att_key_type",
            AttestationKeyType::ECDSA_P256.0,
            h.att_key_type.0,
        ));
    }
    if h.qe_vendor_id != INTEL_QE_VENDOR_ID {
        denials.push(Denial::mismatch(
            DenialCode::UnsupportedFormat,
            "quoting enclave vendor is not Intel",
            "qe_vendor_id",
            INTEL_QE_VENDOR_ID,
            h.qe_vendor_id,
        ));
    }
}

/// ECDSA P-256 over the signed region as received, by the quote's attestation key.
fn verify_quote_signature(quote: &Quote) -> Result<(), Denial> {
    use p256::ecdsa::signature::Verifier as _;
    let sd = &quote.signature_data;
    let bad = |why: &str| {
        Denial::new(
            DenialCode::SignatureInvalid,
            format!("quote signature (attestation key over header and TD report): {why}"),
        )
    };
    let mut sec1 = [0x04u8; 65];
    if let Some(dst) = sec1.get_mut(1..) {
        dst.copy_from_slice(sd.attestation_key.as_bytes());
    }
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| bad("the attestation key is not a P-256 point"))?;
    let sig = p256::ecdsa::Signature::from_slice(sd.signature.as_bytes())
        .map_err(|_| bad("not an ECDSA signature"))?;
    key.verify(quote.signed_bytes(), &sig)
        .map_err(|_| bad("does not verify"))
}

/// PCK chain, QE report signature and QE report binding. Returns the PCK
/// facts when the leaf was readable.
fn offline_pck_checks(
    quote: &Quote,
    roots: &TrustRoots,
    now: UnixTime,
    offline: &mut Offline,
    denials: &mut Vec<Denial>,
) -> Option<PckFacts> {
    let Some(qe) = quote.qe_report_cert_data() else {
        denials.push(Denial::value(
            DenialCode::UnsupportedFormat,
            "certification data is not a QE report (type 6); only quotes carrying their PCK chain are supported",
            "certification_data.type",
            quote.signature_data.certification_data.cert_type.0,
        ));
        return None;
    };

    // QE report data[0..32] = SHA-256(attestation key ‖ QE auth data).
    let mut h = Sha256::new();
    h.update(quote.signature_data.attestation_key.as_bytes());
    h.update(&qe.qe_auth_data);
    let expected: [u8; 32] = h.finalize().into();
    let found = qe.qe_report.report_data.0.get(..32).unwrap_or_default();
    offline.qe_binding = record(
        denials,
        if found == expected {
            Ok(())
        } else {
            Err(Denial::mismatch(
                DenialCode::QeReportInvalid,
                "the QE report does not bind the attestation key",
                "qe_report.report_data[0..32]",
                hex::encode(expected),
                hex::encode(found),
            ))
        },
    );

    let chain = match quote
        .pck_chain_pem()
        .ok_or_else(|| {
            Denial::new(
                DenialCode::ChainMalformed,
                "the QE report certification data carries no PCK chain (type 5)",
            )
        })
        .and_then(|pem| {
            pck_chain_from_pem(pem)
                .map_err(|e| Denial::new(DenialCode::ChainMalformed, format!("PCK chain: {e}")))
        })
        .and_then(|ders| {
            ders.iter()
                .map(|d| Cert::from_der(d, "PCK chain"))
                .collect::<Result<Vec<_>, _>>()
        }) {
        Ok(c) => c,
        Err(d) => {
            denials.push(d);
            return None;
        }
    };
    offline.pck_chain = Some(match verify_chain(&chain, &roots.intel_root, now) {
        Ok(()) => true,
        Err(ds) => {
            denials.extend(ds);
            false
        }
    });
    let leaf = chain.first()?;

    offline.qe_report_signature = record(denials, verify_qe_report_signature(quote, leaf));

    let ext = match PckExtensions::from_der(&leaf.der) {
        Ok(e) => e,
        Err(e) => {
            denials.push(Denial::new(
                DenialCode::ChainMalformed,
                format!("PCK certificate: {e}"),
            ));
            return None;
        }
    };
    let config = ext.configuration.unwrap_or_default();
    Some(PckFacts {
        platform: TdxPlatform {
            fmspc: ext.fmspc,
            pce_id: ext.pce_id,
            pce_svn: ext.tcb.pce_svn,
            cpu_svn: ext.tcb.cpu_svn,
            sgx_type: ext.sgx_type.0,
            dynamic_platform: config.dynamic_platform,
            cached_keys: config.cached_keys,
            smt_enabled: config.smt_enabled,
            pck_issuer: leaf.cert.tbs_certificate.issuer.to_string(),
        },
        issuer: leaf.cert.tbs_certificate.issuer.clone(),
    })
}

fn verify_qe_report_signature(quote: &Quote, pck_leaf: &Cert) -> Result<(), Denial> {
    use p256::ecdsa::signature::Verifier as _;
    let bad = |why: &str| {
        Denial::new(
            DenialCode::SignatureInvalid,
            format!("QE report signature (PCK key): {why}"),
        )
    };
    let qe = quote
        .qe_report_cert_data()
        .ok_or_else(|| bad("no QE report"))?;
    let bytes = quote
        .qe_report_bytes()
        .ok_or_else(|| bad("QE report bytes out of range"))?;
    let key = pck_leaf.p256_key()?;
    let sig = p256::ecdsa::Signature::from_slice(qe.qe_report_signature.as_bytes())
        .map_err(|_| bad("not an ECDSA signature"))?;
    key.verify(bytes, &sig).map_err(|_| bad("does not verify"))
}

fn replay_event_log(
    bytes: &[u8],
    quoted: &[Rtmr; 4],
    denials: &mut Vec<Denial>,
) -> Option<EventLogClaims> {
    let log = match ccel::EventLog::parse(bytes) {
        Ok(l) => l,
        Err(e) => {
            denials.push(Denial::new(
                DenialCode::EvidenceMalformed,
                format!("cc_eventlog: {e}"),
            ));
            return None;
        }
    };
    let replay = match log.replay() {
        Ok(r) => r,
        Err(e) => {
            denials.push(Denial::new(
                DenialCode::EvidenceMalformed,
                format!("cc_eventlog cannot be replayed: {e}"),
            ));
            return None;
        }
    };
    let mut ok = true;
    for (i, (q, r)) in quoted.iter().zip(replay.rtmrs.iter()).enumerate() {
        if q != r {
            ok = false;
            denials.push(Denial::mismatch(
                DenialCode::EventLogMismatch,
                format!("replaying the event log does not reproduce RTMR{i}"),
                format!("rtmr{i}"),
                q,
                r,
            ));
        }
    }
    ok.then(|| EventLogClaims {
        extends: replay.extends,
        events: log.summary(),
    })
}

/// Collateral checks and TCB evaluation by dcap-qvl, with debug TDs and
/// service TDs allowed (those are claims for policy).
fn run_dcap_qvl(
    quote: &[u8],
    roots: &TrustRoots,
    collateral: &TdxCollateral,
    pck: &PckFacts,
    now: UnixTime,
) -> Result<TdxTcb, Denial> {
    let collateral = collateral.resolve(&pck.platform.fmspc.to_hex(), &pck.issuer)?;
    let now_secs = u64::try_from(now.0).unwrap_or(0);
    let claims = QuoteVerifier::<RustCryptoConfig>::new_with_config(roots.intel_root.clone())
        .allow_debug(true)
        .allow_service_td(true)
        .verify_with_policy(
            quote,
            collateral,
            now_secs,
            &QuotePolicy::claims_only(now_secs),
        )
        .map_err(|e| map_dcap_error(&format!("{e:#}")))?;
    let at = |secs: u64| UnixTime(i64::try_from(secs).unwrap_or(i64::MAX));
    Ok(TdxTcb {
        status: TdxTcbStatus::from_dcap(claims.tcb.status),
        advisory_ids: claims.tcb.advisory_ids,
        platform_status: TdxTcbStatus::from_dcap(claims.platform.tcb_level.tcb_status),
        platform_tcb_date: claims.platform.tcb_level.tcb_date,
        current_status: claims
            .platform
            .current_tcb_level
            .map(|l| TdxTcbStatus::from_dcap(l.tcb_status)),
        qe_status: TdxTcbStatus::from_dcap(claims.qe.tcb_level.tcb_status),
        qe_tcb_date: claims.qe.tcb_level.tcb_date,
        qe_isv_svn: claims.qe.report.isv_svn,
        tcb_eval_data_number: claims.tcb.eval_data_number,
        collateral_issued: at(claims.latest_issue_date),
        collateral_expires: at(claims.earliest_expiration_date),
    })
}

/// dcap-qvl's error text (an anyhow chain) to the most specific stable code.
fn map_dcap_error(text: &str) -> Denial {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let code = if has(&["TCB status is invalid: Revoked"]) {
        DenialCode::TcbRevoked
    } else if has(&[
        "No matching TCB level",
        "is below minimum required from TDX module TCB levels",
        "Failed to evaluate the current TDX TCB",
    ]) {
        DenialCode::TcbLevelNotFound
    } else if has(&["Fmspc mismatch"]) {
        DenialCode::FmspcMismatch
    } else if has(&[
        "TCBInfo expired",
        "QE Identity expired",
        "TCBInfo issue date is in the future",
        "QE Identity issue date is in the future",
        "CrlExpired",
        "CrlNotValidYet",
    ]) {
        DenialCode::CollateralExpired
    } else if has(&["CertRevoked"]) {
        DenialCode::CertRevoked
    } else if has(&["CertExpired"]) {
        DenialCode::CertExpired
    } else if has(&["CertNotValidYet"]) {
        DenialCode::CertNotYetValid
    } else if has(&["UnknownIssuer", "Failed to load root ca"]) {
        DenialCode::ChainUntrusted
    } else if has(&[
        "UnknownRevocationStatus",
        "Failed to parse root CA CRL",
        "Failed to parse PCK CRL",
        "InvalidCrlSignatureForPublicKey",
        "CrlIssuer",
    ]) {
        DenialCode::CrlInvalid
    } else if has(&[
        "Signature is invalid for tcb_info",
        "Signature is invalid for qe_identity",
        "Failed to decode TcbInfo",
        "Failed to decode QeIdentity",
        "TCB Info signer must be issued directly",
        "QE Identity signer must be issued directly",
        "Certificate chain is too short for",
        "Unsupported QE Identity id/version",
        "non-TDX TCB info",
        "TCB Info is missing tdxModule",
        "Unrecognized TCB status",
    ]) {
        DenialCode::CollateralInvalid
    } else if has(&[
        "QE MRSIGNER mismatch",
        "QE ISVPRODID mismatch",
        "QE MISCSELECT mismatch",
        "QE ATTRIBUTES mismatch",
        "QE ISVSVN",
        "QE report validation failed",
        "No TCB levels found in QE Identity",
    ]) {
        DenialCode::QeIdentityMismatch
    } else if has(&["QE report hash mismatch"]) {
        DenialCode::QeReportInvalid
    } else if has(&[
        "Signature is invalid for qe_report",
        "ISV enclave report signature is invalid",
    ]) {
        DenialCode::SignatureInvalid
    } else {
        DenialCode::QuoteVerificationFailed
    };
    Denial::new(code, format!("dcap-qvl: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcap_errors_map_to_specific_codes() {
        let cases = [
            ("TCB status is invalid: Revoked", DenialCode::TcbRevoked),
            ("No matching TCB level found", DenialCode::TcbLevelNotFound),
            ("TCBInfo expired", DenialCode::CollateralExpired),
            (
                "Failed to verify certificate chain: CertRevoked",
                DenialCode::CertRevoked,
            ),
            (
                "Failed to verify certificate chain: UnknownIssuer",
                DenialCode::ChainUntrusted,
            ),
            (
                "Signature is invalid for tcb_info in quote_collateral",
                DenialCode::CollateralInvalid,
            ),
            (
                "QE MRSIGNER mismatch: expected 00, got 01",
                DenialCode::QeIdentityMismatch,
            ),
            (
                "ISV enclave report signature is invalid",
                DenialCode::SignatureInvalid,
            ),
            ("Fmspc mismatch", DenialCode::FmspcMismatch),
            (
                "SEPT_VE_DISABLE is not enabled",
                DenialCode::QuoteVerificationFailed,
            ),
        ];
        for (text, code) in cases {
            let d = map_dcap_error(text);
            assert_eq!(d.code, code, "{text}");
            assert!(d.message.contains(text));
        }
    }

    #[test]
    fn status_strings_are_intels() {
        assert_eq!(
            TdxTcbStatus::SwHardeningNeeded.as_str(),
            "SWHardeningNeeded"
        );
        assert_eq!(
            serde_json::to_value(TdxTcbStatus::OutOfDate).unwrap(),
            "OutOfDate"
        );
        assert_eq!(
            TdxTcbStatus::from_dcap(TcbStatus::TDRelaunchAdvised).as_str(),
            TcbStatus::TDRelaunchAdvised.to_string()
        );
    }
}
