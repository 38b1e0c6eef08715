//! NVIDIA GPU attestation report: the SPDM 1.1 GET_MEASUREMENTS request
//! (37 bytes) followed by the MEASUREMENTS response, exactly as NVML's
//! `nvmlDeviceGetConfComputeGpuAttestationReport` returns it
//! (`specs/nvidia-gpu.md` §2: §2.1 request, §2.2 response, §2.3 measurement
//! blocks, §2.4 opaque data, §2.5 signature; DMTF DSP0274 1.1).
//!
//! Bytes in, typed fields out, and back again byte-exact. This module never
//! checks the signature, the certificate chain, the nonce or measurements
//! against reference values: that is the verifier's job. It keeps the bytes
//! it received, so the signature is checked over them
//! ([`AttestationReport::signed_bytes`]), never over a re-encoding.
//!
//! Strictness beyond NVIDIA's parsers (spec §2.3, §2.4, §12): measurement
//! specification must be DMTF, `M = V + 3`, indices start at 1 and are unique,
//! the record and the opaque TLVs are consumed exactly, opaque ids are unique,
//! and fixed-size opaque values have their size. Unknown opaque ids are kept
//! (see [`OpaqueData::unknown_ids`]); the versioned `NVDAOD` opaque format is
//! refused as [`ParseError::Unsupported`] until its entry layout is specified.
#![warn(clippy::indexing_slicing)]

use std::collections::BTreeSet;

use serde::Serialize;

use crate::bytes::{Reader, Writer};
use crate::error::ParseError;

/// Format name of the whole NVML buffer in errors.
pub const FORMAT: &str = "nvidia attestation report";
/// Format name of the request in errors.
pub const REQUEST_FORMAT: &str = "nvidia spdm request";
/// Format name of the response in errors.
pub const RESPONSE_FORMAT: &str = "nvidia spdm response";
/// Format name of the opaque data in errors.
pub const OPAQUE_FORMAT: &str = "nvidia opaque data";

/// SPDM version 1.1, the only one NVIDIA GPUs speak (and NVAT accepts).
pub const SPDM_VERSION_11: u8 = 0x11;
/// GET_MEASUREMENTS request code.
pub const GET_MEASUREMENTS: u8 = 0xE0;
/// MEASUREMENTS response code.
pub const MEASUREMENTS: u8 = 0x60;
/// DMTF measurement specification (bit 0 of MeasurementSpecification).
pub const MEASUREMENT_SPEC_DMTF: u8 = 0x01;
/// Request Param1 bit 0: the responder must sign the response.
pub const PARAM1_GENERATE_SIGNATURE: u8 = 0x01;
/// Request Param2: all measurement blocks.
pub const PARAM2_ALL_MEASUREMENTS: u8 = 0xFF;
/// Length of the ECDSA P-384 signature (r ‖ s, big-endian), spec §2.5.
pub const SIGNATURE_LEN: usize = 96;
/// Magic that starts the versioned opaque data format (spec §2.4.2).
pub const NVDAOD_MAGIC: &[u8; 6] = b"NVDAOD";

crate::byte_newtype!(
    /// The 32-byte SPDM nonce (the caller's in the request; the GPU's own in
    /// the response).
    pub struct SpdmNonce(32);
);

crate::byte_newtype!(
    /// A firmware id: the SHA-384 the GPU reports in opaque field FWID and
    /// the leaf device certificate carries in its TCG DICE extension.
    pub struct Fwid(48);
);

crate::byte_newtype!(
    /// The response signature: ECDSA P-384 r (48 bytes) ‖ s (48 bytes), big-endian.
    pub struct SpdmSignature(96);
);

/// The NVML attestation buffer: request ‖ response (‖ tolerated trailing bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationReport {
    /// The GET_MEASUREMENTS request, carrying the caller's nonce.
    pub request: SpdmRequest,
    /// The signed MEASUREMENTS response.
    pub response: SpdmResponse,
    /// Bytes after the signature. NVAT rejects them; some captures carry
    /// padding. Kept so the round-trip is exact; the verifier decides.
    #[serde(with = "crate::hex::bytes")]
    pub trailing: Vec<u8>,
    /// The bytes this report was parsed from.
    #[serde(skip)]
    raw: Vec<u8>,
    /// Length of request ‖ response-without-signature in `raw`.
    #[serde(skip)]
    signed_len: usize,
}

impl AttestationReport {
    /// Parses an NVML attestation buffer.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(FORMAT, bytes);
        let request = SpdmRequest::read(&mut r)?;
        let remaining = r.remaining();
        let mut resp = r.sub_as(RESPONSE_FORMAT, "response", remaining)?;
        let response = SpdmResponse::read(&mut resp)?;
        let signed_len = resp.offset().saturating_sub(SIGNATURE_LEN);
        let trailing = resp.take_rest().to_vec();
        r.finish()?;
        Ok(Self {
            request,
            response,
            trailing,
            raw: bytes.to_vec(),
            signed_len,
        })
    }

    /// Serializes the fields: request ‖ response ‖ trailing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.at(0).bytes(&self.request.to_bytes());
        w.at(SpdmRequest::LEN).bytes(&self.response.to_bytes());
        w.bytes(&self.trailing);
        w.into_vec()
    }

    /// The bytes received, exactly.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// What the GPU signed: the received request ‖ response up to (not
    /// including) the 96-byte signature (spec §2.5).
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..self.signed_len).unwrap_or_default()
    }

    /// The raw signature r ‖ s.
    pub fn signature(&self) -> [u8; SIGNATURE_LEN] {
        self.response.signature.into_bytes()
    }

    /// The caller's nonce from the request (the one the verifier chose).
    pub fn nonce(&self) -> SpdmNonce {
        self.request.nonce
    }

    /// The opaque data.
    pub fn opaque(&self) -> &OpaqueData {
        &self.response.opaque
    }

    /// Every measurement as (1-based block index, value). RIM index `i` is
    /// block `i + 1` (spec §2.3).
    pub fn measurements(&self) -> Vec<(u8, Vec<u8>)> {
        self.response.measurements()
    }

    /// The value of measurement block `index` (1-based).
    pub fn measurement(&self, index: u8) -> Option<&[u8]> {
        self.response.measurement(index)
    }
}

