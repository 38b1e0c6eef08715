//! RFC 9162 Merkle tree hashing (§2.1: leaf `SHA-256(0x00 ‖ entry)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`), stored hashes, inclusion proofs (§2.1.3)
//! and consistency proofs (§2.1.4), over the `tlog_tiles` crate (a port of Go's
//! `golang.org/x/mod/sumdb/tlog`).
//!
//! Hashes are stored in the dense order of Crosby and Wallach (`tlog_tiles::
//! stored_hash_index`): appending record `n` writes its leaf hash and the hash
//! of every subtree it completes, so a root or a proof for any size up to the
//! current one is computed from at most `log n` stored hashes.
//! Proof checking never trusts the proof's length: it is bounded by
//! [`MAX_PROOF_HASHES`] before any work is done.

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tlog_tiles::{Hash, HashReader};

attestor::byte_newtype!(
    /// A SHA-256 Merkle tree hash: a leaf, an interior node or a root.
    pub struct TreeHash(32);
);

/// A proof for a tree of at most 2^64 leaves never needs more hashes than this.
pub const MAX_PROOF_HASHES: usize = 64;

/// Hashing, storage or proof failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The proof does not lead to the claimed root (or has the wrong length).
    #[error("invalid Merkle proof")]
    InvalidProof,
    /// The arguments describe no valid position (e.g. index ≥ size).
    #[error("invalid Merkle proof request: {0}")]
    InvalidInput(String),
    /// The stored hashes could not be read.
    #[error("stored hashes: {0}")]
    Storage(String),
    /// Not a base64 SHA-256 hash.
    #[error("not a base64 SHA-256 hash: {0:?}")]
    BadHash(String),
}

/// Where the stored hashes live (SQLite for the log, memory for recomputation).
pub trait HashStore {
    /// The hashes at the given stored-hash indexes, in the same order. Must
    /// return exactly `indexes.len()` hashes or an error.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, MerkleError>;
}

impl TreeHash {
    /// The hash of the empty tree, `SHA-256("")` (RFC 9162 §2.1.1).
    pub const EMPTY: Self = Self(tlog_tiles::EMPTY_HASH.0);

    /// Standard base64, as in checkpoints and proofs.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, MerkleError> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| MerkleError::BadHash(text.to_owned()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| MerkleError::BadHash(text.to_owned()))?;
        Ok(Self(array))
    }
}

/// RFC 9162 leaf hash of one entry: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> TreeHash {
    TreeHash(tlog_tiles::record_hash(entry).0)
}

/// RFC 9162 interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: TreeHash, right: TreeHash) -> TreeHash {
    TreeHash(tlog_tiles::node_hash(Hash(left.0), Hash(right.0)).0)
}

/// Where the hash of subtree `(level, n)` is stored.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    tlog_tiles::stored_hash_index(level, n)
}

/// How many hashes a tree of `size` leaves stores.
pub fn stored_hash_count(size: u64) -> u64 {
    tlog_tiles::stored_hash_count(size)
}

/// The hashes to store when appending leaf `n` (its leaf hash first), to be
/// written starting at `stored_hash_index(0, n)`.
pub fn hashes_to_store(
    n: u64,
    leaf: TreeHash,
    store: &impl HashStore,
) -> Result<Vec<TreeHash>, MerkleError> {
    let reader = Reader::new(store);
    let out = tlog_tiles::stored_hashes_for_record_hash(n, Hash(leaf.0), &reader);
    reader.finish(out.map(|v| v.into_iter().map(|h| TreeHash(h.0)).collect()))
}

