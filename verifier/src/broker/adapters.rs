//! The broker's traits over the verifier's real policy engine and audit log.

use crate::audit::{AuditEntry, AuditLog};
use crate::denial::{Denial, DenialCode};
use crate::policy::LivePolicySet;
use crate::policy::input::resource_input;

use super::{DecisionLog, LogError, ResourcePolicy, ResourceRequest};

/// [`crate::policy::PolicySet::evaluate_resource`] of the set in force (a
/// [`LivePolicySet`]: an admin update applies to the next request) as a
/// [`ResourcePolicy`]: the input is
/// [`resource_input`] with the tenant, the attested EAR claims (as `ear`),
/// and the model commitment (`attestor_model`) and receipt key
/// (`attestor_receipt_key`) those claims carry: in the KBS flow the key bound
/// into the evidence is the one the session presents.
pub struct PolicySetAdapter(pub LivePolicySet);

impl ResourcePolicy for PolicySetAdapter {
    fn decide(&self, request: &ResourceRequest<'_>) -> Result<String, Vec<Denial>> {
        let model = request
            .claims
            .get("attestor_model")
            .and_then(serde_json::Value::as_str);
        let receipt_key = request.claims.get("attestor_receipt_key");
        let input = resource_input(
            request.path,
            Some(request.tenant),
            request.claims,
            model,
            receipt_key,
        );
        match self.0.current().evaluate_resource(&input) {
            Ok(d) if d.allow && d.reasons.is_empty() => Ok(d.policy_ids.join("+")),
            Ok(d) => {
                let mut denials: Vec<Denial> = d.reasons.iter().map(|r| r.to_denial()).collect();
                if denials.is_empty() {
                    denials.push(Denial::new(DenialCode::PolicyRejected, "policy denied"));
                }
                Err(denials)
            }
            Err(e) => Err(vec![Denial::new(
                DenialCode::PolicyRejected,
                format!("policy evaluation failed: {e}"),
            )]),
        }
    }
}

impl DecisionLog for AuditLog {
    fn record(&self, entry: &AuditEntry, evidence: Option<&[u8]>) -> Result<(), LogError> {
        if let Some(bytes) = evidence {
            let digest = self
                .put_evidence(bytes)
                .map_err(|e| LogError(e.to_string()))?;
            if entry.evidence_digest.as_deref() != Some(digest.prefixed().as_str()) {
                return Err(LogError(format!(
                    "entry names evidence {:?}, stored {}",
                    entry.evidence_digest,
                    digest.prefixed()
                )));
            }
        }
        self.append(entry)
            .map(|_| ())
            .map_err(|e| LogError(e.to_string()))
    }
}
