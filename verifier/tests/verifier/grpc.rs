//! The gRPC service `attestor.v1.Verifier` and the KBS HTTP routes on one
//! real loopback port, a tonic client and reqwest against it, the reviewer CLI
//! over `--server`, and `audit reappraise` over the data directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use attestor::binding::RuntimeData;
use attestor::evidence::EvidenceBundle;
use attestor::receipt::{
    AgentBuild, ClaimFacts, DecisionStatus, Decoding, EarStatus, Generation, PolicyDecision,
    ReceiptChain, ReceiptDraft, ReceiptKey, Runtime, Salt, SessionRef, Sha256Ref,
};
use attestor::sim::SimSeed;
use attestor::simulate::{EnvironmentSpec, environment};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::v1::verifier_client::VerifierClient;
use proto::v1::{
    AppraiseRequest, AppraiseResponse, AuditCheckpointRequest, AuditEntriesRequest,
    AuditInclusionProofRequest, Decision as WireDecision, VerifyReceiptRequest,
};
use serde_json::{Value, json};
use tonic::transport::Channel;
use verifier::appraise::bundle::BundleCollateral;
use verifier::audit::cli::{AuditCommand, LogSource, run_audit_to};
use verifier::audit::reappraise::ReappraiseArgs;
use verifier::broker::SqliteResourceStore;
use verifier::jwe::{self, Curve, FlattenedJwe, TeeSecretKey};
use verifier::trust::TrustRoots;

const MODEL: &str = "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";
const NONCE: &str = "cmVseWluZyBwYXJ0eSBub25jZSwgMzIgYnl0ZXMhISE=";

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn collateral() -> BundleCollateral {
    BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap()
}

fn now_unix() -> u64 {
    u64::try_from(verifier::time::UnixTime::now().0).unwrap()
}

/// A running `verifier serve` equivalent: KBS HTTP + gRPC on one port.
struct Server {
    runtime: tokio::runtime::Runtime,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(set: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let roots = TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap();
        let (broker, grpc) =
            verifier::serve::build_with_grpc(dir.path(), &policies(), set, roots, collateral())
                .unwrap();
        SqliteResourceStore::open(&dir.path().join("resources.sqlite3"))
            .unwrap()
            .put(
                "default",
                ["default", "model", "smollm2-135m-instruct"],
                b"the-model-key",
            )
            .unwrap();
        let app = verifier::grpc::with_grpc(verifier::broker::router(Arc::new(broker)), grpc);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { runtime, url, dir }
    }

    fn client(&self) -> VerifierClient<Channel> {
        self.runtime
            .block_on(VerifierClient::connect(self.url.clone()))
            .unwrap()
    }

    fn appraise(&self, bundle_json: &str, nonce: &str) -> AppraiseResponse {
        let mut c = self.client();
        self.runtime
            .block_on(c.appraise(AppraiseRequest {
                evidence_bundle_json: bundle_json.to_owned(),
                nonce: nonce.to_owned(),
            }))
            .unwrap()
            .into_inner()
    }

    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }
}

fn receipt_key() -> ReceiptKey {
    ReceiptKey::from_scalar_bytes(&[7; 48]).unwrap()
}

fn bundle(nonce: &str, tee_key: &TeeSecretKey) -> EvidenceBundle {
    let rd = RuntimeData::new(nonce, tee_key.public_jwk())
        .with_receipt_key(receipt_key().public_jwk())
        .with_model(MODEL);
    environment(
        &SimSeed::DEFAULT,
        &EnvironmentSpec::snp_h100(now_unix()),
        rd,
    )
    .unwrap()
    .bundle
}

fn codes(r: &[proto::v1::Denial]) -> Vec<&str> {
    r.iter().map(|d| d.code.as_str()).collect()
}

