//! Group commit in the audit log: many threads appending at once each get a
//! distinct index holding exactly their entry, evidence is stored in the same
//! commit as the entry naming it, and the log verifies.

use std::collections::HashSet;
use std::sync::Arc;

use attestor::digest::Sha256Digest;
use verifier::audit::{AuditEntry, AuditLog, Decision, EntryKind};
use verifier::time::UnixTime;

#[test]
fn concurrent_appends_each_get_their_own_durable_index() {
    const THREADS: usize = 16;
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let id = format!("t{t}-{i}");
                        let decision = if i % 3 == 0 {
                            Decision::Deny
                        } else {
                            Decision::Allow
                        };
                        let mut e = AuditEntry::new(
                            UnixTime(1_700_000_000),
                            &id,
                            EntryKind::Appraisal,
                            decision,
                        );
                        let evidence =
                            (i % 2 == 0).then(|| format!("evidence of {id}").into_bytes());
                        e.evidence_digest =
                            evidence.as_deref().map(|b| Sha256Digest::of(b).prefixed());
                        let n = log.append_with_evidence(&e, evidence.as_deref()).unwrap();
                        (n, id, decision, evidence)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for h in handles {
        for (n, id, decision, evidence) in h.join().unwrap() {
            assert!(seen.insert(n), "index {n} handed out twice");
            let entry = log.entry(n).unwrap().unwrap();
            assert_eq!(
                (entry.request_id.as_str(), entry.decision),
                (id.as_str(), decision)
            );
            if let Some(bytes) = evidence {
                let stored = log.evidence(&Sha256Digest::of(&bytes)).unwrap();
                assert_eq!(stored.as_deref(), Some(bytes.as_slice()));
            }
        }
    }
    let total = (THREADS * EACH) as u64;
    assert_eq!(seen, (0..total).collect::<HashSet<_>>());
    assert_eq!(log.size().unwrap(), total);
    log.verify_all().unwrap();
}
