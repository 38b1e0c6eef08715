//! The gRPC service `attestor.v1.Verifier` (tonic), served on the same port as
//! the KBS HTTP routes, for agents and reviewers: appraise an evidence bundle,
//! verify a receipt, read the audit log (entries, signed checkpoint, inclusion
//! and consistency proofs).
//!
//! [`with_grpc`] puts it beside any HTTP router: a request whose content type
//! is `application/grpc…` goes to the gRPC routes, every other request to the
//! HTTP router, so neither side can shadow the other's paths (axum's `http2`
//! feature makes `axum::serve` accept HTTP/2 without TLS, which gRPC needs).
//!
//! Decisions are data: an appraisal that denies answers OK with the denials
//! (code, message, field, expected, found). A gRPC status is only for a
//! malformed request (`InvalidArgument`), a missing entry (`NotFound`) or an
//! internal fault. Fail closed: an `Appraise` is written to the audit log
//! (entry + the raw bundle bytes by digest) before it is answered, and when it
//! cannot be logged the call fails and no EAR is returned. `VerifyReceipt` is
//! a stateless check against this verifier's roots, policy and EAR key; it is
//! not logged. This module never decides anything itself: appraisal is
//! [`Verifier::appraise_bundle`] / [`Verifier::verify_receipt`], and the log
//! is [`AuditLog`].

use std::sync::Arc;

use attestor::evidence::EvidenceBundle;
use axum::Router;
use axum::http::{HeaderMap, header};
use proto::v1::verifier_server::{Verifier as VerifierRpc, VerifierServer};
use proto::v1::{
    AppraiseRequest, AppraiseResponse, AuditCheckpointRequest, AuditCheckpointResponse,
    AuditConsistencyProofRequest, AuditConsistencyProofResponse, AuditEntriesRequest,
    AuditEntriesResponse, AuditInclusionProofRequest, AuditInclusionProofResponse,
    Decision as WireDecision, Denial as WireDenial, VerifyReceiptRequest, VerifyReceiptResponse,
};
use tonic::{Request, Response, Status};
use tower::ServiceExt as _;

use crate::appraise::bundle::{BundleCollateral, Verifier};
use crate::audit::{
    AuditEntry, AuditError, AuditLog, Decision, EntryFilter, EntryKind, Reason, TlogProof,
};
use crate::broker::{Clock, jwk_thumbprint};
use crate::denial::Denial;
use crate::time::UnixTime;

/// Entries per `AuditEntries` page when the request asks for 0.
pub const DEFAULT_PAGE: u32 = 100;
/// The most entries one `AuditEntries` page returns.
pub const MAX_PAGE: u32 = 1000;

/// Everything the service reads: the same verifier, collateral and audit log
/// the key broker uses. Cheap to clone.
#[derive(Clone)]
pub struct VerifierService {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Arc<Verifier>,
    collateral: BundleCollateral,
    log: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
}

/// Why a call failed (not a decision: a deny is a successful answer).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The entry or tree size asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The audit log failed.
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    /// The blocking worker running the call failed.
    #[error("worker: {0}")]
    Worker(String),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidArgument(m) => Status::invalid_argument(m),
            ServiceError::NotFound(m) => Status::not_found(m),
            ServiceError::Audit(AuditError::NoSuchEntry { index, size }) => {
                Status::not_found(format!("no entry {index}: the log has {size} entries"))
            }
            e @ (ServiceError::Audit(_) | ServiceError::Worker(_)) => {
                Status::internal(e.to_string())
            }
        }
    }
}

impl VerifierService {
    /// A service over the broker's verifier, collateral and log.
    pub fn new(
        verifier: Arc<Verifier>,
        collateral: BundleCollateral,
        log: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                verifier,
                collateral,
                log,
                clock,
            }),
        }
    }

    /// The gRPC routes alone, as an axum router.
    pub fn into_router(self) -> Router {
        tonic::service::Routes::new(VerifierServer::new(self))
            .prepare()
            .into_axum_router()
    }

    async fn blocking<T, F>(&self, f: F) -> Result<Response<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, ServiceError> + Send + 'static,
    {
        let inner = self.inner.clone();
        // Appraisal is CPU work and the log fsyncs: off the async threads.
        let out = tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| ServiceError::Worker(e.to_string()))?;
        Ok(Response::new(out?))
    }
}

