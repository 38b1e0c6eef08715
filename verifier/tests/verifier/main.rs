//! The verifier's one integration-test binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod appraise_gpu;
mod appraise_snp;
mod appraise_tdx;
mod audit;
mod broker;
mod check_cli;
mod collateral;
mod grpc;
mod inspect_cli;
mod jwe;
mod kbs_e2e;
mod pipeline;
mod policy;

use std::path::PathBuf;

/// `../shared/testdata` beside the repository (override with `ATTESTOR_TESTDATA`).
pub fn testdata_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ATTESTOR_TESTDATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

/// Every file below the testdata folder except the MANIFEST, sorted.
pub fn all_testdata_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![testdata_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_none_or(|e| e != "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Runs the verifier binary; returns (exit code, stdout, stderr).
pub fn verifier(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verifier"))
        .args(args)
        .output()
        .expect("running verifier");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
