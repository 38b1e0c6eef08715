//! AMD SEV-SNP ATTESTATION_REPORT wire layout (SEV-SNP Firmware ABI spec 56860,
//! rev 1.58, Table 23 "ATTESTATION_REPORT Structure"; `specs/snp-tdx.md` §1.3, §2.2).
//!
//! Bytes in, typed fields out, and back again, byte-exact. Versions 2, 3 and 5
//! share one struct: fields whose meaning depends on the version (CPUID
//! family/model/stepping at 0x188, the mitigation vectors at 0x1F8) are kept raw
//! and interpreted by accessors that look at `version`. The parser never guesses
//! the CPU generation, and it does not refuse non-zero reserved bytes: it keeps
//! them (so the round trip stays exact) and lists them in
//! [`Report::nonzero_reserved`] for the verifier to judge.
//!
//! This module never checks signatures, TCB or policy: that is the verifier's
//! job, over the bytes received (`raw[..SIGNED_LEN]`), never over a re-encoding.

#![warn(clippy::indexing_slicing)]

use std::fmt;

use serde::{Serialize, Serializer};

use crate::bytes::{Reader, Writer};
use crate::error::ParseError;
use crate::snp::certs::Product;

/// Total length of an ATTESTATION_REPORT.
pub const LEN: usize = 0x4A0;
/// Length of the signed prefix `[0x000, 0x2A0)`.
pub const SIGNED_LEN: usize = 0x2A0;
/// The format name parse errors carry.
pub const FORMAT: &str = "snp report";

/// Length of each little-endian ECDSA component field (R, S) in the signature.
pub const SIG_COMPONENT_LEN: usize = 72;
/// Significant bytes of a P-384 scalar.
pub const P384_SCALAR_LEN: usize = 48;
/// Reserved tail of the signature block, 0x330..0x4A0.
pub const SIG_RESERVED_LEN: usize = LEN - SIGNED_LEN - 2 * SIG_COMPONENT_LEN;

crate::byte_newtype!(
    /// REPORT_DATA: 64 bytes chosen by the guest (the verifier's nonce binding).
    pub struct ReportData(64);
);
crate::byte_newtype!(
    /// MEASUREMENT: the launch digest of the guest (SHA-384 sized).
    pub struct Measurement(48);
);
crate::byte_newtype!(
    /// HOST_DATA: 32 bytes the host supplied at launch.
    pub struct HostData(32);
);
crate::byte_newtype!(
    /// CHIP_ID: the chip's unique id (zero when masked, e.g. VLEK-signed reports).
    pub struct ChipId(64);
);
crate::byte_newtype!(
    /// ID_KEY_DIGEST: SHA-384 of the ID block signing key.
    pub struct IdKeyDigest(48);
);
crate::byte_newtype!(
    /// AUTHOR_KEY_DIGEST: SHA-384 of the ID author key.
    pub struct AuthorKeyDigest(48);
);
crate::byte_newtype!(
    /// REPORT_ID or REPORT_ID_MA: the guest context id (all `ff` when no migration agent).
    pub struct ReportId(32);
);
crate::byte_newtype!(
    /// FAMILY_ID from the ID block.
    pub struct FamilyId(16);
);
crate::byte_newtype!(
    /// IMAGE_ID from the ID block.
    pub struct ImageId(16);
);

/// One SEV-SNP ATTESTATION_REPORT, every field at its offset.
///
/// Reserved ranges are kept as received so that [`Report::to_bytes`] gives the
/// input back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// 0x000: report format version (2, 3 or 5 seen in the field).
    pub version: u32,
    /// 0x004: guest SVN from the ID block.
    pub guest_svn: u32,
    /// 0x008: the guest policy the VM was launched with.
    pub policy: GuestPolicy,
    /// 0x010: family id from the ID block.
    pub family_id: FamilyId,
    /// 0x020: image id from the ID block.
    pub image_id: ImageId,
    /// 0x030: the VMPL the report was requested at.
    pub vmpl: u32,
    /// 0x034: signature algorithm of the signature block.
    pub signature_algo: SignatureAlgorithm,
    /// 0x038: the platform's current TCB.
    pub current_tcb: TcbVersion,
    /// 0x040: platform information flags.
    pub platform_info: PlatformInfo,
    /// 0x048: which key signed, and author key presence.
    pub key_info: KeyInfo,
    /// 0x04C: reserved, must be zero.
    pub reserved_04c: [u8; 4],
    /// 0x050: guest-supplied report data.
    pub report_data: ReportData,
    /// 0x090: launch measurement.
    pub measurement: Measurement,
    /// 0x0C0: host-supplied data.
    pub host_data: HostData,
    /// 0x0E0: SHA-384 of the ID key.
    pub id_key_digest: IdKeyDigest,
    /// 0x110: SHA-384 of the author key.
    pub author_key_digest: AuthorKeyDigest,
    /// 0x140: report id of the guest.
    pub report_id: ReportId,
    /// 0x160: report id of the migration agent.
    pub report_id_ma: ReportId,
    /// 0x180: the TCB the VCEK/VLEK was derived from.
    pub reported_tcb: TcbVersion,
    /// 0x188..0x18B: CPUID family, model, stepping (v3+); reserved in v2.
    /// Read through [`Report::cpuid`].
    pub cpuid_raw: [u8; 3],
    /// 0x18B..0x1A0: reserved, must be zero.
    pub reserved_18b: [u8; 0x15],
    /// 0x1A0: chip id (hwID of the VCEK).
    pub chip_id: ChipId,
    /// 0x1E0: committed TCB.
    pub committed_tcb: TcbVersion,
    /// 0x1E8..0x1EB: current firmware build, minor, major.
    pub current_version: FirmwareVersion,
    /// 0x1EB: reserved, must be zero.
    pub reserved_1eb: u8,
    /// 0x1EC..0x1EF: committed firmware build, minor, major.
    pub committed_version: FirmwareVersion,
    /// 0x1EF: reserved, must be zero.
    pub reserved_1ef: u8,
    /// 0x1F0: the TCB at launch.
    pub launch_tcb: TcbVersion,
    /// 0x1F8: LAUNCH_MIT_VECTOR in v5, reserved before. Read through
    /// [`Report::launch_mit_vector`].
    pub launch_mit_vector_raw: u64,
    /// 0x200: CURRENT_MIT_VECTOR in v5, reserved before. Read through
    /// [`Report::current_mit_vector`].
    pub current_mit_vector_raw: u64,
    /// 0x208..0x2A0: reserved, must be zero.
    pub reserved_208: [u8; 0x98],
    /// 0x2A0..0x4A0: the signature block (not part of the signed region).
    pub signature: Signature,
}

