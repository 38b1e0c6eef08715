//! Simulated Intel TDX evidence: DCAP v4 quotes with a simulated PCK chain,
//! and the collateral to appraise them (TDX tcbInfo v3, TD_QE identity, PCK
//! and root CA CRLs) in dcap-qvl's `QuoteCollateralV3` JSON shape.
//!
//! Everything is signed by keys derived from a [`SimSeed`] (ECDSA P-256 /
//! SHA-256, like Intel's), chained to `CN=Intel SGX Root CA SIMULATED`, so the
//! verifier runs the same appraisal code with a different trust root. Every
//! certificate name carries [`sim::SIMULATED_MARK`]; nothing here touches real
//! keys or hardware, and nothing here may be trusted as Intel's.
//!
//! The quote follows `specs/snp-tdx.md` §5.3 and is built from the types in
//! [`super::quote`], so it parses and round-trips like a genuine one. The
//! collateral follows Intel PCS v4 (tcbInfo v3, enclaveIdentity v2) with
//! `issueDate`/`thisUpdate` = `now` and `nextUpdate` = `now` + 30 days.

use std::str::FromStr;
use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, UtcTime};
use der::{DateTime, Encode};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::crl::{CertificateList, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::time::Time;

use super::certs::{
    CpuSvn, Fmspc, PceId, PckConfiguration, PckExtensions, PckTcb, PlatformInstanceId, Ppid,
    SGX_EXTENSION_OID, SgxType,
};
use super::quote::{
    AttestationKeyType, CertDataType, CertificationBody, CertificationData, EcdsaP256PublicKey,
    EcdsaP256Signature, EnclaveReport, Header, HeaderUserData, INTEL_QE_VENDOR_ID, MrConfigId,
    MrEnclave, MrOwner, MrOwnerConfig, MrSeam, MrSigner, MrSignerSeam, Mrtd, QeReportCertData,
    Quote, Rtmr, SeamAttributes, SgxAttributes, SgxCpuSvn, SgxReportData, SignatureData,
    TdAttributes, TdBody, TdReport10, TdReportData, TeeTcbSvn, TeeType, TrailingBytes, Xfam,
};
use crate::digest::{Sha256Digest, Sha384Digest};
use crate::sim::{self, CertSpec, SimError, SimKey, SimSeed};

/// Subject of the simulated root CA.
pub const ROOT_SUBJECT: &str = "CN=Intel SGX Root CA SIMULATED,O=Simulated,C=US";
/// Subject of the simulated PCK Platform CA.
pub const PLATFORM_CA_SUBJECT: &str = "CN=Intel SGX PCK Platform CA SIMULATED,O=Simulated,C=US";
/// Subject of the simulated PCK leaf.
pub const PCK_SUBJECT: &str = "CN=Intel SGX PCK Certificate SIMULATED,O=Simulated,C=US";
/// Subject of the simulated TCB signing certificate.
pub const TCB_SIGNING_SUBJECT: &str = "CN=Intel SGX TCB Signing SIMULATED,O=Simulated,C=US";

/// The simulated platform's FMSPC (no real platform has it).
pub const SIM_FMSPC: Fmspc = Fmspc([0x5e, 0x5e, 0x5e, 0x00, 0x00, 0x00]);
/// The simulated PCE-ID.
pub const SIM_PCE_ID: PceId = PceId([0x00, 0x00]);
/// The simulated platform's SGX TCB components (= its CPUSVN).
pub const SIM_SGX_COMPONENTS: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
/// The simulated platform's PCESVN.
pub const SIM_PCE_SVN: u16 = 13;
/// The simulated QE's ISVPRODID (TD_QE is 2).
pub const SIM_QE_ISV_PROD_ID: u16 = 2;
/// The simulated QE's ISVSVN.
pub const SIM_QE_ISV_SVN: u16 = 4;
/// The simulated QE's MISCSELECT.
pub const SIM_QE_MISC_SELECT: u32 = 0;
/// The simulated QE's ATTRIBUTES (as Intel's TD_QE: INIT|MODE64BIT|PROVISIONKEY, XFRM 0xe7).
pub const SIM_QE_ATTRIBUTES: [u8; 16] = [0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0];
/// tcbEvaluationDataNumber of the simulated collateral.
pub const SIM_TCB_EVAL_DATA_NUMBER: u32 = 17;
/// Validity of simulated collateral and CRLs.
pub const COLLATERAL_WINDOW_SECS: u64 = 30 * 86_400;

/// What the simulated TD reports. Defaults match a production TD on a
/// current TDX 1.0 module; the caller sets at least `report_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxSimParams {
    /// REPORTDATA (the binding of the session, see `binding`).
    pub report_data: TdReportData,
    /// MRTD (default: SHA-384 of a fixed label, never zero).
    pub mrtd: Mrtd,
    /// RTMR0..3 (default zero).
    pub rtmrs: [Rtmr; 4],
    /// TD_ATTRIBUTES (default only SEPT_VE_DISABLE).
    pub td_attributes: TdAttributes,
    /// XFAM (default 0x00000000000602e7).
    pub xfam: Xfam,
    /// MRCONFIGID (default zero).
    pub mr_config_id: MrConfigId,
    /// MROWNER (default zero).
    pub mr_owner: MrOwner,
    /// MROWNERCONFIG (default zero).
    pub mr_owner_config: MrOwnerConfig,
    /// TEE_TCB_SVN (default module SVN 6, major version 1, then 3).
    pub tee_tcb_svn: TeeTcbSvn,
    /// MRSEAM (default: SHA-384 of a fixed label).
    pub mr_seam: MrSeam,
    /// MRSIGNERSEAM (default zero, as Intel's modules).
    pub mr_signer_seam: MrSignerSeam,
    /// SEAM_ATTRIBUTES (default zero).
    pub seam_attributes: SeamAttributes,
}

