//! Offline TDX collateral in its two on-disk forms, turned into dcap-qvl's
//! `QuoteCollateralV3` for one quote.
//!
//! - **Bundle**: one JSON file in dcap-qvl's `QuoteCollateralV3` shape (PEM
//!   issuer chains, hex DER CRLs, the exact signed `tcbInfo` /
//!   `enclaveIdentity` JSON text, hex raw `r ‖ s` signatures), as dcap-qvl's
//!   samples and the simulator write it.
//! - **PCS directory**: the Intel PCS v4 response bodies as files (the names of
//!   `testdata/tdx/collateral_tinfoil_2026-01/` and of the collateral cache's
//!   `intel/` folder): `tcb_info_<fmspc>.json` (`{"tcbInfo": …, "signature":
//!   hex}`, optional `tcb_info_<fmspc>_chain.pem`), `qe_identity.json`
//!   (`{"enclaveIdentity": …, "signature": hex}`, optional
//!   `qe_identity_chain.pem`), `tcb_signing_chain.pem` (the default issuer
//!   chain of both), `pck_crl_<ca>.der` with `pck_crl_<ca>_chain.pem`, and
//!   `root_ca_crl.der`. The TCB info is chosen by the quote's FMSPC and the
//!   PCK CRL by the PCK certificate's issuer.
//!
//! Intel signs the exact bytes of the `tcbInfo` / `enclaveIdentity` value, so
//! those bytes are sliced out of the file text, never re-serialized. Nothing
//! here checks a signature, a date or a chain: dcap-qvl does, in
//! [`super::appraise`]. Loading errors are operator errors
//! ([`CollateralError`]); a piece missing for one quote is a
//! `collateral_missing` denial.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use der::Decode as _;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

pub use dcap_qvl::QuoteCollateralV3;

use crate::denial::{Denial, DenialCode};

/// TDX collateral for offline appraisal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TdxCollateral {
    /// One dcap-qvl `QuoteCollateralV3`, used as is.
    Bundle(QuoteCollateralV3),
    /// Intel PCS files from a directory, resolved per quote.
    Pcs(PcsCollateral),
}

/// Intel PCS collateral files, as read from a directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcsCollateral {
    /// The directory they came from (for messages).
    pub dir: PathBuf,
    /// TDX TCB info by FMSPC (lowercase hex).
    pub tcb_infos: BTreeMap<String, SignedJson>,
    /// Issuer chains (PEM) of individual TCB infos, by FMSPC (lowercase hex).
    pub tcb_info_chains: BTreeMap<String, String>,
    /// The TD_QE identity.
    pub qe_identity: Option<SignedJson>,
    /// The QE identity's issuer chain (PEM), when not the TCB signing chain.
    pub qe_identity_chain: Option<String>,
    /// The "Intel SGX TCB Signing" chain (PEM): the default issuer of both.
    pub tcb_signing_chain: Option<String>,
    /// PCK CRLs (`pck_crl_<ca>.der`) with their issuer chains.
    pub pck_crls: Vec<PckCrl>,
    /// The Intel SGX Root CA CRL (DER).
    pub root_ca_crl: Option<Vec<u8>>,
}

/// A signed PCS JSON document: the exact signed text and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedJson {
    /// The exact bytes of the signed value (`tcbInfo` / `enclaveIdentity`).
    pub body: String,
    /// Raw ECDSA P-256 `r ‖ s`.
    pub signature: Vec<u8>,
}

/// One PCK CRL with its issuer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckCrl {
    /// `<ca>` from the file name (`platform`, `processor`).
    pub name: String,
    /// The CRL (DER).
    pub der: Vec<u8>,
    /// Its issuer chain (PEM).
    pub issuer_chain: String,
}

/// Collateral that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CollateralError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file's content is not what its name says.
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A directory holds no TDX collateral at all.
    #[error("{}: no TDX collateral files (tcb_info_<fmspc>.json, qe_identity.json, …)", dir.display())]
    Empty { dir: PathBuf },
}

impl CollateralError {
    /// The denial to report when appraisal must go on without this collateral.
    pub fn to_denial(&self) -> Denial {
        Denial::new(DenialCode::CollateralInvalid, self.to_string())
    }
}

