//! A whole simulated environment's evidence: SEV-SNP or TDX plus an H100,
//! bound to one `runtime_data` exactly as real collectors would bind it.
//!
//! The GPU report carries `runtime_data`'s GPU nonce; the CPU report carries the
//! report_data computed over the GPU evidence string. Every output is labelled
//! simulated and signed only by the simulator's roots, which no production
//! trust store contains.

use crate::binding::{self, RuntimeData};
use crate::evidence::{EvidenceBundle, PrimaryEvidence, SnpEvidence, TdxEvidence, Tee};
use crate::nvidia::evidence::GpuEvidenceList;
use crate::nvidia::simulate as gpu_sim;
use crate::sim::{SimError, SimSeed};
use crate::snp::simulate as snp_sim;
use crate::tdx::simulate as tdx_sim;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    pub tee: Tee,
    /// SNP product (ignored for TDX).
    pub snp_product: crate::snp::certs::Product,
    /// Number of simulated H100s (0 or more).
    pub gpus: usize,
    /// Applied to the SNP report before signing (e.g. to set the debug bit).
    pub snp_params: Option<fn(&mut snp_sim::SnpSimParams)>,
    /// Applied to each GPU's parameters before signing (e.g. measurement overrides).
    pub gpu_params: Option<fn(&mut gpu_sim::GpuSimParams)>,
    /// Time the TDX collateral is issued at (Unix seconds).
    pub now_unix: u64,
    /// The NVML confidential-computing mode each GPU entry reports
    /// (`cc_mode`: "on", "devtools", "off"), as the collector records it;
    /// `None` leaves it out. Like on real hardware, this value is not signed.
    pub gpu_cc_mode: Option<String>,
}

impl EnvironmentSpec {
    /// SNP (Milan) with one H100.
    pub fn snp_h100(now_unix: u64) -> Self {
        Self {
            tee: Tee::Snp,
            snp_product: crate::snp::certs::Product::Milan,
            gpus: 1,
            snp_params: None,
            gpu_params: None,
            now_unix,
            gpu_cc_mode: Some("on".to_owned()),
        }
    }

    /// TDX with one H100.
    pub fn tdx_h100(now_unix: u64) -> Self {
        Self {
            tee: Tee::Tdx,
            ..Self::snp_h100(now_unix)
        }
    }
}

/// A simulated environment's bundle and what a verifier needs to trust it.
#[derive(Debug, Clone)]
pub struct SimulatedEnvironment {
    pub bundle: EvidenceBundle,
    /// For SNP: the VCEK (also inside the cert table).
    pub vcek_der: Option<Vec<u8>>,
    /// For TDX: the dcap-qvl-shaped collateral JSON.
    pub tdx_collateral_json: Option<String>,
}

/// Collects simulated evidence for `runtime_data`, bound as real evidence is.
pub fn environment(
    seed: &SimSeed,
    spec: &EnvironmentSpec,
    runtime_data: RuntimeData,
) -> Result<SimulatedEnvironment, SimError> {
    let gpu_nonce = runtime_data.gpu_nonce();
    let mut entries = Vec::with_capacity(spec.gpus);
    for index in 0..spec.gpus {
        let mut params = gpu_sim::GpuSimParams::new(crate::nvidia::report::SpdmNonce::new(
            gpu_nonce.into_bytes(),
        ));
        if let Some(f) = spec.gpu_params {
            f(&mut params);
        }
        let gpu = gpu_sim::simulate(seed, &params)?;
        let mut entry = gpu.evidence_entry();
        entry.uuid = Some(format!("GPU-SIMULATED-{index:04}"));
        if let Some(mode) = &spec.gpu_cc_mode {
            entry.extra.insert(
                "cc_mode".to_owned(),
                serde_json::Value::String(mode.clone()),
            );
        }
        entries.push(entry);
    }
    let list = GpuEvidenceList::new(entries);
    let device_list = match list.to_kbs_json().get("device_evidence_list") {
        Some(serde_json::Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let additional_evidence = binding::nvidia_additional_evidence(&device_list);
    let report_data = runtime_data
        .cpu_report_data(&additional_evidence)
        .into_bytes();

    let (primary, vcek_der, tdx_collateral_json) = match spec.tee {
        Tee::Snp => {
            let mut params = snp_sim::SnpSimParams::new(
                spec.snp_product,
                crate::snp::report::ReportData::new(report_data),
            );
            if let Some(f) = spec.snp_params {
                f(&mut params);
            }
            let s = snp_sim::simulate(seed, &params)?;
            (
                PrimaryEvidence::Snp(SnpEvidence {
                    report: s.report,
                    cert_table: Some(s.cert_table),
                }),
                Some(s.vcek_der),
                None,
            )
        }
        Tee::Tdx => {
            let params =
                tdx_sim::TdxSimParams::new(crate::tdx::quote::TdReportData::new(report_data));
            let t = tdx_sim::simulate(seed, &params, spec.now_unix)?;
            (
                PrimaryEvidence::Tdx(TdxEvidence {
                    quote: t.quote,
                    cc_eventlog: None,
                }),
                None,
                Some(t.collateral_json),
            )
        }
    };
    Ok(SimulatedEnvironment {
        bundle: EvidenceBundle {
            runtime_data,
            primary,
            additional_evidence,
            simulated: true,
        },
        vcek_der,
        tdx_collateral_json,
    })
}

/// Signed RIMs (driver, then VBIOS) for the simulated H100's untampered
/// measurements, as the simulated NVIDIA RIM service would serve them: VBIOS
/// indices 0–12 except 7, the driver the rest, as on real Hopper RIMs.
pub fn gpu_rims(seed: &SimSeed) -> Result<Vec<String>, SimError> {
    use crate::nvidia::rim::RimKind;
    use crate::nvidia::rim::simulate::{SimRimSpec, simulate_rim};
    let defaults = gpu_sim::GpuSimParams::new(crate::nvidia::report::SpdmNonce::new([0; 32]));
    let mut driver = Vec::new();
    let mut vbios = Vec::new();
    for (block, value) in gpu_sim::golden_measurements(seed) {
        if value == [0; 48] || block == 0 {
            continue;
        }
        let index = block - 1;
        if index <= 12 && index != 7 {
            vbios.push((index, true, vec![value]));
        } else {
            driver.push((index, true, vec![value]));
        }
    }
    Ok(vec![
        simulate_rim(
            seed,
            &SimRimSpec::new(RimKind::Driver, &defaults.driver_version, driver),
        )?,
        simulate_rim(
            seed,
            &SimRimSpec::new(RimKind::Vbios, &defaults.vbios_version, vbios),
        )?,
    ])
}
