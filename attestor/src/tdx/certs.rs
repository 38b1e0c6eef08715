//! Intel PCK certificate encodings: the PEM chain carried in a TDX quote and
//! the Intel SGX extension (OID 1.2.840.113741.1.13.1) of the PCK leaf
//! (Intel "SGX PCK Certificate and Certificate Revocation List Profile
//! Specification", rev. 1.5, §1.3.5).
//!
//! Bytes in, DER and typed values out. This module never checks a signature,
//! a validity period or a revocation: chains are appraised by the verifier.
//! PEM blocks are base64-decoded to the exact DER bytes received, never
//! re-encoded.
#![warn(clippy::indexing_slicing)]

use der::asn1::{Any, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Tag, Tagged};
use serde::Serialize;
use x509_cert::Certificate;

use crate::error::ParseError;

const CHAIN_FORMAT: &str = "pck chain pem";
const EXT_FORMAT: &str = "pck sgx extension";

/// The Intel SGX extension in PCK certificates.
pub const SGX_EXTENSION_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
/// PPID.
pub const PPID_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.1");
/// TCB: components .2.1–.2.16, PCESVN .2.17, CPUSVN .2.18.
pub const TCB_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.2");
/// PCE-ID.
pub const PCEID_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.3");
/// FMSPC.
pub const FMSPC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.4");
/// SGX type.
pub const SGX_TYPE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.5");
/// Platform instance ID (Platform CA certificates only).
pub const PLATFORM_INSTANCE_ID_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.6");
/// Configuration (Platform CA certificates only): .7.1 dynamic platform,
/// .7.2 cached keys, .7.3 SMT enabled.
pub const CONFIGURATION_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.7");

crate::byte_newtype!(
    /// FMSPC: family-model-stepping-platform-custom SKU, the key of the TCB info.
    pub struct Fmspc(6);
);
crate::byte_newtype!(
    /// PCE-ID.
    pub struct PceId(2);
);
crate::byte_newtype!(
    /// CPUSVN of the platform as certified in the PCK certificate.
    pub struct CpuSvn(16);
);
crate::byte_newtype!(
    /// PPID: the platform provisioning ID.
    pub struct Ppid(16);
);
crate::byte_newtype!(
    /// Platform instance ID (multi-package platforms).
    pub struct PlatformInstanceId(16);
);

/// SGX type, an ENUMERATED: 0 Standard, 1 Scalable, 2 Scalable with integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SgxType(pub u8);

impl SgxType {
    /// Standard.
    pub const STANDARD: Self = Self(0);
    /// Scalable.
    pub const SCALABLE: Self = Self(1);
    /// Scalable with integrity.
    pub const SCALABLE_WITH_INTEGRITY: Self = Self(2);
}

/// The TCB entry of the SGX extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PckTcb {
    /// SGX TCB component SVNs 1..16 (`.2.1`–`.2.16`).
    pub comp_svns: [u8; 16],
    /// PCESVN (`.2.17`).
    pub pce_svn: u16,
    /// CPUSVN (`.2.18`).
    pub cpu_svn: CpuSvn,
}

/// The configuration entry (Platform CA certificates only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PckConfiguration {
    /// `.7.1`: the platform can be extended with more packages.
    pub dynamic_platform: Option<bool>,
    /// `.7.2`: platform root keys are cached by the registration backend.
    pub cached_keys: Option<bool>,
    /// `.7.3`: SMT is enabled.
    pub smt_enabled: Option<bool>,
}

/// The values of the Intel SGX extension of a PCK certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PckExtensions {
    /// PPID.
    pub ppid: Ppid,
    /// TCB.
    pub tcb: PckTcb,
    /// PCE-ID.
    pub pce_id: PceId,
    /// FMSPC.
    pub fmspc: Fmspc,
    /// SGX type.
    pub sgx_type: SgxType,
    /// Platform instance ID, when present.
    pub platform_instance_id: Option<PlatformInstanceId>,
    /// Configuration, when present.
    pub configuration: Option<PckConfiguration>,
}

