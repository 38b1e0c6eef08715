//! The audit log: proofs, tampering, durability across SIGKILL, the reviewer CLI.

#![allow(clippy::cast_possible_truncation)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use verifier::audit::cli::{AuditCommand, DecisionArg, LogSource, run_audit_to};
use verifier::audit::merkle::{self, MemoryTree, MerkleError, TreeHash};
use verifier::audit::{
    AuditEntry, AuditError, AuditLog, AuditProblem, CheckpointError, Decision, EntryFilter,
    EntryKind, LogSigner, ORIGIN, Reason, verify_consistency, verify_proof,
};
use verifier::time::UnixTime;

const T0: i64 = 1_756_684_800; // 2025-09-01T00:00:00Z

fn entry(i: u64) -> AuditEntry {
    let deny = i.is_multiple_of(3);
    let kind = if i.is_multiple_of(2) {
        EntryKind::Appraisal
    } else {
        EntryKind::Resource
    };
    let decision = if deny {
        Decision::Deny
    } else {
        Decision::Allow
    };
    let mut e = AuditEntry::new(
        UnixTime(T0 + i as i64 * 60),
        format!("req-{i}"),
        kind,
        decision,
    );
    if kind == EntryKind::Resource {
        e.resource = Some(format!("kbs:///default/key/k{i}"));
    }
    e.policy_id = Some("default".into());
    e.policy_digest = Some(format!("sha256:{}", "ab".repeat(32)));
    if deny {
        e.reasons
            .push(Reason::new("policy_rejected", format!("reason {i}")));
    }
    e
}

fn fill(log: &AuditLog, n: u64) {
    for i in 0..n {
        assert_eq!(log.append(&entry(i)).unwrap(), i);
    }
}

#[test]
fn every_inclusion_and_consistency_proof_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    assert_eq!(log.size().unwrap(), 0);
    let empty = log.checkpoint().unwrap();
    let mut notes = vec![(0, empty)];
    let mut n = 0;
    for target in [1u64, 2, 7, 8, 33, 64, 100] {
        while n < target {
            log.append(&entry(n)).unwrap();
            n += 1;
        }
        notes.push((n, log.checkpoint().unwrap()));
    }
    // Signing again without growth returns the same checkpoint.
    assert_eq!(log.checkpoint().unwrap(), notes.last().unwrap().1);
    assert_eq!(log.checkpoints().unwrap().len(), notes.len());

    for i in 0..n {
        let text = log.prove(i).unwrap();
        let v = verify_proof(&text, log.verifier_key()).unwrap();
        assert_eq!(v.index, i);
        assert_eq!(v.tree_size, 100);
        assert_eq!(v.origin, ORIGIN);
        assert_eq!(
            v.entry_json.as_bytes(),
            entry(i).canonical_bytes().unwrap().as_slice()
        );
    }
    for (a, (old_size, old)) in notes.iter().enumerate() {
        for (new_size, new) in &notes[a..] {
            let proof = log.consistency_proof(*old_size, *new_size).unwrap();
            verify_consistency(old, new, &proof, log.verifier_key()).unwrap();
            if *old_size > 0 && old_size < new_size {
                let mut bad = proof.clone();
                bad[0].0[0] ^= 1;
                assert!(matches!(
                    verify_consistency(old, new, &bad, log.verifier_key()),
                    Err(AuditError::Merkle(MerkleError::InvalidProof))
                ));
            }
        }
    }
    log.verify_all().unwrap();
}

