//! The attestor's one integration-test binary: golden files from
//! `../shared/testdata`, simulator round-trips, and the fuzz bodies run on
//! stable over deterministic truncations and bit flips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod environment;
mod fuzz_bodies;
mod nvidia;
mod nvidia_rim;
mod receipt;
mod snp;
mod tdx;

use std::path::PathBuf;

/// `../shared/testdata` beside the repository (override with `ATTESTOR_TESTDATA`).
pub fn testdata_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ATTESTOR_TESTDATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

/// Reads a file below the testdata folder; panics with the path when missing.
pub fn testdata(rel: &str) -> Vec<u8> {
    let path = testdata_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