/// Splits a PEM chain into DER certificates, leaf first, exactly as received.
///
/// Tolerates trailing NUL bytes (Intel's quotes end the chain with one) and
/// whitespace between blocks; anything else outside a block is an error.
/// Every block must be a `CERTIFICATE` that parses as X.509.
pub fn pck_chain_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    let end = pem
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i.saturating_add(1));
    let text = std::str::from_utf8(pem.get(..end).unwrap_or_default())
        .map_err(|e| ParseError::document(CHAIN_FORMAT, "pem", e))?;
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        if !trimmed.starts_with(BEGIN) {
            return Err(ParseError::document(
                CHAIN_FORMAT,
                "pem",
                format!("unexpected text before block {}", certs.len()),
            ));
        }
        let stop = trimmed.find(END).ok_or_else(|| {
            ParseError::document(
                CHAIN_FORMAT,
                "pem",
                format!("block {} has no END CERTIFICATE line", certs.len()),
            )
        })?;
        let (block, after) = trimmed.split_at(stop + END.len());
        let (label, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| {
            ParseError::document(CHAIN_FORMAT, "pem", format!("block {}: {e}", certs.len()))
        })?;
        if label != "CERTIFICATE" {
            return Err(ParseError::document(
                CHAIN_FORMAT,
                "pem",
                format!("block {} is a {label}, not a CERTIFICATE", certs.len()),
            ));
        }
        Certificate::from_der(&der).map_err(|e| {
            ParseError::document(
                CHAIN_FORMAT,
                "certificate",
                format!("block {}: {e}", certs.len()),
            )
        })?;
        certs.push(der);
        rest = after;
    }
    if certs.is_empty() {
        return Err(ParseError::document(CHAIN_FORMAT, "pem", "no certificate"));
    }
    Ok(certs)
}