impl Report {
    /// Parses exactly [`LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::exact(FORMAT, bytes, LEN)?;
        let version = r.at(0x000).u32_le("version")?;
        let guest_svn = r.at(0x004).u32_le("guest_svn")?;
        let policy = GuestPolicy(r.at(0x008).u64_le("policy")?);
        let family_id = FamilyId(r.at(0x010).array("family_id")?);
        let image_id = ImageId(r.at(0x020).array("image_id")?);
        let vmpl = r.at(0x030).u32_le("vmpl")?;
        let signature_algo = SignatureAlgorithm(r.at(0x034).u32_le("signature_algo")?);
        let current_tcb = TcbVersion(r.at(0x038).u64_le("current_tcb")?);
        let platform_info = PlatformInfo(r.at(0x040).u64_le("platform_info")?);
        let key_info = KeyInfo(r.at(0x048).u32_le("key_info")?);
        let reserved_04c = r.at(0x04C).array("reserved_04c")?;
        let report_data = ReportData(r.at(0x050).array("report_data")?);
        let measurement = Measurement(r.at(0x090).array("measurement")?);
        let host_data = HostData(r.at(0x0C0).array("host_data")?);
        let id_key_digest = IdKeyDigest(r.at(0x0E0).array("id_key_digest")?);
        let author_key_digest = AuthorKeyDigest(r.at(0x110).array("author_key_digest")?);
        let report_id = ReportId(r.at(0x140).array("report_id")?);
        let report_id_ma = ReportId(r.at(0x160).array("report_id_ma")?);
        let reported_tcb = TcbVersion(r.at(0x180).u64_le("reported_tcb")?);
        let cpuid_raw = r.at(0x188).array("cpuid")?;
        let reserved_18b = r.at(0x18B).array("reserved_18b")?;
        let chip_id = ChipId(r.at(0x1A0).array("chip_id")?);
        let committed_tcb = TcbVersion(r.at(0x1E0).u64_le("committed_tcb")?);
        let current_version = FirmwareVersion::from_wire(r.at(0x1E8).array("current_version")?);
        let reserved_1eb = r.at(0x1EB).u8("reserved_1eb")?;
        let committed_version = FirmwareVersion::from_wire(r.at(0x1EC).array("committed_version")?);
        let reserved_1ef = r.at(0x1EF).u8("reserved_1ef")?;
        let launch_tcb = TcbVersion(r.at(0x1F0).u64_le("launch_tcb")?);
        let launch_mit_vector_raw = r.at(0x1F8).u64_le("launch_mit_vector")?;
        let current_mit_vector_raw = r.at(0x200).u64_le("current_mit_vector")?;
        let reserved_208 = r.at(0x208).array("reserved_208")?;
        let signature = Signature {
            r: r.at(0x2A0).array("signature.r")?,
            s: r.at(0x2E8).array("signature.s")?,
            reserved: r.at(0x330).array("signature.reserved")?,
        };
        r.at(LEN);
        r.finish()?;
        Ok(Self {
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            signature_algo,
            current_tcb,
            platform_info,
            key_info,
            reserved_04c,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid_raw,
            reserved_18b,
            chip_id,
            committed_tcb,
            current_version,
            reserved_1eb,
            committed_version,
            reserved_1ef,
            launch_tcb,
            launch_mit_vector_raw,
            current_mit_vector_raw,
            reserved_208,
            signature,
        })
    }

    /// Serializes back to the wire, mirroring [`Report::parse`] line for line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(LEN);
        w.at(0x000).u32_le(self.version);
        w.at(0x004).u32_le(self.guest_svn);
        w.at(0x008).u64_le(self.policy.0);
        w.at(0x010).bytes(self.family_id.as_bytes());
        w.at(0x020).bytes(self.image_id.as_bytes());
        w.at(0x030).u32_le(self.vmpl);
        w.at(0x034).u32_le(self.signature_algo.0);
        w.at(0x038).u64_le(self.current_tcb.0);
        w.at(0x040).u64_le(self.platform_info.0);
        w.at(0x048).u32_le(self.key_info.0);
        w.at(0x04C).bytes(&self.reserved_04c);
        w.at(0x050).bytes(self.report_data.as_bytes());
        w.at(0x090).bytes(self.measurement.as_bytes());
        w.at(0x0C0).bytes(self.host_data.as_bytes());
        w.at(0x0E0).bytes(self.id_key_digest.as_bytes());
        w.at(0x110).bytes(self.author_key_digest.as_bytes());
        w.at(0x140).bytes(self.report_id.as_bytes());
        w.at(0x160).bytes(self.report_id_ma.as_bytes());
        w.at(0x180).u64_le(self.reported_tcb.0);
        w.at(0x188).bytes(&self.cpuid_raw);
        w.at(0x18B).bytes(&self.reserved_18b);
        w.at(0x1A0).bytes(self.chip_id.as_bytes());
        w.at(0x1E0).u64_le(self.committed_tcb.0);
        w.at(0x1E8).bytes(&self.current_version.to_wire());
        w.at(0x1EB).u8(self.reserved_1eb);
        w.at(0x1EC).bytes(&self.committed_version.to_wire());
        w.at(0x1EF).u8(self.reserved_1ef);
        w.at(0x1F0).u64_le(self.launch_tcb.0);
        w.at(0x1F8).u64_le(self.launch_mit_vector_raw);
        w.at(0x200).u64_le(self.current_mit_vector_raw);
        w.at(0x208).bytes(&self.reserved_208);
        w.at(0x2A0).bytes(&self.signature.r);
        w.at(0x2E8).bytes(&self.signature.s);
        w.at(0x330).bytes(&self.signature.reserved);
        w.at(LEN);
        w.into_vec()
    }

    /// The signed prefix of this report as re-encoded. Verifiers must use the
    /// bytes they received instead; this is for the simulator, which signs what
    /// it builds.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = self.to_bytes();
        bytes.truncate(SIGNED_LEN);
        bytes
    }

    /// CPUID family/model/stepping, present from version 3 on.
    pub fn cpuid(&self) -> Option<Cpuid> {
        let [family, model, stepping] = self.cpuid_raw;
        (self.version >= 3).then_some(Cpuid {
            family,
            model,
            stepping,
        })
    }

    /// The product line named by the CPUID fields (v3+ only; `None` for v2 or
    /// an unknown family/model). This reads a field, it does not guess: a v2
    /// report's product must come from elsewhere (the VCEK `productName`).
    pub fn product_from_cpuid(&self) -> Option<Product> {
        self.cpuid()
            .and_then(|c| Product::from_cpuid(c.family, c.model))
    }

    /// LAUNCH_MIT_VECTOR, present from version 5 on.
    pub fn launch_mit_vector(&self) -> Option<u64> {
        (self.version >= 5).then_some(self.launch_mit_vector_raw)
    }

    /// CURRENT_MIT_VECTOR, present from version 5 on.
    pub fn current_mit_vector(&self) -> Option<u64> {
        (self.version >= 5).then_some(self.current_mit_vector_raw)
    }

    /// Ranges and bits the ABI says must be zero (for this report's version)
    /// that are not, as `(name, offset)`. Empty for a well-formed report. The
    /// parser records these instead of failing so the verifier can decide.
    pub fn nonzero_reserved(&self) -> Vec<(&'static str, usize)> {
        let mut out = Vec::new();
        let nonzero = |b: &[u8]| b.iter().any(|&x| x != 0);
        if self.policy.must_be_zero_bits() != 0 {
            out.push(("policy[63:26]", 0x008));
        }
        if self.key_info.reserved_bits() != 0 {
            out.push(("key_info[31:5]", 0x048));
        }
        if nonzero(&self.reserved_04c) {
            out.push(("reserved_04c", 0x04C));
        }
        if self.version < 3 && nonzero(&self.cpuid_raw) {
            out.push(("cpuid (reserved before v3)", 0x188));
        }
        if nonzero(&self.reserved_18b) {
            out.push(("reserved_18b", 0x18B));
        }
        if self.reserved_1eb != 0 {
            out.push(("reserved_1eb", 0x1EB));
        }
        if self.reserved_1ef != 0 {
            out.push(("reserved_1ef", 0x1EF));
        }
        if self.version < 5 && self.launch_mit_vector_raw != 0 {
            out.push(("launch_mit_vector (reserved before v5)", 0x1F8));
        }
        if self.version < 5 && self.current_mit_vector_raw != 0 {
            out.push(("current_mit_vector (reserved before v5)", 0x200));
        }
        if nonzero(&self.reserved_208) {
            out.push(("reserved_208", 0x208));
        }
        if nonzero(self.signature.r_high()) {
            out.push(("signature.r[48..72]", 0x2A0 + P384_SCALAR_LEN));
        }
        if nonzero(self.signature.s_high()) {
            out.push(("signature.s[48..72]", 0x2E8 + P384_SCALAR_LEN));
        }
        if nonzero(&self.signature.reserved) {
            out.push(("signature.reserved", 0x330));
        }
        out
    }

    /// The TCB layout this report's TCB fields can be read with without
    /// guessing: from CPUID (v3+), else the only layout whose reserved bytes
    /// are zero in `tcb`, else `None`.
    pub fn tcb_layout_for(&self, tcb: TcbVersion) -> Option<TcbLayout> {
        if let Some(product) = self.product_from_cpuid() {
            return Some(product.tcb_layout());
        }
        match (tcb.fits(TcbLayout::MilanGenoa), tcb.fits(TcbLayout::Turin)) {
            (true, false) => Some(TcbLayout::MilanGenoa),
            (false, true) => Some(TcbLayout::Turin),
            _ => None,
        }
    }

    fn view(&self) -> ReportView<'_> {
        let tcb = |t: TcbVersion| TcbView::new(t, self.tcb_layout_for(t));
        ReportView {
            version: self.version,
            guest_svn: self.guest_svn,
            policy: self.policy,
            family_id: self.family_id,
            image_id: self.image_id,
            vmpl: self.vmpl,
            signature_algo: self.signature_algo,
            current_tcb: tcb(self.current_tcb),
            platform_info: self.platform_info,
            key_info: self.key_info,
            report_data: self.report_data,
            measurement: self.measurement,
            host_data: self.host_data,
            id_key_digest: self.id_key_digest,
            author_key_digest: self.author_key_digest,
            report_id: self.report_id,
            report_id_ma: self.report_id_ma,
            reported_tcb: tcb(self.reported_tcb),
            cpuid: self.cpuid(),
            product_from_cpuid: self.product_from_cpuid(),
            chip_id: self.chip_id,
            committed_tcb: tcb(self.committed_tcb),
            current_version: self.current_version,
            committed_version: self.committed_version,
            launch_tcb: tcb(self.launch_tcb),
            launch_mit_vector: self.launch_mit_vector().map(Hex64),
            current_mit_vector: self.current_mit_vector().map(Hex64),
            signature: &self.signature,
            nonzero_reserved: self
                .nonzero_reserved()
                .into_iter()
                .map(|(field, offset)| ReservedView { field, offset })
                .collect(),
        }
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

