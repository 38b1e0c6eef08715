//! AMD SEV-SNP certificate encodings (`specs/snp-tdx.md` §1.2–§1.4, §2.1):
//!
//! - the GHCB certificate table, which is also the configfs-tsm `auxblob`
//!   (GHCB spec 56421 §4.1.8.1 "SNP Extended Guest Request": 24-byte entries
//!   `{guid[16], offset u32 LE, length u32 LE}`, an all-zero terminator,
//!   offsets relative to the table start);
//! - the AMD VCEK/VLEK X.509 extensions under `1.3.6.1.4.1.3704.1`
//!   (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
//!   Specification" 57230, and go-sev-guest `kds/kds.go`);
//! - PEM bundles or single DER certificates, and the product lines.
//!
//! Bytes and documents in, typed values out. This module never verifies a
//! signature or a chain and never trusts a certificate: that is
//! `verifier::appraise::snp`. It never panics on its input.
//!
//! Genuine AMD VCEKs and VLEKs have serial number 0 (RFC 5280 wants a positive
//! one). `x509-cert` 0.2.5 decodes serials as a signed `Int` and only checks
//! their length, so it accepts them; the tests below pin that on every genuine
//! certificate in the test data, so a stricter future version cannot slip in
//! unnoticed.

#![warn(clippy::indexing_slicing)]

use std::fmt;

use base64::Engine as _;
use der::asn1::{Ia5StringRef, OctetStringRef, Utf8StringRef};
use der::{Decode, Encode};
use serde::{Serialize, Serializer};
use spki::ObjectIdentifier;
use x509_cert::Certificate;

use crate::bytes::{Reader, Writer};
use crate::error::ParseError;
use crate::snp::report::{TcbLayout, TcbParts, TcbVersion};

/// The format name cert-table parse errors carry.
pub const TABLE_FORMAT: &str = "snp cert table";
/// The format name certificate and extension errors carry.
pub const CERT_FORMAT: &str = "amd vek certificate";
/// Size of one cert-table entry.
pub const ENTRY_LEN: usize = 24;

/// An AMD SEV-SNP product line (CPU generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// EPYC 7003 (Zen 3).
    Milan,
    /// EPYC 9004/8004 (Zen 4; Siena and Bergamo use the Genoa KDS path).
    Genoa,
    /// EPYC 9005 (Zen 5).
    Turin,
}

impl Product {
    /// All products, in generation order.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The name AMD's KDS uses in its paths (`Milan`, `Genoa`, `Turin`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// From a VCEK `productName` such as `Milan-B0`, `Genoa` or `Turin`: the
    /// part before the stepping suffix.
    pub fn from_product_name(name: &str) -> Option<Self> {
        let line = name.split('-').next().unwrap_or(name);
        Self::ALL.into_iter().find(|p| p.name() == line)
    }

    /// From the CPUID family/model a v3+ report carries (sev 8
    /// `Generation::identify_cpu`): family 0x19 models 0x00–0x0F Milan,
    /// 0x10–0x1F and 0xA0–0xAF Genoa; family 0x1A models 0x00–0x11 Turin.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }

    /// How this product lays out TCB_VERSION.
    pub const fn tcb_layout(self) -> TcbLayout {
        match self {
            Self::Milan | Self::Genoa => TcbLayout::MilanGenoa,
            Self::Turin => TcbLayout::Turin,
        }
    }

