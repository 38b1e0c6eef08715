//! A whole evidence bundle, appraised and decided: the one function the key
//! broker, the gRPC service and the reviewer CLI all call, and the receipt
//! chain check built on it.
//!
//! [`Verifier::appraise_bundle`], in order:
//! 1. the runtime-data nonce equals the expected nonce, when one is given
//!    (`nonce_mismatch`);
//! 2. the CPU evidence (SNP or TDX) is appraised with `expected_report_data`
//!    = [`EvidenceBundle::expected_report_data`] exactly, so a bundle whose
//!    runtime data or GPU evidence was swapped is `report_data_mismatch`;
//! 3. every GPU of `additional_evidence` is appraised with the expected SPDM
//!    nonce = `runtime_data.gpu_nonce()`;
//! 4. the policy input is built from the claims and the policy set decides;
//! 5. the EAR is issued over the decision (nonce = the runtime-data nonce
//!    bytes, receipt key = the bound `receipt-key`).
//!
//! Choices written down:
//! - **Cryptographic failure is `Err`.** Any failed cryptographic or binding
//!   check (steps 1–3) returns every denial found and nothing else: no claims
//!   reach a policy and no EAR is issued, not even a contraindicated one. A
//!   reviewer gets the reasons from the denials; nothing that could be mistaken
//!   for a result of genuine evidence exists (fail closed).
//! - **A policy verdict is `Ok`.** Genuine evidence that policy refuses returns
//!   an [`Appraisal`] whose [`Decision`] is `Deny`, with every policy reason as
//!   a denial and an EAR whose status is not affirming (it carries the reasons,
//!   for the relying party and the audit log). `Allow` only when every
//!   submodule is affirming; `warning` is a deny here.
//! - **Nonce bytes.** The runtime-data nonce is base64 in the KBS protocol;
//!   its decoded bytes are the EAR `eat_nonce`. A nonce that is not base64 is
//!   used as its UTF-8 bytes.
//!
//! [`Verifier::verify_receipt`] follows the chain receipt → receipt key →
//! evidence → EAR; each broken link is a denial naming the link.

pub mod cli;

use attestor::binding::RuntimeData;
use attestor::digest::Sha256Digest;
use attestor::evidence::{EvidenceBundle, PrimaryEvidence};
use attestor::nvidia::evidence::GpuEvidenceList;
use attestor::receipt::{self, ReceiptClaims, ReceiptPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p384::ecdsa::{SigningKey, VerifyingKey};
use serde::Serialize;
use serde_json::Value;

use super::nvidia::{self, GpuClaims, GpuCollateral};
use super::snp::{self, SnpClaims, SnpCollateral};
use super::tdx::{self, TdxClaims, TdxCollateral};
use crate::denial::{Denial, DenialCode};
use crate::policy::input::{self, AttestationParts, CpuClaims};
use crate::policy::{AttestationDecision, LivePolicySet, PolicySet, Status};
use crate::result::{self, EarClaims, VerifierId};
use crate::time::UnixTime;
use crate::trust::TrustRoots;

/// Collateral for one bundle; everything is optional.
#[derive(Debug, Clone, Default)]
pub struct BundleCollateral {
    /// Intel collateral for a TDX quote (without it a TDX quote is refused).
    pub tdx: Option<TdxCollateral>,
    /// AMD's CRL for the SNP product (DER); without it revocation is not checked.
    pub snp_crl: Option<Vec<u8>>,
    /// NVIDIA RIMs (driver and VBIOS), as received.
    pub gpu_rims: Vec<Vec<u8>>,
    /// NVIDIA OCSP responses (DER), as received.
    pub gpu_ocsp: Vec<Vec<u8>>,
}

impl BundleCollateral {
    /// The simulator's signed reference manifests for its GPUs and nothing
    /// else: what `verifier serve --dev` appraises simulated GPUs against.
    /// They verify only under the simulator's RIM root, so they are useless
    /// to a verifier that trusts the vendors' roots.
    pub fn danger_simulated(
        seed: &attestor::sim::SimSeed,
    ) -> Result<Self, attestor::sim::SimError> {
        Ok(Self {
            gpu_rims: attestor::simulate::gpu_rims(seed)?
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            ..Self::default()
        })
    }
}

/// The CPU TEE's appraised claims.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "tee", content = "claims", rename_all = "lowercase")]
pub enum CpuAppraisal {
    Snp(Box<SnpClaims>),
    Tdx(Box<TdxClaims>),
}

/// The verdict over a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Every check passed and every submodule is affirming.
    Allow,
    /// Refused; the reasons are in [`Appraisal::denials`].
    Deny,
}