/// The JSON view `verifier inspect` prints.
#[derive(Serialize)]
struct ReportView<'a> {
    version: u32,
    guest_svn: u32,
    policy: GuestPolicy,
    family_id: FamilyId,
    image_id: ImageId,
    vmpl: u32,
    signature_algo: SignatureAlgorithm,
    current_tcb: TcbView,
    platform_info: PlatformInfo,
    key_info: KeyInfo,
    report_data: ReportData,
    measurement: Measurement,
    host_data: HostData,
    id_key_digest: IdKeyDigest,
    author_key_digest: AuthorKeyDigest,
    report_id: ReportId,
    report_id_ma: ReportId,
    reported_tcb: TcbView,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpuid: Option<Cpuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_from_cpuid: Option<Product>,
    chip_id: ChipId,
    committed_tcb: TcbView,
    current_version: FirmwareVersion,
    committed_version: FirmwareVersion,
    launch_tcb: TcbView,
    #[serde(skip_serializing_if = "Option::is_none")]
    launch_mit_vector: Option<Hex64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_mit_vector: Option<Hex64>,
    signature: &'a Signature,
    nonzero_reserved: Vec<ReservedView>,
}

#[derive(Serialize)]
struct ReservedView {
    field: &'static str,
    offset: usize,
}

/// A u64 printed as `0x…` hex in JSON.
struct Hex64(u64);

