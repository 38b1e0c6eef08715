//! Collectors for real hardware behind one trait, and detection of what this
//! host offers.
//!
//! - CPU evidence ([`CpuCollector`]): an SEV-SNP report with its certificate
//!   table ([`crate::snp::collect::SnpCollector`]) or a TDX quote
//!   ([`crate::tdx::collect::TdxCollector`]), both through Linux configfs-tsm
//!   ([`crate::tsm`]), with `/dev/sev-guest` as the SNP fallback.
//! - GPU evidence ([`GpuCollector`]): the SPDM report and certificate chain of
//!   each NVIDIA GPU through NVML ([`crate::nvidia::collect::NvmlCollector`]).
//! - [`detect`] says, item by item, which interfaces are present and why the
//!   others are not.
//!
//! Collectors return the bytes the kernel or driver gave, unparsed: parsing is
//! the format modules' job and judging them is the verifier's. Collectors never
//! decide policy (devtools mode is reported, not refused), never set the GPU
//! ready state on their own, and detection leaves nothing behind (its
//! configfs-tsm probe entry is removed and never generates a report).
//!
//! Interfaces followed: `specs/snp-tdx.md` §1.2 (sev crate, `/dev/sev-guest`),
//! §3 (configfs-tsm, Linux `Documentation/ABI/testing/configfs-tsm-report`),
//! §4 (TDX in Linux userspace); `specs/nvidia-gpu.md` §1 (NVML).

#![warn(clippy::indexing_slicing)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::nvidia::collect::NvmlCollector;
use crate::snp::collect::SnpCollector;
use crate::tdx::collect::TdxCollector;
use crate::tsm::TsmReport;

/// Which CPU TEE produced a piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuKind {
    /// AMD SEV-SNP: `report` is the 1184-byte ATTESTATION_REPORT.
    Snp,
    /// Intel TDX: `report` is a DCAP quote (v4 or v5).
    Tdx,
}

impl CpuKind {
    /// Stable lowercase name (`snp`, `tdx`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Snp => "snp",
            Self::Tdx => "tdx",
        }
    }
}

impl fmt::Display for CpuKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CPU evidence exactly as the kernel returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuEvidence {
    /// SNP or TDX.
    pub kind: CpuKind,
    /// The SNP report or TDX quote, raw and unparsed.
    #[serde(with = "crate::hex::base64")]
    pub report: Vec<u8>,
    /// SNP only: the GHCB certificate table (configfs `auxblob`, or rebuilt in
    /// the same format from `/dev/sev-guest`). `None` when the host supplied
    /// no certificates.
    #[serde(serialize_with = "serialize_opt_base64")]
    pub aux: Option<Vec<u8>>,
    /// The configfs-tsm provider (`sev_guest`, `tdx_guest`).
    pub provider: String,
    /// Which interface produced it: [`CpuEvidence::SOURCE_CONFIGFS_TSM`] or
    /// [`CpuEvidence::SOURCE_SEV_GUEST`].
    pub source: &'static str,
    /// The configfs-tsm `generation` the report was read at (`None` for
    /// `/dev/sev-guest`).
    pub generation: Option<u64>,
}

impl CpuEvidence {
    /// `source` of evidence read through configfs-tsm.
    pub const SOURCE_CONFIGFS_TSM: &'static str = "configfs-tsm";
    /// `source` of evidence read through the `/dev/sev-guest` ioctl.
    pub const SOURCE_SEV_GUEST: &'static str = "sev-guest";
}

/// Gets CPU TEE evidence that binds 64 bytes of caller data.
pub trait CpuCollector {
    /// The TEE this collector talks to.
    fn kind(&self) -> CpuKind;
    /// Asks the TEE for a fresh report or quote whose REPORT_DATA is
    /// `report_data`, and checks that the returned bytes carry it.
    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, CollectError>;
}

/// Gets the evidence of every NVIDIA GPU in confidential-computing mode.
pub trait GpuCollector {
    /// One entry per GPU, in NVML index order, each binding `nonce` in its
    /// signed SPDM request.
    fn collect(&self, nonce: &[u8; 32]) -> Result<Vec<GpuEvidence>, CollectError>;
}