#[test]
fn tampered_proofs_fail() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    fill(&log, 21);
    let text = log.prove(6).unwrap();
    let key = log.verifier_key().to_owned();
    verify_proof(&text, &key).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines[0], "c2sp.org/tlog-proof@v1");
    assert_eq!(lines[2], "index 6");

    // One byte of the entry.
    let mut body = STANDARD
        .decode(lines[1].strip_prefix("extra ").unwrap())
        .unwrap();
    body[10] ^= 0x01;
    let forged = text.replacen(lines[1], &format!("extra {}", STANDARD.encode(&body)), 1);
    assert!(matches!(
        verify_proof(&forged, &key),
        Err(AuditError::Merkle(MerkleError::InvalidProof))
    ));

    // One byte of a proof hash.
    let mut h = TreeHash::from_base64(lines[3]).unwrap();
    h.0[31] ^= 0x80;
    let forged = text.replacen(lines[3], &h.to_base64(), 1);
    assert!(matches!(
        verify_proof(&forged, &key),
        Err(AuditError::Merkle(MerkleError::InvalidProof))
    ));

    // One byte of the checkpoint signature.
    let sig_line = *lines.iter().rev().find(|l| l.starts_with("— ")).unwrap();
    let b64 = sig_line.rsplit(' ').next().unwrap();
    let mut sig = STANDARD.decode(b64).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    let forged = text.replacen(b64, &STANDARD.encode(&sig), 1);
    assert!(matches!(
        verify_proof(&forged, &key),
        Err(AuditError::Checkpoint(CheckpointError::Signature(_)))
    ));

    // Another log key of the same name.
    let (other, _) = LogSigner::generate(ORIGIN).unwrap();
    assert!(matches!(
        verify_proof(&text, other.verifier_key()),
        Err(AuditError::Checkpoint(CheckpointError::Signature(_)))
    ));

    // A different index with the same path.
    let forged = text.replacen("index 6", "index 7", 1);
    assert!(verify_proof(&forged, &key).is_err());
    // A proof hash dropped.
    let forged = text.replacen(&format!("{}\n", lines[3]), "", 1);
    assert!(verify_proof(&forged, &key).is_err());
    // No entry.
    let forged = text.replacen(&format!("{}\n", lines[1]), "", 1);
    assert!(matches!(
        verify_proof(&forged, &key),
        Err(AuditError::ProofWithoutEntry)
    ));
    let v = verifier::audit::verify_proof_for_entry(
        &forged,
        &key,
        &entry(6).canonical_bytes().unwrap(),
    )
    .unwrap();
    assert_eq!(v.index, 6);
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (key, note) = {
        let log = AuditLog::open(dir.path()).unwrap();
        fill(&log, 12);
        let digest = log.put_evidence(b"raw evidence").unwrap();
        assert_eq!(
            log.evidence(&digest).unwrap().as_deref(),
            Some(&b"raw evidence"[..])
        );
        (log.verifier_key().to_owned(), log.checkpoint().unwrap())
    };
    let log = AuditLog::open(dir.path()).unwrap();
    assert_eq!(log.verifier_key(), key);
    assert_eq!(log.size().unwrap(), 12);
    assert_eq!(log.latest_checkpoint().unwrap().unwrap(), note);
    for i in 0..12 {
        assert_eq!(log.entry(i).unwrap().unwrap(), entry(i));
    }
    assert!(log.entry(12).unwrap().is_none());
    let digest = attestor::digest::Sha256Digest::of(b"raw evidence");
    assert!(log.evidence(&digest).unwrap().is_some());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log_key.pub"))
            .unwrap()
            .trim(),
        key
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("log_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    log.append(&entry(12)).unwrap();
    let next = log.checkpoint().unwrap();
    let proof = log.consistency_proof(12, 13).unwrap();
    verify_consistency(&note, &next, &proof, &key).unwrap();

    // Filters.
    let denies = log
        .entries(&EntryFilter {
            decision: Some(Decision::Deny),
            ..EntryFilter::default()
        })
        .unwrap();
    assert_eq!(
        denies.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 3, 6, 9, 12]
    );
    let late = log
        .entries(&EntryFilter {
            since: Some(UnixTime(T0 + 600)),
            kind: Some(EntryKind::Resource),
            ..EntryFilter::default()
        })
        .unwrap();
    assert_eq!(late.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [11]);

    // A reviewer's copy without the private key.
    drop(log);
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    std::fs::remove_file(copy.path().join("log_key")).unwrap();
    let reviewer = AuditLog::open_existing(copy.path()).unwrap();
    assert_eq!(reviewer.verifier_key(), key);
    reviewer.verify_all().unwrap();
    verify_proof(&reviewer.prove(3).unwrap(), &key).unwrap();
    reviewer.append(&entry(13)).unwrap();
    assert!(matches!(reviewer.prove(13), Err(AuditError::KeyMissing(_))));
    // Opening a directory without a log creates nothing.
    let empty = tempfile::tempdir().unwrap();
    assert!(AuditLog::open_existing(empty.path()).is_err());
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());
}

