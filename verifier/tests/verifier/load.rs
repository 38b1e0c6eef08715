//! Load on loopback: 200 concurrent simulated SEV-SNP + H100 clients attest
//! to the real stack (`serve::build`, development set, simulator roots and
//! RIMs) over HTTP and each fetches and decrypts the model key. Bounded (the
//! run stops by itself), zero errors allowed, every decision in the audit log,
//! and the log verifies. Prints p50/p99 per request kind and throughput (run
//! with `--nocapture` to see them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use attestor::sim::SimSeed;
use verifier::appraise::bundle::BundleCollateral;
use verifier::audit::{AuditLog, Decision, EntryFilter, EntryKind};
use verifier::broker::SqliteResourceStore;
use verifier::broker::loadgen::{self, LoadSpec, RequestKind};
use verifier::trust::TrustRoots;

const RESOURCE: &str = "default/model/smollm2-135m-instruct";
const SECRET: &[u8] = b"the-model-key: load test";

/// The real broker on 127.0.0.1:0, serving until the test's runtime ends.
async fn serve_dev(data: &std::path::Path) -> String {
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let roots = TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let collateral = BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap();
    // A whole burst queues for the appraisal permits: on 2 cores shared
    // with the rest of the suite the last of 200 waits longer than the
    // default 30 s, which would be load shedding, not the failure under test.
    let broker = verifier::serve::build(data, &policies, "development", roots, collateral)
        .unwrap()
        .with_request_timeout(Duration::from_secs(150));
    SqliteResourceStore::open(&data.join("resources.sqlite3"))
        .unwrap()
        .put(
            "default",
            ["default", "model", "smollm2-135m-instruct"],
            SECRET,
        )
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, verifier::broker::router(Arc::new(broker)))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients_attest_and_fetch_without_error() {
    const CLIENTS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let url = serve_dev(dir.path()).await;
    let mut spec = LoadSpec::new(CLIENTS, 1, RESOURCE, SECRET);
    // Bounded: a stuck broker fails the test instead of hanging CI.
    spec.time_limit = Duration::from_secs(180);
    let report = loadgen::run(&url, &spec).await;
    println!("kbs load (dev profile, {CLIENTS} clients × 1 round):\n{report}");

    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.rounds_ok, CLIENTS);
    for kind in RequestKind::ALL {
        assert_eq!(report.count(kind), CLIENTS, "{}", kind.as_str());
        let (p50, p99) = (
            report.percentile(kind, 50.0).unwrap(),
            report.percentile(kind, 99.0).unwrap(),
        );
        assert!(p50 <= p99 && p99 <= report.wall, "{report}");
    }

    // Every decision answered is in the log, all allows, and the log verifies.
    let log = AuditLog::open_existing(&dir.path().join("audit")).unwrap();
    assert_eq!(log.size().unwrap(), 3 * CLIENTS as u64);
    let denies = EntryFilter {
        decision: Some(Decision::Deny),
        ..EntryFilter::default()
    };
    assert_eq!(log.entries(&denies).unwrap().len(), 0);
    let releases = EntryFilter {
        kind: Some(EntryKind::Resource),
        ..EntryFilter::default()
    };
    let released = log.entries(&releases).unwrap();
    assert_eq!(released.len(), CLIENTS);
    assert!(released.iter().all(|(_, e)| {
        e.resource.as_deref() == Some("kbs:///default/model/smollm2-135m-instruct")
    }));
    log.verify_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_round_is_reported_with_its_status_and_codes() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve_dev(dir.path()).await;
    // A model the development reference values do not name.
    let mut spec = LoadSpec::new(2, 1, RESOURCE, SECRET);
    spec.model = format!("sha256:{}", "ab".repeat(32));
    spec.time_limit = Duration::from_secs(60);
    let report = loadgen::run(&url, &spec).await;
    assert_eq!(report.rounds_ok, 0, "{report}");
    assert_eq!(report.errors.len(), 2, "{report}");
    for e in &report.errors {
        match e {
            loadgen::LoadError::Refused { kind, status, body } => {
                assert_eq!(*kind, RequestKind::Attest);
                assert_eq!(*status, 401);
                assert!(body.contains("model"), "{body}");
            }
            other => panic!("expected a refusal, got {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_names_the_audit_entry_that_recorded_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve_dev(dir.path()).await;
    let client = loadgen::KbsClient::new(&url, Duration::from_secs(60)).unwrap();
    let auth = client.auth(None).await.unwrap().ok().unwrap();
    let cookie = auth.cookie.clone().unwrap();
    let nonce = auth.json().unwrap()["nonce"].as_str().unwrap().to_owned();
    let key = verifier::jwe::TeeSecretKey::generate(verifier::jwe::Curve::P384);
    let body = client
        .build_attest_body(&nonce, &key, loadgen::DEVELOPMENT_MODEL)
        .await
        .unwrap();
    let attest = client.attest(Some(&cookie), body).await.unwrap();
    let fetched = client.resource(Some(&cookie), RESOURCE).await.unwrap();
    let missing = client
        .resource(Some(&cookie), "default/model/no-such-model")
        .await
        .unwrap();
    let replay = client.attest(Some(&cookie), b"{}".to_vec()).await.unwrap();

    let log = AuditLog::open_existing(&dir.path().join("audit")).unwrap();
    let expect = [
        (&auth, 200, EntryKind::Challenge, Decision::Allow, None),
        (&attest, 200, EntryKind::Appraisal, Decision::Allow, None),
        (&fetched, 200, EntryKind::Resource, Decision::Allow, None),
        (
            &missing,
            401,
            EntryKind::Resource,
            Decision::Deny,
            // The development resource policy names no such path.
            Some("policy_rejected"),
        ),
        (
            &replay,
            401,
            EntryKind::Appraisal,
            Decision::Deny,
            Some("nonce_reused"),
        ),
    ];
    for (n, (answer, status, kind, decision, code)) in (0u64..).zip(expect) {
        assert_eq!(answer.status, status, "{n}");
        assert_eq!(answer.audit_entry, Some(n), "{n}");
        let entry = log.entry(n).unwrap().unwrap();
        assert_eq!((entry.kind, entry.decision), (kind, decision), "{n}");
        assert_eq!(entry.request_id, cookie, "{n}");
        if let Some(code) = code {
            assert_eq!(answer.denial_codes(), [code]);
            assert_eq!(entry.reasons[0].code, code);
        }
    }
    assert!(log.entry(1).unwrap().unwrap().evidence_digest.is_some());
    assert_eq!(log.size().unwrap(), 5);
}

/// TEST ONLY. Sleeps, counts how many appraisals run at once, and refuses.
struct CountingTestAppraiser {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl verifier::broker::Appraiser for CountingTestAppraiser {
    fn appraise(
        &self,
        _tee: verifier::broker::Tee,
        _body: &[u8],
        _nonce: &str,
        _now: verifier::time::UnixTime,
    ) -> Result<verifier::broker::Attested, verifier::broker::AppraisalRefused> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        self.running.fetch_sub(1, SeqCst);
        Err(vec![verifier::denial::Denial::new(
            verifier::denial::DenialCode::DebugEnabled,
            "test refusal",
        )]
        .into())
    }
}

/// TEST ONLY. Every attestation is refused, so no release is ever decided.
struct NeverAskedTestPolicy;

impl verifier::broker::ResourcePolicy for NeverAskedTestPolicy {
    fn decide(
        &self,
        _request: &verifier::broker::ResourceRequest<'_>,
    ) -> Result<String, Vec<verifier::denial::Denial>> {
        unreachable!("no session is ever attested in this test")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appraisals_run_at_most_the_configured_number_at_once() {
    use verifier::broker::{Broker, BrokerConfig, BrokerParts, SystemClock};
    let dir = tempfile::tempdir().unwrap();
    let appraiser = Arc::new(CountingTestAppraiser {
        running: 0.into(),
        most: 0.into(),
    });
    let broker = Broker::new(
        BrokerConfig {
            max_concurrent_appraisals: 2,
            ..BrokerConfig::default()
        },
        BrokerParts {
            appraiser: appraiser.clone(),
            policy: Arc::new(NeverAskedTestPolicy),
            store: Arc::new(SqliteResourceStore::open(&dir.path().join("r.sqlite3")).unwrap()),
            log: Arc::new(AuditLog::open(&dir.path().join("audit")).unwrap()),
            clock: Arc::new(SystemClock),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, verifier::broker::router(Arc::new(broker)))
            .await
            .unwrap();
    });
    let client = loadgen::KbsClient::new(&url, Duration::from_secs(60)).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        tasks.spawn(async move {
            let auth = client.auth(None).await.unwrap().ok().unwrap();
            let nonce = auth.json().unwrap()["nonce"].as_str().unwrap().to_owned();
            let body = serde_json::json!({
                "runtime-data": {"nonce": nonce, "tee-pubkey": {}},
                "tee-evidence": {},
            });
            let cookie = auth.cookie.unwrap();
            let r = client
                .attest(Some(&cookie), body.to_string().into_bytes())
                .await
                .unwrap();
            (r.status, r.denial_codes())
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), (401, vec!["debug_enabled".to_owned()]));
    }
    assert_eq!(appraiser.most.load(std::sync::atomic::Ordering::SeqCst), 2);
}