/// One GPU's evidence as NVML returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuEvidence {
    /// NVML device index.
    pub index: u32,
    /// `HOPPER`, `BLACKWELL`, or another NVML architecture name in capitals.
    pub arch: String,
    /// NVML UUID (`GPU-…`).
    pub uuid: String,
    /// SPDM GET_MEASUREMENTS request ‖ response: exactly the
    /// `attestationReportSize` bytes NVML reported.
    #[serde(with = "crate::hex::base64")]
    pub report: Vec<u8>,
    /// The attestation certificate chain (PEM text, leaf first), exactly the
    /// `attestationCertChainSize` bytes NVML reported.
    #[serde(with = "crate::hex::base64")]
    pub cert_chain_pem: Vec<u8>,
    /// NVIDIA driver version (system-wide).
    pub driver_version: String,
    /// VBIOS version as NVML formats it.
    pub vbios_version: String,
    /// The system CC settings at collection time. Unauthenticated.
    pub cc: CcState,
}

/// NVML's confidential-computing settings (system-wide, not per GPU).
///
/// These values come from the driver and are **not authenticated**: a
/// verifier must rely on the signed SPDM report (its opaque data) and treat
/// these as hints for diagnostics and early refusal only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CcState {
    /// `environment`: production or simulation.
    pub environment: CcEnvironment,
    /// `ccFeature == 1`.
    pub cc_feature: bool,
    /// `devToolsMode != 0` (measurements then do not match the RIMs).
    pub devtools_mode: bool,
    /// `multiGpuMode`: none, protected PCIe, NVLink encryption.
    pub multi_gpu_mode: MultiGpuMode,
    /// GPUs accepting client work (`nvmlSystemGetConfComputeGpusReadyState`).
    pub ready: bool,
}

impl CcState {
    /// For callers that want to fail early: CC on, devtools off, production
    /// environment. Collection itself refuses only when CC is off; the policy
    /// decides the rest from the signed evidence.
    pub fn require_production(&self) -> Result<(), CollectError> {
        if !self.cc_feature {
            return Err(CollectError::CcOff {
                cc_feature: self.cc_feature,
                multi_gpu_mode: self.multi_gpu_mode,
            });
        }
        if self.devtools_mode {
            return Err(CollectError::DevtoolsOn);
        }
        if self.environment != CcEnvironment::PROD {
            return Err(CollectError::NotProduction {
                environment: self.environment,
            });
        }
        Ok(())
    }
}

/// NVML `environment` (`NVML_CC_SYSTEM_ENVIRONMENT_*`); unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcEnvironment(pub u32);

impl CcEnvironment {
    /// No CC environment.
    pub const UNAVAILABLE: Self = Self(0);
    /// Simulated environment (no hardware root of trust).
    pub const SIM: Self = Self(1);
    /// Production.
    pub const PROD: Self = Self(2);

    /// The NVML name, when the value is known.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("UNAVAILABLE"),
            1 => Some("SIM"),
            2 => Some("PROD"),
            _ => None,
        }
    }
}

/// NVML `multiGpuMode` (`NVML_CC_SYSTEM_MULTIGPU_*`); unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MultiGpuMode(pub u32);

impl MultiGpuMode {
    /// Single-GPU passthrough.
    pub const NONE: Self = Self(0);
    /// Protected PCIe (PPCIe): needs the multi-GPU verifier.
    pub const PROTECTED_PCIE: Self = Self(1);
    /// NVLink encryption.
    pub const NVLE: Self = Self(2);

    /// The NVML name, when the value is known.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("NONE"),
            1 => Some("PROTECTED_PCIE"),
            2 => Some("NVLE"),
            _ => None,
        }
    }
}

macro_rules! named_u32_display {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "UNKNOWN({})", self.0),
                }
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
named_u32_display!(CcEnvironment, MultiGpuMode);

