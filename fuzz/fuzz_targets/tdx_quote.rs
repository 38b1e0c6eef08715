#![no_main]
//! Fuzz target: `attestor::fuzzing::tdx_quote` (parse; on success re-encode and compare).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestor::fuzzing::tdx_quote(data));
