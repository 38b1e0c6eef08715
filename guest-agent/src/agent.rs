//! The serving agent: one attestation session, its latest evidence and
//! attestation result, one loaded model, and one receipt per inference.
//!
//! An [`Agent`] holds a [`Session`] (in-memory keys), the model (a
//! [`Generator`] behind a mutex, or an [`Embedder`]), the session's
//! [`ReceiptChain`] behind a mutex, so `seq`/`prev` follow the order in which
//! receipts are signed, and its attestation state:
//! - **no verifier** ([`Agent::start`]): evidence collected for a local nonce,
//!   never appraised; receipts carry no `ear_digest` and say `unattested`.
//! - **with a verifier** ([`Agent::start_attested`]): the bundle the broker
//!   appraised and the verified EAR, replaced on every re-attestation
//!   ([`Agent::set_attestation`]) or dropped when one fails
//!   ([`Agent::attestation_failed`]). While the latest EAR is affirming and
//!   unexpired, receipts carry its digest and status and say `allow`. When it
//!   is not (not affirming, expired, a re-attestation failed), the agent
//!   refuses with a deny receipt ([`RefusalKind::NotAttested`]) or, with
//!   [`OnNotAffirming::ServeUnattested`], serves with receipts that say
//!   `unattested`. The standing is checked before the inference and again
//!   when the receipt is signed, so an EAR that expires meanwhile vouches
//!   for nothing.
//!
//! The exact bytes committed to (salted, domain-separated,
//! [`commit_input`]/[`commit_output`]):
//! - **generate**: request = the prompt's UTF-8 bytes (not the serialized
//!   `GenerateRequest`: the same commitment then serves the CLI and gRPC, and a
//!   client checks it without re-encoding protobuf); response = the generated
//!   text's UTF-8 bytes.
//! - **embed**: request = the JSON array of the texts (`serde_json`, compact:
//!   `["a","b"]`); response = every vector's components as little-endian
//!   IEEE-754 f32 bytes, vectors in order, concatenated.
//! - **refused request** (empty prompt, too many tokens, unknown model, an
//!   inference fault): a receipt whose `policy_decision.status` is `deny`, whose
//!   request bytes are as above and whose response bytes are the refusal
//!   message's UTF-8 bytes ([`Refusal::message`]). Nothing in it claims that the
//!   model produced output.
//!
//! Generation parameters: `max_tokens` as asked, greedy decoding, the prompt's
//! token count (after the chat template) and the tokens generated. An
//! embedding records `max_tokens` 0, the input tokens over all texts and 0
//! output tokens.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use attestor::evidence::{EvidenceBundle, Tee};
use attestor::receipt::{
    AgentBuild, ClaimFacts, Commitment, DecisionStatus, Decoding, EarStatus,
    Generation as GenParams, PolicyDecision, ReceiptChain, ReceiptDraft, ReceiptError, Runtime,
    Salt, SessionRef, Sha256Ref, SignedReceipt, allowed_claim, blocked_claims, commit_input,
    commit_output,
};
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use serde_json::Value;

use crate::ear::VerifiedEar;
use crate::infer::{CANDLE_VERSION, ComputePath, Embedder, Generator, InferError, TokenStep};
use crate::model::LoadedModel;
use crate::session::{EvidenceSource, Session, SessionError, local_nonce};

/// The most characters of a client-chosen model name repeated in a refusal.
pub const MAX_SHOWN_NAME: usize = 80;

/// Which model the agent serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// A llama GGUF for `Generate`.
    Generate,
    /// A BERT safetensors folder for `Embed`.
    Embed,
}