impl Serialize for Hex64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#018x}", self.0))
    }
}

#[derive(Serialize)]
struct TcbView {
    raw: Hex64,
    #[serde(skip_serializing_if = "Option::is_none")]
    milan_genoa: Option<TcbParts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turin: Option<TcbParts>,
}

impl TcbView {
    fn new(tcb: TcbVersion, layout: Option<TcbLayout>) -> Self {
        Self {
            raw: Hex64(tcb.0),
            milan_genoa: (layout == Some(TcbLayout::MilanGenoa)).then(|| tcb.milan_genoa()),
            turin: (layout == Some(TcbLayout::Turin)).then(|| tcb.turin()),
        }
    }
}

/// CPUID family, model and stepping as the report states them (v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cpuid {
    /// Extended family (e.g. 0x19 Milan/Genoa, 0x1A Turin).
    pub family: u8,
    /// Extended model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A firmware version as the report stores it: build, minor, major (in that byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FirmwareVersion {
    /// API major version.
    pub major: u8,
    /// API minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl FirmwareVersion {
    /// From the three wire bytes `[build, minor, major]`.
    pub const fn from_wire([build, minor, major]: [u8; 3]) -> Self {
        Self {
            major,
            minor,
            build,
        }
    }

    /// The three wire bytes `[build, minor, major]`.
    pub const fn to_wire(self) -> [u8; 3] {
        [self.build, self.minor, self.major]
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

impl Serialize for FirmwareVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The signature block at 0x2A0: ECDSA R and S as 72-byte little-endian
/// fields (48 significant bytes for P-384), then a reserved tail to 0x4A0.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// R, little-endian, 72 bytes.
    pub r: [u8; SIG_COMPONENT_LEN],
    /// S, little-endian, 72 bytes.
    pub s: [u8; SIG_COMPONENT_LEN],
    /// 0x330..0x4A0, reserved (kept for the round trip).
    pub reserved: [u8; SIG_RESERVED_LEN],
}

impl Signature {
    /// A P-384 signature from big-endian `r ‖ s` (48 bytes each), as the
    /// simulator gets it from the `p384` crate.
    pub fn from_p384_be(rs: &[u8; 2 * P384_SCALAR_LEN]) -> Self {
        let mut sig = Self {
            r: [0; SIG_COMPONENT_LEN],
            s: [0; SIG_COMPONENT_LEN],
            reserved: [0; SIG_RESERVED_LEN],
        };
        let (r_be, s_be) = rs.split_at(P384_SCALAR_LEN);
        for (dst, src) in sig.r.iter_mut().zip(r_be.iter().rev()) {
            *dst = *src;
        }
        for (dst, src) in sig.s.iter_mut().zip(s_be.iter().rev()) {
            *dst = *src;
        }
        sig
    }

    /// The 96-byte big-endian `r ‖ s` a P-384 verifier takes. Fails when the
    /// high 24 bytes of R or S (past the 48 significant ones) are not zero.
    pub fn to_p384_be(&self) -> Result<[u8; 2 * P384_SCALAR_LEN], ParseError> {
        let high_err = |field, offset| ParseError::Invalid {
            format: FORMAT,
            field,
            offset,
            reason: "bytes past the 48 significant bytes of a P-384 scalar are not zero".into(),
        };
        if self.r_high().iter().any(|&b| b != 0) {
            return Err(high_err("signature.r", 0x2A0 + P384_SCALAR_LEN));
        }
        if self.s_high().iter().any(|&b| b != 0) {
            return Err(high_err("signature.s", 0x2E8 + P384_SCALAR_LEN));
        }
        let mut out = [0u8; 2 * P384_SCALAR_LEN];
        let (r_out, s_out) = out.split_at_mut(P384_SCALAR_LEN);
        for (dst, src) in r_out.iter_mut().zip(self.r_low().iter().rev()) {
            *dst = *src;
        }
        for (dst, src) in s_out.iter_mut().zip(self.s_low().iter().rev()) {
            *dst = *src;
        }
        Ok(out)
    }

    fn r_low(&self) -> &[u8] {
        self.r.split_at(P384_SCALAR_LEN).0
    }

    fn r_high(&self) -> &[u8] {
        self.r.split_at(P384_SCALAR_LEN).1
    }

    fn s_low(&self) -> &[u8] {
        self.s.split_at(P384_SCALAR_LEN).0
    }

