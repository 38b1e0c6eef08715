//! The tamper-evident audit log of decisions.
//!
//! Every appraisal and every resource request, allow and deny, is one entry
//! (canonical JSON, [`entry`]) in an append-only Merkle log with RFC 9162
//! hashing ([`merkle`]), signed C2SP checkpoints ([`checkpoint`], Ed25519,
//! origin [`checkpoint::ORIGIN`]), inclusion and consistency proofs, and
//! offline proofs in the `c2sp.org/tlog-proof@v1` format ([`proof`]). Raw
//! evidence is stored by SHA-256 beside the entries, so a reviewer can
//! re-appraise later. Storage is SQLite in WAL mode with `synchronous=FULL`:
//! [`AuditLog::append`] returns only after the entry and its tree hashes are
//! fsynced, so an answered decision survives `SIGKILL` or power loss.
//!
//! What it must never do: rewrite or drop an entry, sign two inconsistent
//! checkpoints (each new checkpoint is checked against the last one signed,
//! C2SP tlog-checkpoint), or report a proof as valid without checking the
//! checkpoint signature and the inclusion path. It records decisions; it never
//! makes them. The reviewer CLI is [`cli`].
//!
//! A data directory holds `audit.sqlite3` (+ WAL files), `log_key` (the
//! Ed25519 note signing key, mode 0600) and `log_key.pub` (its verifier key,
//! `<origin>+<id>+<base64>`, to hand to reviewers).

pub mod checkpoint;
pub mod cli;
pub mod entry;
pub mod merkle;
pub mod proof;
pub mod reappraise;
mod remote;
mod store;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use attestor::digest::Sha256Digest;
use rusqlite::Connection;

pub use checkpoint::{CheckpointError, LogSigner, ORIGIN, SignedCheckpoint};
pub use entry::{AuditEntry, Decision, EntryError, EntryKind, MAX_ENTRY_LEN, Reason};
pub use merkle::{MerkleError, TreeHash};
pub use proof::{ProofFormatError, TlogProof};
pub use store::StoreError;

use store::Hashes;

/// The SQLite database inside the data directory.
pub const DB_FILE: &str = "audit.sqlite3";
/// The private checkpoint signing key (Go note key string, mode 0600).
pub const KEY_FILE: &str = "log_key";
/// The public verifier key string.
pub const PUB_KEY_FILE: &str = "log_key.pub";

/// The audit log over one data directory. `Sync`: share it in an `Arc`.
pub struct AuditLog {
    dir: PathBuf,
    conn: Mutex<Connection>,
    signer: Option<LogSigner>,
    verifier_key: String,
}

/// Which entries to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only this decision.
    pub decision: Option<Decision>,
    /// Only this kind.
    pub kind: Option<EntryKind>,
    /// Only entries at or after this time.
    pub since: Option<crate::time::UnixTime>,
}

/// What a verified proof established.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedProof {
    /// The entry's index.
    pub index: u64,
    /// The entry's canonical JSON (from the proof's `extra` line or given).
    pub entry_json: String,
    /// Its RFC 9162 leaf hash.
    pub leaf_hash: TreeHash,
    /// The checkpointed tree size.
    pub tree_size: u64,
    /// The checkpointed root.
    pub root: TreeHash,
    /// The log's origin.
    pub origin: String,
}

/// Failures of the audit log's operations (not findings: see [`AuditProblem`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file in the data directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An entry could not be encoded or decoded.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// Tree hashing or a Merkle proof failed.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// A checkpoint could not be signed or does not verify.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A tlog-proof text is malformed.
    #[error(transparent)]
    ProofFormat(#[from] ProofFormatError),
    /// There is no entry with this index.
    #[error("no entry {index}: the log has {size} entries")]
    NoSuchEntry {
        /// The index asked for.
        index: u64,
        /// The log's size.
        size: u64,
    },
    /// The signing key is needed but absent (a reviewer's copy), or a log
    /// with checkpoints has lost its key.
    #[error("log signing key {} is missing", .0.display())]
    KeyMissing(PathBuf),
    /// `log_key.pub` does not match `log_key`.
    #[error("{PUB_KEY_FILE} holds {found:?}, but {KEY_FILE} is the key {expected:?}")]
    KeyMismatch {
        /// The private key's verifier key.
        expected: String,
        /// The public file's content.
        found: String,
    },
    /// Signing a checkpoint would contradict one already signed (truncated
    /// or rewritten log): refused.
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
    /// A proof carries no entry (`extra` line) and none was given.
    #[error("the proof carries no entry (no `extra` line)")]
    ProofWithoutEntry,
    /// A proof is well-formed and signed but does not prove what it says.
    #[error("proof does not verify: {0}")]
    ProofMismatch(String),
    /// A thread panicked while holding the database.
    #[error("audit log lock poisoned")]
    Poisoned,
}