fn receipt(evidence: &EvidenceBundle, ear: &str) -> String {
    let salt = Salt::new([1; 32]);
    let model: Sha256Ref = MODEL.parse().unwrap();
    let allowed = attestor::receipt::allowed_claim(&ClaimFacts {
        model: &model,
        tee: Some(attestor::evidence::Tee::Snp),
        gpus: 1,
        simulated: true,
        decision: DecisionStatus::Allow,
    });
    let draft = ReceiptDraft {
        iss: "agent-test".to_owned(),
        iat: now_unix(),
        jti: "r-0".to_owned(),
        eat_nonce: None,
        session: SessionRef {
            evidence_digest: Sha256Ref(evidence.digest()),
            ear_digest: Some(Sha256Ref(attestor::digest::Sha256Digest::of(
                ear.as_bytes(),
            ))),
            ear_status: Some(EarStatus::Affirming),
            simulated: true,
        },
        model_commitment: model,
        input_commitment: attestor::receipt::commit_input(&salt, b"prompt"),
        output_digest: attestor::receipt::commit_output(&salt, b"answer"),
        generation: Generation {
            max_tokens: 16,
            decoding: Decoding::Greedy,
            input_tokens: None,
            output_tokens: None,
        },
        runtime: Runtime {
            agent: AgentBuild {
                name: "guest-agent".to_owned(),
                version: "0.1.0".to_owned(),
                build: None,
            },
            candle_version: "0.11.1".to_owned(),
            compute_path: json!({}),
        },
        verifier_policy_id: Vec::new(),
        policy_decision: PolicyDecision {
            status: DecisionStatus::Allow,
            reason: "attested".to_owned(),
        },
        allowed_claim: allowed,
        blocked_claims: attestor::receipt::blocked_claims(true),
    };
    ReceiptChain::new(receipt_key())
        .sign(draft)
        .unwrap()
        .compact
}

