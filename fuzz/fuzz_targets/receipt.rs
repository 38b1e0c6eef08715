#![no_main]
//! Fuzz target: `attestor::fuzzing::receipt` (parse compact JWS and claims; never panic).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestor::fuzzing::receipt(data));