/// One thing wrong found by [`AuditLog::verify_all`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditProblem {
    /// The database could not be read.
    #[error("storage: {0}")]
    Storage(String),
    /// Entry indexes are not consecutive.
    #[error("entry index gap: expected {expected}, found {found}")]
    IndexGap {
        /// The next index expected.
        expected: u64,
        /// The index found.
        found: u64,
    },
    /// An entry's bytes are not a canonical entry.
    #[error("entry {index}: {reason}")]
    EntryMalformed {
        /// The entry.
        index: u64,
        /// Why.
        reason: String,
    },
    /// An entry's filter columns (time, kind, decision) differ from its body.
    #[error("entry {index}: stored filter columns differ from the entry")]
    ColumnsMismatch {
        /// The entry.
        index: u64,
    },
    /// An entry's stored leaf hash differs from the hash of its bytes.
    #[error("entry {index}: stored leaf hash differs from the entry's hash")]
    LeafHashMismatch {
        /// The entry.
        index: u64,
    },
    /// A stored interior hash differs from the recomputed one.
    #[error("stored hash {id} (level {level}, node {n}) differs from the recomputed tree")]
    StoredHashMismatch {
        /// Stored-hash index.
        id: u64,
        /// Tree level.
        level: u8,
        /// Node index at that level.
        n: u64,
    },
    /// Hashes are missing or extra.
    #[error("{found} stored hashes, expected {expected}")]
    StoredHashCount {
        /// For the number of entries.
        expected: u64,
        /// Present.
        found: u64,
    },
    /// A stored checkpoint's signature or body does not verify.
    #[error("checkpoint of size {size}: {reason}")]
    CheckpointInvalid {
        /// Its size column.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A stored checkpoint covers more entries than the log holds (truncation).
    #[error("checkpoint of size {size} but the log has {log_size} entries")]
    CheckpointBeyondLog {
        /// The checkpoint's size.
        size: u64,
        /// The log's.
        log_size: u64,
    },
    /// A signed root differs from the root recomputed from the entries.
    #[error("checkpoint of size {size} signs root {signed}, entries give {recomputed}")]
    CheckpointRootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// What was signed.
        signed: TreeHash,
        /// What the entries hash to.
        recomputed: TreeHash,
    },
    /// Stored evidence does not hash to its digest.
    #[error("evidence sha256:{digest} does not hash to its digest")]
    EvidenceDigestMismatch {
        /// The stored digest (hex).
        digest: String,
    },
    /// An entry names evidence that is not stored.
    #[error("entry {index}: evidence {digest} is not stored")]
    EvidenceMissing {
        /// The entry.
        index: u64,
        /// The digest it names.
        digest: String,
    },
}

