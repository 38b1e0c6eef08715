//! Model identity: read every model file once, hash it while reading, and hand
//! exactly those bytes on for loading.
//!
//! The identity is the OpenSSF Model Signing (OMS) v1.0 manifest root
//! (sigstore/model-transparency, `model_signing` 1.x, predicate type
//! `https://model_signing/signature/v1.0`) with the default `files`
//! serialization: SHA-256 per file, resources sorted component-wise by POSIX
//! relative path, root = SHA-256 over the concatenated raw file digests. The
//! stock `model_signing` tool computes the same root for the same folder, so a
//! model owner's signed OMS bundle is a reference value the verifier can use
//! directly. See `shared/specs/receipts-and-logs.md` §4.1 and §8.4 and
//! `DESIGN.md` §1 and §3.
//!
//! What this module must never do: read a file twice, reopen a path after
//! hashing it, or hand on bytes other than the bytes that were hashed (that
//! would be a time-of-check/time-of-use gap between the commitment and the
//! weights). [`load_and_hash`] returns the bytes together with their digests;
//! loaders take the bytes from [`LoadedModel`], never a path.
//!
//! Submodules: [`oms`] (manifest, ordering, ignore rules, in-toto statement),
//! [`safetensors`] (bounds-checked header parser and per-tensor digests, an
//! extension field OMS v1.0 verifiers ignore), [`load`] (walk, parallel
//! read-and-hash, progress), [`sealed`] (model folders encrypted at rest under a
//! broker-held key: seal, and load with the same identity as the plaintext).

pub mod load;
pub mod oms;
pub mod safetensors;
pub mod sealed;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use attestor::ParseError;
use attestor::digest::Sha256Digest;
use attestor::sealed::SealError;

pub use load::{HashOptions, LoadedFile, LoadedModel, Progress, load_and_hash, load_and_hash_with};
pub use oms::{Manifest, Resource, Serialization, Statement, StatementError};
pub use safetensors::TensorDigest;

/// The model commitment bound into evidence and receipts: `sha256:<hex>` of the
/// OMS v1.0 manifest root.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelCommitment(Sha256Digest);

/// The prefix of the commitment's text form.
pub const COMMITMENT_PREFIX: &str = "sha256:";

impl ModelCommitment {
    /// Wraps an OMS v1.0 root digest.
    pub fn from_root(root: Sha256Digest) -> Self {
        Self(root)
    }

    /// The OMS v1.0 root digest (the in-toto subject's `sha256`).
    pub fn root(&self) -> &Sha256Digest {
        &self.0
    }
}

impl fmt::Display for ModelCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{COMMITMENT_PREFIX}{}", self.0)
    }
}

impl fmt::Debug for ModelCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelCommitment({self})")
    }
}

/// Why a `sha256:<hex>` commitment string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model commitment {text:?}: expected sha256:<64 lowercase hex digits>")]
pub struct CommitmentParseError {
    /// The text that was refused.
    pub text: String,
}

impl FromStr for ModelCommitment {
    type Err = CommitmentParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || CommitmentParseError {
            text: text.to_owned(),
        };
        let hex = text.strip_prefix(COMMITMENT_PREFIX).ok_or_else(err)?;
        // Only the canonical (lowercase) form, so one commitment has one spelling.
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        Sha256Digest::from_hex(hex).map(Self).map_err(|_| err())
    }
}