/// SPDM GET_MEASUREMENTS request (spec §2.1), 37 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpdmRequest {
    /// SPDMVersion, 0x11.
    pub version: u8,
    /// RequestResponseCode, 0xE0.
    pub code: u8,
    /// Attributes; bit 0 asks for a signature.
    pub param1: u8,
    /// Operation; 0xFF asks for all blocks.
    pub param2: u8,
    /// The caller's nonce.
    pub nonce: SpdmNonce,
    /// SlotIDParam (certificate slot), 0 observed.
    pub slot: u8,
}

impl SpdmRequest {
    /// Wire length.
    pub const LEN: usize = 37;

    /// A request for all measurements, signed, in slot 0, as NVML sends it.
    pub fn new(nonce: SpdmNonce) -> Self {
        Self {
            version: SPDM_VERSION_11,
            code: GET_MEASUREMENTS,
            param1: PARAM1_GENERATE_SIGNATURE,
            param2: PARAM2_ALL_MEASUREMENTS,
            nonce,
            slot: 0,
        }
    }

    /// Parses exactly 37 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::exact(REQUEST_FORMAT, bytes, Self::LEN)?;
        let request = Self::read(&mut r)?;
        r.finish()?;
        Ok(request)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let version = expect_u8(r.at(0), "version", SPDM_VERSION_11)?;
        let code = expect_u8(r.at(1), "request_response_code", GET_MEASUREMENTS)?;
        let param1 = r.at(2).u8("param1")?;
        let param2 = r.at(3).u8("param2")?;
        let nonce = SpdmNonce(r.at(4).array("nonce")?);
        let slot = r.at(36).u8("slot_id")?;
        Ok(Self {
            version,
            code,
            param1,
            param2,
            nonce,
            slot,
        })
    }

    /// Serializes the 37 bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut w = Writer::with_capacity(Self::LEN);
        w.at(0).u8(self.version);
        w.at(1).u8(self.code);
        w.at(2).u8(self.param1);
        w.at(3).u8(self.param2);
        w.at(4).bytes(self.nonce.as_bytes());
        w.at(36).u8(self.slot);
        let mut out = [0u8; Self::LEN];
        for (o, b) in out.iter_mut().zip(w.into_vec()) {
            *o = b;
        }
        out
    }

    /// True when Param1 asks for a signed response.
    pub fn requests_signature(&self) -> bool {
        self.param1 & PARAM1_GENERATE_SIGNATURE != 0
    }

    /// True when Param2 asks for all measurement blocks.
    pub fn requests_all_measurements(&self) -> bool {
        self.param2 == PARAM2_ALL_MEASUREMENTS
    }
}

/// SPDM MEASUREMENTS response (spec §2.2); offsets relative to its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpdmResponse {
    /// SPDMVersion, 0x11.
    pub version: u8,
    /// RequestResponseCode, 0x60.
    pub code: u8,
    /// Param1, 0 observed.
    pub param1: u8,
    /// Param2 (slot id in the low nibble), 0 observed.
    pub param2: u8,
    /// NumberOfBlocks; equals `blocks.len()` after parsing.
    pub number_of_blocks: u8,
    /// MeasurementRecordLength (u24); equals the blocks' encoded length.
    pub record_length: u32,
    /// The measurement record.
    pub blocks: Vec<MeasurementBlock>,
    /// The responder's nonce (not the caller's; nobody checks it).
    pub responder_nonce: SpdmNonce,
    /// OpaqueLength; equals the opaque data's encoded length.
    pub opaque_length: u16,
    /// The opaque data TLVs.
    pub opaque: OpaqueData,
    /// ECDSA P-384 signature, r ‖ s.
    pub signature: SpdmSignature,
}

impl SpdmResponse {
    /// Builds a response whose length fields match its contents (for the
    /// simulator). Fails when a count or length does not fit its field.
    pub fn new(
        blocks: Vec<MeasurementBlock>,
        responder_nonce: SpdmNonce,
        opaque: OpaqueData,
        signature: SpdmSignature,
    ) -> Result<Self, ParseError> {
        let too_big = |field, reason: String| ParseError::Invalid {
            format: RESPONSE_FORMAT,
            field,
            offset: 0,
            reason,
        };
        let number_of_blocks = u8::try_from(blocks.len())
            .map_err(|_| too_big("number_of_blocks", format!("{} blocks", blocks.len())))?;
        let record: usize = blocks.iter().map(MeasurementBlock::encoded_len).sum();
        let record_length = u32::try_from(record)
            .ok()
            .filter(|&l| l < 1 << 24)
            .ok_or_else(|| too_big("record_length", format!("{record} bytes")))?;
        let opaque_len = opaque.encoded_len();
        let opaque_length = u16::try_from(opaque_len)
            .map_err(|_| too_big("opaque_length", format!("{opaque_len} bytes")))?;
        Ok(Self {
            version: SPDM_VERSION_11,
            code: MEASUREMENTS,
            param1: 0,
            param2: 0,
            number_of_blocks,
            record_length,
            blocks,
            responder_nonce,
            opaque_length,
            opaque,
            signature,
        })
    }