/// The root of the first `size` leaves.
pub fn root(size: u64, store: &impl HashStore) -> Result<TreeHash, MerkleError> {
    let reader = Reader::new(store);
    let out = tlog_tiles::tree_hash(size, &reader);
    reader.finish(out.map(|h| TreeHash(h.0)))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, from the
/// leaf's sibling up to the root's child (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(
    index: u64,
    size: u64,
    store: &impl HashStore,
) -> Result<Vec<TreeHash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::InvalidInput(format!(
            "index {index} is not below size {size}"
        )));
    }
    let reader = Reader::new(store);
    let out = tlog_tiles::prove_record(size, index, &reader);
    reader.finish(out.map(from_tlog))
}

/// The consistency proof from the tree of `old_size` leaves to the tree of
/// `new_size` leaves (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equal
/// to `new_size`.
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    store: &impl HashStore,
) -> Result<Vec<TreeHash>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::InvalidInput(format!(
            "old size {old_size} exceeds new size {new_size}"
        )));
    }
    if old_size == 0 {
        return Ok(Vec::new());
    }
    let reader = Reader::new(store);
    let out = tlog_tiles::prove_tree(new_size, old_size, &reader);
    reader.finish(out.map(from_tlog))
}

/// Checks that `proof` shows leaf `leaf` at `index` in the tree of `size`
/// leaves with root `root`.
pub fn check_inclusion(
    proof: &[TreeHash],
    size: u64,
    root: TreeHash,
    index: u64,
    leaf: TreeHash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::InvalidInput(format!(
            "index {index} is not below size {size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(MerkleError::InvalidProof);
    }
    tlog_tiles::check_record(&to_tlog(proof), size, Hash(root.0), index, Hash(leaf.0))
        .map_err(|_| MerkleError::InvalidProof)
}

/// Checks that `proof` shows the tree (`old_size`, `old_root`) is a prefix of
/// the tree (`new_size`, `new_root`).
pub fn check_consistency(
    proof: &[TreeHash],
    old_size: u64,
    old_root: TreeHash,
    new_size: u64,
    new_root: TreeHash,
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::InvalidInput(format!(
            "old size {old_size} exceeds new size {new_size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(MerkleError::InvalidProof);
    }
    if old_size == 0 {
        // The empty tree is a prefix of every tree; its root is fixed.
        return if proof.is_empty() && old_root == TreeHash::EMPTY {
            Ok(())
        } else {
            Err(MerkleError::InvalidProof)
        };
    }
    tlog_tiles::check_tree(
        &to_tlog(proof),
        new_size,
        Hash(new_root.0),
        old_size,
        Hash(old_root.0),
    )
    .map_err(|_| MerkleError::InvalidProof)
}

/// A whole tree in memory: used to recompute a stored log from its entries.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    hashes: Vec<TreeHash>,
    size: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash; returns its index.
    pub fn push(&mut self, leaf: TreeHash) -> Result<u64, MerkleError> {
        let n = self.size;
        let new = hashes_to_store(n, leaf, &*self)?;
        self.hashes.extend(new);
        self.size += 1;
        Ok(n)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Every stored hash, in stored-hash-index order.
    pub fn stored_hashes(&self) -> &[TreeHash] {
        &self.hashes
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<TreeHash, MerkleError> {
        if size > self.size {
            return Err(MerkleError::InvalidInput(format!(
                "size {size} exceeds the tree's {}",
                self.size
            )));
        }
        root(size, self)
    }
}

impl HashStore for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, MerkleError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i))
                    .copied()
                    .ok_or_else(|| MerkleError::Storage(format!("no stored hash {i}")))
            })
            .collect()
    }
}

/// Adapts a [`HashStore`] to `tlog_tiles::HashReader`, keeping the store's own
/// error (the crate's error type has no room for it) and enforcing the
/// length contract the crate asserts on.
struct Reader<'a, S: HashStore> {
    store: &'a S,
    error: RefCell<Option<MerkleError>>,
}

impl<'a, S: HashStore> Reader<'a, S> {
    fn new(store: &'a S) -> Self {
        Self {
            store,
            error: RefCell::new(None),
        }
    }

