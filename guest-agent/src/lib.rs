//! The guest agent: the workload that runs inside the confidential VM.
//!
//! It loads and hashes the model ([`model`]) and holds the attestation session
//! ([`session`]: in-memory keys, runtime data, evidence from hardware or the
//! marked simulator), and runs inference with candle over exactly the bytes that
//! were hashed ([`infer`]). Receipts come in a later module.
//! The `guest-agent` binary is a thin command-line front end over this library.

pub mod infer;
pub mod model;
pub mod session;
