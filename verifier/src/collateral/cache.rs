//! The collateral directory (layout in the [parent module](super)): typed
//! items, freshness read from the documents themselves, atomic writes.
//!
//! Nothing here trusts a document: a cached file is re-parsed on every lookup
//! to learn when it expires (there are no side files to fall out of step), and
//! appraisal re-verifies its signature against the pinned roots. A lookup
//! never returns a time-limited document past its next update; a write never
//! stores one that is already stale.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use der::Decode as _;
use x509_cert::crl::CertificateList;
use x509_ocsp::{BasicOcspResponse, OcspResponse, OcspResponseStatus};

use attestor::snp::certs::Product;
use attestor::snp::report::TcbVersion;

use super::CollateralError;
use super::amd::KdsKey;
use super::intel::PckCa;
use super::nvidia::{OcspKey, RimId};
use crate::appraise::x509::{Cert, certs_from_pem_or_der};
use crate::time::UnixTime;

/// An OCSP response without `nextUpdate` is served for this long after its
/// `thisUpdate` (NVAT's default, `specs/nvidia-gpu.md` §4.2).
pub const OCSP_DEFAULT_LIFETIME_SECS: i64 = 3600;

/// One document in the collateral directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// An AMD VCEK for one chip at one reported TCB (kept forever).
    Vcek {
        product: Product,
        /// KDS hwid, lowercase hex (Turin: 16 digits, else 128).
        hwid: String,
        tcb: TcbVersion,
    },
    /// AMD `cert_chain` (ASK or ASVK, then ARK).
    AmdCertChain { product: Product, key: KdsKey },
    /// AMD CRL.
    AmdCrl { product: Product, key: KdsKey },
    /// Intel TDX TCB info for one FMSPC.
    TcbInfo { fmspc: [u8; 6] },
    /// Issuer chain of TCB info and QE identity.
    TcbSigningChain,
    /// Intel TD_QE identity.
    QeIdentity,
    /// Intel PCK CRL of one CA.
    PckCrl { ca: PckCa },
    /// Issuer chain of a PCK CRL.
    PckCrlChain { ca: PckCa },
    /// Intel SGX Root CA CRL.
    RootCaCrl,
    /// An NVIDIA RIM (kept forever).
    Rim { id: RimId },
    /// An NVIDIA OCSP response for one certificate.
    Ocsp { key: OcspKey },
}

/// When the cache stops serving an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// Kept until removed (VCEKs, RIMs).
    Never,
    /// Served while `now <= t`.
    At(UnixTime),
}