    fn s_high(&self) -> &[u8] {
        self.s.split_at(P384_SCALAR_LEN).1
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("r", &hex::encode(self.r))
            .field("s", &hex::encode(self.s))
            .field("reserved_nonzero", &self.reserved.iter().any(|&b| b != 0))
            .finish()
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View {
            r_le: String,
            s_le: String,
        }
        View {
            r_le: hex::encode(self.r),
            s_le: hex::encode(self.s),
        }
        .serialize(s)
    }
}

/// TCB_VERSION: a raw u64 whose byte layout depends on the CPU generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcbVersion(pub u64);

/// The two TCB byte layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TcbLayout {
    /// Milan and Genoa: bytes `[bl, tee, 0, 0, 0, 0, snp, ucode]`.
    MilanGenoa,
    /// Turin: bytes `[fmc, bl, tee, snp, 0, 0, 0, ucode]`.
    Turin,
}

/// TCB security patch levels, per component. `fmc` is present on Turin only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct TcbParts {
    /// FMC SPL (Turin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl TcbVersion {
    /// The Milan/Genoa view: bytes `[bl, tee, _, _, _, _, snp, ucode]`.
    pub fn milan_genoa(self) -> TcbParts {
        let [bl, tee, _, _, _, _, snp, ucode] = self.0.to_le_bytes();
        TcbParts {
            fmc: None,
            bootloader: bl,
            tee,
            snp,
            microcode: ucode,
        }
    }

    /// The Turin view: bytes `[fmc, bl, tee, snp, _, _, _, ucode]`.
    pub fn turin(self) -> TcbParts {
        let [fmc, bl, tee, snp, _, _, _, ucode] = self.0.to_le_bytes();
        TcbParts {
            fmc: Some(fmc),
            bootloader: bl,
            tee,
            snp,
            microcode: ucode,
        }
    }

    /// The view for a layout.
    pub fn parts(self, layout: TcbLayout) -> TcbParts {
        match layout {
            TcbLayout::MilanGenoa => self.milan_genoa(),
            TcbLayout::Turin => self.turin(),
        }
    }

    /// True when the bytes a layout reserves are zero.
    pub fn fits(self, layout: TcbLayout) -> bool {
        let b = self.0.to_le_bytes();
        match layout {
            TcbLayout::MilanGenoa => matches!(b, [_, _, 0, 0, 0, 0, _, _]),
            TcbLayout::Turin => matches!(b, [_, _, _, _, 0, 0, 0, _]),
        }
    }

    /// Builds a TCB_VERSION in a layout (`fmc` is ignored for Milan/Genoa and
    /// taken as 0 when absent for Turin).
    pub fn from_parts(layout: TcbLayout, p: TcbParts) -> Self {
        let bytes = match layout {
            TcbLayout::MilanGenoa => [p.bootloader, p.tee, 0, 0, 0, 0, p.snp, p.microcode],
            TcbLayout::Turin => [
                p.fmc.unwrap_or(0),
                p.bootloader,
                p.tee,
                p.snp,
                0,
                0,
                0,
                p.microcode,
            ],
        };
        Self(u64::from_le_bytes(bytes))
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

impl Serialize for TcbVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// GUEST_POLICY (ABI 56860 Table 10; `specs/snp-tdx.md` §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bit 16: SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Bit 17: reserved, must be one.
    pub const RESERVED_MBO: u64 = 1 << 17;
    /// Bit 18: association with a migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Bit 19: debugging allowed.
    pub const DEBUG: u64 = 1 << 19;
    /// Bit 20: single socket required.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    /// Bit 21: CXL may be populated with guest memory.
    pub const CXL_ALLOWED: u64 = 1 << 21;
    /// Bit 22: AES-256-XTS required for memory encryption.
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    /// Bit 23: running power limit (RAPL) must be disabled.
    pub const RAPL_DIS: u64 = 1 << 23;
    /// Bit 24: ciphertext hiding for DRAM must be enabled.
    pub const CIPHERTEXT_HIDING: u64 = 1 << 24;
    /// Bit 25: guest support for page swap disabled.
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
    /// Bits 63:26: reserved, must be zero.
    pub const MUST_BE_ZERO: u64 = !((1 << 26) - 1);

    /// A policy with the given ABI minimum, bit 17 set, everything else off.
    pub const fn new(abi_major: u8, abi_minor: u8) -> Self {
        Self(Self::RESERVED_MBO | (abi_major as u64) << 8 | abi_minor as u64)
    }

    /// The policy with `mask` set or cleared.
    #[must_use]
    pub const fn with(self, mask: u64, on: bool) -> Self {
        if on {
            Self(self.0 | mask)
        } else {
            Self(self.0 & !mask)
        }
    }

    /// Bits 7:0: minimum ABI minor version.
    pub const fn abi_minor(self) -> u8 {
        self.0.to_le_bytes()[0]
    }

    /// Bits 15:8: minimum ABI major version.
    pub const fn abi_major(self) -> u8 {
        self.0.to_le_bytes()[1]
    }

    /// Bit 16.
    pub const fn smt_allowed(self) -> bool {
        self.0 & Self::SMT != 0
    }

    /// Bit 17 (must be one).
    pub const fn reserved_mbo(self) -> bool {
        self.0 & Self::RESERVED_MBO != 0
    }

    /// Bit 18.
    pub const fn migrate_ma_allowed(self) -> bool {
        self.0 & Self::MIGRATE_MA != 0
    }

    /// Bit 19.
    pub const fn debug_allowed(self) -> bool {
        self.0 & Self::DEBUG != 0
    }

    /// Bit 20.
    pub const fn single_socket_required(self) -> bool {
        self.0 & Self::SINGLE_SOCKET != 0
    }

    /// Bit 21.
    pub const fn cxl_allowed(self) -> bool {
        self.0 & Self::CXL_ALLOWED != 0
    }

    /// Bit 22.
    pub const fn mem_aes_256_xts(self) -> bool {
        self.0 & Self::MEM_AES_256_XTS != 0
    }

    /// Bit 23.
    pub const fn rapl_dis(self) -> bool {
        self.0 & Self::RAPL_DIS != 0
    }

    /// Bit 24.
    pub const fn ciphertext_hiding(self) -> bool {
        self.0 & Self::CIPHERTEXT_HIDING != 0
    }

    /// Bit 25.
    pub const fn page_swap_disabled(self) -> bool {
        self.0 & Self::PAGE_SWAP_DISABLE != 0
    }

    /// Bits 63:26 as set in this policy (zero when well-formed).
    pub const fn must_be_zero_bits(self) -> u64 {
        self.0 & Self::MUST_BE_ZERO
    }
}