#[test]
fn verify_all_detects_direct_sqlite_edits() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = AuditLog::open(dir.path()).unwrap();
        fill(&log, 20);
        log.checkpoint().unwrap();
        log.verify_all().unwrap();
    }
    let db = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    // The triggers refuse edits made by mistake.
    assert!(
        db.execute("UPDATE entries SET decision = 'allow' WHERE idx = 6", [])
            .is_err()
    );
    db.execute_batch(
        "DROP TRIGGER entries_append_only_u; DROP TRIGGER hashes_append_only_u;
         DROP TRIGGER hashes_append_only_d;",
    )
    .unwrap();
    // Entry 6 (a deny) becomes an allow: still canonical, columns updated too.
    let forged = {
        let mut e = entry(6);
        e.decision = Decision::Allow;
        e.reasons.clear();
        e.canonical_bytes().unwrap()
    };
    db.execute(
        "UPDATE entries SET body = ?1, decision = 'allow' WHERE idx = 6",
        [&forged],
    )
    .unwrap();

    let log = AuditLog::open(dir.path()).unwrap();
    let problems = log.verify_all().unwrap_err();
    assert!(
        problems.contains(&AuditProblem::LeafHashMismatch { index: 6 }),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, AuditProblem::CheckpointRootMismatch { size: 20, .. }))
    );
    // The reviewer CLI reports it too.
    let mut out = Vec::new();
    let code = run_audit_to(verify_cmd(dir.path(), None, None), &mut out).unwrap();
    assert_eq!(code, ExitCode::from(1), "{}", String::from_utf8_lossy(&out));

    // A careful forger also rewrites every stored hash: only the signed
    // checkpoint catches it.
    let mut tree = MemoryTree::new();
    for i in 0..20u64 {
        let body: Vec<u8> = db
            .query_row("SELECT body FROM entries WHERE idx = ?1", [i as i64], |r| {
                r.get(0)
            })
            .unwrap();
        tree.push(merkle::leaf_hash(&body)).unwrap();
    }
    // (Opening the log re-created the triggers.)
    db.execute_batch(
        "DROP TRIGGER hashes_append_only_u; DROP TRIGGER hashes_append_only_d;
         DELETE FROM hashes;",
    )
    .unwrap();
    for (id, h) in tree.stored_hashes().iter().enumerate() {
        db.execute(
            "INSERT INTO hashes(id, hash) VALUES (?1, ?2)",
            rusqlite::params![id as i64, h.0.as_slice()],
        )
        .unwrap();
    }
    let problems = log.verify_all().unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(matches!(
        problems[0],
        AuditProblem::CheckpointRootMismatch { size: 20, .. }
    ));
    // And the log refuses to sign a checkpoint inconsistent with the last one.
    log.append(&entry(20)).unwrap();
    assert!(matches!(log.checkpoint(), Err(AuditError::Inconsistent(_))));
}

#[test]
fn checkpoint_refuses_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    fill(&log, 10);
    log.checkpoint().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    db.execute_batch(
        "DROP TRIGGER entries_append_only_d; DROP TRIGGER hashes_append_only_d;
         DELETE FROM entries WHERE idx >= 5;
         DELETE FROM hashes WHERE id >= 8;",
    )
    .unwrap();
    assert_eq!(log.size().unwrap(), 5);
    assert!(matches!(log.checkpoint(), Err(AuditError::Inconsistent(_))));
    let problems = log.verify_all().unwrap_err();
    assert!(
        problems.contains(&AuditProblem::CheckpointBeyondLog {
            size: 10,
            log_size: 5
        }),
        "{problems:?}"
    );
}

#[test]
fn evidence_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let digest = log.put_evidence(b"snp report bytes").unwrap();
    assert_eq!(log.put_evidence(b"snp report bytes").unwrap(), digest);
    let mut e = entry(0);
    e.evidence_digest = Some(digest.prefixed());
    log.append(&e).unwrap();
    log.verify_all().unwrap();
    let mut missing = entry(1);
    missing.evidence_digest = Some(format!("sha256:{}", "00".repeat(32)));
    log.append(&missing).unwrap();
    let db = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    db.execute("UPDATE evidence SET bytes = x'00'", []).unwrap();
    let problems = log.verify_all().unwrap_err();
    assert_eq!(
        problems,
        [
            AuditProblem::EvidenceDigestMismatch {
                digest: digest.to_hex()
            },
            AuditProblem::EvidenceMissing {
                index: 1,
                digest: format!("sha256:{}", "00".repeat(32))
            }
        ]
    );
}

#[test]
fn concurrent_appends_get_distinct_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..15u64)
                    .map(|i| log.append(&entry(t * 100 + i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..60).collect::<Vec<_>>());
    log.checkpoint().unwrap();
    log.verify_all().unwrap();
}