impl TdxSimParams {
    /// Defaults, with the given REPORTDATA.
    pub fn new(report_data: TdReportData) -> Self {
        Self {
            report_data,
            mrtd: Mrtd(Sha384Digest::of(b"cc-inference-attestor/sim/tdx/TDVF SIMULATED").0),
            rtmrs: [Rtmr([0; 48]); 4],
            td_attributes: TdAttributes(TdAttributes::SEPT_VE_DISABLE),
            xfam: Xfam(0x0000_0000_0006_02e7),
            mr_config_id: MrConfigId([0; 48]),
            mr_owner: MrOwner([0; 48]),
            mr_owner_config: MrOwnerConfig([0; 48]),
            tee_tcb_svn: TeeTcbSvn([6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            mr_seam: MrSeam(
                Sha384Digest::of(b"cc-inference-attestor/sim/tdx/TDX module SIMULATED").0,
            ),
            mr_signer_seam: MrSignerSeam([0; 48]),
            seam_attributes: SeamAttributes(0),
        }
    }
}

/// A simulated quote with everything needed to appraise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedTdx {
    /// The DCAP v4 quote bytes.
    pub quote: Vec<u8>,
    /// Collateral, as dcap-qvl's `QuoteCollateralV3` JSON (pretty-printed).
    pub collateral_json: String,
    /// The simulated root CA certificate (DER): the trust root to appraise with.
    pub root_ca_der: Vec<u8>,
}

/// dcap-qvl's `QuoteCollateralV3` JSON shape: PEM issuer chains, hex DER
/// CRLs, the exact signed tcbInfo / enclaveIdentity JSON text, hex raw `r ‖ s`
/// signatures. Reads genuine collateral files too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteCollateralV3 {
    /// PEM: PCK CA, root.
    pub pck_crl_issuer_chain: String,
    /// Root CA CRL (DER).
    #[serde(with = "crate::hex::bytes")]
    pub root_ca_crl: Vec<u8>,
    /// PCK CA CRL (DER).
    #[serde(with = "crate::hex::bytes")]
    pub pck_crl: Vec<u8>,
    /// PEM: TCB signing, root.
    pub tcb_info_issuer_chain: String,
    /// The signed tcbInfo JSON, byte for byte.
    pub tcb_info: String,
    /// ECDSA P-256 `r ‖ s` over `tcb_info`.
    #[serde(with = "crate::hex::bytes")]
    pub tcb_info_signature: Vec<u8>,
    /// PEM: TCB signing, root.
    pub qe_identity_issuer_chain: String,
    /// The signed enclaveIdentity JSON, byte for byte.
    pub qe_identity: String,
    /// ECDSA P-256 `r ‖ s` over `qe_identity`.
    #[serde(with = "crate::hex::bytes")]
    pub qe_identity_signature: Vec<u8>,
    /// PCK chain, for quotes that do not embed one (absent in TDX collateral).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pck_certificate_chain: Option<String>,
}

