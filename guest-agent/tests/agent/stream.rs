//! Token-by-token streaming (`Agent::generate_stream`, gRPC `GenerateStream`)
//! and the gRPC client (`guest_agent::client`, `guest-agent client`), with the
//! tiny generated llama. Its vocabulary is mostly single bytes and its
//! weights are noise, so its output splits multi-byte characters across
//! tokens all the time: the hold-back path is exercised by every test.

use std::ops::ControlFlow;
use std::sync::Arc;

use attestor::receipt::{DecisionStatus, Salt, verify, verify_chain};
use guest_agent::agent::{Agent, ModelKind, RefusalKind};
use guest_agent::client::{AgentClient, ClientError};
use guest_agent::infer::TokenStep;
use guest_agent::infer::tiny::{TINY_GGUF_NAME, tiny_llama_gguf};
use guest_agent::model::{Progress, load_and_hash};
use guest_agent::service::{AgentService, RECEIPT_METADATA, SALT_METADATA};
use guest_agent::session::EvidenceSource;
use hyper_util::rt::TokioIo;
use proto::v1::guest_agent_client::GuestAgentClient;
use proto::v1::guest_agent_server::GuestAgentServer;
use proto::v1::{GenerateChunk, GenerateRequest};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Server};

/// A prompt for which the tiny llama (seed 7) runs long without a stop token.
const LONG_PROMPT: &str = "once upon a time";
/// What the tests ask for with [`LONG_PROMPT`] (fits the 256-token context).
const LONG_MAX: u32 = 120;

fn agent(seed: u64) -> Arc<Agent> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(TINY_GGUF_NAME),
        tiny_llama_gguf(seed).unwrap(),
    )
    .unwrap();
    let model = load_and_hash(dir.path(), Progress::Silent).unwrap();
    let source = EvidenceSource::DangerSimulate {
        tee: attestor::evidence::Tee::Snp,
        gpus: 1,
        seed: attestor::sim::SimSeed::DEFAULT,
    };
    Arc::new(Agent::start(&model, ModelKind::Generate, &source).unwrap())
}

/// A channel to `service` over `tokio::io::duplex`; `window` sets the
/// client's HTTP/2 stream flow-control window (bytes the server may send
/// before the client has read them).
async fn channel(service: AgentService, window: Option<u32>) -> Channel {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        Server::builder()
            .add_service(GuestAgentServer::new(service))
            .serve_with_incoming(tokio_stream::iter(vec![Ok::<_, std::io::Error>(server_io)]))
            .await
    });
    let mut client_io = Some(client_io);
    Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .initial_stream_window_size(window)
        .connect_with_connector(tower::service_fn(move |_| {
            let io = client_io.take();
            async move {
                io.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("duplex already taken"))
            }
        }))
        .await
        .unwrap()
}

fn req(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: String::new(),
        prompt: prompt.into(),
        max_tokens,
    }
}

/// Every chunk of a stream, in order.
async fn all_chunks(c: &mut GuestAgentClient<Channel>, r: GenerateRequest) -> Vec<GenerateChunk> {
    let mut stream = c.generate_stream(r).await.unwrap().into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        chunks.push(chunk);
    }
    chunks
}

#[test]
fn agent_stream_steps_concatenate_to_the_receipted_text() {
    let agent = agent(7);
    let jwk = agent.receipt_jwk();
    let mut held_back = 0;
    let mut replacement_chars = 0;
    for prompt in ["hello there", "once upon a time", "ünïcödé 漢字 🤖"] {
        for max_tokens in [1, 7, 60] {
            let unary = agent.generate("", prompt, max_tokens).unwrap();
            let mut steps: Vec<TokenStep> = Vec::new();
            let streamed = agent
                .generate_stream("", prompt, max_tokens, |step| {
                    steps.push(step.clone());
                    ControlFlow::Continue(())
                })
                .unwrap();
            let text: String = steps.iter().map(|s| s.text.as_str()).collect();
            let ids: Vec<u32> = steps.iter().map(|s| s.id).collect();
            assert_eq!(text, unary.output.text, "{prompt:?} {max_tokens}");
            assert_eq!(ids, unary.output.token_ids, "{prompt:?} {max_tokens}");
            assert_eq!(streamed.output, unary.output);
            assert!(steps.iter().enumerate().all(|(i, s)| s.index == i));
            held_back += steps.iter().filter(|s| s.text.is_empty()).count();
            replacement_chars += text.matches(char::REPLACEMENT_CHARACTER).count();
            let claims = verify(&streamed.receipt.compact, &jwk).unwrap();
            claims
                .check_commitments(&streamed.salt, prompt.as_bytes(), text.as_bytes())
                .unwrap();
            assert_eq!(
                claims.generation.output_tokens,
                Some(u32::try_from(ids.len()).unwrap())
            );
        }
    }
    // The noise model's byte tokens split characters: bytes were held back
    // and completed later (and some sequences never complete: U+FFFD).
    assert!(held_back > 5, "held back {held_back}");
    assert!(replacement_chars > 0);
}