    fn finish<T>(self, out: Result<T, tlog_tiles::Error>) -> Result<T, MerkleError> {
        match (out, self.error.into_inner()) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(stored)) => Err(stored),
            (Err(e), None) => Err(MerkleError::InvalidInput(e.to_string())),
        }
    }
}

impl<S: HashStore> HashReader for Reader<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let result = self.store.read_hashes(indexes).and_then(|v| {
            if v.len() == indexes.len() {
                Ok(v)
            } else {
                Err(MerkleError::Storage(format!(
                    "asked for {} hashes, got {}",
                    indexes.len(),
                    v.len()
                )))
            }
        });
        match result {
            Ok(v) => Ok(v.into_iter().map(|h| Hash(h.0)).collect()),
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                Err(tlog_tiles::Error::IndexesNotInTree)
            }
        }
    }
}

fn to_tlog(proof: &[TreeHash]) -> Vec<Hash> {
    proof.iter().map(|h| Hash(h.0)).collect()
}

fn from_tlog(proof: Vec<Hash>) -> Vec<TreeHash> {
    proof.into_iter().map(|h| TreeHash(h.0)).collect()
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// RFC 9162 §2.1.1 MTH, written out independently of `tlog_tiles`.
    fn mth(leaves: &[TreeHash]) -> TreeHash {
        match leaves.len() {
            0 => TreeHash::EMPTY,
            1 => leaves[0],
            n => {
                // k: the largest power of two smaller than n.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    fn tree(n: u64) -> (MemoryTree, Vec<TreeHash>) {
        let mut t = MemoryTree::new();
        let mut leaves = Vec::new();
        for i in 0..n {
            let l = leaf_hash(format!("entry {i}").as_bytes());
            leaves.push(l);
            t.push(l).unwrap();
        }
        (t, leaves)
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let (t, leaves) = tree(70);
        for size in 0..=70u64 {
            assert_eq!(
                t.root(size).unwrap(),
                mth(&leaves[..size as usize]),
                "size {size}"
            );
        }
        assert_eq!(t.stored_hashes().len() as u64, stored_hash_count(70));
    }

    #[test]
    fn every_inclusion_and_consistency_proof_checks() {
        let (t, leaves) = tree(37);
        for size in 1..=37u64 {
            let root = t.root(size).unwrap();
            for i in 0..size {
                let p = inclusion_proof(i, size, &t).unwrap();
                check_inclusion(&p, size, root, i, leaves[i as usize]).unwrap();
                assert_eq!(
                    check_inclusion(&p, size, root, i, leaf_hash(b"other")),
                    Err(MerkleError::InvalidProof)
                );
            }
            for old in 0..=size {
                let p = consistency_proof(old, size, &t).unwrap();
                check_consistency(&p, old, t.root(old).unwrap(), size, root).unwrap();
                if old > 0 && old < size {
                    assert_eq!(
                        check_consistency(&p, old, leaf_hash(b"x"), size, root),
                        Err(MerkleError::InvalidProof)
                    );
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let (t, leaves) = tree(5);
        let root = t.root(5).unwrap();
        assert!(check_inclusion(&[], 5, root, 9, leaves[0]).is_err());
        assert!(check_inclusion(&[root; 65], 5, root, 0, leaves[0]).is_err());
        assert!(check_inclusion(&[root; 10], 5, root, 0, leaves[0]).is_err());
        assert!(check_consistency(&[], 6, root, 5, root).is_err());
        assert!(check_consistency(&[root; 20], 3, root, 5, root).is_err());
        assert!(inclusion_proof(5, 5, &t).is_err());
        assert!(matches!(
            inclusion_proof(3, 9, &t),
            Err(MerkleError::Storage(_))
        ));
        assert_eq!(
            TreeHash::from_base64(&root.to_base64()).unwrap(),
            root,
            "base64 round trip"
        );
        assert!(TreeHash::from_base64("AAAA").is_err());
    }
}
