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
//! `GenerateStream` sends one [`GenerateChunk`] per token as the generator
//! produces it (its id, and the text it completes), then a last chunk with
//! only the receipt and salt, which commit to the complete text exactly as a
//! unary `Generate` does. A request refused before the first token gets the
//! same status (and deny receipt) as `Generate`, with no stream; a failure
//! after some tokens ends the stream with that status and no success
//! receipt. When the client goes away (or reads nothing for
//! [`STREAM_STALL_TIMEOUT`]) generation stops at the next token, so a
//! cancelled or stuck client does not keep the model busy.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use proto::v1::guest_agent_server::GuestAgent;
use proto::v1::{
    EmbedRequest, EmbedResponse, Embedding, GenerateChunk, GenerateRequest, GenerateResponse,
    HealthRequest, HealthResponse, SessionRequest, SessionResponse,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::agent::{Agent, Generated, Receipted, Refusal, RefusalKind};
use crate::infer::TokenStep;

/// Metadata key of the deny receipt on a refused request.
pub const RECEIPT_METADATA: &str = "x-receipt";
/// Metadata key of the deny receipt's salt (hex) on a refused request.
pub const SALT_METADATA: &str = "x-receipt-salt";

/// How long a streamed generation waits for the client to take a chunk
/// before it stops: a client that stops reading must not hold the model.
pub const STREAM_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Chunks queued between the generator and a streaming client.
const STREAM_BUFFER: usize = 16;

/// The service: a shared [`Agent`].
#[derive(Clone)]
pub struct AgentService {
    agent: Arc<Agent>,
    tokens_streamed: Arc<AtomicU64>,
}

impl AgentService {
    /// Serves `agent`.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self {
            agent,
            tokens_streamed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Tokens generated so far for `GenerateStream` calls (each counted
    /// when the generator hands it over, before it is queued for the client).
    pub fn tokens_streamed(&self) -> u64 {
        self.tokens_streamed.load(Ordering::SeqCst)
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
        RefusalKind::Cancelled => Code::Cancelled,
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

/// What the generation thread sends to a `GenerateStream` response.
enum StreamEvent {
    Token(TokenStep),
    Done(Box<Result<Receipted<Generated>, Refusal>>),
}

impl StreamEvent {
    fn into_chunk(self) -> Result<GenerateChunk, Status> {
        match self {
            Self::Token(step) => Ok(GenerateChunk {
                text: step.text,
                token_ids: vec![step.id],
                receipt: String::new(),
                salt: Vec::new(),
            }),
            Self::Done(done) => match *done {
                Ok(out) => Ok(GenerateChunk {
                    text: String::new(),
                    token_ids: Vec::new(),
                    receipt: out.receipt.compact,
                    salt: out.salt.as_bytes().to_vec(),
                }),
                Err(refusal) => Err(refusal_status(&refusal)),
            },
        }
    }
}

/// The chunks of one `GenerateStream` response. It ends after the event that
/// carries the result; when the generation thread goes away without one (a
/// panic), the stream ends with an `Internal` status rather than looking
/// like a complete answer without a receipt.
struct Chunks {
    first: Option<StreamEvent>,
    rx: mpsc::Receiver<StreamEvent>,
    done: bool,
}

impl Chunks {
    fn emit(&mut self, event: StreamEvent) -> Result<GenerateChunk, Status> {
        self.done = matches!(event, StreamEvent::Done(_));
        event.into_chunk()
    }
}

impl Stream for Chunks {
    type Item = Result<GenerateChunk, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(event) = self.first.take() {
            return Poll::Ready(Some(self.emit(event)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(event)) => Poll::Ready(Some(self.emit(event))),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(Status::internal(
                    "the generation ended without a result",
                ))))
            }
        }
    }
}

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
        let counter = Arc::clone(&self.tokens_streamed);
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        let handle = tokio::runtime::Handle::current();
        // Detached: it ends by itself, at the latest one token after the
        // client is gone (the send fails and generation breaks).
        drop(tokio::task::spawn_blocking(move || {
            let send = |event: StreamEvent| {
                let sent =
                    handle.block_on(tokio::time::timeout(STREAM_STALL_TIMEOUT, tx.send(event)));
                matches!(sent, Ok(Ok(())))
            };
            let result = agent.generate_stream(&req.model, &req.prompt, req.max_tokens, |step| {
                counter.fetch_add(1, Ordering::SeqCst);
                if send(StreamEvent::Token(step.clone())) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            });
            // Nobody may be listening any more; then there is nothing to do.
            send(StreamEvent::Done(Box::new(result)));
        }));
        // The first event tells a request refused before any token (a plain
        // status, as for `Generate`) from a stream.
        let first = rx
            .recv()
            .await
            .ok_or_else(|| Status::internal("the generation task ended without a result"))?;
        if let StreamEvent::Done(done) = &first
            && let Err(refusal) = done.as_ref()
        {
            return Err(refusal_status(refusal));
        }
        Ok(Response::new(Box::pin(Chunks {
            first: Some(first),
            rx,
            done: false,
        })))
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
