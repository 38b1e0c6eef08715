//! Intel Provisioning Certification Service v4 for TDX (`specs/snp-tdx.md`
//! §5.2; dcap-qvl 0.7.1 `src/collateral.rs`):
//!
//! - `{base}/tdx/certification/v4/tcb?fmspc={FMSPC}&update=standard` (or
//!   `update=early`, or `tcbEvaluationDataNumber=N`): body `{"tcbInfo":…,
//!   "signature":…}`, issuer chain in header `TCB-Info-Issuer-Chain`
//!   (`SGX-TCB-Info-Issuer-Chain` accepted too).
//! - `{base}/tdx/certification/v4/qe/identity?update=standard`: header
//!   `SGX-Enclave-Identity-Issuer-Chain`.
//! - `{base}/sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der`:
//!   header `SGX-PCK-CRL-Issuer-Chain`.
//! - Root CA CRL: from the Intel SGX Root CA's CRL distribution point
//!   ([`ROOT_CA_CRL_URL`]); a PCCS serves it at `{base}/sgx/certification/v4/rootcacrl`
//!   as hex text, which is accepted too.
//!
//! Issuer-chain headers are URL-encoded PEM and are stored decoded. Bodies are
//! stored exactly as received: the TCB info and QE identity signatures cover
//! the raw bytes of the inner JSON value, so they are never re-serialized.
//! Nothing here verifies signatures; appraisal (dcap-qvl) does, at `now`.

use serde::Deserialize;

use attestor::tdx::certs::{PckExtensions, pck_chain_from_pem};
use attestor::tdx::quote::Quote;

use super::cache::{CollateralCache, Expiry, Item, Lookup};
use super::http::{HttpRequest, HttpResponse, percent_decode};
use super::{CollateralError, Fetched, Fetcher, Source, fetch_item};
use crate::time::UnixTime;

/// Intel PCS host.
pub const PCS_BASE: &str = "https://api.trustedservices.intel.com";
/// CRL distribution point of the Intel SGX Root CA (read from the certificate).
pub const ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

/// Header carrying the TDX TCB info issuer chain.
pub const HEADER_TCB_INFO_CHAIN: &str = "TCB-Info-Issuer-Chain";
/// The SGX spelling of the same header (some PCCS versions send it for TDX).
pub const HEADER_SGX_TCB_INFO_CHAIN: &str = "SGX-TCB-Info-Issuer-Chain";
/// Header carrying the QE identity issuer chain.
pub const HEADER_QE_IDENTITY_CHAIN: &str = "SGX-Enclave-Identity-Issuer-Chain";
/// Header carrying the PCK CRL issuer chain.
pub const HEADER_PCK_CRL_CHAIN: &str = "SGX-PCK-CRL-Issuer-Chain";

/// The PCK CA whose CRL is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PckCa {
    /// Intel SGX PCK Processor CA.
    Processor,
    /// Intel SGX PCK Platform CA.
    Platform,
}

impl PckCa {
    /// Both CAs.
    pub const ALL: [PckCa; 2] = [PckCa::Processor, PckCa::Platform];

    /// `processor` or `platform` (the PCS `ca` parameter and the file names).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Processor => "processor",
            Self::Platform => "platform",
        }
    }
}

/// Which TCB evaluation data set to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcbUpdate {
    /// `update=standard` (the default).
    #[default]
    Standard,
    /// `update=early`.
    Early,
    /// `tcbEvaluationDataNumber=N`.
    Number(u32),
}

impl TcbUpdate {
    fn query(self) -> String {
        match self {
            Self::Standard => "update=standard".to_owned(),
            Self::Early => "update=early".to_owned(),
            Self::Number(n) => format!("tcbEvaluationDataNumber={n}"),
        }
    }
}

/// The TDX TCB info URL (FMSPC in upper-case hex, as dcap-qvl sends it).
pub fn tcb_info_url(base: &str, fmspc: &[u8; 6], update: TcbUpdate) -> String {
    format!(
        "{base}/tdx/certification/v4/tcb?fmspc={}&{}",
        hex::encode_upper(fmspc),
        update.query()
    )
}

