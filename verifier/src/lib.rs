//! The verifier: appraisal, results, key broker and audit log.

pub mod inspect;