impl Serialize for GuestPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View {
            raw: Hex64,
            abi_major: u8,
            abi_minor: u8,
            smt_allowed: bool,
            reserved_mbo: bool,
            migrate_ma_allowed: bool,
            debug_allowed: bool,
            single_socket_required: bool,
            cxl_allowed: bool,
            mem_aes_256_xts: bool,
            rapl_dis: bool,
            ciphertext_hiding: bool,
            page_swap_disabled: bool,
        }
        View {
            raw: Hex64(self.0),
            abi_major: self.abi_major(),
            abi_minor: self.abi_minor(),
            smt_allowed: self.smt_allowed(),
            reserved_mbo: self.reserved_mbo(),
            migrate_ma_allowed: self.migrate_ma_allowed(),
            debug_allowed: self.debug_allowed(),
            single_socket_required: self.single_socket_required(),
            cxl_allowed: self.cxl_allowed(),
            mem_aes_256_xts: self.mem_aes_256_xts(),
            rapl_dis: self.rapl_dis(),
            ciphertext_hiding: self.ciphertext_hiding(),
            page_swap_disabled: self.page_swap_disabled(),
        }
        .serialize(s)
    }
}

/// PLATFORM_INFO flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    /// Bit 0: SMT enabled.
    pub const SMT_EN: u64 = 1 << 0;
    /// Bit 1: TSME enabled.
    pub const TSME_EN: u64 = 1 << 1;
    /// Bit 2: ECC memory in use.
    pub const ECC_EN: u64 = 1 << 2;
    /// Bit 3: RAPL disabled.
    pub const RAPL_DIS: u64 = 1 << 3;
    /// Bit 4: ciphertext hiding enabled.
    pub const CIPHERTEXT_HIDING_EN: u64 = 1 << 4;
    /// Bit 5: alias check complete.
    pub const ALIAS_CHECK_COMPLETE: u64 = 1 << 5;
    /// Bit 7: SEV-TIO enabled.
    pub const TIO_EN: u64 = 1 << 7;

    /// Bit 0.
    pub const fn smt_enabled(self) -> bool {
        self.0 & Self::SMT_EN != 0
    }
    /// Bit 1.
    pub const fn tsme_enabled(self) -> bool {
        self.0 & Self::TSME_EN != 0
    }
    /// Bit 2.
    pub const fn ecc_enabled(self) -> bool {
        self.0 & Self::ECC_EN != 0
    }
    /// Bit 3.
    pub const fn rapl_disabled(self) -> bool {
        self.0 & Self::RAPL_DIS != 0
    }
    /// Bit 4.
    pub const fn ciphertext_hiding_enabled(self) -> bool {
        self.0 & Self::CIPHERTEXT_HIDING_EN != 0
    }
    /// Bit 5.
    pub const fn alias_check_complete(self) -> bool {
        self.0 & Self::ALIAS_CHECK_COMPLETE != 0
    }
    /// Bit 7.
    pub const fn tio_enabled(self) -> bool {
        self.0 & Self::TIO_EN != 0
    }
}

impl Serialize for PlatformInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View {
            raw: Hex64,
            smt_enabled: bool,
            tsme_enabled: bool,
            ecc_enabled: bool,
            rapl_disabled: bool,
            ciphertext_hiding_enabled: bool,
            alias_check_complete: bool,
            tio_enabled: bool,
        }
        View {
            raw: Hex64(self.0),
            smt_enabled: self.smt_enabled(),
            tsme_enabled: self.tsme_enabled(),
            ecc_enabled: self.ecc_enabled(),
            rapl_disabled: self.rapl_disabled(),
            ciphertext_hiding_enabled: self.ciphertext_hiding_enabled(),
            alias_check_complete: self.alias_check_complete(),
            tio_enabled: self.tio_enabled(),
        }
        .serialize(s)
    }
}

/// KEY_INFO: author key presence, chip key masking and the signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyInfo(pub u32);

impl KeyInfo {
    /// A KEY_INFO naming `signing_key`, with no author key and chip key unmasked.
    pub const fn new(signing_key: SigningKey) -> Self {
        Self(((signing_key.0 & 0x7) as u32) << 2)
    }

    /// Bit 0: an author key signed the ID key.
    pub const fn author_key_en(self) -> bool {
        self.0 & 1 != 0
    }

    /// Bit 1: the chip key is masked (CHIP_ID zeroed).
    pub const fn mask_chip_key(self) -> bool {
        self.0 & 2 != 0
    }

    /// Bits 4:2: which key signed the report.
    pub const fn signing_key(self) -> SigningKey {
        SigningKey(((self.0 >> 2) & 0x7) as u8)
    }

    /// Bits 31:5 as set (zero when well-formed).
    pub const fn reserved_bits(self) -> u32 {
        self.0 & !0x1F
    }
}

impl Serialize for KeyInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View {
            raw: u32,
            author_key_en: bool,
            mask_chip_key: bool,
            signing_key: SigningKey,
        }
        View {
            raw: self.0,
            author_key_en: self.author_key_en(),
            mask_chip_key: self.mask_chip_key(),
            signing_key: self.signing_key(),
        }
        .serialize(s)
    }
}