/// The TD_QE identity URL.
pub fn qe_identity_url(base: &str, update: TcbUpdate) -> String {
    format!("{base}/tdx/certification/v4/qe/identity?{}", update.query())
}

/// The PCK CRL URL (DER encoding requested).
pub fn pck_crl_url(base: &str, ca: PckCa) -> String {
    format!(
        "{base}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
        ca.as_str()
    )
}

/// The FMSPC of a TDX quote, from the SGX extension of its embedded PCK leaf.
pub fn fmspc_from_quote(quote: &[u8]) -> Result<[u8; 6], CollateralError> {
    let what = "TDX quote";
    let quote = Quote::parse(quote).map_err(|e| CollateralError::invalid(what, e))?;
    let pem = quote
        .pck_chain_pem()
        .ok_or_else(|| CollateralError::invalid(what, "no embedded PCK certificate chain"))?;
    let chain = pck_chain_from_pem(pem).map_err(|e| CollateralError::invalid(what, e))?;
    let leaf = chain
        .first()
        .ok_or_else(|| CollateralError::invalid(what, "empty PCK certificate chain"))?;
    let ext = PckExtensions::from_der(leaf).map_err(|e| CollateralError::invalid(what, e))?;
    Ok(ext.fmspc.into_bytes())
}

/// Fetches what a TDX appraisal needs for `fmspc` into `cache`: TCB info and
/// QE identity (with their signing chain), both PCK CRLs (with chains) and the
/// root CA CRL. Items already fresh are not fetched again (unless
/// `fetcher.refresh_all`).
pub fn fetch_tdx(
    fetcher: &Fetcher,
    cache: &CollateralCache,
    fmspc: &[u8; 6],
    update: TcbUpdate,
    now: UnixTime,
) -> Result<Vec<Fetched>, CollateralError> {
    let base = fetcher.endpoints.intel_pcs.trim_end_matches('/');
    let mut out = Vec::new();
    out.extend(fetch_with_chain(
        fetcher,
        cache,
        &Item::TcbInfo { fmspc: *fmspc },
        &Item::TcbSigningChain,
        &tcb_info_url(base, fmspc, update),
        &[HEADER_TCB_INFO_CHAIN, HEADER_SGX_TCB_INFO_CHAIN],
        now,
    )?);
    out.extend(fetch_with_chain(
        fetcher,
        cache,
        &Item::QeIdentity,
        &Item::TcbSigningChain,
        &qe_identity_url(base, update),
        &[HEADER_QE_IDENTITY_CHAIN],
        now,
    )?);
    for ca in PckCa::ALL {
        out.extend(fetch_with_chain(
            fetcher,
            cache,
            &Item::PckCrl { ca },
            &Item::PckCrlChain { ca },
            &pck_crl_url(base, ca),
            &[HEADER_PCK_CRL_CHAIN],
            now,
        )?);
    }
    let url = fetcher.endpoints.intel_root_ca_crl.clone();
    out.push(fetch_item(fetcher, cache, &Item::RootCaCrl, now, || {
        crl_body(&fetcher.send(&HttpRequest::get(url))?.body)
    })?);
    Ok(out)
}

/// The issuer chain from the first of `names` present, URL-decoded.
pub fn issuer_chain(response: &HttpResponse, names: &[&str]) -> Result<String, CollateralError> {
    let value = names
        .iter()
        .find_map(|n| response.header(n))
        .ok_or_else(|| CollateralError::Invalid {
            what: "PCS response".to_owned(),
            reason: format!("missing header {}", names.join(" or ")),
        })?;
    percent_decode(value)
}

/// A CRL body as DER: DER as is, or the hex text a PCCS sends.
pub fn crl_body(body: &[u8]) -> Result<Vec<u8>, CollateralError> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| hex::decode(t.trim()).ok())
        .ok_or_else(|| CollateralError::invalid("CRL", "neither DER nor hex text"))
}

