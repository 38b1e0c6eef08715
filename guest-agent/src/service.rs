//! The `GuestAgent` gRPC service over an [`Agent`].
//!
//! Refusals: bad input (empty prompt, too many tokens, over-long text) is
//! `InvalidArgument`, an unknown model `NotFound`, the wrong kind of model
//! `FailedPrecondition`, an inference fault `Internal`. None of them returns
//! a response; the status carries the **deny receipt** in the metadata
//! [`RECEIPT_METADATA`] (compact JWS) and its salt, lowercase hex, in
//! [`SALT_METADATA`]. The deny receipt commits to the request bytes and to the
//! status message's UTF-8 bytes (see [`crate::agent`]).
//!
//! A request refused because the latest attestation result does not affirm
//! (and the agent is configured to refuse) is `FailedPrecondition`, also with
//! a deny receipt. `Session` returns the bundle the verifier appraised last
//! with its EAR (empty without a verifier); `Health` says `serving: false`
//! with the reason while the result does not affirm.
//!
//! `GenerateStream` computes the generation in full, then sends the text and
//! token ids in one chunk and the receipt and salt in the last chunk.

use std::pin::Pin;
use std::sync::Arc;

use proto::v1::guest_agent_server::GuestAgent;
use proto::v1::{
    EmbedRequest, EmbedResponse, Embedding, GenerateChunk, GenerateRequest, GenerateResponse,
    HealthRequest, HealthResponse, SessionRequest, SessionResponse,
};
use tokio_stream::Stream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::agent::{Agent, Refusal, RefusalKind};

/// Metadata key of the deny receipt on a refused request.
pub const RECEIPT_METADATA: &str = "x-receipt";
/// Metadata key of the deny receipt's salt (hex) on a refused request.
pub const SALT_METADATA: &str = "x-receipt-salt";

/// The service: a shared [`Agent`].
#[derive(Clone)]
pub struct AgentService {
    agent: Arc<Agent>,
}

impl AgentService {
    /// Serves `agent`.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self { agent }
    }
}

/// The status for a refusal, with its deny receipt in the metadata.
pub fn refusal_status(refusal: &Refusal) -> Status {
    let code = match refusal.kind {
        RefusalKind::InvalidInput => Code::InvalidArgument,
        RefusalKind::UnknownModel => Code::NotFound,
        RefusalKind::WrongKind => Code::FailedPrecondition,
        RefusalKind::Internal => Code::Internal,
        RefusalKind::NotAttested => Code::FailedPrecondition,
    };
    let mut metadata = MetadataMap::new();
    if let Some((receipt, salt)) = refusal.receipt.as_deref()
        && let (Ok(r), Ok(s)) = (
            MetadataValue::try_from(receipt.compact.as_str()),
            MetadataValue::try_from(salt.to_hex().as_str()),
        )
    {
        metadata.insert(RECEIPT_METADATA, r);
        metadata.insert(SALT_METADATA, s);
    }
    Status::with_metadata(code, refusal.message.clone(), metadata)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("inference task failed: {e}")))
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<GenerateChunk, Status>> + Send>>;

#[tonic::async_trait]
impl GuestAgent for AgentService {
    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<GenerateResponse>, Status> {
        let req = request.into_inner();
        let agent = Arc::clone(&self.agent);
        let out = blocking(move || agent.generate(&req.model, &req.prompt, req.max_tokens))
            .await?
            .map_err(|r| refusal_status(&r))?;
        Ok(Response::new(GenerateResponse {
            text: out.output.text,
            token_ids: out.output.token_ids,
            receipt: out.receipt.compact,
            salt: out.salt.as_bytes().to_vec(),
        }))
    }

    type GenerateStreamStream = ChunkStream;

    async fn generate_stream(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<Self::GenerateStreamStream>, Status> {
        let req = request.into_inner();
        let agent = Arc::clone(&self.agent);
        let out = blocking(move || agent.generate(&req.model, &req.prompt, req.max_tokens))
            .await?
            .map_err(|r| refusal_status(&r))?;
        let chunks = vec![
            Ok(GenerateChunk {
                text: out.output.text,
                token_ids: out.output.token_ids,
                receipt: String::new(),
                salt: Vec::new(),
            }),
            Ok(GenerateChunk {
                text: String::new(),
                token_ids: Vec::new(),
                receipt: out.receipt.compact,
                salt: out.salt.as_bytes().to_vec(),
            }),
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn embed(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        let req = request.into_inner();
        let agent = Arc::clone(&self.agent);
        let out = blocking(move || agent.embed(&req.model, &req.texts))
            .await?
            .map_err(|r| refusal_status(&r))?;
        Ok(Response::new(EmbedResponse {
            embeddings: out
                .output
                .into_iter()
                .map(|values| Embedding { values })
                .collect(),
            receipt: out.receipt.compact,
            salt: out.salt.as_bytes().to_vec(),
        }))
    }

    async fn session(
        &self,
        _request: Request<SessionRequest>,
    ) -> Result<Response<SessionResponse>, Status> {
        let bundle = self.agent.bundle();
        Ok(Response::new(SessionResponse {
            evidence_bundle_json: bundle.to_json_pretty(),
            runtime_data_json: String::from_utf8_lossy(&bundle.runtime_data.canonical())
                .into_owned(),
            // The verified EAR for exactly this bundle, when the latest attestation succeeded.
            ear: self.agent.ear_token().unwrap_or_default(),
            receipt_key_jwk: self.agent.receipt_jwk().to_string(),
            tee_key_jwk: self.agent.session().tee_pubkey_jwk().to_string(),
            simulated: bundle.simulated,
        }))
    }

    async fn health(
        &self,
        _request: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let (serving, reason) = match self.agent.health() {
            Ok(reason) => (true, reason),
            Err(reason) => (false, reason),
        };
        Ok(Response::new(HealthResponse { serving, reason }))
    }
}