    /// Length of the VCEK hwID: the whole CHIP_ID (64) on Milan/Genoa, its
    /// first 8 bytes on Turin.
    pub const fn hw_id_len(self) -> usize {
        match self {
            Self::Milan | Self::Genoa => 64,
            Self::Turin => 8,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Product {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A GUID as the cert table stores it: 16 bytes in RFC 4122 (big-endian) order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// VCEK certificate.
    pub const VCEK: Guid =
        Guid(*b"\x63\xda\x75\x8d\xe6\x64\x45\x64\xad\xc5\xf4\xb9\x3b\xe8\xac\xcd");
    /// VLEK certificate.
    pub const VLEK: Guid =
        Guid(*b"\xa8\x07\x4b\xc2\xa2\x5a\x48\x3e\xaa\xe6\x39\xc0\x45\xa0\xb8\xa1");
    /// ASK (or ASVK) certificate.
    pub const ASK: Guid =
        Guid(*b"\x4a\xb7\xb3\x79\xbb\xac\x4f\xe4\xa0\x2f\x05\xae\xf3\x27\xc7\x82");
    /// ARK certificate.
    pub const ARK: Guid =
        Guid(*b"\xc0\xb4\x06\xa4\xa8\x03\x49\x52\x97\x43\x3f\xb6\x01\x4c\xd0\xae");
    /// The all-zero GUID that terminates the table.
    pub const ZERO: Guid = Guid([0; 16]);

    /// Parses `8-4-4-4-12` hex text.
    pub fn parse_str(text: &str) -> Option<Self> {
        let groups: Vec<&str> = text.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12] {
            return None;
        }
        crate::hex::decode_array::<16>(&groups.concat())
            .ok()
            .map(Self)
    }

    /// `VCEK`, `VLEK`, `ASK` or `ARK` for the known GUIDs.
    pub fn name(&self) -> Option<&'static str> {
        match *self {
            Self::VCEK => Some("VCEK"),
            Self::VLEK => Some("VLEK"),
            Self::ASK => Some("ASK"),
            Self::ARK => Some("ARK"),
            _ => None,
        }
    }

    /// True for the terminator GUID.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        let (a, rest) = h.split_at(8);
        let (b, rest) = rest.split_at(4);
        let (c, rest) = rest.split_at(4);
        let (d, e) = rest.split_at(4);
        write!(f, "{a}-{b}-{c}-{d}-{e}")
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One certificate in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertEntry {
    /// What the entry holds (see the [`Guid`] constants).
    pub guid: Guid,
    /// The entry's bytes (a DER certificate for the known GUIDs).
    #[serde(with = "crate::hex::bytes")]
    pub data: Vec<u8>,
}

/// The GHCB certificate table (configfs-tsm `auxblob`).
///
/// [`CertTable::parse`] accepts any layout whose entries point inside the
/// buffer (after the entry headers); bytes no entry covers, such as padding to
/// a page, are ignored. [`CertTable::to_bytes`] writes the canonical layout:
/// the entry headers in order, the all-zero terminator, then each entry's data
/// in the same order, back to back, with no padding. A table in that layout
/// round-trips byte-exact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertTable {
    /// The entries in table order.
    pub entries: Vec<CertEntry>,
}

impl CertTable {
    /// A table holding `certs` in order.
    pub fn build(certs: &[(Guid, Vec<u8>)]) -> Self {
        Self {
            entries: certs
                .iter()
                .map(|(guid, data)| CertEntry {
                    guid: *guid,
                    data: data.clone(),
                })
                .collect(),
        }
    }

    /// Parses a table, checking every offset and length against the buffer.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(TABLE_FORMAT, bytes);
        let mut headers = Vec::new();
        loop {
            let entry_at = r.offset();
            let guid = Guid(r.array("entry.guid")?);
            let offset = r.u32_le("entry.offset")?;
            let length = r.u32_le("entry.length")?;
            if guid.is_zero() {
                if offset != 0 || length != 0 {
                    return Err(ParseError::ReservedNonZero {
                        format: TABLE_FORMAT,
                        field: "terminator",
                        offset: entry_at,
                    });
                }
                break;
            }
            headers.push((entry_at, guid, offset, length));
        }
        let headers_end = r.offset();
        let mut entries = Vec::with_capacity(headers.len());
        for (index, (entry_at, guid, offset, length)) in headers.into_iter().enumerate() {
            let outside = |what: &str| ParseError::Invalid {
                format: TABLE_FORMAT,
                field: "entry.offset",
                offset: entry_at + 16,
                reason: format!(
                    "entry {index} ({guid}) at {offset:#x}+{length:#x} {what} the {}-byte table",
                    bytes.len()
                ),
            };
            let start = usize::try_from(offset).map_err(|_| outside("is outside"))?;
            let len = usize::try_from(length).map_err(|_| outside("is outside"))?;
            if start < headers_end && len > 0 {
                return Err(outside("overlaps the entry headers of"));
            }
            let data = start
                .checked_add(len)
                .and_then(|end| bytes.get(start..end))
                .ok_or_else(|| outside("is outside"))?;
            entries.push(CertEntry {
                guid,
                data: data.to_vec(),
            });
        }
        Ok(Self { entries })
    }