    /// Parses a response that must end exactly with its signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(RESPONSE_FORMAT, bytes);
        let response = Self::read(&mut r)?;
        r.finish()?;
        Ok(response)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let version = expect_u8(r.at(0), "version", SPDM_VERSION_11)?;
        let code = expect_u8(r.at(1), "request_response_code", MEASUREMENTS)?;
        let param1 = r.at(2).u8("param1")?;
        let param2 = r.at(3).u8("param2")?;
        let count_at = r.offset();
        let number_of_blocks = r.at(4).u8("number_of_blocks")?;
        if number_of_blocks == 0 {
            return Err(r.invalid("number_of_blocks", count_at, "no measurement blocks"));
        }
        let record_length = r.at(5).u24_le("measurement_record_length")?;
        let len = usize::try_from(record_length).unwrap_or(usize::MAX);
        let mut rec = r.at(8).sub("measurement_record", len)?;
        let blocks = read_record(&mut rec, number_of_blocks)?;
        let at = 8 + len;
        let responder_nonce = SpdmNonce(r.at(at).array("nonce")?);
        let opaque_length = r.at(at + 32).u16_le("opaque_length")?;
        let opaque_len = usize::from(opaque_length);
        let mut op = r
            .at(at + 34)
            .sub_as(OPAQUE_FORMAT, "opaque_data", opaque_len)?;
        let opaque = OpaqueData::read(&mut op)?;
        let signature = SpdmSignature(r.at(at + 34 + opaque_len).array("signature")?);
        Ok(Self {
            version,
            code,
            param1,
            param2,
            number_of_blocks,
            record_length,
            blocks,
            responder_nonce,
            opaque_length,
            opaque,
            signature,
        })
    }

    /// Serializes the response, signature included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = self.unsigned_writer();
        w.bytes(self.signature.as_bytes());
        w.into_vec()
    }

    /// The response without its signature: what the GPU signs after the request.
    pub fn to_bytes_unsigned(&self) -> Vec<u8> {
        self.unsigned_writer().into_vec()
    }

    fn unsigned_writer(&self) -> Writer {
        let mut w = Writer::new();
        w.at(0).u8(self.version);
        w.at(1).u8(self.code);
        w.at(2).u8(self.param1);
        w.at(3).u8(self.param2);
        w.at(4).u8(self.number_of_blocks);
        w.at(5).u24_le(self.record_length);
        w.at(8);
        for block in &self.blocks {
            block.write(&mut w);
        }
        w.bytes(self.responder_nonce.as_bytes());
        w.u16_le(self.opaque_length);
        self.opaque.write(&mut w);
        w
    }

    /// Every measurement as (1-based block index, value).
    pub fn measurements(&self) -> Vec<(u8, Vec<u8>)> {
        self.blocks
            .iter()
            .map(|b| (b.index, b.value.clone()))
            .collect()
    }

    /// The value of measurement block `index` (1-based).
    pub fn measurement(&self, index: u8) -> Option<&[u8]> {
        self.blocks
            .iter()
            .find(|b| b.index == index)
            .map(|b| b.value.as_slice())
    }
}

fn read_record(rec: &mut Reader<'_>, count: u8) -> Result<Vec<MeasurementBlock>, ParseError> {
    let mut blocks = Vec::with_capacity(usize::from(count));
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let offset = rec.offset();
        let block = MeasurementBlock::read(rec)?;
        if !seen.insert(block.index) {
            return Err(rec.invalid(
                "measurement_block.index",
                offset,
                format!("duplicate measurement index {}", block.index),
            ));
        }
        blocks.push(block);
    }
    // The record must hold exactly NumberOfBlocks blocks.
    rec.clone().finish()?;
    Ok(blocks)
}

/// DMTFSpecMeasurementValueType (spec §2.3): bit 7 raw bit stream, bits 0–6 kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MeasurementValueType(pub u8);

impl MeasurementValueType {
    /// Immutable ROM.
    pub const IMMUTABLE_ROM: Self = Self(0x00);
    /// Mutable firmware (every GPU block observed).
    pub const MUTABLE_FIRMWARE: Self = Self(0x01);
    /// Hardware configuration.
    pub const HARDWARE_CONFIG: Self = Self(0x02);
    /// Firmware configuration.
    pub const FIRMWARE_CONFIG: Self = Self(0x03);
    /// Measurement manifest.
    pub const MANIFEST: Self = Self(0x04);
    /// Device mode.
    pub const DEVICE_MODE: Self = Self(0x05);
    /// Version.
    pub const VERSION: Self = Self(0x06);
    /// Security version number.
    pub const SVN: Self = Self(0x07);

    /// True when the value is a raw bit stream rather than a digest.
    pub fn is_raw(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// The kind, without the raw bit.
    pub fn kind(self) -> u8 {
        self.0 & 0x7F
    }
}

/// One DMTF measurement block (spec §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementBlock {
    /// Index, 1-based.
    pub index: u8,
    /// MeasurementSpecification, 0x01 (DMTF).
    pub spec: u8,
    /// DMTFSpecMeasurementValueType.
    pub value_type: MeasurementValueType,
    /// The value (a SHA-384 digest on every GPU observed).
    #[serde(with = "crate::hex::bytes")]
    pub value: Vec<u8>,
}

impl MeasurementBlock {
    /// A DMTF digest block of mutable firmware, as the GPU reports them.
    pub fn digest(index: u8, value: &[u8]) -> Self {
        Self {
            index,
            spec: MEASUREMENT_SPEC_DMTF,
            value_type: MeasurementValueType::MUTABLE_FIRMWARE,
            value: value.to_vec(),
        }
    }

