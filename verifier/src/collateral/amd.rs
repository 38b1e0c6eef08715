//! AMD Key Distribution Service (`specs/snp-tdx.md` §2.1; go-sev-guest
//! `kds/kds.go` and PR #193 for Turin, virtee/snpguest `src/fetch.rs`).
//!
//! - VCEK (Milan, Genoa): `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`,
//!   hwid = the 64-byte CHIP_ID as 128 hex digits.
//! - VCEK (Turin): `/vcek/v1/Turin/{hwid8}?fmcSPL=..&blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`,
//!   hwid8 = the first 8 bytes of CHIP_ID (16 hex digits).
//! - SPL values come from the report's REPORTED_TCB, read in the product's TCB
//!   layout, written as at least two decimal digits (`{:02}`, as snpguest does;
//!   KDS also accepts go-sev-guest's plain `%d`).
//! - `/{vcek|vlek}/v1/{product}/cert_chain` (PEM, ASK or ASVK first, then ARK)
//!   and `/{vcek|vlek}/v1/{product}/crl` (DER, signed by the ARK).
//!
//! VCEKs are immutable per (product, hwid, TCB) and kept forever; KDS rate
//! limits (HTTP 429), which the shared back-off handles. Nothing fetched here
//! is trusted: appraisal verifies VCEK, chain and CRL against the pinned ARK.

use attestor::snp::certs::Product;
use attestor::snp::report::{Report, SigningKey, TcbVersion};

use super::cache::{CollateralCache, Item};
use super::http::HttpRequest;
use super::{CollateralError, Fetched, Fetcher, fetch_item};
use crate::time::UnixTime;

/// AMD KDS host.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

/// Which endorsement key family a chain or CRL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KdsKey {
    /// Versioned Chip Endorsement Key (ASK issues it).
    Vcek,
    /// Versioned Loaded Endorsement Key (ASVK issues it).
    Vlek,
}

impl KdsKey {
    /// The KDS path segment (`vcek`, `vlek`).
    pub const fn path(self) -> &'static str {
        match self {
            Self::Vcek => "vcek",
            Self::Vlek => "vlek",
        }
    }

    /// Prefix of this key's file names in `amd/<product>/` (none for VCEK).
    pub(crate) const fn file_prefix(self) -> &'static str {
        match self {
            Self::Vcek => "",
            Self::Vlek => "vlek_",
        }
    }
}

/// What signed the report, and so what to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnpSigner {
    /// A VCEK: fetched by CHIP_ID and REPORTED_TCB, with its chain and CRL.
    Vcek {
        chip_id: [u8; 64],
        reported_tcb: TcbVersion,
    },
    /// A VLEK: only its chain and CRL can be fetched (the VLEK itself needs
    /// CSP credentials and comes from the host's certificate table).
    Vlek,
}

impl SnpSigner {
    /// From a parsed report's KEY_INFO, CHIP_ID and REPORTED_TCB.
    pub fn from_report(report: &Report) -> Result<Self, CollateralError> {
        match report.key_info.signing_key() {
            SigningKey::VCEK => Ok(Self::Vcek {
                chip_id: report.chip_id.into_bytes(),
                reported_tcb: report.reported_tcb,
            }),
            SigningKey::VLEK => Ok(Self::Vlek),
            other => Err(CollateralError::BadArgument {
                what: "SNP report signing key".to_owned(),
                reason: format!("{other}: nothing to fetch"),
            }),
        }
    }

    /// The key family of the chain and CRL.
    pub const fn key(&self) -> KdsKey {
        match self {
            Self::Vcek { .. } => KdsKey::Vcek,
            Self::Vlek => KdsKey::Vlek,
        }
    }
}

/// The KDS hwid for a CHIP_ID: all 64 bytes in hex, or for Turin the first 8.
pub fn kds_hwid(product: Product, chip_id: &[u8; 64]) -> String {
    match product {
        Product::Turin => hex::encode(chip_id.first_chunk::<8>().unwrap_or(&[0; 8])),
        Product::Milan | Product::Genoa => hex::encode(chip_id),
    }
}

/// The VCEK URL for a chip at a reported TCB.
pub fn vcek_url(base: &str, product: Product, chip_id: &[u8; 64], tcb: TcbVersion) -> String {
    let hwid = kds_hwid(product, chip_id);
    let p = tcb.parts(product.tcb_layout());
    let fmc = match (product, p.fmc) {
        (Product::Turin, Some(fmc)) => format!("fmcSPL={fmc:02}&"),
        _ => String::new(),
    };
    format!(
        "{base}/vcek/v1/{}/{hwid}?{fmc}blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        product.name(),
        p.bootloader,
        p.tee,
        p.snp,
        p.microcode
    )
}

/// The `cert_chain` URL.
pub fn cert_chain_url(base: &str, product: Product, key: KdsKey) -> String {
    format!("{base}/{}/v1/{}/cert_chain", key.path(), product.name())
}

/// The CRL URL.
pub fn crl_url(base: &str, product: Product, key: KdsKey) -> String {
    format!("{base}/{}/v1/{}/crl", key.path(), product.name())
}

/// Fetches what an SNP appraisal needs for `product` and `signer` into
/// `cache`: the VCEK (unless VLEK), the chain and the CRL. Items already fresh
/// in the cache are not fetched again (unless `fetcher.refresh_all`).
pub fn fetch_snp(
    fetcher: &Fetcher,
    cache: &CollateralCache,
    product: Product,
    signer: &SnpSigner,
    now: UnixTime,
) -> Result<Vec<Fetched>, CollateralError> {
    let base = fetcher.endpoints.amd_kds.trim_end_matches('/');
    let key = signer.key();
    let mut out = Vec::new();
    if let SnpSigner::Vcek {
        chip_id,
        reported_tcb,
    } = signer
    {
        let item = Item::vcek(product, chip_id, *reported_tcb);
        let url = vcek_url(base, product, chip_id, *reported_tcb);
        out.push(fetch_item(fetcher, cache, &item, now, || {
            Ok(fetcher.send(&HttpRequest::get(url))?.body)
        })?);
    }
    let item = Item::AmdCertChain { product, key };
    let url = cert_chain_url(base, product, key);
    out.push(fetch_item(fetcher, cache, &item, now, || {
        Ok(fetcher.send(&HttpRequest::get(url))?.body)
    })?);
    let item = Item::AmdCrl { product, key };
    let url = crl_url(base, product, key);
    out.push(fetch_item(fetcher, cache, &item, now, || {
        Ok(fetcher.send(&HttpRequest::get(url))?.body)
    })?);
    Ok(out)
}