    /// The canonical layout (see the type's doc).
    pub fn to_bytes(&self) -> Vec<u8> {
        let headers_len = ENTRY_LEN * (self.entries.len() + 1);
        let mut w = Writer::with_capacity(
            headers_len + self.entries.iter().map(|e| e.data.len()).sum::<usize>(),
        );
        let mut offset = headers_len;
        for entry in &self.entries {
            w.bytes(&entry.guid.0);
            w.u32_le(u32::try_from(offset).unwrap_or(u32::MAX));
            w.u32_le(u32::try_from(entry.data.len()).unwrap_or(u32::MAX));
            offset += entry.data.len();
        }
        w.zeros(ENTRY_LEN);
        w.at(headers_len);
        for entry in &self.entries {
            w.bytes(&entry.data);
        }
        w.into_vec()
    }

    /// The first entry with `guid`.
    pub fn find(&self, guid: Guid) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.guid == guid)
            .map(|e| e.data.as_slice())
    }

    /// The VCEK, ASK and ARK (or VLEK) entries, when present.
    pub fn vcek(&self) -> Option<&[u8]> {
        self.find(Guid::VCEK)
    }

    /// The VLEK entry, when present.
    pub fn vlek(&self) -> Option<&[u8]> {
        self.find(Guid::VLEK)
    }

    /// The ASK (or ASVK) entry, when present.
    pub fn ask(&self) -> Option<&[u8]> {
        self.find(Guid::ASK)
    }

    /// The ARK entry, when present.
    pub fn ark(&self) -> Option<&[u8]> {
        self.find(Guid::ARK)
    }
}

impl Serialize for CertTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct EntryView<'a> {
            guid: Guid,
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<&'static str>,
            length: usize,
            #[serde(with = "crate::hex::bytes")]
            data: &'a [u8],
        }
        s.collect_seq(self.entries.iter().map(|e| EntryView {
            guid: e.guid,
            kind: e.guid.name(),
            length: e.data.len(),
            data: &e.data,
        }))
    }
}

/// Fuzz body for the cert table. Parse; if it succeeds, the canonical
/// re-encoding must parse to the same table and be stable, and when the input
/// itself is in the canonical layout (checked here from the raw headers, not
/// through the serializer) the re-encoding must equal it byte for byte.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(table) = CertTable::parse(data) {
        let bytes = table.to_bytes();
        let again = CertTable::parse(&bytes).ok();
        assert_eq!(
            again.as_ref(),
            Some(&table),
            "cert table reverse round trip"
        );
        if is_canonical_layout(data) {
            assert_eq!(bytes, data, "cert table round trip");
        }
        let _ = serde_json::to_string(&table);
    }
}

/// True when `data` is entries, terminator and data back to back in entry order.
fn is_canonical_layout(data: &[u8]) -> bool {
    let mut r = Reader::new(TABLE_FORMAT, data);
    let mut lengths = Vec::new();
    let mut offsets = Vec::new();
    loop {
        let (Ok(guid), Ok(offset), Ok(length)) = (
            r.array::<16>("guid"),
            r.u32_le("offset"),
            r.u32_le("length"),
        ) else {
            return false;
        };
        if guid == [0; 16] {
            break;
        }
        offsets.push(offset as usize);
        lengths.push(length as usize);
    }
    let mut expected = r.offset();
    for (offset, length) in offsets.into_iter().zip(lengths) {
        if offset != expected {
            return false;
        }
        expected += length;
    }
    expected == data.len()
}

/// Parses one X.509 certificate with `x509-cert` (tolerant of AMD's zero serials).
pub fn parse_certificate(der: &[u8]) -> Result<Certificate, ParseError> {
    Certificate::from_der(der).map_err(|e| ParseError::document(CERT_FORMAT, "certificate", e))
}