impl PckExtensions {
    /// Reads the SGX extension from a PCK leaf certificate (DER).
    pub fn from_der(pck_leaf_der: &[u8]) -> Result<Self, ParseError> {
        let cert = Certificate::from_der(pck_leaf_der)
            .map_err(|e| ParseError::document(EXT_FORMAT, "certificate", e))?;
        let ext = cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == SGX_EXTENSION_OID)
            .ok_or_else(|| {
                ParseError::document(
                    EXT_FORMAT,
                    "extensions",
                    "no SGX extension 1.2.840.113741.1.13.1",
                )
            })?;
        Self::from_extension_value(ext.extn_value.as_bytes())
    }

    /// Reads the extension's value (the contents of its OCTET STRING):
    /// `SEQUENCE OF SEQUENCE { OID, value }`.
    pub fn from_extension_value(value: &[u8]) -> Result<Self, ParseError> {
        let entries = pairs(value, "sgx_extension")?;
        let mut ppid = None;
        let mut tcb = None;
        let mut pce_id = None;
        let mut fmspc = None;
        let mut sgx_type = None;
        let mut platform_instance_id = None;
        let mut configuration = None;
        for (oid, v) in entries {
            let seen = match oid {
                o if o == PPID_OID => ppid.replace(Ppid(octets(&v, "ppid")?)).is_some(),
                o if o == TCB_OID => tcb.replace(read_tcb(&v)?).is_some(),
                o if o == PCEID_OID => pce_id.replace(PceId(octets(&v, "pce_id")?)).is_some(),
                o if o == FMSPC_OID => fmspc.replace(Fmspc(octets(&v, "fmspc")?)).is_some(),
                o if o == SGX_TYPE_OID => sgx_type.replace(read_sgx_type(&v)?).is_some(),
                o if o == PLATFORM_INSTANCE_ID_OID => platform_instance_id
                    .replace(PlatformInstanceId(octets(&v, "platform_instance_id")?))
                    .is_some(),
                o if o == CONFIGURATION_OID => {
                    configuration.replace(read_configuration(&v)?).is_some()
                }
                // Later profile revisions may add entries; they are not ours to judge.
                _ => false,
            };
            if seen {
                return Err(ParseError::document(
                    EXT_FORMAT,
                    "sgx_extension",
                    format!("duplicate entry {oid}"),
                ));
            }
        }
        let missing = |field| ParseError::document(EXT_FORMAT, field, "missing");
        Ok(Self {
            ppid: ppid.ok_or_else(|| missing("ppid"))?,
            tcb: tcb.ok_or_else(|| missing("tcb"))?,
            pce_id: pce_id.ok_or_else(|| missing("pce_id"))?,
            fmspc: fmspc.ok_or_else(|| missing("fmspc"))?,
            sgx_type: sgx_type.ok_or_else(|| missing("sgx_type"))?,
            platform_instance_id,
            configuration,
        })
    }

    /// Encodes the extension value (DER), in the order Intel's certificates use.
    pub fn to_extension_value(&self) -> Result<Vec<u8>, der::Error> {
        let mut entries = vec![
            pair(PPID_OID, octet_string(self.ppid.as_bytes())?)?,
            pair(TCB_OID, tcb_value(&self.tcb)?)?,
            pair(PCEID_OID, octet_string(self.pce_id.as_bytes())?)?,
            pair(FMSPC_OID, octet_string(self.fmspc.as_bytes())?)?,
            pair(SGX_TYPE_OID, Any::new(Tag::Enumerated, [self.sgx_type.0])?)?,
        ];
        if let Some(id) = &self.platform_instance_id {
            entries.push(pair(
                PLATFORM_INSTANCE_ID_OID,
                octet_string(id.as_bytes())?,
            )?);
        }
        if let Some(c) = &self.configuration {
            let mut inner = Vec::new();
            for (i, flag) in [c.dynamic_platform, c.cached_keys, c.smt_enabled]
                .into_iter()
                .enumerate()
            {
                if let Some(flag) = flag {
                    let oid = CONFIGURATION_OID.push_arc(arc(i + 1))?;
                    inner.push(pair(oid, Any::encode_from(&flag)?)?);
                }
            }
            entries.push(pair(CONFIGURATION_OID, sequence(&inner)?)?);
        }
        sequence(&entries)?.to_der()
    }
}

/// Fuzz body: the PEM splitter and the extension reader never panic, and an
/// extension that parses re-encodes to a value that parses to the same
/// fields (semantic round-trip: entries the reader does not know are dropped
/// on re-encoding, so byte equality is not asserted).
pub fn fuzz_roundtrip(data: &[u8]) {
    let _ = pck_chain_from_pem(data);
    let _ = PckExtensions::from_der(data);
    if let Ok(ext) = PckExtensions::from_extension_value(data) {
        let again = ext
            .to_extension_value()
            .map(|v| PckExtensions::from_extension_value(&v));
        assert!(
            matches!(&again, Ok(Ok(e)) if *e == ext),
            "pck extension round-trip: {again:?}"
        );
    }
}

fn ext_err(field: &'static str, reason: impl ToString) -> ParseError {
    ParseError::document(EXT_FORMAT, field, reason)
}

/// Decodes `SEQUENCE OF SEQUENCE { OID, ANY }`.
fn pairs(
    der_bytes: &[u8],
    field: &'static str,
) -> Result<Vec<(ObjectIdentifier, Any)>, ParseError> {
    let seq = Vec::<Any>::from_der(der_bytes).map_err(|e| ext_err(field, e))?;
    seq.into_iter()
        .map(|entry| {
            let inner: Vec<Any> = entry.decode_as().map_err(|e| ext_err(field, e))?;
            match <[Any; 2]>::try_from(inner) {
                Ok([oid, value]) => {
                    let oid: ObjectIdentifier = oid.decode_as().map_err(|e| ext_err(field, e))?;
                    Ok((oid, value))
                }
                Err(v) => Err(ext_err(
                    field,
                    format!("entry has {} elements, expected OID and value", v.len()),
                )),
            }
        })
        .collect()
}