/// The simulated root CA certificate (DER) for `seed`.
pub fn root_ca(seed: &SimSeed) -> Result<Vec<u8>, SimError> {
    Ok(Pki::new(seed)?.root.to_der()?)
}

/// Builds a simulated quote for `params` and collateral valid from `now_unix`
/// for 30 days. Deterministic per seed, parameters and time.
pub fn simulate(
    seed: &SimSeed,
    params: &TdxSimParams,
    now_unix: u64,
) -> Result<SimulatedTdx, SimError> {
    let pki = Pki::new(seed)?;
    let quote = build_quote(seed, params, &pki)?;
    let collateral = build_collateral(seed, params, &pki, now_unix)?;
    let collateral_json =
        serde_json::to_string_pretty(&collateral).map_err(|e| SimError::Encoding(e.to_string()))?;
    Ok(SimulatedTdx {
        quote,
        collateral_json,
        root_ca_der: pki.root.to_der()?,
    })
}

/// The simulated PCK extension values.
pub fn sim_pck_extensions(seed: &SimSeed) -> PckExtensions {
    let ppid = Sha256Digest::of(&[seed.as_bytes().as_slice(), b"tdx/ppid"].concat());
    let instance =
        Sha256Digest::of(&[seed.as_bytes().as_slice(), b"tdx/platform-instance"].concat());
    PckExtensions {
        ppid: Ppid(first16(&ppid.0)),
        tcb: PckTcb {
            comp_svns: SIM_SGX_COMPONENTS,
            pce_svn: SIM_PCE_SVN,
            cpu_svn: CpuSvn(SIM_SGX_COMPONENTS),
        },
        pce_id: SIM_PCE_ID,
        fmspc: SIM_FMSPC,
        sgx_type: SgxType::SCALABLE,
        platform_instance_id: Some(PlatformInstanceId(first16(&instance.0))),
        // All false, so a strict policy need not allow dynamic platforms or SMT.
        configuration: Some(PckConfiguration {
            dynamic_platform: Some(false),
            cached_keys: Some(false),
            smt_enabled: Some(false),
        }),
    }
}

/// The simulated QE's MRSIGNER.
pub fn sim_qe_mr_signer() -> MrSigner {
    MrSigner(Sha256Digest::of(b"cc-inference-attestor/sim/tdx/TD_QE signer SIMULATED").0)
}

/// The simulated keys and certificates.
struct Pki {
    root_key: SimKey,
    root: Certificate,
    platform_ca_key: SimKey,
    platform_ca: Certificate,
    pck_key: SigningKey,
    pck: Certificate,
    tcb_signing_key: SigningKey,
    tcb_signing: Certificate,
}

impl Pki {
    fn new(seed: &SimSeed) -> Result<Self, SimError> {
        let root_key = SimKey::P256(p256_key(seed, "tdx/root-ca"));
        let root_spec = CertSpec::new(ROOT_SUBJECT, &[0x01]).ca(Some(1));
        let root = sim::issue(
            &root_spec,
            root_key.spki()?,
            ROOT_SUBJECT,
            &root_key,
            &mut sim::rng(seed, "tdx/root-ca/cert"),
        )?;

        let platform_ca_key = SimKey::P256(p256_key(seed, "tdx/pck-platform-ca"));
        let platform_ca = sim::issue(
            &CertSpec::new(PLATFORM_CA_SUBJECT, &[0x02]).ca(Some(0)),
            platform_ca_key.spki()?,
            ROOT_SUBJECT,
            &root_key,
            &mut sim::rng(seed, "tdx/pck-platform-ca/cert"),
        )?;

        let pck_key = p256_key(seed, "tdx/pck");
        let ext = sim_pck_extensions(seed).to_extension_value()?;
        let pck_spec = CertSpec::new(PCK_SUBJECT, &[0x03]).extension(
            &SGX_EXTENSION_OID.to_string(),
            false,
            ext,
        )?;
        let pck = sim::issue(
            &pck_spec,
            SimKey::P256(pck_key.clone()).spki()?,
            PLATFORM_CA_SUBJECT,
            &platform_ca_key,
            &mut sim::rng(seed, "tdx/pck/cert"),
        )?;

        let tcb_signing_key = p256_key(seed, "tdx/tcb-signing");
        let tcb_signing = sim::issue(
            &CertSpec::new(TCB_SIGNING_SUBJECT, &[0x04]),
            SimKey::P256(tcb_signing_key.clone()).spki()?,
            ROOT_SUBJECT,
            &root_key,
            &mut sim::rng(seed, "tdx/tcb-signing/cert"),
        )?;

        Ok(Self {
            root_key,
            root,
            platform_ca_key,
            platform_ca,
            pck_key,
            pck,
            tcb_signing_key,
            tcb_signing,
        })
    }

