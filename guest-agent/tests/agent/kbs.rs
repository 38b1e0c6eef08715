//! The agent against the real key broker on loopback: the verifier's
//! `serve::build` (pipeline appraiser, Rego policy set, SQLite store, audit
//! log) behind axum on 127.0.0.1:0, simulated SEV-SNP + H100 evidence, and
//! the tiny generated model, whose commitment replaces the reference model's
//! in a temporary copy of `policies/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestor::receipt::{DecisionStatus, EarStatus, verify};
use attestor::sim::SimSeed;
use guest_agent::agent::{Agent, AgentConfig, ModelKind, OnNotAffirming, RefusalKind};
use guest_agent::ear::{EarError, EarKey};
use guest_agent::infer::tiny::{TINY_GGUF_NAME, tiny_llama_gguf};
use guest_agent::kbs::{Attestation, KbsAttester, KbsClient, KbsError, next_refresh};
use guest_agent::model::{LoadedModel, Progress, load_and_hash};
use guest_agent::session::{EvidenceSource, Session};
use verifier::appraise::bundle::BundleCollateral;
use verifier::broker::SqliteResourceStore;
use verifier::trust::TrustRoots;

/// The reference SmolLM2 commitment the shipped development values name.
const REFERENCE_MODEL: &str =
    "sha256:16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";
const KEY_PATH: &str = "default/model/smollm2-135m-instruct";
const SECRET: &[u8] = b"the-model-key";

fn simulate() -> EvidenceSource {
    EvidenceSource::DangerSimulate {
        tee: attestor::evidence::Tee::Snp,
        gpus: 1,
        seed: SimSeed::DEFAULT,
    }
}

struct Model {
    dir: tempfile::TempDir,
    loaded: LoadedModel,
}

fn tiny_model() -> Model {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TINY_GGUF_NAME), tiny_llama_gguf(7).unwrap()).unwrap();
    let loaded = load_and_hash(dir.path(), Progress::Silent).unwrap();
    Model { dir, loaded }
}

/// A copy of `policies/` whose reference values name `model` instead of the
/// reference SmolLM2 (`None`: unchanged).
fn policies(model: Option<&str>) -> tempfile::TempDir {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let dst = tempfile::tempdir().unwrap();
    for sub in ["development", "production", "reference"] {
        std::fs::create_dir(dst.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let mut text = std::fs::read_to_string(&path).unwrap();
            if let Some(m) = model {
                text = text.replace(REFERENCE_MODEL, m);
            }
            std::fs::write(dst.path().join(sub).join(path.file_name().unwrap()), text).unwrap();
        }
    }
    dst
}

struct Broker {
    url: String,
    data: tempfile::TempDir,
    _policies: tempfile::TempDir,
}

impl Broker {
    fn ear_key_path(&self) -> PathBuf {
        self.data.path().join("ear_key.jwk")
    }
    fn ear_key(&self) -> EarKey {
        EarKey::read(&self.ear_key_path()).unwrap()
    }
    fn attester(&self, model: &LoadedModel) -> KbsAttester {
        KbsAttester::new(
            KbsClient::new(&self.url).unwrap(),
            self.ear_key(),
            simulate(),
            model.commitment.to_string(),
        )
    }
}

/// The real broker on 127.0.0.1:0 with `set` and the model key stored.
async fn broker(set: &str, model: Option<&str>) -> Broker {
    broker_with(set, model, SECRET).await
}

/// The same, with `secret` stored at [`KEY_PATH`].
async fn broker_with(set: &str, model: Option<&str>, secret: &[u8]) -> Broker {
    let policies = policies(model);
    let data = tempfile::tempdir().unwrap();
    let collateral = BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let roots = TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let broker =
        verifier::serve::build(data.path(), policies.path(), set, roots, collateral).unwrap();
    SqliteResourceStore::open(&data.path().join("resources.sqlite3"))
        .unwrap()
        .put(
            "default",
            ["default", "model", "smollm2-135m-instruct"],
            secret,
        )
        .unwrap();
    let app = verifier::broker::router(Arc::new(broker));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Broker {
        url: format!("http://{addr}"),
        data,
        _policies: policies,
    }
}