    /// Parses exactly one block.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(RESPONSE_FORMAT, bytes);
        let block = Self::read(&mut r)?;
        r.finish()?;
        Ok(block)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let start = r.offset();
        let index = r.u8("measurement_block.index")?;
        if index == 0 {
            return Err(r.invalid("measurement_block.index", start, "index 0 (1-based)"));
        }
        let spec = r.u8("measurement_block.spec")?;
        if spec != MEASUREMENT_SPEC_DMTF {
            return Err(r.invalid(
                "measurement_block.spec",
                start + 1,
                format!("0x{spec:02x}, expected 0x01 (DMTF)"),
            ));
        }
        let size = r.u16_le("measurement_block.size")?;
        let value_type = MeasurementValueType(r.u8("measurement_block.value_type")?);
        let value_size = r.u16_le("measurement_block.value_size")?;
        if u32::from(size) != u32::from(value_size) + 3 {
            return Err(r.invalid(
                "measurement_block.size",
                start + 2,
                format!("size {size} != value size {value_size} + 3"),
            ));
        }
        let value = r
            .bytes("measurement_block.value", usize::from(value_size))?
            .to_vec();
        Ok(Self {
            index,
            spec,
            value_type,
            value,
        })
    }

    /// Serializes the block. `value` must be at most 65532 bytes (parsed
    /// blocks always are); longer values are cut to fit.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    fn write(&self, w: &mut Writer) {
        let value = self.value.get(..MAX_VALUE).unwrap_or(&self.value);
        let value_size = u16::try_from(value.len()).unwrap_or(u16::MAX);
        w.u8(self.index);
        w.u8(self.spec);
        w.u16_le(value_size.saturating_add(3));
        w.u8(self.value_type.0);
        w.u16_le(value_size);
        w.bytes(value);
    }

    fn encoded_len(&self) -> usize {
        7 + self.value.len().min(MAX_VALUE)
    }
}

const MAX_VALUE: usize = u16::MAX as usize - 3;

/// An opaque data field id (spec §2.4 table). Unknown ids are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpaqueId(pub u16);

impl OpaqueId {
    pub const CERT_ISSUER_NAME: Self = Self(1);
    pub const CERT_AUTHORITY_KEY_IDENTIFIER: Self = Self(2);
    pub const DRIVER_VERSION: Self = Self(3);
    pub const GPU_INFO: Self = Self(4);
    pub const SKU: Self = Self(5);
    pub const VBIOS_VERSION: Self = Self(6);
    pub const MANUFACTURER_ID: Self = Self(7);
    pub const TAMPER_DETECTION: Self = Self(8);
    pub const SMC: Self = Self(9);
    pub const VPR: Self = Self(10);
    pub const NVDEC0_STATUS: Self = Self(11);
    pub const MSRSCNT: Self = Self(12);
    pub const CPRINFO: Self = Self(13);
    pub const BOARD_ID: Self = Self(14);
    pub const CHIP_SKU: Self = Self(15);
    pub const CHIP_SKU_MOD: Self = Self(16);
    pub const PROJECT: Self = Self(17);
    pub const PROJECT_SKU: Self = Self(18);
    pub const PROJECT_SKU_MOD: Self = Self(19);
    pub const FWID: Self = Self(20);
    pub const PROTECTED_PCIE_STATUS: Self = Self(21);
    pub const SWITCH_PDI: Self = Self(22);
    pub const FLOORSWEPT_PORTS: Self = Self(23);
    pub const POSITION_ID: Self = Self(24);
    pub const LOCK_SWITCH_STATUS: Self = Self(25);
    pub const GPU_LINK_CONN: Self = Self(32);
    pub const SYS_ENABLE_STATUS: Self = Self(33);
    pub const OPAQUE_DATA_VERSION: Self = Self(34);
    pub const CHIP_INFO: Self = Self(35);
    pub const FEATURE_FLAG: Self = Self(36);
    pub const INVALID: Self = Self(255);

    /// The name NVIDIA's parsers use, for defined ids.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "CERT_ISSUER_NAME",
            2 => "CERT_AUTHORITY_KEY_IDENTIFIER",
            3 => "DRIVER_VERSION",
            4 => "GPU_INFO",
            5 => "SKU",
            6 => "VBIOS_VERSION",
            7 => "MANUFACTURER_ID",
            8 => "TAMPER_DETECTION",
            9 => "SMC",
            10 => "VPR",
            11 => "NVDEC0_STATUS",
            12 => "MSRSCNT",
            13 => "CPRINFO",
            14 => "BOARD_ID",
            15 => "CHIP_SKU",
            16 => "CHIP_SKU_MOD",
            17 => "PROJECT",
            18 => "PROJECT_SKU",
            19 => "PROJECT_SKU_MOD",
            20 => "FWID",
            21 => "PROTECTED_PCIE_STATUS",
            22 => "SWITCH_PDI",
            23 => "FLOORSWEPT_PORTS",
            24 => "POSITION_ID",
            25 => "LOCK_SWITCH_STATUS",
            32 => "GPU_LINK_CONN",
            33 => "SYS_ENABLE_STATUS",
            34 => "OPAQUE_DATA_VERSION",
            35 => "CHIP_INFO",
            36 => "FEATURE_FLAG",
            255 => "INVALID",
            _ => return None,
        })
    }

    /// True for ids with a defined meaning (1–25, 32–36); `INVALID` (255) and
    /// undefined ids are not.
    pub fn is_known(self) -> bool {
        self != Self::INVALID && self.name().is_some()
    }
}

impl Serialize for OpaqueId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

/// NVDEC0_STATUS value: NVDEC0 enabled.
pub const NVDEC0_ENABLED: u8 = 0xAA;
/// NVDEC0_STATUS value: NVDEC0 disabled (all samples).
pub const NVDEC0_DISABLED: u8 = 0x55;

