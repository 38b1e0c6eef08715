//! Golden and simulator tests for `attestor::snp`.
