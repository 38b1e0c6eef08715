//! The verifier: judgment over evidence.
//!
//! - [`inspect`]: a reviewer's view inside any evidence file (no judgment).
//! - [`trust`]: vendor roots built in, simulator roots only on request.
//! - [`denial`]: stable reason codes with the offending values.
//! - [`time`]: time is always an explicit argument.
//! - [`collateral`]: vendor collateral fetched into, and read offline from, a directory.

pub mod appraise;
pub mod collateral;
pub mod denial;
pub mod inspect;
pub mod time;
pub mod trust;
