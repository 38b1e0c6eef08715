//! NVIDIA GPU evidence through NVML (`specs/nvidia-gpu.md` §1).
//!
//! NVML is reached through `nvml-wrapper` 0.13, which `dlopen`s
//! `libnvidia-ml.so.1` at run time: nothing links at build time, and hosts
//! without the driver simply report NVML absent. Per collection: the system CC
//! settings (environment, CC feature, devtools mode, multi-GPU mode) and ready
//! state; then per GPU: architecture, UUID, VBIOS version, the SPDM
//! attestation report over the caller's nonce (`attestationReport[..size]`)
//! and the attestation certificate chain (PEM). The driver version is
//! system-wide.
//!
//! What this module does not do:
//! - judge the evidence: NVML's CC values are **unauthenticated** driver
//!   output ([`CcState`]); only CC off is refused (there is nothing to attest).
//!   Devtools mode and a non-production environment are reported for the
//!   policy to decide.
//! - set the GPUs ready on its own: [`NvmlCollector::set_ready`] is separate,
//!   is the caller's decision (normally after the verifier accepted every
//!   GPU), and refuses `true` unless this collector's last collection covered
//!   every GPU. The ready state is system-wide.
//!
//! The NVML calls sit behind a small internal trait so the logic (mode check,
//! truncation to the reported size, nonce check, per-device loop, ready-state
//! rule) is unit-tested with a fake. nvml-wrapper does not expose the CC
//! *environment*, so one raw call to `nvmlSystemGetConfComputeSettings` is
//! made through its symbol table: the only `unsafe` in this module, with its
//! `SAFETY` argument beside it. nvml-wrapper's report and certificate getters
//! slice fixed buffers by driver-reported sizes and would panic on an
//! oversized value; those calls run under `catch_unwind` and become errors.

#![warn(clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::collect::{
    CcEnvironment, CcState, CollectError, GpuCollector, GpuEvidence, MultiGpuMode, Probe,
};

/// The NVML library name NVIDIA's tools load.
pub const NVML_LIBRARY: &str = "libnvidia-ml.so.1";
/// Capacity of NVML's `attestationReport` buffer.
pub const REPORT_MAX: usize = 0x2000;
/// Capacity of NVML's `attestationCertChain` buffer.
pub const CERT_CHAIN_MAX: usize = 0x1400;
/// The 32-byte nonce sits at bytes 4..36 of the SPDM GET_MEASUREMENTS request
/// that opens the report.
const NONCE_OFFSET: usize = 4;

const NVML: &str = "NVML";

/// Collects every GPU's evidence through NVML.
pub struct NvmlCollector {
    api: Arc<dyn NvmlApi>,
    collected_all: AtomicBool,
}

impl std::fmt::Debug for NvmlCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlCollector")
            .field("collected_all", &self.collected_all)
            .finish_non_exhaustive()
    }
}

impl NvmlCollector {
    /// Loads and initialises NVML from [`NVML_LIBRARY`].
    pub fn init() -> Result<Self, CollectError> {
        Self::init_with_library(Path::new(NVML_LIBRARY))
    }

    /// Loads and initialises NVML from `library` (a name or a path).
    pub fn init_with_library(library: &Path) -> Result<Self, CollectError> {
        let nvml = nvml_wrapper::Nvml::builder()
            .lib_path(library.as_os_str())
            .init()
            .map_err(|e| CollectError::Nvml {
                call: "nvmlInit_v2",
                device: None,
                message: e.to_string(),
            })?;
        Ok(Self::from_api(Arc::new(RealNvml(nvml))))
    }

    fn from_api(api: Arc<dyn NvmlApi>) -> Self {
        Self {
            api,
            collected_all: AtomicBool::new(false),
        }
    }

    /// The system CC settings and ready state (unauthenticated).
    pub fn cc_state(&self) -> Result<CcState, CollectError> {
        let raw = self.api.settings()?;
        Ok(CcState {
            environment: CcEnvironment(raw.environment),
            cc_feature: raw.cc_feature == 1,
            // Any value but OFF counts as on: the safe reading for a verifier.
            devtools_mode: raw.devtools_mode != 0,
            multi_gpu_mode: MultiGpuMode(raw.multi_gpu_mode),
            ready: self.api.ready_state()?,
        })
    }

