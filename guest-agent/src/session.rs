//! The agent's attestation session: keys held in memory only, the runtime
//! data that binds them, and evidence collected from hardware or, only when
//! explicitly asked for with `danger_simulate`, from the simulator.
//!
//! Keys never leave this process: there is no export of private keys and no
//! persistence. Evidence from the simulator is always labelled simulated.

use attestor::binding::RuntimeData;
use attestor::collect::{GpuCollector as _, HostPaths};
use attestor::evidence::{EvidenceBundle, PrimaryEvidence, SnpEvidence, TdxEvidence, Tee};
use attestor::jwe::{Curve, TeeSecretKey};
use attestor::nvidia::evidence::{GpuArch, GpuEvidenceEntry, GpuEvidenceList};
use attestor::receipt::ReceiptKey;
use attestor::sim::SimSeed;
use attestor::simulate::EnvironmentSpec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};

/// Where evidence comes from.
#[derive(Debug, Clone)]
pub enum EvidenceSource {
    /// The real kernel and driver interfaces (configfs-tsm, /dev/sev-guest, NVML).
    Hardware,
    /// The simulator: never trusted by a production verifier.
    DangerSimulate {
        tee: Tee,
        gpus: usize,
        seed: SimSeed,
    },
}

/// Why evidence could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("collecting CPU evidence: {0}")]
    Cpu(attestor::collect::CollectError),
    #[error("collecting GPU evidence: {0}")]
    Gpu(attestor::collect::CollectError),
    #[error("simulator: {0}")]
    Simulator(#[from] attestor::sim::SimError),
}

/// An attestation session: a TEE key (ECDH P-256, receives secrets) and a
/// receipt key (ECDSA P-384, signs receipts), generated fresh at start.
pub struct Session {
    tee_key: TeeSecretKey,
    receipt_key: ReceiptKey,
}

impl Session {
    /// Fresh keys from the operating system's CSPRNG.
    pub fn new() -> Self {
        Self {
            tee_key: TeeSecretKey::generate(Curve::P256),
            receipt_key: ReceiptKey::generate(),
        }
    }

    /// The TEE public key as a JWK, in the shape Trustee's clients send.
    pub fn tee_pubkey_jwk(&self) -> Value {
        self.tee_key.public_jwk()
    }

    /// The receipt public key as a JWK.
    pub fn receipt_key_jwk(&self) -> Value {
        self.receipt_key.public_jwk()
    }

    /// The receipt-signing key (stays in this process).
    pub fn receipt_key(&self) -> &ReceiptKey {
        &self.receipt_key
    }

    /// The TEE key, for decrypting secrets released to this session.
    pub fn tee_secret(&self) -> &TeeSecretKey {
        &self.tee_key
    }

    /// `runtime_data` for a verifier nonce, with both keys, the model
    /// commitment when one is loaded, and the agent build.
    pub fn runtime_data(&self, nonce: &str, model_commitment: Option<&str>) -> RuntimeData {
        let mut rd = RuntimeData::new(nonce, self.tee_pubkey_jwk())
            .with_receipt_key(self.receipt_key_jwk())
            .with_agent(agent_description());
        if let Some(m) = model_commitment {
            rd = rd.with_model(m);
        }
        rd
    }

