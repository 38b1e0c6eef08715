//! The verifier: judgment over evidence.
//!
//! - [`inspect`]: a reviewer's view inside any evidence file (no judgment).
//! - [`trust`]: vendor roots built in, simulator roots only on request.
//! - [`denial`]: stable reason codes with the offending values.
//! - [`time`]: time is always an explicit argument.
//! - [`audit`]: the tamper-evident decision log and its reviewer CLI.

pub mod appraise;
pub mod audit;
pub mod denial;
pub mod inspect;
pub mod time;
pub mod trust;