/// One opaque TLV: `type u16, length u16, value` (spec §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueEntry {
    /// Field id.
    pub id: OpaqueId,
    /// Value bytes as received.
    pub value: Vec<u8>,
}

impl OpaqueEntry {
    /// An entry.
    pub fn new(id: OpaqueId, value: &[u8]) -> Self {
        Self {
            id,
            value: value.to_vec(),
        }
    }

    /// The value decoded for display, where the spec defines an encoding.
    pub fn decoded(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        let v = &self.value;
        Some(match self.id {
            OpaqueId::DRIVER_VERSION
            | OpaqueId::CHIP_SKU
            | OpaqueId::CHIP_SKU_MOD
            | OpaqueId::PROJECT
            | OpaqueId::PROJECT_SKU
            | OpaqueId::PROJECT_SKU_MOD
            | OpaqueId::CHIP_INFO => Value::from(c_string(v)?),
            OpaqueId::VBIOS_VERSION => Value::from(format_vbios_version(v)?),
            OpaqueId::BOARD_ID => Value::from(le_uint(v)?),
            OpaqueId::OPAQUE_DATA_VERSION | OpaqueId::FEATURE_FLAG => Value::from(le_uint(v)?),
            OpaqueId::NVDEC0_STATUS | OpaqueId::PROTECTED_PCIE_STATUS => {
                Value::from(match single(v)? {
                    NVDEC0_ENABLED => "enabled (0xaa)".to_owned(),
                    NVDEC0_DISABLED => "disabled (0x55)".to_owned(),
                    other => format!("0x{other:02x}"),
                })
            }
            OpaqueId::MSRSCNT => Value::from(u32_list(v)?),
            OpaqueId::SWITCH_PDI => Value::from(
                v.chunks_exact(8)
                    .map(::hex::encode_upper)
                    .collect::<Vec<_>>(),
            ),
            _ => return None,
        })
    }
}

impl Serialize for OpaqueEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("OpaqueEntry", 4)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("name", &self.id.name())?;
        st.serialize_field("value", &::hex::encode(&self.value))?;
        st.serialize_field("decoded", &self.decoded())?;
        st.end()
    }
}

/// The opaque data: TLVs in the order received (spec §2.4, legacy format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OpaqueData {
    /// The entries, in wire order.
    pub entries: Vec<OpaqueEntry>,
}

impl OpaqueData {
    /// Parses exactly `bytes` as TLVs.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(OPAQUE_FORMAT, bytes);
        Self::read(&mut r)
    }

    /// Reads TLVs until the reader is empty.
    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        if r.rest().starts_with(NVDAOD_MAGIC) {
            return Err(ParseError::Unsupported {
                format: OPAQUE_FORMAT,
                what: "versioned opaque data format (\"NVDAOD\" header, CUDA 13.5+ drivers; \
                       nvidia-gpu spec §2.4.2): entry layout not yet specified"
                    .to_owned(),
            });
        }
        let mut entries = Vec::new();
        let mut seen = BTreeSet::new();
        while !r.is_empty() {
            let offset = r.offset();
            let id = OpaqueId(r.u16_le("opaque.type")?);
            let len = r.u16_le("opaque.length")?;
            let value = r.bytes("opaque.value", usize::from(len))?;
            if !seen.insert(id) {
                return Err(r.invalid("opaque.type", offset, format!("duplicate id {}", id.0)));
            }
            check_size(id, value.len())
                .map_err(|reason| r.invalid(field_name(id), offset, reason))?;
            entries.push(OpaqueEntry::new(id, value));
        }
        Ok(Self { entries })
    }

    /// Serializes the TLVs. Values longer than 65535 bytes are cut (parsed
    /// data never has them).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    fn write(&self, w: &mut Writer) {
        for e in &self.entries {
            let value = e.value.get(..usize::from(u16::MAX)).unwrap_or(&e.value);
            w.u16_le(e.id.0);
            w.u16_le(u16::try_from(value.len()).unwrap_or(u16::MAX));
            w.bytes(value);
        }
    }

    fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .map(|e| 4 + e.value.len().min(usize::from(u16::MAX)))
            .sum()
    }

    /// The raw value of field `id`.
    pub fn entry(&self, id: OpaqueId) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.value.as_slice())
    }

    /// Ids present that have no defined meaning (kept, never crashed on; the
    /// verifier decides). Includes `INVALID` (255).
    pub fn unknown_ids(&self) -> Vec<OpaqueId> {
        self.entries
            .iter()
            .map(|e| e.id)
            .filter(|id| !id.is_known())
            .collect()
    }

    /// DRIVER_VERSION, e.g. `550.90.07`.
    pub fn driver_version(&self) -> Option<String> {
        self.string(OpaqueId::DRIVER_VERSION)
    }

    /// VBIOS_VERSION formatted as NVIDIA's RIMs name it, e.g. `96.00.9F.00.01` (spec §2.4.1).
    pub fn vbios_version(&self) -> Option<String> {
        format_vbios_version(self.entry(OpaqueId::VBIOS_VERSION)?)
    }

    /// FWID, compared with the leaf certificate's (spec §3.3). Absent on old drivers.
    pub fn fwid(&self) -> Option<Fwid> {
        let v = self.entry(OpaqueId::FWID)?;
        <[u8; 48]>::try_from(v).ok().map(Fwid)
    }

    /// PROJECT, e.g. `1010` (VBIOS RIM id).
    pub fn project(&self) -> Option<String> {
        self.string(OpaqueId::PROJECT)
    }

    /// PROJECT_SKU, e.g. `0200` (VBIOS RIM id).
    pub fn project_sku(&self) -> Option<String> {
        self.string(OpaqueId::PROJECT_SKU)
    }

    /// CHIP_SKU, e.g. `882` (VBIOS RIM id).
    pub fn chip_sku(&self) -> Option<String> {
        self.string(OpaqueId::CHIP_SKU)
    }

    /// CHIP_INFO (Blackwell and later; driver RIM id).
    pub fn chip_info(&self) -> Option<String> {
        self.string(OpaqueId::CHIP_INFO)
    }

    /// NVDEC0_STATUS: [`NVDEC0_ENABLED`] or [`NVDEC0_DISABLED`].
    pub fn nvdec0_status(&self) -> Option<u8> {
        single(self.entry(OpaqueId::NVDEC0_STATUS)?)
    }

    /// OPAQUE_DATA_VERSION (little-endian integer).
    pub fn opaque_data_version(&self) -> Option<u64> {
        le_uint(self.entry(OpaqueId::OPAQUE_DATA_VERSION)?)
    }

    /// FEATURE_FLAG: 0 SPT, 1 MPT, 2 PPCIE (little-endian integer).
    pub fn feature_flag(&self) -> Option<u64> {
        le_uint(self.entry(OpaqueId::FEATURE_FLAG)?)
    }

    /// MSRSCNT: one u32 counter per measurement block.
    pub fn msrscnt(&self) -> Option<Vec<u32>> {
        u32_list(self.entry(OpaqueId::MSRSCNT)?)
    }

    /// BOARD_ID.
    pub fn board_id(&self) -> Option<u32> {
        let v = self.entry(OpaqueId::BOARD_ID)?;
        <[u8; 4]>::try_from(v).ok().map(u32::from_le_bytes)
    }

    /// PROTECTED_PCIE_STATUS: 0xAA enabled, 0x55 disabled.
    pub fn protected_pcie_status(&self) -> Option<u8> {
        single(self.entry(OpaqueId::PROTECTED_PCIE_STATUS)?)
    }

    /// SWITCH_PDI: the NVSwitch PDIs, 8 bytes each, as received.
    pub fn switch_pdis(&self) -> Option<Vec<[u8; 8]>> {
        let v = self.entry(OpaqueId::SWITCH_PDI)?;
        Some(
            v.chunks_exact(8)
                .filter_map(|c| <[u8; 8]>::try_from(c).ok())
                .collect(),
        )
    }

    fn string(&self, id: OpaqueId) -> Option<String> {
        c_string(self.entry(id)?)
    }
}