impl Expiry {
    /// True when the item may be served at `now`.
    pub fn is_fresh(self, now: UnixTime) -> bool {
        match self {
            Self::Never => true,
            Self::At(t) => now <= t,
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Present and fresh at `now`.
    Fresh { bytes: Vec<u8>, expires: Expiry },
    /// Present but past its next update: never served.
    Stale { expired: UnixTime },
    /// Not in the cache.
    Missing,
}

impl Item {
    /// The VCEK item for a report's CHIP_ID and REPORTED_TCB (Turin: the KDS
    /// `hwid8` form, the first 8 bytes of CHIP_ID).
    pub fn vcek(product: Product, chip_id: &[u8; 64], tcb: TcbVersion) -> Self {
        Self::Vcek {
            product,
            hwid: super::amd::kds_hwid(product, chip_id),
            tcb,
        }
    }

    /// The path relative to the collateral directory.
    pub fn rel_path(&self) -> PathBuf {
        match self {
            Self::Vcek { product, hwid, tcb } => {
                amd_dir(*product).join(format!("vcek_{hwid}_{:016x}.der", tcb.0))
            }
            Self::AmdCertChain { product, key } => {
                amd_dir(*product).join(format!("{}cert_chain.pem", key.file_prefix()))
            }
            Self::AmdCrl { product, key } => {
                amd_dir(*product).join(format!("{}crl.der", key.file_prefix()))
            }
            Self::TcbInfo { fmspc } => {
                PathBuf::from(format!("intel/tcb_info_{}.json", hex::encode(fmspc)))
            }
            Self::TcbSigningChain => PathBuf::from("intel/tcb_signing_chain.pem"),
            Self::QeIdentity => PathBuf::from("intel/qe_identity.json"),
            Self::PckCrl { ca } => PathBuf::from(format!("intel/pck_crl_{}.der", ca.as_str())),
            Self::PckCrlChain { ca } => {
                PathBuf::from(format!("intel/pck_crl_{}_chain.pem", ca.as_str()))
            }
            Self::RootCaCrl => PathBuf::from("intel/root_ca_crl.der"),
            Self::Rim { id } => PathBuf::from(format!("nvidia/rim/{}.xml", id.as_str())),
            Self::Ocsp { key } => PathBuf::from(format!("nvidia/ocsp/{}.der", key.file_stem())),
        }
    }

    /// Checks that `bytes` are a well-formed document of this kind (and the
    /// one this item names), and returns when it expires. Signatures are not
    /// checked here: appraisal does that on every use.
    pub fn expiry(&self, bytes: &[u8]) -> Result<Expiry, CollateralError> {
        let what = self.rel_path().display().to_string();
        match self {
            Self::Vcek { .. } => {
                Cert::from_der(bytes, &what).map_err(|d| CollateralError::invalid(&what, d))?;
                Ok(Expiry::Never)
            }
            Self::Rim { .. } => {
                attestor::nvidia::rim::Rim::parse(bytes)
                    .map_err(|e| CollateralError::invalid(&what, e))?;
                Ok(Expiry::Never)
            }
            Self::AmdCertChain { .. } => chain_expiry(&what, bytes, Some(2)),
            Self::TcbSigningChain | Self::PckCrlChain { .. } => chain_expiry(&what, bytes, None),
            Self::AmdCrl { .. } | Self::PckCrl { .. } | Self::RootCaCrl => crl_expiry(&what, bytes),
            Self::TcbInfo { fmspc } => super::intel::tcb_info_expiry(&what, bytes, fmspc),
            Self::QeIdentity => super::intel::qe_identity_expiry(&what, bytes),
            Self::Ocsp { key } => ocsp_expiry(&what, bytes, key),
        }
    }
}

/// A collateral directory. Creating one touches nothing on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollateralCache {
    dir: PathBuf,
}

impl CollateralCache {
    /// The cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `item` lives.
    pub fn path(&self, item: &Item) -> PathBuf {
        self.dir.join(item.rel_path())
    }

    /// The item's bytes when present and fresh at `now`, else `None` (missing
    /// or stale). A present file that does not parse is an error, not a miss.
    pub fn get(&self, item: &Item, now: UnixTime) -> Result<Option<Vec<u8>>, CollateralError> {
        Ok(match self.lookup(item, now)? {
            Lookup::Fresh { bytes, .. } => Some(bytes),
            Lookup::Stale { .. } | Lookup::Missing => None,
        })
    }

    /// Like [`Self::get`], but says whether a miss was a stale document (so
    /// appraisal can report "collateral expired" rather than "missing").
    pub fn lookup(&self, item: &Item, now: UnixTime) -> Result<Lookup, CollateralError> {
        let path = self.path(item);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Missing),
            Err(source) => return Err(CollateralError::Io { path, source }),
        };
        let expires = item.expiry(&bytes)?;
        Ok(match expires {
            Expiry::At(t) if !expires.is_fresh(now) => Lookup::Stale { expired: t },
            _ => Lookup::Fresh { bytes, expires },
        })
    }

    /// Validates `bytes` for `item` and writes them atomically (temporary file
    /// in the same directory, fsync, rename). Refuses a document already stale
    /// at `now`.
    pub fn put(&self, item: &Item, bytes: &[u8], now: UnixTime) -> Result<Expiry, CollateralError> {
        let expires = item.expiry(bytes)?;
        if let Expiry::At(next_update) = expires
            && !expires.is_fresh(now)
        {
            return Err(CollateralError::Stale {
                what: item.rel_path().display().to_string(),
                next_update,
                now,
            });
        }
        write_atomic(&self.path(item), bytes)?;
        Ok(expires)
    }

    /// Every OCSP response in `nvidia/ocsp/` that is fresh at `now` (for
    /// appraisal, which matches them to certificates by CertID). Unreadable
    /// or stale files are skipped.
    pub fn ocsp_responses(&self, now: UnixTime) -> Result<Vec<Vec<u8>>, CollateralError> {
        let dir = self.dir.join("nvidia/ocsp");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CollateralError::Io { path: dir, source }),
        };
        let mut out = Vec::new();
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let Some(key) = name.strip_suffix(".der").and_then(OcspKey::from_file_stem) else {
                continue;
            };
            if let Ok(Some(bytes)) = self.get(&Item::Ocsp { key }, now) {
                out.push(bytes);
            }
        }
        Ok(out)
    }
}