/// DER certificates from a PEM bundle (every `CERTIFICATE` block, in order) or
/// from a single DER certificate. Each one is checked to parse as X.509.
pub fn pem_or_der_certs(data: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    if data.first() == Some(&0x30) {
        parse_certificate(data)?;
        return Ok(vec![data.to_vec()]);
    }
    let text = std::str::from_utf8(data).map_err(|e| {
        ParseError::document(
            CERT_FORMAT,
            "pem",
            format!("neither DER nor UTF-8 PEM: {e}"),
        )
    })?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body_and_rest = rest.get(start + BEGIN.len()..).unwrap_or_default();
        let end = body_and_rest
            .find(END)
            .ok_or_else(|| ParseError::document(CERT_FORMAT, "pem", "BEGIN without END"))?;
        let body: String = body_and_rest
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| ParseError::document(CERT_FORMAT, "pem", e))?;
        parse_certificate(&der)?;
        out.push(der);
        rest = body_and_rest.get(end + END.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(ParseError::document(
            CERT_FORMAT,
            "pem",
            "no CERTIFICATE block and not DER",
        ));
    }
    Ok(out)
}

/// OID arc of the AMD VCEK/VLEK extensions.
pub const AMD_VEK_ARC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1");
/// structVersion (INTEGER).
pub const OID_STRUCT_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
/// productName (IA5String).
pub const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
/// blSPL (INTEGER).
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// teeSPL (INTEGER).
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// snpSPL (INTEGER).
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// Reserved SPL 4 (INTEGER, Milan/Genoa).
pub const OID_SPL_4: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.4");
/// Reserved SPL 5 (INTEGER).
pub const OID_SPL_5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.5");
/// Reserved SPL 6 (INTEGER).
pub const OID_SPL_6: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.6");
/// Reserved SPL 7 (INTEGER).
pub const OID_SPL_7: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.7");
/// ucodeSPL (INTEGER).
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// fmcSPL (INTEGER, Turin).
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
/// hwID (raw bytes, or an OCTET STRING wrapping them; VCEK only).
pub const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
/// cspId (IA5String; VLEK only).
pub const OID_CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");

/// How a certificate encoded its hwID extension value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HwIdEncoding {
    /// The raw bytes are the extension value (every genuine AMD VCEK).
    Raw,
    /// The extension value is a DER OCTET STRING holding the bytes.
    OctetString,
}

/// The hwID a VCEK was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HwId {
    /// 64 bytes on Milan/Genoa (the CHIP_ID), 8 on Turin (CHIP_ID[0..8]).
    #[serde(with = "crate::hex::bytes")]
    pub bytes: Vec<u8>,
    /// The encoding seen.
    pub encoding: HwIdEncoding,
}

/// Another extension under the AMD arc (the reserved SPLs `.3.4`–`.3.7`, or one
/// this code does not know), kept as its raw value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherAmdExtension {
    /// Dotted OID.
    pub oid: String,
    /// The integer, when the value is a DER INTEGER that fits a u8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spl: Option<u8>,
    /// The raw extension value.
    #[serde(with = "crate::hex::bytes")]
    pub value: Vec<u8>,
}

/// The AMD extensions of a VCEK or VLEK certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VekExtensions {
    /// structVersion: 0 on Milan/Genoa, 1 on Turin.
    pub struct_version: u32,
    /// productName, e.g. `Milan-B0`, `Genoa`, `Turin`.
    pub product_name: String,
    /// blSPL.
    pub bl_spl: u8,
    /// teeSPL.
    pub tee_spl: u8,
    /// snpSPL.
    pub snp_spl: u8,
    /// ucodeSPL.
    pub ucode_spl: u8,
    /// fmcSPL (Turin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc_spl: Option<u8>,
    /// hwID (VCEK only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_id: Option<HwId>,
    /// cspId (VLEK only), e.g. `CN=cc-eu-west-1.amazonaws.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csp_id: Option<String>,
    /// The other extensions under the AMD arc, in certificate order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherAmdExtension>,
}

