//! SQLite storage for the audit log: entries, stored Merkle hashes, evidence
//! blobs by SHA-256, signed checkpoints.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed transaction
//! is fsynced before `COMMIT` returns; each append is one `BEGIN IMMEDIATE`
//! transaction that writes the entry and every hash it completes, so the tree
//! and the entries can never disagree after a crash. Triggers refuse `UPDATE`
//! and `DELETE` on entries, hashes and checkpoints: they catch our own bugs,
//! not an attacker with the file (that is what `verify_all` and signed
//! checkpoints are for).
//!
//! Schema (version 1):
//! - `entries(idx INTEGER PRIMARY KEY, body BLOB, time INTEGER, kind TEXT,
//!   decision TEXT)`: `body` is the canonical JSON that is hashed; the other
//!   columns are copies for filtering, checked by `verify_all`.
//! - `hashes(id INTEGER PRIMARY KEY, hash BLOB)`: `id` = stored-hash index.
//! - `evidence(digest BLOB PRIMARY KEY, bytes BLOB)`: `digest` = SHA-256(bytes).
//! - `checkpoints(size INTEGER PRIMARY KEY, root BLOB, note TEXT)`.
//! - `meta(key TEXT PRIMARY KEY, value TEXT)`: `schema`, `origin`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior, params};

use super::merkle::{self, HashStore, MerkleError, TreeHash};

/// The schema version written in `meta`.
const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    decision TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS entries_time ON entries(time);
CREATE INDEX IF NOT EXISTS entries_decision ON entries(decision, idx);
CREATE TABLE IF NOT EXISTS hashes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS evidence (digest BLOB PRIMARY KEY, bytes BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS entries_append_only_u BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_d BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS hashes_append_only_u BEFORE UPDATE ON hashes
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS hashes_append_only_d BEFORE DELETE ON hashes
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_u BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_d BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
";

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database is not an audit log we understand.
    #[error("audit database: {0}")]
    Schema(String),
    /// The stored data is inconsistent (e.g. hash count ≠ entry count).
    #[error("audit database is inconsistent: {0}")]
    Corrupt(String),
    /// Computing tree hashes failed.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// One stored entry row.
pub(crate) struct Row {
    pub(crate) idx: u64,
    pub(crate) body: Vec<u8>,
    pub(crate) time: i64,
    pub(crate) kind: String,
    pub(crate) decision: String,
}

/// One stored checkpoint row.
pub(crate) struct CheckpointRow {
    pub(crate) size: u64,
    pub(crate) root: Vec<u8>,
    pub(crate) note: String,
}

/// Filter columns of a new entry.
pub(crate) struct Columns<'a> {
    pub(crate) time: i64,
    pub(crate) kind: &'a str,
    pub(crate) decision: &'a str,
}

/// Opens (optionally creating) the database and applies the pragmas.
pub(crate) fn open(path: &Path, create: bool, origin: &str) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if !create {
        let tables: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if tables != 1 {
            return Err(StoreError::Schema(format!(
                "{} is not an audit log database",
                path.display()
            )));
        }
    }
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Schema(format!(
            "could not enable WAL (journal_mode={mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    let found: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match found {
        None => {
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?1), ('origin', ?2)",
                params![SCHEMA_VERSION, origin],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) => return Err(StoreError::Schema(format!("unknown schema version {v}"))),
    }
    let stored_origin: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'origin'", [], |r| {
            r.get(0)
        })?;
    if stored_origin != origin {
        return Err(StoreError::Schema(format!(
            "log origin is {stored_origin:?}, expected {origin:?}"
        )));
    }
    Ok(conn)
}

/// A second connection for long reads (verification): no schema changes.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// The number of entries.
pub(crate) fn size(conn: &Connection) -> Result<u64, StoreError> {
    let next: i64 = conn.query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries", [], |r| {
        r.get(0)
    })?;
    to_u64(next)
}

/// Appends one entry and its tree hashes in one durable transaction; returns
/// its index.
pub(crate) fn append(
    conn: &mut Connection,
    body: &[u8],
    cols: &Columns<'_>,
) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let idx = size(&tx)?;
    let have: i64 = tx.query_row("SELECT COALESCE(MAX(id) + 1, 0) FROM hashes", [], |r| {
        r.get(0)
    })?;
    let want = merkle::stored_hash_count(idx);
    if to_u64(have)? != want {
        return Err(StoreError::Corrupt(format!(
            "{idx} entries but {have} stored hashes (expected {want})"
        )));
    }
    let new = merkle::hashes_to_store(idx, merkle::leaf_hash(body), &Hashes(&tx))?;
    tx.execute(
        "INSERT INTO entries(idx, body, time, kind, decision) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![to_i64(idx)?, body, cols.time, cols.kind, cols.decision],
    )?;
    {
        let mut stmt = tx.prepare_cached("INSERT INTO hashes(id, hash) VALUES (?1, ?2)")?;
        let first = merkle::stored_hash_index(0, idx);
        for (offset, h) in (0u64..).zip(&new) {
            stmt.execute(params![to_i64(first + offset)?, h.as_bytes().as_slice()])?;
        }
    }
    tx.commit()?;
    Ok(idx)
}

/// One entry row.
pub(crate) fn row(conn: &Connection, idx: u64) -> Result<Option<Row>, StoreError> {
    let Ok(i) = i64::try_from(idx) else {
        return Ok(None);
    };
    Ok(conn
        .query_row(
            "SELECT idx, body, time, kind, decision FROM entries WHERE idx = ?1",
            [i],
            read_row,
        )
        .optional()?)
}