fn amd_dir(product: Product) -> PathBuf {
    Path::new("amd").join(product.name())
}

fn chain_expiry(what: &str, bytes: &[u8], exact: Option<usize>) -> Result<Expiry, CollateralError> {
    let certs =
        certs_from_pem_or_der(bytes, what).map_err(|d| CollateralError::invalid(what, d))?;
    if certs.is_empty() || exact.is_some_and(|n| n != certs.len()) {
        return Err(CollateralError::invalid(
            what,
            format!(
                "expected {} certificates, found {}",
                exact.unwrap_or(1),
                certs.len()
            ),
        ));
    }
    let first_expiry = certs
        .iter()
        .map(Cert::not_after)
        .min()
        .unwrap_or(UnixTime(0));
    Ok(Expiry::At(first_expiry))
}

/// `nextUpdate` of a DER CRL; a CRL without one is refused (its freshness
/// could not be judged).
pub(crate) fn crl_expiry(what: &str, bytes: &[u8]) -> Result<Expiry, CollateralError> {
    let crl = CertificateList::from_der(bytes)
        .map_err(|e| CollateralError::invalid(what, format!("not a DER CRL: {e}")))?;
    let next = crl
        .tbs_cert_list
        .next_update
        .ok_or_else(|| CollateralError::invalid(what, "CRL has no nextUpdate"))?;
    Ok(Expiry::At(UnixTime::from_x509(&next)))
}

/// The expiry of an OCSP response for `key`: successful, a BasicOCSPResponse,
/// a SingleResponse for the key's serial (and issuer key hash when it uses
/// SHA-384), and its `nextUpdate` (or `thisUpdate` + 1 h).
pub(crate) fn ocsp_expiry(
    what: &str,
    bytes: &[u8],
    key: &OcspKey,
) -> Result<Expiry, CollateralError> {
    let response = OcspResponse::from_der(bytes)
        .map_err(|e| CollateralError::invalid(what, format!("not a DER OCSPResponse: {e}")))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(CollateralError::invalid(
            what,
            format!("responder status {:?}", response.response_status),
        ));
    }
    let body = response
        .response_bytes
        .ok_or_else(|| CollateralError::invalid(what, "no responseBytes"))?;
    if body.response_type != super::nvidia::ID_PKIX_OCSP_BASIC {
        return Err(CollateralError::invalid(
            what,
            format!(
                "response type {} is not id-pkix-ocsp-basic",
                body.response_type
            ),
        ));
    }
    let basic = BasicOcspResponse::from_der(body.response.as_bytes())
        .map_err(|e| CollateralError::invalid(what, format!("BasicOCSPResponse: {e}")))?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| key.matches(&r.cert_id))
        .ok_or_else(|| {
            CollateralError::invalid(what, "no SingleResponse for the requested certificate")
        })?;
    let secs = |t: &x509_ocsp::OcspGeneralizedTime| {
        UnixTime(i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX))
    };
    Ok(Expiry::At(match &single.next_update {
        Some(t) => secs(t),
        None => UnixTime(
            secs(&single.this_update)
                .0
                .saturating_add(OCSP_DEFAULT_LIFETIME_SECS),
        ),
    }))
}

/// Writes through a temporary sibling and a rename, so readers see either the
/// old file or the whole new one, never a torn write.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CollateralError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CollateralError::Io { path, source }
    };
    let dir = path.parent().ok_or_else(|| CollateralError::BadArgument {
        what: path.display().to_string(),
        reason: "no parent directory".to_owned(),
    })?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Persist the rename itself; not every platform can open a directory.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