/// Contents of an OCTET STRING of exactly `N` bytes.
fn octets<const N: usize>(v: &Any, field: &'static str) -> Result<[u8; N], ParseError> {
    if v.tag() != Tag::OctetString {
        return Err(ext_err(
            field,
            format!("expected OCTET STRING, found {}", v.tag()),
        ));
    }
    <[u8; N]>::try_from(v.value()).map_err(|_| {
        ext_err(
            field,
            format!("expected {N} bytes, found {}", v.value().len()),
        )
    })
}

fn read_tcb(v: &Any) -> Result<PckTcb, ParseError> {
    let entries = pairs(&v.to_der().map_err(|e| ext_err("tcb", e))?, "tcb")?;
    let mut comp_svns = [None::<u8>; 16];
    let mut pce_svn = None;
    let mut cpu_svn = None;
    for (oid, value) in entries {
        let arcs: Vec<u32> = oid.arcs().collect();
        let (last, parent) = match arcs.split_last() {
            Some((last, parent)) => (*last, parent),
            None => continue,
        };
        if !TCB_OID.arcs().eq(parent.iter().copied()) {
            continue;
        }
        let dup = match last {
            1..=16 => {
                let svn: u8 = value.decode_as().map_err(|e| ext_err("tcb.comp_svn", e))?;
                let slot = usize::try_from(last - 1)
                    .ok()
                    .and_then(|i| comp_svns.get_mut(i));
                slot.is_some_and(|s| s.replace(svn).is_some())
            }
            17 => {
                let svn: u16 = value.decode_as().map_err(|e| ext_err("tcb.pce_svn", e))?;
                pce_svn.replace(svn).is_some()
            }
            18 => cpu_svn
                .replace(CpuSvn(octets(&value, "tcb.cpu_svn")?))
                .is_some(),
            _ => false,
        };
        if dup {
            return Err(ext_err("tcb", format!("duplicate entry {oid}")));
        }
    }
    let mut comps = [0u8; 16];
    for (i, (out, c)) in comps.iter_mut().zip(comp_svns).enumerate() {
        *out = c.ok_or_else(|| ext_err("tcb.comp_svn", format!("component {} missing", i + 1)))?;
    }
    Ok(PckTcb {
        comp_svns: comps,
        pce_svn: pce_svn.ok_or_else(|| ext_err("tcb.pce_svn", "missing"))?,
        cpu_svn: cpu_svn.ok_or_else(|| ext_err("tcb.cpu_svn", "missing"))?,
    })
}

fn read_sgx_type(v: &Any) -> Result<SgxType, ParseError> {
    if v.tag() != Tag::Enumerated {
        return Err(ext_err(
            "sgx_type",
            format!("expected ENUMERATED, found {}", v.tag()),
        ));
    }
    match v.value() {
        [b] => Ok(SgxType(*b)),
        other => Err(ext_err(
            "sgx_type",
            format!("{} bytes, expected 1", other.len()),
        )),
    }
}

fn read_configuration(v: &Any) -> Result<PckConfiguration, ParseError> {
    let entries = pairs(
        &v.to_der().map_err(|e| ext_err("configuration", e))?,
        "configuration",
    )?;
    let mut c = PckConfiguration::default();
    for (oid, value) in entries {
        let slot = match oid.arcs().last() {
            Some(1) => &mut c.dynamic_platform,
            Some(2) => &mut c.cached_keys,
            Some(3) => &mut c.smt_enabled,
            _ => continue,
        };
        let flag: bool = value.decode_as().map_err(|e| ext_err("configuration", e))?;
        if slot.replace(flag).is_some() {
            return Err(ext_err("configuration", format!("duplicate entry {oid}")));
        }
    }
    Ok(c)
}