    /// GPUs NVML sees.
    pub fn device_count(&self) -> Result<u32, CollectError> {
        self.api.device_count()
    }

    /// Sets the system-wide GPU ready state (accepting client work). `true`
    /// is refused unless this collector's last [`GpuCollector::collect`]
    /// succeeded for every GPU; `false` is always allowed. Call it only after
    /// the evidence was verified: collection never does.
    pub fn set_ready(&self, ready: bool) -> Result<(), CollectError> {
        if ready && !self.collected_all.load(Ordering::SeqCst) {
            return Err(CollectError::ReadyBeforeCollect);
        }
        self.api.set_ready_state(ready)
    }

    fn collect_device(
        &self,
        index: u32,
        nonce: &[u8; 32],
        driver_version: &str,
        cc: CcState,
    ) -> Result<GpuEvidence, CollectError> {
        let arch = self.api.architecture(index)?;
        let uuid = self.api.uuid(index)?;
        let vbios_version = self.api.vbios_version(index)?;
        let report = sized(
            index,
            "attestation report",
            self.api.attestation_report(index, *nonce)?,
            REPORT_MAX,
        )?;
        let sent = NONCE_OFFSET
            .checked_add(nonce.len())
            .and_then(|end| report.get(NONCE_OFFSET..end));
        if sent != Some(nonce.as_slice()) {
            return Err(CollectError::GpuNonceMismatch { index });
        }
        let cert_chain_pem = sized(
            index,
            "attestation certificate chain",
            self.api.attestation_cert_chain(index)?,
            CERT_CHAIN_MAX,
        )?;
        Ok(GpuEvidence {
            index,
            arch,
            uuid,
            report,
            cert_chain_pem,
            driver_version: driver_version.to_string(),
            vbios_version,
            cc,
        })
    }
}

impl GpuCollector for NvmlCollector {
    fn collect(&self, nonce: &[u8; 32]) -> Result<Vec<GpuEvidence>, CollectError> {
        self.collected_all.store(false, Ordering::SeqCst);
        let cc = self.cc_state()?;
        if !cc.cc_feature && cc.multi_gpu_mode != MultiGpuMode::PROTECTED_PCIE {
            return Err(CollectError::CcOff {
                cc_feature: cc.cc_feature,
                multi_gpu_mode: cc.multi_gpu_mode,
            });
        }
        let count = self.api.device_count()?;
        if count == 0 {
            return Err(CollectError::NoGpu);
        }
        let driver_version = self.api.driver_version()?;
        let gpus = (0..count)
            .map(|index| self.collect_device(index, nonce, &driver_version, cc))
            .collect::<Result<Vec<_>, _>>()?;
        self.collected_all.store(true, Ordering::SeqCst);
        Ok(gpus)
    }
}

/// NVML for [`crate::collect::detect_at`]: present when the library loads and
/// initialises, with the GPU count and CC settings when they can be read.
pub(crate) fn probe(library: &Path) -> (Probe, Option<u32>, Option<CcState>) {
    let location = library.display().to_string();
    let collector = match NvmlCollector::init_with_library(library) {
        Ok(collector) => collector,
        Err(err) => {
            let detail = format!("not usable: {err}");
            let probe = Probe {
                name: "nvml",
                present: false,
                location,
                detail,
            };
            return (probe, None, None);
        }
    };
    let count = collector.device_count();
    let cc = collector.cc_state();
    let gpus = match &count {
        Ok(n) => format!("{n} GPU(s)"),
        Err(e) => format!("GPU count unavailable ({e})"),
    };
    let mode = match &cc {
        Ok(cc) => format!(
            "CC feature {}, environment {}, devtools {}, multi-GPU {}, ready {} (unauthenticated)",
            on_off(cc.cc_feature),
            cc.environment,
            on_off(cc.devtools_mode),
            cc.multi_gpu_mode,
            cc.ready
        ),
        Err(e) => format!("CC state unavailable ({e})"),
    };
    let probe = Probe {
        name: "nvml",
        present: true,
        location,
        detail: format!("{gpus}; {mode}"),
    };
    (probe, count.ok(), cc.ok())
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Exactly the first `size` bytes of a fixed NVML buffer, with `size` checked.
fn sized(
    index: u32,
    what: &'static str,
    buffer: SizedBuffer,
    max: usize,
) -> Result<Vec<u8>, CollectError> {
    let invalid = |reason: String| CollectError::Invalid {
        interface: NVML,
        what: format!("GPU {index} {what}"),
        reason,
    };
    let size = usize::try_from(buffer.size).unwrap_or(usize::MAX);
    if size == 0 || size > max {
        return Err(invalid(format!(
            "reported size {} is outside 1..={max}",
            buffer.size
        )));
    }
    buffer.bytes.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
        invalid(format!(
            "buffer holds {} bytes, fewer than the reported size {size}",
            buffer.bytes.len()
        ))
    })
}

