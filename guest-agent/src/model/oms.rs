//! The OpenSSF Model Signing (OMS) v1.0 manifest and in-toto statement.
//!
//! Follows `model_signing` 1.1 (sigstore/model-transparency): `hashing.Config`
//! defaults (`files` serialization, `sha256`, `allow_symlinks = false`, git
//! paths ignored), `manifest.Manifest.resource_descriptors` (resources sorted by
//! `PurePosixPath`, i.e. component by component, not as plain strings) and
//! `_signing.signing.Payload` (subject digest = SHA-256 over the concatenated
//! raw resource digests, in manifest order). A single-file model has one
//! resource named `"."` (Python's `path.relative_to(path)`).
//!
//! Never reads files: the digests come from [`super::load`]. The per-tensor
//! digests travel in an extra predicate field, `tensor_digests`, which OMS v1.0
//! verifiers ignore ("any other field should be ignored by verifiers").

use std::cmp::Ordering;
use std::collections::BTreeMap;

use attestor::digest::Sha256Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::safetensors::TensorDigest;
use super::{ModelCommitment, ModelError};

/// in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// OMS v1.0 predicate type.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The serialization method this module implements.
pub const METHOD_FILES: &str = "files";
/// The digest algorithm of every resource.
pub const HASH_SHA256: &str = "sha256";
/// The resource name of a model that is a single file.
pub const SINGLE_FILE_NAME: &str = ".";
/// Paths (relative to the model folder, with everything below them) that the
/// stock tool ignores by default (`ignore_git_paths = True`). Only at the top
/// level: `sub/.gitignore` is hashed, and so is `.gitmodules`.
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// How the manifest was serialized (`predicate.serialization`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serialization {
    /// Always `files` here.
    pub method: String,
    /// Always `sha256` here.
    pub hash_type: String,
    /// Always `false` here: symbolic links are refused.
    pub allow_symlinks: bool,
    /// Ignored paths relative to the model folder, sorted (the stock tool
    /// writes them in set order; verifiers do not use them for the root).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_paths: Vec<String>,
}

impl Serialization {
    /// The pinned `files`/`sha256`/no-symlinks serialization with these ignore paths.
    pub fn files_sha256(mut ignore_paths: Vec<String>) -> Self {
        ignore_paths.sort();
        ignore_paths.dedup();
        Self {
            method: METHOD_FILES.to_owned(),
            hash_type: HASH_SHA256.to_owned(),
            allow_symlinks: false,
            ignore_paths,
        }
    }
}

/// One file of the model (`predicate.resources[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// POSIX path relative to the model folder (`"."` for a single-file model).
    pub name: String,
    /// Digest algorithm: `sha256`.
    pub algorithm: String,
    /// SHA-256 of the file's content.
    pub digest: Sha256Digest,
}

impl Resource {
    /// A SHA-256 resource.
    pub fn sha256(name: impl Into<String>, digest: Sha256Digest) -> Self {
        Self {
            name: name.into(),
            algorithm: HASH_SHA256.to_owned(),
            digest,
        }
    }
}

/// The OMS v1.0 manifest of a model: sorted resources plus the extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The model folder's (or file's) name. Informative only: it is not hashed.
    pub model_name: String,
    /// How the resources were produced.
    pub serialization: Serialization,
    /// One resource per file, in OMS order (see [`compare_names`]).
    pub resources: Vec<Resource>,
    /// Extension: per-tensor digests of each `.safetensors` file, by resource name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tensor_digests: BTreeMap<String, Vec<TensorDigest>>,
}

impl Manifest {
    /// Builds a manifest, putting the resources in OMS order.
    pub fn new(
        model_name: String,
        serialization: Serialization,
        mut resources: Vec<Resource>,
        tensor_digests: BTreeMap<String, Vec<TensorDigest>>,
    ) -> Self {
        resources.sort_by(|a, b| compare_names(&a.name, &b.name));
        Self {
            model_name,
            serialization,
            resources,
            tensor_digests,
        }
    }

    /// The OMS v1.0 root: SHA-256 over the concatenated raw resource digests.
    pub fn root(&self) -> Sha256Digest {
        let mut hasher = Sha256::new();
        for resource in &self.resources {
            hasher.update(resource.digest.as_ref());
        }
        Sha256Digest::from(<[u8; 32]>::from(hasher.finalize()))
    }

    /// The commitment bound into evidence and receipts.
    pub fn commitment(&self) -> ModelCommitment {
        ModelCommitment::from_root(self.root())
    }