impl VekExtensions {
    /// Reads the AMD extensions of a DER certificate. Fails when the
    /// certificate does not parse, an extension is malformed or repeated, or
    /// one every VEK carries (structVersion, productName, bl/tee/snp/ucode
    /// SPLs) is missing, as on an ARK or ASK.
    pub fn from_der(cert_der: &[u8]) -> Result<Self, ParseError> {
        let cert = parse_certificate(cert_der)?;
        let mut struct_version = None;
        let mut product_name = None;
        let (mut bl, mut tee, mut snp, mut ucode, mut fmc) = (None, None, None, None, None);
        let mut hw_id = None;
        let mut csp_id = None;
        let mut other = Vec::new();
        for ext in cert.tbs_certificate.extensions.iter().flatten() {
            let oid = ext.extn_id;
            let value = ext.extn_value.as_bytes();
            let (field, slot_filled) = match oid {
                OID_STRUCT_VERSION => (
                    "structVersion",
                    set_once(
                        &mut struct_version,
                        decode_int::<u32>("structVersion", value)?,
                    ),
                ),
                OID_PRODUCT_NAME => (
                    "productName",
                    set_once(&mut product_name, decode_text("productName", value)?),
                ),
                OID_BL_SPL => (
                    "blSPL",
                    set_once(&mut bl, decode_int::<u8>("blSPL", value)?),
                ),
                OID_TEE_SPL => (
                    "teeSPL",
                    set_once(&mut tee, decode_int::<u8>("teeSPL", value)?),
                ),
                OID_SNP_SPL => (
                    "snpSPL",
                    set_once(&mut snp, decode_int::<u8>("snpSPL", value)?),
                ),
                OID_UCODE_SPL => (
                    "ucodeSPL",
                    set_once(&mut ucode, decode_int::<u8>("ucodeSPL", value)?),
                ),
                OID_FMC_SPL => (
                    "fmcSPL",
                    set_once(&mut fmc, decode_int::<u8>("fmcSPL", value)?),
                ),
                OID_HW_ID => ("hwID", set_once(&mut hw_id, decode_hw_id(value)?)),
                OID_CSP_ID => ("cspId", set_once(&mut csp_id, decode_text("cspId", value)?)),
                _ if oid.as_bytes().starts_with(AMD_VEK_ARC.as_bytes()) => {
                    let oid = oid.to_string();
                    if other.iter().any(|o: &OtherAmdExtension| o.oid == oid) {
                        return Err(ParseError::document(
                            CERT_FORMAT,
                            "extension",
                            format!("{oid} appears twice"),
                        ));
                    }
                    other.push(OtherAmdExtension {
                        oid,
                        spl: u8::from_der(value).ok(),
                        value: value.to_vec(),
                    });
                    continue;
                }
                _ => continue,
            };
            if !slot_filled {
                return Err(ParseError::document(
                    CERT_FORMAT,
                    field,
                    "extension appears twice",
                ));
            }
        }
        let missing = |field| ParseError::document(CERT_FORMAT, field, "extension missing");
        Ok(Self {
            struct_version: struct_version.ok_or_else(|| missing("structVersion"))?,
            product_name: product_name.ok_or_else(|| missing("productName"))?,
            bl_spl: bl.ok_or_else(|| missing("blSPL"))?,
            tee_spl: tee.ok_or_else(|| missing("teeSPL"))?,
            snp_spl: snp.ok_or_else(|| missing("snpSPL"))?,
            ucode_spl: ucode.ok_or_else(|| missing("ucodeSPL"))?,
            fmc_spl: fmc,
            hw_id,
            csp_id,
            other,
        })
    }

    /// The product line named by `productName`.
    pub fn product(&self) -> Option<Product> {
        Product::from_product_name(&self.product_name)
    }

    /// The certified TCB as components (`fmc` only when the certificate has fmcSPL).
    pub fn tcb_parts(&self) -> TcbParts {
        TcbParts {
            fmc: self.fmc_spl,
            bootloader: self.bl_spl,
            tee: self.tee_spl,
            snp: self.snp_spl,
            microcode: self.ucode_spl,
        }
    }

    /// The certified TCB as a TCB_VERSION in `layout`, for comparing with a
    /// report's REPORTED_TCB.
    pub fn tcb_version(&self, layout: TcbLayout) -> TcbVersion {
        TcbVersion::from_parts(layout, self.tcb_parts())
    }
}

/// Stores `value` unless the slot is taken; false when it was.
fn set_once<T>(slot: &mut Option<T>, value: T) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(value);
    true
}

fn decode_int<'a, T: Decode<'a>>(field: &'static str, value: &'a [u8]) -> Result<T, ParseError> {
    T::from_der(value).map_err(|e| ParseError::document(CERT_FORMAT, field, e))
}

