//! Intel TDX DCAP quote wire layout, versions 4 and 5 (Intel TDX DCAP Quoting
//! Library API, "Quote Format"; offsets as in `specs/snp-tdx.md` §5.3, checked on
//! every golden quote).
//!
//! Bytes in, typed fields out, and back again, byte-exact. The parser never
//! checks a signature, a certificate, a TCB level or a policy: that is the
//! verifier's job (`verifier::appraise::tdx`). It keeps the bytes it received
//! so signatures are checked over them ([`Quote::signed_bytes`],
//! [`Quote::qe_report_bytes`]), never over a re-encoding.
//!
//! Layout (little-endian):
//! - v4: header (48) ‖ TD 1.0 body (584) ‖ signature data;
//!   v5: header (48) ‖ body descriptor (type u16, size u32) ‖ body (584 or 648) ‖ signature data.
//! - Signature data: u32 length ‖ ECDSA r‖s (64) ‖ attestation key x‖y (64) ‖
//!   certification data {type u16, size u32, data}. Type 6 (QE report
//!   certification data) nests the QE's SGX report, its signature, the QE
//!   authentication data and another certification data (type 5: the PCK
//!   chain as PEM).
//! - Bytes after the signature data (zero padding from the quote buffer) are
//!   kept as [`TrailingBytes`] and round-trip; the u32 length is authoritative.
#![warn(clippy::indexing_slicing)]

use serde::Serialize;

use crate::bytes::{Reader, Writer};
use crate::error::ParseError;

const FORMAT: &str = "tdx quote";

/// Header length.
pub const HEADER_LEN: usize = 48;
/// v5 body descriptor length (type u16 + size u32).
pub const DESCRIPTOR_LEN: usize = 6;
/// TD 1.0 body (TDREPORT10 as quoted) length.
pub const TD10_LEN: usize = 584;
/// TD 1.5 body length.
pub const TD15_LEN: usize = 648;
/// SGX enclave report (the QE report) length.
pub const ENCLAVE_REPORT_LEN: usize = 384;
/// Signed region of a v4 quote (header + TD 1.0 body).
pub const V4_SIGNED_LEN: usize = HEADER_LEN + TD10_LEN;
/// Intel's QE vendor ID.
pub const INTEL_QE_VENDOR_ID: QeVendorId = QeVendorId([
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
]);

crate::byte_newtype!(
    /// QE vendor ID from the quote header (Intel: `939a7233…0607`).
    pub struct QeVendorId(16);
);
crate::byte_newtype!(
    /// Header user data (for Intel's QE: the first 16 bytes are the QE ID).
    pub struct HeaderUserData(20);
);
crate::byte_newtype!(
    /// TEE_TCB_SVN: TDX module SVN (byte 0), module major version (byte 1), and
    /// the further TDX TCB components.
    pub struct TeeTcbSvn(16);
);
crate::byte_newtype!(
    /// MRSEAM: measurement of the TDX module.
    pub struct MrSeam(48);
);
crate::byte_newtype!(
    /// MRSIGNERSEAM: signer of the TDX module (zero for Intel's modules).
    pub struct MrSignerSeam(48);
);
crate::byte_newtype!(
    /// MRTD: measurement of the initial TD contents (the firmware image).
    pub struct Mrtd(48);
);
crate::byte_newtype!(
    /// MRCONFIGID: software-defined ID of the TD's configuration.
    pub struct MrConfigId(48);
);
crate::byte_newtype!(
    /// MROWNER: software-defined ID of the TD's owner.
    pub struct MrOwner(48);
);
crate::byte_newtype!(
    /// MROWNERCONFIG: software-defined ID of owner-defined configuration.
    pub struct MrOwnerConfig(48);
);
crate::byte_newtype!(
    /// A runtime-extendable measurement register (RTMR0..3).
    pub struct Rtmr(48);
);
crate::byte_newtype!(
    /// REPORTDATA: the 64 bytes the TD chose to bind into the quote.
    pub struct TdReportData(64);
);
crate::byte_newtype!(
    /// MRSERVICETD (TD 1.5): hash of the service TDs bound to this TD.
    pub struct MrServiceTd(48);
);
crate::byte_newtype!(
    /// An ECDSA P-256 signature as raw big-endian `r ‖ s`.
    pub struct EcdsaP256Signature(64);
);
crate::byte_newtype!(
    /// An ECDSA P-256 public key as raw big-endian `x ‖ y` (no SEC1 prefix).
    pub struct EcdsaP256PublicKey(64);
);
crate::byte_newtype!(
    /// SGX CPUSVN of the QE's report.
    pub struct SgxCpuSvn(16);
);
crate::byte_newtype!(
    /// SGX enclave ATTRIBUTES (flags ‖ xfrm).
    pub struct SgxAttributes(16);
);
crate::byte_newtype!(
    /// MRENCLAVE of an SGX enclave.
    pub struct MrEnclave(32);
);
crate::byte_newtype!(
    /// MRSIGNER of an SGX enclave (hash of its signing key).
    pub struct MrSigner(32);
);
crate::byte_newtype!(
    /// REPORTDATA of an SGX enclave report.
    pub struct SgxReportData(64);
);