/// `guest-agent serve --config FILE`: TOML, unknown keys refused.
///
/// ```toml
/// listen = "127.0.0.1:50051"   # port 0: any free port
/// model = "/models/smollm2"
/// kind = "generate"            # or "embed"
/// danger_simulate = false      # true: SIMULATED evidence, never trusted
/// [verifier]                   # optional; without it receipts say "unattested"
/// url = "http://127.0.0.1:8080"
/// ear_key = "/data/ear_key.jwk"
/// model_key = "default/model/smollm2-135m-instruct"
/// refresh_secs = 300
/// on_not_affirming = "refuse"  # or "serve-unattested"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Socket address to listen on.
    pub listen: String,
    /// Model file or folder.
    pub model: PathBuf,
    /// Generate or embed.
    pub kind: ModelKind,
    /// Evidence from the simulator instead of hardware.
    #[serde(default)]
    pub danger_simulate: bool,
    /// The verifier / key broker to attest to; `None`: receipts say unattested.
    #[serde(default)]
    pub verifier: Option<VerifierConfig>,
}

/// The `[verifier]` table: where and how the agent attests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// The key broker's base URL (`http://host:port`).
    pub url: String,
    /// The verifier's EAR public key (JWK file; `verifier serve` writes `DATA/ear_key.jwk`).
    pub ear_key: PathBuf,
    /// A resource to fetch after attesting (`repo/type/tag`); for a sealed
    /// model, the one holding its key (default: `sealed.json`'s `key_resource`).
    #[serde(default)]
    pub model_key: Option<String>,
    /// Re-attest on this schedule, seconds (the freshness epoch).
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
    /// What to do while the latest result is not affirming.
    #[serde(default)]
    pub on_not_affirming: OnNotAffirming,
}

fn default_refresh_secs() -> u64 {
    300
}

/// What the agent does while its latest attestation result is not affirming
/// (denied, expired, or a re-attestation failed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnNotAffirming {
    /// Refuse every request (gRPC FAILED_PRECONDITION, with a deny receipt).
    #[default]
    Refuse,
    /// Serve, with receipts whose decision is `unattested`.
    ServeUnattested,
}

impl AgentConfig {
    /// Parses the TOML text.
    pub fn from_toml(text: &str) -> Result<Self, AgentError> {
        toml::from_str(text).map_err(|e| AgentError::Config {
            reason: e.to_string(),
        })
    }
}