impl AuditLog {
    /// Opens the log in `dir`, creating the directory, the database and the
    /// Ed25519 log key (`log_key`, 0600; `log_key.pub`) on first use. For the
    /// service, which appends and signs.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        create_dir(dir)?;
        let db = dir.join(DB_FILE);
        let key_path = dir.join(KEY_FILE);
        let db_existed = db.exists();
        let conn = store::open(&db, true, ORIGIN)?;
        let signer = if key_path.exists() {
            load_signer(&key_path)?
        } else {
            if db_existed && !store::checkpoints(&conn)?.is_empty() {
                // A new key would silently replace the identity reviewers trust.
                return Err(AuditError::KeyMissing(key_path));
            }
            create_signer(&key_path)?
        };
        let pub_path = dir.join(PUB_KEY_FILE);
        match read_trimmed(&pub_path) {
            Ok(found) => check_pub(&signer, found)?,
            Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                write_file(
                    &pub_path,
                    format!("{}\n", signer.verifier_key()).as_bytes(),
                    0o644,
                )?;
            }
            Err(e) => return Err(e),
        }
        Ok(Self {
            dir: dir.to_owned(),
            conn: Mutex::new(conn),
            verifier_key: signer.verifier_key().to_owned(),
            signer: Some(signer),
        })
    }

    /// Opens an existing log without creating anything: for reviewers working
    /// on a copy of the data directory. The signing key is optional (without
    /// it, no new checkpoint can be signed); `log_key.pub` is then required.
    pub fn open_existing(dir: &Path) -> Result<Self, AuditError> {
        let db = dir.join(DB_FILE);
        if !db.exists() {
            return Err(AuditError::Io {
                path: db,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no audit database"),
            });
        }
        let conn = store::open(&db, false, ORIGIN)?;
        let key_path = dir.join(KEY_FILE);
        let pub_path = dir.join(PUB_KEY_FILE);
        let signer = if key_path.exists() {
            Some(load_signer(&key_path)?)
        } else {
            None
        };
        let verifier_key = match (&signer, pub_path.exists()) {
            (Some(s), true) => {
                check_pub(s, read_trimmed(&pub_path)?)?;
                s.verifier_key().to_owned()
            }
            (Some(s), false) => s.verifier_key().to_owned(),
            (None, true) => read_trimmed(&pub_path)?,
            (None, false) => return Err(AuditError::KeyMissing(pub_path)),
        };
        Ok(Self {
            dir: dir.to_owned(),
            conn: Mutex::new(conn),
            signer,
            verifier_key,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's verifier key string (`log_key.pub`).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Appends an entry; returns its index once it is durable (fsynced).
    pub fn append(&self, entry: &AuditEntry) -> Result<u64, AuditError> {
        let body = entry.canonical_bytes()?;
        let cols = store::Columns {
            time: entry.time.0,
            kind: entry.kind.as_str(),
            decision: entry.decision.as_str(),
        };
        let mut conn = self.lock()?;
        Ok(store::append(&mut conn, &body, &cols)?)
    }

    /// Stores raw evidence by its SHA-256 (durable on return); idempotent.
    /// Put `digest.prefixed()` in the entry's `evidence_digest`.
    pub fn put_evidence(&self, bytes: &[u8]) -> Result<Sha256Digest, AuditError> {
        let digest = Sha256Digest::of(bytes);
        store::put_evidence(&*self.lock()?, digest.as_bytes(), bytes)?;
        Ok(digest)
    }

    /// Stored evidence by digest.
    pub fn evidence(&self, digest: &Sha256Digest) -> Result<Option<Vec<u8>>, AuditError> {
        Ok(store::evidence(&*self.lock()?, digest.as_bytes())?)
    }

    /// Entry `n`, parsed.
    pub fn entry(&self, n: u64) -> Result<Option<AuditEntry>, AuditError> {
        match self.entry_bytes(n)? {
            Some(body) => Ok(Some(AuditEntry::from_canonical_bytes(&body)?)),
            None => Ok(None),
        }
    }

    /// Entry `n`'s canonical bytes, as hashed.
    pub fn entry_bytes(&self, n: u64) -> Result<Option<Vec<u8>>, AuditError> {
        Ok(store::row(&*self.lock()?, n)?.map(|r| r.body))
    }

    /// Entries matching `filter`, in index order.
    pub fn entries(&self, filter: &EntryFilter) -> Result<Vec<(u64, AuditEntry)>, AuditError> {
        let conn = self.lock()?;
        let mut out = Vec::new();
        let mut bad = None;
        store::rows(
            &conn,
            filter.decision.map(Decision::as_str),
            filter.since.map(|t| t.0),
            |row| {
                match AuditEntry::from_canonical_bytes(&row.body) {
                    // The columns only narrow the scan; the body decides.
                    Ok(e) => {
                        if filter.decision.is_none_or(|d| d == e.decision)
                            && filter.kind.is_none_or(|k| k == e.kind)
                            && filter.since.is_none_or(|t| e.time >= t)
                        {
                            out.push((row.idx, e));
                        }
                    }
                    Err(e) => {
                        bad.get_or_insert(e);
                    }
                }
                Ok(())
            },
        )?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// One page: up to `limit` entries matching `filter` with index ≥
    /// `start`, in index order, and whether more match after them. Reads only
    /// as far as the page needs.
    pub fn entries_page(
        &self,
        filter: &EntryFilter,
        start: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, AuditEntry)>, bool), AuditError> {
        let conn = self.lock()?;
        let mut page = Vec::new();
        let mut more = false;
        let mut bad = None;
        store::rows_from(
            &conn,
            filter.decision.map(Decision::as_str),
            filter.since.map(|t| t.0),
            start,
            |row| match AuditEntry::from_canonical_bytes(&row.body) {
                // The columns only narrow the scan; the body decides.
                Ok(e) => {
                    let matches = filter.decision.is_none_or(|d| d == e.decision)
                        && filter.kind.is_none_or(|k| k == e.kind)
                        && filter.since.is_none_or(|t| e.time >= t);
                    if !matches {
                        return Ok(true);
                    }
                    if page.len() == limit {
                        more = true;
                        return Ok(false);
                    }
                    page.push((row.idx, e));
                    Ok(true)
                }
                Err(e) => {
                    bad = Some(e);
                    Ok(false)
                }
            },
        )?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok((page, more)),
        }
    }

    /// The number of entries.
    pub fn size(&self) -> Result<u64, AuditError> {
        Ok(store::size(&*self.lock()?)?)
    }

    /// The root of the first `size` entries, from the stored hashes.
    pub fn root(&self, size: u64) -> Result<TreeHash, AuditError> {
        let conn = self.lock()?;
        let have = store::size(&conn)?;
        if size > have {
            return Err(AuditError::NoSuchEntry {
                index: size,
                size: have,
            });
        }
        Ok(merkle::root(size, &Hashes(&conn))?)
    }

    /// Signs (and stores) a checkpoint of the whole log, or returns the last
    /// one when the log has not grown. Refuses to sign anything inconsistent
    /// with the last checkpoint signed.
    pub fn checkpoint(&self) -> Result<String, AuditError> {
        let mut conn = self.lock()?;
        self.checkpoint_locked(&mut conn)
    }

    /// The most recent signed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<String>, AuditError> {
        Ok(store::last_checkpoint(&*self.lock()?)?.map(|c| c.note))
    }

    /// Every signed checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<String>, AuditError> {
        Ok(store::checkpoints(&*self.lock()?)?
            .into_iter()
            .map(|c| c.note)
            .collect())
    }

    /// A `c2sp.org/tlog-proof@v1` for entry `n`: the entry (in `extra`), its
    /// inclusion proof and the latest checkpoint (signing a new one when the
    /// latest does not cover `n`).
    pub fn prove(&self, n: u64) -> Result<String, AuditError> {
        let mut conn = self.lock()?;
        let size = store::size(&conn)?;
        let body = store::row(&conn, n)?
            .ok_or(AuditError::NoSuchEntry { index: n, size })?
            .body;
        let note = match store::last_checkpoint(&conn)? {
            Some(cp) if cp.size > n => cp.note,
            _ => self.checkpoint_locked(&mut conn)?,
        };
        let cp = checkpoint::open(&note, &self.verifier_key)?;
        let hashes = merkle::inclusion_proof(n, cp.size, &Hashes(&conn))?;
        // Never hand out a proof that does not verify.
        merkle::check_inclusion(&hashes, cp.size, cp.root, n, merkle::leaf_hash(&body))?;
        Ok(TlogProof {
            extra: Some(body),
            index: n,
            hashes,
            checkpoint: note,
        }
        .to_text())
    }

    /// The consistency proof between the trees of `old_size` and `new_size`
    /// entries (RFC 9162 §2.1.4), for two checkpoints a reviewer holds.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<TreeHash>, AuditError> {
        let conn = self.lock()?;
        let size = store::size(&conn)?;
        if new_size > size {
            return Err(AuditError::NoSuchEntry {
                index: new_size,
                size,
            });
        }
        Ok(merkle::consistency_proof(
            old_size,
            new_size,
            &Hashes(&conn),
        )?)
    }

    /// Recomputes every leaf and the whole tree from the entries, and checks
    /// them against the stored hashes, every stored checkpoint (signature by
    /// this log's key, and root), and every stored evidence blob.
    pub fn verify_all(&self) -> Result<(), Vec<AuditProblem>> {
        self.verify_all_with_key(&self.verifier_key)
    }

    /// [`verify_all`](Self::verify_all) with checkpoint signatures checked
    /// against `verifier_key` (a reviewer's trusted copy) instead.
    pub fn verify_all_with_key(&self, verifier_key: &str) -> Result<(), Vec<AuditProblem>> {
        // A separate connection in one read transaction: a consistent
        // snapshot that does not block appends (WAL).
        let mut problems = Vec::new();
        let result = store::open_reader(&self.dir.join(DB_FILE))
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                let tx = conn.transaction().map_err(|e| e.to_string())?;
                verify_snapshot(&tx, verifier_key, &mut problems).map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            problems.push(AuditProblem::Storage(e));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn checkpoint_locked(&self, conn: &mut Connection) -> Result<String, AuditError> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let size = store::size(&tx)?;
        let root = merkle::root(size, &Hashes(&tx))?;
        if let Some(last) = store::last_checkpoint(&tx)? {
            let last_root = TreeHash(last.root.as_slice().try_into().map_err(|_| {
                AuditError::Inconsistent(format!("stored checkpoint {} has a bad root", last.size))
            })?);
            if last.size > size {
                return Err(AuditError::Inconsistent(format!(
                    "the log has {size} entries but a checkpoint of size {} was signed",
                    last.size
                )));
            }
            if last.size == size {
                return if last_root == root {
                    Ok(last.note)
                } else {
                    Err(AuditError::Inconsistent(format!(
                        "root of size {size} changed since it was signed"
                    )))
                };
            }
            let proof = merkle::consistency_proof(last.size, size, &Hashes(&tx))?;
            merkle::check_consistency(&proof, last.size, last_root, size, root).map_err(|_| {
                AuditError::Inconsistent(format!(
                    "the tree of size {size} does not extend the checkpoint of size {}",
                    last.size
                ))
            })?;
        }
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| AuditError::KeyMissing(self.dir.join(KEY_FILE)))?;
        let note = signer.sign(size, root)?;
        store::insert_checkpoint(&tx, size, &root, &note)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(note)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, AuditError> {
        self.conn.lock().map_err(|_| AuditError::Poisoned)
    }
}

