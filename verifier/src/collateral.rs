//! Collateral: the vendor documents appraisal needs besides the evidence
//! itself, fetched from the vendors' services and kept in a local directory
//! that offline checks read with no network at all.
//!
//! - [`amd`]: AMD KDS (VCEK by product, chip id and reported TCB, including
//!   the Turin `hwid8` + `fmcSPL` form; `cert_chain`; CRL), `specs/snp-tdx.md` §2.1.
//! - [`intel`]: Intel PCS v4 (TDX TCB info by FMSPC, TD_QE identity, PCK CRLs,
//!   root CA CRL; issuer chains from URL-encoded headers), `specs/snp-tdx.md` §5.2.
//! - [`nvidia`]: NVIDIA RIM service (`{id, rim, sha256}` JSON) and OCSP,
//!   `specs/nvidia-gpu.md` §4.2 and §5.1.
//! - [`cache`]: the directory, freshness from the documents themselves, atomic writes.
//! - [`http`]: the transport seam (reqwest/rustls in production, fakes in tests)
//!   and the HTTP 429/503 back-off.
//!
//! This module never decides trust. It checks that a fetched document is the
//! one asked for and is well formed enough to know when it expires; every
//! signature and chain is verified at appraisal, on every use, against the
//! pinned roots. It never serves a CRL, TCB info, QE identity or OCSP response
//! past its `nextUpdate`, and never caches one that is already stale.
//!
//! # On-disk layout (the `--collateral DIR` that offline checks read)
//!
//! ```text
//! DIR/
//!   amd/<Product>/                      Product: Milan | Genoa | Turin (KDS path names)
//!     vcek_<hwid>_<tcb>.der             VCEK, DER. hwid: lowercase hex as in the KDS URL
//!                                       (128 digits; Turin: first 8 bytes, 16 digits);
//!                                       tcb: REPORTED_TCB as 16 hex digits. Never expires.
//!     cert_chain.pem                    ASK then ARK (KDS order). Until its first notAfter.
//!     crl.der                           VCEK-side CRL, DER. Until nextUpdate.
//!     vlek_cert_chain.pem, vlek_crl.der the same for VLEKs (ASVK then ARK).
//!   intel/                              names as testdata/tdx/collateral_tinfoil_2026-01
//!     tcb_info_<fmspc>.json             PCS body `{"tcbInfo":…,"signature":…}`, exact bytes;
//!                                       fmspc: 12 lowercase hex digits. Until tcbInfo.nextUpdate.
//!     tcb_signing_chain.pem             issuer chain of TCB info and QE identity
//!                                       (URL-decoded header). Until its first notAfter.
//!     qe_identity.json                  PCS body `{"enclaveIdentity":…,"signature":…}`.
//!                                       Until enclaveIdentity.nextUpdate.
//!     pck_crl_processor.der, pck_crl_platform.der              PCK CRLs, DER. Until nextUpdate.
//!     pck_crl_processor_chain.pem, pck_crl_platform_chain.pem  their issuer chains.
//!     root_ca_crl.der                   Intel SGX Root CA CRL, DER. Until nextUpdate.
//!   nvidia/
//!     rim/<id>.xml                      RIM XML as served (base64-decoded), e.g.
//!                                       NV_GPU_DRIVER_GH100_550.144.03.xml. Never expires
//!                                       (its signing chain's validity is checked at appraisal).
//!     ocsp/<issuer>_<serial>.der        OCSPResponse, DER. issuer: lowercase hex SHA-384 of the
//!                                       issuer certificate's subjectPublicKey bits (the
//!                                       CertID issuerKeyHash); serial: lowercase hex of the
//!                                       subject's serial number bytes. Until nextUpdate
//!                                       (thisUpdate + 1 h when the responder gives none).
//! ```
//!
//! Files whose names start with `.` are temporary writes in progress and are
//! never read.

pub mod amd;
pub mod cache;
pub mod http;
pub mod intel;
pub mod nvidia;

use std::path::PathBuf;

pub use cache::{CollateralCache, Expiry, Item, Lookup};
pub use http::{
    Backoff, HttpRequest, HttpResponse, ReqwestTransport, Sleeper, ThreadSleeper, Transport,
    TransportError,
};

use crate::time::UnixTime;