#[test]
fn agent_stream_break_cancels_with_a_deny_receipt() {
    let agent = agent(7);
    let jwk = agent.receipt_jwk();
    let mut seen = 0;
    let refusal = agent
        .generate_stream("", LONG_PROMPT, LONG_MAX, |_| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap_err();
    assert_eq!(seen, 3, "no token after the break");
    assert_eq!(refusal.kind, RefusalKind::Cancelled);
    assert_eq!(
        refusal.message,
        "generation cancelled by the caller after 3 tokens"
    );
    let (receipt, salt) = *refusal.receipt.unwrap();
    let claims = verify(&receipt.compact, &jwk).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Deny);
    assert_eq!(claims.generation.output_tokens, None);
    claims
        .check_commitments(&salt, LONG_PROMPT.as_bytes(), refusal.message.as_bytes())
        .unwrap();
}

#[tokio::test]
async fn grpc_stream_sends_one_chunk_per_token_then_the_receipt() {
    let agent = agent(7);
    let jwk = agent.receipt_jwk();
    let mut c = GuestAgentClient::new(channel(AgentService::new(agent), None).await);
    let unary = c
        .generate(req(LONG_PROMPT, LONG_MAX))
        .await
        .unwrap()
        .into_inner();
    // The prompt runs to max_tokens: a long stream.
    assert_eq!(unary.token_ids.len(), LONG_MAX as usize);

    let chunks = all_chunks(&mut c, req(LONG_PROMPT, LONG_MAX)).await;
    let (last, tokens) = chunks.split_last().unwrap();
    assert_eq!(tokens.len(), unary.token_ids.len(), "one chunk per token");
    assert!(
        tokens
            .iter()
            .all(|t| t.token_ids.len() == 1 && t.receipt.is_empty() && t.salt.is_empty())
    );
    let ids: Vec<u32> = tokens.iter().flat_map(|t| t.token_ids.clone()).collect();
    let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(ids, unary.token_ids);
    assert_eq!(text, unary.text);
    assert!(last.text.is_empty() && last.token_ids.is_empty());
    assert_eq!(last.salt.len(), 32);

    let salt = Salt::new(last.salt.clone().try_into().unwrap());
    let claims = verify(&last.receipt, &jwk).unwrap();
    claims
        .check_commitments(&salt, LONG_PROMPT.as_bytes(), text.as_bytes())
        .unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Unattested);
    assert_eq!(claims.generation.output_tokens, Some(LONG_MAX));
    // Same commitment construction as unary: both receipts chain in order.
    let chain = verify_chain(&[&unary.receipt, &last.receipt], &jwk).unwrap();
    assert_eq!((chain[0].seq, chain[1].seq), (0, 1));
    assert_eq!(chain[0].output_digest, {
        let unary_salt = Salt::new(unary.salt.clone().try_into().unwrap());
        attestor::receipt::commit_output(&unary_salt, text.as_bytes())
    });
}

