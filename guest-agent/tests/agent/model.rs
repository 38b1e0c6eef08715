//! Model loading and hashing against the stock OpenSSF Model Signing tool.
//!
//! The pinned roots below were computed once with the stock Python tool
//! (`pip install model-signing`, version 1.1.1, Python 3.11), default hashing
//! configuration (files, sha256, git paths ignored, no symlinks):
//!
//! ```python
//! from google.protobuf import json_format
//! from model_signing import hashing
//! from model_signing._signing import signing
//! m = hashing.Config().hash(PATH)
//! st = json_format.MessageToDict(signing.Payload(m).statement.pb)
//! print(st["subject"][0]["digest"]["sha256"])
//! ```
//!
//! over a folder written by a Python mirror of [`write_sample_model`] (same
//! paths, same bytes).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use attestor::digest::Sha256Digest;
use guest_agent::model::{
    HashOptions, ModelError, Progress, load_and_hash, load_and_hash_with, safetensors,
};

/// OMS root of [`write_sample_model`]'s folder, from the stock tool.
const SAMPLE_ROOT: &str = "25a08d7110813de6abc30ac2f0afa91771c0d645cf230cd9f15cef09b36aba2e";

/// The stock tool's resources for the sample folder, in its order.
const SAMPLE_RESOURCES: [(&str, &str); 13] = [
    (
        ".gitmodules",
        "0a22610dd2267c8feeff26420a4ceba4fe29a72e7a85ab0f697a4adb9ae79343",
    ),
    (
        ".hidden",
        "e084a3683ef795d1cdbf5e9b253f2ca1f783ae0d0d6e47e419acbbc4fc80bbfa",
    ),
    (
        "B.txt",
        "e83189db38554920ea572093f9ad32facf682f28ccecdac085c1511735a2b492",
    ),
    (
        "a/a",
        "961b6dd3ede3cb8ecbaacbd68de040cd78eb2ed5889130cceb4c49268ea4d506",
    ),
    (
        "a/b",
        "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603",
    ),
    (
        "a-c",
        "7fe92d8d9b7e1bf2956c743a8fa2e3c73a5780dadff19f5afa7a82341e9c252e",
    ),
    (
        "a.b",
        "2e7336dc8eba87ef472df568c35482abf2575dc3e5eac0c5c62b8ffaeac2c934",
    ),
    (
        "config.json",
        "6102b7b977af452ba2973005c4d51e7c9cf9b788557fcf7dab3585b98cda16fe",
    ),
    (
        "empty.txt",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
    (
        "model.safetensors",
        "4a779e100568054e3e39e80ada89f099172698967c44c92de98b25577a538138",
    ),
    (
        "nested/.gitignore",
        "cd626bd30aa3875cc7c01d50050e4f88e84d4691457209871f27494ffd5f4ab4",
    ),
    (
        "nested/deeper/weights.bin",
        "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9",
    ),
    (
        "\u{fc}nicode/\u{df}.txt",
        "deb977d13f28616a46dddb9bb1651cb3930dd570325522492408580522f75dfa",
    ),
];

/// OMS root of a single file holding `hello` (resource name "."), from the stock tool.
const HELLO_ROOT: &str = "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50";

/// OMS roots of the reference model folders made by `scripts/fetch-models`, from the stock tool.
const SMOLLM2_ROOT: &str = "16399c58348341f1727030d1fc312a7fb25819f69fcbb6d15fd0687f698a49c4";
const MINILM_ROOT: &str = "e94335ea03094cbe337bac9fb1a37541b284dbaca2c05ed3d85dc9ebbfca23e4";

/// A two-tensor safetensors file: header padded to 8 bytes, data 0..11.
fn sample_safetensors() -> Vec<u8> {
    let mut header = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}"#.to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend(0u8..11);
    out
}

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Nested folders, names that sort differently component-wise and as strings,
/// hidden files, git paths the stock tool ignores (top level only), an empty
/// file, an empty folder, non-ASCII names and a safetensors file.
fn write_sample_model(dir: &Path) {
    let weights: Vec<u8> = (0..4).flat_map(|_| 0u8..=255).collect();
    let files: [(&str, &[u8]); 17] = [
        ("config.json", b"{\"hidden_size\": 8}\n"),
        ("a/a", b"aa"),
        ("a/b", b"ab"),
        ("a-c", b"a-c"),
        ("a.b", b"a.b"),
        ("B.txt", b"upper\n"),
        ("nested/deeper/weights.bin", &weights),
        ("nested/.gitignore", b"*.tmp\n"),
        (".hidden", b"hidden\n"),
        (".gitmodules", b"[submodule]\n"),
        ("empty.txt", b""),
        ("\u{fc}nicode/\u{df}.txt", "stra\u{df}e\n".as_bytes()),
        ("model.safetensors", &sample_safetensors()),
        (".gitignore", b"ignored\n"),
        (".gitattributes", b"* text\n"),
        (".git/HEAD", b"ref: refs/heads/main\n"),
        (".github/workflows/ci.yml", b"on: push\n"),
    ];
    for (rel, data) in files {
        write(dir, rel, data);
    }
    fs::create_dir_all(dir.join("emptydir")).unwrap();
}

