//! The verifier: judgment over evidence.
//!
//! - [`inspect`]: a reviewer's view inside any evidence file (no judgment).
//! - [`trust`]: vendor roots built in, simulator roots only on request.
//! - [`denial`]: stable reason codes with the offending values.
//! - [`time`]: time is always an explicit argument.
//! - [`collateral`]: vendor collateral fetched into, and read offline from, a directory.
//! - [`policy`]: Rego policies (regorus) over appraised claims: AR4SI vectors and release decisions.
//! - [`result`]: EAR attestation results (JWT, ES384).

pub mod appraise;
pub mod collateral;
//! - [`audit`]: the tamper-evident decision log and its reviewer CLI.
pub mod audit;
pub mod denial;
pub mod inspect;
pub mod policy;
pub mod result;
pub mod time;
pub mod trust;
