//! The `c2sp.org/tlog-proof@v1` text format (`.tlog-proof` files): a header
//! line, an optional `extra <base64>` line, `index <N>`, the inclusion proof
//! hashes (base64, leaf's sibling first), an empty line, then the signed
//! checkpoint verbatim.
//!
//! We put the entry's canonical JSON in `extra`, so one file carries entry,
//! proof and checkpoint. The spec says `extra` is unauthenticated: verifiers
//! only trust it after recomputing its leaf hash and checking the inclusion
//! proof against a checkpoint signed by a key they trust (`audit::verify_proof`).
//! This module only writes and parses; it never verifies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::merkle::{MAX_PROOF_HASHES, TreeHash};

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// The largest proof text we parse (a 64 KiB entry in base64, 64 hashes and a
/// checkpoint with cosignatures fit easily).
pub const MAX_PROOF_LEN: usize = 1 << 20;

/// A parsed (not verified) tlog proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque extra data; here, the entry's canonical JSON.
    pub extra: Option<Vec<u8>>,
    /// The entry's zero-based index.
    pub index: u64,
    /// The inclusion proof, from the leaf's sibling to the root's child.
    pub hashes: Vec<TreeHash>,
    /// The signed checkpoint, verbatim (ends with a newline).
    pub checkpoint: String,
}

/// A proof text that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tlog proof line {line}: {reason}")]
pub struct ProofFormatError {
    /// One-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl TlogProof {
    /// The proof as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(HEADER);
        out.push('\n');
        if let Some(extra) = &self.extra {
            out.push_str("extra ");
            out.push_str(&STANDARD.encode(extra));
            out.push('\n');
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&h.to_base64());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses a proof text.
    pub fn parse(text: &str) -> Result<Self, ProofFormatError> {
        let err = |line: usize, reason: &str| ProofFormatError {
            line,
            reason: reason.to_owned(),
        };
        if text.len() > MAX_PROOF_LEN {
            return Err(err(1, "proof is larger than 1 MiB"));
        }
        let mut rest = text;
        if next_line(&mut rest) != Some(HEADER) {
            return Err(err(1, "expected the header c2sp.org/tlog-proof@v1"));
        }
        let mut line = next_line(&mut rest).ok_or_else(|| err(2, "truncated"))?;
        let mut n = 2;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(
                STANDARD
                    .decode(b64)
                    .map_err(|e| err(n, &format!("extra is not base64: {e}")))?,
            );
            line = next_line(&mut rest).ok_or_else(|| err(3, "truncated"))?;
            n = 3;
        }
        let digits = line
            .strip_prefix("index ")
            .ok_or_else(|| err(n, "expected `index <N>`"))?;
        let index: u64 = digits
            .parse()
            .map_err(|_| err(n, "index is not a decimal number"))?;
        if index.to_string() != digits {
            return Err(err(n, "index has leading zeros or a sign"));
        }
        let mut hashes = Vec::new();
        loop {
            n += 1;
            let line = next_line(&mut rest).ok_or_else(|| err(n, "missing the empty line"))?;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(err(n, "more than 64 proof hashes"));
            }
            hashes.push(
                TreeHash::from_base64(line).map_err(|_| err(n, "not a base64 SHA-256 hash"))?,
            );
        }
        if rest.is_empty() {
            return Err(err(n + 1, "missing the checkpoint"));
        }
        Ok(Self {
            extra,
            index,
            hashes,
            checkpoint: rest.to_owned(),
        })
    }
}

/// Takes one `\n`-terminated line off the front of `rest`.
fn next_line<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (line, tail) = rest.split_once('\n')?;
    *rest = tail;
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TlogProof {
        TlogProof {
            extra: Some(b"{\"a\":1}".to_vec()),
            index: 5,
            hashes: vec![TreeHash([1; 32]), TreeHash([2; 32])],
            checkpoint: "o\n6\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n\n— o AAAAAAAA\n"
                .into(),
        }
    }

    #[test]
    fn round_trip() {
        let p = sample();
        let text = p.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra eyJhIjoxfQ==\nindex 5\nAQEB"));
        assert_eq!(TlogProof::parse(&text).unwrap(), p);
        let bare = TlogProof {
            extra: None,
            hashes: vec![],
            ..p
        };
        assert_eq!(TlogProof::parse(&bare.to_text()).unwrap(), bare);
    }

    #[test]
    fn malformed() {
        let text = sample().to_text();
        for (bad, line) in [
            (text.replacen("@v1", "@v2", 1), 1),
            (text.replacen("index 5", "index 05", 1), 3),
            (text.replacen("index 5", "index -5", 1), 3),
            (text.replacen("index 5", "idx 5", 1), 3),
            (text.replacen("extra eyJ", "extra !!", 1), 2),
            (text.replacen("AQEB", "AQE", 1), 4),
        ] {
            assert_eq!(TlogProof::parse(&bad).unwrap_err().line, line, "{bad}");
        }
        let cut = text.split("\n\n").next().unwrap();
        assert!(TlogProof::parse(cut).is_err());
        assert!(TlogProof::parse(&format!("{cut}\n\n")).is_err());
        assert!(TlogProof::parse("").is_err());
    }
}