/// Verifies a `c2sp.org/tlog-proof@v1` text carrying its entry in `extra`:
/// the checkpoint is signed by `log_key_pub` (a verifier key string) for its
/// own origin, and the inclusion proof leads from the entry's leaf hash to the
/// checkpoint's root.
pub fn verify_proof(proof_text: &str, log_key_pub: &str) -> Result<VerifiedProof, AuditError> {
    let proof = TlogProof::parse(proof_text)?;
    let entry = proof.extra.clone().ok_or(AuditError::ProofWithoutEntry)?;
    verify_parsed(&proof, log_key_pub, entry)
}

/// Like [`verify_proof`], for a proof without `extra` (or to check that it
/// proves a particular entry): `entry` is the entry's canonical bytes.
pub fn verify_proof_for_entry(
    proof_text: &str,
    log_key_pub: &str,
    entry: &[u8],
) -> Result<VerifiedProof, AuditError> {
    let proof = TlogProof::parse(proof_text)?;
    if proof.extra.as_deref().is_some_and(|e| e != entry) {
        return Err(AuditError::ProofMismatch(
            "the proof carries a different entry".into(),
        ));
    }
    verify_parsed(&proof, log_key_pub, entry.to_vec())
}

/// Verifies two signed checkpoints and a consistency proof between them.
pub fn verify_consistency(
    old_checkpoint: &str,
    new_checkpoint: &str,
    proof: &[TreeHash],
    log_key_pub: &str,
) -> Result<(), AuditError> {
    let old = checkpoint::open(old_checkpoint, log_key_pub)?;
    let new = checkpoint::open(new_checkpoint, log_key_pub)?;
    merkle::check_consistency(proof, old.size, old.root, new.size, new.root)?;
    Ok(())
}