/// The key that signed a report (KEY_INFO bits 4:2). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SigningKey(pub u8);

impl SigningKey {
    /// Versioned Chip Endorsement Key.
    pub const VCEK: Self = Self(0);
    /// Versioned Loaded Endorsement Key.
    pub const VLEK: Self = Self(1);
    /// No key: the signature block is zero.
    pub const NONE: Self = Self(7);

    /// `VCEK`, `VLEK`, `NONE`, or `None` for a reserved value.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("VCEK"),
            1 => Some("VLEK"),
            7 => Some("NONE"),
            _ => None,
        }
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "reserved({})", self.0),
        }
    }
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// SIGNATURE_ALGO (ABI 56860 Table 145). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureAlgorithm(pub u32);

impl SignatureAlgorithm {
    /// No signature.
    pub const INVALID: Self = Self(0);
    /// ECDSA P-384 with SHA-384.
    pub const ECDSA_P384_SHA384: Self = Self(1);

    /// The algorithm's name, or `None` for an unknown value.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("INVALID"),
            1 => Some("ECDSA_P384_SHA384"),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

impl Serialize for SignatureAlgorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Fuzz body: parse; if it succeeds, serializing must give the input back.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(report) = Report::parse(data) {
        assert_eq!(report.to_bytes(), data, "snp report round trip");
        // The views must not panic either.
        let _ = report.nonzero_reserved();
        let _ = report.signature.to_p384_be();
        let _ = serde_json::to_string(&report);
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// A synthetic v3 report with distinct bytes in every field.
    fn sample() -> Vec<u8> {
        let mut v: Vec<u8> = (0..LEN).map(|i| (i * 7 + 3) as u8).collect();
        // Keep it well-formed where reserved ranges matter for the tests below.
        v[0..4].copy_from_slice(&3u32.to_le_bytes());
        v
    }

    fn zeroed_v(version: u32) -> Report {
        let mut v = vec![0u8; LEN];
        v[0..4].copy_from_slice(&version.to_le_bytes());
        Report::parse(&v).unwrap()
    }

    #[test]
    fn roundtrip_is_byte_exact() {
        let bytes = sample();
        let report = Report::parse(&bytes).unwrap();
        assert_eq!(report.to_bytes(), bytes);
        assert_eq!(report.signed_bytes(), bytes[..SIGNED_LEN]);
    }

    #[test]
    fn fields_sit_at_their_offsets() {
        let mut v = vec![0u8; LEN];
        v[0x000] = 5;
        v[0x008..0x010].copy_from_slice(&0x3_0000u64.to_le_bytes());
        v[0x030] = 2;
        v[0x034] = 1;
        v[0x048] = 0x04;
        v[0x050] = 0xAA;
        v[0x090] = 0xBB;
        v[0x0C0] = 0xCC;
        v[0x180..0x188].copy_from_slice(&0x4700000002000100u64.to_le_bytes());
        v[0x188..0x18B].copy_from_slice(&[0x1A, 0x02, 0x01]);
        v[0x1A0] = 0xDD;
        v[0x1E8..0x1EB].copy_from_slice(&[61, 55, 1]);
        v[0x1F8] = 0x11;
        v[0x200] = 0x22;
        v[0x2A0] = 0x33;
        v[0x2E8] = 0x44;
        let r = Report::parse(&v).unwrap();
        assert_eq!(r.version, 5);
        assert!(r.policy.smt_allowed() && r.policy.reserved_mbo());
        assert!(!r.policy.debug_allowed());
        assert_eq!(r.vmpl, 2);
        assert_eq!(r.signature_algo, SignatureAlgorithm::ECDSA_P384_SHA384);
        assert_eq!(r.key_info.signing_key(), SigningKey::VLEK);
        assert_eq!(r.report_data.0[0], 0xAA);
        assert_eq!(r.measurement.0[0], 0xBB);
        assert_eq!(r.host_data.0[0], 0xCC);
        assert_eq!(r.chip_id.0[0], 0xDD);
        assert_eq!(r.current_version.to_string(), "1.55.61");
        assert_eq!(r.launch_mit_vector(), Some(0x11));
        assert_eq!(r.current_mit_vector(), Some(0x22));
        assert_eq!(r.signature.r[0], 0x33);
        assert_eq!(r.signature.s[0], 0x44);
        assert_eq!(r.product_from_cpuid(), Some(Product::Turin));
        let t = r.reported_tcb.turin();
        assert_eq!(
            (t.fmc, t.bootloader, t.snp, t.microcode),
            (Some(0), 1, 2, 71)
        );
        assert!(r.nonzero_reserved().is_empty());
    }

