//! A gRPC client of the `GuestAgent` service: what `guest-agent client`
//! runs, and what a program that calls an agent can use.
//!
//! Every generation it returns has been checked here, before it is handed
//! out: the receipt's ES384 signature verifies with the receipt key the
//! agent's `Session` reports, that key is the one bound into the session's
//! evidence (`runtime_data`), and the receipt's commitments match the prompt
//! that was sent, the text that was received and the salt. For a stream,
//! the chunks must be one token each with the receipt only in the last one,
//! and the receipt must cover the concatenation of the chunk texts.
//!
//! What it must never do: return text whose receipt failed any of these
//! checks as a verified [`ClientGeneration`]. What it does not prove: that
//! the evidence is genuine, or that a verifier accepted it. That is the
//! offline chain check (`verifier receipt verify RECEIPT --evidence BUNDLE
//! --ear TOKEN`), for which [`AgentClient::session`] fetches the bundle and
//! the EAR.

use attestor::evidence::EvidenceBundle;
use attestor::receipt::{DecisionStatus, ReceiptClaims, ReceiptError, Salt, verify};
use proto::v1::guest_agent_client::GuestAgentClient;
use proto::v1::{GenerateChunk, GenerateRequest, SessionRequest};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use crate::service::{RECEIPT_METADATA, SALT_METADATA};

/// A connected client.
#[derive(Debug, Clone)]
pub struct AgentClient {
    inner: GuestAgentClient<Channel>,
}

/// A generation whose receipt passed the checks in the module docs.
#[derive(Debug, Clone)]
pub struct ClientGeneration {
    /// The generated text.
    pub text: String,
    /// The generated token ids.
    pub token_ids: Vec<u32>,
    /// The receipt, compact JWS.
    pub receipt: String,
    /// The commitments' salt.
    pub salt: Salt,
    /// The receipt public key (JWK) it verified with.
    pub receipt_key: Value,
    /// The verified claims.
    pub claims: ReceiptClaims,
}

/// What the agent's `Session` RPC returned, parsed.
#[derive(Debug, Clone)]
pub struct AgentSession {
    /// The evidence bundle, exactly as received (JSON text).
    pub bundle_json: String,
    /// The bundle, parsed.
    pub bundle: EvidenceBundle,
    /// The latest attestation result (EAR JWT), `None` when the agent has none.
    pub ear: Option<String>,
    /// The receipt public key (JWK).
    pub receipt_key: Value,
    /// The TEE public key (JWK).
    pub tee_key: Value,
    /// Whether the evidence came from the simulator.
    pub simulated: bool,
}

/// Why a call failed or its answer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server address is not a valid URI.
    #[error("server address {url:?}: {reason}")]
    Address {
        /// The address given.
        url: String,
        /// Why it is not valid.
        reason: String,
    },
    /// The connection could not be made.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The address.
        url: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The agent answered with a gRPC status: a refusal (with its deny
    /// receipt when the agent signed one) or a fault.
    #[error("agent refused ({code:?}): {message}")]
    Refused {
        /// The status code.
        code: tonic::Code,
        /// The status message (the bytes the deny receipt commits to).
        message: String,
        /// The deny receipt, when the status carries one.
        deny_receipt: Option<String>,
        /// Its salt, lowercase hex.
        deny_salt: Option<String>,
    },
    /// The stream broke the `GenerateStream` contract.
    #[error("generate stream: {reason}")]
    Stream {
        /// What was wrong.
        reason: String,
    },
    /// A field of the agent's answer is malformed.
    #[error("agent's {what}: {reason}")]
    Malformed {
        /// Which field.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The receipt's key is not the one bound into the session's evidence.
    #[error(
        "the receipt key reported by Session is not the one bound in the evidence's runtime_data"
    )]
    KeyNotBound,
    /// The receipt does not verify or does not commit to what was exchanged.
    #[error("receipt check failed: {0}")]
    Receipt(#[from] ReceiptError),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let text = |key| {
            status
                .metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self::Refused {
            code: status.code(),
            message: status.message().to_owned(),
            deny_receipt: text(RECEIPT_METADATA),
            deny_salt: text(SALT_METADATA),
        }
    }
}