    fn pem_chain(certs: &[&Certificate]) -> Result<String, SimError> {
        let mut out = String::new();
        for c in certs {
            out.push_str(&sim::to_pem(c)?);
        }
        Ok(out)
    }
}

fn build_quote(seed: &SimSeed, params: &TdxSimParams, pki: &Pki) -> Result<Vec<u8>, SimError> {
    let qe_id = Sha256Digest::of(&[seed.as_bytes().as_slice(), b"tdx/qe-id"].concat());
    let mut user_data = [0u8; 20];
    for (out, b) in user_data.iter_mut().zip(first16(&qe_id.0)) {
        *out = b;
    }
    let header = Header {
        version: 4,
        att_key_type: AttestationKeyType::ECDSA_P256,
        tee_type: TeeType::TDX,
        qe_svn: 0,
        pce_svn: 0,
        qe_vendor_id: INTEL_QE_VENDOR_ID,
        user_data: HeaderUserData(user_data),
    };
    let body = TdBody::Td10(TdReport10 {
        tee_tcb_svn: params.tee_tcb_svn,
        mr_seam: params.mr_seam,
        mr_signer_seam: params.mr_signer_seam,
        seam_attributes: params.seam_attributes,
        td_attributes: params.td_attributes,
        xfam: params.xfam,
        mr_td: params.mrtd,
        mr_config_id: params.mr_config_id,
        mr_owner: params.mr_owner,
        mr_owner_config: params.mr_owner_config,
        rtmrs: params.rtmrs,
        report_data: params.report_data,
    });

    // The attestation key, certified by the QE report below.
    let ak = p256_key(seed, "tdx/attestation-key");
    let ak_point = ak.verifying_key().to_encoded_point(false);
    let ak_raw: [u8; 64] = ak_point
        .as_bytes()
        .get(1..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SimError::Key("attestation key encoding".into()))?;
    let qe_auth_data: Vec<u8> = (0u8..32).collect();
    let mut qe_report_data = [0u8; 64];
    let binding = Sha256Digest::of(&[ak_raw.as_slice(), &qe_auth_data].concat());
    for (out, b) in qe_report_data.iter_mut().zip(binding.0) {
        *out = b;
    }
    let qe_report = EnclaveReport {
        cpu_svn: SgxCpuSvn(SIM_SGX_COMPONENTS),
        misc_select: SIM_QE_MISC_SELECT,
        attributes: SgxAttributes(SIM_QE_ATTRIBUTES),
        mr_enclave: MrEnclave(Sha256Digest::of(b"cc-inference-attestor/sim/tdx/TD_QE SIMULATED").0),
        mr_signer: sim_qe_mr_signer(),
        isv_prod_id: SIM_QE_ISV_PROD_ID,
        isv_svn: SIM_QE_ISV_SVN,
        report_data: SgxReportData(qe_report_data),
    };
    let qe_report_signature = raw_sig(&pki.pck_key, &qe_report.to_bytes());

    let mut pck_pem = Pki::pem_chain(&[&pki.pck, &pki.platform_ca, &pki.root])?.into_bytes();
    pck_pem.push(0); // as Intel's QE: the chain is NUL-terminated
    let certification_data = CertificationData {
        cert_type: CertDataType::QE_REPORT,
        body: CertificationBody::QeReport(Box::new(QeReportCertData {
            qe_report,
            qe_report_signature,
            qe_auth_data,
            certification_data: CertificationData {
                cert_type: CertDataType::PCK_CHAIN,
                body: CertificationBody::PckChain(pck_pem),
            },
        })),
    };

    // Sign the header and body exactly as they will appear in the quote.
    let unsigned = Quote::from_parts(
        header.clone(),
        None,
        body.clone(),
        SignatureData {
            signature: EcdsaP256Signature([0; 64]),
            attestation_key: EcdsaP256PublicKey(ak_raw),
            certification_data: certification_data.clone(),
        },
        TrailingBytes::default(),
    );
    let signature = raw_sig(&ak, unsigned.signed_bytes());
    let quote = Quote::from_parts(
        header,
        None,
        body,
        SignatureData {
            signature,
            attestation_key: EcdsaP256PublicKey(ak_raw),
            certification_data,
        },
        TrailingBytes::default(),
    );
    Ok(quote.to_bytes())
}

