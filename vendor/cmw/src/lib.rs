// Copyright 2025 Contributors to the Veraison project.
// SPDX-License-Identifier: Apache-2.0

//! Rust implementation of the RATS Conceptual Message Wrapper (CMW).

pub mod cfmap;
pub mod cmw;
pub mod collection;
pub mod indicator;
pub mod monad;
mod serde_support;
pub mod tn;
pub mod r#type;
pub mod utils;
pub mod value;
pub mod x509_ext;

pub use cmw::{Error, Kind, CMW};
pub use collection::Collection;
pub use indicator::Indicator;
pub use mime::Mime;
pub use monad::Monad;
pub use r#type::Type;
