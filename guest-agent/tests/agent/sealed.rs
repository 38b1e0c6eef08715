//! Sealed model folders: sealing keeps the plaintext's identity (the same OMS
//! root, files, digests and tokens), and every way a sealed folder can be
//! wrong (key, file swapped, missing, extra, altered, truncated, claim) is
//! refused with its own error. The reference SmolLM2 folder is sealed too
//! when `models/` holds it (otherwise that test prints SKIPPED and passes).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use attestor::sealed::{SealError, SealKey};
use guest_agent::infer::tiny::{TINY_GGUF_NAME, tiny_bert_files, tiny_llama_gguf};
use guest_agent::infer::{Embedder, Generator};
use guest_agent::model::sealed::{
    MANIFEST_FILE, SealedManifest, is_sealed, load_sealed, read_key_file, seal_folder,
    write_key_file,
};
use guest_agent::model::{LoadedModel, ModelCommitment, ModelError, Progress, load_and_hash};

const RESOURCE: &str = "default/model/tiny";

fn key() -> SealKey {
    SealKey::from_bytes([0x5A; 32])
}

/// A plaintext tiny llama folder with a nested extra file.
fn tiny_plain() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(TINY_GGUF_NAME), tiny_llama_gguf(1).unwrap()).unwrap();
    fs::create_dir(dir.path().join("notes")).unwrap();
    fs::write(dir.path().join("notes/README.md"), b"tiny test model\n").unwrap();
    dir
}

/// Seals `plain` into a fresh folder; returns (holder, sealed folder, manifest).
fn seal(plain: &Path) -> (tempfile::TempDir, PathBuf, SealedManifest) {
    let holder = tempfile::tempdir().unwrap();
    let out = holder.path().join("sealed");
    let manifest = seal_folder(plain, &out, &key(), RESOURCE, Progress::Silent).unwrap();
    (holder, out, manifest)
}

/// Everything in the two models is equal except the folder name and the
/// paths the bytes came from.
fn assert_same_model(sealed: &LoadedModel, plain: &LoadedModel) {
    assert_eq!(sealed.commitment, plain.commitment);
    assert_eq!(sealed.manifest.root(), plain.manifest.root());
    assert_eq!(sealed.manifest.resources, plain.manifest.resources);
    assert_eq!(sealed.manifest.serialization, plain.manifest.serialization);
    assert_eq!(
        sealed.manifest.tensor_digests,
        plain.manifest.tensor_digests
    );
    assert_eq!(sealed.files.len(), plain.files.len());
    for (s, p) in sealed.files.iter().zip(&plain.files) {
        assert_eq!(s.rel_path, p.rel_path);
        assert_eq!(s.sha256, p.sha256);
        assert!(s.bytes == p.bytes, "{}: bytes differ", s.rel_path);
        assert!(s.source.to_string_lossy().ends_with(".sealed"));
    }
}

