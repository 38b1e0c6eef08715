//! The TDX boot event log (ACPI CCEL): parse, replay into RTMR0–3, summarize.
//!
//! Format: TCG PC Client Platform Firmware Profile, crypto-agile log
//! (`specs/snp-tdx.md` §5.4): a legacy SHA-1-format first event whose data is
//! the `Spec ID Event03` structure (it lists the digest algorithms and their
//! sizes), then `TCG_PCR_EVENT2` records `{mr_index u32, event_type u32,
//! digest_count u32, {alg_id u16, digest}…, event_size u32, event}`. The log
//! ends at the end of the input, at an index of `0xFFFFFFFF`, or at an
//! all-zero header; what follows is kept as padding so the log round-trips.
//!
//! Replay (UEFI 2.10 §38.4.1): CC MR index 1–4 is RTMR0–3, extended as
//! `RTMR = SHA-384(RTMR ‖ digest)` from 48 zero bytes; `EV_NO_ACTION` events
//! are not extended; index 0 (MRTD) is measured by the TDX module, never by
//! an event, so such events are counted and not replayed.
//!
//! This module only parses and replays: comparing with a quote is
//! [`super::appraise`]'s job. It never indexes untrusted bytes (the attestor's
//! length-checked [`Reader`]), and never trusts a length before checking it
//! against what is left.

use serde::Serialize;
use sha2::{Digest as _, Sha384};

use attestor::ParseError;
use attestor::bytes::{Reader, Writer};
use attestor::tdx::quote::Rtmr;

const FORMAT: &str = "ccel event log";

/// TPM_ALG_SHA384.
pub const ALG_SHA384: u16 = 0x000C;
/// EV_NO_ACTION: informational, never extended.
pub const EV_NO_ACTION: u32 = 0x0000_0003;
/// The signature of the first event's data.
pub const SPEC_ID_SIGNATURE: [u8; 16] = *b"Spec ID Event03\0";

/// A parsed event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    /// The first (legacy-format) event: the algorithms used by the others.
    pub spec_id: SpecIdEvent,
    /// Every crypto-agile event, in log order.
    pub events: Vec<Event>,
    /// What follows the last event (terminator and padding), kept for round-trip.
    pub padding: Vec<u8>,
}

/// The first event (`TCG_PCClientPCREvent` carrying `TCG_EfiSpecIDEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIdEvent {
    /// The legacy header's index (0 in practice).
    pub mr_index: u32,
    /// The legacy header's event type (EV_NO_ACTION).
    pub event_type: u32,
    /// The legacy SHA-1 digest field (zero in practice).
    pub sha1_digest: [u8; 20],
    /// platformClass.
    pub platform_class: u32,
    /// specVersionMinor, specVersionMajor, specErrata.
    pub spec_version: [u8; 3],
    /// uintnSize.
    pub uintn_size: u8,
    /// The digest algorithms every later event may carry, with their sizes.
    pub algorithms: Vec<AlgorithmSize>,
    /// vendorInfo.
    pub vendor_info: Vec<u8>,
}

/// One algorithm of the Spec ID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSize {
    /// TPM_ALG_ID.
    pub id: u16,
    /// Digest size in bytes.
    pub digest_size: u16,
}

/// One `TCG_PCR_EVENT2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// CC measurement register index (1–4: RTMR0–3).
    pub mr_index: u32,
    /// Event type (EV_*).
    pub event_type: u32,
    /// Digests, one per algorithm.
    pub digests: Vec<EventDigest>,
    /// Event data.
    pub data: Vec<u8>,
}

/// One digest of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDigest {
    /// TPM_ALG_ID.
    pub alg: u16,
    /// The digest (size given by the Spec ID event).
    pub digest: Vec<u8>,
}

/// Why a parsed log cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// An extended event has no SHA-384 digest.
    #[error("event {event} (MR index {mr_index}) has no SHA-384 digest")]
    MissingSha384 { event: usize, mr_index: u32 },
    /// An event names a register that does not exist.
    #[error("event {event} names MR index {mr_index} (only 0 = MRTD and 1-4 = RTMR0-3 exist)")]
    MrIndexOutOfRange { event: usize, mr_index: u32 },
}

/// The registers a log replays to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// RTMR0–3 after every extend.
    pub rtmrs: [Rtmr; 4],
    /// Number of extends into each RTMR.
    pub extends: [u32; 4],
    /// Events with MR index 0 (MRTD), which are not replayable.
    pub mrtd_events: u32,
    /// EV_NO_ACTION events (not extended).
    pub no_action_events: u32,
}

