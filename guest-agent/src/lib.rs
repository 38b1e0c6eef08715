//! The guest agent: the workload that runs inside the confidential VM.
//!
//! It loads and hashes the model ([`model`]) and holds the attestation session
//! ([`session`]: in-memory keys, runtime data, evidence from hardware or the
//! marked simulator), and runs inference with candle over exactly the bytes that
//! were hashed ([`infer`]). [`agent`] signs one receipt per inference and
//! [`service`] serves it over gRPC; [`client`] calls it and checks what comes
//! back. With a verifier configured, [`kbs`]
//! attests the session through the key broker and [`ear`] checks the result
//! the agent's receipts then name.
//! The `guest-agent` binary is a thin command-line front end over this library.

pub mod agent;
pub mod client;
pub mod ear;
pub mod infer;
pub mod kbs;
pub mod model;
pub mod service;
pub mod session;