/// Runs only as the child of `sigkill_mid_burst_loses_no_acknowledged_entry`.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os("AUDIT_CRASH_CHILD_DIR") else {
        return;
    };
    let log = AuditLog::open(Path::new(&dir)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..100_000u64 {
        let n = log.append(&entry(i)).unwrap();
        // Printed only once append returned: an acknowledged decision.
        use std::io::Write as _;
        writeln!(out, "ack {n} {i}").unwrap();
        out.flush().unwrap();
        if i % 25 == 24 {
            log.checkpoint().unwrap();
        }
    }
}

#[test]
fn sigkill_mid_burst_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "audit::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AUDIT_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 150 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            let (n, i) = rest.split_once(' ').unwrap();
            acked.push((n.parse::<u64>().unwrap(), i.parse::<u64>().unwrap()));
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines already written before the kill were acknowledged too.
    for line in lines.map_while(Result::ok) {
        if let Some((n, i)) = line.strip_prefix("ack ").and_then(|r| r.split_once(' ')) {
            acked.push((n.parse().unwrap(), i.parse().unwrap()));
        }
    }

    let log = AuditLog::open(dir.path()).unwrap();
    let size = log.size().unwrap();
    assert!(size >= acked.len() as u64, "{size} < {}", acked.len());
    for (n, i) in &acked {
        assert_eq!(n, i);
        assert_eq!(
            log.entry(*n).unwrap().as_ref(),
            Some(&entry(*i)),
            "entry {n}"
        );
    }
    log.verify_all().unwrap();
    let note = log.checkpoint().unwrap();
    verify_proof(&log.prove(size - 1).unwrap(), log.verifier_key()).unwrap();
    assert!(note.contains(&format!("\n{size}\n")));
}

#[test]
fn merkle_hashing_matches_independent_vectors() {
    // RFC 9162 MTH over leaves b"entry 0".. computed with a few lines of
    // Python hashlib (recursive definition, split at the largest power of two).
    let vectors = [
        (
            0u64,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            1,
            "773885a613489e24ce2cf76199d6a423f042e4bbf12d7eecee912ef276c65701",
        ),
        (
            2,
            "5a47662fd8a317d96049a3f9f47c55dc67ca66051baa3683dbb19b2fe09a07b0",
        ),
        (
            3,
            "94fbd0dd836f50301692e6d0eade728ee19ec52bfff1606ed807c8575d5aaa19",
        ),
        (
            7,
            "98c97f0ba3175cd08b031dd084b9dc4e649b64d1a28e6ea694646503173ab587",
        ),
        (
            8,
            "b69732ce5c914162ca9accfaf4e95d3f9874d68805437088aaff184a4db96773",
        ),
        (
            100,
            "106a6d1594d73248c9634639896cf8a76d2c3418f8fb8b4e24386025a27f2472",
        ),
    ];
    let mut tree = MemoryTree::new();
    for i in 0..100 {
        tree.push(merkle::leaf_hash(format!("entry {i}").as_bytes()))
            .unwrap();
    }
    for (size, hex) in vectors {
        assert_eq!(tree.root(size).unwrap().to_hex(), hex, "size {size}");
    }
}

#[test]
fn merkle_hashing_matches_python_on_real_entries() {
    const SCRIPT: &str = r#"
import hashlib, sys
def node(l, r): return hashlib.sha256(b"\x01" + l + r).digest()
def mth(ls):
    if not ls: return hashlib.sha256(b"").digest()
    if len(ls) == 1: return ls[0]
    k = 1
    while 2 * k < len(ls): k *= 2
    return node(mth(ls[:k]), mth(ls[k:]))
def path(m, ls):
    if len(ls) <= 1: return []
    k = 1
    while 2 * k < len(ls): k *= 2
    if m < k: return path(m, ls[:k]) + [mth(ls[k:])]
    return path(m - k, ls[k:]) + [mth(ls[:k])]
leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(l)).digest() for l in sys.stdin.read().split()]
for n in range(len(leaves) + 1): print(mth(leaves[:n]).hex())
print(",".join(h.hex() for h in path(5, leaves)))
"#;
    let Ok(mut py) = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        println!("SKIPPED: python3 not available");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    fill(&log, 23);
    let input: Vec<String> = (0..23)
        .map(|i| hex::encode(log.entry_bytes(i).unwrap().unwrap()))
        .collect();
    {
        use std::io::Write as _;
        let mut stdin = py.stdin.take().unwrap();
        stdin.write_all(input.join("\n").as_bytes()).unwrap();
    }
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for size in 0..=23u64 {
        assert_eq!(
            log.root(size).unwrap().to_hex(),
            lines[size as usize],
            "size {size}"
        );
    }
    let proof = verifier::audit::TlogProof::parse(&log.prove(5).unwrap()).unwrap();
    let ours: Vec<String> = proof.hashes.iter().map(|h| h.to_hex()).collect();
    assert_eq!(ours.join(","), lines[24]);
}