/// Size rules for the fields this module decodes; checked while parsing so
/// the accessors cannot fail.
fn check_size(id: OpaqueId, len: usize) -> Result<(), String> {
    let ok = match id {
        OpaqueId::VBIOS_VERSION => len == 8,
        OpaqueId::BOARD_ID => len == 4,
        OpaqueId::FWID => len == Fwid::LEN,
        OpaqueId::NVDEC0_STATUS | OpaqueId::PROTECTED_PCIE_STATUS => len == 1,
        OpaqueId::MSRSCNT => len.is_multiple_of(4),
        OpaqueId::SWITCH_PDI => len.is_multiple_of(8),
        OpaqueId::OPAQUE_DATA_VERSION | OpaqueId::FEATURE_FLAG => (1..=8).contains(&len),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected length {len}"))
    }
}

fn field_name(id: OpaqueId) -> &'static str {
    match id {
        OpaqueId::VBIOS_VERSION => "opaque.VBIOS_VERSION",
        OpaqueId::BOARD_ID => "opaque.BOARD_ID",
        OpaqueId::FWID => "opaque.FWID",
        OpaqueId::NVDEC0_STATUS => "opaque.NVDEC0_STATUS",
        OpaqueId::PROTECTED_PCIE_STATUS => "opaque.PROTECTED_PCIE_STATUS",
        OpaqueId::MSRSCNT => "opaque.MSRSCNT",
        OpaqueId::SWITCH_PDI => "opaque.SWITCH_PDI",
        OpaqueId::OPAQUE_DATA_VERSION => "opaque.OPAQUE_DATA_VERSION",
        OpaqueId::FEATURE_FLAG => "opaque.FEATURE_FLAG",
        _ => "opaque.value",
    }
}

/// VBIOS bytes b0..b7 → `b3.b2.b1.b0.b4` in uppercase hex (spec §2.4.1).
pub fn format_vbios_version(bytes: &[u8]) -> Option<String> {
    let [b0, b1, b2, b3, b4, _, _, _] = <[u8; 8]>::try_from(bytes).ok()?;
    Some(format!("{b3:02X}.{b2:02X}.{b1:02X}.{b0:02X}.{b4:02X}"))
}

