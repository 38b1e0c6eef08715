//! The gRPC contract shared by the guest agent, the verifier and reviewers.
//!
//! Generated from `proto/attestor/v1/attestor.proto` at build time with protox,
//! so no system `protoc` is needed. This crate holds the contract only: no logic.

#![allow(unreachable_pub, clippy::all, clippy::pedantic)]

/// Version 1 of the contract.
pub mod v1 {
    tonic::include_proto!("attestor.v1");
}