    /// The in-toto statement the stock tool would sign for this manifest
    /// (plus the `tensor_digests` extension when there is one).
    pub fn statement(&self) -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: vec![Subject {
                name: self.model_name.clone(),
                digest: SubjectDigest {
                    sha256: self.root(),
                },
            }],
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate: Predicate {
                serialization: self.serialization.clone(),
                resources: self.resources.clone(),
                tensor_digests: self.tensor_digests.clone(),
            },
        }
    }

    /// Reads a manifest back from a statement, checking it the way the stock
    /// verifier does: predicate type, one subject, SHA-256 resources, and a
    /// subject digest equal to the root recomputed over the resources.
    pub fn from_statement(statement: &Statement) -> Result<Self, StatementError> {
        if statement.statement_type != STATEMENT_TYPE {
            return Err(StatementError::StatementType {
                found: statement.statement_type.clone(),
            });
        }
        if statement.predicate_type != PREDICATE_TYPE {
            return Err(StatementError::PredicateType {
                found: statement.predicate_type.clone(),
            });
        }
        let [subject] = statement.subject.as_slice() else {
            return Err(StatementError::SubjectCount {
                found: statement.subject.len(),
            });
        };
        let s = &statement.predicate.serialization;
        if s.method != METHOD_FILES || s.hash_type != HASH_SHA256 {
            return Err(StatementError::Serialization {
                method: s.method.clone(),
                hash_type: s.hash_type.clone(),
            });
        }
        if let Some(r) = statement
            .predicate
            .resources
            .iter()
            .find(|r| r.algorithm != HASH_SHA256)
        {
            return Err(StatementError::Algorithm {
                name: r.name.clone(),
                algorithm: r.algorithm.clone(),
            });
        }
        // The root is over the resources in the order the statement lists them.
        let listed = Self {
            model_name: subject.name.clone(),
            serialization: s.clone(),
            resources: statement.predicate.resources.clone(),
            tensor_digests: statement.predicate.tensor_digests.clone(),
        };
        let found = listed.root();
        if found != subject.digest.sha256 {
            return Err(StatementError::RootMismatch {
                expected: subject.digest.sha256,
                found,
            });
        }
        Ok(Self::new(
            listed.model_name,
            listed.serialization,
            listed.resources,
            listed.tensor_digests,
        ))
    }
}

/// An in-toto Statement v1 carrying an OMS v1.0 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// `https://in-toto.io/Statement/v1`.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// Exactly one subject: the model name and the root digest.
    pub subject: Vec<Subject>,
    /// `https://model_signing/signature/v1.0`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// Serialization and resources.
    pub predicate: Predicate,
}

/// The statement's subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Model name (informative).
    pub name: String,
    /// The root digest.
    pub digest: SubjectDigest,
}

/// `{"sha256": "<root hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectDigest {
    /// The OMS root.
    pub sha256: Sha256Digest,
}

/// The OMS v1.0 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Predicate {
    /// How the resources were produced.
    pub serialization: Serialization,
    /// One entry per file, in OMS order.
    pub resources: Vec<Resource>,
    /// Extension (ignored by OMS v1.0 verifiers): per-tensor safetensors digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tensor_digests: BTreeMap<String, Vec<TensorDigest>>,
}

/// Why a statement is not an acceptable OMS v1.0 `files`/`sha256` manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// `_type` is not in-toto Statement v1.
    #[error("statement _type {found:?}, expected {STATEMENT_TYPE}")]
    StatementType {
        /// The type found.
        found: String,
    },
    /// `predicateType` is not OMS v1.0.
    #[error("predicateType {found:?}, expected {PREDICATE_TYPE}")]
    PredicateType {
        /// The type found.
        found: String,
    },
    /// Not exactly one subject.
    #[error("{found} subjects, expected exactly 1")]
    SubjectCount {
        /// How many there were.
        found: usize,
    },
    /// A serialization other than `files` with `sha256`.
    #[error("serialization {method}/{hash_type}, only files/sha256 is supported")]
    Serialization {
        /// The method found.
        method: String,
        /// The hash type found.
        hash_type: String,
    },
    /// A resource digest that is not SHA-256.
    #[error("resource {name:?}: algorithm {algorithm:?}, only sha256 is supported")]
    Algorithm {
        /// The resource.
        name: String,
        /// Its algorithm.
        algorithm: String,
    },
    /// The subject digest is not the root of the listed resources.
    #[error("subject digest {expected} but the resources hash to {found}")]
    RootMismatch {
        /// The subject's digest.
        expected: Sha256Digest,
        /// The root recomputed over the resources.
        found: Sha256Digest,
    },
}

