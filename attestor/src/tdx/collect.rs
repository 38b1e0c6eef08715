//! Intel TDX quotes from inside the guest (`specs/snp-tdx.md` §3, §4).
//!
//! The only userspace path to a remotely verifiable TDX quote is Linux
//! configfs-tsm with provider `tdx_guest` (Linux ≥ 6.7): the kernel issues
//! `TDG.VP.VMCALL<GetQuote>`, the host's quote generation service signs, and
//! `outblob` is the DCAP quote (v4 or v5).
//!
//! Not used, on purpose:
//! - the `tdx-guest` crate: a `no_std`, ring-0 library (TDCALL faults at
//!   CPL 3, and it takes guest-physical addresses) whose dependencies need
//!   nightly Rust, so it cannot serve a Linux user process;
//! - the `/dev/tdx_guest` ioctl (`TDX_CMD_GET_REPORT0`): it yields only a
//!   TDREPORT, MAC'd for the local platform, which is not remotely verifiable.
//!   Detection reports the device; collection never uses it.
//!
//! This module never parses or judges the quote: it checks only that
//! REPORT_DATA (offset 568 in v4, 574 in v5) is the value requested.

#![warn(clippy::indexing_slicing)]

use crate::collect::{CollectError, CpuCollector, CpuEvidence, CpuKind, check_report_data};
use crate::tsm::TsmReport;

/// The configfs-tsm provider name of the TDX guest driver.
pub const PROVIDER: &str = "tdx_guest";
/// The TDX guest device (TDREPORT only; detection reports it, nothing uses it).
pub const TDX_GUEST_DEVICE: &str = "/dev/tdx_guest";
/// REPORT_DATA offset in a v4 quote (48-byte header, TD report body).
pub const REPORT_DATA_OFFSET_V4: usize = 568;
/// REPORT_DATA offset in a v5 quote (header, 6-byte body descriptor, body).
pub const REPORT_DATA_OFFSET_V5: usize = 574;

/// Collects TDX quotes through configfs-tsm.
#[derive(Debug, Clone)]
pub struct TdxCollector {
    tsm: TsmReport,
}

impl Default for TdxCollector {
    fn default() -> Self {
        Self::with_tsm(TsmReport::default())
    }
}

impl TdxCollector {
    /// The collector for this host's default paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `tsm` (its provider is required to be `tdx_guest`).
    pub fn with_tsm(tsm: TsmReport) -> Self {
        Self {
            tsm: tsm.expect_provider(PROVIDER),
        }
    }
}

impl CpuCollector for TdxCollector {
    fn kind(&self) -> CpuKind {
        CpuKind::Tdx
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, CollectError> {
        let out = match self.tsm.request(report_data, None) {
            Ok(out) => out,
            Err(err @ CollectError::TsmUnavailable { .. }) => {
                return Err(CollectError::NoCpuTee {
                    reason: format!(
                        "{err}; TDX quotes are only available through configfs-tsm \
                         ({TDX_GUEST_DEVICE} yields a TDREPORT, which is not remotely verifiable)"
                    ),
                });
            }
            Err(err) => return Err(err),
        };
        let offset = match out
            .outblob
            .first_chunk::<2>()
            .map(|v| u16::from_le_bytes(*v))
        {
            Some(5) => REPORT_DATA_OFFSET_V5,
            _ => REPORT_DATA_OFFSET_V4,
        };
        check_report_data(
            CpuEvidence::SOURCE_CONFIGFS_TSM,
            &out.outblob,
            offset,
            report_data,
        )?;
        Ok(CpuEvidence {
            kind: CpuKind::Tdx,
            report: out.outblob,
            aux: out.auxblob,
            provider: out.provider,
            source: CpuEvidence::SOURCE_CONFIGFS_TSM,
            generation: Some(out.generation),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::tsm::fake::{FakeKernel, TempDir};

    fn data() -> [u8; 64] {
        core::array::from_fn(|i| 0x5A ^ u8::try_from(i).unwrap())
    }

    fn collector(dir: &TempDir, kernel: &Arc<FakeKernel>) -> TdxCollector {
        TdxCollector::with_tsm(TsmReport::with_hook(dir.report_root(), kernel.clone()))
    }

    #[test]
    fn collects_quote_through_configfs_tsm() {
        let dir = TempDir::new("tdx-ok");
        let kernel = Arc::new(FakeKernel::tdx());
        let c = collector(&dir, &kernel);
        assert_eq!(c.kind(), CpuKind::Tdx);
        let ev = c.collect(&data()).unwrap();
        assert_eq!(ev.kind, CpuKind::Tdx);
        assert_eq!(ev.provider, "tdx_guest");
        assert_eq!(ev.source, "configfs-tsm");
        assert_eq!(ev.aux, None);
        assert_eq!(ev.generation, Some(1));
        assert_eq!(&ev.report[568..632], &data()[..]);
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn refuses_sev_provider_and_wrong_report_data() {
        let dir = TempDir::new("tdx-bad");
        let kernel = Arc::new(FakeKernel::sev());
        let err = collector(&dir, &kernel).collect(&data()).unwrap_err();
        assert!(
            matches!(
                err,
                CollectError::ProviderMismatch {
                    expected: "tdx_guest",
                    ..
                }
            ),
            "{err}"
        );
        let kernel = Arc::new(FakeKernel::tdx());
        kernel.wrong_report_data.store(true, Ordering::SeqCst);
        let err = collector(&dir, &kernel).collect(&data()).unwrap_err();
        assert!(
            matches!(err, CollectError::ReportDataMismatch { offset: 568, .. }),
            "{err}"
        );
    }

    #[test]
    fn v5_quote_offset_is_used() {
        let dir = TempDir::new("tdx-v5");
        let kernel = Arc::new(FakeKernel::tdx());
        kernel.quote_version.store(5, Ordering::SeqCst);
        let ev = collector(&dir, &kernel).collect(&data()).unwrap();
        assert_eq!(&ev.report[..2], &[5, 0]);
        assert_eq!(&ev.report[574..638], &data()[..]);
        kernel.wrong_report_data.store(true, Ordering::SeqCst);
        let err = collector(&dir, &kernel).collect(&data()).unwrap_err();
        assert!(
            matches!(err, CollectError::ReportDataMismatch { offset: 574, .. }),
            "{err}"
        );
    }

    #[test]
    fn without_configfs_tsm_says_why() {
        let dir = TempDir::new("tdx-none");
        let tsm = TsmReport::new(dir.path().join("config/tsm/report"));
        let err = TdxCollector::with_tsm(tsm).collect(&data()).unwrap_err();
        match &err {
            CollectError::NoCpuTee { reason } => {
                assert!(reason.contains("configfs"), "{reason}");
                assert!(reason.contains("TDREPORT"), "{reason}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(TdxCollector::new().kind(), CpuKind::Tdx);
    }
}
