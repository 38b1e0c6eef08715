//! The guest agent: the workload that runs inside the confidential VM.
//!
//! It loads and hashes the model ([`model`]) and holds the attestation session
//! ([`session`]: in-memory keys, runtime data, evidence from hardware or the
//! marked simulator). Inference and receipts come in later modules.
//! The `guest-agent` binary is a thin command-line front end over this library.

pub mod model;
pub mod session;