#[test]
fn cli_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = AuditLog::open(dir.path()).unwrap();
        fill(&log, 9);
        log.checkpoint().unwrap();
    }
    let src = || LogSource {
        data: Some(dir.path().to_owned()),
        server: None,
    };
    let run = |cmd| {
        let mut out = Vec::new();
        let code = run_audit_to(cmd, &mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    };

    let (code, out) = run(AuditCommand::List {
        source: src(),
        decision: Some(DecisionArg::Deny),
        since: None,
        json: false,
    });
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("policy_rejected"));
    let (code, out) = run(AuditCommand::List {
        source: src(),
        decision: None,
        since: Some("2025-09-01T00:05:00Z".into()),
        json: true,
    });
    assert_eq!(code, ExitCode::SUCCESS);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    let (code, _) = run(AuditCommand::List {
        source: src(),
        decision: None,
        since: Some("2030-01-01T00:00:00Z".into()),
        json: false,
    });
    assert_eq!(code, ExitCode::from(1));

    let (code, out) = run(AuditCommand::Show {
        source: src(),
        n: 4,
        json: true,
    });
    assert_eq!(code, ExitCode::SUCCESS);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entry"]["request_id"], "req-4");
    let (code, _) = run(AuditCommand::Show {
        source: src(),
        n: 9,
        json: false,
    });
    assert_eq!(code, ExitCode::from(1));

    let proof_file = dir.path().join("e4.tlog-proof");
    let (code, out) = run(AuditCommand::Prove {
        source: src(),
        n: 4,
        out: proof_file.clone(),
    });
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let (code, _) = run(AuditCommand::Prove {
        source: src(),
        n: 99,
        out: dir.path().join("nope"),
    });
    assert_eq!(code, ExitCode::from(1));

    let key_file = dir.path().join("log_key.pub");
    let (code, out) = run(verify_cmd(dir.path(), Some(&proof_file), Some(&key_file)));
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("req-4"));
    // With only the proof and a key file, no data directory.
    let (code, _) = run(AuditCommand::Verify {
        source: LogSource {
            data: None,
            server: None,
        },
        proof: Some(proof_file.clone()),
        log_key: Some(key_file.clone()),
    });
    assert_eq!(code, ExitCode::SUCCESS);
    let text = std::fs::read_to_string(&proof_file).unwrap();
    let bad_file = dir.path().join("bad.tlog-proof");
    std::fs::write(&bad_file, text.replacen("index 4", "index 5", 1)).unwrap();
    let (code, out) = run(verify_cmd(dir.path(), Some(&bad_file), None));
    assert_eq!(code, ExitCode::from(1), "{out}");
    let other_key = dir.path().join("other.pub");
    let (other, _) = LogSigner::generate(ORIGIN).unwrap();
    std::fs::write(&other_key, other.verifier_key()).unwrap();
    let (code, _) = run(verify_cmd(dir.path(), Some(&proof_file), Some(&other_key)));
    assert_eq!(code, ExitCode::from(1));

    let (code, out) = run(verify_cmd(dir.path(), None, None));
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(
        out.starts_with("OK: 9 entries, 1 signed checkpoints"),
        "{out}"
    );
    let (code, out) = run(verify_cmd(dir.path(), None, Some(&other_key)));
    assert_eq!(code, ExitCode::from(1), "{out}");

    // Errors (exit 2 in the binary): no source, an unreachable --server, a malformed key.
    let mut sink = Vec::new();
    assert!(
        run_audit_to(
            AuditCommand::Show {
                source: LogSource {
                    data: None,
                    server: Some("http://127.0.0.1:1".into()),
                },
                n: 0,
                json: false,
            },
            &mut sink,
        )
        .unwrap_err()
        .to_string()
        .contains("connecting to the verifier at http://127.0.0.1:1")
    );
    std::fs::write(&other_key, "garbage").unwrap();
    assert!(
        run_audit_to(
            verify_cmd(dir.path(), Some(&proof_file), Some(&other_key)),
            &mut sink
        )
        .is_err()
    );
}

fn verify_cmd(dir: &Path, proof: Option<&Path>, key: Option<&Path>) -> AuditCommand {
    AuditCommand::Verify {
        source: LogSource {
            data: Some(dir.to_owned()),
            server: None,
        },
        proof: proof.map(Path::to_owned),
        log_key: key.map(Path::to_owned),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