/// Declares a little-endian integer wire enum: a newtype that keeps unknown values.
macro_rules! wire_int {
    ($(#[$meta:meta])* pub struct $name:ident($int:ty);) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);
    };
}

wire_int!(
    /// Attestation key type from the header.
    pub struct AttestationKeyType(u16);
);
impl AttestationKeyType {
    /// ECDSA-256-with-P-256 curve: the only type DCAP produces.
    pub const ECDSA_P256: Self = Self(2);
    /// ECDSA-384-with-P-384 curve (defined, unused; refused by the parser).
    pub const ECDSA_P384: Self = Self(3);
}

wire_int!(
    /// TEE type from the header.
    pub struct TeeType(u32);
);
impl TeeType {
    /// SGX enclave quote (refused by this parser).
    pub const SGX: Self = Self(0x0000_0000);
    /// TDX TD quote.
    pub const TDX: Self = Self(0x0000_0081);
}

wire_int!(
    /// v5 body type.
    pub struct BodyType(u16);
);
impl BodyType {
    /// SGX enclave report (refused: this is a TDX parser).
    pub const SGX: Self = Self(1);
    /// TD report, TDX 1.0 (584 bytes).
    pub const TD10: Self = Self(2);
    /// TD report, TDX 1.5 (648 bytes).
    pub const TD15: Self = Self(3);
}

wire_int!(
    /// Certification data type.
    pub struct CertDataType(u16);
);
impl CertDataType {
    /// PPID in clear text.
    pub const PPID_CLEARTEXT: Self = Self(1);
    /// PPID encrypted with RSA-2048-OAEP.
    pub const PPID_RSA2048: Self = Self(2);
    /// PPID encrypted with RSA-3072-OAEP.
    pub const PPID_RSA3072: Self = Self(3);
    /// A PCK leaf certificate.
    pub const PCK_LEAF: Self = Self(4);
    /// PCK certificate chain (PEM: leaf, intermediate, root).
    pub const PCK_CHAIN: Self = Self(5);
    /// QE report certification data.
    pub const QE_REPORT: Self = Self(6);
    /// Platform manifest.
    pub const PLATFORM_MANIFEST: Self = Self(7);
}

/// TD_ATTRIBUTES (TDX module ABI, TDINFO_STRUCT): named bits decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    /// TUD.DEBUG: the TD is debuggable (its memory is readable by the host).
    pub const DEBUG: u64 = 1 << 0;
    /// SEC.SEPT_VE_DISABLE: EPT violations are not converted to #VE.
    pub const SEPT_VE_DISABLE: u64 = 1 << 28;
    /// SEC.MIGRATABLE: the TD may be migrated.
    pub const MIGRATABLE: u64 = 1 << 29;
    /// SEC.PKS: supervisor protection keys enabled.
    pub const PKS: u64 = 1 << 30;
    /// OTHER.PERFMON: the TD may use performance monitoring.
    pub const PERFMON: u64 = 1 << 63;

    /// TD under debug.
    pub fn debug(self) -> bool {
        self.0 & Self::DEBUG != 0
    }
    /// SEPT_VE_DISABLE set.
    pub fn sept_ve_disable(self) -> bool {
        self.0 & Self::SEPT_VE_DISABLE != 0
    }
    /// MIGRATABLE set.
    pub fn migratable(self) -> bool {
        self.0 & Self::MIGRATABLE != 0
    }
    /// PKS set.
    pub fn pks(self) -> bool {
        self.0 & Self::PKS != 0
    }
    /// PERFMON set.
    pub fn perfmon(self) -> bool {
        self.0 & Self::PERFMON != 0
    }
}

impl Serialize for TdAttributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TdAttributes", 6)?;
        st.serialize_field("value", &format!("{:016x}", self.0))?;
        st.serialize_field("debug", &self.debug())?;
        st.serialize_field("sept_ve_disable", &self.sept_ve_disable())?;
        st.serialize_field("migratable", &self.migratable())?;
        st.serialize_field("pks", &self.pks())?;
        st.serialize_field("perfmon", &self.perfmon())?;
        st.end()
    }
}

/// Declares a u64 bit-field newtype that serializes as 16 hex digits of its value.
macro_rules! hex_u64 {
    ($(#[$meta:meta])* pub struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub u64);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&format!("{:016x}", self.0))
            }
        }
    };
}

hex_u64!(
    /// XFAM: the extended features (XCR0/IA32_XSS bits) the TD may use.
    pub struct Xfam;
);
hex_u64!(
    /// SEAM_ATTRIBUTES of the TDX module (zero for production modules).
    pub struct SeamAttributes;
);

/// The 48-byte quote header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// Quote version: 4 or 5.
    pub version: u16,
    /// Attestation key type (always ECDSA P-256 after parsing).
    pub att_key_type: AttestationKeyType,
    /// TEE type (always TDX after parsing).
    pub tee_type: TeeType,
    /// QE SVN (reserved for TDX; zero in Intel quotes).
    pub qe_svn: u16,
    /// PCE SVN (reserved for TDX; zero in Intel quotes).
    pub pce_svn: u16,
    /// QE vendor ID.
    pub qe_vendor_id: QeVendorId,
    /// User data (QE ID and padding).
    pub user_data: HeaderUserData,
}