/// The same receipt with one claim changed and the signature kept.
fn tamper_one_claim(compact: &str) -> String {
    let parts: Vec<&str> = compact.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["jti"] = json!("r-1");
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn cli(cmd: AuditCommand) -> (ExitCode, String) {
    let mut out = Vec::new();
    let code = run_audit_to(cmd, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

fn remote(url: &str) -> LogSource {
    LogSource {
        data: None,
        server: Some(url.to_owned()),
    }
}

fn reappraise(data: &Path, n: u64, at: &str, policy: Option<&str>) -> (ExitCode, String) {
    cli(AuditCommand::Reappraise(ReappraiseArgs {
        data: data.to_owned(),
        n,
        at: Some(at.to_owned()),
        json: false,
        policy: policy.map(str::to_owned),
        policies: policies(),
        danger_simulated_roots: true,
        rims: Vec::new(),
    }))
}

#[test]
fn appraise_verify_receipt_and_read_the_log_over_grpc() {
    let server = Server::start("development");
    let tee_key = TeeSecretKey::generate(Curve::P256);
    let b = bundle(NONCE, &tee_key);

    // Development set: the simulated environment is allowed, with an EAR.
    let allowed = server.appraise(&b.to_json_pretty(), NONCE);
    assert_eq!(
        allowed.decision(),
        WireDecision::Allow,
        "{:#?}",
        allowed.denials
    );
    assert!(allowed.denials.is_empty());
    assert_eq!(allowed.ear.split('.').count(), 3);
    assert!(allowed.claims_json.contains("\"gpus\""));

    // A nonce the bundle was not made for: denied with its code and values.
    let wrong = server.appraise(&b.to_json_pretty(), "b3RoZXIgbm9uY2U=");
    assert_eq!(wrong.decision(), WireDecision::Deny);
    assert_eq!(codes(&wrong.denials), ["nonce_mismatch"]);
    assert_eq!(wrong.denials[0].expected, "b3RoZXIgbm9uY2U=");
    assert_eq!(wrong.denials[0].found, NONCE);
    assert!(wrong.ear.is_empty());

    // Malformed evidence is a logged deny, not a transport error.
    let junk = server.appraise("{\"tee\":\"snp\"}", "");
    assert_eq!(codes(&junk.denials), ["evidence_malformed"]);

    // Receipts: good, then one claim changed.
    let mut c = server.client();
    let good = receipt(&b, &allowed.ear);
    let verify = |c: &mut VerifierClient<Channel>, r: &str| {
        server
            .runtime
            .block_on(c.verify_receipt(VerifyReceiptRequest {
                receipt: r.to_owned(),
                evidence_bundle_json: b.to_json_pretty(),
                ear: allowed.ear.clone(),
                at: String::new(),
            }))
            .unwrap()
            .into_inner()
    };
    let ok = verify(&mut c, &good);
    assert_eq!(ok.decision(), WireDecision::Allow, "{:#?}", ok.denials);
    let claims: Value = serde_json::from_str(&ok.claims_json).unwrap();
    assert_eq!(claims["receipt"]["model_commitment"], MODEL);
    assert_eq!(claims["ear_checked"], true);
    let bad = verify(&mut c, &tamper_one_claim(&good));
    assert_eq!(bad.decision(), WireDecision::Deny);
    assert_eq!(codes(&bad.denials), ["receipt_invalid"]);
    assert!(bad.claims_json.is_empty());
    // A malformed time is a bad request.
    let err = server
        .runtime
        .block_on(c.verify_receipt(VerifyReceiptRequest {
            receipt: good.clone(),
            evidence_bundle_json: b.to_json_pretty(),
            ear: String::new(),
            at: "yesterday".to_owned(),
        }))
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // The log: three appraisals, in order, filtered and paged.
    let list = |c: &mut VerifierClient<Channel>, start: u64, limit: u32, decision: &str| {
        server
            .runtime
            .block_on(c.audit_entries(AuditEntriesRequest {
                start,
                limit,
                decision: decision.to_owned(),
                since: String::new(),
            }))
            .unwrap()
            .into_inner()
    };
    let all = list(&mut c, 0, 0, "");
    assert_eq!(all.tree_size, 3);
    assert_eq!(all.next_start, 3);
    let indexes: Vec<u64> = all.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert_eq!(allowed.audit_index, 0);
    assert_eq!((wrong.audit_index, junk.audit_index), (1, 2));
    let first: Value = serde_json::from_slice(&all.entries[0].entry_json).unwrap();
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["ear_status"], "affirming");
    assert!(
        first["policy_id"]
            .as_str()
            .unwrap()
            .starts_with("development/")
    );
    assert_eq!(
        first["evidence_digest"],
        attestor::digest::Sha256Digest::of(b.to_json_pretty().as_bytes()).prefixed()
    );
    let since = |c: &mut VerifierClient<Channel>, since: &str| {
        server
            .runtime
            .block_on(c.audit_entries(AuditEntriesRequest {
                since: since.to_owned(),
                ..AuditEntriesRequest::default()
            }))
            .unwrap()
            .into_inner()
            .entries
            .len()
    };
    assert_eq!(since(&mut c, "2020-01-01T00:00:00Z"), 3);
    assert_eq!(since(&mut c, "2999-01-01T00:00:00Z"), 0);
    let denies = list(&mut c, 0, 0, "deny");
    assert_eq!(
        denies.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        [1, 2]
    );
    let page = list(&mut c, 0, 1, "deny");
    assert_eq!((page.entries.len(), page.next_start), (1, 2));
    let page = list(&mut c, page.next_start, 1, "deny");
    assert_eq!(page.entries[0].index, 2);
    assert_eq!(page.next_start, 3);
    let err = server
        .runtime
        .block_on(c.audit_entries(AuditEntriesRequest {
            decision: "maybe".to_owned(),
            ..AuditEntriesRequest::default()
        }))
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // An inclusion proof, checked offline with the log key from the data dir.
    let log_key = std::fs::read_to_string(server.audit_dir().join("log_key.pub")).unwrap();
    let proof = server
        .runtime
        .block_on(c.audit_inclusion_proof(AuditInclusionProofRequest {
            index: 1,
            tree_size: 0,
        }))
        .unwrap()
        .into_inner();
    let v = verifier::audit::verify_proof(&proof.proof, log_key.trim()).unwrap();
    assert_eq!((v.index, v.tree_size), (1, 3));
    assert_eq!(
        v.entry_json.as_bytes(),
        all.entries[1].entry_json.as_slice()
    );
    assert_eq!(proof.entry_json, all.entries[1].entry_json);
    assert_eq!(proof.hashes.len(), 2);
    let cp = server
        .runtime
        .block_on(c.audit_checkpoint(AuditCheckpointRequest {}))
        .unwrap()
        .into_inner();
    assert_eq!(cp.log_key, log_key.trim());
    assert_eq!(cp.checkpoint, proof.checkpoint);
    let missing = server
        .runtime
        .block_on(c.audit_inclusion_proof(AuditInclusionProofRequest {
            index: 99,
            tree_size: 0,
        }))
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[test]
fn production_set_denies_the_simulated_environment_with_its_code() {
    let server = Server::start("production");
    let b = bundle(NONCE, &TeeSecretKey::generate(Curve::P384));
    let r = server.appraise(&b.to_json_pretty(), NONCE);
    assert_eq!(r.decision(), WireDecision::Deny);
    assert!(
        codes(&r.denials).contains(&"simulation_not_allowed"),
        "{:?}",
        codes(&r.denials)
    );
    // Genuine to its roots, refused by policy: the EAR says so.
    assert_eq!(r.ear.split('.').count(), 3);
    let entry = verifier::audit::AuditLog::open_existing(&server.audit_dir())
        .unwrap()
        .entry(r.audit_index)
        .unwrap()
        .unwrap();
    assert_eq!(entry.decision, verifier::audit::Decision::Deny);
    assert!(
        entry
            .reasons
            .iter()
            .any(|x| x.code == "simulation_not_allowed")
    );
}

#[test]
fn kbs_http_routes_work_on_the_grpc_port() {
    let server = Server::start("development");
    let http = reqwest::Client::new();
    let url = server.url.clone();
    let tee_key = TeeSecretKey::generate(Curve::P256);
    let (status, secret) = server.runtime.block_on(async {
        let auth = http
            .post(format!("{url}/kbs/v0/auth"))
            .header("content-type", "application/json")
            .body(json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(auth.status(), 200);
        let cookie = auth.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body: Value = serde_json::from_slice(&auth.bytes().await.unwrap()).unwrap();
        let nonce = body["nonce"].as_str().unwrap().to_owned();
        let v = bundle(&nonce, &tee_key).to_value();
        let attest = json!({"runtime-data": v["runtime-data"], "tee-evidence": v["tee-evidence"]});
        let r = http
            .post(format!("{url}/kbs/v0/attest"))
            .header("content-type", "application/json")
            .header("cookie", &cookie)
            .body(attest.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = http
            .get(format!(
                "{url}/kbs/v0/resource/default/model/smollm2-135m-instruct"
            ))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let secret = r.bytes().await.unwrap();

        // A refused attestation (evidence for another nonce) keeps its evidence too.
        let auth = http
            .post(format!("{url}/kbs/v0/auth"))
            .body(json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}).to_string())
            .send()
            .await
            .unwrap();
        let cookie = auth.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let r = http
            .post(format!("{url}/kbs/v0/attest"))
            .header("cookie", &cookie)
            .body(attest.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        (status, secret)
    });
    assert_eq!(status, 200);
    let jwe: FlattenedJwe = serde_json::from_slice(&secret).unwrap();
    assert_eq!(jwe::decrypt(&jwe, &tee_key).unwrap(), b"the-model-key");
    // An unknown HTTP path is a plain 404, not a gRPC answer.
    let status = server.runtime.block_on(async {
        http.get(format!("{url}/nowhere"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 404);
    // Routing is by content type: a gRPC path asked over plain HTTP is not gRPC.
    let status = server.runtime.block_on(async {
        http.post(format!("{url}/attestor.v1.Verifier/AuditCheckpoint"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 404);

    // The KBS attestation stored its evidence: re-appraise it (its TEE comes
    // from the evidence's shape, its policy set from the recorded policy ids).
    let log = verifier::audit::AuditLog::open_existing(&server.audit_dir()).unwrap();
    let (n, entry) = log
        .entries(&verifier::audit::EntryFilter::default())
        .unwrap()
        .into_iter()
        .find(|(_, e)| e.evidence_digest.is_some())
        .unwrap();
    assert_eq!(entry.decision, verifier::audit::Decision::Allow);
    let denied = log
        .entries(&verifier::audit::EntryFilter {
            decision: Some(verifier::audit::Decision::Deny),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    let (_, d) = &denied[0];
    assert_eq!(d.reasons[0].code, "nonce_mismatch");
    let digest = d.evidence_digest.as_deref().unwrap();
    let digest =
        attestor::digest::Sha256Digest::from_hex(digest.strip_prefix("sha256:").unwrap()).unwrap();
    assert!(log.evidence(&digest).unwrap().is_some());
    log.verify_all().unwrap();
    let at = entry.time.to_rfc3339();
    assert_eq!(entry.ear_status.as_deref(), Some("affirming"));
    assert!(
        entry
            .policy_id
            .as_deref()
            .unwrap()
            .starts_with("development/cpu@sha256:"),
        "{entry:#?}"
    );
    let (code, out) = reappraise(server.dir.path(), n, &at, None);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("recorded allow (affirming)"), "{out}");
    assert!(!out.contains("policy texts differ"), "{out}");
    assert!(out.contains("identical: allow (affirming)"), "{out}");
}

#[test]
fn reviewer_cli_over_the_network_and_reappraise() {
    let server = Server::start("development");
    let b = bundle(NONCE, &TeeSecretKey::generate(Curve::P256));
    let allowed = server.appraise(&b.to_json_pretty(), NONCE);
    let denied = server.appraise(&b.to_json_pretty(), "b3RoZXIgbm9uY2U=");
    assert_eq!(allowed.decision(), WireDecision::Allow);
    let url = server.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let key_file = server.audit_dir().join("log_key.pub");

    let (code, out) = cli(AuditCommand::List {
        source: remote(&url),
        decision: Some(verifier::audit::cli::DecisionArg::Deny),
        since: None,
        json: false,
    });
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("nonce_mismatch"), "{out}");

    let (code, out) = cli(AuditCommand::Show {
        source: remote(&url),
        n: denied.audit_index,
        json: true,
    });
    assert_eq!(code, ExitCode::SUCCESS);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["entry"]["reasons"][0]["code"], "nonce_mismatch");
    let (code, _) = cli(AuditCommand::Show {
        source: remote(&url),
        n: 42,
        json: false,
    });
    assert_eq!(code, ExitCode::from(1));

    let proof = dir.path().join("e1.tlog-proof");
    let (code, out) = cli(AuditCommand::Prove {
        source: remote(&url),
        n: 1,
        out: proof.clone(),
    });
    assert_eq!(code, ExitCode::SUCCESS, "{out}");

    // The whole served log hashes to the signed root.
    let verify = |proof: Option<PathBuf>, key: &Path| {
        cli(AuditCommand::Verify {
            source: remote(&url),
            proof,
            log_key: Some(key.to_owned()),
        })
    };
    let (code, out) = verify(None, &key_file);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("the 2 entries"), "{out}");

    // The log grows; the proof made at size 2 is consistent with it.
    server.appraise(&b.to_json_pretty(), NONCE);
    let (code, out) = verify(Some(proof.clone()), &key_file);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("current checkpoint (size 3"), "{out}");

    // Another key: the server's checkpoint does not verify.
    let (other, _) = verifier::audit::LogSigner::generate(verifier::audit::ORIGIN).unwrap();
    let other_key = dir.path().join("other.pub");
    std::fs::write(&other_key, other.verifier_key()).unwrap();
    let (code, out) = verify(None, &other_key);
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(out.starts_with("FAILED"), "{out}");
    // Without a trusted key, --server refuses to verify at all.
    let err = run_audit_to(
        AuditCommand::Verify {
            source: remote(&url),
            proof: None,
            log_key: None,
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("--log-key"), "{err}");

    // Re-appraisal: as of the decision, identical; after the simulated
    // certificates expire (2049-12-31), it differs with the code.
    let entry = verifier::audit::AuditLog::open_existing(&server.audit_dir())
        .unwrap()
        .entry(allowed.audit_index)
        .unwrap()
        .unwrap();
    let at = entry.time.to_rfc3339();
    let (code, out) = reappraise(server.dir.path(), allowed.audit_index, &at, None);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(
        out.contains("identical: allow (affirming), 0 reasons"),
        "{out}"
    );
    let (code, out) = reappraise(
        server.dir.path(),
        allowed.audit_index,
        "2050-06-01T00:00:00Z",
        None,
    );
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(out.contains("decision  allow -> deny"), "{out}");
    assert!(out.contains("+ cert_expired"), "{out}");
    let (code, out) = cli(AuditCommand::Reappraise(ReappraiseArgs {
        data: server.dir.path().to_owned(),
        n: allowed.audit_index,
        at: Some("2050-06-01T00:00:00Z".to_owned()),
        json: true,
        policy: None,
        policies: policies(),
        danger_simulated_roots: true,
        rims: Vec::new(),
    }));
    assert_eq!(code, ExitCode::from(1));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["identical"], false);
    assert_eq!(doc["policy_set"], "development");
    assert_eq!(doc["recorded"]["decision"], "allow");
    assert_eq!(doc["reappraised"]["decision"], "deny");
    assert!(
        doc["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "cert_expired"),
        "{doc:#}"
    );
    assert_eq!(doc["removed"], json!([]));
    // The recorded policy set wins; a contradicting flag is an error.
    let err = run_audit_to(
        AuditCommand::Reappraise(ReappraiseArgs {
            data: server.dir.path().to_owned(),
            n: allowed.audit_index,
            at: None,
            json: false,
            policy: Some("production".to_owned()),
            policies: policies(),
            danger_simulated_roots: true,
            rims: Vec::new(),
        }),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("development"), "{err}");
    // The nonce-mismatch deny: the nonce is not re-checked, so today the
    // evidence passes and the difference is shown.
    let (code, out) = reappraise(
        server.dir.path(),
        denied.audit_index,
        &at,
        Some("development"),
    );
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(out.contains("- nonce_mismatch"), "{out}");
}