/// One event as the claims show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// Position in the log (0 = first event after the Spec ID event).
    pub seq: usize,
    /// CC MR index.
    pub mr_index: u32,
    /// "RTMR0".."RTMR3", "MRTD", or "none" for an index that does not exist.
    pub register: &'static str,
    /// True when the event was extended into its RTMR.
    pub extended: bool,
    /// Event type.
    pub event_type: u32,
    /// Its EV_* name, when it is a known one.
    pub event_type_name: Option<&'static str>,
    /// SHA-384 digest (hex), when present.
    pub sha384: Option<String>,
    /// Event data (hex).
    pub data: String,
}

impl EventLog {
    /// Parses a log. Bounds-checked: truncation anywhere is an error naming the field and offset.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(FORMAT, bytes);
        let spec_id = SpecIdEvent::read(&mut r)?;
        let mut events = Vec::new();
        loop {
            let rest = r.rest();
            if rest.is_empty() {
                break;
            }
            if is_terminator(rest) {
                break;
            }
            events.push(Event::read(&mut r, &spec_id.algorithms)?);
        }
        let padding = r.take_rest().to_vec();
        Ok(Self {
            spec_id,
            events,
            padding,
        })
    }

    /// Serializes the log; mirrors [`EventLog::parse`] (padding included).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.spec_id.write(&mut w);
        for e in &self.events {
            e.write(&mut w);
        }
        w.bytes(&self.padding);
        w.into_vec()
    }

    /// Replays the SHA-384 extends into RTMR0–3.
    pub fn replay(&self) -> Result<Replay, ReplayError> {
        let mut rtmrs = [[0u8; 48]; 4];
        let mut extends = [0u32; 4];
        let mut mrtd_events = 0;
        let mut no_action_events = 0;
        for (i, e) in self.events.iter().enumerate() {
            if e.event_type == EV_NO_ACTION {
                no_action_events += 1;
                continue;
            }
            let slot = match e.mr_index {
                0 => {
                    mrtd_events += 1;
                    continue;
                }
                1..=4 => usize::try_from(e.mr_index - 1).unwrap_or(0),
                other => {
                    return Err(ReplayError::MrIndexOutOfRange {
                        event: i,
                        mr_index: other,
                    });
                }
            };
            let digest = e.sha384().ok_or(ReplayError::MissingSha384 {
                event: i,
                mr_index: e.mr_index,
            })?;
            if let (Some(reg), Some(count)) = (rtmrs.get_mut(slot), extends.get_mut(slot)) {
                let mut h = Sha384::new();
                h.update(*reg);
                h.update(digest);
                *reg = h.finalize().into();
                *count += 1;
            }
        }
        Ok(Replay {
            rtmrs: rtmrs.map(Rtmr),
            extends,
            mrtd_events,
            no_action_events,
        })
    }

    /// Every event, for the claims.
    pub fn summary(&self) -> Vec<EventSummary> {
        self.events
            .iter()
            .enumerate()
            .map(|(seq, e)| {
                let register = match e.mr_index {
                    0 => "MRTD",
                    1 => "RTMR0",
                    2 => "RTMR1",
                    3 => "RTMR2",
                    4 => "RTMR3",
                    _ => "none",
                };
                EventSummary {
                    seq,
                    mr_index: e.mr_index,
                    register,
                    extended: e.event_type != EV_NO_ACTION && (1..=4).contains(&e.mr_index),
                    event_type: e.event_type,
                    event_type_name: event_type_name(e.event_type),
                    sha384: e.sha384().map(hex::encode),
                    data: hex::encode(&e.data),
                }
            })
            .collect()
    }
}

impl Event {
    /// The SHA-384 digest, when the event carries one of the right size.
    pub fn sha384(&self) -> Option<&[u8; 48]> {
        self.digests
            .iter()
            .find(|d| d.alg == ALG_SHA384)
            .and_then(|d| d.digest.as_slice().try_into().ok())
    }