impl Header {
    /// Parses exactly 48 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::exact(FORMAT, bytes, HEADER_LEN)?;
        let h = Self::read(&mut r)?;
        r.finish()?;
        Ok(h)
    }

    /// Serializes to 48 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN);
        w.at(0x00).u16_le(self.version);
        w.at(0x02).u16_le(self.att_key_type.0);
        w.at(0x04).u32_le(self.tee_type.0);
        w.at(0x08).u16_le(self.qe_svn);
        w.at(0x0a).u16_le(self.pce_svn);
        w.at(0x0c).bytes(self.qe_vendor_id.as_bytes());
        w.at(0x1c).bytes(self.user_data.as_bytes());
        w.at(0x30);
        w.into_vec()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let start = r.offset();
        let version = r.at(0x00).u16_le("version")?;
        if version != 4 && version != 5 {
            return Err(ParseError::Unsupported {
                format: FORMAT,
                what: format!("quote version {version} (only 4 and 5 are TDX quotes)"),
            });
        }
        let att_key_type = AttestationKeyType(r.at(0x02).u16_le("att_key_type")?);
        if att_key_type != AttestationKeyType::ECDSA_P256 {
            return Err(ParseError::Unsupported {
                format: FORMAT,
                what: format!(
                    "attestation key type {} at offset {}",
                    att_key_type.0,
                    start + 2
                ),
            });
        }
        let tee_type = TeeType(r.at(0x04).u32_le("tee_type")?);
        if tee_type != TeeType::TDX {
            return Err(ParseError::Unsupported {
                format: FORMAT,
                what: format!("TEE type {:#x} (only TDX, 0x81)", tee_type.0),
            });
        }
        let qe_svn = r.at(0x08).u16_le("qe_svn")?;
        let pce_svn = r.at(0x0a).u16_le("pce_svn")?;
        let qe_vendor_id = QeVendorId(r.at(0x0c).array("qe_vendor_id")?);
        let user_data = HeaderUserData(r.at(0x1c).array("user_data")?);
        r.at(0x30);
        Ok(Self {
            version,
            att_key_type,
            tee_type,
            qe_svn,
            pce_svn,
            qe_vendor_id,
            user_data,
        })
    }
}

/// The v5 body descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BodyDescriptor {
    /// Body type: 2 = TD 1.0, 3 = TD 1.5.
    pub body_type: BodyType,
    /// Body size in bytes: 584 or 648.
    pub size: u32,
}

/// The TD 1.0 quote body (TDREPORT fields as quoted), 584 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdReport10 {
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: TeeTcbSvn,
    /// MRSEAM.
    pub mr_seam: MrSeam,
    /// MRSIGNERSEAM.
    pub mr_signer_seam: MrSignerSeam,
    /// SEAM_ATTRIBUTES.
    pub seam_attributes: SeamAttributes,
    /// TD_ATTRIBUTES.
    pub td_attributes: TdAttributes,
    /// XFAM.
    pub xfam: Xfam,
    /// MRTD.
    pub mr_td: Mrtd,
    /// MRCONFIGID.
    pub mr_config_id: MrConfigId,
    /// MROWNER.
    pub mr_owner: MrOwner,
    /// MROWNERCONFIG.
    pub mr_owner_config: MrOwnerConfig,
    /// RTMR0..3.
    pub rtmrs: [Rtmr; 4],
    /// REPORTDATA.
    pub report_data: TdReportData,
}

impl TdReport10 {
    /// Parses exactly 584 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::exact(FORMAT, bytes, TD10_LEN)?;
        let b = Self::read(&mut r)?;
        r.finish()?;
        Ok(b)
    }

    /// Serializes to 584 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(TD10_LEN);
        self.write(&mut w);
        w.into_vec()
    }

    /// Offsets relative to the body start (48 in v4, 54 in v5).
    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let tee_tcb_svn = TeeTcbSvn(r.at(0x000).array("tee_tcb_svn")?);
        let mr_seam = MrSeam(r.at(0x010).array("mr_seam")?);
        let mr_signer_seam = MrSignerSeam(r.at(0x040).array("mr_signer_seam")?);
        let seam_attributes = SeamAttributes(r.at(0x070).u64_le("seam_attributes")?);
        let td_attributes = TdAttributes(r.at(0x078).u64_le("td_attributes")?);
        let xfam = Xfam(r.at(0x080).u64_le("xfam")?);
        let mr_td = Mrtd(r.at(0x088).array("mr_td")?);
        let mr_config_id = MrConfigId(r.at(0x0b8).array("mr_config_id")?);
        let mr_owner = MrOwner(r.at(0x0e8).array("mr_owner")?);
        let mr_owner_config = MrOwnerConfig(r.at(0x118).array("mr_owner_config")?);
        let rtmr0 = Rtmr(r.at(0x148).array("rtmr0")?);
        let rtmr1 = Rtmr(r.at(0x178).array("rtmr1")?);
        let rtmr2 = Rtmr(r.at(0x1a8).array("rtmr2")?);
        let rtmr3 = Rtmr(r.at(0x1d8).array("rtmr3")?);
        let report_data = TdReportData(r.at(0x208).array("report_data")?);
        r.at(0x248);
        Ok(Self {
            tee_tcb_svn,
            mr_seam,
            mr_signer_seam,
            seam_attributes,
            td_attributes,
            xfam,
            mr_td,
            mr_config_id,
            mr_owner,
            mr_owner_config,
            rtmrs: [rtmr0, rtmr1, rtmr2, rtmr3],
            report_data,
        })
    }

    fn write(&self, w: &mut Writer) {
        let [rtmr0, rtmr1, rtmr2, rtmr3] = &self.rtmrs;
        w.at(0x000).bytes(self.tee_tcb_svn.as_bytes());
        w.at(0x010).bytes(self.mr_seam.as_bytes());
        w.at(0x040).bytes(self.mr_signer_seam.as_bytes());
        w.at(0x070).u64_le(self.seam_attributes.0);
        w.at(0x078).u64_le(self.td_attributes.0);
        w.at(0x080).u64_le(self.xfam.0);
        w.at(0x088).bytes(self.mr_td.as_bytes());
        w.at(0x0b8).bytes(self.mr_config_id.as_bytes());
        w.at(0x0e8).bytes(self.mr_owner.as_bytes());
        w.at(0x118).bytes(self.mr_owner_config.as_bytes());
        w.at(0x148).bytes(rtmr0.as_bytes());
        w.at(0x178).bytes(rtmr1.as_bytes());
        w.at(0x1a8).bytes(rtmr2.as_bytes());
        w.at(0x1d8).bytes(rtmr3.as_bytes());
        w.at(0x208).bytes(self.report_data.as_bytes());
        w.at(0x248);
    }
}

