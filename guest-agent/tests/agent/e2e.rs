//! The README's demo story end to end, in one process, with the tiny
//! generated model so it runs in seconds:
//!
//! 1. the verifier / key broker (`verifier::serve::build_service`: KBS, admin
//!    API and the gRPC `Verifier` service on one loopback port, SQLite audit
//!    log, the development policy set);
//! 2. the model's weights are sealed at rest and the key goes to the broker
//!    through the authenticated admin API (the local key file is deleted);
//! 3. the agent starts on SIMULATED SEV-SNP + H100 evidence, attests through
//!    the KBS protocol, receives the key encrypted to its TEE key, decrypts,
//!    hashes and loads the model, and serves gRPC on loopback;
//! 4. a client generates; the receipt verifies offline back to the evidence
//!    and the EAR, and its commitments open with the salt;
//! 5. a second agent with a swapped model file is denied with its reason, and
//!    never sees the key;
//! 6. the reviewer reads the denial from the audit log over gRPC and checks
//!    its inclusion proof offline against the log key;
//!
//! plus the production policy set refusing the same simulated environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use attestor::receipt::{DecisionStatus, Salt, commit_input, commit_output};
use attestor::sealed::SealKey;
use attestor::sim::SimSeed;
use guest_agent::agent::{ModelKind, OnNotAffirming, VerifierConfig};
use guest_agent::infer::tiny::{TINY_GGUF_NAME, tiny_llama_gguf};
use guest_agent::kbs::{StartError, start_attested_agent};
use guest_agent::model::sealed::seal_folder;
use guest_agent::model::{Progress, load_and_hash};
use guest_agent::session::EvidenceSource;
use proto::v1::guest_agent_client::GuestAgentClient;
use proto::v1::guest_agent_server::GuestAgentServer;
use proto::v1::verifier_client::VerifierClient;
use proto::v1::{
    AuditEntriesRequest, AuditInclusionProofRequest, GenerateRequest, HealthRequest, SessionRequest,
};
use verifier::appraise::bundle::{BundleCollateral, Verifier};
use verifier::policy::{PolicySet, PolicySetName};
use verifier::result::VerifierId;
use verifier::serve::{AdminKey, ServeOptions, build_service};
use verifier::time::UnixTime;
use verifier::trust::TrustRoots;

/// The reference SmolLM2 commitment the shipped reference values name.
const REFERENCE_MODEL: &str =
    "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";
const KEY_RESOURCE: &str = "default/model/smollm2-135m-instruct";
const PROMPT: &str = "What is a confidential VM?";

fn simulated() -> EvidenceSource {
    EvidenceSource::DangerSimulate {
        tee: attestor::evidence::Tee::Snp,
        gpus: 1,
        seed: SimSeed::DEFAULT,
    }
}

/// A copy of `policies/` whose reference values name `model` instead of the
/// reference SmolLM2, as an operator would register the model they serve.
fn policies_for(model: &str, dst: &Path) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for sub in ["development", "production", "reference"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace(REFERENCE_MODEL, model);
            std::fs::write(dst.join(sub).join(path.file_name().unwrap()), text).unwrap();
        }
    }
}

/// The verifier as `verifier serve --dev` runs it (or with the production
/// set), on 127.0.0.1:0; returns its URL.
async fn start_verifier(data: &Path, policies: &Path, set: PolicySetName) -> String {
    let development = set == PolicySetName::Development;
    let options = ServeOptions {
        dev: development,
        listen: "127.0.0.1:0".parse().unwrap(),
        data: data.to_owned(),
        policies: policies.to_owned(),
        policy_set: set,
        danger_simulated_roots: development,
        admin: if development {
            AdminKey::DevGenerated
        } else {
            AdminKey::DenyAll
        },
        collateral: data.join("collateral"),
        ear_ttl_secs: 300,
    };
    let service = build_service(&options).unwrap();
    let listener = tokio::net::TcpListener::bind(options.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = service.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `verifier resource put --server URL --admin-key FILE PATH FILE`, over HTTP.
async fn admin_put(url: &str, admin_key: &Path, resource: &str, value: Vec<u8>) {
    let pem = std::fs::read_to_string(admin_key).unwrap();
    let key = verifier::admin::token::read_signing_key(&pem).unwrap();
    let token = verifier::admin::token::mint(&key, UnixTime::now(), Some("e2e-operator"));
    let answer = reqwest::Client::new()
        .post(format!("{url}/kbs/v0/resource/{resource}"))
        .bearer_auth(token)
        .body(value)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

fn agent_config(url: &str, data: &Path, model_key: Option<&str>) -> VerifierConfig {
    VerifierConfig {
        url: url.to_owned(),
        ear_key: data.join("ear_key.jwk"),
        model_key: model_key.map(str::to_owned),
        refresh_secs: 300,
        on_not_affirming: OnNotAffirming::Refuse,
    }
}

/// The reviewer's own verifier (development roots and policies), trusting
/// the broker's published EAR key.
fn reviewer(data: &Path, policies: &Path) -> Verifier {
    let jwk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("ear_key.jwk")).unwrap()).unwrap();
    // The public members only (the file also names `kid`, `alg` and `use`).
    let public =
        serde_json::json!({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]});
    let ear_key = p384::PublicKey::from_jwk_str(&public.to_string()).unwrap();
    Verifier::new(
        TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap(),
        PolicySet::load(policies, "development").unwrap(),
        p384::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        VerifierId {
            developer: "e2e reviewer".into(),
            build: "test".into(),
        },
        300,
    )
    .with_ear_key(ear_key.into())
}