impl serde::Serialize for ModelCommitment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ModelCommitment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a model could not be loaded and hashed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An operating-system error on a path (open, read, stat, list).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link. The OMS serialization is pinned to
    /// `allow_symlinks = false`, as the stock tool's default, which refuses them.
    #[error("{}: is a symbolic link; model files must be regular files", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A socket, FIFO, device or other non-regular file.
    #[error("{}: neither a regular file nor a directory", path.display())]
    SpecialFile {
        /// The path.
        path: PathBuf,
    },
    /// A path component that is not UTF-8 cannot be named in the manifest.
    #[error("{}: file name is not valid UTF-8", path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// The folder holds no file to hash (after the ignore rules).
    #[error("{}: no model files to hash", path.display())]
    NoFiles {
        /// The folder.
        path: PathBuf,
    },
    /// The file's size changed between opening it and reaching its end.
    #[error("{}: changed while being read: {size_at_open} bytes at open, {found}", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// Its size when it was opened.
        size_at_open: u64,
        /// What was found instead: "ended early" or "grew".
        found: &'static str,
    },
    /// The file does not fit in this platform's address space.
    #[error("{}: {len} bytes do not fit in memory", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// A `.safetensors` file whose header is malformed.
    #[error("{}: {source}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, with field and offset.
        #[source]
        source: ParseError,
    },
    /// An ignore path that is absolute or leaves the model folder.
    #[error("ignore path {path:?}: {reason}")]
    IgnorePath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A sealed model folder given where a plaintext model was expected.
    #[error(
        "{}: is a sealed model folder (sealed.json); it loads only with its key from the key broker",
        path.display()
    )]
    SealedFolder {
        /// The folder.
        path: PathBuf,
    },
    /// A sealed folder's `sealed.json` is malformed or inconsistent.
    #[error("{}: {reason}", path.display())]
    SealedManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A sealed file (or a key file) failed to open: wrong key, altered,
    /// truncated, or sealed as another file.
    #[error("{}: {source}", path.display())]
    Unseal {
        /// The sealed file or key file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: SealError,
    },
    /// A file `sealed.json` lists has no sealed file in the folder.
    #[error("{}: listed in sealed.json but missing", path.display())]
    SealedMissing {
        /// The sealed file that should be there.
        path: PathBuf,
    },
    /// A file in a sealed folder that `sealed.json` does not list.
    #[error("{}: in the sealed folder but not listed in sealed.json", path.display())]
    SealedExtra {
        /// The unexpected file.
        path: PathBuf,
    },
    /// A decrypted file differs from its `sealed.json` entry.
    #[error("{path}: decrypted {field} is {found}, sealed.json says {expected}")]
    SealedFileMismatch {
        /// The file's path in the model.
        path: String,
        /// `size` or `sha256`.
        field: &'static str,
        /// The value in `sealed.json`.
        expected: String,
        /// The value of the decrypted bytes.
        found: String,
    },
    /// The decrypted model is not the model the sealed folder claims to be.
    #[error(
        "sealed model {}: the decrypted files give {found}, sealed.json claims {claimed}",
        dir.display()
    )]
    CommitmentMismatch {
        /// The sealed folder.
        dir: PathBuf,
        /// The commitment in `sealed.json` (what was attested).
        claimed: ModelCommitment,
        /// The OMS root of the decrypted files.
        found: ModelCommitment,
    },
    /// A key broker resource path that is not `REPO/TYPE/TAG`.
    #[error(
        "key resource {resource:?}: expected REPO/TYPE/TAG, three non-empty segments of letters, digits, `-`, `_`, `.`"
    )]
    KeyResource {
        /// The path as given.
        resource: String,
    },
    /// An output that already exists (never overwritten).
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_text_form_round_trips() {
        let root = Sha256Digest::of(b"root");
        let c = ModelCommitment::from_root(root);
        let text = c.to_string();
        assert_eq!(text, format!("sha256:{}", root.to_hex()));
        assert_eq!(text.parse::<ModelCommitment>().unwrap(), c);
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{text}\""));
        let back: ModelCommitment = serde_json::from_str(&format!("\"{text}\"")).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn commitment_rejects_other_forms() {
        let hex = Sha256Digest::of(b"x").to_hex();
        for bad in [
            hex.clone(),
            format!("sha384:{hex}"),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[..62]),
            format!("sha256:{hex}00"),
            "sha256:".to_owned(),
        ] {
            assert!(bad.parse::<ModelCommitment>().is_err(), "{bad}");
        }
    }
}