/// The TD 1.5 quote body, 648 bytes: the TD 1.0 fields, then TEE_TCB_SVN_2 and MRSERVICETD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdReport15 {
    /// The TD 1.0 fields (offsets 0..584 of the body).
    #[serde(flatten)]
    pub base: TdReport10,
    /// TEE_TCB_SVN_2: the current TCB after a TD-preserving module update.
    pub tee_tcb_svn2: TeeTcbSvn,
    /// MRSERVICETD.
    pub mr_service_td: MrServiceTd,
}

impl TdReport15 {
    /// Parses exactly 648 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::exact(FORMAT, bytes, TD15_LEN)?;
        let b = Self::read(&mut r)?;
        r.finish()?;
        Ok(b)
    }

    /// Serializes to 648 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(TD15_LEN);
        self.write(&mut w);
        w.into_vec()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let base = TdReport10::read(r)?;
        let tee_tcb_svn2 = TeeTcbSvn(r.at(0x248).array("tee_tcb_svn2")?);
        let mr_service_td = MrServiceTd(r.at(0x258).array("mr_service_td")?);
        r.at(0x288);
        Ok(Self {
            base,
            tee_tcb_svn2,
            mr_service_td,
        })
    }

    fn write(&self, w: &mut Writer) {
        self.base.write(w);
        w.at(0x248).bytes(self.tee_tcb_svn2.as_bytes());
        w.at(0x258).bytes(self.mr_service_td.as_bytes());
        w.at(0x288);
    }
}

/// The quote body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TdBody {
    /// TDX 1.0 (v4, or v5 body type 2).
    Td10(TdReport10),
    /// TDX 1.5 (v5 body type 3).
    Td15(TdReport15),
}

impl TdBody {
    /// The TD 1.0 fields every body has.
    pub fn base(&self) -> &TdReport10 {
        match self {
            Self::Td10(b) => b,
            Self::Td15(b) => &b.base,
        }
    }

    /// Length on the wire.
    pub fn len(&self) -> usize {
        match self {
            Self::Td10(_) => TD10_LEN,
            Self::Td15(_) => TD15_LEN,
        }
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Td10(b) => b.write(w),
            Self::Td15(b) => b.write(w),
        }
    }
}

/// An SGX enclave report (`sgx_report_body_t`, 384 bytes): the QE's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnclaveReport {
    /// CPUSVN.
    pub cpu_svn: SgxCpuSvn,
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES.
    pub attributes: SgxAttributes,
    /// MRENCLAVE.
    pub mr_enclave: MrEnclave,
    /// MRSIGNER.
    pub mr_signer: MrSigner,
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// REPORTDATA: for the QE, `SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes`.
    pub report_data: SgxReportData,
}

impl EnclaveReport {
    /// Parses exactly 384 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::exact("sgx enclave report", bytes, ENCLAVE_REPORT_LEN)?;
        let rep = Self::read(&mut r)?;
        r.finish()?;
        Ok(rep)
    }

    /// Serializes to 384 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(ENCLAVE_REPORT_LEN);
        self.write(&mut w);
        w.into_vec()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let cpu_svn = SgxCpuSvn(r.at(0x000).array("qe_report.cpu_svn")?);
        let misc_select = r.at(0x010).u32_le("qe_report.misc_select")?;
        r.at(0x014).zeros::<28>("qe_report.reserved1")?;
        let attributes = SgxAttributes(r.at(0x030).array("qe_report.attributes")?);
        let mr_enclave = MrEnclave(r.at(0x040).array("qe_report.mr_enclave")?);
        r.at(0x060).zeros::<32>("qe_report.reserved2")?;
        let mr_signer = MrSigner(r.at(0x080).array("qe_report.mr_signer")?);
        r.at(0x0a0).zeros::<96>("qe_report.reserved3")?;
        let isv_prod_id = r.at(0x100).u16_le("qe_report.isv_prod_id")?;
        let isv_svn = r.at(0x102).u16_le("qe_report.isv_svn")?;
        r.at(0x104).zeros::<60>("qe_report.reserved4")?;
        let report_data = SgxReportData(r.at(0x140).array("qe_report.report_data")?);
        r.at(0x180);
        Ok(Self {
            cpu_svn,
            misc_select,
            attributes,
            mr_enclave,
            mr_signer,
            isv_prod_id,
            isv_svn,
            report_data,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.at(0x000).bytes(self.cpu_svn.as_bytes());
        w.at(0x010).u32_le(self.misc_select);
        w.at(0x014).zeros(28);
        w.at(0x030).bytes(self.attributes.as_bytes());
        w.at(0x040).bytes(self.mr_enclave.as_bytes());
        w.at(0x060).zeros(32);
        w.at(0x080).bytes(self.mr_signer.as_bytes());
        w.at(0x0a0).zeros(96);
        w.at(0x100).u16_le(self.isv_prod_id);
        w.at(0x102).u16_le(self.isv_svn);
        w.at(0x104).zeros(60);
        w.at(0x140).bytes(self.report_data.as_bytes());
        w.at(0x180);
    }
}

/// Certification data: `type u16 ‖ size u32 ‖ data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificationData {
    /// The type; decides how `body` was parsed.
    pub cert_type: CertDataType,
    /// The data.
    pub body: CertificationBody,
}