/// A bundle whose evidence is cryptographically genuine and bound, and the
/// policy's verdict over it.
#[derive(Debug, Clone, Serialize)]
pub struct Appraisal {
    /// The CPU claims.
    pub cpu: CpuAppraisal,
    /// Each GPU's claims, in evidence order.
    pub gpus: Vec<GpuClaims>,
    /// True: the CPU report data equals the bundle's binding exactly (an
    /// `Appraisal` exists only then).
    pub binding_verified: bool,
    /// The policy input the decision was made over.
    pub policy_input: Value,
    /// The policy set's verdict.
    pub attestation: AttestationDecision,
    /// The EAR (compact JWS, ES384) over the decision.
    pub ear: String,
    /// `EvidenceBundle::digest` of the appraised bundle.
    pub evidence_digest: Sha256Digest,
    /// Allow only when every submodule is affirming.
    pub decision: Decision,
    /// Every policy reason as a denial; empty exactly when `decision` is allow.
    pub denials: Vec<Denial>,
}

impl Appraisal {
    /// True for an allow.
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow && self.denials.is_empty()
    }
}

/// A receipt whose every link held.
#[derive(Debug, Clone)]
pub struct ReceiptVerification {
    /// The receipt's verified claims.
    pub receipt: ReceiptClaims,
    /// RFC 7638 thumbprint of the receipt key (bound into the evidence).
    pub receipt_key_thumbprint: String,
    /// The appraisal of the session's evidence (an allow).
    pub appraisal: Appraisal,
    /// The EAR's verified claims, when an EAR was given.
    pub ear: Option<EarClaims>,
}

/// The verifier's configuration: roots, policies and the EAR signing key.
#[derive(Debug)]
pub struct Verifier {
    roots: TrustRoots,
    policy: LivePolicySet,
    signing_key: SigningKey,
    ear_key: VerifyingKey,
    verifier_id: VerifierId,
    ear_ttl_secs: u64,
}

impl Verifier {
    /// A verifier issuing EARs with `signing_key`, valid `ear_ttl_secs`.
    /// `policy` is a [`PolicySet`], or a [`LivePolicySet`] an administrator
    /// may replace while this verifier runs.
    pub fn new(
        roots: TrustRoots,
        policy: impl Into<LivePolicySet>,
        signing_key: SigningKey,
        verifier_id: VerifierId,
        ear_ttl_secs: u64,
    ) -> Self {
        let ear_key = *signing_key.verifying_key();
        Self {
            roots,
            policy: policy.into(),
            signing_key,
            ear_key,
            verifier_id,
            ear_ttl_secs,
        }
    }

    /// Checks EARs given to [`Self::verify_receipt`] with `key` instead of this
    /// verifier's own key (a reviewer checking an EAR issued by a service).
    pub fn with_ear_key(mut self, key: VerifyingKey) -> Self {
        self.ear_key = key;
        self
    }

    /// The trust roots.
    pub fn roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// The policy set in force now.
    pub fn policy(&self) -> std::sync::Arc<PolicySet> {
        self.policy.current()
    }

    /// The key EARs are checked with.
    pub fn ear_key(&self) -> &VerifyingKey {
        &self.ear_key
    }