/// Entry rows in index order, optionally filtered on the stored columns.
pub(crate) fn rows(
    conn: &Connection,
    decision: Option<&str>,
    since: Option<i64>,
    mut each: impl FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT idx, body, time, kind, decision FROM entries
         WHERE (?1 IS NULL OR decision = ?1) AND (?2 IS NULL OR time >= ?2)
         ORDER BY idx",
    )?;
    let mut q = stmt.query(params![decision, since])?;
    while let Some(r) = q.next()? {
        each(read_row(r)?)?;
    }
    Ok(())
}

/// Entry rows from index `start` on, in index order, optionally filtered on
/// the stored columns, until `each` says stop (`false`).
pub(crate) fn rows_from(
    conn: &Connection,
    decision: Option<&str>,
    since: Option<i64>,
    start: u64,
    mut each: impl FnMut(Row) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Ok(start) = i64::try_from(start) else {
        return Ok(());
    };
    let mut stmt = conn.prepare(
        "SELECT idx, body, time, kind, decision FROM entries
         WHERE idx >= ?3 AND (?1 IS NULL OR decision = ?1) AND (?2 IS NULL OR time >= ?2)
         ORDER BY idx",
    )?;
    let mut q = stmt.query(params![decision, since, start])?;
    while let Some(r) = q.next()? {
        if !each(read_row(r)?)? {
            break;
        }
    }
    Ok(())
}

/// Every stored hash `(id, hash)` in id order.
pub(crate) fn all_hashes(
    conn: &Connection,
    mut each: impl FnMut(u64, Vec<u8>),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT id, hash FROM hashes ORDER BY id")?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        each(to_u64(r.get(0)?)?, r.get(1)?);
    }
    Ok(())
}

/// Stores evidence bytes under their digest (idempotent, durable).
pub(crate) fn put_evidence(
    conn: &Connection,
    digest: &[u8; 32],
    bytes: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO evidence(digest, bytes) VALUES (?1, ?2)",
        params![digest.as_slice(), bytes],
    )?;
    Ok(())
}

/// Evidence bytes by digest.
pub(crate) fn evidence(
    conn: &Connection,
    digest: &[u8; 32],
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT bytes FROM evidence WHERE digest = ?1",
            [digest.as_slice()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Whether evidence with this digest is stored.
pub(crate) fn has_evidence(conn: &Connection, digest: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM evidence WHERE digest = ?1",
            [digest.as_slice()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Every evidence blob `(digest, bytes)`.
pub(crate) fn all_evidence(
    conn: &Connection,
    mut each: impl FnMut(Vec<u8>, Vec<u8>),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT digest, bytes FROM evidence ORDER BY digest")?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        each(r.get(0)?, r.get(1)?);
    }
    Ok(())
}

/// Every checkpoint in size order.
pub(crate) fn checkpoints(conn: &Connection) -> Result<Vec<CheckpointRow>, StoreError> {
    let mut stmt = conn.prepare("SELECT size, root, note FROM checkpoints ORDER BY size")?;
    let rows = stmt.query_map([], read_checkpoint)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

/// The largest checkpoint.
pub(crate) fn last_checkpoint(conn: &Connection) -> Result<Option<CheckpointRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            [],
            read_checkpoint,
        )
        .optional()?)
}

/// Stores a signed checkpoint.
pub(crate) fn insert_checkpoint(
    conn: &Connection,
    size: u64,
    root: &TreeHash,
    note: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO checkpoints(size, root, note) VALUES (?1, ?2, ?3)",
        params![to_i64(size)?, root.as_bytes().as_slice(), note],
    )?;
    Ok(())
}

/// The stored hashes, read through one connection (or transaction).
pub(crate) struct Hashes<'a>(pub(crate) &'a Connection);

impl HashStore for Hashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, MerkleError> {
        let storage = |e: rusqlite::Error| MerkleError::Storage(e.to_string());
        let mut stmt = self
            .0
            .prepare_cached("SELECT hash FROM hashes WHERE id = ?1")
            .map_err(storage)?;
        indexes
            .iter()
            .map(|&i| {
                let id = i64::try_from(i)
                    .map_err(|_| MerkleError::Storage(format!("hash index {i} out of range")))?;
                let bytes: Vec<u8> = stmt
                    .query_row([id], |r| r.get(0))
                    .optional()
                    .map_err(storage)?
                    .ok_or_else(|| MerkleError::Storage(format!("no stored hash {i}")))?;
                let array: [u8; 32] = bytes.try_into().map_err(|_| {
                    MerkleError::Storage(format!("stored hash {i} is not 32 bytes"))
                })?;
                Ok(TreeHash(array))
            })
            .collect()
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let idx: i64 = r.get(0)?;
    Ok(Row {
        idx: u64::try_from(idx).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, e.into())
        })?,
        body: r.get(1)?,
        time: r.get(2)?,
        kind: r.get(3)?,
        decision: r.get(4)?,
    })
}

fn read_checkpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckpointRow> {
    let size: i64 = r.get(0)?;
    Ok(CheckpointRow {
        size: u64::try_from(size).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, e.into())
        })?,
        root: r.get(1)?,
        note: r.get(2)?,
    })
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative count {v}")))
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("index {v} out of range")))
}