/// The data of a certification data block, by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificationBody {
    /// Type 6: QE report certification data.
    QeReport(Box<QeReportCertData>),
    /// Type 5: PCK certificate chain, PEM text as received (often with a trailing NUL).
    PckChain(#[serde(serialize_with = "serialize_text")] Vec<u8>),
    /// Any other type (or a type 6 nested inside type 6), kept raw.
    Raw(#[serde(with = "crate::hex::bytes")] Vec<u8>),
}

impl CertificationBody {
    fn len(&self) -> usize {
        match self {
            Self::QeReport(q) => q.len(),
            Self::PckChain(b) | Self::Raw(b) => b.len(),
        }
    }
}

impl CertificationData {
    /// Wire length including the 6-byte type/size prefix.
    pub fn len(&self) -> usize {
        6 + self.body.len()
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `nested` is true inside a type-6 block, where another type 6 is kept raw
    /// rather than recursed into.
    fn read(r: &mut Reader<'_>, nested: bool) -> Result<Self, ParseError> {
        let cert_type = CertDataType(r.u16_le("certification_data.type")?);
        let size_offset = r.offset();
        let size = r.u32_le("certification_data.size")?;
        let size = usize::try_from(size).map_err(|_| {
            r.invalid(
                "certification_data.size",
                size_offset,
                "does not fit in memory",
            )
        })?;
        let mut body_r = r.sub("certification_data.data", size)?;
        let body = match cert_type {
            CertDataType::QE_REPORT if !nested => {
                let q = QeReportCertData::read(&mut body_r)?;
                body_r.finish()?;
                CertificationBody::QeReport(Box::new(q))
            }
            CertDataType::PCK_CHAIN => CertificationBody::PckChain(body_r.take_rest().to_vec()),
            _ => CertificationBody::Raw(body_r.take_rest().to_vec()),
        };
        Ok(Self { cert_type, body })
    }

    fn write(&self, w: &mut Writer) {
        w.u16_le(self.cert_type.0);
        w.u32_le(len_u32(self.body.len()));
        match &self.body {
            CertificationBody::QeReport(q) => q.write(w),
            CertificationBody::PckChain(b) | CertificationBody::Raw(b) => {
                w.bytes(b);
            }
        }
    }
}

/// Type-6 certification data: the QE's report, signed by the PCK key, binding
/// the attestation key; and the PCK chain (nested certification data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QeReportCertData {
    /// The QE's SGX report.
    pub qe_report: EnclaveReport,
    /// Signature over the 384 report bytes by the PCK key.
    pub qe_report_signature: EcdsaP256Signature,
    /// QE authentication data (u16 length prefix on the wire).
    #[serde(with = "crate::hex::bytes")]
    pub qe_auth_data: Vec<u8>,
    /// Nested certification data (type 5, the PCK chain, in Intel quotes).
    pub certification_data: CertificationData,
}

impl QeReportCertData {
    fn len(&self) -> usize {
        ENCLAVE_REPORT_LEN + 64 + 2 + self.qe_auth_data.len() + self.certification_data.len()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let mut rep = r.sub("qe_report", ENCLAVE_REPORT_LEN)?;
        let qe_report = EnclaveReport::read(&mut rep)?;
        rep.finish()?;
        let qe_report_signature = EcdsaP256Signature(r.array("qe_report_signature")?);
        let auth_len = r.u16_le("qe_auth_data.len")?;
        let qe_auth_data = r.bytes("qe_auth_data", usize::from(auth_len))?.to_vec();
        let certification_data = CertificationData::read(r, true)?;
        Ok(Self {
            qe_report,
            qe_report_signature,
            qe_auth_data,
            certification_data,
        })
    }

    fn write(&self, w: &mut Writer) {
        // The report's offsets are its own, so it is built in its own writer.
        w.bytes(&self.qe_report.to_bytes());
        w.bytes(self.qe_report_signature.as_bytes());
        w.u16_le(u16::try_from(self.qe_auth_data.len()).unwrap_or(u16::MAX));
        w.bytes(&self.qe_auth_data);
        self.certification_data.write(w);
    }
}

/// The signature data block (called "auth data" by dcap-qvl): the quote
/// signature, the attestation key and its certification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureData {
    /// ECDSA P-256 signature over the signed region by the attestation key.
    pub signature: EcdsaP256Signature,
    /// The attestation key.
    pub attestation_key: EcdsaP256PublicKey,
    /// Certification of the attestation key (type 6 in Intel TDX quotes).
    pub certification_data: CertificationData,
}

impl SignatureData {
    /// Wire length without the u32 length prefix (the prefix's value).
    pub fn len(&self) -> usize {
        64 + 64 + self.certification_data.len()
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Bytes after the signature data (zero padding of the quote buffer), kept so
/// the quote round-trips; the verifier decides whether to accept them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrailingBytes(pub Vec<u8>);

impl TrailingBytes {
    /// True when every trailing byte is zero (or there are none).
    pub fn all_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }
}

impl Serialize for TrailingBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let zero = self.all_zero();
        let mut st = s.serialize_struct("TrailingBytes", 3)?;
        st.serialize_field("len", &self.0.len())?;
        st.serialize_field("all_zero", &zero)?;
        if !zero {
            st.serialize_field("hex", &hex::encode(&self.0))?;
        }
        st.end()
    }
}