/// IA5String as AMD writes it; a UTF8String is accepted too.
fn decode_text(field: &'static str, value: &[u8]) -> Result<String, ParseError> {
    if let Ok(s) = Ia5StringRef::from_der(value) {
        return Ok(s.as_str().to_owned());
    }
    Utf8StringRef::from_der(value)
        .map(|s| s.as_str().to_owned())
        .map_err(|e| ParseError::document(CERT_FORMAT, field, e))
}

/// Raw 64 (Milan/Genoa) or 8 (Turin) bytes, or a DER OCTET STRING wrapping them.
fn decode_hw_id(value: &[u8]) -> Result<HwId, ParseError> {
    if matches!(value.len(), 64 | 8) {
        return Ok(HwId {
            bytes: value.to_vec(),
            encoding: HwIdEncoding::Raw,
        });
    }
    match OctetStringRef::from_der(value) {
        Ok(inner) if matches!(inner.as_bytes().len(), 64 | 8) => Ok(HwId {
            bytes: inner.as_bytes().to_vec(),
            encoding: HwIdEncoding::OctetString,
        }),
        _ => Err(ParseError::document(
            CERT_FORMAT,
            "hwID",
            format!(
                "{} bytes: neither raw 64/8 bytes nor an OCTET STRING of them",
                value.len()
            ),
        )),
    }
}

/// Encodes an SPL or structVersion extension value the way AMD does (a DER INTEGER).
pub fn encode_int_extension(v: u32) -> Result<Vec<u8>, der::Error> {
    v.to_der()
}

