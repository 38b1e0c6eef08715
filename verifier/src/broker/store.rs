//! The embedded resource store: SQLite, keyed by tenant / repository / type / tag.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::ResourceStore;

/// The store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("resource store: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

/// Resources in one SQLite database. `Sync`: share it in an `Arc`.
pub struct SqliteResourceStore {
    conn: Mutex<Connection>,
}

impl SqliteResourceStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// A store that lives in memory (tests, ephemeral brokers).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS resources (
                tenant TEXT NOT NULL, repo TEXT NOT NULL, type TEXT NOT NULL, tag TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (tenant, repo, type, tag)
            ) STRICT;",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores (or replaces) a resource.
    pub fn put(&self, tenant: &str, path: [&str; 3], value: &[u8]) -> Result<(), StoreError> {
        let [repo, kind, tag] = path;
        self.conn().execute(
            "INSERT OR REPLACE INTO resources (tenant, repo, type, tag, value) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, repo, kind, tag, value],
        )?;
        Ok(())
    }

    /// Deletes a resource; true if there was one.
    pub fn delete(&self, tenant: &str, path: [&str; 3]) -> Result<bool, StoreError> {
        let [repo, kind, tag] = path;
        let n = self.conn().execute(
            "DELETE FROM resources WHERE tenant = ?1 AND repo = ?2 AND type = ?3 AND tag = ?4",
            params![tenant, repo, kind, tag],
        )?;
        Ok(n > 0)
    }
}

impl ResourceStore for SqliteResourceStore {
    fn get(&self, tenant: &str, path: [&str; 3]) -> Result<Option<Vec<u8>>, StoreError> {
        let [repo, kind, tag] = path;
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM resources WHERE tenant = ?1 AND repo = ?2 AND type = ?3 AND tag = ?4",
                params![tenant, repo, kind, tag],
                |row| row.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_separate_namespaces() {
        let s = SqliteResourceStore::in_memory().unwrap();
        s.put("a", ["r", "key", "1"], b"secret-a").unwrap();
        assert_eq!(s.get("a", ["r", "key", "1"]).unwrap().unwrap(), b"secret-a");
        assert_eq!(s.get("b", ["r", "key", "1"]).unwrap(), None);
        s.put("a", ["r", "key", "1"], b"v2").unwrap();
        assert_eq!(s.get("a", ["r", "key", "1"]).unwrap().unwrap(), b"v2");
        assert!(s.delete("a", ["r", "key", "1"]).unwrap());
        assert_eq!(s.get("a", ["r", "key", "1"]).unwrap(), None);
    }
}