    /// Appraises a whole bundle as of `now` and decides (see the module docs).
    /// `Err` holds every cryptographic or binding failure; a policy refusal is
    /// an `Ok` whose decision is deny.
    pub fn appraise_bundle(
        &self,
        bundle: &EvidenceBundle,
        collateral: &BundleCollateral,
        expected_nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<Appraisal, Vec<Denial>> {
        let mut denials = Vec::new();
        let nonce = bundle.runtime_data.nonce();
        if let Some(expected) = expected_nonce.filter(|e| *e != nonce) {
            denials.push(Denial::mismatch(
                DenialCode::NonceMismatch,
                "the runtime data nonce is not the nonce this verifier issued",
                "runtime_data.nonce",
                expected,
                nonce,
            ));
        }

        let expected_report_data = bundle.expected_report_data().into_bytes();
        let cpu = match &bundle.primary {
            PrimaryEvidence::Snp(e) => snp::appraise(
                &snp::SnpEvidence {
                    report: &e.report,
                    vek_der: None,
                    cert_table: e.cert_table.as_deref(),
                    expected_report_data: Some(expected_report_data),
                },
                &self.roots,
                &SnpCollateral {
                    crl_der: collateral.snp_crl.as_deref(),
                    chain_override: None,
                },
                now,
            )
            .map(|c| CpuAppraisal::Snp(Box::new(c))),
            PrimaryEvidence::Tdx(e) => tdx::appraise(
                &tdx::TdxEvidence {
                    quote: &e.quote,
                    cc_eventlog: e.cc_eventlog.as_deref(),
                    expected_report_data: Some(expected_report_data),
                },
                &self.roots,
                collateral.tdx.as_ref(),
                now,
            )
            .map(|c| CpuAppraisal::Tdx(Box::new(c))),
        };
        let cpu = match cpu {
            Ok(c) => Some(c),
            Err(mut ds) => {
                denials.append(&mut ds);
                None
            }
        };

        let gpus = match self.appraise_gpus(bundle, collateral, now) {
            Ok(g) => g,
            Err(mut ds) => {
                denials.append(&mut ds);
                Vec::new()
            }
        };

        let cpu = match cpu {
            Some(c) if denials.is_empty() => c,
            _ => return Err(denials),
        };

        let policy_input = policy_input(&cpu, &gpus, &bundle.runtime_data)?;
        let attestation = self
            .policy
            .current()
            .evaluate_attestation(&policy_input)
            .map_err(|e| {
                vec![Denial::new(
                    DenialCode::PolicyRejected,
                    format!("policy evaluation failed: {e}"),
                )]
            })?;
        let ear = result::issue_ear(
            &attestation,
            &nonce_bytes(nonce),
            bundle.runtime_data.receipt_key(),
            &self.signing_key,
            &self.verifier_id,
            now,
            self.ear_ttl_secs,
        )
        .map_err(|e| {
            vec![Denial::new(
                DenialCode::EvidenceMalformed,
                format!("cannot issue the attestation result: {e}"),
            )]
        })?;

        let mut denials = attestation.denials();
        let decision = if attestation.is_affirming() && denials.is_empty() {
            Decision::Allow
        } else {
            if denials.is_empty() {
                denials.push(Denial::value(
                    DenialCode::PolicyRejected,
                    "the attestation is not affirming",
                    "ear_status",
                    attestation.status().as_str(),
                ));
            }
            Decision::Deny
        };
        Ok(Appraisal {
            cpu,
            gpus,
            binding_verified: true,
            policy_input,
            attestation,
            ear,
            evidence_digest: bundle.digest(),
            decision,
            denials,
        })
    }

    fn appraise_gpus(
        &self,
        bundle: &EvidenceBundle,
        collateral: &BundleCollateral,
        now: UnixTime,
    ) -> Result<Vec<GpuClaims>, Vec<Denial>> {
        if bundle.additional_evidence.is_empty() {
            return Ok(Vec::new());
        }
        let malformed = |why: String| {
            vec![Denial::new(
                DenialCode::EvidenceMalformed,
                format!("additional_evidence: {why}"),
            )]
        };
        let value: Value = serde_json::from_str(&bundle.additional_evidence)
            .map_err(|e| malformed(e.to_string()))?;
        let nvidia = value
            .get("nvidia")
            .ok_or_else(|| malformed("no `nvidia` member".to_owned()))?;
        let list = GpuEvidenceList::from_value(nvidia).map_err(|e| malformed(e.to_string()))?;
        let gpu_collateral = GpuCollateral {
            rims: collateral.gpu_rims.iter().map(Vec::as_slice).collect(),
            ocsp: collateral.gpu_ocsp.iter().map(Vec::as_slice).collect(),
        };
        nvidia::appraise_list(
            &list,
            Some(bundle.runtime_data.gpu_nonce().into_bytes()),
            &self.roots,
            &gpu_collateral,
            now,
        )
    }

    /// Verifies a receipt against the session's evidence bundle, and against
    /// the session's EAR when one is given, as of `now`. The links, in order:
    ///
    /// 1. the receipt parses and its `kid` is the thumbprint of the
    ///    `receipt-key` bound into the bundle's runtime data
    ///    (`receipt_key_mismatch`; a receipt signed by any other key is refused
    ///    here, as its signature cannot be checked against the bound key);
    /// 2. its signature verifies with that key and its claims are consistent
    ///    (`receipt_invalid`);
    /// 3. the evidence appraises to an allow ([`Self::appraise_bundle`], its
    ///    own denials);
    /// 4. `session.evidence_digest` is the bundle's digest (`evidence_digest_mismatch`);
    /// 5. `model_commitment` is the runtime data's `model` (`model_mismatch`);
    /// 6. with an EAR: it verifies with the EAR key (`ear_invalid`), its digest is
    ///    `session.ear_digest`, and its receipt key and nonce are the bundle's
    ///    (`ear_mismatch`), and it is affirming (`policy_rejected`).
    ///
    /// Links 1–3 stop the chain; from 4 on, every broken link is reported.
    pub fn verify_receipt(
        &self,
        receipt: &str,
        bundle: &EvidenceBundle,
        collateral: &BundleCollateral,
        ear: Option<&str>,
        now: UnixTime,
    ) -> Result<ReceiptVerification, Vec<Denial>> {
        let receipt = receipt.trim();
        let one = |code, message: String| vec![Denial::new(code, message)];
        let (header, _) = receipt::inspect_unverified(receipt)
            .map_err(|e| one(DenialCode::ReceiptInvalid, e.to_string()))?;
        let bound = bundle.runtime_data.receipt_key().ok_or_else(|| {
            one(
                DenialCode::ReceiptKeyMismatch,
                "the evidence binds no receipt-key".to_owned(),
            )
        })?;
        let key = ReceiptPublicKey::from_jwk(bound).map_err(|e| {
            one(
                DenialCode::ReceiptKeyMismatch,
                format!("the bound receipt-key is unusable: {e}"),
            )
        })?;
        if header.kid.as_deref() != Some(key.thumbprint()) {
            return Err(vec![Denial::mismatch(
                DenialCode::ReceiptKeyMismatch,
                "the receipt is not signed by the receipt key bound into the evidence",
                "kid",
                key.thumbprint(),
                header.kid.as_deref().unwrap_or("(none)"),
            )]);
        }
        let claims = receipt::verify_with(receipt, &key)
            .map_err(|e| one(DenialCode::ReceiptInvalid, e.to_string()))?;

        let appraisal = self.appraise_bundle(bundle, collateral, None, now)?;
        if !appraisal.is_allowed() {
            return Err(appraisal.denials);
        }

        let mut denials = Vec::new();
        if claims.session.evidence_digest.0 != appraisal.evidence_digest {
            denials.push(Denial::mismatch(
                DenialCode::EvidenceDigestMismatch,
                "the receipt names other evidence than the bundle given",
                "session.evidence_digest",
                appraisal.evidence_digest.prefixed(),
                claims.session.evidence_digest,
            ));
        }
        let model = claims.model_commitment.to_string();
        if bundle.runtime_data.model() != Some(model.as_str()) {
            denials.push(Denial::mismatch(
                DenialCode::ModelMismatch,
                "the receipt's model is not the model bound into the evidence",
                "model_commitment",
                bundle.runtime_data.model().unwrap_or("(none)"),
                &model,
            ));
        }
        let ear = match ear {
            Some(token) => {
                let checked =
                    self.check_ear(token.trim(), &claims, &key, &bundle.runtime_data, now);
                match checked {
                    Ok(c) => Some(c),
                    Err(mut ds) => {
                        denials.append(&mut ds);
                        None
                    }
                }
            }
            None => None,
        };
        if !denials.is_empty() {
            return Err(denials);
        }
        Ok(ReceiptVerification {
            receipt: claims,
            receipt_key_thumbprint: key.thumbprint().to_owned(),
            appraisal,
            ear,
        })
    }

    fn check_ear(
        &self,
        token: &str,
        receipt: &ReceiptClaims,
        key: &ReceiptPublicKey,
        runtime_data: &RuntimeData,
        now: UnixTime,
    ) -> Result<EarClaims, Vec<Denial>> {
        let ear = result::verify_ear(token, &self.ear_key, now).map_err(|e| {
            vec![Denial::new(
                DenialCode::EarInvalid,
                format!("attestation result: {e}"),
            )]
        })?;
        let mut denials = Vec::new();
        let digest = Sha256Digest::of(token.as_bytes());
        if receipt.session.ear_digest.map(|d| d.0) != Some(digest) {
            denials.push(Denial::mismatch(
                DenialCode::EarMismatch,
                "the EAR given is not the one the receipt names",
                "session.ear_digest",
                digest.prefixed(),
                receipt
                    .session
                    .ear_digest
                    .map_or_else(|| "(none)".to_owned(), |d| d.to_string()),
            ));
        }
        let ear_key = ear
            .attestor_receipt_key
            .as_ref()
            .and_then(|jwk| receipt::jwk_thumbprint(jwk).ok());
        if ear_key.as_deref() != Some(key.thumbprint()) {
            denials.push(Denial::mismatch(
                DenialCode::EarMismatch,
                "the EAR names another receipt key than the receipt's",
                "attestor_receipt_key",
                key.thumbprint(),
                ear_key.as_deref().unwrap_or("(none)"),
            ));
        }
        let nonce = URL_SAFE_NO_PAD.encode(nonce_bytes(runtime_data.nonce()));
        if ear.eat_nonce != nonce {
            denials.push(Denial::mismatch(
                DenialCode::EarMismatch,
                "the EAR was issued for another nonce than the evidence's",
                "eat_nonce",
                &nonce,
                &ear.eat_nonce,
            ));
        }
        if ear.ear_status != Status::Affirming {
            denials.push(Denial::value(
                DenialCode::PolicyRejected,
                "the EAR is not affirming",
                "ear_status",
                ear.ear_status.as_str(),
            ));
        }
        if denials.is_empty() {
            Ok(ear)
        } else {
            Err(denials)
        }
    }
}

/// The runtime-data nonce's bytes: base64-decoded, or its UTF-8 bytes when it
/// is not base64.
pub fn nonce_bytes(nonce: &str) -> Vec<u8> {
    STANDARD
        .decode(nonce)
        .or_else(|_| URL_SAFE_NO_PAD.decode(nonce))
        .unwrap_or_else(|_| nonce.as_bytes().to_vec())
}

fn policy_input(
    cpu: &CpuAppraisal,
    gpus: &[GpuClaims],
    runtime_data: &RuntimeData,
) -> Result<Value, Vec<Denial>> {
    let encoding = |e: serde_json::Error| {
        vec![Denial::new(
            DenialCode::EvidenceMalformed,
            format!("claims encoding: {e}"),
        )]
    };
    let cpu_value = match cpu {
        CpuAppraisal::Snp(c) => serde_json::to_value(c),
        CpuAppraisal::Tdx(c) => serde_json::to_value(c),
    }
    .map_err(encoding)?;
    let gpu_values = gpus
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(encoding)?;
    let runtime_value = serde_json::to_value(runtime_data).map_err(encoding)?;
    let cpu_claims = match cpu {
        CpuAppraisal::Snp(_) => CpuClaims::Snp(&cpu_value),
        CpuAppraisal::Tdx(_) => CpuClaims::Tdx(&cpu_value),
    };
    Ok(input::attestation_input(&AttestationParts {
        cpu: Some(cpu_claims),
        gpus: &gpu_values,
        runtime_data: Some(&runtime_value),
        cpu_binding_verified: true,
    }))
}