impl AgentClient {
    /// Connects to `url` (`http://HOST:PORT`).
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| ClientError::Address {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_owned(),
                source,
            })?;
        Ok(Self::new(channel))
    }

    /// A client over an existing channel (tests, custom transports).
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: GuestAgentClient::new(channel),
        }
    }

    /// The agent's session: evidence bundle, EAR and public keys. Checks that
    /// the bundle parses and that the reported receipt key is the one bound
    /// in its `runtime_data`.
    pub async fn session(&mut self) -> Result<AgentSession, ClientError> {
        let s = self.inner.session(SessionRequest {}).await?.into_inner();
        let bundle = EvidenceBundle::from_json(s.evidence_bundle_json.as_bytes()).map_err(|e| {
            ClientError::Malformed {
                what: "evidence bundle",
                reason: e.to_string(),
            }
        })?;
        let json = |what, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| ClientError::Malformed {
                what,
                reason: e.to_string(),
            })
        };
        let receipt_key = json("receipt key", &s.receipt_key_jwk)?;
        let tee_key = json("TEE key", &s.tee_key_jwk)?;
        if bundle.runtime_data.receipt_key() != Some(&receipt_key) {
            return Err(ClientError::KeyNotBound);
        }
        Ok(AgentSession {
            bundle_json: s.evidence_bundle_json,
            bundle,
            ear: (!s.ear.is_empty()).then_some(s.ear),
            receipt_key,
            tee_key,
            simulated: s.simulated,
        })
    }

    /// One unary generation, its receipt checked.
    pub async fn generate(
        &mut self,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<ClientGeneration, ClientError> {
        let receipt_key = self.session().await?.receipt_key;
        let out = self
            .inner
            .generate(request(prompt, max_tokens))
            .await?
            .into_inner();
        accept(
            prompt,
            out.text,
            out.token_ids,
            out.receipt,
            &out.salt,
            receipt_key,
        )
    }

    /// A streamed generation: `on_text` gets each chunk's text as it arrives;
    /// the result is returned only once the final receipt checks out.
    pub async fn generate_stream(
        &mut self,
        prompt: &str,
        max_tokens: u32,
        mut on_text: impl FnMut(&str),
    ) -> Result<ClientGeneration, ClientError> {
        let receipt_key = self.session().await?.receipt_key;
        let mut stream = self
            .inner
            .generate_stream(request(prompt, max_tokens))
            .await?
            .into_inner();
        let mut text = String::new();
        let mut token_ids = Vec::new();
        let mut last: Option<GenerateChunk> = None;
        while let Some(chunk) = stream.message().await? {
            if last.is_some() {
                return Err(stream_error("a chunk after the one with the receipt"));
            }
            if !chunk.receipt.is_empty() {
                if !chunk.text.is_empty() || !chunk.token_ids.is_empty() {
                    return Err(stream_error("the receipt chunk also carries output"));
                }
                last = Some(chunk);
                continue;
            }
            if chunk.token_ids.len() != 1 || !chunk.salt.is_empty() {
                return Err(stream_error(&format!(
                    "a chunk with {} token ids and {} salt bytes, expected 1 and 0",
                    chunk.token_ids.len(),
                    chunk.salt.len()
                )));
            }
            on_text(&chunk.text);
            text.push_str(&chunk.text);
            token_ids.extend(chunk.token_ids);
        }
        let last = last.ok_or_else(|| stream_error("it ended without a receipt"))?;
        accept(
            prompt,
            text,
            token_ids,
            last.receipt,
            &last.salt,
            receipt_key,
        )
    }
}

fn request(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: String::new(),
        prompt: prompt.to_owned(),
        max_tokens,
    }
}

fn stream_error(reason: &str) -> ClientError {
    ClientError::Stream {
        reason: reason.to_owned(),
    }
}