/// A parsed TDX quote, v4 or v5, with the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// Header.
    pub header: Header,
    /// v5 only: body type and size.
    pub body_descriptor: Option<BodyDescriptor>,
    /// TD report body.
    pub body: TdBody,
    /// Signature data.
    pub signature_data: SignatureData,
    /// Bytes after the signature data.
    pub trailing: TrailingBytes,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl Quote {
    /// Parses a quote. Bytes after the signature data are kept in `trailing`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(FORMAT, bytes);
        let mut hr = r.sub("header", HEADER_LEN)?;
        let header = Header::read(&mut hr)?;
        hr.finish()?;

        let (body_descriptor, body) = if header.version == 4 {
            let mut br = r.sub("td_report", TD10_LEN)?;
            let b = TdReport10::read(&mut br)?;
            br.finish()?;
            (None, TdBody::Td10(b))
        } else {
            let body_type = BodyType(r.at(0x30).u16_le("body_type")?);
            let size_offset = r.offset();
            let size = r.at(0x32).u32_le("body_size")?;
            let expected = match body_type {
                BodyType::TD10 => TD10_LEN,
                BodyType::TD15 => TD15_LEN,
                other => {
                    return Err(ParseError::Unsupported {
                        format: FORMAT,
                        what: format!("v5 body type {} (only 2 = TD 1.0, 3 = TD 1.5)", other.0),
                    });
                }
            };
            if usize::try_from(size).ok() != Some(expected) {
                return Err(r.invalid(
                    "body_size",
                    size_offset,
                    format!(
                        "body type {} has {expected} bytes, header says {size}",
                        body_type.0
                    ),
                ));
            }
            let mut br = r.sub("td_report", expected)?;
            let b = if body_type == BodyType::TD10 {
                TdBody::Td10(TdReport10::read(&mut br)?)
            } else {
                TdBody::Td15(TdReport15::read(&mut br)?)
            };
            br.finish()?;
            (Some(BodyDescriptor { body_type, size }), b)
        };

        let len_offset = r.offset();
        let sig_len = r.u32_le("signature_data_len")?;
        let sig_len = usize::try_from(sig_len)
            .map_err(|_| r.invalid("signature_data_len", len_offset, "does not fit in memory"))?;
        let mut sr = r.sub("signature_data", sig_len)?;
        let signature = EcdsaP256Signature(sr.array("signature")?);
        let attestation_key = EcdsaP256PublicKey(sr.array("attestation_key")?);
        let certification_data = CertificationData::read(&mut sr, false)?;
        sr.finish()?;
        let trailing = TrailingBytes(r.take_rest().to_vec());

        Ok(Self {
            header,
            body_descriptor,
            body,
            signature_data: SignatureData {
                signature,
                attestation_key,
                certification_data,
            },
            trailing,
            raw: bytes.to_vec(),
        })
    }

    /// Builds a quote from its parts; its received bytes are its serialization.
    pub fn from_parts(
        header: Header,
        body_descriptor: Option<BodyDescriptor>,
        body: TdBody,
        signature_data: SignatureData,
        trailing: TrailingBytes,
    ) -> Self {
        let mut q = Self {
            header,
            body_descriptor,
            body,
            signature_data,
            trailing,
            raw: Vec::new(),
        };
        q.raw = q.to_bytes();
        q
    }

    /// Serializes the quote, trailing bytes included; mirrors [`Quote::parse`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.raw.len().max(1024));
        w.at(0x00).bytes(&self.header.to_bytes());
        if let Some(d) = &self.body_descriptor {
            w.at(0x30).u16_le(d.body_type.0);
            w.at(0x32).u32_le(d.size);
        }
        w.bytes(&self.signed_body_bytes());
        w.u32_le(len_u32(self.signature_data.len()));
        w.bytes(self.signature_data.signature.as_bytes());
        w.bytes(self.signature_data.attestation_key.as_bytes());
        self.signature_data.certification_data.write(&mut w);
        w.bytes(&self.trailing.0);
        w.into_vec()
    }

    /// The bytes this quote was parsed from (or serialized to, for [`Quote::from_parts`]).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Length of the region the attestation key signs: header (+ descriptor) + body.
    pub fn signed_len(&self) -> usize {
        let descriptor = if self.body_descriptor.is_some() {
            DESCRIPTOR_LEN
        } else {
            0
        };
        HEADER_LEN + descriptor + self.body.len()
    }

    /// The signed region, as received.
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..self.signed_len()).unwrap_or_default()
    }

    /// The TD 1.0 fields (present in every body).
    pub fn report(&self) -> &TdReport10 {
        self.body.base()
    }

    /// The TD 1.5 body, when the quote has one.
    pub fn td15(&self) -> Option<&TdReport15> {
        match &self.body {
            TdBody::Td15(b) => Some(b),
            TdBody::Td10(_) => None,
        }
    }

    /// The type-6 QE report certification data, when the quote has it.
    pub fn qe_report_cert_data(&self) -> Option<&QeReportCertData> {
        match &self.signature_data.certification_data.body {
            CertificationBody::QeReport(q) => Some(q),
            _ => None,
        }
    }

    /// The 384 QE report bytes as received (what the PCK key signed).
    pub fn qe_report_bytes(&self) -> Option<&[u8]> {
        self.qe_report_cert_data()?;
        // signature data length (4) + signature (64) + key (64) + type (2) + size (4)
        let start = self.signed_len() + 4 + 128 + 6;
        self.raw.get(start..start + ENCLAVE_REPORT_LEN)
    }

    /// The PCK chain PEM bytes nested in the QE report certification data
    /// (or at top level, for a type-5 quote).
    pub fn pck_chain_pem(&self) -> Option<&[u8]> {
        let cd = match self.qe_report_cert_data() {
            Some(q) => &q.certification_data,
            None => &self.signature_data.certification_data,
        };
        match &cd.body {
            CertificationBody::PckChain(pem) => Some(pem),
            _ => None,
        }
    }

    fn signed_body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.body.len());
        self.body.write(&mut w);
        w.into_vec()
    }
}

/// Fuzz body: parse; if it parses, serializing gives back the whole input
/// (trailing bytes included). Never panics otherwise.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(q) = Quote::parse(data) {
        assert_eq!(q.to_bytes(), data, "tdx quote round-trip");
        assert_eq!(q.raw(), data);
        let _ = q.signed_bytes();
        let _ = q.qe_report_bytes();
    }
}

