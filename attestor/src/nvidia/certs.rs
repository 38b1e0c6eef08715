//! NVIDIA GPU device certificate chain (`specs/nvidia-gpu.md` §3): the
//! concatenated PEM NVML returns (leaf first, root last), and the leaf's
//! TCG DICE extension carrying the firmware id (FWID, §3.3): Hopper
//! `2.23.133.5.4.1`, Blackwell `2.23.133.5.4.1.1` (DiceTcbInfo, TCG DICE
//! Attestation Architecture 1.1 §6.1.1).
//!
//! Text in, certificates (with the DER bytes received) out. This module never
//! verifies a signature, a validity period, a revocation status or the root:
//! path validation is the verifier's job. A malformed DICE extension is
//! reported, never guessed at.
#![warn(clippy::indexing_slicing)]

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Reader as _, SliceReader, Tag};
use serde::Serialize;
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::digest::Sha256Digest;
use crate::error::ParseError;
use crate::nvidia::report::Fwid;

/// Format name in errors.
pub const FORMAT: &str = "nvidia device chain";

/// Hopper's FWID extension (TCG DICE arc, NVIDIA's own layout).
pub const OID_HOPPER_FWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
/// Blackwell's DiceTcbInfo extension (tcg-dice-TcbInfo).
pub const OID_DICE_TCB_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1.1");
/// commonName.
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// id-ecPublicKey.
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1.
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// One certificate of the chain: the DER received and its parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCert {
    der: Vec<u8>,
    cert: Certificate,
}

impl DeviceCert {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, ParseError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| ParseError::document(FORMAT, "certificate", e))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    /// The DER bytes as received (signatures are checked over these).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// Subject, RFC 4514.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// Issuer, RFC 4514.
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    /// The subject's common name, when it has one.
    pub fn common_name(&self) -> Option<String> {
        common_name(&self.cert.tbs_certificate.subject)
    }

    /// Serial number bytes, big-endian as encoded.
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }

    /// SHA-256 of the DER (the fingerprint NVIDIA pins the root by).
    pub fn fingerprint(&self) -> Sha256Digest {
        Sha256Digest::of(&self.der)
    }

    /// The subject's P-384 public key (every NVIDIA device certificate has one).
    pub fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, ParseError> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_SECP384R1) {
            return Err(ParseError::document(
                FORMAT,
                "subject_public_key_info",
                format!("{}: not an EC P-384 key", self.subject()),
            ));
        }
        let point = spki.subject_public_key.as_bytes().unwrap_or_default();
        p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|e| ParseError::document(FORMAT, "subject_public_key_info", e))
    }

    /// The extension value (content of its OCTET STRING) for `oid`.
    pub fn extension(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// The TCG DICE extension carrying the FWID, parsed: Hopper's
    /// `2.23.133.5.4.1` or Blackwell's `2.23.133.5.4.1.1`. `Ok(None)` when
    /// the certificate has neither.
    pub fn tcb_info(&self) -> Result<Option<TcbInfo>, ParseError> {
        if let Some(v) = self.extension(OID_DICE_TCB_INFO) {
            return DiceTcbInfo::parse(v).map(|t| Some(TcbInfo::Dice(t)));
        }
        if let Some(v) = self.extension(OID_HOPPER_FWID) {
            return HopperFwid::parse(v).map(|t| Some(TcbInfo::Hopper(t)));
        }
        Ok(None)
    }
}

impl Serialize for DeviceCert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let tbs = &self.cert.tbs_certificate;
        let mut st = s.serialize_struct("DeviceCert", 6)?;
        st.serialize_field("subject", &self.subject())?;
        st.serialize_field("issuer", &self.issuer())?;
        st.serialize_field("serial", &::hex::encode(self.serial()))?;
        st.serialize_field("not_before", &tbs.validity.not_before.to_string())?;
        st.serialize_field("not_after", &tbs.validity.not_after.to_string())?;
        st.serialize_field("sha256", &self.fingerprint())?;
        st.end()
    }
}

/// The device chain, leaf first (spec §3.1: five certificates on Hopper and
/// Blackwell; not enforced here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChain {
    certs: Vec<DeviceCert>,
}

