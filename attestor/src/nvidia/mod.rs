//! NVIDIA GPU evidence (Hopper, Blackwell in CC mode): the SPDM
//! GET_MEASUREMENTS report, the device certificate chain, the JSON evidence
//! list, RIMs, collection through NVML, and the simulator.

pub mod certs;
pub mod collect;
pub mod evidence;
pub mod report;
pub mod rim;
pub mod simulate;