/// `http` plus the gRPC service on the same listener, routed by content type.
pub fn with_grpc(http: Router, service: VerifierService) -> Router {
    let grpc = service.into_router();
    let steer = tower::service_fn(move |req: axum::extract::Request| {
        let target = if is_grpc(req.headers()) {
            grpc.clone()
        } else {
            http.clone()
        };
        target.oneshot(req)
    });
    Router::new().fallback_service(steer)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

#[tonic::async_trait]
impl VerifierRpc for VerifierService {
    async fn appraise(
        &self,
        request: Request<AppraiseRequest>,
    ) -> Result<Response<AppraiseResponse>, Status> {
        let req = request.into_inner();
        self.blocking(move |s| s.appraise(&req)).await
    }

    async fn verify_receipt(
        &self,
        request: Request<VerifyReceiptRequest>,
    ) -> Result<Response<VerifyReceiptResponse>, Status> {
        let req = request.into_inner();
        self.blocking(move |s| s.verify_receipt(&req)).await
    }

    async fn audit_entries(
        &self,
        request: Request<AuditEntriesRequest>,
    ) -> Result<Response<AuditEntriesResponse>, Status> {
        let req = request.into_inner();
        self.blocking(move |s| s.audit_entries(&req)).await
    }

    async fn audit_checkpoint(
        &self,
        _request: Request<AuditCheckpointRequest>,
    ) -> Result<Response<AuditCheckpointResponse>, Status> {
        self.blocking(|s| {
            Ok(AuditCheckpointResponse {
                checkpoint: s.log.checkpoint()?,
                log_key: s.log.verifier_key().to_owned(),
            })
        })
        .await
    }

    async fn audit_inclusion_proof(
        &self,
        request: Request<AuditInclusionProofRequest>,
    ) -> Result<Response<AuditInclusionProofResponse>, Status> {
        let index = request.into_inner().index;
        self.blocking(move |s| {
            let text = s.log.prove(index)?;
            let proof = TlogProof::parse(&text)
                .map_err(|e| ServiceError::Worker(format!("own proof unreadable: {e}")))?;
            Ok(AuditInclusionProofResponse {
                hashes: proof.hashes.iter().map(|h| h.as_bytes().to_vec()).collect(),
                checkpoint: proof.checkpoint,
                entry_json: proof.extra.unwrap_or_default(),
                proof: text,
            })
        })
        .await
    }

    async fn audit_consistency_proof(
        &self,
        request: Request<AuditConsistencyProofRequest>,
    ) -> Result<Response<AuditConsistencyProofResponse>, Status> {
        let req = request.into_inner();
        self.blocking(move |s| {
            if req.old_size > req.new_size {
                return Err(ServiceError::InvalidArgument(format!(
                    "old_size {} is larger than new_size {}",
                    req.old_size, req.new_size
                )));
            }
            let hashes = s.log.consistency_proof(req.old_size, req.new_size)?;
            Ok(AuditConsistencyProofResponse {
                hashes: hashes.iter().map(|h| h.as_bytes().to_vec()).collect(),
            })
        })
        .await
    }
}

impl Inner {
    fn appraise(&self, req: &AppraiseRequest) -> Result<AppraiseResponse, ServiceError> {
        let raw = req.evidence_bundle_json.as_bytes();
        if raw.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "evidence_bundle_json is empty".to_owned(),
            ));
        }
        let now = self.clock.now();
        let nonce = (!req.nonce.is_empty()).then_some(req.nonce.as_str());
        // Evidence that does not parse is a deny (evidence_malformed), like
        // any other evidence problem, and is logged as one.
        let parsed = EvidenceBundle::from_json(raw).map_err(|e| vec![Denial::malformed(&e)]);
        let outcome = parsed.as_ref().map_err(Clone::clone).and_then(|bundle| {
            self.verifier
                .appraise_bundle(bundle, &self.collateral, nonce, now)
        });

        let digest = self.log.put_evidence(raw)?;
        let request_id = format!("grpc-{}", uuid::Uuid::new_v4().simple());
        let (decision, denials) = match &outcome {
            Ok(a) if a.is_allowed() => (Decision::Allow, Vec::new()),
            Ok(a) => (Decision::Deny, a.denials.clone()),
            Err(d) => (Decision::Deny, d.clone()),
        };
        let mut entry = AuditEntry::new(now, request_id, EntryKind::Appraisal, decision);
        entry.evidence_digest = Some(digest.prefixed());
        entry.reasons = denials.iter().map(Reason::from).collect();
        if let Ok(bundle) = &parsed {
            entry.tee_key_thumbprint = bundle.runtime_data.tee_pubkey().and_then(jwk_thumbprint);
        }
        if let Ok(a) = &outcome {
            entry.ear_digest =
                Some(attestor::digest::Sha256Digest::of(a.ear.as_bytes()).prefixed());
            entry.ear_status = Some(a.attestation.status().as_str().to_owned());
            entry.policy_id = Some(a.attestation.policy_ids.join("+"));
        }
        // Durable before it is answered; no answer (and no EAR) otherwise.
        let audit_index = self.log.append(&entry)?;

        Ok(match outcome {
            Ok(a) => AppraiseResponse {
                decision: wire_decision(decision).into(),
                denials: denials.iter().map(wire_denial).collect(),
                claims_json: a.policy_input.to_string(),
                ear: a.ear,
                audit_index,
            },
            Err(_) => AppraiseResponse {
                decision: WireDecision::Deny.into(),
                denials: denials.iter().map(wire_denial).collect(),
                ear: String::new(),
                claims_json: String::new(),
                audit_index,
            },
        })
    }

    fn verify_receipt(
        &self,
        req: &VerifyReceiptRequest,
    ) -> Result<VerifyReceiptResponse, ServiceError> {
        if req.receipt.trim().is_empty() {
            return Err(ServiceError::InvalidArgument("receipt is empty".to_owned()));
        }
        let now = if req.at.is_empty() {
            self.clock.now()
        } else {
            UnixTime::parse_rfc3339(&req.at)
                .map_err(|e| ServiceError::InvalidArgument(format!("at: {e}")))?
        };
        let ear = (!req.ear.trim().is_empty()).then_some(req.ear.as_str());
        let outcome = EvidenceBundle::from_json(req.evidence_bundle_json.as_bytes())
            .map_err(|e| vec![Denial::malformed(&e)])
            .and_then(|bundle| {
                self.verifier
                    .verify_receipt(&req.receipt, &bundle, &self.collateral, ear, now)
            });
        Ok(match outcome {
            Ok(v) => VerifyReceiptResponse {
                decision: WireDecision::Allow.into(),
                denials: Vec::new(),
                claims_json: serde_json::json!({
                    "receipt": v.receipt,
                    "receipt_key": v.receipt_key_thumbprint,
                    "evidence_digest": v.appraisal.evidence_digest.prefixed(),
                    "ear_checked": v.ear.is_some(),
                    "at": now.to_rfc3339(),
                })
                .to_string(),
            },
            Err(denials) => VerifyReceiptResponse {
                decision: WireDecision::Deny.into(),
                denials: denials.iter().map(wire_denial).collect(),
                claims_json: String::new(),
            },
        })
    }

    fn audit_entries(
        &self,
        req: &AuditEntriesRequest,
    ) -> Result<AuditEntriesResponse, ServiceError> {
        let decision = match req.decision.as_str() {
            "" => None,
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            other => {
                return Err(ServiceError::InvalidArgument(format!(
                    "decision must be \"allow\", \"deny\" or empty, not {other:?}"
                )));
            }
        };
        let since = if req.since.is_empty() {
            None
        } else {
            Some(
                UnixTime::parse_rfc3339(&req.since)
                    .map_err(|e| ServiceError::InvalidArgument(format!("since: {e}")))?,
            )
        };
        let limit = match req.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let tree_size = self.log.size()?;
        let filter = EntryFilter {
            decision,
            kind: None,
            since,
        };
        let (mut page, mut more) = self.log.entries_page(&filter, req.start, limit)?;
        // Entries appended after the size was read belong to the next call.
        if page.iter().any(|(i, _)| *i >= tree_size) {
            page.retain(|(i, _)| *i < tree_size);
            more = false;
        }
        let next_start = match (more, page.last()) {
            (true, Some((last, _))) => last.saturating_add(1),
            _ => tree_size,
        };
        let entries = page
            .iter()
            .map(|(index, e)| {
                Ok(proto::v1::AuditEntry {
                    index: *index,
                    // Parsing required the stored bytes to be canonical, so
                    // this is exactly what was hashed into the log.
                    entry_json: e.canonical_bytes().map_err(AuditError::from)?,
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(AuditEntriesResponse {
            entries,
            tree_size,
            next_start,
        })
    }
}

fn wire_decision(d: Decision) -> WireDecision {
    match d {
        Decision::Allow => WireDecision::Allow,
        Decision::Deny => WireDecision::Deny,
    }
}

/// A denial on the wire: the same fields an audit reason carries.
pub fn wire_denial(d: &Denial) -> WireDenial {
    let r = Reason::from(d);
    WireDenial {
        code: r.code,
        message: r.message,
        field: r.field.unwrap_or_default(),
        expected: r.expected.unwrap_or_default(),
        found: r.found.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::DenialCode;

    #[test]
    fn grpc_is_told_by_content_type() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        for (ct, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/json", false),
            ("text/plain", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_grpc(&h), grpc, "{ct}");
        }
    }

    #[test]
    fn errors_map_to_statuses() {
        let code = |e: ServiceError| Status::from(e).code();
        assert_eq!(
            code(ServiceError::InvalidArgument("x".into())),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(ServiceError::Audit(AuditError::NoSuchEntry {
                index: 3,
                size: 1
            })),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(ServiceError::Audit(AuditError::Poisoned)),
            tonic::Code::Internal
        );
    }

    #[test]
    fn wire_denials_carry_the_values() {
        let d = wire_denial(&Denial::mismatch(
            DenialCode::NonceMismatch,
            "nonce differs",
            "runtime_data.nonce",
            "a",
            "b",
        ));
        assert_eq!(
            (
                d.code.as_str(),
                d.field.as_str(),
                d.expected.as_str(),
                d.found.as_str()
            ),
            ("nonce_mismatch", "runtime_data.nonce", "a", "b")
        );
    }
}
