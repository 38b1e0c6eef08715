//! The guest agent: the workload that runs inside the confidential VM.
//!
//! It loads and hashes the model ([`model`]), and (in later modules) runs
//! inference, holds the session keys and signs a receipt for every inference.
//! The `guest-agent` binary is a thin command-line front end over this library.

pub mod model;