/// Fetches a document whose issuer chain arrives in a header, storing the
/// chain first; skipped when both are fresh.
fn fetch_with_chain(
    fetcher: &Fetcher,
    cache: &CollateralCache,
    doc: &Item,
    chain: &Item,
    url: &str,
    headers: &[&str],
    now: UnixTime,
) -> Result<[Fetched; 2], CollateralError> {
    if !fetcher.refresh_all
        && let (Lookup::Fresh { expires: e1, .. }, Lookup::Fresh { expires: e2, .. }) =
            (cache.lookup(doc, now)?, cache.lookup(chain, now)?)
    {
        let cached = |item: &Item, expires| Fetched {
            path: cache.path(item),
            source: Source::Cached,
            expires,
        };
        return Ok([cached(doc, e1), cached(chain, e2)]);
    }
    let response = fetcher.send(&HttpRequest::get(url))?;
    let chain_pem = issuer_chain(&response, headers)?;
    let body = match doc {
        Item::PckCrl { .. } | Item::RootCaCrl => crl_body(&response.body)?,
        _ => response.body,
    };
    // Validate the document (form and freshness) before touching the chain,
    // so a bad or stale response changes nothing on disk.
    if let Expiry::At(next_update) = doc.expiry(&body)?
        && now > next_update
    {
        return Err(CollateralError::Stale {
            what: doc.rel_path().display().to_string(),
            next_update,
            now,
        });
    }
    let chain_expiry = cache.put(chain, chain_pem.as_bytes(), now)?;
    let put_expiry = cache.put(doc, &body, now)?;
    let fetched = |item: &Item, expires| Fetched {
        path: cache.path(item),
        source: Source::Fetched,
        expires,
    };
    Ok([fetched(doc, put_expiry), fetched(chain, chain_expiry)])
}

#[derive(Deserialize)]
struct TcbInfoBody {
    #[serde(rename = "tcbInfo")]
    tcb_info: TcbInfoHead,
    signature: String,
}

#[derive(Deserialize)]
struct TcbInfoHead {
    fmspc: String,
    #[serde(rename = "nextUpdate")]
    next_update: String,
}

#[derive(Deserialize)]
struct QeIdentityBody {
    #[serde(rename = "enclaveIdentity")]
    enclave_identity: QeIdentityHead,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityHead {
    id: String,
    #[serde(rename = "nextUpdate")]
    next_update: String,
}

/// Checks a PCS TCB info body for `fmspc` and returns its `nextUpdate`.
pub(crate) fn tcb_info_expiry(
    what: &str,
    bytes: &[u8],
    fmspc: &[u8; 6],
) -> Result<Expiry, CollateralError> {
    let body: TcbInfoBody =
        serde_json::from_slice(bytes).map_err(|e| CollateralError::invalid(what, e))?;
    signature_hex(what, &body.signature)?;
    if !body
        .tcb_info
        .fmspc
        .eq_ignore_ascii_case(&hex::encode(fmspc))
    {
        return Err(CollateralError::invalid(
            what,
            format!(
                "TCB info is for FMSPC {}, not {}",
                body.tcb_info.fmspc,
                hex::encode(fmspc)
            ),
        ));
    }
    next_update(what, &body.tcb_info.next_update)
}

/// Checks a PCS TD_QE identity body and returns its `nextUpdate`.
pub(crate) fn qe_identity_expiry(what: &str, bytes: &[u8]) -> Result<Expiry, CollateralError> {
    let body: QeIdentityBody =
        serde_json::from_slice(bytes).map_err(|e| CollateralError::invalid(what, e))?;
    signature_hex(what, &body.signature)?;
    if body.enclave_identity.id != "TD_QE" {
        return Err(CollateralError::invalid(
            what,
            format!(
                "QE identity id {:?}, expected \"TD_QE\"",
                body.enclave_identity.id
            ),
        ));
    }
    next_update(what, &body.enclave_identity.next_update)
}

fn signature_hex(what: &str, signature: &str) -> Result<(), CollateralError> {
    match hex::decode(signature) {
        Ok(s) if s.len() == 64 => Ok(()),
        _ => Err(CollateralError::invalid(
            what,
            "signature is not 64 bytes of hex (ECDSA P-256 r||s)",
        )),
    }
}

fn next_update(what: &str, text: &str) -> Result<Expiry, CollateralError> {
    UnixTime::parse_rfc3339(text)
        .map(Expiry::At)
        .map_err(|e| CollateralError::invalid(what, format!("nextUpdate: {e}")))
}