/// Fuzz body for [`VekExtensions::from_der`] and [`pem_or_der_certs`]: must not panic.
pub fn fuzz_vek_extensions(data: &[u8]) {
    let _ = VekExtensions::from_der(data);
    let _ = pem_or_der_certs(data);
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn sample_table() -> (CertTable, Vec<u8>) {
        let table = CertTable::build(&[
            (Guid::VCEK, vec![1, 2, 3]),
            (Guid::ASK, vec![4; 10]),
            (Guid::ARK, vec![]),
            (Guid([9; 16]), vec![5, 6]),
        ]);
        let bytes = table.to_bytes();
        (table, bytes)
    }

    #[test]
    fn guid_text_form() {
        assert_eq!(
            Guid::VCEK.to_string(),
            "63da758d-e664-4564-adc5-f4b93be8accd"
        );
        assert_eq!(
            Guid::VLEK.to_string(),
            "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
        );
        assert_eq!(
            Guid::ASK.to_string(),
            "4ab7b379-bbac-4fe4-a02f-05aef327c782"
        );
        assert_eq!(
            Guid::ARK.to_string(),
            "c0b406a4-a803-4952-9743-3fb6014cd0ae"
        );
        for g in [Guid::VCEK, Guid::VLEK, Guid::ASK, Guid::ARK] {
            assert_eq!(Guid::parse_str(&g.to_string()), Some(g));
        }
        assert_eq!(Guid::parse_str("63da758d-e664-4564-adc5f4b93be8accd"), None);
        assert_eq!(Guid::ARK.name(), Some("ARK"));
        assert_eq!(
            serde_json::to_string(&Guid::ASK).unwrap(),
            "\"4ab7b379-bbac-4fe4-a02f-05aef327c782\""
        );
    }

    #[test]
    fn table_canonical_layout_roundtrips() {
        let (table, bytes) = sample_table();
        assert_eq!(bytes.len(), 5 * ENTRY_LEN + 15);
        // First entry points right after the terminator.
        assert_eq!(&bytes[16..20], &(5 * ENTRY_LEN as u32).to_le_bytes());
        assert_eq!(&bytes[4 * ENTRY_LEN..5 * ENTRY_LEN], &[0u8; ENTRY_LEN]);
        let parsed = CertTable::parse(&bytes).unwrap();
        assert_eq!(parsed, table);
        assert_eq!(parsed.to_bytes(), bytes);
        assert_eq!(parsed.vcek(), Some(&[1u8, 2, 3][..]));
        assert_eq!(parsed.ask().map(<[u8]>::len), Some(10));
        assert_eq!(parsed.ark(), Some(&[][..]));
        assert_eq!(parsed.vlek(), None);
        assert!(is_canonical_layout(&bytes));
        let empty = CertTable::default().to_bytes();
        assert_eq!(empty, vec![0u8; ENTRY_LEN]);
        assert_eq!(CertTable::parse(&empty).unwrap(), CertTable::default());
    }

    #[test]
    fn table_tolerates_padding_and_other_layouts() {
        let (table, mut bytes) = sample_table();
        bytes.extend_from_slice(&[0u8; 100]);
        assert_eq!(CertTable::parse(&bytes).unwrap(), table);
        assert!(!is_canonical_layout(&bytes));
        fuzz_roundtrip(&bytes);
    }

    #[test]
    fn table_errors_name_the_entry() {
        let (_, bytes) = sample_table();
        // Entry 1's length runs past the end.
        let mut v = bytes.clone();
        v[ENTRY_LEN + 20..ENTRY_LEN + 24].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        match CertTable::parse(&v) {
            Err(ParseError::Invalid {
                field: "entry.offset",
                offset,
                reason,
                ..
            }) => {
                assert_eq!(offset, ENTRY_LEN + 16);
                assert!(reason.contains("entry 1 (4ab7b379"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Entry 0 points into the headers.
        let mut v = bytes.clone();
        v[16..20].copy_from_slice(&8u32.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&v),
            Err(ParseError::Invalid { offset: 16, ref reason, .. }) if reason.contains("overlaps")
        ));
        // No terminator before the end.
        let err = CertTable::parse(&bytes[..ENTRY_LEN + 4]).unwrap_err();
        assert!(matches!(
            err,
            ParseError::Truncated {
                field: "entry.guid",
                offset: ENTRY_LEN,
                ..
            }
        ));
        // Truncated inside the length field.
        assert!(matches!(
            CertTable::parse(&bytes[..22]),
            Err(ParseError::Truncated {
                field: "entry.length",
                offset: 20,
                ..
            })
        ));
        // Terminator with a non-zero length.
        let mut v = bytes.clone();
        v[4 * ENTRY_LEN + 20] = 1;
        assert_eq!(
            CertTable::parse(&v),
            Err(ParseError::ReservedNonZero {
                format: TABLE_FORMAT,
                field: "terminator",
                offset: 4 * ENTRY_LEN
            })
        );
        assert!(CertTable::parse(&[]).is_err());
    }

    #[test]
    fn table_fuzz_body_survives_truncations_and_bit_flips() {
        let (_, bytes) = sample_table();
        for len in 0..=bytes.len() {
            fuzz_roundtrip(&bytes[..len]);
        }
        for bit in 0..bytes.len() * 8 {
            let mut v = bytes.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            fuzz_roundtrip(&v);
        }
    }

    #[test]
    fn products() {
        assert_eq!(Product::from_product_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_product_name("Milan"), Some(Product::Milan));
        assert_eq!(Product::from_product_name("Genoa"), Some(Product::Genoa));
        assert_eq!(Product::from_product_name("Turin"), Some(Product::Turin));
        assert_eq!(Product::from_product_name("Venice"), None);
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xA0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x1A, 0x50), None);
        assert_eq!(Product::from_cpuid(0x17, 0x01), None);
        assert_eq!(Product::Turin.tcb_layout(), TcbLayout::Turin);
        assert_eq!(Product::Genoa.hw_id_len(), 64);
    }

    #[test]
    fn hw_id_encodings() {
        let raw = [7u8; 64];
        assert_eq!(decode_hw_id(&raw).unwrap().encoding, HwIdEncoding::Raw);
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend_from_slice(&raw);
        let h = decode_hw_id(&wrapped).unwrap();
        assert_eq!(
            (h.encoding, h.bytes),
            (HwIdEncoding::OctetString, raw.to_vec())
        );
        assert_eq!(
            decode_hw_id(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap().bytes.len(),
            8
        );
        assert!(matches!(
            decode_hw_id(&[0u8; 10]),
            Err(ParseError::Document { field: "hwID", .. })
        ));
    }

    #[test]
    fn pem_errors() {
        assert!(matches!(
            pem_or_der_certs(b"hello"),
            Err(ParseError::Document { field: "pem", .. })
        ));
        assert!(pem_or_der_certs(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(
            pem_or_der_certs(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(pem_or_der_certs(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(pem_or_der_certs(&[0xff, 0xfe]).is_err());
        fuzz_vek_extensions(&[0x30, 0x80]);
    }
}
