//! The verifier: judgment over evidence.
//!
//! - [`check`]: the `verifier check` command (one piece of evidence, offline).
//! - [`appraise`]: cryptographic appraisal per evidence kind (SNP, TDX, NVIDIA GPU, RIMs).
//! - [`collateral`]: vendor collateral fetched into, and read offline from, a directory.
//! - [`policy`]: Rego policies (regorus) over appraised claims: AR4SI vectors and release decisions.
//! - [`result`]: EAR attestation results (JWT, ES384).
//! - [`serve`]: `verifier serve`, the key broker wired to the pipeline, policy, store and audit log.
//! - [`admin`]: the authenticated admin API and CLI (resources, policies, reference values).
//! - [`config`]: `verifier serve --config FILE` (TOML).
//! - [`audit`]: the tamper-evident decision log and its reviewer CLI.
//! - [`broker`]: the key broker, Trustee's KBS protocol over HTTP.
//! - [`grpc`]: the `attestor.v1.Verifier` gRPC service, on the broker's port.
//! - [`jwe`]: JWE (ECDH-ES+A256KW, A256GCM) to a TEE key, as the KBS releases secrets
//!   (re-exported from `attestor::jwe`, which the guest agent shares).
//! - [`inspect`]: a reviewer's view inside any evidence file (no judgment).
//! - [`trust`]: vendor roots built in, simulator roots only on request.
//! - [`denial`]: stable reason codes with the offending values.
//! - [`time`]: time is always an explicit argument.

pub mod admin;
pub mod appraise;
pub mod audit;
pub mod broker;
pub mod check;
pub mod collateral;
pub mod config;
pub mod denial;
pub mod grpc;
pub mod inspect;
pub use attestor::jwe;
pub mod policy;
pub mod result;
pub mod serve;
pub mod time;
pub mod trust;
