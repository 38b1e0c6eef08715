//! The serving agent and its gRPC service over an in-memory duplex (no
//! ports), with the tiny generated models; and the one-shot CLI.

use std::fs;
use std::sync::Arc;

use attestor::receipt::{DecisionStatus, ReceiptClaims, Salt, verify, verify_chain};
use guest_agent::agent::{
    Agent, AgentConfig, ModelKind, RefusalKind, embed_request_bytes, embed_response_bytes,
};
use guest_agent::infer::tiny::{TINY_GGUF_NAME, tiny_bert_files, tiny_llama_gguf};
use guest_agent::model::{LoadedModel, Progress, load_and_hash};
use guest_agent::service::{AgentService, RECEIPT_METADATA, SALT_METADATA};
use guest_agent::session::EvidenceSource;
use hyper_util::rt::TokioIo;
use proto::v1::guest_agent_client::GuestAgentClient;
use proto::v1::guest_agent_server::GuestAgentServer;
use proto::v1::{EmbedRequest, GenerateRequest, HealthRequest, SessionRequest};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Server};

fn simulate() -> EvidenceSource {
    EvidenceSource::DangerSimulate {
        tee: attestor::evidence::Tee::Snp,
        gpus: 1,
        seed: attestor::sim::SimSeed::DEFAULT,
    }
}

fn write_files(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

fn tiny_llama_dir() -> tempfile::TempDir {
    write_files(&[(TINY_GGUF_NAME, tiny_llama_gguf(7).unwrap())])
}

fn load(dir: &tempfile::TempDir) -> LoadedModel {
    load_and_hash(dir.path(), Progress::Silent).unwrap()
}

fn generate_agent() -> Arc<Agent> {
    let dir = tiny_llama_dir();
    Arc::new(Agent::start(&load(&dir), ModelKind::Generate, &simulate()).unwrap())
}

fn embed_agent() -> Arc<Agent> {
    let dir = write_files(&tiny_bert_files(3).unwrap());
    Arc::new(Agent::start(&load(&dir), ModelKind::Embed, &simulate()).unwrap())
}

/// A client connected to the service over `tokio::io::duplex`.
async fn client(agent: Arc<Agent>) -> GuestAgentClient<Channel> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        Server::builder()
            .add_service(GuestAgentServer::new(AgentService::new(agent)))
            .serve_with_incoming(tokio_stream::iter(vec![Ok::<_, std::io::Error>(server_io)]))
            .await
    });
    let mut client_io = Some(client_io);
    let channel = Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let io = client_io.take();
            async move {
                io.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("duplex already taken"))
            }
        }))
        .await
        .unwrap();
    GuestAgentClient::new(channel)
}

fn salt_of(bytes: &[u8]) -> Salt {
    Salt::new(bytes.try_into().unwrap())
}

fn gen_req(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: String::new(),
        prompt: prompt.into(),
        max_tokens,
    }
}

/// The deny receipt a refused call carries in its status metadata, verified.
fn deny_receipt(status: &tonic::Status, jwk: &Value, request: &[u8]) -> ReceiptClaims {
    let receipt = status
        .metadata()
        .get(RECEIPT_METADATA)
        .expect("deny receipt in metadata")
        .to_str()
        .unwrap();
    let salt = status
        .metadata()
        .get(SALT_METADATA)
        .unwrap()
        .to_str()
        .unwrap();
    let claims = verify(receipt, jwk).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Deny);
    assert_eq!(claims.generation.output_tokens, None);
    claims
        .check_commitments(
            &Salt::from_hex(salt).unwrap(),
            request,
            status.message().as_bytes(),
        )
        .unwrap();
    assert!(
        claims.allowed_claim.contains("refused"),
        "{}",
        claims.allowed_claim
    );
    claims
}