/// Why evidence could not be collected. Each variant says what failed and,
/// where one exists, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A file operation on a kernel interface failed.
    #[error("{op} {}: {errno}{}", path.display(), hint_suffix(hint))]
    Io {
        /// `mkdir`, `write`, `read`, `open`, ….
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error text (with its number).
        errno: String,
        /// What to do about it, or empty.
        hint: &'static str,
    },
    /// configfs-tsm cannot serve reports here.
    #[error("configfs-tsm unavailable at {}: {reason}", path.display())]
    TsmUnavailable {
        /// The report directory.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// The configfs-tsm provider is not the one this collector speaks.
    #[error("configfs-tsm provider at {} is `{found}`, this collector needs `{expected}`", path.display())]
    ProviderMismatch {
        /// The report directory.
        path: PathBuf,
        /// `sev_guest` or `tdx_guest`.
        expected: &'static str,
        /// What the kernel said.
        found: String,
    },
    /// Another writer touched our configfs-tsm entry in every attempt.
    #[error(
        "configfs-tsm entries under {}: generation moved from {before} to {after} while reading, in each of {attempts} attempts; another process writes to our entries",
        path.display()
    )]
    GenerationRace {
        /// The report directory.
        path: PathBuf,
        /// Attempts made, each with a fresh entry.
        attempts: u32,
        /// Generation after our writes (last attempt).
        before: u64,
        /// Generation after our reads (last attempt).
        after: u64,
    },
    /// Our write to a configfs-tsm attribute did not advance `generation`:
    /// configfs commits binary writes on close and drops their errors, so this
    /// is how a refused write shows.
    #[error(
        "configfs-tsm entry {}: write to `{attr}` not applied (generation {found}, expected {expected})",
        path.display()
    )]
    WriteNotApplied {
        /// The entry.
        path: PathBuf,
        /// `inblob` or `privlevel`.
        attr: &'static str,
        /// Generation we expected after our writes.
        expected: u64,
        /// Generation found.
        found: u64,
    },
    /// An interface returned something that cannot be right.
    #[error("{interface}: {what}: {reason}")]
    Invalid {
        /// `configfs-tsm`, `sev-guest`, `NVML`, ….
        interface: &'static str,
        /// The value concerned.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The report does not carry the REPORT_DATA we asked for.
    #[error("{interface}: REPORT_DATA at offset {offset:#x} differs from the requested value")]
    ReportDataMismatch {
        /// The interface that returned it.
        interface: &'static str,
        /// Where REPORT_DATA sits in the report.
        offset: usize,
    },
    /// The `/dev/sev-guest` ioctl failed.
    #[error("{}: {message}", path.display())]
    SevGuest {
        /// The device.
        path: PathBuf,
        /// The sev crate's error text.
        message: String,
    },
    /// No CPU TEE interface could serve the request.
    #[error("no CPU TEE evidence interface: {reason}")]
    NoCpuTee {
        /// Every interface tried and why it failed.
        reason: String,
    },
    /// The interface does not exist on this platform.
    #[error("{what} is not supported on this platform")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// An NVML call failed.
    #[error("NVML {call}{}: {message}", device_suffix(device))]
    Nvml {
        /// The NVML function.
        call: &'static str,
        /// The device index, for per-device calls.
        device: Option<u32>,
        /// NVML's error text.
        message: String,
    },
    /// GPU confidential computing is off: there is nothing to attest.
    #[error(
        "GPU confidential computing is off (cc feature {cc_feature}, multi-GPU mode {multi_gpu_mode}): enable CC mode on the host and restart the VM"
    )]
    CcOff {
        /// NVML `ccFeature == 1`.
        cc_feature: bool,
        /// NVML `multiGpuMode`.
        multi_gpu_mode: MultiGpuMode,
    },
    /// GPU devtools mode is on ([`CcState::require_production`] only).
    #[error("GPU CC devtools mode is on: measurements will not match the RIMs")]
    DevtoolsOn,
    /// The GPU CC environment is not production ([`CcState::require_production`] only).
    #[error("GPU CC environment is {environment}, not PROD")]
    NotProduction {
        /// What NVML reported.
        environment: CcEnvironment,
    },
    /// NVML sees no GPU.
    #[error("NVML reports no GPU")]
    NoGpu,
    /// The SPDM request inside a GPU report does not carry our nonce.
    #[error("GPU {index}: the SPDM request in the report does not carry the nonce we sent")]
    GpuNonceMismatch {
        /// NVML device index.
        index: u32,
    },
    /// Setting the GPUs ready before all their evidence was collected.
    #[error(
        "refusing to set the GPU ready state before every GPU's evidence was collected by this collector"
    )]
    ReadyBeforeCollect,
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