fn build_collateral(
    seed: &SimSeed,
    params: &TdxSimParams,
    pki: &Pki,
    now: u64,
) -> Result<QuoteCollateralV3, SimError> {
    let next = now.saturating_add(COLLATERAL_WINDOW_SECS);
    let tcb_info = serde_json::to_string(&tcb_info(params, now, next)?)
        .map_err(|e| SimError::Encoding(e.to_string()))?;
    let qe_identity = serde_json::to_string(&qe_identity(now, next)?)
        .map_err(|e| SimError::Encoding(e.to_string()))?;
    let signing_chain = Pki::pem_chain(&[&pki.tcb_signing, &pki.root])?;
    let tcb_info_signature = raw_sig(&pki.tcb_signing_key, tcb_info.as_bytes())
        .0
        .to_vec();
    let qe_identity_signature = raw_sig(&pki.tcb_signing_key, qe_identity.as_bytes())
        .0
        .to_vec();
    Ok(QuoteCollateralV3 {
        pck_crl_issuer_chain: Pki::pem_chain(&[&pki.platform_ca, &pki.root])?,
        root_ca_crl: crl(seed, ROOT_SUBJECT, &pki.root_key, now, next)?,
        pck_crl: crl(seed, PLATFORM_CA_SUBJECT, &pki.platform_ca_key, now, next)?,
        tcb_info_issuer_chain: signing_chain.clone(),
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: signing_chain,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    })
}