fn simulated_rims() -> BundleCollateral {
    BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap()
}

fn receipt_claims(jws: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jws.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A working folder holding the tiny model (`model/`) and a copy of the
/// policies that registers its commitment (`policies/`).
fn tiny_model_registered() -> (tempfile::TempDir, PathBuf, String, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("model");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join(TINY_GGUF_NAME), tiny_llama_gguf(7).unwrap()).unwrap();
    let commitment = load_and_hash(&plain, Progress::Silent)
        .unwrap()
        .commitment
        .to_string();
    let policies = work.path().join("policies");
    policies_for(&commitment, &policies);
    (work, plain, commitment, policies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_model_released_only_after_attestation_and_every_decision_is_reviewable() {
    let (work, plain, commitment, policies) = tiny_model_registered();

    // 1. The verifier / key broker.
    let data = work.path().join("verifier");
    let url = start_verifier(&data, &policies, PolicySetName::Development).await;

    // 2. Seal the weights; only the broker keeps the key.
    let sealed = work.path().join("sealed");
    let key = SealKey::generate();
    let manifest =
        seal_folder(&plain, &sealed, &key, KEY_RESOURCE, Progress::Silent).expect("seal");
    assert_eq!(manifest.model_commitment.to_string(), commitment);
    admin_put(
        &url,
        &data.join("admin-key.pem"),
        KEY_RESOURCE,
        key.to_jwk_bytes(),
    )
    .await;
    drop(key);
    let sealed_bytes = std::fs::read(sealed.join(format!("{TINY_GGUF_NAME}.sealed"))).unwrap();
    let plain_bytes = std::fs::read(plain.join(TINY_GGUF_NAME)).unwrap();
    assert!(
        !sealed_bytes
            .windows(64)
            .any(|w| w == &plain_bytes[plain_bytes.len() / 2..plain_bytes.len() / 2 + 64]),
        "the sealed file must not hold the weights in clear"
    );

    // 3. The agent attests, receives the key, opens and loads the model.
    let (agent, _attester) = start_attested_agent(
        &agent_config(&url, &data, None),
        &sealed,
        ModelKind::Generate,
        simulated(),
        Progress::Silent,
    )
    .await
    .expect("the development broker releases the model key to the simulated TEE");
    assert_eq!(agent.model_commitment().to_string(), commitment);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_addr = listener.local_addr().unwrap();
    let service = guest_agent::service::AgentService::new(Arc::new(agent));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(GuestAgentServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    // 4. A client generates over gRPC and keeps what it needs to check later.
    let mut client = GuestAgentClient::connect(format!("http://{agent_addr}"))
        .await
        .unwrap();
    assert!(
        client
            .health(HealthRequest {})
            .await
            .unwrap()
            .into_inner()
            .serving
    );
    let answer = client
        .generate(GenerateRequest {
            model: String::new(),
            prompt: PROMPT.into(),
            max_tokens: 8,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.token_ids.len(), 8);
    let session = client
        .session(SessionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(session.simulated);
    assert!(
        !session.ear.is_empty(),
        "an attested agent hands out its EAR"
    );
    let bundle =
        attestor::evidence::EvidenceBundle::from_json(session.evidence_bundle_json.as_bytes())
            .unwrap();

    let claims = receipt_claims(&answer.receipt);
    assert_eq!(claims["policy_decision"]["status"], "allow", "{claims:#}");
    let verified = reviewer(&data, &policies)
        .verify_receipt(
            &answer.receipt,
            &bundle,
            &simulated_rims(),
            Some(&session.ear),
            UnixTime::now(),
        )
        .expect("every link from the receipt to the evidence and the EAR holds");
    assert!(verified.ear.is_some());
    assert_eq!(verified.receipt.model_commitment.to_string(), commitment);
    assert_eq!(
        verified.receipt.policy_decision.status,
        DecisionStatus::Allow
    );
    // The salted commitments open on exactly the prompt and the text.
    let salt = Salt::new(answer.salt.as_slice().try_into().unwrap());
    assert_eq!(
        verified.receipt.input_commitment,
        commit_input(&salt, PROMPT.as_bytes())
    );
    assert_eq!(
        verified.receipt.output_digest,
        commit_output(&salt, answer.text.as_bytes())
    );
    assert_ne!(
        verified.receipt.output_digest,
        commit_output(&salt, format!("{} ", answer.text).as_bytes()),
        "a changed answer does not open the commitment"
    );
    assert!(!verified.receipt.blocked_claims.is_empty());
    // The same receipt with another session's EAR does not verify.
    let mut other_ear = session.ear.clone();
    other_ear.push('A');
    assert!(
        reviewer(&data, &policies)
            .verify_receipt(
                &answer.receipt,
                &bundle,
                &simulated_rims(),
                Some(&other_ear),
                UnixTime::now(),
            )
            .is_err()
    );

    // 5. A second agent with a swapped model file asks for the key: denied.
    let swapped = work.path().join("swapped");
    std::fs::create_dir(&swapped).unwrap();
    let mut bytes = plain_bytes.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(swapped.join(TINY_GGUF_NAME), bytes).unwrap();
    let swapped_commitment = load_and_hash(&swapped, Progress::Silent)
        .unwrap()
        .commitment
        .to_string();
    let refused = start_attested_agent(
        &agent_config(&url, &data, Some(KEY_RESOURCE)),
        &swapped,
        ModelKind::Generate,
        simulated(),
        Progress::Silent,
    )
    .await;
    let Err(StartError::Kbs(err)) = refused else {
        panic!("a swapped model must be denied by the broker");
    };
    let problem = err.problem().expect("an RFC 7807 denial");
    assert_eq!(problem.status, 401);
    assert_eq!(problem.codes(), vec!["model_mismatch"], "{problem:?}");

    // 6. The reviewer finds the denial in the log and proves its inclusion.
    let mut reviewer_rpc = VerifierClient::connect(url.clone()).await.unwrap();
    let denials = reviewer_rpc
        .audit_entries(AuditEntriesRequest {
            start: 0,
            limit: 100,
            decision: "deny".into(),
            since: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let [denial] = denials.entries.as_slice() else {
        panic!("exactly one denial expected: {:?}", denials.entries);
    };
    let entry: serde_json::Value = serde_json::from_slice(&denial.entry_json).unwrap();
    assert_eq!(entry["reasons"][0]["code"], "model_mismatch", "{entry:#}");
    let found = entry["reasons"][0]["found"].as_str().unwrap();
    assert!(
        found.contains(&swapped_commitment) && !found.contains(&commitment),
        "the reason carries the swapped model's commitment: {found}"
    );
    let proof = reviewer_rpc
        .audit_inclusion_proof(AuditInclusionProofRequest {
            index: denial.index,
            tree_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let log_key = std::fs::read_to_string(data.join("audit").join("log_key.pub")).unwrap();
    let proven = verifier::audit::verify_proof(&proof.proof, &log_key).unwrap();
    assert_eq!(proven.index, denial.index);
    assert_eq!(proven.entry_json.as_bytes(), denial.entry_json.as_slice());
    // Every decision is there: the allowed appraisal and key release too.
    let all = reviewer_rpc
        .audit_entries(AuditEntriesRequest {
            start: 0,
            limit: 100,
            decision: "allow".into(),
            since: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<String> = all
        .entries
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.entry_json).unwrap();
            v["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(kinds.iter().any(|k| k == "resource"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "admin"), "{kinds:?}");
    // A proof does not verify under another log's key.
    let other_log = tempfile::tempdir().unwrap();
    let other = verifier::audit::AuditLog::open(other_log.path()).unwrap();
    assert!(verifier::audit::verify_proof(&proof.proof, other.verifier_key()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_policy_denies_the_simulated_environment() {
    let (work, plain, _commitment, policies) = tiny_model_registered();
    let data = work.path().join("verifier");
    let url = start_verifier(&data, &policies, PolicySetName::Production).await;
    let refused = start_attested_agent(
        &agent_config(&url, &data, Some(KEY_RESOURCE)),
        &plain,
        ModelKind::Generate,
        simulated(),
        Progress::Silent,
    )
    .await;
    let Err(StartError::Kbs(err)) = refused else {
        panic!("the production policy must refuse simulated evidence");
    };
    let problem = err.problem().expect("an RFC 7807 denial");
    // `verifier serve` without --dev trusts the vendors' roots only: the
    // simulator's AMD and NVIDIA chains are refused before any policy runs
    // (the production policy's own `simulation_not_allowed` is tested with the
    // simulator's roots in the kbs and verifier policy tests).
    assert_eq!(problem.status, 401);
    assert_eq!(
        problem.codes(),
        vec!["chain_untrusted", "chain_untrusted"],
        "{problem:?}"
    );
    assert!(problem.detail.contains("SIMULATED"), "{problem:?}");
}