fn device_suffix(device: &Option<u32>) -> String {
    device.map(|d| format!(" (GPU {d})")).unwrap_or_default()
}

// Linux errno values that `io::ErrorKind` does not name on our MSRV.
pub(crate) const ENXIO: i32 = 6;
pub(crate) const EBUSY: i32 = 16;
pub(crate) const EFBIG: i32 = 27;
pub(crate) const EINVAL: i32 = 22;

/// Maps an I/O error on a kernel interface to a [`CollectError::Io`] whose
/// hint says what to do.
pub(crate) fn io_error(op: &'static str, path: &Path, err: &io::Error) -> CollectError {
    let hint = match (err.kind(), err.raw_os_error()) {
        (io::ErrorKind::PermissionDenied, _) => "run as root",
        (io::ErrorKind::NotFound, _) => "not found",
        (_, Some(ENXIO)) => {
            "no provider: not a confidential guest, or its guest driver is not loaded"
        }
        (_, Some(EBUSY)) => "too many writes without a read; use a fresh entry",
        (_, Some(EFBIG)) => "the blob exceeds the kernel's maximum size",
        (_, Some(EINVAL)) => {
            "value refused (privlevel below privlevel_floor or above 3, or no inblob written)"
        }
        _ => "",
    };
    CollectError::Io {
        op,
        path: path.to_path_buf(),
        errno: err.to_string(),
        hint,
    }
}

/// Checks that `report` carries `expected` as REPORT_DATA at `offset`.
pub(crate) fn check_report_data(
    interface: &'static str,
    report: &[u8],
    offset: usize,
    expected: &[u8; 64],
) -> Result<(), CollectError> {
    let found = offset
        .checked_add(expected.len())
        .and_then(|end| report.get(offset..end))
        .ok_or_else(|| CollectError::Invalid {
            interface,
            what: "report".into(),
            reason: format!(
                "{} bytes, too short for REPORT_DATA at offset {offset:#x}",
                report.len()
            ),
        })?;
    if found != expected {
        return Err(CollectError::ReportDataMismatch { interface, offset });
    }
    Ok(())
}

fn serialize_opt_base64<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => crate::hex::base64::serialize(bytes, s),
        None => s.serialize_none(),
    }
}

/// Where the kernel and driver interfaces live; [`HostPaths::default`] is the
/// real system, tests point it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// configfs-tsm report directory (`/sys/kernel/config/tsm/report`).
    pub tsm_report: PathBuf,
    /// SEV-SNP guest device (`/dev/sev-guest`).
    pub sev_guest: PathBuf,
    /// TDX guest device (`/dev/tdx_guest`).
    pub tdx_guest: PathBuf,
    /// NVML library name or path (`libnvidia-ml.so.1`).
    pub nvml_library: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            tsm_report: PathBuf::from(crate::tsm::DEFAULT_ROOT),
            sev_guest: PathBuf::from(crate::snp::collect::SEV_GUEST_DEVICE),
            tdx_guest: PathBuf::from(crate::tdx::collect::TDX_GUEST_DEVICE),
            nvml_library: PathBuf::from(crate::nvidia::collect::NVML_LIBRARY),
        }
    }
}

/// One detected (or missing) interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Short name (`configfs-tsm`, `sev-guest`, `tdx-guest`, `nvml`).
    pub name: &'static str,
    /// Usable for collection.
    pub present: bool,
    /// Path or library probed.
    pub location: String,
    /// What was found, or why it is absent.
    pub detail: String,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.present { "present" } else { "absent" };
        write!(
            f,
            "{:<13} {state:<8} {}: {}",
            self.name, self.location, self.detail
        )
    }
}