/// Why the agent could not start or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The config file is not valid.
    #[error("config: {reason}")]
    Config {
        /// The TOML error.
        reason: String,
    },
    /// The model could not be loaded for inference.
    #[error("loading the model: {0}")]
    Load(#[source] InferError),
    /// Evidence could not be collected.
    #[error("collecting evidence: {0}")]
    Evidence(#[from] SessionError),
    /// A receipt could not be signed.
    #[error("signing the receipt: {0}")]
    Receipt(#[from] ReceiptError),
    /// The attested evidence names another model than the one loaded.
    #[error("the attested evidence names model {attested:?}, but {loaded} is loaded")]
    ModelNotAttested {
        /// The commitment in the attested runtime data.
        attested: Option<String>,
        /// The loaded model's commitment.
        loaded: String,
    },
    /// The model mutex was poisoned by a panic in an earlier inference.
    #[error("the {what} lock is poisoned")]
    Poisoned {
        /// "model" or "receipt chain".
        what: &'static str,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The input is malformed or out of range (empty, too long, too many tokens).
    InvalidInput,
    /// The request names a model this agent does not serve.
    UnknownModel,
    /// The agent serves the other kind of model.
    WrongKind,
    /// The inference failed inside the agent.
    Internal,
    /// The latest attestation result is not affirming (or has expired) and
    /// the agent is configured to refuse.
    NotAttested,
    /// The caller stopped a streamed generation before it ended.
    Cancelled,
}

/// A refused request: what went wrong and, when it could be signed, the deny
/// receipt with its salt.
#[derive(Debug)]
pub struct Refusal {
    /// The class of the refusal (maps to a gRPC status code).
    pub kind: RefusalKind,
    /// The refusal message: exactly the response bytes the deny receipt commits to.
    pub message: String,
    /// The deny receipt and its salt; `None` only when signing itself failed.
    pub receipt: Option<Box<(SignedReceipt, Salt)>>,
}

/// A served inference with its receipt.
#[derive(Debug)]
pub struct Receipted<T> {
    /// The model output.
    pub output: T,
    /// The receipt (decision `unattested` or `allow`).
    pub receipt: SignedReceipt,
    /// The commitment salt, for the client only.
    pub salt: Salt,
}

/// A served generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The generated text.
    pub text: String,
    /// The generated token ids.
    pub token_ids: Vec<u32>,
}

enum Engine {
    Generate(Mutex<Generator>),
    Embed(Embedder),
}

/// The evidence and result receipts refer to; replaced on re-attestation.
struct AttestState {
    bundle: EvidenceBundle,
    /// `bundle.digest()`, computed once (RFC 8785 over the whole bundle).
    evidence_digest: Sha256Ref,
    result: Verdict,
}

/// The latest attestation outcome.
enum Verdict {
    /// No verifier configured.
    NoVerifier,
    /// The latest attestation gave this (verified) result.
    Attested(VerifiedEar),
    /// The latest re-attestation failed; the earlier result no longer counts.
    Failed(String),
}

/// How a request stands, attestation-wise, at one instant.
struct Standing {
    session: SessionRef,
    policy_ids: Vec<String>,
    /// `Ok((status, reason))` to serve; `Err(message)` to refuse.
    serve: Result<(DecisionStatus, String), String>,
}

/// The serving agent (see the module docs).
pub struct Agent {
    session: Session,
    state: RwLock<AttestState>,
    /// `None` without a verifier.
    on_not_affirming: Option<OnNotAffirming>,
    simulated: bool,
    model: Sha256Ref,
    model_name: String,
    engine: Engine,
    chain: Mutex<ReceiptChain>,
    tee: Tee,
    gpus: usize,
    issuer: String,
}

impl Agent {
    /// Loads the model for `kind`, creates session keys, and collects evidence
    /// bound to them and to the model commitment (a fresh local nonce: no
    /// verifier has asked yet).
    pub fn start(
        model: &LoadedModel,
        kind: ModelKind,
        source: &EvidenceSource,
    ) -> Result<Self, AgentError> {
        let engine = Self::engine(model, kind)?;
        let session = Session::new();
        let commitment = model.commitment.to_string();
        let runtime_data = session.runtime_data(&local_nonce(), Some(&commitment));
        let bundle = session.collect(runtime_data, source)?;
        let gpus = match source {
            EvidenceSource::DangerSimulate { gpus, .. } => *gpus,
            EvidenceSource::Hardware => count_gpus(&bundle.additional_evidence),
        };
        Ok(Self::assemble(
            session,
            model,
            engine,
            bundle,
            gpus,
            Verdict::NoVerifier,
            None,
        ))
    }

    /// An agent whose `session` was attested through a verifier before the
    /// model was handed to the engine: `attestation` is the bundle that was
    /// appraised and its verified result. The result must be about this
    /// model; `on_not_affirming` says what to do once it no longer affirms.
    pub fn start_attested(
        session: Session,
        model: &LoadedModel,
        kind: ModelKind,
        attestation: crate::kbs::Attestation,
        on_not_affirming: OnNotAffirming,
    ) -> Result<Self, AgentError> {
        let claimed = attestation.bundle.runtime_data.model().map(str::to_owned);
        let loaded = model.commitment.to_string();
        if claimed.as_deref() != Some(loaded.as_str()) {
            return Err(AgentError::ModelNotAttested {
                attested: claimed,
                loaded,
            });
        }
        let engine = Self::engine(model, kind)?;
        let gpus = count_gpus(&attestation.bundle.additional_evidence);
        Ok(Self::assemble(
            session,
            model,
            engine,
            attestation.bundle,
            gpus,
            Verdict::Attested(attestation.ear),
            Some(on_not_affirming),
        ))
    }

    fn engine(model: &LoadedModel, kind: ModelKind) -> Result<Engine, AgentError> {
        Ok(match kind {
            ModelKind::Generate => Engine::Generate(Mutex::new(
                Generator::from_loaded(model).map_err(AgentError::Load)?,
            )),
            ModelKind::Embed => {
                Engine::Embed(Embedder::from_loaded(model).map_err(AgentError::Load)?)
            }
        })
    }

    fn assemble(
        session: Session,
        model: &LoadedModel,
        engine: Engine,
        bundle: EvidenceBundle,
        gpus: usize,
        result: Verdict,
        on_not_affirming: Option<OnNotAffirming>,
    ) -> Self {
        let chain = ReceiptChain::new(session.receipt_key().clone());
        let issuer = format!(
            "{}/{}",
            env!("CARGO_PKG_NAME"),
            session.receipt_key().thumbprint()
        );
        Self {
            model: Sha256Ref(*model.commitment.root()),
            model_name: model.manifest.model_name.clone(),
            tee: bundle.primary.tee(),
            simulated: bundle.simulated,
            gpus,
            issuer,
            state: RwLock::new(AttestState {
                evidence_digest: Sha256Ref(bundle.digest()),
                bundle,
                result,
            }),
            on_not_affirming,
            session,
            engine,
            chain: Mutex::new(chain),
        }
    }

    /// The session (public keys, runtime data).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The evidence bundle receipts currently refer to: the one the
    /// verifier appraised last, or the one collected at start without one.
    pub fn bundle(&self) -> EvidenceBundle {
        self.read_state().bundle.clone()
    }

    /// The latest verified EAR token, when the latest attestation succeeded.
    pub fn ear_token(&self) -> Option<String> {
        match &self.read_state().result {
            Verdict::Attested(ear) => Some(ear.token.clone()),
            Verdict::NoVerifier | Verdict::Failed(_) => None,
        }
    }

    /// The latest verified EAR, when the latest attestation succeeded.
    pub fn ear(&self) -> Option<VerifiedEar> {
        match &self.read_state().result {
            Verdict::Attested(ear) => Some(ear.clone()),
            Verdict::NoVerifier | Verdict::Failed(_) => None,
        }
    }

    /// Records a successful re-attestation: its bundle and result replace
    /// the earlier ones. Refused (state unchanged) when the bundle is not
    /// about the loaded model.
    pub fn set_attestation(&self, attestation: crate::kbs::Attestation) -> Result<(), AgentError> {
        let claimed = attestation.bundle.runtime_data.model().map(str::to_owned);
        if claimed.as_deref() != Some(self.model.to_string().as_str()) {
            let loaded = self.model.to_string();
            self.attestation_failed(format!(
                "re-attestation named model {claimed:?}, not the loaded {loaded}"
            ));
            return Err(AgentError::ModelNotAttested {
                attested: claimed,
                loaded,
            });
        }
        let mut state = self.write_state();
        state.evidence_digest = Sha256Ref(attestation.bundle.digest());
        state.bundle = attestation.bundle;
        state.result = Verdict::Attested(attestation.ear);
        Ok(())
    }

    /// Records a failed re-attestation: from now on the agent has no
    /// affirming result until a later attestation succeeds.
    pub fn attestation_failed(&self, reason: String) {
        if self.on_not_affirming.is_some() {
            self.write_state().result = Verdict::Failed(reason);
        }
    }

    /// `Ok(reason)` when requests are served now (with an affirming result,
    /// or unattested: the reason says which); `Err(why)` when they are refused.
    pub fn health(&self) -> Result<String, String> {
        self.standing().serve.map(|(_, reason)| reason)
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, AttestState> {
        // A poisoned lock only means a writer panicked between plain field
        // stores; the state is still one of the values written.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, AttestState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How a request stands now (see the module docs).
    fn standing(&self) -> Standing {
        let state = self.read_state();
        let mut session = SessionRef {
            evidence_digest: state.evidence_digest,
            ear_digest: None,
            ear_status: None,
            simulated: self.simulated,
        };
        let mut policy_ids = Vec::new();
        let not_affirming = match &state.result {
            Verdict::NoVerifier => {
                return Standing {
                    session,
                    policy_ids,
                    serve: Ok((
                        DecisionStatus::Unattested,
                        "served without an accepting appraisal: no verifier has appraised this session"
                            .into(),
                    )),
                };
            }
            Verdict::Attested(ear) => {
                session.ear_digest = Some(ear.digest);
                session.ear_status = Some(ear.status);
                policy_ids.clone_from(&ear.policy_ids);
                let now = now();
                if ear.affirms_at(now) {
                    return Standing {
                        session,
                        policy_ids,
                        serve: Ok((
                            DecisionStatus::Allow,
                            format!(
                                "served under an affirming attestation result valid until {} (Unix time)",
                                ear.exp
                            ),
                        )),
                    };
                }
                if ear.status == EarStatus::Affirming {
                    format!("the attestation result expired at {} (now {now})", ear.exp)
                } else {
                    format!("the attestation result is {:?}, not affirming", ear.status)
                        .to_lowercase()
                }
            }
            Verdict::Failed(reason) => format!("the latest attestation failed: {reason}"),
        };
        let serve = match self.on_not_affirming {
            Some(OnNotAffirming::ServeUnattested) => Ok((
                DecisionStatus::Unattested,
                format!("served without an accepting appraisal: {not_affirming}"),
            )),
            _ => Err(format!("not serving: {not_affirming}")),
        };
        Standing {
            session,
            policy_ids,
            serve,
        }
    }

    /// The receipt public key as a JWK.
    pub fn receipt_jwk(&self) -> Value {
        self.session.receipt_key_jwk()
    }

    /// `sha256:<OMS root>` of the served model.
    pub fn model_commitment(&self) -> &Sha256Ref {
        &self.model
    }

    /// Whether the evidence came from the simulator.
    pub fn simulated(&self) -> bool {
        self.simulated
    }

    /// Whether this agent serves generation (else embeddings).
    pub fn kind(&self) -> ModelKind {
        match self.engine {
            Engine::Generate(_) => ModelKind::Generate,
            Engine::Embed(_) => ModelKind::Embed,
        }
    }

    /// Checks a request's `model` field: empty (the loaded model), the model's
    /// name, or its commitment string.
    pub fn check_model(&self, requested: &str) -> Result<(), String> {
        if requested.is_empty()
            || requested == self.model_name
            || requested == self.model.to_string()
        {
            Ok(())
        } else {
            // The name is client-chosen: bounded, as it goes into the status and receipt.
            let shown: String = requested.chars().take(MAX_SHOWN_NAME).collect();
            Err(format!(
                "unknown model {shown:?}: this agent serves {:?} ({})",
                self.model_name, self.model
            ))
        }
    }

    /// One greedy generation with its receipt, or a refusal with a deny receipt.
    pub fn generate(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<Receipted<Generated>, Refusal> {
        self.generate_stream(model, prompt, max_tokens, |_| ControlFlow::Continue(()))
    }

    /// [`Self::generate`], handing each token to `on_token` as it is decoded
    /// (the step texts concatenate to the receipted text). The receipt is
    /// signed once, over the complete text, exactly as for `generate`. When
    /// `on_token` breaks, generation stops and the refusal is
    /// [`RefusalKind::Cancelled`] (its deny receipt keeps the chain whole).
    pub fn generate_stream(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: u32,
        on_token: impl FnMut(&TokenStep) -> ControlFlow<()>,
    ) -> Result<Receipted<Generated>, Refusal> {
        let request = prompt.as_bytes();
        let params = |input: Option<u32>, output: Option<u32>| GenParams {
            max_tokens,
            decoding: Decoding::Greedy,
            input_tokens: input,
            output_tokens: output,
        };
        if let Err(message) = self.check_model(model) {
            return Err(self.refuse(
                RefusalKind::UnknownModel,
                message,
                request,
                params(None, None),
                None,
            ));
        }
        let Engine::Generate(generator) = &self.engine else {
            let message = "this agent serves an embedding model; use Embed".to_owned();
            return Err(self.refuse(
                RefusalKind::WrongKind,
                message,
                request,
                params(None, None),
                None,
            ));
        };
        if let Err(message) = self.standing().serve {
            return Err(self.refuse(
                RefusalKind::NotAttested,
                message,
                request,
                params(None, None),
                None,
            ));
        }
        let Ok(mut generator) = generator.lock() else {
            let message = "the model lock is poisoned".to_owned();
            return Err(self.refuse(
                RefusalKind::Internal,
                message,
                request,
                params(None, None),
                None,
            ));
        };
        let compute = generator.compute_path().clone();
        let result = generator.generate_with(prompt, max_tokens, on_token);
        drop(generator);
        match result {
            Ok(g) => {
                let generation = params(count(g.prompt_token_ids.len()), count(g.token_ids.len()));
                // Checked again: the result may have expired during the inference.
                let standing = self.standing();
                let (status, reason) = match standing.serve.clone() {
                    Ok(serve) => serve,
                    Err(message) => {
                        return Err(self.refuse(
                            RefusalKind::NotAttested,
                            message,
                            request,
                            generation,
                            Some(&compute),
                        ));
                    }
                };
                let salt = Salt::random();
                let draft = self.draft(
                    &salt,
                    request,
                    g.text.as_bytes(),
                    generation,
                    Some(&compute),
                    &standing,
                    status,
                    reason,
                );
                self.sign_output(
                    draft,
                    salt,
                    Generated {
                        text: g.text,
                        token_ids: g.token_ids,
                    },
                )
            }
            Err(e) => Err(self.refuse(
                infer_kind(&e),
                e.to_string(),
                request,
                params(None, None),
                Some(&compute),
            )),
        }
    }

    /// Embeddings of `texts` with their receipt, or a refusal with a deny receipt.
    pub fn embed(
        &self,
        model: &str,
        texts: &[String],
    ) -> Result<Receipted<Vec<Vec<f32>>>, Refusal> {
        let request = embed_request_bytes(texts);
        let params = |input: Option<u32>, output: Option<u32>| GenParams {
            max_tokens: 0,
            decoding: Decoding::Greedy,
            input_tokens: input,
            output_tokens: output,
        };
        if let Err(message) = self.check_model(model) {
            return Err(self.refuse(
                RefusalKind::UnknownModel,
                message,
                &request,
                params(None, None),
                None,
            ));
        }
        let Engine::Embed(embedder) = &self.engine else {
            let message = "this agent serves a generative model; use Generate".to_owned();
            return Err(self.refuse(
                RefusalKind::WrongKind,
                message,
                &request,
                params(None, None),
                None,
            ));
        };
        if let Err(message) = self.standing().serve {
            return Err(self.refuse(
                RefusalKind::NotAttested,
                message,
                &request,
                params(None, None),
                None,
            ));
        }
        let compute = embedder.compute_path();
        let tokens: Result<usize, InferError> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| embedder.token_ids(i, t).map(|ids| ids.len()))
            .sum();
        let result = tokens.and_then(|n| embedder.embed(texts).map(|v| (n, v)));
        match result {
            Ok((n, vectors)) => {
                let standing = self.standing();
                let (status, reason) = match standing.serve.clone() {
                    Ok(serve) => serve,
                    Err(message) => {
                        return Err(self.refuse(
                            RefusalKind::NotAttested,
                            message,
                            &request,
                            params(count(n), Some(0)),
                            Some(compute),
                        ));
                    }
                };
                let salt = Salt::random();
                let draft = self.draft(
                    &salt,
                    &request,
                    &embed_response_bytes(&vectors),
                    params(count(n), Some(0)),
                    Some(compute),
                    &standing,
                    status,
                    reason,
                );
                self.sign_output(draft, salt, vectors)
            }
            Err(e) => Err(self.refuse(
                infer_kind(&e),
                e.to_string(),
                &request,
                params(None, None),
                Some(compute),
            )),
        }
    }

    /// A refusal with a deny receipt committing to `request` and the message.
    fn refuse(
        &self,
        kind: RefusalKind,
        message: String,
        request: &[u8],
        generation: GenParams,
        compute: Option<&ComputePath>,
    ) -> Refusal {
        let salt = Salt::random();
        let standing = self.standing();
        let draft = self.draft(
            &salt,
            request,
            message.as_bytes(),
            generation,
            compute,
            &standing,
            DecisionStatus::Deny,
            format!("refused: {message}"),
        );
        let receipt = self.sign(draft).ok().map(|r| Box::new((r, salt)));
        Refusal {
            kind,
            message,
            receipt,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn draft(
        &self,
        salt: &Salt,
        request: &[u8],
        response: &[u8],
        generation: GenParams,
        compute: Option<&ComputePath>,
        standing: &Standing,
        status: DecisionStatus,
        reason: String,
    ) -> ReceiptDraft {
        let simulated = self.simulated;
        let facts = ClaimFacts {
            model: &self.model,
            tee: Some(self.tee),
            gpus: self.gpus,
            simulated,
            decision: status,
        };
        ReceiptDraft {
            iss: self.issuer.clone(),
            iat: now(),
            jti: random_jti(),
            eat_nonce: None,
            session: standing.session.clone(),
            model_commitment: self.model,
            input_commitment: commit_input(salt, request),
            output_digest: commit_output(salt, response),
            generation,
            runtime: Runtime {
                agent: AgentBuild {
                    name: env!("CARGO_PKG_NAME").to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    build: None,
                },
                candle_version: CANDLE_VERSION.to_owned(),
                compute_path: compute
                    .and_then(|c| serde_json::to_value(c).ok())
                    .unwrap_or(Value::Null),
            },
            verifier_policy_id: standing.policy_ids.clone(),
            policy_decision: PolicyDecision { status, reason },
            allowed_claim: allowed_claim(&facts),
            blocked_claims: blocked_claims(simulated),
        }
    }

    /// Signs the receipt for a served output; when signing fails the output is
    /// withheld: no receipt, no response.
    fn sign_output<T>(
        &self,
        draft: ReceiptDraft,
        salt: Salt,
        output: T,
    ) -> Result<Receipted<T>, Refusal> {
        match self.sign(draft) {
            Ok(receipt) => Ok(Receipted {
                output,
                receipt,
                salt,
            }),
            Err(e) => Err(Refusal {
                kind: RefusalKind::Internal,
                message: e.to_string(),
                receipt: None,
            }),
        }
    }

    fn sign(&self, draft: ReceiptDraft) -> Result<SignedReceipt, AgentError> {
        let mut chain = self.chain.lock().map_err(|_| AgentError::Poisoned {
            what: "receipt chain",
        })?;
        Ok(chain.sign(draft)?)
    }

    /// Signs one receipt of the `unattested` kind over the given bytes with
    /// no inference (for benchmarks of the signing cost).
    pub fn sign_only(&self, request: &[u8], response: &[u8]) -> Result<SignedReceipt, AgentError> {
        let salt = Salt::random();
        let draft = self.draft(
            &salt,
            request,
            response,
            GenParams {
                max_tokens: 0,
                decoding: Decoding::Greedy,
                input_tokens: None,
                output_tokens: None,
            },
            None,
            &self.standing(),
            DecisionStatus::Unattested,
            "benchmark".into(),
        );
        self.sign(draft)
    }
}

/// The exact request bytes an `Embed` receipt commits to.
pub fn embed_request_bytes(texts: &[String]) -> Vec<u8> {
    serde_json::to_vec(texts).unwrap_or_default()
}

/// The exact response bytes an `Embed` receipt commits to.
pub fn embed_response_bytes(vectors: &[Vec<f32>]) -> Vec<u8> {
    vectors
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

/// A commitment helper for clients: the pair a receipt should carry.
pub fn commitments(salt: &Salt, request: &[u8], response: &[u8]) -> (Commitment, Commitment) {
    (commit_input(salt, request), commit_output(salt, response))
}

fn infer_kind(e: &InferError) -> RefusalKind {
    match e {
        InferError::Empty { .. }
        | InferError::TooLong { .. }
        | InferError::ContextOverflow { .. }
        | InferError::MaxTokens { .. }
        | InferError::ControlToken { .. } => RefusalKind::InvalidInput,
        InferError::Cancelled { .. } => RefusalKind::Cancelled,
        _ => RefusalKind::Internal,
    }
}

fn count(n: usize) -> Option<u32> {
    u32::try_from(n).ok()
}

fn count_gpus(additional_evidence: &str) -> usize {
    serde_json::from_str::<Value>(additional_evidence)
        .ok()
        .and_then(|v| {
            v.pointer("/nvidia/device_evidence_list")
                .and_then(Value::as_array)
                .map(Vec::len)
        })
        .unwrap_or(0)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_jti() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}