#[tokio::test]
async fn generate_receipts_verify_commit_and_chain() {
    let agent = generate_agent();
    let jwk = agent.receipt_jwk();
    let mut c = client(Arc::clone(&agent)).await;

    let first = c
        .generate(gen_req("the sea", 5))
        .await
        .unwrap()
        .into_inner();
    let claims = verify(&first.receipt, &jwk).unwrap();
    claims
        .check_commitments(&salt_of(&first.salt), b"the sea", first.text.as_bytes())
        .unwrap();
    // The wrong salt or other request bytes do not check.
    assert!(
        claims
            .check_commitments(&Salt::random(), b"the sea", first.text.as_bytes())
            .is_err()
    );
    assert!(
        claims
            .check_commitments(&salt_of(&first.salt), b"the sea!", first.text.as_bytes())
            .is_err()
    );
    assert_eq!(claims.seq, 0);
    assert_eq!(claims.prev, None);
    assert_eq!(claims.policy_decision.status, DecisionStatus::Unattested);
    assert!(claims.session.simulated);
    assert!(claims.allowed_claim.contains("SIMULATED"));
    assert_eq!(claims.session.ear_digest, None);
    assert_eq!(
        claims.session.evidence_digest.0,
        agent.bundle().digest(),
        "receipt points to the session's evidence"
    );
    assert_eq!(&claims.model_commitment, agent.model_commitment());
    assert_eq!(claims.generation.max_tokens, 5);
    assert_eq!(
        claims.generation.output_tokens,
        Some(u32::try_from(first.token_ids.len()).unwrap())
    );
    assert_eq!(claims.runtime.compute_path["device"], "cpu");
    assert!(!first.token_ids.is_empty());

    let second = c
        .generate(gen_req("the sea", 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.token_ids, first.token_ids, "greedy is deterministic");
    assert_ne!(second.salt, first.salt, "fresh salt per inference");
    let chain = verify_chain(&[&first.receipt, &second.receipt], &jwk).unwrap();
    assert_eq!(chain[1].seq, 1);
    // Out of order, the chain check fails.
    assert!(verify_chain(&[&second.receipt, &first.receipt], &jwk).is_err());
    // Another session's key does not verify.
    assert!(verify(&first.receipt, &generate_agent().receipt_jwk()).is_err());
}

#[tokio::test]
async fn bad_generate_requests_get_status_and_deny_receipt() {
    let agent = generate_agent();
    let jwk = agent.receipt_jwk();
    let mut c = client(Arc::clone(&agent)).await;

    let empty = c.generate(gen_req("", 5)).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert_eq!(deny_receipt(&empty, &jwk, b"").seq, 0);

    let too_many = c
        .generate(gen_req("hi", guest_agent::infer::MAX_NEW_TOKENS + 1))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(
        too_many.message().contains("max_tokens"),
        "{}",
        too_many.message()
    );
    assert_eq!(deny_receipt(&too_many, &jwk, b"hi").seq, 1);

    let unknown = c
        .generate(GenerateRequest {
            model: "gpt-9".into(),
            prompt: "hi".into(),
            max_tokens: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    deny_receipt(&unknown, &jwk, b"hi");

    // The stream refuses the same way, before any chunk.
    let streamed = c.generate_stream(gen_req("", 5)).await.unwrap_err();
    assert_eq!(streamed.code(), tonic::Code::InvalidArgument);
    deny_receipt(&streamed, &jwk, b"");

    // Asking the generator to embed is refused too.
    let wrong = c
        .embed(EmbedRequest {
            model: String::new(),
            texts: vec!["a".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::FailedPrecondition);
    deny_receipt(&wrong, &jwk, br#"["a"]"#);

    // The model served: named by its commitment it is accepted.
    let ok = c
        .generate(GenerateRequest {
            model: agent.model_commitment().to_string(),
            prompt: "hi".into(),
            max_tokens: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verify(&ok.receipt, &jwk).unwrap().seq, 5);
}

#[tokio::test]
async fn generate_stream_ends_with_the_receipt() {
    use tokio_stream::StreamExt as _;
    let agent = generate_agent();
    let jwk = agent.receipt_jwk();
    let mut c = client(agent).await;
    let mut stream = c
        .generate_stream(gen_req("once upon", 4))
        .await
        .unwrap()
        .into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        text.push_str(&chunk.text);
        if !chunk.receipt.is_empty() {
            last = Some((chunk.receipt, chunk.salt));
        }
    }
    let (receipt, salt) = last.expect("receipt in the last chunk");
    verify(&receipt, &jwk)
        .unwrap()
        .check_commitments(&salt_of(&salt), b"once upon", text.as_bytes())
        .unwrap();
}

#[tokio::test]
async fn embed_session_and_health() {
    let agent = embed_agent();
    let jwk = agent.receipt_jwk();
    let mut c = client(Arc::clone(&agent)).await;
    let texts = vec!["the quick fox".to_owned(), "a lazy dog".to_owned()];
    let out = c
        .embed(EmbedRequest {
            model: String::new(),
            texts: texts.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.embeddings.len(), 2);
    let vectors: Vec<Vec<f32>> = out.embeddings.into_iter().map(|e| e.values).collect();
    let claims = verify(&out.receipt, &jwk).unwrap();
    claims
        .check_commitments(
            &salt_of(&out.salt),
            &embed_request_bytes(&texts),
            &embed_response_bytes(&vectors),
        )
        .unwrap();
    assert_eq!(
        embed_request_bytes(&texts),
        br#"["the quick fox","a lazy dog"]"#
    );

    let empty = c
        .embed(EmbedRequest {
            model: String::new(),
            texts: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    deny_receipt(&empty, &jwk, b"[]");

    let session = c.session(SessionRequest {}).await.unwrap().into_inner();
    assert!(session.simulated);
    assert!(session.ear.is_empty());
    let bundle =
        attestor::evidence::EvidenceBundle::from_json(session.evidence_bundle_json.as_bytes())
            .unwrap();
    assert_eq!(bundle.digest(), agent.bundle().digest());
    assert_eq!(claims.session.evidence_digest.0, bundle.digest());
    let receipt_key: Value = serde_json::from_str(&session.receipt_key_jwk).unwrap();
    assert_eq!(receipt_key, jwk);
    assert_eq!(bundle.runtime_data.receipt_key(), Some(&jwk));
    let tee_key: Value = serde_json::from_str(&session.tee_key_jwk).unwrap();
    assert_eq!(bundle.runtime_data.tee_pubkey(), Some(&tee_key));
    assert!(tee_key.get("d").is_none() && receipt_key.get("d").is_none());
    assert_eq!(
        session.runtime_data_json.as_bytes(),
        bundle.runtime_data.canonical()
    );
    assert_eq!(
        bundle.runtime_data.model(),
        Some(agent.model_commitment().to_string().as_str())
    );

    let health = c.health(HealthRequest {}).await.unwrap().into_inner();
    assert!(health.serving);
}

#[test]
fn agent_refusal_kinds_without_grpc() {
    let agent = generate_agent();
    let refusal = agent.generate("", "hi", 0).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::InvalidInput);
    let (receipt, _) = *refusal.receipt.unwrap();
    assert_eq!(receipt.claims.policy_decision.status, DecisionStatus::Deny);
}

#[test]
fn config_is_strict_toml() {
    let ok = AgentConfig::from_toml(
        "listen = \"127.0.0.1:50051\"\nmodel = \"/m\"\nkind = \"embed\"\ndanger_simulate = true\n",
    )
    .unwrap();
    assert_eq!(ok.kind, ModelKind::Embed);
    assert!(ok.danger_simulate);
    let defaulted =
        AgentConfig::from_toml("listen = \"[::1]:1\"\nmodel = \"/m\"\nkind = \"generate\"\n")
            .unwrap();
    assert!(!defaulted.danger_simulate);
    let unknown = AgentConfig::from_toml(
        "listen = \"x\"\nmodel = \"/m\"\nkind = \"generate\"\nsimulate = true\n",
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("simulate"), "{unknown}");
    assert!(AgentConfig::from_toml("listen = \"x\"\nmodel = \"/m\"\nkind = \"chat\"\n").is_err());
}

#[test]
fn cli_generate_json_receipt_verifies() {
    let dir = tiny_llama_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guest-agent"))
        .args([
            "generate",
            "--json",
            "--danger-simulate",
            "--max-tokens",
            "4",
            "--model",
        ])
        .arg(dir.path())
        .arg("hello there")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let obj = json.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["receipt", "receipt_key", "salt", "text", "token_ids"]
    );
    let claims = verify(json["receipt"].as_str().unwrap(), &json["receipt_key"]).unwrap();
    claims
        .check_commitments(
            &Salt::from_hex(json["salt"].as_str().unwrap()).unwrap(),
            b"hello there",
            json["text"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
    assert!(claims.session.simulated);
    assert!(claims.allowed_claim.starts_with("SIMULATED"));

    // An empty prompt fails with exit code 2 and no JSON on stdout.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_guest-agent"))
        .args(["generate", "--json", "--danger-simulate", "--model"])
        .arg(dir.path())
        .arg("")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
}

#[test]
fn cli_embed_json_and_serve_config_errors() {
    let dir = write_files(&tiny_bert_files(3).unwrap());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guest-agent"))
        .args(["embed", "--json", "--danger-simulate", "--model"])
        .arg(dir.path())
        .args(["one text", "two"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vectors: Vec<Vec<f32>> = serde_json::from_value(json["embedding"].clone()).unwrap();
    assert_eq!(vectors.len(), 2);
    let claims = verify(json["receipt"].as_str().unwrap(), &json["receipt_key"]).unwrap();
    claims
        .check_commitments(
            &Salt::from_hex(json["salt"].as_str().unwrap()).unwrap(),
            &embed_request_bytes(&["one text".to_owned(), "two".to_owned()]),
            &embed_response_bytes(&vectors),
        )
        .unwrap();

    // serve refuses a config with an unknown key before loading anything.
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nmodel = \"/nonexistent\"\nkind = \"embed\"\nport = 1\n",
    )
    .unwrap();
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_guest-agent"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("port"));
}

#[test]
fn unknown_model_name_is_bounded_in_the_refusal() {
    let agent = generate_agent();
    let long = "m".repeat(100_000);
    let refusal = agent.generate(&long, "hi", 2).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::UnknownModel);
    assert!(refusal.message.len() < 400, "{}", refusal.message.len());
    assert!(refusal.receipt.is_some());
}