impl DeviceChain {
    /// Parses concatenated PEM certificates. Whitespace (spaces, tabs, CR,
    /// LF) and NUL padding around and inside the blocks are tolerated; any
    /// other text outside the blocks is refused.
    pub fn from_pem(pem: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(pem)
            .map_err(|e| ParseError::document(FORMAT, "pem", format!("not UTF-8: {e}")))?;
        let mut rest = text;
        let mut certs = Vec::new();
        loop {
            rest = rest.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
            if rest.is_empty() {
                break;
            }
            let n = certs.len();
            let after_begin = rest.strip_prefix(BEGIN).ok_or_else(|| {
                ParseError::document(FORMAT, "pem", format!("certificate {n}: expected {BEGIN}"))
            })?;
            let (body, after) = after_begin.split_once(END).ok_or_else(|| {
                ParseError::document(FORMAT, "pem", format!("certificate {n}: missing {END}"))
            })?;
            let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let der = STANDARD.decode(b64).map_err(|e| {
                ParseError::document(FORMAT, "pem", format!("certificate {n}: base64: {e}"))
            })?;
            let cert = DeviceCert::from_der(&der).map_err(|e| {
                ParseError::document(FORMAT, "certificate", format!("certificate {n}: {e}"))
            })?;
            certs.push(cert);
            rest = after;
        }
        if certs.is_empty() {
            return Err(ParseError::document(FORMAT, "pem", "no certificate"));
        }
        Ok(Self { certs })
    }

    /// A chain from DER certificates, leaf first.
    pub fn from_ders<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, ParseError> {
        let certs = ders
            .into_iter()
            .map(DeviceCert::from_der)
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(ParseError::document(FORMAT, "pem", "no certificate"));
        }
        Ok(Self { certs })
    }

    /// Normalized PEM text (LF line endings, 64-column base64), leaf first.
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        for c in &self.certs {
            out.push_str(&pem_block(&c.der));
        }
        out
    }

    /// The certificates, leaf first.
    pub fn certs(&self) -> &[DeviceCert] {
        &self.certs
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Always false for a parsed chain (at least one certificate).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The leaf ("GSP FMC LF"), whose key signs the report.
    pub fn leaf(&self) -> Option<&DeviceCert> {
        self.certs.first()
    }

    /// The last certificate (the root, on a complete chain).
    pub fn root(&self) -> Option<&DeviceCert> {
        self.certs.last()
    }

    /// The leaf's parsed TCG DICE extension.
    pub fn leaf_tcb_info(&self) -> Result<Option<TcbInfo>, ParseError> {
        match self.leaf() {
            Some(leaf) => leaf.tcb_info(),
            None => Ok(None),
        }
    }

    /// The leaf's FWID; `None` when it has no DICE extension or a malformed one.
    pub fn leaf_fwid(&self) -> Option<Fwid> {
        self.leaf_tcb_info().ok().flatten()?.fwid()
    }

    /// `hwmodel` claim: CN of certificate 1 (e.g. `GH100 A01 GSP BROM`).
    pub fn hwmodel(&self) -> Option<String> {
        self.certs.get(1)?.common_name()
    }

    /// `ueid` claim: the leaf serial number as a decimal string (spec §3.3).
    pub fn ueid(&self) -> Option<String> {
        Some(decimal(self.leaf()?.serial()))
    }

    /// Subjects, leaf first, for display.
    pub fn subjects(&self) -> Vec<String> {
        self.certs.iter().map(DeviceCert::subject).collect()
    }
}

impl Serialize for DeviceChain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("DeviceChain", 5)?;
        st.serialize_field("certificates", &self.certs)?;
        st.serialize_field("hwmodel", &self.hwmodel())?;
        st.serialize_field("ueid", &self.ueid())?;
        st.serialize_field("leaf_fwid", &self.leaf_fwid())?;
        let tcb = self.leaf_tcb_info();
        match &tcb {
            Ok(t) => st.serialize_field("leaf_tcb_info", t)?,
            Err(e) => st.serialize_field("leaf_tcb_info", &format!("error: {e}"))?,
        }
        st.end()
    }
}

/// The leaf's DICE extension, by generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TcbInfo {
    /// Hopper, OID `2.23.133.5.4.1`.
    Hopper(HopperFwid),
    /// Blackwell and later, OID `2.23.133.5.4.1.1`.
    Dice(DiceTcbInfo),
}

