//! Appraisal throughput on one core, printed as rates and ratios measured side
//! by side in one run (`cargo bench -p verifier --bench appraise`).
//!
//! - warm: trust roots and collateral parsed once and certificate-chain
//!   signatures remembered (`x509::verify_issued_by`'s cache), as a
//!   long-running verifier holds them; the evidence signature, validity at
//!   `now`, binding and every other check still run on every appraisal.
//! - cold: roots (and TDX collateral) parsed from scratch and every chain
//!   signature verified again, for every appraisal.
//!
//! Goal (DESIGN.md §9): SNP + GPU warm ≥ 1,000 appraisals/s on one core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use verifier::appraise::{nvidia, snp, tdx, x509};
use verifier::time::UnixTime;
use verifier::trust::TrustRoots;

fn testdata(rel: &str) -> Vec<u8> {
    let dir = std::env::var_os("ATTESTOR_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    let path = dir.join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `f` repeatedly for about `budget`, returning operations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm caches and lazy statics
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let snp_report = testdata("snp/milan_virtee_v2_report.bin");
    let snp_vcek = testdata("snp/milan_virtee_v2_vcek.der");
    let snp_at = UnixTime::parse_rfc3339("2025-09-01T00:00:00Z").unwrap();
    let gpu_report = testdata("nvidia/h100_nvtrust_550_report.bin");
    let gpu_chain = testdata("nvidia/h100_nvtrust_550_chain.pem");
    let gpu_at = UnixTime::parse_rfc3339("2025-01-01T00:00:00Z").unwrap();
    let tdx_quote = testdata("tdx/b0c06f_dcapqvl_v4_quote.bin");
    let tdx_collateral_bytes = testdata("tdx/b0c06f_dcapqvl_collateral.json");
    let tdx_at = UnixTime::parse_rfc3339("2025-07-01T00:00:00Z").unwrap();

    let roots = TrustRoots::vendor().unwrap();
    let tdx_collateral = tdx::TdxCollateral::from_json(&tdx_collateral_bytes).unwrap();

    let snp_once = |roots: &TrustRoots| {
        let ev = snp::SnpEvidence {
            report: &snp_report,
            vek_der: Some(&snp_vcek),
            cert_table: None,
            expected_report_data: None,
        };
        snp::appraise(&ev, roots, &snp::SnpCollateral::default(), snp_at).unwrap()
    };
    let gpu_once = |roots: &TrustRoots| {
        let ev = nvidia::GpuEvidence {
            report: &gpu_report,
            chain_pem: &gpu_chain,
            expected_nonce: None,
        };
        nvidia::appraise(&ev, roots, &nvidia::GpuCollateral::default(), gpu_at).unwrap()
    };
    let tdx_once = |roots: &TrustRoots, c: &tdx::TdxCollateral| {
        let ev = tdx::TdxEvidence {
            quote: &tdx_quote,
            cc_eventlog: None,
            expected_report_data: None,
        };
        tdx::appraise(&ev, roots, Some(c), tdx_at).unwrap()
    };

    let snp_warm = rate(budget, || {
        black_box(snp_once(&roots));
    });
    let snp_cold = rate(budget, || {
        x509::clear_verification_cache();
        black_box(snp_once(&TrustRoots::vendor().unwrap()));
    });
    let gpu_warm = rate(budget, || {
        black_box(gpu_once(&roots));
    });
    let gpu_cold = rate(budget, || {
        x509::clear_verification_cache();
        black_box(gpu_once(&TrustRoots::vendor().unwrap()));
    });
    let both_warm = rate(budget, || {
        black_box(snp_once(&roots));
        black_box(gpu_once(&roots));
    });
    let tdx_warm = rate(budget, || {
        black_box(tdx_once(&roots, &tdx_collateral));
    });
    let tdx_cold = rate(budget, || {
        x509::clear_verification_cache();
        let c = tdx::TdxCollateral::from_json(&tdx_collateral_bytes).unwrap();
        black_box(tdx_once(&TrustRoots::vendor().unwrap(), &c));
    });

    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "appraisals per second on one core ({profile} build, {} ms per measurement)",
        budget.as_millis()
    );
    println!(
        "{:<10} {:>12} {:>12} {:>12}",
        "kind", "warm/s", "cold/s", "warm/cold"
    );
    for (kind, warm, cold) in [
        ("snp", snp_warm, snp_cold),
        ("gpu", gpu_warm, gpu_cold),
        ("tdx", tdx_warm, tdx_cold),
    ] {
        println!(
            "{kind:<10} {warm:>12.1} {cold:>12.1} {:>11.2}x",
            warm / cold
        );
    }
    println!(
        "snp+gpu    {both_warm:>12.1} (goal >= 1000/s: {:.2}x of goal)",
        both_warm / 1000.0
    );
}
