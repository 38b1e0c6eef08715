//! `verifier check …`: exit 0 accepted, 1 denied with every reason, 2 bad input.

use std::ffi::OsStr;

use crate::{testdata_dir, verifier};

fn check(args: &[&str]) -> (i32, String, String) {
    let dir = testdata_dir();
    let owned: Vec<std::ffi::OsString> = args
        .iter()
        .map(|a| {
            if a.contains('/') && !a.starts_with("--") {
                dir.join(a).into_os_string()
            } else {
                OsStr::new(a).to_os_string()
            }
        })
        .collect();
    let mut all = vec![OsStr::new("check")];
    all.extend(owned.iter().map(|s| s.as_os_str()));
    verifier(&all)
}

#[test]
fn genuine_evidence_is_accepted() {
    let cases: &[&[&str]] = &[
        &[
            "snp",
            "snp/milan_virtee_v2_report.bin",
            "--cert",
            "snp/milan_virtee_v2_vcek.der",
            "--at",
            "2025-09-01T00:00:00Z",
        ],
        &[
            "snp",
            "snp/turin_oak_v5_report.bin",
            "--cert",
            "snp/turin_oak_v5_vcek.der",
            "--at",
            "2025-09-01T00:00:00Z",
        ],
        &[
            "tdx",
            "tdx/b0c06f_dcapqvl_v4_quote.bin",
            "--collateral",
            "tdx/b0c06f_dcapqvl_collateral.json",
            "--at",
            "2025-07-01T00:00:00Z",
        ],
        &[
            "tdx",
            "tdx/90c06f_gotdx_v5_quote.bin",
            "--collateral",
            "tdx/collateral_tinfoil_2026-01",
            "--at",
            "2026-02-01T00:00:00Z",
        ],
        &[
            "gpu",
            "nvidia/h100_nvtrust_550_report.bin",
            "--chain",
            "nvidia/h100_nvtrust_550_chain.pem",
            "--at",
            "2025-01-01T00:00:00Z",
        ],
        &[
            "gpu",
            "nvidia/h100_nvat_590_evidence.json",
            "--at",
            "2025-01-01T00:00:00Z",
        ],
        &[
            "rim",
            "nvidia/rim_driver_gh100_550.144.03.xml",
            "--at",
            "2025-01-01T00:00:00Z",
        ],
    ];
    for args in cases {
        let (code, stdout, stderr) = check(args);
        assert_eq!(code, 0, "{args:?}\n{stdout}{stderr}");
        assert!(stdout.starts_with("ACCEPTED"), "{stdout}");
    }
}

#[test]
fn out_of_date_tcb_is_accepted_with_a_warning() {
    let (code, stdout, stderr) = check(&[
        "tdx",
        "tdx/00a06d08_trustee_v4_quote.bin",
        "--collateral",
        "tdx/collateral_tinfoil_2026-01",
        "--at",
        "2026-02-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("OutOfDate"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["claims"]["tcb"]["status"], "OutOfDate");
}

#[test]
fn negatives_exit_1_with_every_reason() {
    let (code, stdout, _) = check(&[
        "snp",
        "snp/milan_trustee_v2_report.bin",
        "--cert",
        "snp/neg_milan_trustee_vcek-invalid-new.der",
        "--at",
        "2025-09-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let codes: Vec<&str> = v["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for expected in [
        "signature_invalid",
        "cert_signature_invalid",
        "tcb_mismatch",
        "chip_id_mismatch",
    ] {
        assert!(
            codes.contains(&expected),
            "{expected} missing from {codes:?}"
        );
    }
    let (code, stdout, _) = check(&[
        "gpu",
        "nvidia/neg_h100_invalid_signature_report.bin",
        "--chain",
        "nvidia/h100_nvat_535_chain.pem",
        "--at",
        "2025-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("signature_invalid"), "{stdout}");
    let (code, stdout, _) = check(&[
        "rim",
        "nvidia/neg_rim_driver_gh100_535.86.09_tampered.xml",
        "--at",
        "2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("rim_digest_mismatch"), "{stdout}");
    // Genuine, but checked after the VCEK expired.
    let (code, stdout, _) = check(&[
        "snp",
        "snp/milan_virtee_v2_report.bin",
        "--cert",
        "snp/milan_virtee_v2_vcek.der",
        "--at",
        "2031-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("cert_expired"), "{stdout}");
}

#[test]
fn bad_input_exits_2() {
    let (code, _, stderr) = check(&[
        "snp",
        "snp/milan_virtee_v2_report.bin",
        "--cert",
        "snp/milan_virtee_v2_vcek.der",
        "--at",
        "soon",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("RFC 3339"), "{stderr}");
    let (code, _, _) = check(&[
        "snp",
        "/nonexistent/report.bin",
        "--cert",
        "snp/milan_virtee_v2_vcek.der",
    ]);
    assert_eq!(code, 2);
    // A truncated report is malformed evidence: bad input.
    let tmp = std::env::temp_dir().join(format!("check-trunc-{}", std::process::id()));
    let bytes = std::fs::read(testdata_dir().join("snp/milan_virtee_v2_report.bin")).unwrap();
    std::fs::write(&tmp, &bytes[..1000]).unwrap();
    let tmp_s = tmp.display().to_string();
    let (code, _, _) = check(&["snp", &tmp_s, "--cert", "snp/milan_virtee_v2_vcek.der"]);
    assert_eq!(code, 2);
    std::fs::remove_file(&tmp).ok();
    let (code, _, _) = check(&["gpu", "nvidia/h100_nvtrust_550_report.bin", "--nonce", "zz"]);
    assert_eq!(code, 2);
}

#[test]
fn simulated_evidence_needs_the_simulated_roots() {
    let seed = attestor::sim::SimSeed::DEFAULT;
    let params = attestor::snp::simulate::SnpSimParams::new(
        attestor::snp::certs::Product::Milan,
        attestor::snp::report::ReportData::new([7; 64]),
    );
    let sim = attestor::snp::simulate::simulate(&seed, &params).unwrap();
    let dir = std::env::temp_dir().join(format!("check-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r.bin"), &sim.report).unwrap();
    std::fs::write(dir.join("vcek.der"), &sim.vcek_der).unwrap();
    let r = dir.join("r.bin").display().to_string();
    let c = dir.join("vcek.der").display().to_string();
    let (code, stdout, _) = check(&["snp", &r, "--cert", &c, "--json"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("chain_untrusted"), "{stdout}");
    let (code, stdout, stderr) = check(&["snp", &r, "--cert", &c, "--danger-simulated-roots"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("SIMULATED roots"), "{stdout}");
    assert!(stderr.contains("WARNING"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