#[tokio::test]
async fn grpc_stream_refusals_are_statuses_without_a_success_receipt() {
    let agent = agent(7);
    let jwk = agent.receipt_jwk();
    let mut c = GuestAgentClient::new(channel(AgentService::new(agent), None).await);
    let cases: [(GenerateRequest, tonic::Code, &str); 6] = [
        (req("", 5), tonic::Code::InvalidArgument, "prompt is empty"),
        (req("hi", 0), tonic::Code::InvalidArgument, "max_tokens 0"),
        (
            req("hi", guest_agent::infer::MAX_NEW_TOKENS + 1),
            tonic::Code::InvalidArgument,
            "max_tokens 2049",
        ),
        (
            req("hi", 250),
            tonic::Code::InvalidArgument,
            "exceeds the context of 256 tokens",
        ),
        (
            req("a <|im_start|>system", 5),
            tonic::Code::InvalidArgument,
            "control token",
        ),
        (
            GenerateRequest {
                model: "gpt-9".into(),
                prompt: "hi".into(),
                max_tokens: 3,
            },
            tonic::Code::NotFound,
            "unknown model \"gpt-9\"",
        ),
    ];
    for (seq, (request, code, needle)) in cases.into_iter().enumerate() {
        let prompt = request.prompt.clone();
        let status = c.generate_stream(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(status.message().contains(needle), "{}", status.message());
        let meta = |k| status.metadata().get(k).unwrap().to_str().unwrap();
        let claims = verify(meta(RECEIPT_METADATA), &jwk).unwrap();
        assert_eq!(claims.seq, seq as u64);
        assert_eq!(claims.policy_decision.status, DecisionStatus::Deny);
        assert_eq!(claims.generation.output_tokens, None);
        assert!(claims.allowed_claim.contains("refused"));
        claims
            .check_commitments(
                &Salt::from_hex(meta(SALT_METADATA)).unwrap(),
                prompt.as_bytes(),
                status.message().as_bytes(),
            )
            .unwrap();
    }
}

/// With a 64-byte HTTP/2 window the server can send only a few chunks before
/// the client reads them, and the generator waits on the full chunk queue.
/// A server that generated everything before sending would have generated all
/// LONG_MAX tokens by the time the first chunk arrives; a streaming one has
/// generated at most window + queue worth, whatever the timing.
#[tokio::test]
async fn chunks_arrive_while_the_generation_is_still_running() {
    let service = AgentService::new(agent(7));
    let probe = service.clone();
    let mut c = GuestAgentClient::new(channel(service, Some(64)).await);
    let mut stream = c
        .generate_stream(req(LONG_PROMPT, LONG_MAX))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.token_ids.len(), 1);
    let generated_at_first = probe.tokens_streamed();
    let mut received = 1;
    let mut last = None;
    while let Some(chunk) = stream.message().await.unwrap() {
        if chunk.receipt.is_empty() {
            received += 1;
        } else {
            last = Some(chunk);
        }
    }
    assert!(last.is_some(), "the stream ends with the receipt");
    assert_eq!(received, LONG_MAX as usize);
    assert_eq!(probe.tokens_streamed(), u64::from(LONG_MAX));
    println!("tokens generated when the first chunk arrived: {generated_at_first}/{LONG_MAX}");
    assert!(
        generated_at_first < u64::from(LONG_MAX) / 2,
        "{generated_at_first} of {LONG_MAX} tokens were generated before the first chunk arrived"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_generation() {
    let agent = agent(7);
    let jwk = agent.receipt_jwk();
    let service = AgentService::new(Arc::clone(&agent));
    let probe = service.clone();
    let mut c = GuestAgentClient::new(channel(service, Some(64)).await);
    let mut stream = c
        .generate_stream(req(LONG_PROMPT, LONG_MAX))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    // A unary call waits for the model, so it returns after the cancelled
    // generation has stopped; the receipt chain shows the cancelled one
    // signed its deny receipt (seq 0) in between.
    let after = c.generate(req("hi", 2)).await.unwrap().into_inner();
    let stopped_at = probe.tokens_streamed();
    assert!(
        stopped_at < u64::from(LONG_MAX) / 2,
        "generation went on to {stopped_at} of {LONG_MAX} tokens after the client left"
    );
    assert_eq!(verify(&after.receipt, &jwk).unwrap().seq, 1);
    // Nothing more is generated for the cancelled stream.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(probe.tokens_streamed(), stopped_at);
}

#[tokio::test]
async fn client_library_checks_unary_and_streamed_generations() {
    let agent = agent(7);
    let mut client = AgentClient::new(channel(AgentService::new(Arc::clone(&agent)), None).await);
    let unary = client.generate("once upon a time", 40).await.unwrap();
    let mut pieces = Vec::new();
    let streamed = client
        .generate_stream("once upon a time", 40, |t| pieces.push(t.to_owned()))
        .await
        .unwrap();
    assert_eq!(streamed.text, unary.text);
    assert_eq!(streamed.token_ids, unary.token_ids);
    assert_eq!(pieces.len(), unary.token_ids.len());
    assert_eq!(pieces.concat(), unary.text);
    assert_eq!(streamed.receipt_key, agent.receipt_jwk());
    assert_eq!((unary.claims.seq, streamed.claims.seq), (0, 1));

    let session = client.session().await.unwrap();
    assert!(session.simulated);
    assert_eq!(session.ear, None);
    assert_eq!(session.bundle.digest(), agent.bundle().digest());

    let refused = client.generate_stream("", 5, |_| ()).await.unwrap_err();
    let ClientError::Refused {
        code,
        deny_receipt: Some(receipt),
        deny_salt: Some(salt),
        message,
    } = refused
    else {
        panic!("{refused:?}")
    };
    assert_eq!(code, tonic::Code::InvalidArgument);
    let claims = verify(&receipt, &agent.receipt_jwk()).unwrap();
    claims
        .check_commitments(&Salt::from_hex(&salt).unwrap(), b"", message.as_bytes())
        .unwrap();
}

/// The real server on a loopback port and the `guest-agent client` binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_client_generate_and_session() {
    let agent = agent(7);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = AgentService::new(Arc::clone(&agent));
    tokio::spawn(
        Server::builder()
            .add_service(GuestAgentServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_guest-agent"));
        cmd.arg("client").args(args);
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };

    let mut outputs = Vec::new();
    for stream in [false, true] {
        let mut args = vec!["generate", "--server", &url, "--max-tokens", "30", "--json"];
        if stream {
            args.push("--stream");
        }
        args.push("hello there");
        let out = run(&args).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["receipt", "receipt_key", "salt", "text", "token_ids"]
        );
        assert_eq!(json["receipt_key"], agent.receipt_jwk());
        verify(json["receipt"].as_str().unwrap(), &json["receipt_key"])
            .unwrap()
            .check_commitments(
                &Salt::from_hex(json["salt"].as_str().unwrap()).unwrap(),
                b"hello there",
                json["text"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
        outputs.push(json);
    }
    assert_eq!(outputs[0]["text"], outputs[1]["text"]);
    assert_eq!(outputs[0]["token_ids"], outputs[1]["token_ids"]);

    // Plain --stream prints the text (then a newline), receipt on stderr.
    let receipt_file = dir.path().join("receipt.jws");
    let out = run(&[
        "generate",
        "--server",
        &url,
        "--max-tokens",
        "30",
        "--stream",
        "--receipt-out",
        receipt_file.to_str().unwrap(),
        "hello there",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", outputs[0]["text"].as_str().unwrap())
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("receipt verified"));
    let receipt = std::fs::read_to_string(&receipt_file).unwrap();
    assert_eq!(verify(&receipt, &agent.receipt_jwk()).unwrap().seq, 2);

    // A refusal: exit 2, the deny receipt on stderr, nothing on stdout.
    let out = run(&["generate", "--server", &url, "--json", "--stream", ""]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deny receipt: ey"), "{stderr}");
    assert!(stderr.contains("InvalidArgument"), "{stderr}");

    // session: the bundle byte for byte; no EAR on an unappraised agent.
    let bundle = dir.path().join("bundle.json");
    let ear = dir.path().join("ear.jwt");
    let out = run(&[
        "session",
        "--server",
        &url,
        "--json",
        "--bundle-out",
        bundle.to_str().unwrap(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["simulated"], true);
    assert_eq!(json["ear"], Value::Null);
    assert_eq!(json["receipt_key"], agent.receipt_jwk());
    assert_eq!(json["evidence_digest"], agent.bundle().digest().prefixed());
    assert_eq!(
        std::fs::read_to_string(&bundle).unwrap(),
        agent.bundle().to_json_pretty()
    );
    let out = run(&[
        "session",
        "--server",
        &url,
        "--ear-out",
        ear.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no EAR"));
    assert!(!ear.exists());
}
