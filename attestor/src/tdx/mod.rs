//! Intel TDX evidence: the DCAP quote (v4, v5), collection in the guest, and
//! the simulator with its collateral.

pub mod certs;
pub mod collect;
pub mod quote;
pub mod simulate;
