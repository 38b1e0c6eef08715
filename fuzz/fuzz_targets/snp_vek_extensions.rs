#![no_main]
//! Fuzz target: `attestor::fuzzing::snp_vek_extensions` (parse; on success re-encode and compare).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestor::fuzzing::snp_vek_extensions(data));