fn tcb_value(tcb: &PckTcb) -> Result<Any, der::Error> {
    let mut entries = Vec::with_capacity(18);
    for (i, svn) in tcb.comp_svns.iter().enumerate() {
        entries.push(pair(TCB_OID.push_arc(arc(i + 1))?, Any::encode_from(svn)?)?);
    }
    entries.push(pair(
        TCB_OID.push_arc(17)?,
        Any::encode_from(&tcb.pce_svn)?,
    )?);
    entries.push(pair(
        TCB_OID.push_arc(18)?,
        octet_string(tcb.cpu_svn.as_bytes())?,
    )?);
    sequence(&entries)
}

fn arc(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn octet_string(bytes: &[u8]) -> Result<Any, der::Error> {
    Any::encode_from(&OctetStringRef::new(bytes)?)
}

fn pair(oid: ObjectIdentifier, value: Any) -> Result<Any, der::Error> {
    sequence(&[Any::encode_from(&oid)?, value])
}

fn sequence(items: &[Any]) -> Result<Any, der::Error> {
    let mut content = Vec::new();
    for item in items {
        item.encode_to_vec(&mut content)?;
    }
    Any::new(Tag::Sequence, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimSeed;
    use crate::tdx::quote::{Quote, TdReportData};
    use crate::tdx::simulate::{TdxSimParams, sim_pck_extensions, simulate};

    fn sim_chain_pem() -> Vec<u8> {
        let s = simulate(
            &SimSeed::DEFAULT,
            &TdxSimParams::new(TdReportData([0; 64])),
            1_767_225_600,
        )
        .unwrap();
        Quote::parse(&s.quote)
            .unwrap()
            .pck_chain_pem()
            .unwrap()
            .to_vec()
    }

    fn doc_field(e: ParseError) -> &'static str {
        match e {
            ParseError::Document { field, .. } => field,
            other => panic!("expected a Document error, got {other}"),
        }
    }

    #[test]
    fn chain_splits_leaf_first_and_tolerates_nul() {
        let pem = sim_chain_pem();
        assert_eq!(pem.last(), Some(&0));
        let chain = pck_chain_from_pem(&pem).unwrap();
        assert_eq!(chain.len(), 3);
        let leaf = Certificate::from_der(&chain[0]).unwrap();
        assert!(
            leaf.tbs_certificate
                .subject
                .to_string()
                .contains("PCK Certificate")
        );
        let ext = PckExtensions::from_der(&chain[0]).unwrap();
        assert_eq!(ext, sim_pck_extensions(&SimSeed::DEFAULT));
    }

    #[test]
    fn chain_errors_are_documents() {
        let pem = sim_chain_pem();
        let text = String::from_utf8_lossy(&pem)
            .trim_end_matches('\0')
            .to_owned();
        assert_eq!(doc_field(pck_chain_from_pem(b"").unwrap_err()), "pem");
        assert_eq!(doc_field(pck_chain_from_pem(b"\0\0").unwrap_err()), "pem");
        let junk = format!("junk\n{text}");
        assert_eq!(
            doc_field(pck_chain_from_pem(junk.as_bytes()).unwrap_err()),
            "pem"
        );
        let cut = &text[..text.len() - 30];
        assert_eq!(
            doc_field(pck_chain_from_pem(cut.as_bytes()).unwrap_err()),
            "pem"
        );
        let relabeled = text.replacen("BEGIN CERTIFICATE", "BEGIN PUBLIC KEY", 1);
        assert_eq!(
            doc_field(pck_chain_from_pem(relabeled.as_bytes()).unwrap_err()),
            "pem"
        );
        assert_eq!(
            doc_field(pck_chain_from_pem(&[0xff, 0xfe]).unwrap_err()),
            "pem"
        );
        let not_x509 = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            doc_field(pck_chain_from_pem(not_x509.as_bytes()).unwrap_err()),
            "certificate"
        );
    }

    #[test]
    fn extension_round_trips_and_reports_missing_and_bad_fields() {
        let ext = sim_pck_extensions(&SimSeed::DEFAULT);
        let der = ext.to_extension_value().unwrap();
        assert_eq!(PckExtensions::from_extension_value(&der).unwrap(), ext);

        let mut no_fmspc = ext.clone();
        no_fmspc.platform_instance_id = None;
        no_fmspc.configuration = None;
        let der2 = no_fmspc.to_extension_value().unwrap();
        assert_eq!(
            PckExtensions::from_extension_value(&der2).unwrap(),
            no_fmspc
        );

        // Drop the FMSPC entry by hand: SEQUENCE of the other entries.
        let entries = Vec::<Any>::from_der(&der).unwrap();
        let kept: Vec<Any> = entries
            .iter()
            .filter(|e| {
                let inner: Vec<Any> = e.decode_as().unwrap();
                inner[0].decode_as::<ObjectIdentifier>().unwrap() != FMSPC_OID
            })
            .cloned()
            .collect();
        let missing = sequence(&kept).unwrap().to_der().unwrap();
        assert_eq!(
            doc_field(PckExtensions::from_extension_value(&missing).unwrap_err()),
            "fmspc"
        );
        // A duplicate entry is refused.
        let mut dup = entries.clone();
        dup.push(entries[3].clone());
        let dup = sequence(&dup).unwrap().to_der().unwrap();
        assert_eq!(
            doc_field(PckExtensions::from_extension_value(&dup).unwrap_err()),
            "sgx_extension"
        );
        // A 5-byte FMSPC is refused.
        let bad = pair(FMSPC_OID, octet_string(&[1, 2, 3, 4, 5]).unwrap()).unwrap();
        let mut short = kept.clone();
        short.push(bad);
        let short = sequence(&short).unwrap().to_der().unwrap();
        assert_eq!(
            doc_field(PckExtensions::from_extension_value(&short).unwrap_err()),
            "fmspc"
        );
        // Not DER at all.
        assert_eq!(
            doc_field(PckExtensions::from_extension_value(&[0x30, 0x05, 0x00]).unwrap_err()),
            "sgx_extension"
        );
    }

    #[test]
    fn certificate_without_sgx_extension_is_refused() {
        let pem = sim_chain_pem();
        let chain = pck_chain_from_pem(&pem).unwrap();
        assert_eq!(
            doc_field(PckExtensions::from_der(&chain[2]).unwrap_err()),
            "extensions"
        );
        assert_eq!(
            doc_field(PckExtensions::from_der(&[1, 2, 3]).unwrap_err()),
            "certificate"
        );
    }

    #[test]
    fn fuzz_body_survives_truncations_and_bit_flips() {
        let der = sim_pck_extensions(&SimSeed::DEFAULT)
            .to_extension_value()
            .unwrap();
        let pem = sim_chain_pem();
        let leaf = pck_chain_from_pem(&pem).unwrap().remove(0);
        for sample in [der, leaf] {
            for len in 0..sample.len() {
                fuzz_roundtrip(&sample[..len]);
            }
            let mut b = sample.clone();
            for i in 0..b.len() {
                for bit in 0..8 {
                    b[i] ^= 1 << bit;
                    fuzz_roundtrip(&b);
                    b[i] ^= 1 << bit;
                }
            }
        }
        // The PEM text: truncations and a flip per byte.
        for len in (0..pem.len()).step_by(7) {
            fuzz_roundtrip(&pem[..len]);
        }
        let mut b = pem.clone();
        for i in 0..b.len() {
            b[i] ^= 1 << (i % 8);
            fuzz_roundtrip(&b);
            b[i] ^= 1 << (i % 8);
        }
    }
}
