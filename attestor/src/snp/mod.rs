//! AMD SEV-SNP evidence: the attestation report, the GHCB certificate table,
//! collection in the guest, and the simulator.

pub mod certs;
pub mod collect;
pub mod report;
pub mod simulate;