/// Intel PCS tcbInfo (TDX, version 3), fields in Intel's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoJson {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u8,
    tcb_evaluation_data_number: u32,
    tdx_module: TdxModuleJson,
    tdx_module_identities: Vec<TdxModuleIdentityJson>,
    tcb_levels: Vec<TcbLevelJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleJson {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleIdentityJson {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<IsvSvnLevelJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IsvSvnLevelJson {
    tcb: IsvSvnJson,
    tcb_date: String,
    tcb_status: &'static str,
}

#[derive(Serialize)]
struct IsvSvnJson {
    isvsvn: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbLevelJson {
    tcb: TcbJson,
    tcb_date: String,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<&'static str>,
}

#[derive(Serialize)]
struct TcbJson {
    sgxtcbcomponents: Vec<SvnJson>,
    pcesvn: u16,
    tdxtcbcomponents: Vec<SvnJson>,
}

#[derive(Serialize)]
struct SvnJson {
    svn: u8,
}

/// Intel PCS enclaveIdentity (TD_QE, version 2), fields in Intel's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentityJson {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<IsvSvnLevelJson>,
}

fn tcb_info(params: &TdxSimParams, now: u64, next: u64) -> Result<TcbInfoJson, SimError> {
    let current_date = rfc3339(day_floor(now.saturating_sub(90 * 86_400)))?;
    let old_date = rfc3339(day_floor(now.saturating_sub(400 * 86_400)))?;
    let svns = |v: &[u8]| v.iter().map(|&svn| SvnJson { svn }).collect::<Vec<_>>();
    let older = |v: &[u8]| v.iter().map(|&s| s.saturating_sub(1)).collect::<Vec<u8>>();
    let tee = params.tee_tcb_svn.0;
    let mrsigner = hex::encode_upper(params.mr_signer_seam.as_bytes());
    let attributes = hex::encode_upper(params.seam_attributes.0.to_le_bytes());
    let attributes_mask = "FFFFFFFFFFFFFFFF".to_owned();
    let [module_svn, module_major, ..] = tee;
    let mut tdx_module_identities = Vec::new();
    if module_major > 0 {
        tdx_module_identities.push(TdxModuleIdentityJson {
            id: format!("TDX_{module_major:02X}"),
            mrsigner: mrsigner.clone(),
            attributes: attributes.clone(),
            attributes_mask: attributes_mask.clone(),
            tcb_levels: vec![
                IsvSvnLevelJson {
                    tcb: IsvSvnJson {
                        isvsvn: u16::from(module_svn),
                    },
                    tcb_date: current_date.clone(),
                    tcb_status: "UpToDate",
                },
                IsvSvnLevelJson {
                    tcb: IsvSvnJson {
                        isvsvn: u16::from(module_svn.saturating_sub(1)),
                    },
                    tcb_date: old_date.clone(),
                    tcb_status: "OutOfDate",
                },
            ],
        });
    }
    Ok(TcbInfoJson {
        id: "TDX",
        version: 3,
        issue_date: rfc3339(now)?,
        next_update: rfc3339(next)?,
        fmspc: hex::encode_upper(SIM_FMSPC.as_bytes()),
        pce_id: hex::encode_upper(SIM_PCE_ID.as_bytes()),
        tcb_type: 0,
        tcb_evaluation_data_number: SIM_TCB_EVAL_DATA_NUMBER,
        tdx_module: TdxModuleJson {
            mrsigner,
            attributes,
            attributes_mask,
        },
        tdx_module_identities,
        tcb_levels: vec![
            TcbLevelJson {
                tcb: TcbJson {
                    sgxtcbcomponents: svns(&SIM_SGX_COMPONENTS),
                    pcesvn: SIM_PCE_SVN,
                    tdxtcbcomponents: svns(&tee),
                },
                tcb_date: current_date,
                tcb_status: "UpToDate",
                advisory_ids: Vec::new(),
            },
            TcbLevelJson {
                tcb: TcbJson {
                    sgxtcbcomponents: svns(&older(&SIM_SGX_COMPONENTS)),
                    pcesvn: SIM_PCE_SVN.saturating_sub(2),
                    tdxtcbcomponents: svns(&older(&tee)),
                },
                tcb_date: old_date,
                tcb_status: "OutOfDate",
                advisory_ids: vec!["INTEL-SA-SIMULATED"],
            },
        ],
    })
}

fn qe_identity(now: u64, next: u64) -> Result<QeIdentityJson, SimError> {
    Ok(QeIdentityJson {
        id: "TD_QE",
        version: 2,
        issue_date: rfc3339(now)?,
        next_update: rfc3339(next)?,
        tcb_evaluation_data_number: SIM_TCB_EVAL_DATA_NUMBER,
        miscselect: hex::encode_upper(SIM_QE_MISC_SELECT.to_le_bytes()),
        miscselect_mask: "FFFFFFFF".to_owned(),
        attributes: "11000000000000000000000000000000".to_owned(),
        attributes_mask: "FBFFFFFFFFFFFFFF0000000000000000".to_owned(),
        mrsigner: hex::encode_upper(sim_qe_mr_signer().as_bytes()),
        isvprodid: SIM_QE_ISV_PROD_ID,
        tcb_levels: vec![
            IsvSvnLevelJson {
                tcb: IsvSvnJson {
                    isvsvn: SIM_QE_ISV_SVN,
                },
                tcb_date: rfc3339(day_floor(now.saturating_sub(90 * 86_400)))?,
                tcb_status: "UpToDate",
            },
            IsvSvnLevelJson {
                tcb: IsvSvnJson {
                    isvsvn: SIM_QE_ISV_SVN.saturating_sub(2),
                },
                tcb_date: rfc3339(day_floor(now.saturating_sub(400 * 86_400)))?,
                tcb_status: "OutOfDate",
            },
        ],
    })
}

/// An empty CRL (v2, with a CRL number) issued by `issuer`, DER.
fn crl(
    seed: &SimSeed,
    issuer: &str,
    key: &SimKey,
    this: u64,
    next: u64,
) -> Result<Vec<u8>, SimError> {
    let signature = key.signature_algorithm()?;
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: signature.clone(),
        issuer: Name::from_str(issuer)?,
        this_update: x509_time(this)?,
        next_update: Some(x509_time(next)?),
        revoked_certificates: None,
        crl_extensions: Some(vec![Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
            critical: false,
            extn_value: der::asn1::OctetString::new(1u32.to_der()?)?,
        }]),
    };
    // ECDSA signing is deterministic (RFC 6979); the RNG only feeds RSA-PSS.
    let mut rng = sim::rng(seed, &format!("tdx/crl/{issuer}"));
    let sig = key.sign_x509(&tbs.to_der()?, &mut rng);
    Ok(CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signature,
        signature: BitString::from_bytes(&sig)?,
    }
    .to_der()?)
}

