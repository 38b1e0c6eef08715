//! `verifier inspect` over every real capture, and its refusals.

use std::ffi::OsStr;

use crate::{all_testdata_files, testdata_dir, verifier};

#[test]
fn inspects_every_testdata_file_with_the_expected_kind() {
    let files = all_testdata_files();
    assert!(
        files.len() >= 50,
        "expected the shared testdata, found {} files",
        files.len()
    );
    for path in files {
        let (code, stdout, stderr) = verifier(&[OsStr::new("inspect"), path.as_os_str()]);
        assert_eq!(code, 0, "{}: exit {code}\n{stderr}", path.display());
        let out: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let parent = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let expected = expected_kind(&parent, &name);
        assert_eq!(out["kind"], expected, "{}", path.display());
    }
}

/// What each testdata file is, from its name (see the MANIFEST).
fn expected_kind(dir: &str, name: &str) -> &'static str {
    if name.ends_with(".swidtag") || name.ends_with(".xml") {
        "rim"
    } else if name.ends_with(".json") && name.contains("evidence") {
        "gpu"
    } else if name.ends_with(".json") {
        "collateral"
    } else if name.contains("crl") && name.ends_with(".der") {
        "crl"
    } else if name.ends_with(".pem") || name.ends_with(".der") {
        "cert"
    } else if dir == "snp" {
        "snp"
    } else if dir == "tdx" {
        "tdx"
    } else if dir == "nvidia" {
        "gpu"
    } else {
        panic!("no expectation for {dir}/{name}")
    }
}

#[test]
fn pinned_fields_show_in_the_output() {
    let dir = testdata_dir();
    let (code, stdout, _) = verifier(&[
        OsStr::new("inspect"),
        dir.join("snp/milan_virtee_v2_report.bin").as_os_str(),
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("d447b55d197491bfe15cf298f9de9986"),
        "report_data missing:\n{stdout}"
    );
    let (code, stdout, _) = verifier(&[
        OsStr::new("inspect"),
        dir.join("nvidia/h100_nvtrust_550_report.bin").as_os_str(),
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("550.90.07"), "driver version missing");
    assert!(stdout.contains("96.00.9F.00.01"), "VBIOS version missing");
}

#[test]
fn truncated_evidence_exits_2_naming_the_field() {
    let tmp = std::env::temp_dir().join(format!("verifier-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let cases = [
        ("snp/milan_virtee_v2_report.bin", "snp", 600usize),
        ("tdx/b0c06f_dcapqvl_v4_quote.bin", "tdx", 700),
        ("nvidia/h100_nvtrust_550_report.bin", "gpu", 2000),
    ];
    for (rel, kind, keep) in cases {
        let bytes = std::fs::read(testdata_dir().join(rel)).unwrap();
        let cut = tmp.join(rel.replace('/', "_"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let (code, stdout, stderr) = verifier(&[
            OsStr::new("inspect"),
            cut.as_os_str(),
            OsStr::new("--kind"),
            OsStr::new(kind),
        ]);
        assert_eq!(code, 2, "{rel}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{rel}: printed a result for bad input");
        assert!(
            stderr.contains("field") || stderr.contains("expected 1184 bytes"),
            "{rel}: error does not name the field: {stderr}"
        );
    }
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn unknown_bytes_and_missing_files_exit_2() {
    let tmp = std::env::temp_dir().join(format!("verifier-unknown-{}", std::process::id()));
    std::fs::write(&tmp, b"\x01\x02\x03 not evidence").unwrap();
    let (code, _, stderr) = verifier(&[OsStr::new("inspect"), tmp.as_os_str()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--kind"), "{stderr}");
    std::fs::remove_file(&tmp).ok();
    let (code, _, stderr) = verifier(&[OsStr::new("inspect"), OsStr::new("/nonexistent/file")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/file"), "{stderr}");
}
