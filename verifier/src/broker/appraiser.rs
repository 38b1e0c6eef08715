//! The broker's real appraiser: a KBS `/attest` body becomes an evidence
//! bundle, which the whole-bundle pipeline appraises, binds and decides.
//!
//! Fails closed: a body that does not parse, carries `init-data` (not
//! appraised yet, so never silently ignored), fails any check, or is refused by
//! policy yields denials and no token. A policy refusal also hands back the
//! non-affirming EAR, for the audit entry only (the client never gets it).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{AppraisalRefused, Appraiser, Attested, Tee};
use crate::appraise::bundle::{BundleCollateral, Verifier};
use crate::denial::{Denial, DenialCode};
use crate::time::UnixTime;

/// Appraises KBS attestation bodies with [`Verifier::appraise_bundle`].
pub struct PipelineAppraiser {
    verifier: Arc<Verifier>,
    collateral: BundleCollateral,
}

impl PipelineAppraiser {
    pub fn new(verifier: Verifier, collateral: BundleCollateral) -> Self {
        Self::shared(Arc::new(verifier), collateral)
    }

    /// The same, over a verifier shared with the gRPC service.
    pub fn shared(verifier: Arc<Verifier>, collateral: BundleCollateral) -> Self {
        Self {
            verifier,
            collateral,
        }
    }
}

impl Appraiser for PipelineAppraiser {
    fn appraise(
        &self,
        tee: Tee,
        attestation_json: &[u8],
        nonce: &str,
        now: UnixTime,
    ) -> Result<Attested, AppraisalRefused> {
        let malformed = |what: String| vec![Denial::new(DenialCode::EvidenceMalformed, what)];
        let mut body: Value = serde_json::from_slice(attestation_json)
            .map_err(|e| malformed(format!("attestation body: {e}")))?;
        let Value::Object(map) = &mut body else {
            return Err(malformed("attestation body is not a JSON object".into()).into());
        };
        if map.remove("init-data").is_some_and(|v| !v.is_null()) {
            return Err(vec![Denial::new(
                DenialCode::UnsupportedFormat,
                "init-data is not appraised by this verifier yet; refusing rather than ignoring it",
            )]
            .into());
        }
        let tee_name = serde_json::to_value(tee).map_err(|e| malformed(e.to_string()))?;
        map.insert("tee".into(), tee_name);
        let text = serde_json::to_vec(&body).map_err(|e| malformed(e.to_string()))?;
        let bundle = attestor::evidence::EvidenceBundle::from_json(&text)
            .map_err(|e| vec![Denial::malformed(&e)])?;
        let appraisal =
            self.verifier
                .appraise_bundle(&bundle, &self.collateral, Some(nonce), now)?;
        let tee_pubkey_jwk = bundle.runtime_data.tee_pubkey().cloned();
        let claims_json: Option<Value> = appraisal
            .ear
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        if !appraisal.is_allowed() {
            let mut denials = appraisal.denials;
            if denials.is_empty() {
                denials.push(Denial::new(
                    DenialCode::PolicyRejected,
                    "the attestation policy did not affirm this evidence",
                ));
            }
            let result = match (tee_pubkey_jwk, claims_json) {
                (Some(tee_pubkey_jwk), Some(claims_json)) => Some(Box::new(Attested {
                    ear_token: appraisal.ear,
                    tee_pubkey_jwk,
                    claims_json,
                })),
                _ => None,
            };
            return Err(AppraisalRefused { denials, result });
        }
        let tee_pubkey_jwk =
            tee_pubkey_jwk.ok_or_else(|| malformed("runtime-data has no tee-pubkey".into()))?;
        let claims_json = claims_json.ok_or_else(|| {
            vec![Denial::new(
                DenialCode::BrokerError,
                "the issued EAR could not be read back",
            )]
        })?;
        Ok(Attested {
            ear_token: appraisal.ear,
            tee_pubkey_jwk,
            claims_json,
        })
    }
}