/// The inverse of [`format_vbios_version`]: `96.00.9F.00.01` → 8 bytes.
pub fn vbios_version_bytes(text: &str) -> Option<[u8; 8]> {
    let mut parts = text.split('.').map(|p| {
        (p.len() == 2)
            .then(|| u8::from_str_radix(p, 16).ok())
            .flatten()
    });
    let mut next = || parts.next().flatten();
    let (b3, b2, b1, b0, b4) = (next()?, next()?, next()?, next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    Some([b0, b1, b2, b3, b4, 0, 0, 0])
}

/// ASCII up to the first NUL (NVIDIA pads these fields with NULs).
fn c_string(v: &[u8]) -> Option<String> {
    let text = v.split(|&b| b == 0).next().unwrap_or_default();
    std::str::from_utf8(text).ok().map(str::to_owned)
}

fn le_uint(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    Some(
        v.iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

fn single(v: &[u8]) -> Option<u8> {
    match v {
        [b] => Some(*b),
        _ => None,
    }
}

fn u32_list(v: &[u8]) -> Option<Vec<u32>> {
    if !v.len().is_multiple_of(4) {
        return None;
    }
    Some(
        v.chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok())
            .map(u32::from_le_bytes)
            .collect(),
    )
}

fn expect_u8(r: &mut Reader<'_>, field: &'static str, expected: u8) -> Result<u8, ParseError> {
    let offset = r.offset();
    let v = r.u8(field)?;
    if v != expected {
        return Err(r.invalid(
            field,
            offset,
            format!("0x{v:02x}, expected 0x{expected:02x}"),
        ));
    }
    Ok(v)
}

/// Fuzz body: parse; if it parses, serializing gives back the input exactly
/// (trailing bytes included). Never panics otherwise.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(report) = AttestationReport::parse(data) {
        assert_eq!(report.to_bytes(), data, "nvidia report round-trip");
        assert!(report.signed_bytes().len() + SIGNATURE_LEN <= data.len());
        let _ = serde_json::to_string(&report);
    }
    if let Ok(opaque) = OpaqueData::parse(data) {
        assert_eq!(opaque.to_bytes(), data, "nvidia opaque round-trip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid report: 2 blocks, 3 opaque entries.
    fn sample() -> Vec<u8> {
        let opaque = OpaqueData {
            entries: vec![
                OpaqueEntry::new(OpaqueId::DRIVER_VERSION, b"550.90.07\0"),
                OpaqueEntry::new(OpaqueId::VBIOS_VERSION, &[0, 0x9f, 0, 0x96, 1, 0, 0, 0]),
                OpaqueEntry::new(OpaqueId::NVDEC0_STATUS, &[0x55]),
            ],
        };
        let response = SpdmResponse::new(
            vec![
                MeasurementBlock::digest(1, &[0u8; 48]),
                MeasurementBlock::digest(2, &[7u8; 48]),
            ],
            SpdmNonce([9; 32]),
            opaque,
            SpdmSignature([5; 96]),
        )
        .unwrap();
        let mut out = SpdmRequest::new(SpdmNonce([1; 32])).to_bytes().to_vec();
        out.extend(response.to_bytes());
        out
    }

    /// Offset of the response's first block, of the opaque length, of the opaque data.
    const BLOCK0: usize = 37 + 8;
    const OPAQUE_LEN_AT: usize = BLOCK0 + 2 * 55 + 32;
    const OPAQUE_AT: usize = OPAQUE_LEN_AT + 2;

    #[test]
    fn sample_roundtrips_and_decodes() {
        let bytes = sample();
        let report = AttestationReport::parse(&bytes).unwrap();
        assert_eq!(report.to_bytes(), bytes);
        assert_eq!(report.signed_bytes(), &bytes[..bytes.len() - 96]);
        assert_eq!(report.signature(), [5; 96]);
        assert_eq!(report.nonce(), SpdmNonce([1; 32]));
        assert_eq!(report.measurement(2), Some(&[7u8; 48][..]));
        assert_eq!(report.measurement(3), None);
        assert_eq!(report.measurements().len(), 2);
        let o = report.opaque();
        assert_eq!(o.driver_version().as_deref(), Some("550.90.07"));
        assert_eq!(o.vbios_version().as_deref(), Some("96.00.9F.00.01"));
        assert_eq!(o.nvdec0_status(), Some(NVDEC0_DISABLED));
        assert_eq!(o.fwid(), None);
        assert!(o.unknown_ids().is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["response"]["opaque"][1]["decoded"], "96.00.9F.00.01");
        assert_eq!(json["response"]["opaque"][0]["name"], "DRIVER_VERSION");
        assert!(report.request.requests_signature() && report.request.requests_all_measurements());
    }

    #[test]
    fn trailing_bytes_are_kept() {
        let mut bytes = sample();
        bytes.push(0);
        let report = AttestationReport::parse(&bytes).unwrap();
        assert_eq!(report.trailing, vec![0]);
        assert_eq!(report.to_bytes(), bytes);
        assert_eq!(report.signed_bytes(), &bytes[..bytes.len() - 97]);
    }

    #[test]
    fn vbios_formatting_both_ways() {
        assert_eq!(
            format_vbios_version(&[0, 0x88, 0, 0x97, 0x0f, 0, 0, 0]).as_deref(),
            Some("97.00.88.00.0F")
        );
        assert_eq!(
            vbios_version_bytes("96.00.9F.00.01"),
            Some([0, 0x9f, 0, 0x96, 1, 0, 0, 0])
        );
        assert_eq!(vbios_version_bytes("96.00.9F.00"), None);
        assert_eq!(vbios_version_bytes("96.00.9F.00.01.02"), None);
        assert_eq!(vbios_version_bytes("96.00.9G.00.01"), None);
    }

    #[test]
    fn truncation_at_every_field_names_it() {
        let bytes = sample();
        let cases = [
            (0, "version"),
            (4, "nonce"),
            (36, "slot_id"),
            (37, "version"),
            (41, "number_of_blocks"),
            (42, "measurement_record_length"),
            (BLOCK0, "measurement_record"),
            (OPAQUE_LEN_AT - 32, "nonce"),
            (OPAQUE_LEN_AT, "opaque_length"),
            (OPAQUE_AT, "opaque_data"),
            (bytes.len() - 96, "signature"),
        ];
        for (cut, field) in cases {
            let err = AttestationReport::parse(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, ParseError::Truncated { field: f, .. } if f == field),
                "cut {cut}: {err:?}"
            );
        }
    }

    fn patched(at: usize, value: &[u8]) -> Vec<u8> {
        let mut bytes = sample();
        bytes[at..at + value.len()].copy_from_slice(value);
        bytes
    }

    fn invalid_field(bytes: &[u8]) -> (&'static str, usize) {
        match AttestationReport::parse(bytes).unwrap_err() {
            ParseError::Invalid { field, offset, .. } => (field, offset),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn header_values_are_checked() {
        assert_eq!(invalid_field(&patched(0, &[0x12])), ("version", 0));
        assert_eq!(
            invalid_field(&patched(1, &[0x81])),
            ("request_response_code", 1)
        );
        assert_eq!(invalid_field(&patched(37, &[0x10])), ("version", 37));
        assert_eq!(
            invalid_field(&patched(38, &[0xe0])),
            ("request_response_code", 38)
        );
        assert_eq!(invalid_field(&patched(41, &[0])), ("number_of_blocks", 41));
    }

    #[test]
    fn measurement_blocks_are_checked() {
        let second = BLOCK0 + 55;
        assert_eq!(
            invalid_field(&patched(second, &[1])),
            ("measurement_block.index", second)
        );
        assert_eq!(
            invalid_field(&patched(second, &[0])),
            ("measurement_block.index", second)
        );
        assert_eq!(
            invalid_field(&patched(second + 1, &[2])),
            ("measurement_block.spec", second + 1)
        );
        assert_eq!(
            invalid_field(&patched(second + 2, &[52, 0])),
            ("measurement_block.size", second + 2)
        );
        // One block announced, two in the record: the record is not consumed.
        let err = AttestationReport::parse(&patched(41, &[1])).unwrap_err();
        assert!(
            matches!(err, ParseError::TrailingBytes { offset, extra: 55, .. } if offset == second)
        );
        // Three blocks announced, two in the record.
        let err = AttestationReport::parse(&patched(41, &[3])).unwrap_err();
        assert!(matches!(
            err,
            ParseError::Truncated {
                field: "measurement_block.index",
                ..
            }
        ));
    }

    #[test]
    fn opaque_data_is_checked() {
        // The VBIOS_VERSION entry's type changed to DRIVER_VERSION: a duplicate.
        let bytes = patched(OPAQUE_AT + 14, &[3, 0]);
        assert_eq!(invalid_field(&bytes), ("opaque.type", OPAQUE_AT + 14));
        // Fixed-size fields must have their size.
        let wide = OpaqueData::parse(&[11, 0, 2, 0, 0x55, 0x55]).unwrap_err();
        assert!(matches!(
            wide,
            ParseError::Invalid {
                field: "opaque.NVDEC0_STATUS",
                offset: 0,
                ..
            }
        ));
        let short = OpaqueData::parse(&[20, 0, 2, 0, 1, 2]).unwrap_err();
        assert!(matches!(
            short,
            ParseError::Invalid {
                field: "opaque.FWID",
                ..
            }
        ));
        let cut = OpaqueData::parse(&[3, 0, 9, 0, 1]).unwrap_err();
        assert!(matches!(
            cut,
            ParseError::Truncated {
                field: "opaque.value",
                offset: 4,
                need: 9,
                have: 1,
                ..
            }
        ));
        let half = OpaqueData::parse(&[3, 0, 9]).unwrap_err();
        assert!(matches!(
            half,
            ParseError::Truncated {
                field: "opaque.length",
                ..
            }
        ));
    }

    #[test]
    fn unknown_opaque_ids_are_kept() {
        let data = [0x1e, 0, 1, 0, 0x42, 0xff, 0, 0, 0];
        let o = OpaqueData::parse(&data).unwrap();
        assert_eq!(o.unknown_ids(), vec![OpaqueId(30), OpaqueId::INVALID]);
        assert_eq!(o.entry(OpaqueId(30)), Some(&[0x42][..]));
        assert_eq!(o.to_bytes(), data);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json[0]["name"], serde_json::Value::Null);
        assert_eq!(json[1]["name"], "INVALID");
    }

    #[test]
    fn versioned_opaque_format_is_refused() {
        let mut data = b"NVDAOD".to_vec();
        data.extend([0, 0, 2, 0, 0, 0]);
        let err = OpaqueData::parse(&data).unwrap_err();
        assert!(
            matches!(err, ParseError::Unsupported { format: OPAQUE_FORMAT, ref what } if what.contains("NVDAOD"))
        );
    }

    #[test]
    fn length_helpers_and_standalone_parsers() {
        assert!(matches!(
            SpdmRequest::parse(&[0u8; 36]),
            Err(ParseError::Length {
                expected: 37,
                found: 36,
                ..
            })
        ));
        let bytes = sample();
        let req = SpdmRequest::parse(&bytes[..37]).unwrap();
        assert_eq!(req.to_bytes(), bytes[..37]);
        let resp = SpdmResponse::parse(&bytes[37..]).unwrap();
        assert_eq!(resp.to_bytes(), bytes[37..]);
        let mut longer = bytes[37..].to_vec();
        longer.push(1);
        assert!(matches!(
            SpdmResponse::parse(&longer),
            Err(ParseError::TrailingBytes { extra: 1, .. })
        ));
        let block = MeasurementBlock::parse(&bytes[BLOCK0..BLOCK0 + 55]).unwrap();
        assert_eq!(block.to_bytes(), bytes[BLOCK0..BLOCK0 + 55]);
        assert!(!block.value_type.is_raw());
        assert_eq!(block.value_type.kind(), 1);
    }

    #[test]
    fn fuzz_body_survives_truncations_and_bit_flips() {
        let bytes = sample();
        for cut in 0..=bytes.len() {
            fuzz_roundtrip(&bytes[..cut]);
        }
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            fuzz_roundtrip(&b);
        }
    }
}