async fn attested_agent(
    b: &Broker,
    model: &Model,
    mode: OnNotAffirming,
) -> (Arc<Agent>, Attestation) {
    let session = Session::new();
    let mut attester = b.attester(&model.loaded);
    let attestation = attester.attest(&session).await.unwrap();
    let agent = Agent::start_attested(
        session,
        &model.loaded,
        ModelKind::Generate,
        attestation.clone(),
        mode,
    )
    .unwrap();
    (Arc::new(agent), attestation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attests_fetches_the_key_and_receipts_name_the_ear() {
    let model = tiny_model();
    let commitment = model.loaded.commitment.to_string();
    let b = broker("development", Some(&commitment)).await;
    let session = Session::new();
    let mut attester = b.attester(&model.loaded);
    let a = attester.attest(&session).await.unwrap();
    assert_eq!(a.ear.status, EarStatus::Affirming);
    assert_eq!(a.ear.roots, "simulated");
    assert_eq!(
        a.ear.digest.to_string(),
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                a.ear.token.as_bytes()
            ))
        )
    );
    assert!(
        a.ear.policy_ids.iter().any(|p| p.contains("development")),
        "{:?}",
        a.ear.policy_ids
    );
    assert_eq!(attester.client().token(), Some(a.ear.token.as_str()));
    assert_eq!(a.bundle.runtime_data.model(), Some(commitment.as_str()));
    assert_eq!(
        a.bundle.runtime_data.tee_pubkey().unwrap(),
        &session.tee_pubkey_jwk()
    );
    // The secret, decrypted with this session's TEE key only.
    let secret = attester.get_resource(KEY_PATH, &session).await.unwrap();
    assert_eq!(secret, SECRET);
    let other = Session::new();
    let Err(KbsError::Jwe { .. }) = attester.get_resource(KEY_PATH, &other).await else {
        panic!("another TEE key decrypted the secret");
    };
    // A resource the policy names nowhere is denied with its code.
    let err = attester
        .get_resource("default/model/other", &session)
        .await
        .unwrap_err();
    assert_eq!(err.problem().unwrap().codes(), ["policy_rejected"], "{err}");

    // Receipts name the appraised bundle and the EAR, and allow.
    let agent = Agent::start_attested(
        session,
        &model.loaded,
        ModelKind::Generate,
        a.clone(),
        OnNotAffirming::Refuse,
    )
    .unwrap();
    assert_eq!(agent.bundle().digest(), a.bundle.digest());
    assert_eq!(agent.ear_token().as_deref(), Some(a.ear.token.as_str()));
    let out = agent.generate("", "the sea", 3).unwrap();
    let claims = verify(&out.receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Allow);
    assert_eq!(claims.session.ear_digest, Some(a.ear.digest));
    assert_eq!(claims.session.ear_status, Some(EarStatus::Affirming));
    assert_eq!(claims.session.evidence_digest.0, a.bundle.digest());
    assert!(claims.session.simulated);
    assert_eq!(claims.verifier_policy_id, a.ear.policy_ids);
    assert_eq!(agent.health().map(|r| r.contains("affirming")), Ok(true));

    // A re-attestation of the same session replaces bundle and result.
    let again = attester.attest(agent.session()).await.unwrap();
    assert_ne!(again.ear.token, a.ear.token);
    agent.set_attestation(again.clone()).unwrap();
    assert_eq!(agent.bundle().digest(), again.bundle.digest());
    let out = agent.generate("", "the sea", 3).unwrap();
    let claims = verify(&out.receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(claims.session.ear_digest, Some(again.ear.digest));
    assert_eq!(claims.seq, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_policy_denies_the_simulator_with_its_code() {
    let model = tiny_model();
    let b = broker("production", Some(&model.loaded.commitment.to_string())).await;
    let err = b
        .attester(&model.loaded)
        .attest(&Session::new())
        .await
        .unwrap_err();
    let KbsError::Denied { problem, body } = &err else {
        panic!("not a denial: {err}");
    };
    assert_eq!(problem.status, 401);
    assert!(
        problem.type_uri.ends_with("/AttestationFailed"),
        "{}",
        problem.type_uri
    );
    assert!(
        problem.codes().contains(&"simulation_not_allowed"),
        "{:?}",
        problem.codes()
    );
    let sim = problem
        .denials
        .iter()
        .find(|d| d.code == "simulation_not_allowed")
        .unwrap();
    assert!(
        sim.detail.to_string().contains("simulated"),
        "{}",
        sim.detail
    );
    assert!(body.contains("simulation_not_allowed"));
    assert!(err.to_string().starts_with("key broker denied: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_not_in_the_reference_values_is_denied() {
    let model = tiny_model();
    // Shipped values: only the reference SmolLM2 is accepted.
    let b = broker("development", None).await;
    let err = b
        .attester(&model.loaded)
        .attest(&Session::new())
        .await
        .unwrap_err();
    let problem = err.problem().unwrap_or_else(|| panic!("{err}"));
    assert!(
        problem.codes().contains(&"model_mismatch"),
        "{:?}",
        problem.codes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ear_signed_by_another_key_is_refused() {
    let model = tiny_model();
    let b = broker("development", Some(&model.loaded.commitment.to_string())).await;
    let other = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let jwk = verifier::result::public_jwk(other.verifying_key());
    let mut attester = KbsAttester::new(
        KbsClient::new(&b.url).unwrap(),
        EarKey::from_jwk(&jwk).unwrap(),
        simulate(),
        model.loaded.commitment.to_string(),
    );
    let err = attester.attest(&Session::new()).await.unwrap_err();
    // The kid names the broker's key, not the configured one.
    assert!(matches!(err, KbsError::Ear(EarError::Jws(_))), "{err:?}");
    // A private key where the public one belongs is refused outright.
    let mut private = jwk.clone();
    private["d"] = "AAAA".into();
    assert!(matches!(EarKey::from_jwk(&private), Err(EarError::Key(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_affirming_result_the_agent_refuses_or_serves_unattested() {
    let model = tiny_model();
    let b = broker("development", Some(&model.loaded.commitment.to_string())).await;

    // refuse: a failed re-attestation stops serving, with a deny receipt.
    let (agent, a) = attested_agent(&b, &model, OnNotAffirming::Refuse).await;
    agent.attestation_failed("broker unreachable".into());
    let refusal = agent.generate("", "the sea", 3).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NotAttested);
    assert_eq!(
        refusal.message,
        "not serving: the latest attestation failed: broker unreachable"
    );
    let (receipt, _) = refusal.receipt.as_deref().unwrap();
    let claims = verify(&receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Deny);
    assert_eq!(claims.session.ear_digest, None);
    assert_eq!(claims.generation.output_tokens, None);
    assert!(agent.health().is_err());
    assert_eq!(agent.ear_token(), None);
    let status = guest_agent::service::refusal_status(&refusal);
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    // An expired result counts for nothing, even if it was affirming.
    let mut expired = a.clone();
    expired.ear.exp = guest_agent::kbs::unix_now() - 1;
    agent.set_attestation(expired.clone()).unwrap();
    let refusal = agent.generate("", "the sea", 3).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NotAttested);
    assert!(refusal.message.contains("expired"), "{}", refusal.message);
    let (receipt, _) = refusal.receipt.as_deref().unwrap();
    let claims = verify(&receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(claims.session.ear_digest, Some(a.ear.digest));
    // A fresh result serves again.
    agent.set_attestation(a.clone()).unwrap();
    assert!(agent.generate("", "the sea", 3).is_ok());

    // serve-unattested: served, and the receipt says so.
    let (agent, a) = attested_agent(&b, &model, OnNotAffirming::ServeUnattested).await;
    let mut warning = a.clone();
    warning.ear.status = EarStatus::Warning;
    agent.set_attestation(warning).unwrap();
    let out = agent.generate("", "the sea", 3).unwrap();
    let claims = verify(&out.receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Unattested);
    assert_eq!(claims.session.ear_status, Some(EarStatus::Warning));
    assert!(
        claims
            .policy_decision
            .reason
            .contains("warning, not affirming"),
        "{}",
        claims.policy_decision.reason
    );
    assert!(agent.health().is_ok());
}

#[test]
fn refresh_comes_before_the_result_expires() {
    let now = 1_000_000;
    let ear = |exp| guest_agent::ear::VerifiedEar {
        token: String::new(),
        digest: attestor::receipt::Sha256Ref(attestor::digest::Sha256Digest::of(b"")),
        status: EarStatus::Affirming,
        iat: now,
        exp,
        policy_ids: Vec::new(),
        roots: "simulated".into(),
    };
    let refresh = Duration::from_secs(300);
    assert_eq!(
        next_refresh(Some(&ear(now + 100)), refresh, now),
        Duration::from_secs(80)
    );
    assert_eq!(next_refresh(Some(&ear(now + 1000)), refresh, now), refresh);
    assert_eq!(
        next_refresh(Some(&ear(now)), refresh, now),
        Duration::from_secs(1)
    );
    assert_eq!(next_refresh(None, refresh, now), Duration::from_secs(10));
}

#[test]
fn verifier_table_parses_with_defaults_and_refuses_unknown_keys() {
    let base = "listen = \"127.0.0.1:0\"\nmodel = \"/m\"\nkind = \"generate\"\n";
    let c = AgentConfig::from_toml(&format!(
        "{base}[verifier]\nurl = \"http://127.0.0.1:8080\"\near_key = \"/d/ear_key.jwk\"\n"
    ))
    .unwrap();
    let v = c.verifier.unwrap();
    assert_eq!(v.refresh_secs, 300);
    assert_eq!(v.on_not_affirming, OnNotAffirming::Refuse);
    assert_eq!(v.model_key, None);
    let c = AgentConfig::from_toml(&format!(
        "{base}[verifier]\nurl = \"u\"\near_key = \"k\"\non_not_affirming = \"serve-unattested\"\nrefresh_secs = 5\nmodel_key = \"a/b/c\"\n"
    ))
    .unwrap();
    let v = c.verifier.unwrap();
    assert_eq!(v.on_not_affirming, OnNotAffirming::ServeUnattested);
    assert_eq!(v.refresh_secs, 5);
    assert_eq!(v.model_key.as_deref(), Some("a/b/c"));
    assert!(AgentConfig::from_toml(base).unwrap().verifier.is_none());
    assert!(
        AgentConfig::from_toml(&format!(
            "{base}[verifier]\nurl = \"u\"\near_key = \"k\"\nrefesh_secs = 5\n"
        ))
        .is_err()
    );
}

fn serve_config(dir: &Path, model: &Path, b: &Broker, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nmodel = {model:?}\nkind = \"generate\"\ndanger_simulate = true\n\
             [verifier]\nurl = {:?}\near_key = {:?}\n{extra}",
            b.url,
            b.ear_key_path()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cli_attests_then_listens_or_exits_3_on_a_denial() {
    use std::io::BufRead as _;
    let model = tiny_model();
    let commitment = model.loaded.commitment.to_string();
    let exe = env!("CARGO_BIN_EXE_guest-agent");
    // Not in the model folder: that would change the commitment.
    let configs = tempfile::tempdir().unwrap();

    // Denied at start: exit code 3, the codes on stderr, then the body.
    let b = broker("production", Some(&commitment)).await;
    let config = serve_config(configs.path(), model.dir.path(), &b, "");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("key broker denied: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("simulation_not_allowed"), "{line}");
    assert!(stderr.contains("\"denials\""), "{stderr}");
    assert!(out.stdout.is_empty());

    // Allowed, with the model sealed at rest: the key named in sealed.json
    // is released, the weights open, and the one stdout line says where it
    // listens.
    let key = attestor::sealed::SealKey::generate();
    let sealed = configs.path().join("sealed");
    guest_agent::model::sealed::seal_folder(
        model.dir.path(),
        &sealed,
        &key,
        KEY_PATH,
        Progress::Silent,
    )
    .unwrap();
    let b = broker_with("development", Some(&commitment), &key.to_jwk_bytes()).await;
    let config = serve_config(configs.path(), &sealed, &b, "");
    let mut child = std::process::Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let Some(addr) = line
        .trim_end()
        .strip_prefix("guest-agent: listening on http://")
        .map(str::to_owned)
    else {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("{line:?}\n{stderr}");
    };
    let mut c = proto::v1::guest_agent_client::GuestAgentClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let s = c
        .session(proto::v1::SessionRequest {})
        .await
        .unwrap()
        .into_inner();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.ear.starts_with("eyJ"), "{}", s.ear);
    assert!(s.simulated);
    let bundle =
        attestor::evidence::EvidenceBundle::from_json(s.evidence_bundle_json.as_bytes()).unwrap();
    assert_eq!(bundle.runtime_data.model(), Some(commitment.as_str()));
}

/// Every check of `ear::verify`, one change at a time, over a real result
/// re-signed with a key of ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ear_check_refuses_its_own_tampering() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use guest_agent::ear::{Expected, verify as verify_ear};
    use verifier::result::{EarClaims, public_jwk, sign_claims};

    let model = tiny_model();
    let commitment = model.loaded.commitment.to_string();
    let b = broker("development", Some(&commitment)).await;
    let session = Session::new();
    let a = b.attester(&model.loaded).attest(&session).await.unwrap();
    let payload = a.ear.token.split('.').nth(1).unwrap();
    let claims: EarClaims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let ours = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let key = EarKey::from_jwk(&public_jwk(ours.verifying_key())).unwrap();
    let receipt_key = session.receipt_key_jwk();
    let expected = Expected {
        nonce: a.bundle.runtime_data.nonce(),
        receipt_key: &receipt_key,
        model: &commitment,
    };
    let now = guest_agent::kbs::unix_now();
    let check = |c: &EarClaims| verify_ear(&sign_claims(c, &ours).unwrap(), &key, &expected, now);

    let ok = check(&claims).unwrap();
    assert_eq!(ok.status, EarStatus::Affirming);
    assert_eq!(i64::try_from(ok.exp).unwrap(), claims.exp);
    // The broker's own token does not verify with our key.
    assert!(matches!(
        verify_ear(&a.ear.token, &key, &expected, now),
        Err(EarError::Jws(_))
    ));

    let mut c = claims.clone();
    c.exp = i64::try_from(now).unwrap();
    assert!(matches!(check(&c), Err(EarError::Expired { exp, .. }) if exp == c.exp));
    let mut c = claims.clone();
    c.iat = i64::try_from(now + 3600).unwrap();
    assert!(matches!(check(&c), Err(EarError::NotYetValid { .. })));
    let mut c = claims.clone();
    c.eat_nonce = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let Err(EarError::Nonce {
        expected: want,
        found,
    }) = check(&c)
    else {
        panic!("another nonce accepted");
    };
    assert_eq!(found, c.eat_nonce);
    assert_eq!(want, claims.eat_nonce);
    let mut c = claims.clone();
    c.attestor_model = Some(REFERENCE_MODEL.into());
    let Err(EarError::Model { found, .. }) = check(&c) else {
        panic!("another model accepted");
    };
    assert_eq!(found.as_deref(), Some(REFERENCE_MODEL));
    let mut c = claims.clone();
    c.attestor_receipt_key = Some(Session::new().receipt_key_jwk());
    assert!(matches!(
        check(&c),
        Err(EarError::ReceiptKey { found: Some(_), .. })
    ));
    let mut c = claims.clone();
    c.attestor_receipt_key = None;
    assert!(matches!(
        check(&c),
        Err(EarError::ReceiptKey { found: None, .. })
    ));
    let mut c = claims.clone();
    c.eat_profile = "tag:example,2026:other".into();
    assert!(matches!(check(&c), Err(EarError::Profile { .. })));

    // One flipped signature byte.
    let token = sign_claims(&claims, &ours).unwrap();
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 1;
    let bad = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
    assert!(matches!(
        verify_ear(&bad, &key, &expected, now),
        Err(EarError::Jws(
            attestor::receipt::ReceiptError::SignatureInvalid
        ))
    ));
}

/// The schedule: re-attestation replaces the result; a failed one (broker
/// gone) leaves the agent refusing until a later one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_attestation_keeps_the_result_fresh_and_a_failure_stops_serving() {
    let model = tiny_model();
    let b = broker("development", Some(&model.loaded.commitment.to_string())).await;
    let (agent, first) = attested_agent(&b, &model, OnNotAffirming::Refuse).await;
    let task = tokio::spawn(guest_agent::kbs::keep_attested(
        Arc::clone(&agent),
        b.attester(&model.loaded),
        Duration::from_secs(1),
    ));
    let mut renewed = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(t) = agent.ear_token().filter(|t| *t != first.ear.token) {
            renewed = Some(t);
            break;
        }
    }
    task.abort();
    let renewed = renewed.expect("no re-attestation within 10 s");
    assert_ne!(agent.bundle().digest(), first.bundle.digest());
    let out = agent.generate("", "the sea", 3).unwrap();
    let claims = verify(&out.receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(
        claims.session.ear_digest.unwrap().to_string(),
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(renewed.as_bytes()))
        )
    );

    // A broker that is gone: nothing listens on this port any more.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let attester = KbsAttester::new(
        KbsClient::new(&format!("http://{dead}")).unwrap(),
        b.ear_key(),
        simulate(),
        model.loaded.commitment.to_string(),
    );
    let task = tokio::spawn(guest_agent::kbs::keep_attested(
        Arc::clone(&agent),
        attester,
        Duration::from_secs(1),
    ));
    let mut refused = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Err(r) = agent.generate("", "the sea", 3) {
            refused = Some(r);
            break;
        }
    }
    task.abort();
    let refusal = refused.expect("still serving 10 s after the broker went away");
    assert_eq!(refusal.kind, RefusalKind::NotAttested);
    assert!(
        refusal
            .message
            .starts_with("not serving: the latest attestation failed: http://"),
        "{}",
        refusal.message
    );
    assert_eq!(agent.ear_token(), None);
}

/// A sealed model folder is attested with its claimed commitment and opened
/// only with the key the broker releases to that attested session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_model_opens_only_with_the_key_the_broker_releases() {
    use attestor::sealed::SealKey;
    use guest_agent::agent::VerifierConfig;
    use guest_agent::kbs::{StartError, start_attested_agent};
    use guest_agent::model::sealed::seal_folder;

    let model = tiny_model();
    let commitment = model.loaded.commitment.to_string();
    let out = tempfile::tempdir().unwrap();
    let sealed = out.path().join("sealed");
    let key = SealKey::generate();
    seal_folder(model.dir.path(), &sealed, &key, KEY_PATH, Progress::Silent).unwrap();
    let start = |b: &Broker| {
        let config = VerifierConfig {
            url: b.url.clone(),
            ear_key: b.ear_key_path(),
            model_key: None,
            refresh_secs: 300,
            on_not_affirming: OnNotAffirming::Refuse,
        };
        let sealed = sealed.clone();
        async move {
            start_attested_agent(
                &config,
                &sealed,
                ModelKind::Generate,
                simulate(),
                Progress::Silent,
            )
            .await
        }
    };

    let b = broker_with("development", Some(&commitment), &key.to_jwk_bytes()).await;
    let (agent, _) = start(&b).await.unwrap();
    assert_eq!(agent.model_commitment().to_string(), commitment);
    assert_eq!(
        agent.bundle().runtime_data.model(),
        Some(commitment.as_str())
    );
    let out = agent.generate("", "the sea", 3).unwrap();
    let claims = verify(&out.receipt.compact, &agent.receipt_jwk()).unwrap();
    assert_eq!(claims.policy_decision.status, DecisionStatus::Allow);
    assert_eq!(claims.model_commitment.to_string(), commitment);
    // The same output as the plaintext model gives.
    let plain = Agent::start(&model.loaded, ModelKind::Generate, &simulate()).unwrap();
    assert_eq!(plain.generate("", "the sea", 3).unwrap().output, out.output);

    // Another key under the resource: the weights do not open.
    let b = broker_with(
        "development",
        Some(&commitment),
        &SealKey::generate().to_jwk_bytes(),
    )
    .await;
    let Err(StartError::Model { .. }) = start(&b).await else {
        panic!("a wrong key opened the sealed model");
    };
    // Bytes that are not a key.
    let b = broker_with("development", Some(&commitment), b"not a key").await;
    let Err(StartError::SealKey { resource, .. }) = start(&b).await else {
        panic!("a non-key was used as the key");
    };
    assert_eq!(resource, KEY_PATH);
    // A model the reference values do not name: denied, and no key released.
    let b = broker_with("development", None, &key.to_jwk_bytes()).await;
    let Err(StartError::Kbs(err)) = start(&b).await else {
        panic!("an unknown model was attested");
    };
    assert!(
        err.problem().unwrap().codes().contains(&"model_mismatch"),
        "{err}"
    );
}

/// A reviewer's offline check (the verifier's `receipt verify` chain):
/// receipt → receipt key in the appraised bundle → evidence → the EAR the
/// receipt names, with the broker's EAR key. Another attestation's EAR does
/// not match the receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_verify_offline_back_to_the_evidence_and_the_ear() {
    use verifier::appraise::bundle::Verifier;
    use verifier::policy::PolicySet;

    let model = tiny_model();
    let commitment = model.loaded.commitment.to_string();
    let b = broker("development", Some(&commitment)).await;
    let (agent, a) = attested_agent(&b, &model, OnNotAffirming::Refuse).await;
    let out = agent.generate("", "the sea", 3).unwrap();

    let policies = policies(Some(&commitment));
    let ear_jwk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.ear_key_path()).unwrap()).unwrap();
    let ear_key = *attestor::receipt::ReceiptPublicKey::from_jwk(&ear_jwk)
        .unwrap()
        .verifying_key();
    let reviewer = Verifier::new(
        TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap(),
        PolicySet::load(policies.path(), "development").unwrap(),
        p384::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        verifier::result::VerifierId {
            developer: "test".into(),
            build: "test".into(),
        },
        300,
    )
    .with_ear_key(ear_key);
    let collateral = BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let now = verifier::time::UnixTime::now();
    let bundle = agent.bundle();
    let v = reviewer
        .verify_receipt(
            &out.receipt.compact,
            &bundle,
            &collateral,
            Some(&a.ear.token),
            now,
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert!(v.ear.is_some());
    assert_eq!(v.receipt.model_commitment.to_string(), commitment);

    // The EAR of another attestation of the same session is not the one named.
    let other = b
        .attester(&model.loaded)
        .attest(agent.session())
        .await
        .unwrap();
    let denials = reviewer
        .verify_receipt(
            &out.receipt.compact,
            &bundle,
            &collateral,
            Some(&other.ear.token),
            now,
        )
        .unwrap_err();
    assert!(
        denials
            .iter()
            .any(|d| d.code == verifier::denial::DenialCode::EarMismatch),
        "{denials:?}"
    );
}

/// An attested agent streams over gRPC on loopback: the streamed receipt
/// allows and names the EAR like a unary one, and `guest-agent client
/// session` writes the appraised bundle and the EAR for the offline check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_stream_receipts_name_the_ear_and_the_client_fetches_it() {
    use guest_agent::client::AgentClient;
    use guest_agent::service::AgentService;
    use proto::v1::guest_agent_server::GuestAgentServer;

    let model = tiny_model();
    let commitment = model.loaded.commitment.to_string();
    let b = broker("development", Some(&commitment)).await;
    let (agent, a) = attested_agent(&b, &model, OnNotAffirming::Refuse).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GuestAgentServer::new(AgentService::new(Arc::clone(&agent))))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let mut client = AgentClient::connect(&url).await.unwrap();
    let mut chunks = 0;
    let out = client
        .generate_stream("the sea", 5, |_| chunks += 1)
        .await
        .unwrap();
    assert_eq!(chunks, out.token_ids.len());
    assert_eq!(out.claims.policy_decision.status, DecisionStatus::Allow);
    assert_eq!(out.claims.session.ear_digest, Some(a.ear.digest));
    assert_eq!(out.claims.session.evidence_digest.0, a.bundle.digest());
    let unary = agent.generate("", "the sea", 5).unwrap();
    assert_eq!(unary.output.text, out.text);
    assert_eq!(unary.receipt.claims.session, out.claims.session);

    let session = client.session().await.unwrap();
    assert_eq!(session.ear.as_deref(), Some(a.ear.token.as_str()));

    let dir = tempfile::tempdir().unwrap();
    let (bundle, ear) = (dir.path().join("bundle.json"), dir.path().join("ear.jwt"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_guest-agent"));
    cmd.args(["client", "session", "--server", &url, "--bundle-out"])
        .arg(&bundle)
        .arg("--ear-out")
        .arg(&ear);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&ear).unwrap(), a.ear.token);
    let written =
        attestor::evidence::EvidenceBundle::from_json(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(written.digest(), a.bundle.digest());
}