fn sample_dir() -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    write_sample_model(&parent.path().join("sample"));
    parent
}

#[test]
fn sample_folder_matches_the_stock_tool() {
    let parent = sample_dir();
    let m = load_and_hash(&parent.path().join("sample"), Progress::Silent).unwrap();
    assert_eq!(m.commitment.to_string(), format!("sha256:{SAMPLE_ROOT}"));
    assert_eq!(m.manifest.root().to_hex(), SAMPLE_ROOT);
    assert_eq!(m.manifest.model_name, "sample");
    let got: Vec<(String, String)> = m
        .manifest
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.digest.to_hex()))
        .collect();
    let want: Vec<(String, String)> = SAMPLE_RESOURCES
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
        .collect();
    assert_eq!(got, want);
    // Files come in manifest order, with the bytes that were hashed.
    for (file, resource) in m.files.iter().zip(&m.manifest.resources) {
        assert_eq!(file.rel_path, resource.name);
        assert_eq!(Sha256Digest::of(&file.bytes), resource.digest);
    }
    assert_eq!(
        m.manifest.serialization.ignore_paths,
        [".git", ".gitattributes", ".github", ".gitignore"]
    );
    // The safetensors extension: per-tensor digests, not part of the root.
    let t = &m.manifest.tensor_digests["model.safetensors"];
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].info.name, "a");
    assert_eq!(t[0].sha256, Sha256Digest::of(&[0, 1, 2, 3, 4, 5, 6, 7]));
    assert_eq!(t[1].sha256, Sha256Digest::of(&[8, 9, 10]));
    let without = HashOptions {
        tensor_digests: false,
        ..HashOptions::default()
    };
    let m2 = load_and_hash_with(&parent.path().join("sample"), &without, Progress::Silent).unwrap();
    assert!(m2.manifest.tensor_digests.is_empty());
    assert_eq!(m2.commitment, m.commitment);
}

#[test]
fn statement_has_the_stock_shape_and_checks_back() {
    let parent = sample_dir();
    let m = load_and_hash(&parent.path().join("sample"), Progress::Silent).unwrap();
    let json = serde_json::to_value(m.manifest.statement()).unwrap();
    assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        json["predicateType"],
        "https://model_signing/signature/v1.0"
    );
    assert_eq!(json["subject"][0]["name"], "sample");
    assert_eq!(json["subject"][0]["digest"]["sha256"], SAMPLE_ROOT);
    assert_eq!(json["predicate"]["serialization"]["method"], "files");
    assert_eq!(json["predicate"]["serialization"]["hash_type"], "sha256");
    assert_eq!(json["predicate"]["serialization"]["allow_symlinks"], false);
    assert_eq!(json["predicate"]["resources"][0]["name"], ".gitmodules");
    assert_eq!(json["predicate"]["resources"][0]["algorithm"], "sha256");
    let back: guest_agent::model::Statement = serde_json::from_value(json).unwrap();
    assert_eq!(
        guest_agent::model::Manifest::from_statement(&back).unwrap(),
        m.manifest
    );
}

#[test]
fn one_byte_changes_the_commitment_and_ignored_files_do_not() {
    let parent = sample_dir();
    let dir = parent.path().join("sample");
    let before = load_and_hash(&dir, Progress::Silent).unwrap();

    // Ignored paths: no change.
    write(&dir, ".git/HEAD", b"ref: refs/heads/other\n");
    write(&dir, ".github/new", b"x");
    assert_eq!(
        load_and_hash(&dir, Progress::Silent).unwrap().commitment,
        before.commitment
    );

    // One byte of one weight file: the commitment and only that resource change.
    let path = dir.join("nested/deeper/weights.bin");
    let mut bytes = fs::read(&path).unwrap();
    bytes[517] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let after = load_and_hash(&dir, Progress::Silent).unwrap();
    assert_ne!(after.commitment, before.commitment);
    let changed: Vec<&str> = after
        .manifest
        .resources
        .iter()
        .zip(&before.manifest.resources)
        .filter(|(a, b)| a.digest != b.digest)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, ["nested/deeper/weights.bin"]);

    // A nested .gitignore is not ignored (only top-level git paths are).
    write(&dir, "nested/.gitignore", b"*.bak\n");
    assert_ne!(
        load_and_hash(&dir, Progress::Silent).unwrap().commitment,
        after.commitment
    );

    // A new file changes it too, and an extra ignore path takes it out again.
    write(&dir, "README.md", b"readme");
    let with_readme = load_and_hash(&dir, Progress::Silent).unwrap();
    assert_ne!(with_readme.commitment, after.commitment);
    let ignore_readme = HashOptions {
        ignore_paths: vec!["README.md".into()],
        ..HashOptions::default()
    };
    let m = load_and_hash_with(&dir, &ignore_readme, Progress::Silent).unwrap();
    assert!(m.file("README.md").is_none());
    assert!(
        m.manifest
            .serialization
            .ignore_paths
            .contains(&"README.md".to_owned())
    );
}