/// A fixed NVML output buffer and the size NVML reported for its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SizedBuffer {
    pub(crate) size: u32,
    pub(crate) bytes: Vec<u8>,
}

/// `nvmlSystemConfComputeSettings_v1_t` values as NVML returned them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RawSettings {
    pub(crate) environment: u32,
    pub(crate) cc_feature: u32,
    pub(crate) devtools_mode: u32,
    pub(crate) multi_gpu_mode: u32,
}

/// The NVML calls the collector makes: the seam a fake replaces in tests.
/// Errors are [`CollectError::Nvml`] naming the NVML function.
pub(crate) trait NvmlApi: Send + Sync {
    fn settings(&self) -> Result<RawSettings, CollectError>;
    fn ready_state(&self) -> Result<bool, CollectError>;
    fn set_ready_state(&self, ready: bool) -> Result<(), CollectError>;
    fn driver_version(&self) -> Result<String, CollectError>;
    fn device_count(&self) -> Result<u32, CollectError>;
    fn architecture(&self, index: u32) -> Result<String, CollectError>;
    fn uuid(&self, index: u32) -> Result<String, CollectError>;
    fn vbios_version(&self, index: u32) -> Result<String, CollectError>;
    fn attestation_report(&self, index: u32, nonce: [u8; 32]) -> Result<SizedBuffer, CollectError>;
    fn attestation_cert_chain(&self, index: u32) -> Result<SizedBuffer, CollectError>;
}

/// The real NVML.
struct RealNvml(nvml_wrapper::Nvml);

fn nvml_error(
    call: &'static str,
    device: Option<u32>,
) -> impl Fn(nvml_wrapper::error::NvmlError) -> CollectError {
    move |e| CollectError::Nvml {
        call,
        device,
        message: e.to_string(),
    }
}

impl RealNvml {
    fn device(&self, index: u32) -> Result<nvml_wrapper::Device<'_>, CollectError> {
        self.0
            .device_by_index(index)
            .map_err(nvml_error("nvmlDeviceGetHandleByIndex", Some(index)))
    }

    /// Runs a getter that may panic inside nvml-wrapper on an oversized
    /// driver-reported length, turning the panic into an error.
    fn guarded<T>(
        call: &'static str,
        index: u32,
        f: impl FnOnce() -> Result<T, nvml_wrapper::error::NvmlError>,
    ) -> Result<T, CollectError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(result) => result.map_err(nvml_error(call, Some(index))),
            Err(_) => Err(CollectError::Invalid {
                interface: NVML,
                what: format!("GPU {index} {call}"),
                reason: "the driver reported a size larger than NVML's buffer".into(),
            }),
        }
    }
}

impl NvmlApi for RealNvml {
    fn settings(&self) -> Result<RawSettings, CollectError> {
        raw_settings(&self.0).map_err(nvml_error("nvmlSystemGetConfComputeSettings", None))
    }

    fn ready_state(&self) -> Result<bool, CollectError> {
        // nvml-wrapper hangs this system-wide call on a device handle.
        self.device(0)?
            .get_confidential_compute_state()
            .map_err(nvml_error("nvmlSystemGetConfComputeGpusReadyState", None))
    }

    fn set_ready_state(&self, ready: bool) -> Result<(), CollectError> {
        self.device(0)?
            .set_confidential_compute_state(ready)
            .map_err(nvml_error("nvmlSystemSetConfComputeGpusReadyState", None))
    }