/// What this host offers for evidence collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// The configfs-tsm report directory and its provider.
    pub configfs_tsm: Probe,
    /// The provider a fresh entry reported (`sev_guest`, `tdx_guest`).
    pub tsm_provider: Option<String>,
    /// `/dev/sev-guest`.
    pub sev_guest: Probe,
    /// `/dev/tdx_guest` (TDREPORT only, never a quote).
    pub tdx_guest: Probe,
    /// NVML: library loaded and initialised.
    pub nvml: Probe,
    /// GPUs NVML sees.
    pub gpu_count: Option<u32>,
    /// System CC settings from NVML (unauthenticated).
    pub gpu_cc: Option<CcState>,
}

impl Detection {
    /// The CPU TEE evidence can be collected for: the configfs-tsm provider
    /// first, then `/dev/sev-guest`.
    pub fn cpu_kind(&self) -> Option<CpuKind> {
        match self.tsm_provider.as_deref() {
            Some(crate::snp::collect::PROVIDER) => Some(CpuKind::Snp),
            Some(crate::tdx::collect::PROVIDER) => Some(CpuKind::Tdx),
            _ if self.sev_guest.present => Some(CpuKind::Snp),
            _ => None,
        }
    }
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.configfs_tsm)?;
        writeln!(f, "{}", self.sev_guest)?;
        writeln!(f, "{}", self.tdx_guest)?;
        write!(f, "{}", self.nvml)
    }
}

/// Detects the interfaces of this host ([`HostPaths::default`]).
pub fn detect() -> Detection {
    detect_at(&HostPaths::default())
}

/// Detects the interfaces at `paths`. Never fails: each item says present or
/// absent and why. The configfs-tsm probe creates an entry, reads its
/// `provider` and removes it; it writes nothing, so no report is generated.
pub fn detect_at(paths: &HostPaths) -> Detection {
    let (configfs_tsm, tsm_provider) = probe_tsm(&paths.tsm_report);
    let sev_guest = probe_device(
        "sev-guest",
        &paths.sev_guest,
        "not an SEV-SNP guest, or the sev-guest driver is not loaded",
    );
    let tdx_guest = probe_device(
        "tdx-guest",
        &paths.tdx_guest,
        "not a TDX guest, or the tdx-guest driver is not loaded",
    );
    let (nvml, gpu_count, gpu_cc) = crate::nvidia::collect::probe(&paths.nvml_library);
    Detection {
        configfs_tsm,
        tsm_provider,
        sev_guest,
        tdx_guest,
        nvml,
        gpu_count,
        gpu_cc,
    }
}

/// The CPU collector this host supports, chosen as [`Detection::cpu_kind`]
/// does (NVML is not probed).
pub fn cpu_collector(
    paths: &HostPaths,
) -> Result<Box<dyn CpuCollector + Send + Sync>, CollectError> {
    let (tsm, provider) = probe_tsm(&paths.tsm_report);
    let report = TsmReport::new(paths.tsm_report.clone());
    match provider.as_deref() {
        Some(crate::snp::collect::PROVIDER) => Ok(Box::new(SnpCollector::with_tsm(report))),
        Some(crate::tdx::collect::PROVIDER) => Ok(Box::new(TdxCollector::with_tsm(report))),
        _ => {
            let sev = probe_device("sev-guest", &paths.sev_guest, "not an SEV-SNP guest");
            if sev.present {
                Ok(Box::new(SnpCollector::with_tsm(report)))
            } else {
                Err(CollectError::NoCpuTee {
                    reason: format!("{tsm}; {sev}"),
                })
            }
        }
    }
}

/// The GPU collector, when NVML loads.
pub fn gpu_collector(paths: &HostPaths) -> Result<NvmlCollector, CollectError> {
    NvmlCollector::init_with_library(&paths.nvml_library)
}

