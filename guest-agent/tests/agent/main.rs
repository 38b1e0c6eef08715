//! The guest agent's one integration-test binary.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e;
mod infer;
mod kbs;
mod model;
mod sealed;
mod service;
mod stream;