    fn driver_version(&self) -> Result<String, CollectError> {
        self.0
            .sys_driver_version()
            .map_err(nvml_error("nvmlSystemGetDriverVersion", None))
    }

    fn device_count(&self) -> Result<u32, CollectError> {
        self.0
            .device_count()
            .map_err(nvml_error("nvmlDeviceGetCount", None))
    }

    fn architecture(&self, index: u32) -> Result<String, CollectError> {
        use nvml_wrapper::enums::device::DeviceArchitecture;
        use nvml_wrapper::error::NvmlError;

        match self.device(index)?.architecture() {
            Ok(DeviceArchitecture::Hopper) => Ok("HOPPER".into()),
            Ok(DeviceArchitecture::Blackwell) => Ok("BLACKWELL".into()),
            Ok(other) => Ok(other.to_string().to_uppercase()),
            Err(NvmlError::UnexpectedVariant(n)) => Ok(format!("UNKNOWN({n})")),
            Err(e) => Err(nvml_error("nvmlDeviceGetArchitecture", Some(index))(e)),
        }
    }

    fn uuid(&self, index: u32) -> Result<String, CollectError> {
        self.device(index)?
            .uuid()
            .map_err(nvml_error("nvmlDeviceGetUUID", Some(index)))
    }

    fn vbios_version(&self, index: u32) -> Result<String, CollectError> {
        self.device(index)?
            .vbios_version()
            .map_err(nvml_error("nvmlDeviceGetVbiosVersion", Some(index)))
    }

    fn attestation_report(&self, index: u32, nonce: [u8; 32]) -> Result<SizedBuffer, CollectError> {
        let device = self.device(index)?;
        let report = Self::guarded(
            "nvmlDeviceGetConfComputeGpuAttestationReport",
            index,
            || device.confidential_compute_gpu_attestation_report(nonce),
        )?;
        Ok(SizedBuffer {
            size: report.attestation_report_size,
            bytes: report.attestation_report,
        })
    }

    fn attestation_cert_chain(&self, index: u32) -> Result<SizedBuffer, CollectError> {
        let device = self.device(index)?;
        let certs = Self::guarded("nvmlDeviceGetConfComputeGpuCertificate", index, || {
            device.confidential_compute_gpu_certificate()
        })?;
        Ok(SizedBuffer {
            size: certs.attestation_cert_chain_size,
            bytes: certs.attestation_cert_chain,
        })
    }
}

/// `nvmlSystemConfComputeSettings_v1_t` (nvml.h; nvml-wrapper-sys 0.10
/// `bindings.rs`): five `unsigned int`, `version` set by the caller.
#[repr(C)]
#[derive(Default)]
struct SettingsV1 {
    version: std::ffi::c_uint,
    environment: std::ffi::c_uint,
    cc_feature: std::ffi::c_uint,
    devtools_mode: std::ffi::c_uint,
    multi_gpu_mode: std::ffi::c_uint,
}

/// `NVML_STRUCT_VERSION(SystemConfComputeSettings, 1)`: size | 1 << 24.
const SETTINGS_V1_VERSION: std::ffi::c_uint = 0x0100_0014;
const _: () = assert!(std::mem::size_of::<SettingsV1>() == 0x14);

