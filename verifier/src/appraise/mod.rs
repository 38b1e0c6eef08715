//! Cryptographic appraisal, one module per evidence kind, one shape:
//! `appraise(evidence, roots, collateral, now) -> Result<Claims, Vec<Denial>>`.
//!
//! Appraisal refuses anything cryptographically wrong (signatures, chains,
//! validity, binding, reference-manifest mismatches) and otherwise reports
//! typed claims. It never applies site policy: genuine but unsafe evidence
//! (debug on, out-of-date TCB, GPU devtools mode) is a claim with a warning,
//! and Rego policies decide. Real and simulated evidence go through the same
//! code; only the roots differ, and the claims say which roots were used.

pub mod bundle;
pub mod nvidia;
pub mod ocsp;
pub mod rim;
pub mod snp;
pub mod tdx;
pub mod x509;