#[test]
fn file_versus_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "only/hello.bin", b"hello");
    let file = load_and_hash(&dir.path().join("only/hello.bin"), Progress::Silent).unwrap();
    assert_eq!(file.manifest.root().to_hex(), HELLO_ROOT);
    assert_eq!(file.manifest.resources[0].name, ".");
    assert_eq!(file.manifest.model_name, "hello.bin");
    assert_eq!(file.files[0].rel_path, ".");
    assert_eq!(file.files[0].file_name(), Some("hello.bin"));
    assert_eq!(file.files[0].bytes, b"hello");

    // The folder holding only that file: the resource is named by its path,
    // and the root (over digests only) is the same.
    let folder = load_and_hash(&dir.path().join("only"), Progress::Silent).unwrap();
    assert_eq!(folder.manifest.resources[0].name, "hello.bin");
    assert_eq!(folder.manifest.model_name, "only");
    assert_eq!(folder.commitment, file.commitment);

    // A second file makes the folder differ from the file.
    write(dir.path(), "only/other", b"o");
    let folder = load_and_hash(&dir.path().join("only"), Progress::Silent).unwrap();
    assert_ne!(folder.commitment, file.commitment);
}

#[test]
fn bad_safetensors_headers_are_errors_not_panics() {
    let good = sample_safetensors();
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut not_json = good.clone();
    not_json[8] = b'[';
    let mut hole = good.clone();
    let at = hole.windows(5).position(|w| w == b"[8,11").unwrap();
    hole[at + 1] = b'9';
    let cases: [(&str, Vec<u8>); 6] = [
        ("empty", Vec::new()),
        ("short length", good[..5].to_vec()),
        ("huge length", huge),
        ("not json", not_json),
        ("hole", hole),
        ("truncated data", good[..good.len() - 2].to_vec()),
    ];
    for (what, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "m/model.safetensors", &bytes);
        write(dir.path(), "m/config.json", b"{}");
        for path in [dir.path().join("m"), dir.path().join("m/model.safetensors")] {
            match load_and_hash(&path, Progress::Silent) {
                Err(ModelError::Safetensors { source, .. }) => {
                    assert_eq!(source.format(), safetensors::FORMAT, "{what}");
                }
                other => panic!("{what}: expected a safetensors error, got {other:?}"),
            }
        }
    }
    // The same bytes under another name are not parsed: any file can be hashed.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "blob.bin", &good[..5]);
    assert!(load_and_hash(&dir.path().join("blob.bin"), Progress::Silent).is_ok());
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

#[test]
fn reference_models_match_the_stock_tool() {
    let cases = [
        ("smollm2-135m-instruct", SMOLLM2_ROOT, 1usize, 0usize),
        ("all-minilm-l6-v2", MINILM_ROOT, 3, 104),
    ];
    for (name, root, files, tensors) in cases {
        let dir = models_dir().join(name);
        if !dir.is_dir() {
            eprintln!(
                "SKIPPED reference_models_match_the_stock_tool for {name}: {} absent (run scripts/fetch-models)",
                dir.display()
            );
            continue;
        }
        let m = load_and_hash(&dir, Progress::Silent).unwrap();
        assert_eq!(m.manifest.root().to_hex(), root, "{name}");
        assert_eq!(m.files.len(), files, "{name}");
        let found: usize = m.manifest.tensor_digests.values().map(Vec::len).sum();
        assert_eq!(found, tensors, "{name}");
    }
}

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_guest-agent"))
}

#[test]
fn cli_hash_model_json_and_text() {
    let parent = sample_dir();
    let dir = parent.path().join("sample");
    let out = agent()
        .args(["hash-model", "--json", "--statement"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["commitment"], format!("sha256:{SAMPLE_ROOT}"));
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), SAMPLE_RESOURCES.len());
    for (file, (name, digest)) in files.iter().zip(SAMPLE_RESOURCES) {
        assert_eq!(file["path"], name);
        assert_eq!(file["sha256"], digest);
    }
    assert_eq!(files[8]["path"], "empty.txt");
    assert_eq!(files[8]["size"], 0);
    assert_eq!(files[9]["tensors"], 2);
    assert_eq!(
        json["statement"]["subject"][0]["digest"]["sha256"],
        SAMPLE_ROOT
    );
    // Not a terminal: progress is plain log lines on stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("model: sha256:"));

    let out = agent()
        .args(["hash-model", "--quiet"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(format!("sha256:{SAMPLE_ROOT}").as_str()));
    assert!(text.contains("nested/deeper/weights.bin"));
}

#[test]
fn cli_errors_exit_2() {
    let out = agent()
        .args(["hash-model", "/nonexistent/model/path"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: hashing model"));
}