    #[test]
    fn version_dependent_fields_follow_version() {
        let mut r = zeroed_v(2);
        r.cpuid_raw = [0x19, 0x01, 0x01];
        r.launch_mit_vector_raw = 1;
        assert_eq!(r.cpuid(), None);
        assert_eq!(r.product_from_cpuid(), None);
        assert_eq!(r.launch_mit_vector(), None);
        let names: Vec<_> = r.nonzero_reserved().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"cpuid (reserved before v3)"));
        assert!(names.contains(&"launch_mit_vector (reserved before v5)"));
        r.version = 3;
        assert_eq!(r.product_from_cpuid(), Some(Product::Milan));
        assert_eq!(r.launch_mit_vector(), None);
        r.version = 5;
        assert_eq!(r.launch_mit_vector(), Some(1));
        assert!(r.nonzero_reserved().is_empty());
    }

    #[test]
    fn nonzero_reserved_is_recorded_not_refused() {
        for (offset, name) in [
            (0x04C, "reserved_04c"),
            (0x18B, "reserved_18b"),
            (0x1EB, "reserved_1eb"),
            (0x1EF, "reserved_1ef"),
            (0x208, "reserved_208"),
            (0x2A0 + 48, "signature.r[48..72]"),
            (0x2E8 + 71, "signature.s[48..72]"),
            (0x330, "signature.reserved"),
            (0x49F, "signature.reserved"),
            (0x00F, "policy[63:26]"),
            (0x04A, "key_info[31:5]"),
        ] {
            let mut v = vec![0u8; LEN];
            v[0] = 5;
            v[offset] = 0x80;
            let r = Report::parse(&v).unwrap();
            assert_eq!(r.to_bytes(), v);
            let found: Vec<_> = r.nonzero_reserved().into_iter().map(|(n, _)| n).collect();
            assert_eq!(found, vec![name], "byte {offset:#x}");
        }
    }

    #[test]
    fn wrong_length_is_refused() {
        assert_eq!(
            Report::parse(&[0u8; LEN - 1]),
            Err(ParseError::Length {
                format: FORMAT,
                expected: LEN,
                found: LEN - 1
            })
        );
        assert!(matches!(
            Report::parse(&[0u8; LEN + 1]),
            Err(ParseError::Length { found, .. }) if found == LEN + 1
        ));
        assert!(Report::parse(&[]).is_err());
    }

    #[test]
    fn signature_endianness_and_high_bytes() {
        let mut rs = [0u8; 96];
        for (i, b) in rs.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let sig = Signature::from_p384_be(&rs);
        assert_eq!(sig.r[0], 48, "least significant byte of r first");
        assert_eq!(sig.r[47], 1);
        assert_eq!(sig.s[0], 96);
        assert_eq!(sig.to_p384_be().unwrap(), rs);
        let mut bad = sig.clone();
        bad.r[48] = 1;
        assert!(matches!(
            bad.to_p384_be(),
            Err(ParseError::Invalid {
                field: "signature.r",
                offset: 0x2D0,
                ..
            })
        ));
        let mut bad = sig;
        bad.s[71] = 1;
        assert!(matches!(
            bad.to_p384_be(),
            Err(ParseError::Invalid {
                field: "signature.s",
                offset: 0x318,
                ..
            })
        ));
    }

    #[test]
    fn tcb_views_and_layout_choice() {
        let milan = TcbVersion(0x7308000000000003);
        assert_eq!(
            milan.milan_genoa(),
            TcbParts {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115
            }
        );
        assert!(milan.fits(TcbLayout::MilanGenoa) && !milan.fits(TcbLayout::Turin));
        assert_eq!(
            TcbVersion::from_parts(TcbLayout::MilanGenoa, milan.milan_genoa()),
            milan
        );
        let turin = TcbVersion(0x4700000002000100);
        assert!(turin.fits(TcbLayout::Turin) && !turin.fits(TcbLayout::MilanGenoa));
        assert_eq!(
            TcbVersion::from_parts(TcbLayout::Turin, turin.turin()),
            turin
        );

        let mut r = zeroed_v(2);
        assert_eq!(r.tcb_layout_for(milan), Some(TcbLayout::MilanGenoa));
        assert_eq!(r.tcb_layout_for(turin), Some(TcbLayout::Turin));
        // Only microcode set: both layouts fit, so neither is shown.
        let ambiguous = TcbVersion(0x4700000000000000);
        assert_eq!(r.tcb_layout_for(ambiguous), None);
        r.version = 3;
        r.cpuid_raw = [0x1A, 0x02, 0x01];
        assert_eq!(r.tcb_layout_for(ambiguous), Some(TcbLayout::Turin));
    }

    #[test]
    fn policy_bits() {
        let p = GuestPolicy(0xb0000);
        assert!(p.smt_allowed() && p.reserved_mbo() && p.debug_allowed());
        assert!(!p.migrate_ma_allowed() && !p.single_socket_required());
        let p = GuestPolicy(0x3001f);
        assert_eq!((p.abi_major(), p.abi_minor()), (0, 0x1f));
        let p = GuestPolicy::new(1, 55)
            .with(GuestPolicy::SMT, true)
            .with(GuestPolicy::PAGE_SWAP_DISABLE, true);
        assert_eq!(p.0, 0x0203_0137);
        assert!(p.page_swap_disabled() && p.must_be_zero_bits() == 0);
        assert_eq!(GuestPolicy(1 << 26).must_be_zero_bits(), 1 << 26);
        assert_eq!(
            KeyInfo::new(SigningKey::VLEK).signing_key(),
            SigningKey::VLEK
        );
        assert_eq!(KeyInfo(7 << 2).signing_key().to_string(), "NONE");
        assert_eq!(KeyInfo(3 << 2).signing_key().to_string(), "reserved(3)");
        assert_eq!(SignatureAlgorithm(9).to_string(), "unknown(9)");
    }

    #[test]
    fn json_view_decodes_fields() {
        let mut r = zeroed_v(2);
        r.policy = GuestPolicy(0x30000);
        r.reported_tcb = TcbVersion(0x7308000000000003);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["policy"]["smt_allowed"], true);
        assert_eq!(json["policy"]["raw"], "0x0000000000030000");
        assert_eq!(json["reported_tcb"]["raw"], "0x7308000000000003");
        assert_eq!(json["reported_tcb"]["milan_genoa"]["microcode"], 115);
        assert!(json["reported_tcb"].get("turin").is_none());
        assert_eq!(json["key_info"]["signing_key"], "VCEK");
        assert_eq!(json["report_data"], "00".repeat(64));
        assert!(json.get("cpuid").is_none());
    }

    #[test]
    fn fuzz_body_survives_truncations_and_bit_flips() {
        let bytes = sample();
        for len in 0..=bytes.len() {
            fuzz_roundtrip(&bytes[..len]);
        }
        let mut extended = bytes.clone();
        extended.push(0);
        fuzz_roundtrip(&extended);
        for bit in 0..bytes.len() * 8 {
            let mut v = bytes.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            fuzz_roundtrip(&v);
        }
    }
}
