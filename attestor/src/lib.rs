//! Evidence both sides share: the attestor library.
//!
//! - Wire formats, parsed from untrusted bytes with bounds-checked readers and
//!   serialized back byte-exact: AMD SEV-SNP reports ([`snp`]), Intel TDX DCAP
//!   quotes ([`tdx`]), NVIDIA SPDM GPU reports, certificate chains and RIMs
//!   ([`nvidia`]).
//! - The binding construction that ties a verifier nonce, the session keys and
//!   the model commitment into the CPU and GPU evidence ([`binding`]).
//! - The evidence bundle exchanged over the KBS protocol ([`evidence`]), and
//!   the JWE a key broker encrypts secrets with to a TEE key ([`jwe`]).
//! - Sealed files: model weights encrypted at rest under a broker-held key
//!   ([`sealed`]).
//! - Collectors for real hardware behind one trait ([`collect`]), and a
//!   simulator that produces the same formats signed by its own roots
//!   ([`sim`] and each kind's `simulate` module).
//!
//! This crate never decides whether evidence is acceptable: signature, chain,
//! TCB and policy checks belong to the verifier. It has no async runtime, no
//! gRPC and no inference.

pub mod binding;
pub mod bytes;
pub mod collect;
pub mod digest;
pub mod error;
pub mod evidence;
pub mod fuzzing;
pub mod hex;
pub mod jwe;
pub mod nvidia;
pub mod receipt;
pub mod sealed;
pub mod sim;
pub mod simulate;
pub mod snp;
pub mod tdx;
pub mod tsm;

pub use error::ParseError;