fn verify_parsed(
    proof: &TlogProof,
    log_key_pub: &str,
    entry: Vec<u8>,
) -> Result<VerifiedProof, AuditError> {
    let cp = checkpoint::open(&proof.checkpoint, log_key_pub)?;
    if proof.index >= cp.size {
        return Err(AuditError::ProofMismatch(format!(
            "index {} is not in a tree of size {}",
            proof.index, cp.size
        )));
    }
    let leaf = merkle::leaf_hash(&entry);
    merkle::check_inclusion(&proof.hashes, cp.size, cp.root, proof.index, leaf)?;
    let entry_json = String::from_utf8(entry)
        .map_err(|_| AuditError::ProofMismatch("the entry is not UTF-8".into()))?;
    Ok(VerifiedProof {
        index: proof.index,
        entry_json,
        leaf_hash: leaf,
        tree_size: cp.size,
        root: cp.root,
        origin: cp.origin,
    })
}

fn verify_snapshot(
    conn: &Connection,
    verifier_key: &str,
    problems: &mut Vec<AuditProblem>,
) -> Result<(), StoreError> {
    let mut tree = merkle::MemoryTree::new();
    let mut named_evidence = Vec::new();
    store::rows(conn, None, None, |row| {
        if row.idx != tree.size() {
            problems.push(AuditProblem::IndexGap {
                expected: tree.size(),
                found: row.idx,
            });
        }
        let index = tree.size();
        tree.push(merkle::leaf_hash(&row.body))?;
        match AuditEntry::from_canonical_bytes(&row.body) {
            Ok(e) => {
                if e.time.0 != row.time
                    || e.kind.as_str() != row.kind
                    || e.decision.as_str() != row.decision
                {
                    problems.push(AuditProblem::ColumnsMismatch { index });
                }
                if let Some(d) = e.evidence_digest {
                    named_evidence.push((index, d));
                }
            }
            Err(e) => problems.push(AuditProblem::EntryMalformed {
                index,
                reason: e.to_string(),
            }),
        }
        Ok(())
    })?;

    let expected = tree.stored_hashes();
    let mut found = 0u64;
    store::all_hashes(conn, |id, bytes| {
        found += 1;
        let same = usize::try_from(id)
            .ok()
            .and_then(|i| expected.get(i))
            .is_some_and(|h| h.as_bytes().as_slice() == bytes.as_slice());
        if !same && id < expected.len() as u64 {
            let (level, n) = tlog_tiles::split_stored_hash_index(id);
            problems.push(if level == 0 {
                AuditProblem::LeafHashMismatch { index: n }
            } else {
                AuditProblem::StoredHashMismatch { id, level, n }
            });
        }
    })?;
    if found != expected.len() as u64 {
        problems.push(AuditProblem::StoredHashCount {
            expected: expected.len() as u64,
            found,
        });
    }

    for row in store::checkpoints(conn)? {
        let cp = match checkpoint::open(&row.note, verifier_key) {
            Ok(cp) => cp,
            Err(e) => {
                problems.push(AuditProblem::CheckpointInvalid {
                    size: row.size,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if cp.size != row.size || cp.root.as_bytes().as_slice() != row.root.as_slice() {
            problems.push(AuditProblem::CheckpointInvalid {
                size: row.size,
                reason: "stored size or root differs from the signed note".into(),
            });
        }
        if cp.size > tree.size() {
            problems.push(AuditProblem::CheckpointBeyondLog {
                size: cp.size,
                log_size: tree.size(),
            });
            continue;
        }
        let recomputed = tree.root(cp.size)?;
        if recomputed != cp.root {
            problems.push(AuditProblem::CheckpointRootMismatch {
                size: cp.size,
                signed: cp.root,
                recomputed,
            });
        }
    }

    store::all_evidence(conn, |digest, bytes| {
        if Sha256Digest::of(&bytes).as_bytes().as_slice() != digest.as_slice() {
            problems.push(AuditProblem::EvidenceDigestMismatch {
                digest: hex::encode(&digest),
            });
        }
    })?;
    for (index, named) in named_evidence {
        let Some(hex_digest) = named.strip_prefix("sha256:") else {
            continue;
        };
        let present = match Sha256Digest::from_hex(hex_digest) {
            Ok(d) => store::has_evidence(conn, d.as_bytes())?,
            Err(_) => false,
        };
        if !present {
            problems.push(AuditProblem::EvidenceMissing {
                index,
                digest: named,
            });
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), AuditError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| AuditError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn load_signer(path: &Path) -> Result<LogSigner, AuditError> {
    let text = read_trimmed(path)?;
    Ok(LogSigner::from_private_key(&text)?)
}

fn create_signer(path: &Path) -> Result<LogSigner, AuditError> {
    let (signer, skey) = LogSigner::generate(ORIGIN)?;
    // Written to a temporary file first so a crash never leaves a half key.
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(AuditError::Io {
                path: tmp,
                source: e,
            });
        }
        _ => {}
    }
    write_file(&tmp, format!("{skey}\n").as_bytes(), 0o600)?;
    std::fs::rename(&tmp, path).map_err(|source| AuditError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(signer)
}

fn check_pub(signer: &LogSigner, found: String) -> Result<(), AuditError> {
    if found == signer.verifier_key() {
        Ok(())
    } else {
        Err(AuditError::KeyMismatch {
            expected: signer.verifier_key().to_owned(),
            found,
        })
    }
}

fn read_trimmed(path: &Path) -> Result<String, AuditError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| AuditError::Io {
            path: path.to_owned(),
            source,
        })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
