//! Sealed-file throughput: `seal` and `open` in MB/s over 64 MiB, against
//! memcpy and single-core SHA-256 over the same bytes, as ratios measured in
//! one run (the agent hashes every byte it decrypts, so `open` next to
//! SHA-256 says what sealing adds to a model load).
//!
//! Run: `cargo bench -p attestor --bench sealed` (or, unoptimised for this
//! file but with optimised dependencies, `cargo test -p attestor --bench sealed`).

// A benchmark binary: panicking on a broken setup is the right report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::time::Instant;

use attestor::sealed::{SealKey, open, seal};
use sha2::{Digest as _, Sha256};

const LEN: usize = 64 << 20;
const ROUNDS: usize = 3;

/// Best of `ROUNDS` runs, in MB/s over `LEN` bytes.
fn rate(mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    LEN as f64 / best / 1e6
}

fn main() {
    let data: Vec<u8> = (0..LEN).map(|i| (i * 131 % 251) as u8).collect();
    let key = SealKey::generate();
    let sealed = seal(&data, &key, "model.gguf");
    assert_eq!(open(&sealed, &key).unwrap(), data);

    let memcpy = rate(|| {
        black_box(black_box(&data).clone());
    });
    let sha = rate(|| {
        black_box(Sha256::digest(black_box(&data)));
    });
    let seal_rate = rate(|| {
        black_box(seal(black_box(&data), &key, "model.gguf"));
    });
    let open_rate = rate(|| {
        black_box(open(black_box(&sealed), &key).unwrap());
    });
    println!("sealed: {} MiB, best of {ROUNDS}", LEN >> 20);
    println!("  clone    {memcpy:>8.0} MB/s  (allocate + memcpy)");
    println!("  sha256   {sha:>8.0} MB/s");
    println!(
        "  seal     {seal_rate:>8.0} MB/s  ({:.2}x sha256)",
        seal_rate / sha
    );
    println!(
        "  open     {open_rate:>8.0} MB/s  ({:.2}x sha256, {:.2}x clone)",
        open_rate / sha,
        open_rate / memcpy
    );
    let both = 1.0 / (1.0 / open_rate + 1.0 / sha);
    println!(
        "  open+sha {both:>8.0} MB/s  (a sealed load against a plain one: {:.2}x the hashing time)",
        sha / both
    );
}
