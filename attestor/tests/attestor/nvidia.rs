//! Golden and simulator tests for `attestor::nvidia`.