impl TcbInfo {
    /// The FWID: Hopper's digest, or the first 48-byte digest of `fwids`.
    pub fn fwid(&self) -> Option<Fwid> {
        match self {
            Self::Hopper(h) => Some(h.fwid),
            Self::Dice(d) => d.fwid(),
        }
    }
}

/// Hopper's extension: `SEQUENCE { INTEGER, SubjectPublicKeyInfo, SEQUENCE {
/// hashAlg OID, digest OCTET STRING(48) } }`. NVIDIA takes the last 48 bytes;
/// the structure is parsed and the digest must be exactly those bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopperFwid {
    /// The leading INTEGER (1 on the samples).
    pub version: u64,
    /// The embedded SubjectPublicKeyInfo, DER.
    #[serde(with = "crate::hex::bytes")]
    pub public_key: Vec<u8>,
    /// Digest algorithm (SHA-384 on the samples).
    pub hash_alg: String,
    /// The FWID.
    pub fwid: Fwid,
}

impl HopperFwid {
    /// Parses the extension value.
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        let err = |e: der::Error| ParseError::document(FORMAT, "hopper_fwid", e);
        let mut r = SliceReader::new(value).map_err(err)?;
        let (version, public_key, hash_alg, digest) = r
            .sequence(|r| {
                let version = uint(AnyRef::decode(r)?, Tag::Integer)?;
                let public_key = r.tlv_bytes()?.to_vec();
                spki::SubjectPublicKeyInfoRef::from_der(&public_key)?;
                let (hash_alg, digest) = r.sequence(|r| {
                    let oid = ObjectIdentifier::decode(r)?;
                    let digest = der::asn1::OctetStringRef::decode(r)?;
                    Ok((oid, digest.as_bytes().to_vec()))
                })?;
                Ok((version, public_key, hash_alg, digest))
            })
            .map_err(err)?;
        r.finish(()).map_err(err)?;
        let fwid = <[u8; 48]>::try_from(digest.as_slice()).map_err(|_| {
            ParseError::document(
                FORMAT,
                "hopper_fwid",
                format!("digest is {} bytes, expected 48", digest.len()),
            )
        })?;
        if !value.ends_with(&fwid) {
            return Err(ParseError::document(
                FORMAT,
                "hopper_fwid",
                "digest is not the last 48 bytes",
            ));
        }
        Ok(Self {
            version,
            public_key,
            hash_alg: hash_alg.to_string(),
            fwid: Fwid(fwid),
        })
    }
}

/// One entry of DiceTcbInfo `fwids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiceFwid {
    /// Digest algorithm OID, dotted.
    pub hash_alg: String,
    /// Digest bytes.
    #[serde(with = "crate::hex::bytes")]
    pub digest: Vec<u8>,
}

/// TCG DiceTcbInfo (all fields IMPLICIT and OPTIONAL, tags [0]..[10]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiceTcbInfo {
    /// [0] vendor, e.g. `NVIDIA`.
    pub vendor: Option<String>,
    /// [1] model, e.g. `GB100 A01 GSP`.
    pub model: Option<String>,
    /// [2] version.
    pub version: Option<String>,
    /// [3] svn.
    pub svn: Option<u64>,
    /// [4] layer.
    pub layer: Option<u64>,
    /// [5] index.
    pub index: Option<u64>,
    /// [6] fwids.
    pub fwids: Vec<DiceFwid>,
    /// [7] flags (BIT STRING content: unused-bits byte, then bits).
    #[serde(with = "opt_hex")]
    pub flags: Option<Vec<u8>>,
    /// [8] vendorInfo.
    #[serde(with = "opt_hex")]
    pub vendor_info: Option<Vec<u8>>,
    /// [9] type.
    #[serde(with = "opt_hex", rename = "type")]
    pub tcb_type: Option<Vec<u8>>,
    /// [10] flagsMask (BIT STRING content).
    #[serde(with = "opt_hex")]
    pub flags_mask: Option<Vec<u8>>,
}