#[test]
fn tiny_sealed_folder_has_the_plaintext_identity_and_generates_the_same_tokens() {
    let plain_dir = tiny_plain();
    let plain = load_and_hash(plain_dir.path(), Progress::Silent).unwrap();
    let (_holder, out, manifest) = seal(plain_dir.path());

    assert_eq!(manifest.model_commitment, plain.commitment);
    assert_eq!(manifest.key_resource, RESOURCE);
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["notes/README.md", TINY_GGUF_NAME]);
    assert_eq!(manifest.files[0].size, 16);
    assert_eq!(
        manifest.files[1].sha256,
        plain.file(TINY_GGUF_NAME).unwrap().sha256
    );
    assert!(is_sealed(&out));
    assert!(!is_sealed(plain_dir.path()));
    // Hashing the ciphertext as if it were a model is refused.
    assert!(matches!(
        load_and_hash(&out, Progress::Silent),
        Err(ModelError::SealedFolder { path }) if path == out
    ));
    assert!(out.join("notes/README.md.sealed").is_file());
    // Only ciphertext on disk: the GGUF magic is not in the sealed file.
    let on_disk = fs::read(out.join(format!("{TINY_GGUF_NAME}.sealed"))).unwrap();
    assert!(!on_disk.windows(4).any(|w| w == b"GGUF"));

    // sealed.json is the contract B shape, and reads back without a key.
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["model_commitment"], plain.commitment.to_string());
    assert_eq!(json["key_resource"], RESOURCE);
    assert_eq!(json["files"][1]["path"], TINY_GGUF_NAME);
    assert_eq!(
        json["files"][1]["sha256"],
        plain.file(TINY_GGUF_NAME).unwrap().sha256.to_hex()
    );
    assert_eq!(SealedManifest::read(&out).unwrap(), manifest);

    let sealed = load_sealed(&out, &key(), Progress::Silent).unwrap();
    assert_same_model(&sealed, &plain);

    let a = Generator::from_loaded(&plain)
        .unwrap()
        .generate("hello there", 8)
        .unwrap();
    let b = Generator::from_loaded(&sealed)
        .unwrap()
        .generate("hello there", 8)
        .unwrap();
    assert_eq!(a.token_ids, b.token_ids);
    assert_eq!(a.text, b.text);
    assert!(!a.token_ids.is_empty());
}

#[test]
fn sealed_safetensors_keep_tensor_digests_and_embeddings() {
    let plain_dir = tempfile::tempdir().unwrap();
    for (name, bytes) in tiny_bert_files(3).unwrap() {
        fs::write(plain_dir.path().join(name), bytes).unwrap();
    }
    let plain = load_and_hash(plain_dir.path(), Progress::Silent).unwrap();
    assert!(!plain.manifest.tensor_digests.is_empty());
    let (_holder, out, _) = seal(plain_dir.path());
    let sealed = load_sealed(&out, &key(), Progress::Silent).unwrap();
    assert_same_model(&sealed, &plain);
    let text = vec!["sealed weights".to_owned()];
    let a = Embedder::from_loaded(&plain).unwrap().embed(&text).unwrap();
    let b = Embedder::from_loaded(&sealed)
        .unwrap()
        .embed(&text)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_single_file_model_is_sealed_under_its_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    fs::write(&file, tiny_llama_gguf(2).unwrap()).unwrap();
    let plain = load_and_hash(&file, Progress::Silent).unwrap();
    let (_holder, out, manifest) = seal(&file);
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(manifest.files[0].path, "m.gguf");
    // The root covers the file digests only, so the single file's commitment holds.
    assert_eq!(manifest.model_commitment, plain.commitment);
    let sealed = load_sealed(&out, &key(), Progress::Silent).unwrap();
    assert_eq!(sealed.commitment, plain.commitment);
    assert_eq!(sealed.files[0].rel_path, "m.gguf");
    let tokens = |m: &LoadedModel| {
        Generator::from_loaded(m)
            .unwrap()
            .generate("hi", 4)
            .unwrap()
            .token_ids
    };
    assert_eq!(tokens(&sealed), tokens(&plain));
}