/// OMS resource order: Python's `PurePosixPath` ordering, i.e. the lists of
/// path components compared lexicographically, each component by code point
/// (which is UTF-8 byte order). So `a/b` < `a-c` (`"a"` < `"a-c"`), while plain
/// string order would put `a-c` first.
pub fn compare_names(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// A relative ignore path, as components. Refuses absolute paths and `..`;
/// drops empty and `.` components (as `pathlib` does).
pub fn ignore_components(path: &str) -> Result<Vec<String>, ModelError> {
    let refuse = |reason| ModelError::IgnorePath {
        path: path.to_owned(),
        reason,
    };
    if path.starts_with('/') {
        return Err(refuse("must be relative to the model folder"));
    }
    let parts: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect();
    if parts.iter().any(|c| c == "..") {
        return Err(refuse("must not contain `..`"));
    }
    if parts.is_empty() {
        return Err(refuse("names the whole model folder"));
    }
    Ok(parts)
}

/// True when `components` is one of `ignored` or lies below one
/// (`PurePath.is_relative_to`, component-wise).
pub fn is_ignored(components: &[&str], ignored: &[Vec<String>]) -> bool {
    ignored.iter().any(|prefix| {
        prefix.len() <= components.len() && prefix.iter().zip(components).all(|(p, c)| p == c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_component_wise() {
        let mut names = vec!["a.b", "a-c", "a/b", "a/a", "B", "a", "ab/c", "é", "z"];
        names.sort_by(|a, b| compare_names(a, b));
        // Checked against Python: sorted(PurePosixPath(n) for n in names).
        assert_eq!(
            names,
            ["B", "a", "a/a", "a/b", "a-c", "a.b", "ab/c", "z", "é"]
        );
    }

    #[test]
    fn ignore_rules_are_prefixes_by_component() {
        let ignored: Vec<Vec<String>> = GIT_PATHS
            .iter()
            .map(|p| ignore_components(p).unwrap())
            .collect();
        assert!(is_ignored(&[".git"], &ignored));
        assert!(is_ignored(&[".git", "HEAD"], &ignored));
        assert!(is_ignored(&[".github", "workflows", "ci.yml"], &ignored));
        assert!(!is_ignored(&[".gitmodules"], &ignored));
        assert!(!is_ignored(&[".gitignore2"], &ignored));
        assert!(!is_ignored(&["sub", ".gitignore"], &ignored));
    }

    #[test]
    fn ignore_paths_are_normalised_or_refused() {
        assert_eq!(ignore_components("./a//b/").unwrap(), ["a", "b"]);
        assert!(ignore_components("/etc").is_err());
        assert!(ignore_components("a/../b").is_err());
        assert!(ignore_components("./").is_err());
    }

    #[test]
    fn root_is_sha256_over_concatenated_digests_in_order() {
        let d1 = Sha256Digest::of(b"one");
        let d2 = Sha256Digest::of(b"two");
        let m = Manifest::new(
            "m".into(),
            Serialization::files_sha256(vec![]),
            vec![Resource::sha256("b", d2), Resource::sha256("a", d1)],
            BTreeMap::new(),
        );
        assert_eq!(m.resources[0].name, "a");
        let mut cat = d1.as_ref().to_vec();
        cat.extend_from_slice(d2.as_ref());
        assert_eq!(m.root(), Sha256Digest::of(&cat));
    }

    #[test]
    fn statement_round_trips_and_is_checked() {
        let m = Manifest::new(
            "m".into(),
            Serialization::files_sha256(GIT_PATHS.map(String::from).to_vec()),
            vec![Resource::sha256("x", Sha256Digest::of(b"x"))],
            BTreeMap::new(),
        );
        let json = serde_json::to_string(&m.statement()).unwrap();
        let st: Statement = serde_json::from_str(&json).unwrap();
        assert_eq!(Manifest::from_statement(&st).unwrap(), m);

        let mut bad = st.clone();
        bad.subject[0].digest.sha256 = Sha256Digest::of(b"other");
        assert!(matches!(
            Manifest::from_statement(&bad),
            Err(StatementError::RootMismatch { .. })
        ));
        let mut bad = st.clone();
        bad.predicate_type = "https://model_signing/Digests/v0.1".into();
        assert!(matches!(
            Manifest::from_statement(&bad),
            Err(StatementError::PredicateType { .. })
        ));
        let mut bad = st.clone();
        bad.statement_type = "x".into();
        assert!(matches!(
            Manifest::from_statement(&bad),
            Err(StatementError::StatementType { .. })
        ));
        let mut bad = st.clone();
        bad.subject.clear();
        assert!(matches!(
            Manifest::from_statement(&bad),
            Err(StatementError::SubjectCount { found: 0 })
        ));
        let mut bad = st.clone();
        bad.predicate.serialization.method = "shards".into();
        assert!(matches!(
            Manifest::from_statement(&bad),
            Err(StatementError::Serialization { .. })
        ));
        let mut bad = st;
        bad.predicate.resources[0].algorithm = "blake3".into();
        assert!(matches!(
            Manifest::from_statement(&bad),
            Err(StatementError::Algorithm { .. })
        ));
    }
}