impl DiceTcbInfo {
    /// Parses the extension value.
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        let err = |e: der::Error| ParseError::document(FORMAT, "dice_tcb_info", e);
        let bad = |reason: String| ParseError::document(FORMAT, "dice_tcb_info", reason);
        let mut r = SliceReader::new(value).map_err(err)?;
        let elements = r
            .sequence(|r| {
                let mut out = Vec::new();
                while !r.is_finished() {
                    out.push(AnyRef::decode(r)?);
                }
                Ok(out)
            })
            .map_err(err)?;
        r.finish(()).map_err(err)?;
        let mut info = Self::default();
        let mut last: Option<u8> = None;
        for any in elements {
            let (number, constructed) = match der::Tagged::tag(&any) {
                Tag::ContextSpecific {
                    number,
                    constructed,
                } => (number.value(), constructed),
                other => return Err(bad(format!("unexpected element {other}"))),
            };
            if last.is_some_and(|l| number <= l) {
                return Err(bad(format!("[{number}] out of order or repeated")));
            }
            last = Some(number);
            let v = any.value();
            let want_constructed = number == 6;
            if constructed != want_constructed {
                return Err(bad(format!("[{number}] has the wrong form")));
            }
            match number {
                0 => info.vendor = Some(utf8(v).map_err(err)?),
                1 => info.model = Some(utf8(v).map_err(err)?),
                2 => info.version = Some(utf8(v).map_err(err)?),
                3 => info.svn = Some(implicit_uint(v).map_err(err)?),
                4 => info.layer = Some(implicit_uint(v).map_err(err)?),
                5 => info.index = Some(implicit_uint(v).map_err(err)?),
                6 => info.fwids = fwid_list(v).map_err(err)?,
                7 => info.flags = Some(v.to_vec()),
                8 => info.vendor_info = Some(v.to_vec()),
                9 => info.tcb_type = Some(v.to_vec()),
                10 => info.flags_mask = Some(v.to_vec()),
                n => return Err(bad(format!("unknown field [{n}]"))),
            }
        }
        Ok(info)
    }

    /// The first FWID, when it is 48 bytes (NVIDIA uses SHA-384).
    pub fn fwid(&self) -> Option<Fwid> {
        let first = self.fwids.first()?;
        <[u8; 48]>::try_from(first.digest.as_slice()).ok().map(Fwid)
    }
}

fn fwid_list(v: &[u8]) -> der::Result<Vec<DiceFwid>> {
    let mut r = SliceReader::new(v)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(r.sequence(|r| {
            let oid = ObjectIdentifier::decode(r)?;
            let digest = der::asn1::OctetStringRef::decode(r)?;
            Ok(DiceFwid {
                hash_alg: oid.to_string(),
                digest: digest.as_bytes().to_vec(),
            })
        })?);
    }
    r.finish(out)
}

fn utf8(v: &[u8]) -> der::Result<String> {
    Ok(der::asn1::Utf8StringRef::new(v)?.as_str().to_owned())
}

/// An INTEGER's content octets, non-negative and at most 64 bits.
fn implicit_uint(v: &[u8]) -> der::Result<u64> {
    let any = AnyRef::new(Tag::Integer, v)?;
    uint(any, Tag::Integer)
}

fn uint(any: AnyRef<'_>, tag: Tag) -> der::Result<u64> {
    der::Tagged::tag(&any).assert_eq(tag)?;
    let int = any.decode_as::<der::asn1::UintRef<'_>>()?;
    let bytes = int.as_bytes();
    if bytes.len() > 8 {
        return Err(der::Tag::Integer.value_error());
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == OID_CN)
        .and_then(|atv| std::str::from_utf8(atv.value.value()).ok())
        .map(str::to_owned)
}

/// Big-endian unsigned bytes → decimal digits.
fn decimal(be: &[u8]) -> String {
    // Little-endian base-10^9 limbs.
    let mut limbs: Vec<u32> = vec![0];
    for &byte in be {
        let mut carry = u64::from(byte);
        for limb in &mut limbs {
            let v = u64::from(*limb) * 256 + carry;
            *limb = u32::try_from(v % 1_000_000_000).unwrap_or_default();
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(u32::try_from(carry % 1_000_000_000).unwrap_or_default());
            carry /= 1_000_000_000;
        }
    }
    let mut out = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&limb.to_string());
        } else {
            out.push_str(&format!("{limb:09}"));
        }
    }
    out
}

