//! Signed checkpoints: the C2SP tlog-checkpoint body (origin, decimal size,
//! base64 root) in a C2SP signed note, signed with the log's Ed25519 key
//! (signed-note signature type 0x01), through the `signed_note` and
//! `tlog_tiles` crates (ports of Go's `golang.org/x/mod/sumdb/{note,tlog}`).
//!
//! Keys use the Go note key strings: `PRIVATE+KEY+<name>+<id>+<base64>` for the
//! signer and `<name>+<id>+<base64>` for the verifier, where the name is the
//! log's origin. Opening a checkpoint requires a valid signature by the given
//! key and an origin equal to the key's name; other signatures (witness
//! cosignatures) are ignored, as C2SP requires. This module never decides
//! whether a checkpoint is consistent with an earlier one: that is the log's
//! job (`AuditLog::checkpoint`) and the Merkle module's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use super::merkle::TreeHash;

/// The decisions log's origin (checkpoint first line and key name).
pub const ORIGIN: &str = "cc-inference-attestor/decisions";

/// A checkpoint that cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The key string is not a Go-style note key (or its id does not match).
    #[error("log key: {0}")]
    Key(String),
    /// The signed note is malformed or its signature does not verify.
    #[error("checkpoint signature: {0}")]
    Signature(String),
    /// The note's text is not a C2SP checkpoint.
    #[error("checkpoint body is malformed")]
    Body,
    /// The checkpoint names another log.
    #[error("checkpoint origin {found:?} is not the key's log {expected:?}")]
    Origin {
        /// The key's name.
        expected: String,
        /// The checkpoint's first line.
        found: String,
    },
}

/// A checkpoint whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The tree root.
    pub root: TreeHash,
    /// The signed note, verbatim.
    pub note: String,
}

/// The log's Ed25519 checkpoint signer.
#[derive(Clone)]
pub struct LogSigner {
    signer: StandardSigner,
    verifier_key: String,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    /// A fresh key named `name`; returns the signer and its private key string
    /// (`PRIVATE+KEY+…`) to store.
    pub fn generate(name: &str) -> Result<(Self, String), CheckpointError> {
        let (skey, _) = signed_note::generate_key(&mut rand_core::OsRng, name);
        Ok((Self::from_private_key(&skey)?, skey))
    }

    /// Loads a Go-style private note key.
    pub fn from_private_key(skey: &str) -> Result<Self, CheckpointError> {
        let skey = skey.trim();
        let signer = StandardSigner::new(skey).map_err(|e| CheckpointError::Key(e.to_string()))?;
        // signed_note does not expose the public key: derive it from the seed.
        let mut parts = skey.splitn(5, '+');
        let (Some(_), Some(_), Some(name), Some(_), Some(b64)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CheckpointError::Key("malformed private key".into()));
        };
        let raw = STANDARD
            .decode(b64)
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        let seed: [u8; 32] = match raw.split_first() {
            Some((0x01, seed)) => seed
                .try_into()
                .map_err(|_| CheckpointError::Key("Ed25519 seed is not 32 bytes".into()))?,
            _ => return Err(CheckpointError::Key("not an Ed25519 key".into())),
        };
        let verifying = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let verifier_key = signed_note::new_ed25519_verifier_key(name, &verifying);
        Ok(Self {
            signer,
            verifier_key,
        })
    }

    /// The verifier key string (`<name>+<id>+<base64>`), what `log_key.pub` holds.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Signs the checkpoint (`origin` = this key's name, `size`, `root`);
    /// returns the signed note.
    pub fn sign(&self, size: u64, root: TreeHash) -> Result<String, CheckpointError> {
        let name = signed_note::Signer::name(&self.signer).to_owned();
        let body = Checkpoint::new(&name, size, Hash(root.0), "")
            .map_err(|_| CheckpointError::Body)?
            .to_bytes();
        let mut note =
            Note::new(&body, &[]).map_err(|e| CheckpointError::Signature(e.to_string()))?;
        let signers: [&dyn signed_note::Signer; 1] = [&self.signer];
        note.add_sigs(&signers)
            .map_err(|e| CheckpointError::Signature(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::Signature(e.to_string()))
    }
}

