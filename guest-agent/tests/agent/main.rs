//! The guest agent's one integration-test binary.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod infer;
mod model;
mod service;
mod stream;