fn pem_block(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str(BEGIN);
    out.push('\n');
    let mut line = String::new();
    for c in b64.chars() {
        line.push(c);
        if line.len() == 64 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

mod opt_hex {
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&::hex::encode(b)),
            None => s.serialize_none(),
        }
    }
}

/// Fuzz body: parse a PEM chain; if it parses, the normalized PEM parses to
/// the same DER certificates, and the DICE extensions never panic.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(chain) = DeviceChain::from_pem(data) {
        let again = DeviceChain::from_pem(chain.to_pem().as_bytes())
            .unwrap_or_else(|e| panic!("normalized PEM refused: {e}"));
        assert_eq!(again, chain, "device chain round-trip");
        let _ = chain.leaf_fwid();
        let _ = serde_json::to_string(&chain);
    }
    let _ = DiceTcbInfo::parse(data);
    let _ = HopperFwid::parse(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOPPER_EXT: &str = "3081ba0201013076301006072a8648ce3d020106052b81040022036200044f50da6e047a7981eac3d9e2a87e82cf39513b5dc92fbf1ae3f9bfef085b929a0e128948c15002e986182a58d604b5ea5e42fe9e47ee2db5218c6cc6b51e744b607dc76c7bb8580cda04db27b13e949bcd307a59278a8938e7adb7b190676f97303d06096086480165030402020430f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d";
    const DICE_EXT: &str = "3081b180064e5649444941810d4742313030204130312047535082023031830101840100850100a67e303d06096086480165030402020430d090cab1b6e6ffddca83d1781e25b3f040fa1f3c7608230cb5f41b1c1b99f5f748349e59d0ef8eb830c9bc79ccf77502303d06096086480165030402020430000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000870500800000018801c0890100";

    #[test]
    fn hopper_extension_parses() {
        let v = ::hex::decode(HOPPER_EXT).unwrap();
        let h = HopperFwid::parse(&v).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!(h.hash_alg, "2.16.840.1.101.3.4.2.2");
        assert!(h.fwid.to_hex().starts_with("f5c384ae"));
        assert_eq!(&v[v.len() - 48..], h.fwid.as_bytes());
        // Truncated or extended: refused, never panics.
        for cut in 0..v.len() {
            assert!(HopperFwid::parse(&v[..cut]).is_err());
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(HopperFwid::parse(&longer).is_err());
    }

    #[test]
    fn dice_extension_parses() {
        let v = ::hex::decode(DICE_EXT).unwrap();
        let d = DiceTcbInfo::parse(&v).unwrap();
        assert_eq!(d.vendor.as_deref(), Some("NVIDIA"));
        assert_eq!(d.model.as_deref(), Some("GB100 A01 GSP"));
        assert_eq!(d.version.as_deref(), Some("01"));
        assert_eq!((d.svn, d.layer, d.index), (Some(1), Some(0), Some(0)));
        assert_eq!(d.fwids.len(), 2);
        assert!(d.fwid().unwrap().to_hex().ends_with("f77502"));
        assert_eq!(d.flags.as_deref(), Some(&[0, 0x80, 0, 0, 1][..]));
        assert_eq!(d.tcb_type.as_deref(), Some(&[0][..]));
        for cut in 0..v.len() {
            assert!(DiceTcbInfo::parse(&v[..cut]).is_err());
        }
        // [1] before [0]: refused.
        let swapped = ::hex::decode("30068101418001 42".replace(' ', "")).unwrap();
        assert!(DiceTcbInfo::parse(&swapped).is_err());
        // A universal tag inside: refused.
        assert!(DiceTcbInfo::parse(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }

    #[test]
    fn decimal_conversion() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0]), "0");
        assert_eq!(decimal(&[1, 0]), "256");
        assert_eq!(decimal(&[0x3b, 0x9a, 0xca, 0x00]), "1000000000");
        let serial = ::hex::decode("53c22ba15e5d68088282da074ed9fb37aa585771").unwrap();
        assert_eq!(
            decimal(&serial),
            "478176379286082186618948445787393647364802107249"
        );
    }

    #[test]
    fn pem_errors_are_documents() {
        for bad in [
            &b""[..],
            b"  \n\0",
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            b"\xff",
        ] {
            let err = DeviceChain::from_pem(bad).unwrap_err();
            assert!(
                matches!(err, ParseError::Document { format: FORMAT, .. }),
                "{err:?}"
            );
        }
    }
}
