//! SEV-SNP evidence from inside the guest (`specs/snp-tdx.md` §1.2, §3).
//!
//! Linux configfs-tsm (provider `sev_guest`, Linux ≥ 6.7) first: `outblob` is
//! the 1184-byte ATTESTATION_REPORT and `auxblob` the GHCB certificate table.
//! When configfs-tsm is unavailable (older kernels), the `/dev/sev-guest`
//! ioctl through the `sev` crate (`Firmware::get_ext_report`), whose
//! certificate list is written back into the same GHCB table format here, so
//! [`CpuEvidence::aux`] looks the same whichever path produced it.
//!
//! The GHCB certificate table: 24-byte entries `{guid[16] (RFC 4122 byte
//! order), offset u32 LE, length u32 LE}`, an all-zero terminator entry, then
//! the certificates; offsets count from the start of the table.
//!
//! **Hazard (sev 8):** sev's cert-table parser (`CertTableEntry::parse_table`,
//! used inside `get_ext_report`, and `vec_bytes_to_cert_table`) follows the
//! host-supplied offsets and lengths without bounds checks and `unwrap`s. The
//! table is written by the hypervisor, so this module never calls that parser
//! on bytes it holds, and the verifier parses `aux` with its own bounded
//! parser. `get_ext_report` still runs sev's parser on the kernel's buffer in
//! the fallback path; [`SnpCollector::without_host_certs`] avoids it by using
//! `get_report` (the VCEK is then fetched from AMD KDS by the verifier).
//!
//! This module never parses or judges the report: it checks only that
//! REPORT_DATA (offset 0x50) is the value requested.

#![warn(clippy::indexing_slicing)]

use crate::bytes::Writer;
use crate::collect::{CollectError, CpuCollector, CpuEvidence, CpuKind, check_report_data};
use crate::tsm::TsmReport;

/// The configfs-tsm provider name of the SEV-SNP guest driver.
pub const PROVIDER: &str = "sev_guest";
/// The SEV-SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";
/// Offset of REPORT_DATA in the ATTESTATION_REPORT.
pub const REPORT_DATA_OFFSET: usize = 0x50;

/// GHCB certificate-table GUID of the ARK (RFC 4122 byte order).
pub const GUID_ARK: [u8; 16] = guid(0xc0b406a4, 0xa803, 0x4952, 0x9743_3fb6014cd0ae);
/// GHCB certificate-table GUID of the ASK.
pub const GUID_ASK: [u8; 16] = guid(0x4ab7b379, 0xbbac, 0x4fe4, 0xa02f_05aef327c782);
/// GHCB certificate-table GUID of the VCEK.
pub const GUID_VCEK: [u8; 16] = guid(0x63da758d, 0xe664, 0x4564, 0xadc5_f4b93be8accd);
/// GHCB certificate-table GUID of the VLEK.
pub const GUID_VLEK: [u8; 16] = guid(0xa8074bc2, 0xa25a, 0x483e, 0xaae6_39c045a0b8a1);
/// GHCB certificate-table GUID of a CRL.
pub const GUID_CRL: [u8; 16] = guid(0x92f81bc3, 0x5811, 0x4d3d, 0x97ff_d19f88dc67ea);

const ENTRY_LEN: usize = 24;

/// Collects SEV-SNP reports: configfs-tsm, else `/dev/sev-guest`.
#[derive(Debug, Clone)]
pub struct SnpCollector {
    tsm: TsmReport,
    vmpl: Option<u32>,
    fallback: bool,
    host_certs: bool,
}

impl Default for SnpCollector {
    fn default() -> Self {
        Self::with_tsm(TsmReport::default())
    }
}

impl SnpCollector {
    /// The collector for this host's default paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `tsm` (its provider is required to be `sev_guest`).
    pub fn with_tsm(tsm: TsmReport) -> Self {
        Self {
            tsm: tsm.expect_provider(PROVIDER),
            vmpl: None,
            fallback: true,
            host_certs: true,
        }
    }

    /// Requests the report at `vmpl` (configfs `privlevel`). By default
    /// configfs-tsm uses the kernel's default and `/dev/sev-guest` VMPL 0.
    pub fn vmpl(mut self, vmpl: u32) -> Self {
        self.vmpl = Some(vmpl);
        self
    }