/// Checks that `verifier_key` is a well-formed Ed25519 verifier key string;
/// returns its name (the log origin it signs for).
pub fn check_verifier_key(verifier_key: &str) -> Result<String, CheckpointError> {
    let verifier = StandardVerifier::new(verifier_key.trim())
        .map_err(|e| CheckpointError::Key(e.to_string()))?;
    Ok(signed_note::Verifier::name(&verifier).to_owned())
}

/// Verifies a signed checkpoint with `verifier_key` and parses its body.
pub fn open(note: &str, verifier_key: &str) -> Result<SignedCheckpoint, CheckpointError> {
    let verifier = StandardVerifier::new(verifier_key.trim())
        .map_err(|e| CheckpointError::Key(e.to_string()))?;
    let name = signed_note::Verifier::name(&verifier).to_owned();
    let known: Vec<Box<dyn signed_note::Verifier>> = vec![Box::new(verifier)];
    let parsed =
        Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::Signature(e.to_string()))?;
    parsed
        .verify(&VerifierList::new(known))
        .map_err(|e| CheckpointError::Signature(e.to_string()))?;
    let body = Checkpoint::from_bytes(parsed.text()).map_err(|_| CheckpointError::Body)?;
    if body.origin() != name {
        return Err(CheckpointError::Origin {
            expected: name,
            found: body.origin().to_owned(),
        });
    }
    Ok(SignedCheckpoint {
        origin: body.origin().to_owned(),
        size: body.size(),
        root: TreeHash(body.hash().0),
        note: note.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_open_and_refuse() {
        let (signer, skey) = LogSigner::generate(ORIGIN).unwrap();
        assert!(skey.starts_with("PRIVATE+KEY+cc-inference-attestor/decisions+"));
        let reloaded = LogSigner::from_private_key(&skey).unwrap();
        assert_eq!(reloaded.verifier_key(), signer.verifier_key());

        let root = TreeHash([7; 32]);
        let note = signer.sign(42, root).unwrap();
        let expected_body = format!("{ORIGIN}\n42\n{}\n\n— {ORIGIN} ", root.to_base64());
        assert!(note.starts_with(&expected_body), "{note}");

        let cp = open(&note, signer.verifier_key()).unwrap();
        assert_eq!((cp.size, cp.root, cp.origin.as_str()), (42, root, ORIGIN));

        // Another key with the same name: its id differs, so nothing verifies.
        let (other, _) = LogSigner::generate(ORIGIN).unwrap();
        assert!(matches!(
            open(&note, other.verifier_key()),
            Err(CheckpointError::Signature(_))
        ));
        // A changed body.
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            open(&forged, signer.verifier_key()),
            Err(CheckpointError::Signature(_))
        ));
        // An origin that is not the key's name.
        let (foreign, _) = LogSigner::generate("example.com/other").unwrap();
        let foreign_note = foreign.sign(1, root).unwrap();
        assert!(open(&foreign_note, foreign.verifier_key()).is_ok());
        assert!(open(&foreign_note, signer.verifier_key()).is_err());
    }

    #[test]
    fn unknown_cosignatures_are_ignored() {
        let (signer, _) = LogSigner::generate(ORIGIN).unwrap();
        let (witness, _) = LogSigner::generate("witness.example").unwrap();
        let note = signer.sign(3, TreeHash([1; 32])).unwrap();
        // A witness line appended (its signature is over the same body).
        let wnote = witness.sign(3, TreeHash([1; 32])).unwrap();
        let wline = wnote.lines().last().unwrap();
        let cosigned = format!("{note}{wline}\n");
        assert_eq!(open(&cosigned, signer.verifier_key()).unwrap().size, 3);
    }

    #[test]
    fn bad_keys() {
        assert!(LogSigner::from_private_key("PRIVATE+KEY+x+00000000+AAAA").is_err());
        assert!(open("x\n1\nAA==\n\n", "not a key").is_err());
    }
}
