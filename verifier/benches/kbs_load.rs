//! Key-broker load on loopback, printed (`cargo bench -p verifier --bench
//! kbs_load`): the real stack (`serve::build`, development policy set,
//! simulator roots and RIMs, SQLite audit log with an fsync per commit) on
//! 127.0.0.1:0, and concurrent simulated SEV-SNP + H100 clients each doing
//! whole rounds (auth → attest → fetch → decrypt) in the same process.
//! Prints p50/p99 per request kind, rounds/s and requests/s, and checks that
//! there was no error, every decision is in the audit log, and it verifies.
//!
//! `KBS_LOAD_CLIENTS` (default 200) and `KBS_LOAD_ROUNDS` (default 5) set the
//! shape; the run stops by itself after `KBS_LOAD_LIMIT_S` (default 600).
//! Goal (DESIGN.md §9): hundreds of concurrent attestations, no error, no lost
//! audit entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestor::sim::SimSeed;
use verifier::appraise::bundle::BundleCollateral;
use verifier::audit::AuditLog;
use verifier::broker::SqliteResourceStore;
use verifier::broker::loadgen::{self, LoadSpec};
use verifier::trust::TrustRoots;

const RESOURCE: &str = "default/model/smollm2-135m-instruct";
const SECRET: &[u8] = b"the-model-key: kbs_load bench";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn serve_dev(data: &Path) -> String {
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let roots = TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let collateral = BundleCollateral::danger_simulated(&SimSeed::DEFAULT).unwrap();
    let broker = verifier::serve::build(data, &policies, "development", roots, collateral).unwrap();
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

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let clients = env_or("KBS_LOAD_CLIENTS", 200);
    let rounds = env_or("KBS_LOAD_ROUNDS", 5);
    let limit = env_or("KBS_LOAD_LIMIT_S", 600);
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = runtime.block_on(async {
        let url = serve_dev(dir.path()).await;
        // Warm the simulator's memoised certificates and the server's caches.
        let warm = LoadSpec::new(1, 1, RESOURCE, SECRET);
        let r = loadgen::run(&url, &warm).await;
        assert!(r.errors.is_empty(), "{r}");
        let mut spec = LoadSpec::new(clients, rounds, RESOURCE, SECRET);
        spec.time_limit = Duration::from_secs(limit as u64);
        loadgen::run(&url, &spec).await
    });
    println!(
        "kbs_load: {clients} concurrent clients × {rounds} rounds, broker and clients in one \
         process on {cores} cores (loopback, SQLite audit log, fsync per commit)"
    );
    print!("{report}");
    assert!(report.errors.is_empty(), "errors under load");
    assert_eq!(report.rounds_ok, clients * rounds);
    let log = AuditLog::open_existing(&dir.path().join("audit")).unwrap();
    let entries = log.size().unwrap();
    assert_eq!(entries, 3 * (clients * rounds + 1) as u64, "audit entries");
    log.verify_all().unwrap();
    println!("audit log: {entries} entries, verifies");
}
