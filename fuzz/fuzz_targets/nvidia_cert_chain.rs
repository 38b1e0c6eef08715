#![no_main]
//! Fuzz target: `attestor::fuzzing::nvidia_cert_chain` (parse; on success re-encode and compare).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestor::fuzzing::nvidia_cert_chain(data));