    /// Collects evidence bound to `runtime_data` (DESIGN.md §3).
    pub fn collect(
        &self,
        runtime_data: RuntimeData,
        source: &EvidenceSource,
    ) -> Result<EvidenceBundle, SessionError> {
        match source {
            EvidenceSource::DangerSimulate { tee, gpus, seed } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut spec = match tee {
                    Tee::Snp => EnvironmentSpec::snp_h100(now),
                    Tee::Tdx => EnvironmentSpec::tdx_h100(now),
                };
                spec.gpus = *gpus;
                Ok(attestor::simulate::environment(seed, &spec, runtime_data)?.bundle)
            }
            EvidenceSource::Hardware => collect_hardware(runtime_data),
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh 32-byte nonce, base64, for when no verifier supplied one.
pub fn local_nonce() -> String {
    let mut n = [0u8; 32];
    OsRng.fill_bytes(&mut n);
    STANDARD.encode(n)
}

/// The agent build that goes into runtime_data.
pub fn agent_description() -> Value {
    json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")})
}

fn collect_hardware(runtime_data: RuntimeData) -> Result<EvidenceBundle, SessionError> {
    let paths = HostPaths::default();
    // GPUs first: their evidence string goes into the CPU report_data.
    let gpus = match attestor::collect::gpu_collector(&paths) {
        Ok(collector) => collector
            .collect(&runtime_data.gpu_nonce().0)
            .map_err(SessionError::Gpu)?,
        // No NVML: no GPU to attest; the policy decides whether that is acceptable.
        Err(_) => Vec::new(),
    };
    let entries: Vec<GpuEvidenceEntry> = gpus
        .into_iter()
        .map(|g| {
            // NVML's CC state, as collected (unauthenticated: the policy weighs it).
            let mode = if g.cc.devtools_mode {
                "devtools"
            } else if g.cc.cc_feature {
                "on"
            } else {
                "off"
            };
            let mut entry = GpuEvidenceEntry::new(
                GpuArch::from_name(&g.arch),
                Some(g.uuid),
                g.report,
                g.cert_chain_pem,
            );
            entry
                .extra
                .insert("cc_mode".into(), Value::String(mode.into()));
            entry
        })
        .collect();
    let additional_evidence = if entries.is_empty() {
        String::new()
    } else {
        let list = GpuEvidenceList::new(entries).to_kbs_json();
        match list.get("device_evidence_list") {
            Some(Value::Array(items)) => attestor::binding::nvidia_additional_evidence(items),
            _ => String::new(),
        }
    };
    let report_data = runtime_data.cpu_report_data(&additional_evidence);
    let cpu = attestor::collect::cpu_collector(&paths).map_err(SessionError::Cpu)?;
    let evidence = cpu.collect(&report_data.0).map_err(SessionError::Cpu)?;
    let primary = match evidence.kind {
        attestor::collect::CpuKind::Snp => PrimaryEvidence::Snp(SnpEvidence {
            report: evidence.report,
            cert_table: evidence.aux,
        }),
        attestor::collect::CpuKind::Tdx => PrimaryEvidence::Tdx(TdxEvidence {
            quote: evidence.report,
            cc_eventlog: None,
        }),
    };
    Ok(EvidenceBundle {
        runtime_data,
        primary,
        additional_evidence,
        simulated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_data_carries_both_public_keys_and_model() {
        let s = Session::new();
        let rd = s.runtime_data("bm9uY2U=", Some("sha256:ab"));
        assert_eq!(rd.tee_pubkey().unwrap()["crv"], "P-256");
        assert_eq!(rd.tee_pubkey().unwrap()["alg"], "ECDH-ES+A256KW");
        assert_eq!(rd.receipt_key().unwrap()["crv"], "P-384");
        assert!(
            rd.tee_pubkey().unwrap().get("d").is_none(),
            "private key leaked into runtime data"
        );
        assert!(
            rd.receipt_key().unwrap().get("d").is_none(),
            "private key leaked into runtime data"
        );
        assert_eq!(rd.model(), Some("sha256:ab"));
        assert_ne!(
            Session::new().tee_pubkey_jwk(),
            s.tee_pubkey_jwk(),
            "keys must be fresh per session"
        );
    }

    #[test]
    fn simulated_evidence_is_bound_and_labelled() {
        let s = Session::new();
        let rd = s.runtime_data(&local_nonce(), None);
        let source = EvidenceSource::DangerSimulate {
            tee: Tee::Snp,
            gpus: 1,
            seed: SimSeed::DEFAULT,
        };
        let bundle = s.collect(rd, &source).unwrap();
        assert!(bundle.simulated);
        let PrimaryEvidence::Snp(snp) = &bundle.primary else {
            panic!("not SNP")
        };
        let report = attestor::snp::report::Report::parse(&snp.report).unwrap();
        assert_eq!(report.report_data.0, bundle.expected_report_data().0);
    }

    #[test]
    fn hardware_collection_fails_clearly_without_a_tee() {
        // This machine (and CI) has no SEV-SNP or TDX guest interface.
        if attestor::collect::detect().cpu_kind().is_some() {
            return;
        }
        let s = Session::new();
        let Err(err) = s.collect(s.runtime_data("bm9uY2U=", None), &EvidenceSource::Hardware)
        else {
            panic!("no TEE here, so collection must fail");
        };
        assert!(err.to_string().contains("CPU"), "{err}");
    }
}