/// Base URLs of the vendor services. [`Endpoints::default`] is the vendors'
/// production hosts; tests and private mirrors (a PCCS, an NVIDIA Trust
/// Outpost) substitute their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// AMD Key Distribution Service.
    pub amd_kds: String,
    /// Intel Provisioning Certification Service (or a PCCS).
    pub intel_pcs: String,
    /// Where the Intel SGX Root CA CRL is fetched (its CRL distribution point).
    pub intel_root_ca_crl: String,
    /// NVIDIA RIM service.
    pub nvidia_rim: String,
    /// NVIDIA OCSP responder.
    pub nvidia_ocsp: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            amd_kds: amd::KDS_BASE.to_owned(),
            intel_pcs: intel::PCS_BASE.to_owned(),
            intel_root_ca_crl: intel::ROOT_CA_CRL_URL.to_owned(),
            nvidia_rim: nvidia::RIM_BASE.to_owned(),
            nvidia_ocsp: nvidia::OCSP_URL.to_owned(),
        }
    }
}

/// Everything a fetch needs besides the cache: transport, sleeper, back-off,
/// endpoints and the optional NVIDIA service key.
pub struct Fetcher {
    transport: Box<dyn Transport>,
    sleeper: Box<dyn Sleeper>,
    /// Retry schedule for 429/503.
    pub backoff: Backoff,
    /// Service base URLs.
    pub endpoints: Endpoints,
    /// Sent as `Authorization: Bearer …` to the NVIDIA RIM service and OCSP
    /// responder when set.
    pub nvidia_service_key: Option<String>,
    /// Fetch every item again even when the cache has it fresh (default:
    /// only missing or stale items are fetched).
    pub refresh_all: bool,
}

impl Fetcher {
    /// A fetcher over any transport and sleeper, with the default back-off
    /// and the vendors' endpoints.
    pub fn new(transport: Box<dyn Transport>, sleeper: Box<dyn Sleeper>) -> Self {
        Self {
            transport,
            sleeper,
            backoff: Backoff::default(),
            endpoints: Endpoints::default(),
            nvidia_service_key: None,
            refresh_all: false,
        }
    }

    /// The production fetcher: [`ReqwestTransport::new`] (HTTPS only) and
    /// real sleeping.
    pub fn online() -> Result<Self, CollateralError> {
        let transport = ReqwestTransport::new().map_err(|e| CollateralError::Transport {
            url: String::new(),
            reason: e.0,
        })?;
        Ok(Self::new(Box::new(transport), Box::new(ThreadSleeper)))
    }

    /// Replaces the endpoints.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Sends with back-off; only 2xx responses come back.
    pub fn send(&self, request: &HttpRequest) -> Result<HttpResponse, CollateralError> {
        http::send_with_backoff(
            self.transport.as_ref(),
            self.sleeper.as_ref(),
            &self.backoff,
            request,
        )
    }
}

/// Whether an item came from the network or was already fresh in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Fetched now and written to the cache.
    Fetched,
    /// Already in the cache and fresh at `now`; not fetched.
    Cached,
}

/// One item a fetch produced, for the CLI to print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fetched {
    /// The file in the cache.
    pub path: PathBuf,
    /// Fetched or already cached.
    pub source: Source,
    /// When the cache stops serving it.
    pub expires: Expiry,
}

/// Why a fetch or a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CollateralError {
    /// No response at all.
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    /// A non-success status that is not retried (404, 500, …).
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// Still HTTP 429 after every retry.
    #[error("{url}: rate limited (HTTP 429) after {attempts} attempts")]
    RateLimited { url: String, attempts: u32 },
    /// A document that is malformed or is not the one asked for.
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// A time-limited document already past its next update when received.
    #[error("{what}: stale (next update {next_update}, now {now})")]
    Stale {
        what: String,
        next_update: UnixTime,
        now: UnixTime,
    },
    /// An argument that cannot name a cache file (bad RIM id, FMSPC, …).
    #[error("{what}: {reason}")]
    BadArgument { what: String, reason: String },
    /// File system.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CollateralError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl ToString) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// Fetches `item` unless the cache already has it fresh at `now`, then stores it.
/// `produce` performs the network part and returns the bytes to store.
pub(crate) fn fetch_item(
    fetcher: &Fetcher,
    cache: &CollateralCache,
    item: &Item,
    now: UnixTime,
    produce: impl FnOnce() -> Result<Vec<u8>, CollateralError>,
) -> Result<Fetched, CollateralError> {
    if !fetcher.refresh_all
        && let Lookup::Fresh { expires, .. } = cache.lookup(item, now)?
    {
        return Ok(Fetched {
            path: cache.path(item),
            source: Source::Cached,
            expires,
        });
    }
    let bytes = produce()?;
    let expires = cache.put(item, &bytes, now)?;
    Ok(Fetched {
        path: cache.path(item),
        source: Source::Fetched,
        expires,
    })
}
