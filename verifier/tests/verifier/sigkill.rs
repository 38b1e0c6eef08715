//! SIGKILL in the middle of a burst loses no answered decision: the real
//! `verifier serve --dev` binary takes a burst of concurrent attestations and
//! resource fetches (allows and denies), is killed with SIGKILL while requests
//! are in flight, and is restarted on the same data directory. Every answer
//! received before the kill names its audit entry (`x-audit-entry`); each such
//! entry is in the log with the same decision, kind and request id, and
//! `verifier audit verify --data DIR` exits 0.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use verifier::audit::{AuditLog, Decision, EntryKind};
use verifier::broker::loadgen::{self, Answer, KbsClient, RequestKind};
use verifier::jwe::{Curve, TeeSecretKey};

const RESOURCE: &str = "default/model/smollm2-135m-instruct";
const SECRET: &[u8] = b"the-model-key: sigkill test";
/// Concurrent clients in the burst.
const WORKERS: usize = 24;
/// Answers received before the kill.
const KILL_AFTER: usize = 60;

/// A running `verifier serve --dev`; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path) -> Self {
        let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let stderr = std::fs::File::create(data.join("serve.stderr")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_verifier"))
            .args([
                OsStr::new("serve"),
                OsStr::new("--dev"),
                OsStr::new("--data"),
            ])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--policies"])
            .arg(&policies)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_owned)
        else {
            let _ = child.kill();
            let err = std::fs::read_to_string(data.join("serve.stderr")).unwrap_or_default();
            panic!("no listening line: {line:?}; stderr: {err}");
        };
        assert!(line.starts_with("verifier: listening on http://127.0.0.1:"));
        Self { child, url }
    }

    /// SIGKILL (std's `Child::kill` on unix), and reap.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer and the request id its entry must carry.
struct Answered {
    answer: Answer,
    request_id: String,
}

/// What one worker does, by its number: whole rounds (three allows), an
/// attestation for a model the policy refuses (allow, then deny), or a fetch
/// with no session (deny).
async fn work(client: &KbsClient, n: usize, out: &Mutex<Vec<Answered>>) -> Result<(), String> {
    let record = |answer: &Answer, request_id: &str| {
        out.lock().unwrap().push(Answered {
            answer: answer.clone(),
            request_id: request_id.to_owned(),
        });
    };
    let err = |e: loadgen::LoadError| e.to_string();
    if n % 4 == 3 {
        let a = client.resource(None, RESOURCE).await.map_err(err)?;
        record(&a, "unauthenticated");
        return Ok(());
    }
    let auth = client.auth(None).await.map_err(err)?;
    let cookie = auth.cookie.clone().ok_or("auth set no cookie")?;
    record(&auth, &cookie);
    let nonce = auth.json().map_err(err)?["nonce"]
        .as_str()
        .ok_or("no nonce")?
        .to_owned();
    let key = TeeSecretKey::generate(Curve::P256);
    let model = if n % 4 == 2 {
        format!("sha256:{}", "ab".repeat(32))
    } else {
        loadgen::DEVELOPMENT_MODEL.to_owned()
    };
    let body = client
        .build_attest_body(&nonce, &key, &model)
        .await
        .map_err(err)?;
    let attest = client.attest(Some(&cookie), body).await.map_err(err)?;
    record(&attest, &cookie);
    let fetched = client
        .resource(Some(&cookie), RESOURCE)
        .await
        .map_err(err)?;
    record(&fetched, &cookie);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_no_answered_decision() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let secret_file = data.join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let (code, _, stderr) = crate::verifier(&[
        OsStr::new("resource"),
        OsStr::new("put"),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new(RESOURCE),
        secret_file.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    let mut server = Server::start(data);
    let client = KbsClient::new(&server.url, Duration::from_secs(60)).unwrap();
    let answers = Arc::new(Mutex::new(Vec::<Answered>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let (client, answers, stop) = (client.clone(), answers.clone(), stop.clone());
        workers.spawn(async move {
            let mut failures = 0usize;
            let mut n = w;
            while !stop.load(Ordering::SeqCst) {
                if work(&client, n, &answers).await.is_err() {
                    failures += 1;
                }
                n += WORKERS;
            }
            failures
        });
    }
    let waited = tokio::time::timeout(Duration::from_secs(120), async {
        while answers.lock().unwrap().len() < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    server.kill();
    stop.store(true, Ordering::SeqCst);
    waited.expect("the burst was answered too slowly");
    let mut cut_off = 0;
    while let Some(failures) = workers.join_next().await {
        cut_off += failures.unwrap();
    }
    // Requests were in flight (or being sent) when the server died.
    assert!(cut_off > 0, "the kill did not interrupt the burst");
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(answers.len() >= KILL_AFTER);
    let kinds = |d: Decision| answers.iter().filter(|a| decision(&a.answer) == d).count();
    assert!(kinds(Decision::Allow) > 0 && kinds(Decision::Deny) > 0);

    // Restarted on the same data, the broker serves and the log goes on.
    let server = Server::start(data);
    let client = KbsClient::new(&server.url, Duration::from_secs(60)).unwrap();
    let spec = loadgen::LoadSpec::new(1, 1, RESOURCE, SECRET);
    loadgen::round(&client, &spec).await.unwrap();

    let log = AuditLog::open_existing(&data.join("audit")).unwrap();
    let size = log.size().unwrap();
    let mut seen = HashSet::new();
    for a in &answers {
        let n = a
            .answer
            .audit_entry
            .unwrap_or_else(|| panic!("an answered {:?} names no entry", a.answer.kind));
        assert!(seen.insert(n), "entry {n} answered twice");
        assert!(n < size, "entry {n} of {size} lost");
        let entry = log.entry(n).unwrap().unwrap();
        assert_eq!(entry.decision, decision(&a.answer), "entry {n}");
        let kind = match a.answer.kind {
            RequestKind::Auth => EntryKind::Challenge,
            RequestKind::Attest => EntryKind::Appraisal,
            RequestKind::Resource => EntryKind::Resource,
        };
        assert_eq!(entry.kind, kind, "entry {n}");
        assert_eq!(entry.request_id, a.request_id, "entry {n}");
        if entry.decision == Decision::Deny {
            let codes: Vec<&str> = entry.reasons.iter().map(|r| r.code.as_str()).collect();
            assert_eq!(codes, a.answer.denial_codes(), "entry {n}");
        }
    }
    drop(server);
    println!(
        "sigkill: {} answers before the kill ({} allow, {} deny), {cut_off} requests cut off, \
         {size} entries after restart",
        answers.len(),
        kinds(Decision::Allow),
        kinds(Decision::Deny),
    );

    let (code, out, err) = crate::verifier(&[
        OsStr::new("audit"),
        OsStr::new("verify"),
        OsStr::new("--data"),
        data.as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

fn decision(a: &Answer) -> Decision {
    match a.status {
        200 => Decision::Allow,
        401 => Decision::Deny,
        other => panic!("unexpected HTTP {other} for {:?}", a.kind),
    }
}
