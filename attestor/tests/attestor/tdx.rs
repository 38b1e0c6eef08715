//! Golden and simulator tests for `attestor::tdx`.