#[test]
fn wrong_key_names_the_file_and_the_chunk() {
    let plain_dir = tiny_plain();
    let (_holder, out, _) = seal(plain_dir.path());
    let err = load_sealed(&out, &SealKey::from_bytes([1; 32]), Progress::Silent).unwrap_err();
    match &err {
        ModelError::Unseal { path, source } => {
            assert_eq!(path, &out.join("notes/README.md.sealed"));
            assert_eq!(
                source,
                &SealError::Decrypt {
                    name: "notes/README.md".into(),
                    index: 0,
                    chunks: 1
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("README.md.sealed"), "{err}");
}

#[test]
fn swapped_missing_extra_altered_and_truncated_files_are_refused() {
    let plain_dir = tempfile::tempdir().unwrap();
    fs::write(plain_dir.path().join("a.bin"), vec![1u8; 3000]).unwrap();
    fs::write(plain_dir.path().join("b.bin"), vec![2u8; 3000]).unwrap();
    let (_holder, out, _) = seal(plain_dir.path());
    let a = out.join("a.bin.sealed");
    let b = out.join("b.bin.sealed");
    let a_bytes = fs::read(&a).unwrap();
    let b_bytes = fs::read(&b).unwrap();
    let load = || load_sealed(&out, &key(), Progress::Silent);
    load().unwrap();

    // Swapped: each authenticates, but under the other name.
    fs::write(&a, &b_bytes).unwrap();
    fs::write(&b, &a_bytes).unwrap();
    match load().unwrap_err() {
        ModelError::Unseal {
            path,
            source: SealError::NameMismatch { expected, found },
        } => {
            assert_eq!(path, a);
            assert_eq!((expected.as_str(), found.as_str()), ("a.bin", "b.bin"));
        }
        other => panic!("{other:?}"),
    }
    fs::write(&b, &b_bytes).unwrap();

    // Missing.
    fs::remove_file(&a).unwrap();
    assert!(matches!(load(), Err(ModelError::SealedMissing { path }) if path == a));

    // A bit flipped in the ciphertext.
    let mut flipped = a_bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    fs::write(&a, &flipped).unwrap();
    assert!(matches!(
        load(),
        Err(ModelError::Unseal {
            source: SealError::Decrypt { index: 0, .. },
            ..
        })
    ));

    // Truncated.
    fs::write(&a, &a_bytes[..a_bytes.len() - 1]).unwrap();
    assert!(matches!(
        load(),
        Err(ModelError::Unseal { source: SealError::Length { found, .. }, .. }) if found == a_bytes.len() - 1
    ));
    fs::write(&a, &a_bytes).unwrap();
    load().unwrap();

    // Extra: a file the manifest does not list (git paths are ignored).
    fs::create_dir(out.join(".git")).unwrap();
    fs::write(out.join(".git/HEAD"), b"ref").unwrap();
    load().unwrap();
    fs::write(out.join("c.bin.sealed"), &a_bytes).unwrap();
    assert!(
        matches!(load(), Err(ModelError::SealedExtra { path }) if path == out.join("c.bin.sealed"))
    );
}

#[test]
fn a_claim_other_than_the_decrypted_root_is_refused_with_both_values() {
    let plain_dir = tiny_plain();
    let plain = load_and_hash(plain_dir.path(), Progress::Silent).unwrap();
    let (_holder, out, manifest) = seal(plain_dir.path());
    let other: ModelCommitment = format!("sha256:{}", "0f".repeat(32)).parse().unwrap();
    let mut forged = manifest.clone();
    forged.model_commitment = other;
    fs::write(out.join(MANIFEST_FILE), forged.to_json_pretty()).unwrap();
    // The claim is readable without the key (it is what gets attested)...
    assert_eq!(SealedManifest::read(&out).unwrap().model_commitment, other);
    // ...and refused once the files are decrypted.
    match load_sealed(&out, &key(), Progress::Silent).unwrap_err() {
        ModelError::CommitmentMismatch { claimed, found, .. } => {
            assert_eq!(claimed, other);
            assert_eq!(found, plain.commitment);
        }
        other => panic!("{other:?}"),
    }

    // A per-file digest that does not match its decrypted file.
    let mut wrong_digest = manifest.clone();
    wrong_digest.files[0].sha256 = attestor::digest::Sha256Digest::of(b"not it");
    fs::write(out.join(MANIFEST_FILE), wrong_digest.to_json_pretty()).unwrap();
    assert!(matches!(
        load_sealed(&out, &key(), Progress::Silent),
        Err(ModelError::SealedFileMismatch { field: "sha256", path, .. }) if path == "notes/README.md"
    ));
    let mut wrong_size = manifest;
    wrong_size.files[0].size += 1;
    fs::write(out.join(MANIFEST_FILE), wrong_size.to_json_pretty()).unwrap();
    assert!(matches!(
        load_sealed(&out, &key(), Progress::Silent),
        Err(ModelError::SealedFileMismatch { field: "size", expected, found, .. }) if expected == "17" && found == "16"
    ));
}

#[test]
fn outputs_and_key_files_are_never_overwritten() {
    let plain_dir = tiny_plain();
    let (_holder, out, _) = seal(plain_dir.path());
    assert!(matches!(
        seal_folder(plain_dir.path(), &out, &key(), RESOURCE, Progress::Silent),
        Err(ModelError::Exists { path }) if path == out
    ));
    assert!(matches!(
        seal_folder(
            plain_dir.path(),
            &out.join("x"),
            &key(),
            "bad",
            Progress::Silent
        ),
        Err(ModelError::KeyResource { .. })
    ));
    let key_path = out.parent().unwrap().join("key.jwk");
    let k = SealKey::generate();
    write_key_file(&key_path, &k).unwrap();
    assert_eq!(read_key_file(&key_path).unwrap().as_bytes(), k.as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(matches!(
        write_key_file(&key_path, &SealKey::generate()),
        Err(ModelError::Exists { .. })
    ));
    assert_eq!(read_key_file(&key_path).unwrap().as_bytes(), k.as_bytes());
}

#[test]
fn seal_model_cli_prints_the_commitment_and_writes_a_usable_key() {
    let plain_dir = tiny_plain();
    let plain = load_and_hash(plain_dir.path(), Progress::Silent).unwrap();
    let holder = tempfile::tempdir().unwrap();
    let out = holder.path().join("sealed");
    let key_path = holder.path().join("model-key.jwk");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_guest-agent"))
            .arg("seal-model")
            .arg(plain_dir.path())
            .arg("--out")
            .arg(&out)
            .arg("--key-out")
            .arg(&key_path)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--key-resource", "tenant/model/tiny"]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert_eq!(stdout, format!("{}\n", plain.commitment));
    assert!(
        stderr.contains("verifier resource put") && stderr.contains("tenant/model/tiny"),
        "{stderr}"
    );
    let manifest = SealedManifest::read(&out).unwrap();
    assert_eq!(manifest.key_resource, "tenant/model/tiny");
    let k = read_key_file(&key_path).unwrap();
    assert_eq!(
        load_sealed(&out, &k, Progress::Silent).unwrap().commitment,
        plain.commitment
    );

    // A second run refuses: the key file exists (and the output too).
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(read_key_file(&key_path).unwrap().as_bytes(), k.as_bytes());
}

#[test]
fn reference_smollm2_seals_to_the_same_root() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/smollm2-135m-instruct");
    if !dir.is_dir() {
        println!(
            "SKIPPED reference_smollm2_seals_to_the_same_root: {} absent (run scripts/fetch-models)",
            dir.display()
        );
        return;
    }
    let started = std::time::Instant::now();
    let plain = load_and_hash(&dir, Progress::Silent).unwrap();
    let plain_secs = started.elapsed().as_secs_f64();
    let holder = tempfile::tempdir().unwrap();
    let out = holder.path().join("smollm2-sealed");
    let manifest = seal_folder(
        &dir,
        &out,
        &key(),
        "default/model/smollm2-135m-instruct",
        Progress::Silent,
    )
    .unwrap();
    assert_eq!(manifest.model_commitment, plain.commitment);
    let started = std::time::Instant::now();
    let sealed = load_sealed(&out, &key(), Progress::Silent).unwrap();
    let sealed_secs = started.elapsed().as_secs_f64();
    assert_same_model(&sealed, &plain);
    println!(
        "smollm2 {} bytes: load_and_hash {plain_secs:.3} s, load_sealed {sealed_secs:.3} s",
        plain.total_bytes()
    );
}