    fn read(r: &mut Reader<'_>, algorithms: &[AlgorithmSize]) -> Result<Self, ParseError> {
        let mr_index = r.u32_le("event.mr_index")?;
        let event_type = r.u32_le("event.event_type")?;
        let count_offset = r.offset();
        let count = r.u32_le("event.digest_count")?;
        if usize::try_from(count).map_or(true, |c| c > algorithms.len()) {
            return Err(r.invalid(
                "event.digest_count",
                count_offset,
                format!(
                    "{count} digests, but the Spec ID event lists {} algorithms",
                    algorithms.len()
                ),
            ));
        }
        let mut digests = Vec::new();
        for _ in 0..count {
            let alg_offset = r.offset();
            let alg = r.u16_le("event.digest.alg")?;
            let size = algorithms
                .iter()
                .find(|a| a.id == alg)
                .map(|a| usize::from(a.digest_size))
                .ok_or_else(|| {
                    r.invalid(
                        "event.digest.alg",
                        alg_offset,
                        format!("algorithm {alg:#06x} is not in the Spec ID event"),
                    )
                })?;
            let digest = r.bytes("event.digest", size)?.to_vec();
            digests.push(EventDigest { alg, digest });
        }
        let size_offset = r.offset();
        let size = r.u32_le("event.event_size")?;
        let size = usize::try_from(size)
            .map_err(|_| r.invalid("event.event_size", size_offset, "does not fit in memory"))?;
        let data = r.bytes("event.data", size)?.to_vec();
        Ok(Self {
            mr_index,
            event_type,
            digests,
            data,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.u32_le(self.mr_index);
        w.u32_le(self.event_type);
        w.u32_le(len_u32(self.digests.len()));
        for d in &self.digests {
            w.u16_le(d.alg);
            w.bytes(&d.digest);
        }
        w.u32_le(len_u32(self.data.len()));
        w.bytes(&self.data);
    }
}

impl SpecIdEvent {
    /// A Spec ID event listing only SHA-384, as TDX firmware writes it.
    pub fn sha384_only() -> Self {
        Self {
            mr_index: 0,
            event_type: EV_NO_ACTION,
            sha1_digest: [0; 20],
            platform_class: 0,
            spec_version: [0, 2, 0],
            uintn_size: 2,
            algorithms: vec![AlgorithmSize {
                id: ALG_SHA384,
                digest_size: 48,
            }],
            vendor_info: Vec::new(),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let mr_index = r.u32_le("spec_id.mr_index")?;
        let type_offset = r.offset();
        let event_type = r.u32_le("spec_id.event_type")?;
        if event_type != EV_NO_ACTION {
            return Err(r.invalid(
                "spec_id.event_type",
                type_offset,
                format!("first event has type {event_type:#x}, not EV_NO_ACTION"),
            ));
        }
        let sha1_digest = r.array("spec_id.digest")?;
        let size_offset = r.offset();
        let size = r.u32_le("spec_id.event_size")?;
        let size = usize::try_from(size)
            .map_err(|_| r.invalid("spec_id.event_size", size_offset, "does not fit in memory"))?;
        let mut s = r.sub("spec_id.event", size)?;
        let sig_offset = s.offset();
        let signature: [u8; 16] = s.array("spec_id.signature")?;
        if signature != SPEC_ID_SIGNATURE {
            return Err(s.invalid(
                "spec_id.signature",
                sig_offset,
                "not \"Spec ID Event03\" (not a crypto-agile log)",
            ));
        }
        let platform_class = s.u32_le("spec_id.platform_class")?;
        let spec_version = s.array("spec_id.spec_version")?;
        let uintn_size = s.u8("spec_id.uintn_size")?;
        let n = s.u32_le("spec_id.number_of_algorithms")?;
        let mut algorithms = Vec::new();
        for _ in 0..n {
            let id = s.u16_le("spec_id.algorithm.id")?;
            let digest_size = s.u16_le("spec_id.algorithm.digest_size")?;
            algorithms.push(AlgorithmSize { id, digest_size });
        }
        let vendor_len = s.u8("spec_id.vendor_info_size")?;
        let vendor_info = s
            .bytes("spec_id.vendor_info", usize::from(vendor_len))?
            .to_vec();
        s.finish()?;
        Ok(Self {
            mr_index,
            event_type,
            sha1_digest,
            platform_class,
            spec_version,
            uintn_size,
            algorithms,
            vendor_info,
        })
    }

    fn write(&self, w: &mut Writer) {
        let mut body = Writer::new();
        body.bytes(&SPEC_ID_SIGNATURE);
        body.u32_le(self.platform_class);
        body.bytes(&self.spec_version);
        body.u8(self.uintn_size);
        body.u32_le(len_u32(self.algorithms.len()));
        for a in &self.algorithms {
            body.u16_le(a.id);
            body.u16_le(a.digest_size);
        }
        body.u8(u8::try_from(self.vendor_info.len()).unwrap_or(u8::MAX));
        body.bytes(&self.vendor_info);
        let body = body.into_vec();
        w.u32_le(self.mr_index);
        w.u32_le(self.event_type);
        w.bytes(&self.sha1_digest);
        w.u32_le(len_u32(body.len()));
        w.bytes(&body);
    }
}

/// The end of the log: an index of `0xFFFFFFFF` (erased flash), or an
/// all-zero event header (index, type, digest count).
fn is_terminator(rest: &[u8]) -> bool {
    if rest.first_chunk::<4>() == Some(&[0xFF; 4]) {
        return true;
    }
    let head = rest.get(..12).unwrap_or(rest);
    head.iter().all(|&b| b == 0) || (rest.len() < 4 && rest.iter().all(|&b| b == 0xFF))
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The TCG name of a well-known event type.
pub fn event_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0x0000_0000 => "EV_PREBOOT_CERT",
        0x0000_0001 => "EV_POST_CODE",
        0x0000_0003 => "EV_NO_ACTION",
        0x0000_0004 => "EV_SEPARATOR",
        0x0000_0005 => "EV_ACTION",
        0x0000_0006 => "EV_EVENT_TAG",
        0x0000_0007 => "EV_S_CRTM_CONTENTS",
        0x0000_0008 => "EV_S_CRTM_VERSION",
        0x0000_0009 => "EV_CPU_MICROCODE",
        0x0000_000A => "EV_PLATFORM_CONFIG_FLAGS",
        0x0000_000B => "EV_TABLE_OF_DEVICES",
        0x0000_000C => "EV_COMPACT_HASH",
        0x0000_000D => "EV_IPL",
        0x0000_000E => "EV_IPL_PARTITION_DATA",
        0x0000_000F => "EV_NONHOST_CODE",
        0x0000_0010 => "EV_NONHOST_CONFIG",
        0x0000_0011 => "EV_NONHOST_INFO",
        0x0000_0012 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_000A => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000B => "EV_EFI_HANDOFF_TABLES2",
        0x8000_000C => "EV_EFI_VARIABLE_BOOT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        0x8000_00E0 => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00E1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00E2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        _ => return None,
    })
}

/// A synthetic log for tests: one SHA-384 event per `(mr_index, event_type, data)`,
/// digest = SHA-384(data), preceded by an EV_NO_ACTION event and followed by
/// `0xFF` padding as in a real CCEL area.
#[cfg(test)]
pub(crate) fn synthetic(events: &[(u32, u32, &[u8])]) -> EventLog {
    let mut out = vec![Event {
        mr_index: 0,
        event_type: EV_NO_ACTION,
        digests: vec![EventDigest {
            alg: ALG_SHA384,
            digest: vec![0; 48],
        }],
        data: b"StartupLocality\0\0".to_vec(),
    }];
    out.extend(events.iter().map(|(mr_index, event_type, data)| Event {
        mr_index: *mr_index,
        event_type: *event_type,
        digests: vec![EventDigest {
            alg: ALG_SHA384,
            digest: Sha384::digest(data).to_vec(),
        }],
        data: data.to_vec(),
    }));
    EventLog {
        spec_id: SpecIdEvent::sha384_only(),
        events: out,
        padding: vec![0xFF; 64],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EventLog {
        synthetic(&[
            (1, 0x8000_000A, b"TDVF config"),
            (1, 0x8000_0001, b"SecureBoot=1"),
            (1, 0x0000_0004, &[0, 0, 0, 0]),
            (2, 0x8000_0003, b"shim"),
            (3, 0x0000_000D, b"linux root=/dev/vda1 ro"),
            (3, 0x0000_000D, b"initrd"),
        ])
    }

    fn extend(reg: [u8; 48], data: &[u8]) -> [u8; 48] {
        let d: [u8; 48] = Sha384::digest(data).into();
        Sha384::digest([reg, d].concat()).into()
    }

    #[test]
    fn roundtrip_and_replay() {
        let log = sample();
        let bytes = log.to_bytes();
        let parsed = EventLog::parse(&bytes).unwrap();
        assert_eq!(parsed, log);
        assert_eq!(parsed.to_bytes(), bytes);

        let replay = parsed.replay().unwrap();
        assert_eq!(replay.extends, [3, 1, 2, 0]);
        assert_eq!(replay.no_action_events, 1);
        let mut r0 = [0u8; 48];
        for d in [&b"TDVF config"[..], b"SecureBoot=1", &[0, 0, 0, 0]] {
            r0 = extend(r0, d);
        }
        assert_eq!(replay.rtmrs[0].0, r0);
        let r2 = extend(extend([0; 48], b"linux root=/dev/vda1 ro"), b"initrd");
        assert_eq!(replay.rtmrs[2].0, r2);
        assert_eq!(replay.rtmrs[3].0, [0; 48]);

        let summary = parsed.summary();
        assert_eq!(summary.len(), 7);
        assert_eq!(summary[0].event_type_name, Some("EV_NO_ACTION"));
        assert!(!summary[0].extended);
        assert_eq!(summary[5].register, "RTMR2");
        assert_eq!(summary[5].data, hex::encode(b"linux root=/dev/vda1 ro"));
    }

    #[test]
    fn zero_terminated_and_unpadded_logs_parse() {
        let mut log = sample();
        log.padding = vec![0; 100];
        assert_eq!(EventLog::parse(&log.to_bytes()).unwrap(), log);
        log.padding.clear();
        assert_eq!(EventLog::parse(&log.to_bytes()).unwrap(), log);
    }

    /// Fuzz-style: every truncation of a valid log either parses to a prefix of
    /// its events or fails with a typed error; nothing panics.
    #[test]
    fn every_truncation_is_an_error_or_a_prefix() {
        let log = sample();
        let mut bytes = log.to_bytes();
        bytes.truncate(bytes.len() - log.padding.len());
        for cut in 0..bytes.len() {
            let Some(prefix) = bytes.get(..cut) else {
                continue;
            };
            match EventLog::parse(prefix) {
                Ok(parsed) => {
                    assert!(parsed.events.len() <= log.events.len());
                    assert_eq!(parsed.events[..], log.events[..parsed.events.len()]);
                    assert_eq!(parsed.to_bytes(), prefix);
                }
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains("ccel event log"), "{text}");
                }
            }
        }
        // And single-byte corruption never panics either.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            if let Some(x) = b.get_mut(i) {
                *x ^= 0xA5;
            }
            if let Ok(parsed) = EventLog::parse(&b) {
                let _ = parsed.replay();
            }
        }
    }

    #[test]
    fn malformed_logs_name_the_field() {
        // Not a crypto-agile log.
        let mut log = sample();
        log.spec_id.event_type = 4;
        let e = EventLog::parse(&log.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("spec_id.event_type"), "{e}");

        // An algorithm the header does not list.
        let mut log = sample();
        if let Some(d) = log.events.get_mut(1).and_then(|e| e.digests.get_mut(0)) {
            d.alg = 0x000B;
            d.digest = vec![0; 32];
        }
        let e = EventLog::parse(&log.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("event.digest.alg"), "{e}");

        // A huge event size.
        let mut bytes = sample().to_bytes();
        let spec_len = SpecIdEvent::sha384_only().to_bytes_for_test().len();
        // first event after spec: index, type, count, alg, 48-byte digest, then size.
        let size_at = spec_len + 4 + 4 + 4 + 2 + 48;
        bytes.splice(size_at..size_at + 4, u32::MAX.to_le_bytes());
        let e = EventLog::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("event.data"), "{e}");
    }

    #[test]
    fn replay_refuses_unusable_events() {
        let mut log = sample();
        log.events.push(Event {
            mr_index: 7,
            event_type: 0xD,
            digests: vec![],
            data: vec![],
        });
        assert_eq!(
            log.replay().unwrap_err(),
            ReplayError::MrIndexOutOfRange {
                event: 7,
                mr_index: 7
            }
        );
        let mut log = sample();
        log.events.push(Event {
            mr_index: 4,
            event_type: 0xD,
            digests: vec![],
            data: vec![],
        });
        assert!(matches!(
            log.replay().unwrap_err(),
            ReplayError::MissingSha384 { event: 7, .. }
        ));
    }

    impl SpecIdEvent {
        fn to_bytes_for_test(&self) -> Vec<u8> {
            let mut w = Writer::new();
            self.write(&mut w);
            w.into_vec()
        }
    }
}