    /// Never falls back to `/dev/sev-guest`.
    pub fn without_sev_guest_fallback(mut self) -> Self {
        self.fallback = false;
        self
    }

    /// In the `/dev/sev-guest` fallback, asks for the report alone
    /// (`get_report`), so sev's unbounded cert-table parser never runs.
    pub fn without_host_certs(mut self) -> Self {
        self.host_certs = false;
        self
    }

    fn collect_tsm(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, CollectError> {
        let out = self.tsm.request(report_data, self.vmpl)?;
        check_report_data(
            CpuEvidence::SOURCE_CONFIGFS_TSM,
            &out.outblob,
            REPORT_DATA_OFFSET,
            report_data,
        )?;
        Ok(CpuEvidence {
            kind: CpuKind::Snp,
            report: out.outblob,
            aux: out.auxblob,
            provider: out.provider,
            source: CpuEvidence::SOURCE_CONFIGFS_TSM,
            generation: Some(out.generation),
        })
    }

    #[cfg(target_os = "linux")]
    fn collect_sev_guest(
        &self,
        report_data: &[u8; 64],
        tsm_reason: &str,
    ) -> Result<CpuEvidence, CollectError> {
        use std::path::Path;

        use sev::firmware::guest::Firmware;

        let device = Path::new(SEV_GUEST_DEVICE);
        let mut firmware = match Firmware::open() {
            Ok(firmware) => firmware,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(CollectError::NoCpuTee {
                    reason: format!(
                        "{tsm_reason}; {SEV_GUEST_DEVICE} not found (not an SEV-SNP guest, \
                         or the sev-guest driver is not loaded)"
                    ),
                });
            }
            Err(err) => return Err(crate::collect::io_error("open", device, &err)),
        };
        let sev_error = |err: sev::error::UserApiError| CollectError::SevGuest {
            path: device.to_path_buf(),
            message: err.to_string(),
        };
        let vmpl = Some(self.vmpl.unwrap_or(0));
        let (report, aux) = if self.host_certs {
            let (report, certs) = firmware
                .get_ext_report(Some(1), Some(*report_data), vmpl)
                .map_err(sev_error)?;
            let aux = match certs {
                Some(certs) if !certs.is_empty() => Some(table_from_sev(&certs)?),
                _ => None,
            };
            (report, aux)
        } else {
            let report = firmware
                .get_report(Some(1), Some(*report_data), vmpl)
                .map_err(sev_error)?;
            (report, None)
        };
        check_report_data(
            CpuEvidence::SOURCE_SEV_GUEST,
            &report,
            REPORT_DATA_OFFSET,
            report_data,
        )?;
        Ok(CpuEvidence {
            kind: CpuKind::Snp,
            report,
            aux,
            provider: PROVIDER.to_string(),
            source: CpuEvidence::SOURCE_SEV_GUEST,
            generation: None,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn collect_sev_guest(
        &self,
        _report_data: &[u8; 64],
        tsm_reason: &str,
    ) -> Result<CpuEvidence, CollectError> {
        Err(CollectError::NoCpuTee {
            reason: format!("{tsm_reason}; {SEV_GUEST_DEVICE} exists only on Linux"),
        })
    }
}

impl CpuCollector for SnpCollector {
    fn kind(&self) -> CpuKind {
        CpuKind::Snp
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, CollectError> {
        match self.collect_tsm(report_data) {
            Err(err @ CollectError::TsmUnavailable { .. }) if self.fallback => {
                self.collect_sev_guest(report_data, &err.to_string())
            }
            other => other,
        }
    }
}

/// Writes the GHCB certificate table for `entries` (`(guid, certificate)`),
/// certificates in the given order right after the terminator.
pub fn cert_table_bytes(entries: &[([u8; 16], &[u8])]) -> Result<Vec<u8>, CollectError> {
    let too_large = || CollectError::Invalid {
        interface: CpuEvidence::SOURCE_SEV_GUEST,
        what: "certificate table".into(),
        reason: "larger than 4 GiB".into(),
    };
    let header = entries
        .len()
        .checked_add(1)
        .and_then(|n| n.checked_mul(ENTRY_LEN))
        .ok_or_else(too_large)?;
    let mut w = Writer::new();
    let mut offset = header;
    for (guid, data) in entries {
        w.bytes(guid);
        w.u32_le(u32::try_from(offset).map_err(|_| too_large())?);
        w.u32_le(u32::try_from(data.len()).map_err(|_| too_large())?);
        offset = offset.checked_add(data.len()).ok_or_else(too_large)?;
    }
    w.zeros(ENTRY_LEN);
    for (_, data) in entries {
        w.bytes(data);
    }
    Ok(w.into_vec())
}

/// sev's certificate list as a GHCB table; `Empty` entries are dropped.
#[cfg(target_os = "linux")]
fn table_from_sev(certs: &[sev::firmware::host::CertTableEntry]) -> Result<Vec<u8>, CollectError> {
    use sev::firmware::host::CertType;

    let entries: Vec<([u8; 16], &[u8])> = certs
        .iter()
        .filter_map(|entry| {
            let guid = match &entry.cert_type {
                CertType::Empty => return None,
                CertType::ARK => GUID_ARK,
                CertType::ASK => GUID_ASK,
                CertType::VCEK => GUID_VCEK,
                CertType::VLEK => GUID_VLEK,
                CertType::CRL => GUID_CRL,
                CertType::OTHER(uuid) => *uuid.as_bytes(),
            };
            Some((guid, entry.data.as_slice()))
        })
        .collect();
    cert_table_bytes(&entries)
}

/// A GUID in RFC 4122 (big-endian) byte order from its printed groups.
const fn guid(a: u32, b: u16, c: u16, d: u64) -> [u8; 16] {
    let [a0, a1, a2, a3] = a.to_be_bytes();
    let [b0, b1] = b.to_be_bytes();
    let [c0, c1] = c.to_be_bytes();
    let [d0, d1, d2, d3, d4, d5, d6, d7] = d.to_be_bytes();
    [
        a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, d2, d3, d4, d5, d6, d7,
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::bytes::Reader;
    use crate::tsm::fake::{FakeKernel, TempDir};

    fn data() -> [u8; 64] {
        core::array::from_fn(|i| 0xA0 ^ u8::try_from(i).unwrap())
    }

    fn collector(dir: &TempDir, kernel: &Arc<FakeKernel>) -> SnpCollector {
        SnpCollector::with_tsm(TsmReport::with_hook(dir.report_root(), kernel.clone()))
    }

    #[test]
    fn collects_through_configfs_tsm() {
        let dir = TempDir::new("snp-ok");
        let kernel = Arc::new(FakeKernel::sev());
        let c = collector(&dir, &kernel).vmpl(1);
        assert_eq!(c.kind(), CpuKind::Snp);
        let ev = c.collect(&data()).unwrap();
        assert_eq!(ev.kind, CpuKind::Snp);
        assert_eq!(ev.source, "configfs-tsm");
        assert_eq!(ev.provider, "sev_guest");
        assert_eq!(ev.generation, Some(2));
        assert_eq!(ev.report.len(), 0x4A0);
        assert_eq!(&ev.report[0x50..0x90], &data()[..]);
        assert_eq!(ev.aux.as_deref(), Some(&b"FAKE CERT TABLE"[..]));
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn refuses_tdx_provider() {
        let dir = TempDir::new("snp-tdx");
        let kernel = Arc::new(FakeKernel::tdx());
        let err = collector(&dir, &kernel).collect(&data()).unwrap_err();
        assert!(
            matches!(
                err,
                CollectError::ProviderMismatch {
                    expected: "sev_guest",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_report_without_our_report_data() {
        let dir = TempDir::new("snp-rd");
        let kernel = Arc::new(FakeKernel::sev());
        kernel.wrong_report_data.store(true, Ordering::SeqCst);
        let err = collector(&dir, &kernel).collect(&data()).unwrap_err();
        assert!(
            matches!(err, CollectError::ReportDataMismatch { offset: 0x50, .. }),
            "{err}"
        );
    }

    #[test]
    fn without_configfs_tsm_falls_back_or_says_why() {
        if std::path::Path::new(SEV_GUEST_DEVICE).exists() {
            return; // a real SNP guest: the fallback would succeed or fail on hardware
        }
        let dir = TempDir::new("snp-none");
        let tsm = TsmReport::new(dir.path().join("config/tsm/report"));
        let err = SnpCollector::with_tsm(tsm.clone())
            .collect(&data())
            .unwrap_err();
        match &err {
            CollectError::NoCpuTee { reason } => {
                assert!(reason.contains("configfs"), "{reason}");
                assert!(reason.contains(SEV_GUEST_DEVICE), "{reason}");
            }
            other => panic!("{other}"),
        }
        let err = SnpCollector::with_tsm(tsm)
            .without_sev_guest_fallback()
            .without_host_certs()
            .collect(&data())
            .unwrap_err();
        assert!(matches!(err, CollectError::TsmUnavailable { .. }), "{err}");
    }

    #[test]
    fn guids_are_rfc4122_byte_order() {
        assert_eq!(hex::encode(GUID_ARK), "c0b406a4a803495297433fb6014cd0ae");
        assert_eq!(hex::encode(GUID_ASK), "4ab7b379bbac4fe4a02f05aef327c782");
        assert_eq!(hex::encode(GUID_VCEK), "63da758de6644564adc5f4b93be8accd");
        assert_eq!(hex::encode(GUID_VLEK), "a8074bc2a25a483eaae639c045a0b8a1");
        assert_eq!(hex::encode(GUID_CRL), "92f81bc358114d3d97ffd19f88dc67ea");
    }

    #[test]
    fn cert_table_layout() {
        let vcek = b"VCEK-DER".as_slice();
        let ask = b"ASK".as_slice();
        let table = cert_table_bytes(&[(GUID_VCEK, vcek), (GUID_ASK, ask)]).unwrap();
        assert_eq!(table.len(), 3 * 24 + vcek.len() + ask.len());
        let mut r = Reader::new("cert table", &table);
        assert_eq!(r.at(0).array::<16>("guid").unwrap(), GUID_VCEK);
        assert_eq!(r.at(16).u32_le("offset").unwrap(), 72);
        assert_eq!(r.at(20).u32_le("length").unwrap(), 8);
        assert_eq!(r.at(24).array::<16>("guid").unwrap(), GUID_ASK);
        assert_eq!(r.at(40).u32_le("offset").unwrap(), 80);
        assert_eq!(r.at(44).u32_le("length").unwrap(), 3);
        r.at(48).zeros::<24>("terminator").unwrap();
        assert_eq!(r.at(72).bytes("vcek", 8).unwrap(), vcek);
        assert_eq!(r.at(80).bytes("ask", 3).unwrap(), ask);
        r.finish().unwrap();
        assert_eq!(cert_table_bytes(&[]).unwrap(), vec![0u8; 24]);
    }

    /// Our table equals the one sev's own writer builds (sev's writer uses
    /// native-endian integers, so this holds on little-endian hosts).
    #[cfg(all(target_os = "linux", target_endian = "little"))]
    #[test]
    fn cert_table_matches_sev_writer() {
        use sev::firmware::host::{CertTableEntry, CertType};

        let certs = vec![
            CertTableEntry {
                cert_type: CertType::VCEK,
                data: vec![1; 1300],
            },
            CertTableEntry {
                cert_type: CertType::ASK,
                data: vec![2; 1600],
            },
            CertTableEntry {
                cert_type: CertType::ARK,
                data: vec![3; 1500],
            },
            CertTableEntry {
                cert_type: CertType::CRL,
                data: vec![4; 10],
            },
            CertTableEntry {
                cert_type: CertType::VLEK,
                data: vec![5; 7],
            },
        ];
        let ours = table_from_sev(&certs).unwrap();
        let theirs = CertTableEntry::cert_table_to_vec_bytes(&certs).unwrap();
        assert_eq!(ours, theirs);

        let with_empty = vec![
            CertTableEntry {
                cert_type: CertType::Empty,
                data: vec![],
            },
            certs[0].clone(),
        ];
        let ours = table_from_sev(&with_empty).unwrap();
        let theirs = CertTableEntry::cert_table_to_vec_bytes(&certs[..1]).unwrap();
        assert_eq!(ours, theirs);
    }
}