fn probe_tsm(root: &Path) -> (Probe, Option<String>) {
    let location = root.display().to_string();
    let probe = |present: bool, detail: String| Probe {
        name: "configfs-tsm",
        present,
        location: location.clone(),
        detail,
    };
    match TsmReport::new(root.to_path_buf()).probe_provider() {
        Ok(provider) => (probe(true, format!("provider {provider}")), Some(provider)),
        Err(CollectError::TsmUnavailable { reason, .. }) => (probe(false, reason), None),
        Err(err @ CollectError::Io { .. }) if is_permission(&err) => {
            (probe(true, format!("provider unknown: {err}")), None)
        }
        Err(err) => (probe(false, err.to_string()), None),
    }
}

fn is_permission(err: &CollectError) -> bool {
    matches!(err, CollectError::Io { hint, .. } if *hint == "run as root")
}

fn probe_device(name: &'static str, path: &Path, absent: &str) -> Probe {
    let location = path.display().to_string();
    let (present, detail) = match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => (false, format!("not found ({absent})")),
        Err(e) => (false, format!("cannot stat: {e}")),
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => (true, "opens".to_string()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (
                true,
                format!("exists but cannot be opened: {e} (run as root)"),
            ),
            Err(e) => (false, format!("exists but cannot be opened: {e}")),
        },
    };
    Probe {
        name,
        present,
        location,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsm::fake::TempDir;

    fn absent_paths(dir: &Path) -> HostPaths {
        HostPaths {
            tsm_report: dir.join("config/tsm/report"),
            sev_guest: dir.join("dev/sev-guest"),
            tdx_guest: dir.join("dev/tdx_guest"),
            nvml_library: dir.join("lib/libnvidia-ml.so.1"),
        }
    }

    #[test]
    fn detection_says_absent_with_reasons() {
        let dir = TempDir::new("detect-absent");
        let d = detect_at(&absent_paths(dir.path()));
        for probe in [&d.configfs_tsm, &d.sev_guest, &d.tdx_guest, &d.nvml] {
            assert!(!probe.present, "{probe}");
            assert!(!probe.detail.is_empty(), "{probe}");
        }
        assert!(
            d.configfs_tsm.detail.contains("configfs"),
            "{}",
            d.configfs_tsm
        );
        assert!(d.sev_guest.detail.contains("not found"));
        assert!(d.nvml.detail.contains("libnvidia-ml"), "{}", d.nvml);
        assert_eq!(d.tsm_provider, None);
        assert_eq!(d.gpu_count, None);
        assert_eq!(d.cpu_kind(), None);
        let text = d.to_string();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.lines().all(|l| l.contains("absent")), "{text}");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["sev_guest"]["present"], false);
        assert!(matches!(
            cpu_collector(&absent_paths(dir.path())),
            Err(CollectError::NoCpuTee { .. })
        ));
    }

    #[test]
    fn detection_sees_mounted_configfs_without_tsm() {
        let dir = TempDir::new("detect-configfs");
        let paths = absent_paths(dir.path());
        std::fs::create_dir_all(dir.path().join("config/other")).unwrap();
        let d = detect_at(&paths);
        assert!(!d.configfs_tsm.present);
        assert!(d.configfs_tsm.detail.contains("6.7"), "{}", d.configfs_tsm);
    }

    #[test]
    fn detection_reads_provider_and_leaves_nothing() {
        let dir = TempDir::new("detect-present");
        let paths = absent_paths(dir.path());
        std::fs::create_dir_all(&paths.tsm_report).unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(&paths.sev_guest, b"").unwrap();
        let d = detect_at(&paths);
        // A plain directory has no `provider` file, so configfs-tsm is not
        // usable; the sev-guest fallback is.
        assert!(!d.configfs_tsm.present, "{}", d.configfs_tsm);
        assert!(d.sev_guest.present, "{}", d.sev_guest);
        assert_eq!(d.cpu_kind(), Some(CpuKind::Snp));
        assert_eq!(std::fs::read_dir(&paths.tsm_report).unwrap().count(), 0);
        let collector = cpu_collector(&paths).unwrap();
        assert_eq!(collector.kind(), CpuKind::Snp);
    }

    #[test]
    fn detection_on_this_host_does_not_crash() {
        let d = detect();
        let text = d.to_string();
        eprintln!("{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        for line in text.lines() {
            assert!(
                line.contains("present") || line.contains("absent"),
                "{line}"
            );
        }
        serde_json::to_string_pretty(&d).unwrap();
    }

    #[test]
    fn cc_state_names_and_production_check() {
        let prod = CcState {
            environment: CcEnvironment::PROD,
            cc_feature: true,
            devtools_mode: false,
            multi_gpu_mode: MultiGpuMode::NONE,
            ready: false,
        };
        prod.require_production().unwrap();
        assert!(matches!(
            CcState {
                cc_feature: false,
                ..prod
            }
            .require_production(),
            Err(CollectError::CcOff { .. })
        ));
        assert!(matches!(
            CcState {
                devtools_mode: true,
                ..prod
            }
            .require_production(),
            Err(CollectError::DevtoolsOn)
        ));
        assert!(matches!(
            CcState {
                environment: CcEnvironment::SIM,
                ..prod
            }
            .require_production(),
            Err(CollectError::NotProduction { .. })
        ));
        let json = serde_json::to_value(prod).unwrap();
        assert_eq!(json["environment"], "PROD");
        assert_eq!(json["multi_gpu_mode"], "NONE");
        assert_eq!(CcEnvironment(9).to_string(), "UNKNOWN(9)");
        assert_eq!(MultiGpuMode::PROTECTED_PCIE.to_string(), "PROTECTED_PCIE");
        assert_eq!(MultiGpuMode::NVLE.name(), Some("NVLE"));
        assert_eq!(CcEnvironment::UNAVAILABLE.to_string(), "UNAVAILABLE");
    }

    #[test]
    fn io_errors_carry_hints() {
        let p = Path::new("/x");
        let hint = |e: io::Error| match io_error("read", p, &e) {
            CollectError::Io { hint, .. } => hint,
            other => panic!("{other}"),
        };
        assert_eq!(
            hint(io::Error::from(io::ErrorKind::PermissionDenied)),
            "run as root"
        );
        assert!(hint(io::Error::from_raw_os_error(ENXIO)).contains("provider"));
        assert!(hint(io::Error::from_raw_os_error(EBUSY)).contains("fresh entry"));
        assert!(hint(io::Error::from_raw_os_error(EFBIG)).contains("maximum"));
        assert!(hint(io::Error::from_raw_os_error(EINVAL)).contains("privlevel"));
        assert_eq!(hint(io::Error::other("x")), "");
        let text =
            io_error("read", p, &io::Error::from(io::ErrorKind::PermissionDenied)).to_string();
        assert!(
            text.starts_with("read /x: ") && text.ends_with("(run as root)"),
            "{text}"
        );
    }

    #[test]
    fn report_data_check() {
        let mut report = vec![0u8; 0x100];
        let data = [7u8; 64];
        report[0x50..0x90].copy_from_slice(&data);
        check_report_data("t", &report, 0x50, &data).unwrap();
        assert!(matches!(
            check_report_data("t", &report, 0x51, &data),
            Err(CollectError::ReportDataMismatch { offset: 0x51, .. })
        ));
        assert!(matches!(
            check_report_data("t", &report, 0xF0, &data),
            Err(CollectError::Invalid { .. })
        ));
        assert!(matches!(
            check_report_data("t", &report, usize::MAX, &data),
            Err(CollectError::Invalid { .. })
        ));
    }

    #[test]
    fn cpu_evidence_serializes() {
        let ev = CpuEvidence {
            kind: CpuKind::Tdx,
            report: vec![1, 2, 3],
            aux: None,
            provider: "tdx_guest".into(),
            source: CpuEvidence::SOURCE_CONFIGFS_TSM,
            generation: Some(2),
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["kind"], "tdx");
        assert_eq!(json["report"], "AQID");
        assert!(json["aux"].is_null());
        let with_aux = CpuEvidence {
            aux: Some(vec![0xff]),
            ..ev
        };
        assert_eq!(serde_json::to_value(&with_aux).unwrap()["aux"], "/w==");
        assert_eq!(CpuKind::Snp.to_string(), "snp");
    }
}