impl TdxCollateral {
    /// A bundle JSON file, or a PCS directory (or a cache folder holding `intel/`).
    pub fn from_path(path: &Path) -> Result<Self, CollateralError> {
        if path.is_dir() {
            let intel = path.join("intel");
            let dir = if intel.is_dir() {
                intel
            } else {
                path.to_path_buf()
            };
            return PcsCollateral::from_dir(&dir).map(Self::Pcs);
        }
        let bytes = read(path)?;
        Self::from_json(&bytes).map_err(|e| match e {
            CollateralError::Invalid { reason, .. } => CollateralError::Invalid {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// A dcap-qvl `QuoteCollateralV3` JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CollateralError> {
        serde_json::from_slice::<QuoteCollateralV3>(bytes)
            .map(Self::Bundle)
            .map_err(|e| CollateralError::Invalid {
                path: PathBuf::from("<json>"),
                reason: format!("not a QuoteCollateralV3 document: {e}"),
            })
    }

    /// The collateral for a quote whose PCK certificate names `fmspc` and was
    /// issued by `pck_issuer`.
    pub fn resolve(&self, fmspc: &str, pck_issuer: &Name) -> Result<QuoteCollateralV3, Denial> {
        match self {
            Self::Bundle(b) => Ok(b.clone()),
            Self::Pcs(p) => p.resolve(fmspc, pck_issuer),
        }
    }
}

impl PcsCollateral {
    /// Reads every recognized file of `dir`; unknown files are ignored.
    pub fn from_dir(dir: &Path) -> Result<Self, CollateralError> {
        let entries = std::fs::read_dir(dir).map_err(|source| CollateralError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| CollateralError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        let mut out = Self {
            dir: dir.to_path_buf(),
            ..Self::default()
        };
        let mut crl_chains = BTreeMap::new();
        let mut crls = BTreeMap::new();
        for name in &names {
            let path = dir.join(name);
            if let Some(fmspc) = name
                .strip_prefix("tcb_info_")
                .and_then(|n| n.strip_suffix("_chain.pem"))
            {
                out.tcb_info_chains
                    .insert(fmspc.to_ascii_lowercase(), read_text(&path)?);
            } else if let Some(fmspc) = name
                .strip_prefix("tcb_info_")
                .and_then(|n| n.strip_suffix(".json"))
            {
                let text = read_text(&path)?;
                let signed =
                    signed_json(&text, "tcbInfo").map_err(|reason| CollateralError::Invalid {
                        path: path.clone(),
                        reason,
                    })?;
                out.tcb_infos.insert(fmspc.to_ascii_lowercase(), signed);
            } else if name == "qe_identity.json" {
                let text = read_text(&path)?;
                let signed = signed_json(&text, "enclaveIdentity").map_err(|reason| {
                    CollateralError::Invalid {
                        path: path.clone(),
                        reason,
                    }
                })?;
                out.qe_identity = Some(signed);
            } else if name == "qe_identity_chain.pem" {
                out.qe_identity_chain = Some(read_text(&path)?);
            } else if name == "tcb_signing_chain.pem" {
                out.tcb_signing_chain = Some(read_text(&path)?);
            } else if name == "root_ca_crl.der" {
                out.root_ca_crl = Some(read(&path)?);
            } else if let Some(ca) = name
                .strip_prefix("pck_crl_")
                .and_then(|n| n.strip_suffix("_chain.pem"))
            {
                crl_chains.insert(ca.to_owned(), read_text(&path)?);
            } else if let Some(ca) = name
                .strip_prefix("pck_crl_")
                .and_then(|n| n.strip_suffix(".der"))
            {
                crls.insert(ca.to_owned(), (path.clone(), read(&path)?));
            }
        }
        for (name, (path, der)) in crls {
            let issuer_chain =
                crl_chains
                    .remove(&name)
                    .ok_or_else(|| CollateralError::Invalid {
                        path: path.clone(),
                        reason: format!("no issuer chain pck_crl_{name}_chain.pem beside it"),
                    })?;
            CertificateList::from_der(&der).map_err(|e| CollateralError::Invalid {
                path,
                reason: format!("not a DER CRL: {e}"),
            })?;
            out.pck_crls.push(PckCrl {
                name,
                der,
                issuer_chain,
            });
        }
        if out.tcb_infos.is_empty() && out.qe_identity.is_none() && out.pck_crls.is_empty() {
            return Err(CollateralError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(out)
    }

    /// The `QuoteCollateralV3` for one quote; a missing piece is `collateral_missing`.
    pub fn resolve(&self, fmspc: &str, pck_issuer: &Name) -> Result<QuoteCollateralV3, Denial> {
        let fmspc = fmspc.to_ascii_lowercase();
        let dir = self.dir.display();
        let missing = |what: String| {
            Denial::value(
                DenialCode::CollateralMissing,
                format!("{what} not in {dir}"),
                "fmspc",
                &fmspc,
            )
        };
        let tcb_info = self.tcb_infos.get(&fmspc).ok_or_else(|| {
            let have: Vec<&str> = self.tcb_infos.keys().map(String::as_str).collect();
            missing(format!(
                "TCB info for FMSPC {fmspc} (have: {})",
                have.join(", ")
            ))
        })?;
        let tcb_info_chain = self
            .tcb_info_chains
            .get(&fmspc)
            .or(self.tcb_signing_chain.as_ref())
            .ok_or_else(|| missing("TCB info issuer chain (tcb_signing_chain.pem)".into()))?;
        let qe_identity = self
            .qe_identity
            .as_ref()
            .ok_or_else(|| missing("QE identity (qe_identity.json)".into()))?;
        let qe_identity_chain = self
            .qe_identity_chain
            .as_ref()
            .or(self.tcb_signing_chain.as_ref())
            .ok_or_else(|| missing("QE identity issuer chain (tcb_signing_chain.pem)".into()))?;
        let root_ca_crl = self
            .root_ca_crl
            .as_ref()
            .ok_or_else(|| missing("root CA CRL (root_ca_crl.der)".into()))?;
        let pck_crl = self
            .pck_crls
            .iter()
            .find(|c| {
                CertificateList::from_der(&c.der)
                    .is_ok_and(|crl| &crl.tbs_cert_list.issuer == pck_issuer)
            })
            .ok_or_else(|| missing(format!("PCK CRL issued by {pck_issuer}")))?;
        Ok(QuoteCollateralV3 {
            pck_crl_issuer_chain: pck_crl.issuer_chain.clone(),
            root_ca_crl: root_ca_crl.clone(),
            pck_crl: pck_crl.der.clone(),
            tcb_info_issuer_chain: tcb_info_chain.clone(),
            tcb_info: tcb_info.body.clone(),
            tcb_info_signature: tcb_info.signature.clone(),
            qe_identity_issuer_chain: qe_identity_chain.clone(),
            qe_identity: qe_identity.body.clone(),
            qe_identity_signature: qe_identity.signature.clone(),
            pck_certificate_chain: None,
        })
    }
}

/// Splits a PCS document `{"<member>": {…}, "signature": "<hex>"}` into the
/// exact text of the member's value and the decoded signature.
pub fn signed_json(text: &str, member: &str) -> Result<SignedJson, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let signature = value
        .get("signature")
        .and_then(|s| s.as_str())
        .ok_or("no \"signature\" string")?;
    let signature = hex::decode(signature).map_err(|e| format!("signature is not hex: {e}"))?;
    if !value.get(member).is_some_and(|v| v.is_object()) {
        return Err(format!("no \"{member}\" object"));
    }
    let body = top_level_member(text, member)
        .ok_or_else(|| format!("cannot locate the \"{member}\" value in the text"))?;
    Ok(SignedJson {
        body: body.to_owned(),
        signature,
    })
}

/// The exact text of a top-level member's value in a JSON object (the text
/// must already be known to be valid JSON).
fn top_level_member<'a>(text: &'a str, member: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) == Some(&b'}') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = text.get(i + 1..key_end - 1)?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = value_end(b, start)?;
        if key == member {
            return text.get(start..end);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Index just past the string starting at `i` (which must be a `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// Index just past the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            Some(j)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CollateralError> {
    std::fs::read(path).map_err(|source| CollateralError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, CollateralError> {
    String::from_utf8(read(path)?).map_err(|e| CollateralError::Invalid {
        path: path.to_path_buf(),
        reason: format!("not UTF-8: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_text_is_sliced_exactly() {
        let text = r#" { "a" : [1, {"x":"}"}], "tcbInfo" : {"id":"TDX","s":"q\"}","n":[1,2]} ,
            "signature":"00ff" }"#;
        let s = signed_json(text, "tcbInfo").unwrap();
        assert_eq!(s.body, r#"{"id":"TDX","s":"q\"}","n":[1,2]}"#);
        assert_eq!(s.signature, vec![0x00, 0xff]);
        assert_eq!(top_level_member(text, "a"), Some(r#"[1, {"x":"}"}]"#));
        assert_eq!(top_level_member(text, "signature"), Some(r#""00ff""#));
        assert_eq!(top_level_member(text, "missing"), None);
        assert!(signed_json(r#"{"tcbInfo":{}}"#, "tcbInfo").is_err());
        assert!(signed_json(r#"{"tcbInfo":1,"signature":"00"}"#, "tcbInfo").is_err());
        assert!(signed_json("{\"tcbInfo\":{", "tcbInfo").is_err());
    }

    #[test]
    fn truncated_json_never_panics() {
        let text = r#"{"tcbInfo":{"a":"b\\","c":[{"d":1}]},"signature":"0a"}"#;
        for cut in 0..text.len() {
            if let Some(prefix) = text.get(..cut) {
                let _ = top_level_member(prefix, "tcbInfo");
                let _ = top_level_member(prefix, "signature");
            }
        }
        assert_eq!(
            top_level_member(text, "tcbInfo"),
            Some(r#"{"a":"b\\","c":[{"d":1}]}"#)
        );
    }
}