/// The checks of the module docs, over what was received.
fn accept(
    prompt: &str,
    text: String,
    token_ids: Vec<u32>,
    receipt: String,
    salt: &[u8],
    receipt_key: Value,
) -> Result<ClientGeneration, ClientError> {
    let salt = <[u8; 32]>::try_from(salt)
        .map(Salt::new)
        .map_err(|_| ClientError::Malformed {
            what: "salt",
            reason: format!("{} bytes, expected 32", salt.len()),
        })?;
    let claims = verify(&receipt, &receipt_key)?;
    claims.check_commitments(&salt, prompt.as_bytes(), text.as_bytes())?;
    if claims.policy_decision.status == DecisionStatus::Deny {
        return Err(ClientError::Malformed {
            what: "receipt",
            reason: "output served with a deny receipt".into(),
        });
    }
    if claims.generation.output_tokens != u32::try_from(token_ids.len()).ok() {
        return Err(ClientError::Malformed {
            what: "token ids",
            reason: format!(
                "{} received, the receipt says {:?}",
                token_ids.len(),
                claims.generation.output_tokens
            ),
        });
    }
    Ok(ClientGeneration {
        text,
        token_ids,
        receipt,
        salt,
        receipt_key,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Agent, ModelKind};
    use crate::infer::tiny::{TINY_GGUF_NAME, tiny_llama_gguf};
    use crate::model::{Progress, load_and_hash};
    use crate::session::EvidenceSource;

    fn agent() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TINY_GGUF_NAME), tiny_llama_gguf(7).unwrap()).unwrap();
        let model = load_and_hash(dir.path(), Progress::Silent).unwrap();
        let source = EvidenceSource::DangerSimulate {
            tee: attestor::evidence::Tee::Snp,
            gpus: 1,
            seed: attestor::sim::SimSeed::DEFAULT,
        };
        Agent::start(&model, ModelKind::Generate, &source).unwrap()
    }

    #[test]
    fn accept_checks_signature_commitments_count_and_decision() {
        let agent = agent();
        let key = agent.receipt_jwk();
        let out = agent.generate("", "hello there", 6).unwrap();
        let salt = out.salt.as_bytes().to_vec();
        let (text, ids, receipt) = (
            out.output.text.clone(),
            out.output.token_ids.clone(),
            out.receipt.compact.clone(),
        );
        let ok = accept(
            "hello there",
            text.clone(),
            ids.clone(),
            receipt.clone(),
            &salt,
            key.clone(),
        )
        .unwrap();
        assert_eq!(ok.claims.generation.output_tokens, Some(6));

        let tampered = accept(
            "hello there",
            format!("{text}!"),
            ids.clone(),
            receipt.clone(),
            &salt,
            key.clone(),
        );
        assert!(matches!(
            tampered,
            Err(ClientError::Receipt(
                ReceiptError::OutputDigestMismatch { .. }
            ))
        ));
        let other_prompt = accept(
            "hello",
            text.clone(),
            ids.clone(),
            receipt.clone(),
            &salt,
            key.clone(),
        );
        assert!(matches!(
            other_prompt,
            Err(ClientError::Receipt(
                ReceiptError::InputCommitmentMismatch { .. }
            ))
        ));
        let short_salt = accept(
            "hello there",
            text.clone(),
            ids.clone(),
            receipt.clone(),
            &salt[..31],
            key.clone(),
        );
        assert!(matches!(
            short_salt,
            Err(ClientError::Malformed { what: "salt", .. })
        ));
        let dropped = accept(
            "hello there",
            text.clone(),
            ids[1..].to_vec(),
            receipt.clone(),
            &salt,
            key.clone(),
        );
        assert!(matches!(
            dropped,
            Err(ClientError::Malformed {
                what: "token ids",
                ..
            })
        ));
        let other_key = accept(
            "hello there",
            text,
            ids,
            receipt,
            &salt,
            agent_key_of_another_session(),
        );
        assert!(matches!(other_key, Err(ClientError::Receipt(_))));

        // A deny receipt never passes as a served generation.
        let refusal = agent.generate("", "", 3).unwrap_err();
        let (deny, deny_salt) = *refusal.receipt.unwrap();
        let denied = accept(
            "",
            refusal.message,
            Vec::new(),
            deny.compact,
            deny_salt.as_bytes(),
            key,
        );
        assert!(matches!(
            denied,
            Err(ClientError::Malformed {
                what: "receipt",
                ..
            })
        ));
    }

    fn agent_key_of_another_session() -> Value {
        attestor::receipt::ReceiptKey::generate().public_jwk()
    }

    #[test]
    fn a_status_keeps_its_deny_receipt() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(RECEIPT_METADATA, "a.b.c".parse().unwrap());
        metadata.insert(SALT_METADATA, "00ff".parse().unwrap());
        let status =
            tonic::Status::with_metadata(tonic::Code::InvalidArgument, "prompt is empty", metadata);
        let ClientError::Refused {
            code,
            message,
            deny_receipt,
            deny_salt,
        } = ClientError::from(status)
        else {
            panic!("not a refusal")
        };
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert_eq!(message, "prompt is empty");
        assert_eq!(deny_receipt.as_deref(), Some("a.b.c"));
        assert_eq!(deny_salt.as_deref(), Some("00ff"));
        let plain = ClientError::from(tonic::Status::internal("x"));
        assert!(matches!(
            plain,
            ClientError::Refused {
                deny_receipt: None,
                deny_salt: None,
                ..
            }
        ));
    }
}