fn p256_key(seed: &SimSeed, label: &str) -> SigningKey {
    SigningKey::random(&mut sim::rng(seed, label))
}

/// ECDSA P-256/SHA-256 as raw `r ‖ s`, as DCAP stores signatures.
fn raw_sig(key: &SigningKey, msg: &[u8]) -> EcdsaP256Signature {
    let sig: p256::ecdsa::Signature = key.sign(msg);
    let mut out = [0u8; 64];
    for (o, b) in out.iter_mut().zip(sig.to_bytes()) {
        *o = b;
    }
    EcdsaP256Signature(out)
}

fn first16(bytes: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

fn day_floor(unix: u64) -> u64 {
    unix - unix % 86_400
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as Intel's collateral writes dates.
fn rfc3339(unix: u64) -> Result<String, SimError> {
    let t = DateTime::from_unix_duration(Duration::from_secs(unix))?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minutes(),
        t.seconds()
    ))
}

/// RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
fn x509_time(unix: u64) -> Result<Time, SimError> {
    let d = Duration::from_secs(unix);
    if unix < 2_524_608_000 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;

    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    #[test]
    fn deterministic_and_parses() {
        let params = TdxSimParams::new(TdReportData([7; 64]));
        let a = simulate(&SimSeed::DEFAULT, &params, NOW).unwrap();
        let b = simulate(&SimSeed::DEFAULT, &params, NOW).unwrap();
        assert_eq!(a, b);
        let q = Quote::parse(&a.quote).unwrap();
        assert_eq!(q.to_bytes(), a.quote);
        assert_eq!(q.report().report_data, params.report_data);
        assert_eq!(q.signed_len(), 632);
        assert_eq!(root_ca(&SimSeed::DEFAULT).unwrap(), a.root_ca_der);
        let other = simulate(&SimSeed([1; 32]), &params, NOW).unwrap();
        assert_ne!(other.root_ca_der, a.root_ca_der);
    }

    #[test]
    fn names_are_marked_simulated() {
        let root = Certificate::from_der(&root_ca(&SimSeed::DEFAULT).unwrap()).unwrap();
        assert!(
            root.tbs_certificate
                .subject
                .to_string()
                .contains(sim::SIMULATED_MARK)
        );
        for s in [
            ROOT_SUBJECT,
            PLATFORM_CA_SUBJECT,
            PCK_SUBJECT,
            TCB_SIGNING_SUBJECT,
        ] {
            assert!(s.contains(sim::SIMULATED_MARK));
        }
    }

    #[test]
    fn collateral_dates_follow_now() {
        let s = simulate(
            &SimSeed::DEFAULT,
            &TdxSimParams::new(TdReportData([0; 64])),
            NOW,
        )
        .unwrap();
        let c: QuoteCollateralV3 = serde_json::from_str(&s.collateral_json).unwrap();
        let info: serde_json::Value = serde_json::from_str(&c.tcb_info).unwrap();
        assert_eq!(info["issueDate"], "2026-01-01T00:00:00Z");
        assert_eq!(info["nextUpdate"], "2026-01-31T00:00:00Z");
        assert_eq!(info["tdxModuleIdentities"][0]["id"], "TDX_01");
        let crl = CertificateList::from_der(&c.pck_crl).unwrap();
        assert_eq!(
            crl.tbs_cert_list.this_update.to_unix_duration().as_secs(),
            NOW
        );
    }

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_750_328_163).unwrap(), "2025-06-19T10:16:03Z");
    }
}
