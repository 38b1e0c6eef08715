#![no_main]
//! Fuzz target: `attestor::fuzzing::sealed` (sealed model file header and
//! chunks: header round-trips, open never panics, seal/open round-trips).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestor::fuzzing::sealed(data));