/// `nvmlSystemGetConfComputeSettings`, called through nvml-wrapper's symbol
/// table because the wrapper reads only single fields of it and never the
/// environment.
#[allow(unsafe_code)]
fn raw_settings(nvml: &nvml_wrapper::Nvml) -> Result<RawSettings, nvml_wrapper::error::NvmlError> {
    use nvml_wrapper::error::{nvml_sym, nvml_try};

    let sym = *nvml_sym(nvml.lib().nvmlSystemGetConfComputeSettings.as_ref())?;
    let mut settings = SettingsV1 {
        version: SETTINGS_V1_VERSION,
        ..SettingsV1::default()
    };
    // SAFETY: `sym` is `nvmlSystemGetConfComputeSettings` resolved from the
    // library that `nvml` loaded and initialised (the borrow of `nvml` keeps it
    // loaded and initialised for the call). Its one argument is a pointer to
    // `nvmlSystemConfComputeSettings_v1_t`; `SettingsV1` is `#[repr(C)]` with
    // the same five `c_uint` fields in the same order (size asserted above), it
    // is live, aligned and writable for the whole call, and its `version`
    // field tells NVML to write no more than that size. NVML keeps no pointer
    // after returning.
    let code = unsafe { sym(std::ptr::from_mut(&mut settings).cast()) };
    nvml_try(code)?;
    Ok(RawSettings {
        environment: settings.environment,
        cc_feature: settings.cc_feature,
        devtools_mode: settings.devtools_mode,
        multi_gpu_mode: settings.multi_gpu_mode,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct FakeGpu {
        arch: &'static str,
        report: SizedBuffer,
        chain: SizedBuffer,
    }

    /// NVML as a table: settings, ready state, GPUs, and a failure to inject.
    struct FakeNvml {
        settings: RawSettings,
        ready: Mutex<bool>,
        set_calls: Mutex<Vec<bool>>,
        gpus: Mutex<Vec<FakeGpu>>,
        fail_uuid_of: Option<u32>,
    }

    const PROD_CC: RawSettings = RawSettings {
        environment: 2,
        cc_feature: 1,
        devtools_mode: 0,
        multi_gpu_mode: 0,
    };

    /// A full NVML report buffer: SPDM request (nonce at 4..36), response,
    /// then filler past `size` that must not be returned.
    fn report_buffer(nonce: &[u8; 32], size: u32) -> SizedBuffer {
        let mut bytes = vec![0xEE; REPORT_MAX];
        bytes[..4].copy_from_slice(&[0x11, 0xE0, 0x00, 0x00]);
        bytes[4..36].copy_from_slice(nonce);
        bytes[36] = 0;
        for b in &mut bytes[37..size as usize] {
            *b = 0x42;
        }
        SizedBuffer { size, bytes }
    }

    fn chain_buffer(size: u32) -> SizedBuffer {
        let mut bytes = vec![0u8; CERT_CHAIN_MAX];
        for b in &mut bytes[..size as usize] {
            *b = b'P';
        }
        SizedBuffer { size, bytes }
    }

    impl FakeNvml {
        fn new(settings: RawSettings, nonce: &[u8; 32], gpus: usize) -> Arc<Self> {
            let gpus = (0..gpus)
                .map(|i| FakeGpu {
                    arch: if i == 0 { "HOPPER" } else { "BLACKWELL" },
                    report: report_buffer(nonce, 0x500 + u32::try_from(i).unwrap()),
                    chain: chain_buffer(0x900),
                })
                .collect();
            Arc::new(Self {
                settings,
                ready: Mutex::new(false),
                set_calls: Mutex::new(Vec::new()),
                gpus: Mutex::new(gpus),
                fail_uuid_of: None,
            })
        }

        fn gpu<T>(&self, index: u32, f: impl FnOnce(&FakeGpu) -> T) -> Result<T, CollectError> {
            self.gpus
                .lock()
                .unwrap()
                .get(index as usize)
                .map(f)
                .ok_or(CollectError::Nvml {
                    call: "nvmlDeviceGetHandleByIndex",
                    device: Some(index),
                    message: "Invalid Argument".into(),
                })
        }
    }

    impl NvmlApi for FakeNvml {
        fn settings(&self) -> Result<RawSettings, CollectError> {
            Ok(self.settings)
        }
        fn ready_state(&self) -> Result<bool, CollectError> {
            Ok(*self.ready.lock().unwrap())
        }
        fn set_ready_state(&self, ready: bool) -> Result<(), CollectError> {
            self.set_calls.lock().unwrap().push(ready);
            *self.ready.lock().unwrap() = ready;
            Ok(())
        }
        fn driver_version(&self) -> Result<String, CollectError> {
            Ok("550.54.15".into())
        }
        fn device_count(&self) -> Result<u32, CollectError> {
            Ok(u32::try_from(self.gpus.lock().unwrap().len()).unwrap())
        }
        fn architecture(&self, index: u32) -> Result<String, CollectError> {
            self.gpu(index, |g| g.arch.to_string())
        }
        fn uuid(&self, index: u32) -> Result<String, CollectError> {
            if self.fail_uuid_of == Some(index) {
                return Err(CollectError::Nvml {
                    call: "nvmlDeviceGetUUID",
                    device: Some(index),
                    message: "GPU is lost".into(),
                });
            }
            Ok(format!("GPU-0000000{index}-fake"))
        }
        fn vbios_version(&self, index: u32) -> Result<String, CollectError> {
            Ok(format!("96.00.5E.00.0{index}"))
        }
        fn attestation_report(
            &self,
            index: u32,
            _nonce: [u8; 32],
        ) -> Result<SizedBuffer, CollectError> {
            self.gpu(index, |g| g.report.clone())
        }
        fn attestation_cert_chain(&self, index: u32) -> Result<SizedBuffer, CollectError> {
            self.gpu(index, |g| g.chain.clone())
        }
    }

    const NONCE: [u8; 32] = [0x93; 32];

    #[test]
    fn collects_every_gpu_truncated_to_reported_sizes() {
        let fake = FakeNvml::new(PROD_CC, &NONCE, 2);
        let c = NvmlCollector::from_api(fake.clone());
        let gpus = c.collect(&NONCE).unwrap();
        assert_eq!(gpus.len(), 2);
        for (i, g) in gpus.iter().enumerate() {
            assert_eq!(g.index, u32::try_from(i).unwrap());
            assert_eq!(g.report.len(), 0x500 + i);
            assert!(!g.report.contains(&0xEE), "filler past size leaked");
            assert_eq!(&g.report[4..36], &NONCE);
            assert_eq!(g.cert_chain_pem.len(), 0x900);
            assert_eq!(g.driver_version, "550.54.15");
            assert_eq!(g.cc.environment, CcEnvironment::PROD);
            assert!(g.cc.cc_feature && !g.cc.devtools_mode && !g.cc.ready);
        }
        assert_eq!(gpus[0].arch, "HOPPER");
        assert_eq!(gpus[1].arch, "BLACKWELL");
        assert_eq!(gpus[1].uuid, "GPU-00000001-fake");
        let json = serde_json::to_value(&gpus[0]).unwrap();
        assert_eq!(json["arch"], "HOPPER");
        assert_eq!(json["cc"]["environment"], "PROD");
        assert!(json["report"].as_str().unwrap().starts_with("EeAAAJOT"));
        // Collection never touches the ready state.
        assert!(fake.set_calls.lock().unwrap().is_empty());
    }

    #[test]
    fn ready_only_after_full_collection_and_only_on_request() {
        let fake = FakeNvml::new(PROD_CC, &NONCE, 2);
        let c = NvmlCollector::from_api(fake.clone());
        assert!(matches!(
            c.set_ready(true),
            Err(CollectError::ReadyBeforeCollect)
        ));
        assert!(fake.set_calls.lock().unwrap().is_empty());
        c.set_ready(false).unwrap();
        c.collect(&NONCE).unwrap();
        c.set_ready(true).unwrap();
        assert_eq!(*fake.set_calls.lock().unwrap(), vec![false, true]);
        assert!(c.cc_state().unwrap().ready);

        // A later collection that fails on the second GPU withdraws the permission.
        fake.gpus.lock().unwrap()[1].report.size = 0;
        assert!(c.collect(&NONCE).is_err());
        assert!(matches!(
            c.set_ready(true),
            Err(CollectError::ReadyBeforeCollect)
        ));
        assert!(format!("{c:?}").contains("collected_all"));
    }

    #[test]
    fn cc_off_is_refused_but_devtools_and_sim_are_reported() {
        let off = RawSettings {
            cc_feature: 0,
            ..PROD_CC
        };
        let c = NvmlCollector::from_api(FakeNvml::new(off, &NONCE, 1));
        let err = c.collect(&NONCE).unwrap_err();
        assert!(
            matches!(
                err,
                CollectError::CcOff {
                    cc_feature: false,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("enable CC mode"), "{err}");

        let ppcie = RawSettings {
            cc_feature: 0,
            multi_gpu_mode: 1,
            ..PROD_CC
        };
        let gpus = NvmlCollector::from_api(FakeNvml::new(ppcie, &NONCE, 1))
            .collect(&NONCE)
            .unwrap();
        assert_eq!(gpus[0].cc.multi_gpu_mode, MultiGpuMode::PROTECTED_PCIE);

        let devtools_sim = RawSettings {
            environment: 1,
            devtools_mode: 1,
            ..PROD_CC
        };
        let gpus = NvmlCollector::from_api(FakeNvml::new(devtools_sim, &NONCE, 1))
            .collect(&NONCE)
            .unwrap();
        assert!(gpus[0].cc.devtools_mode);
        assert_eq!(gpus[0].cc.environment, CcEnvironment::SIM);
        assert!(matches!(
            gpus[0].cc.require_production(),
            Err(CollectError::DevtoolsOn)
        ));
    }

    #[test]
    fn no_gpu() {
        let c = NvmlCollector::from_api(FakeNvml::new(PROD_CC, &NONCE, 0));
        assert!(matches!(c.collect(&NONCE), Err(CollectError::NoGpu)));
        assert_eq!(c.device_count().unwrap(), 0);
    }

    #[test]
    fn bad_sizes_are_refused() {
        let cases: [(u32, usize, &str); 3] = [
            (0, REPORT_MAX, "outside"),
            (0x2001, REPORT_MAX, "outside"),
            (0x600, 0x100, "fewer"),
        ];
        for (size, len, reason) in cases {
            let fake = FakeNvml::new(PROD_CC, &NONCE, 1);
            {
                let mut gpus = fake.gpus.lock().unwrap();
                gpus[0].report.size = size;
                gpus[0].report.bytes.truncate(len);
            }
            let err = NvmlCollector::from_api(fake).collect(&NONCE).unwrap_err();
            assert!(
                matches!(&err, CollectError::Invalid { interface: "NVML", reason: r, .. } if r.contains(reason)),
                "{err}"
            );
        }
        let fake = FakeNvml::new(PROD_CC, &NONCE, 1);
        fake.gpus.lock().unwrap()[0].chain.size = 0x1401;
        let err = NvmlCollector::from_api(fake).collect(&NONCE).unwrap_err();
        assert!(err.to_string().contains("certificate chain"), "{err}");
    }

    #[test]
    fn report_without_our_nonce_is_refused() {
        let fake = FakeNvml::new(PROD_CC, &[0x11; 32], 2);
        let err = NvmlCollector::from_api(fake).collect(&NONCE).unwrap_err();
        assert!(
            matches!(err, CollectError::GpuNonceMismatch { index: 0 }),
            "{err}"
        );
        // Too short to hold a nonce at all.
        let fake = FakeNvml::new(PROD_CC, &NONCE, 1);
        fake.gpus.lock().unwrap()[0].report.size = 10;
        let err = NvmlCollector::from_api(fake).collect(&NONCE).unwrap_err();
        assert!(
            matches!(err, CollectError::GpuNonceMismatch { index: 0 }),
            "{err}"
        );
    }

    #[test]
    fn nvml_errors_name_call_and_device() {
        let mut fake = FakeNvml::new(PROD_CC, &NONCE, 2);
        Arc::get_mut(&mut fake).unwrap().fail_uuid_of = Some(1);
        let c = NvmlCollector::from_api(fake);
        let err = c.collect(&NONCE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NVML nvmlDeviceGetUUID (GPU 1): GPU is lost"
        );
    }

    #[test]
    fn sized_keeps_exactly_the_reported_bytes() {
        let got = sized(
            0,
            "x",
            SizedBuffer {
                size: 3,
                bytes: vec![1, 2, 3, 4],
            },
            4,
        )
        .unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    }

    #[test]
    fn missing_library_is_absent_with_reason() {
        let lib = Path::new("/nonexistent/libnvidia-ml.so.1");
        let (probe, count, cc) = probe(lib);
        assert!(!probe.present);
        assert_eq!(probe.name, "nvml");
        assert!(
            probe.detail.contains("/nonexistent/libnvidia-ml.so.1"),
            "{probe}"
        );
        assert_eq!((count, cc), (None, None));
        let err = NvmlCollector::init_with_library(lib).unwrap_err();
        assert!(
            matches!(
                err,
                CollectError::Nvml {
                    call: "nvmlInit_v2",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn settings_struct_version() {
        assert_eq!(
            SETTINGS_V1_VERSION as usize,
            std::mem::size_of::<SettingsV1>() | 1 << 24
        );
    }
}