/// Lengths we write were read from a u32 field or built from bounded parts.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn serialize_text<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimSeed;
    use crate::tdx::simulate::{TdxSimParams, simulate};

    fn sample() -> Vec<u8> {
        let params = TdxSimParams::new(TdReportData([0x5a; 64]));
        simulate(&SimSeed::DEFAULT, &params, 1_767_225_600)
            .unwrap()
            .quote
    }

    /// The sample rebuilt as a v5 quote with a TD 1.5 body.
    fn sample_v5() -> Vec<u8> {
        let q = Quote::parse(&sample()).unwrap();
        let mut header = q.header.clone();
        header.version = 5;
        let body = TdBody::Td15(TdReport15 {
            base: q.report().clone(),
            tee_tcb_svn2: TeeTcbSvn([7; 16]),
            mr_service_td: MrServiceTd([0; 48]),
        });
        let d = BodyDescriptor {
            body_type: BodyType::TD15,
            size: 648,
        };
        Quote::from_parts(header, Some(d), body, q.signature_data, q.trailing).to_bytes()
    }

    /// Offset of the QE report in the sample (v4).
    const QE_REPORT: usize = V4_SIGNED_LEN + 4 + 128 + 6;

    fn set_u16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn v4_and_v5_round_trip_with_trailing_bytes() {
        for mut bytes in [sample(), sample_v5()] {
            bytes.extend_from_slice(&[0; 70]);
            let q = Quote::parse(&bytes).unwrap();
            assert_eq!(q.to_bytes(), bytes);
            assert_eq!(q.trailing.0.len(), 70);
            assert!(q.trailing.all_zero());
            assert_eq!(q.raw(), bytes.as_slice());
        }
        let q5 = Quote::parse(&sample_v5()).unwrap();
        assert_eq!(q5.signed_len(), 702);
        assert_eq!(q5.td15().unwrap().tee_tcb_svn2, TeeTcbSvn([7; 16]));
        assert_eq!(q5.report().report_data, TdReportData([0x5a; 64]));
        let q4 = Quote::parse(&sample()).unwrap();
        assert_eq!(q4.signed_len(), V4_SIGNED_LEN);
        assert_eq!(
            q4.qe_report_bytes().unwrap(),
            &sample()[QE_REPORT..QE_REPORT + 384]
        );
    }

    #[test]
    fn v5_td10_body_parses() {
        let q = Quote::parse(&sample()).unwrap();
        let mut header = q.header.clone();
        header.version = 5;
        let d = BodyDescriptor {
            body_type: BodyType::TD10,
            size: 584,
        };
        let bytes = Quote::from_parts(
            header,
            Some(d),
            q.body.clone(),
            q.signature_data,
            q.trailing,
        )
        .to_bytes();
        let q5 = Quote::parse(&bytes).unwrap();
        assert_eq!(q5.signed_len(), 48 + 6 + 584);
        assert!(q5.td15().is_none());
        assert_eq!(q5.to_bytes(), bytes);
    }

    #[test]
    fn fixed_parts_parse_alone() {
        let bytes = sample();
        let h = Header::parse(&bytes[..48]).unwrap();
        assert_eq!(h.to_bytes(), &bytes[..48]);
        assert_eq!(h.qe_vendor_id, INTEL_QE_VENDOR_ID);
        let b = TdReport10::parse(&bytes[48..632]).unwrap();
        assert_eq!(b.to_bytes(), &bytes[48..632]);
        let r = EnclaveReport::parse(&bytes[QE_REPORT..QE_REPORT + 384]).unwrap();
        assert_eq!(r.to_bytes(), &bytes[QE_REPORT..QE_REPORT + 384]);
        let v5 = sample_v5();
        let b15 = TdReport15::parse(&v5[54..702]).unwrap();
        assert_eq!(b15.to_bytes(), &v5[54..702]);
    }

    #[test]
    fn wrong_fixed_length_is_length_error() {
        assert_eq!(
            Header::parse(&[0; 47]),
            Err(ParseError::Length {
                format: FORMAT,
                expected: 48,
                found: 47
            })
        );
        assert!(matches!(
            TdReport10::parse(&[0; 585]),
            Err(ParseError::Length { expected: 584, .. })
        ));
        assert!(matches!(
            TdReport15::parse(&[0; 584]),
            Err(ParseError::Length { expected: 648, .. })
        ));
        assert!(matches!(
            EnclaveReport::parse(&[0; 383]),
            Err(ParseError::Length { expected: 384, .. })
        ));
    }

    #[test]
    fn truncation_names_field_and_offset() {
        let bytes = sample();
        let cases: [(usize, &str, usize); 6] = [
            (20, "header", 0),
            (100, "td_report", 48),
            (633, "signature_data_len", 632),
            (700, "signature_data", 636),
            (3000, "signature_data", 636),
            (30, "header", 0),
        ];
        for (len, field, offset) in cases {
            let err = Quote::parse(&bytes[..len]).unwrap_err();
            assert_eq!(err.field(), Some(field), "len {len}: {err}");
            assert_eq!(err.offset(), Some(offset), "len {len}: {err}");
            assert!(matches!(err, ParseError::Truncated { .. }));
        }
        // A signature-data length beyond the input names the field.
        let mut b = bytes.clone();
        set_u32(&mut b, 632, 100_000);
        let err = Quote::parse(&b).unwrap_err();
        assert_eq!(
            err,
            ParseError::Truncated {
                format: FORMAT,
                field: "signature_data",
                offset: 636,
                need: 100_000,
                have: bytes.len() - 636
            }
        );
        // A QE auth data length beyond its block.
        let mut b = bytes.clone();
        set_u16(&mut b, QE_REPORT + 384 + 64, 60_000);
        let err = Quote::parse(&b).unwrap_err();
        assert_eq!(err.field(), Some("qe_auth_data"));
        assert_eq!(err.offset(), Some(QE_REPORT + 384 + 64 + 2));
        // A certification data size beyond its block.
        let mut b = bytes.clone();
        set_u32(&mut b, QE_REPORT - 4, 1_000_000);
        let err = Quote::parse(&b).unwrap_err();
        assert_eq!(err.field(), Some("certification_data.data"));
        assert_eq!(err.offset(), Some(QE_REPORT));
    }

    #[test]
    fn reserved_qe_report_bytes_must_be_zero() {
        let mut b = sample();
        b[QE_REPORT + 0x20] = 1;
        assert_eq!(
            Quote::parse(&b).unwrap_err(),
            ParseError::ReservedNonZero {
                format: FORMAT,
                field: "qe_report.reserved1",
                offset: QE_REPORT + 0x14
            }
        );
    }

    #[test]
    fn signature_data_longer_than_its_contents_is_trailing_error() {
        let mut b = sample();
        let len = u32::from_le_bytes(b[632..636].try_into().unwrap());
        set_u32(&mut b, 632, len + 1);
        b.push(0);
        assert_eq!(
            Quote::parse(&b).unwrap_err(),
            ParseError::TrailingBytes {
                format: FORMAT,
                offset: b.len() - 1,
                extra: 1
            }
        );
    }

    #[test]
    fn unsupported_versions_types_and_keys() {
        let base = sample();
        let mut b = base.clone();
        set_u16(&mut b, 0, 3);
        assert!(matches!(
            Quote::parse(&b),
            Err(ParseError::Unsupported { .. })
        ));
        let mut b = base.clone();
        set_u16(&mut b, 2, 3);
        assert!(matches!(
            Quote::parse(&b),
            Err(ParseError::Unsupported { .. })
        ));
        let mut b = base.clone();
        set_u32(&mut b, 4, 0);
        assert!(matches!(
            Quote::parse(&b),
            Err(ParseError::Unsupported { .. })
        ));
        let mut b = sample_v5();
        set_u16(&mut b, 48, 4);
        assert!(matches!(
            Quote::parse(&b),
            Err(ParseError::Unsupported { .. })
        ));
    }

    #[test]
    fn v5_body_size_must_match_type() {
        let mut b = sample_v5();
        set_u32(&mut b, 50, 600);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Invalid {
                    field: "body_size",
                    offset: 50,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn other_certification_types_are_kept_raw() {
        let q = Quote::parse(&sample()).unwrap();
        // Top level: an unknown type.
        let sd = SignatureData {
            certification_data: CertificationData {
                cert_type: CertDataType(0x77),
                body: CertificationBody::Raw(vec![1, 2, 3]),
            },
            ..q.signature_data.clone()
        };
        let bytes = Quote::from_parts(
            q.header.clone(),
            None,
            q.body.clone(),
            sd,
            TrailingBytes::default(),
        )
        .to_bytes();
        let p = Quote::parse(&bytes).unwrap();
        assert_eq!(
            p.signature_data.certification_data.cert_type,
            CertDataType(0x77)
        );
        assert_eq!(p.to_bytes(), bytes);
        assert!(p.qe_report_cert_data().is_none() && p.qe_report_bytes().is_none());
        // Nested: a type 6 inside type 6 is not recursed into.
        let mut qe = q.qe_report_cert_data().unwrap().clone();
        qe.certification_data = CertificationData {
            cert_type: CertDataType::QE_REPORT,
            body: CertificationBody::Raw(vec![9; 10]),
        };
        let sd = SignatureData {
            certification_data: CertificationData {
                cert_type: CertDataType::QE_REPORT,
                body: CertificationBody::QeReport(Box::new(qe)),
            },
            ..q.signature_data.clone()
        };
        let bytes = Quote::from_parts(
            q.header.clone(),
            None,
            q.body.clone(),
            sd,
            TrailingBytes::default(),
        )
        .to_bytes();
        let p = Quote::parse(&bytes).unwrap();
        assert_eq!(p.to_bytes(), bytes);
        assert!(p.pck_chain_pem().is_none());
    }

    #[test]
    fn td_attribute_bits_and_json_view() {
        let a = TdAttributes(TdAttributes::DEBUG | TdAttributes::PKS | TdAttributes::PERFMON);
        assert!(a.debug() && a.pks() && a.perfmon() && !a.sept_ve_disable() && !a.migratable());
        assert!(TdAttributes(TdAttributes::MIGRATABLE).migratable());
        let q = Quote::parse(&sample()).unwrap();
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(v["body"]["kind"], "td10");
        assert_eq!(v["body"]["xfam"], "00000000000602e7");
        assert_eq!(v["body"]["td_attributes"]["debug"], false);
        assert_eq!(v["header"]["tee_type"], 0x81);
        assert!(
            v["signature_data"]["certification_data"]["body"]["qe_report"]["certification_data"]
                ["body"]["pck_chain"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let t = TrailingBytes(vec![0, 1]);
        assert_eq!(serde_json::to_value(&t).unwrap()["hex"], "0001");
    }

    #[test]
    fn fuzz_body_survives_truncations_and_bit_flips() {
        for bytes in [sample(), sample_v5()] {
            for len in 0..bytes.len() {
                fuzz_roundtrip(&bytes[..len]);
            }
            let mut b = bytes.clone();
            for i in 0..b.len() {
                // Every bit of the fixed part and the QE report; one bit a byte after.
                let bits = if i < 1300 { 0..8 } else { i % 8..i % 8 + 1 };
                for bit in bits {
                    b[i] ^= 1 << bit;
                    fuzz_roundtrip(&b);
                    b[i] ^= 1 << bit;
                }
            }
        }
    }
}
