//! Sealed model folders: the model's files encrypted at rest under a key only
//! the key broker holds, so the weights stay opaque until the environment has
//! attested and the broker has released the key (issue #5, contract B).
//!
//! A sealed folder holds `sealed.json` ([`SealedManifest`]: format version,
//! the claimed commitment, the broker resource that holds the key, and each
//! file's path, size and plaintext SHA-256) and one `<path>.sealed` per model
//! file ([`attestor::sealed`]: chunked AES-256-GCM, sealed under the file's
//! path). The claimed commitment is the OMS v1.0 root of the *plaintext*
//! folder, so the agent can bind it into its evidence before it has the key,
//! and a sealed model has the same identity as the plain one.
//!
//! [`load_sealed`] reads each `.sealed` file once, decrypts it in place in memory,
//! hashes exactly the decrypted bytes (with the same code as
//! [`load_and_hash`], so the manifest, per-tensor
//! digests and root are the same), and refuses a root that differs from the
//! claim, a missing or extra file, or any file that fails to open.
//!
//! What this module must never do: hand on bytes other than the bytes that
//! were decrypted and hashed, return a model whose root differs from the
//! commitment it claimed (the commitment is what the verifier appraised and
//! what receipts name), or write a key anywhere but the file the operator
//! named (mode 0600, never over an existing file).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use attestor::digest::Sha256Digest;
use attestor::sealed::{self, SealKey};
use serde::{Deserialize, Serialize};

use super::load::{
    FileHasher, Reporter, assemble, ignored_components, io_err, is_safetensors, model_name,
    walk_files,
};
use super::{HashOptions, LoadedModel, ModelCommitment, ModelError, Progress, load_and_hash, oms};

/// The manifest's file name inside a sealed folder.
pub const MANIFEST_FILE: &str = "sealed.json";
/// Appended to a model file's path to name its sealed file.
pub const SEALED_SUFFIX: &str = ".sealed";
/// The only manifest version.
pub const MANIFEST_VERSION: u32 = 1;
/// The largest `sealed.json` read (a manifest lists a handful of files).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// `sealed.json`: what a sealed folder claims to be, readable without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedManifest {
    /// Format version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// `sha256:<hex>` of the OMS v1.0 root of the plaintext folder.
    pub model_commitment: ModelCommitment,
    /// The key broker resource holding the [`SealKey`] JWK: `REPO/TYPE/TAG`.
    pub key_resource: String,
    /// Every model file, in OMS order.
    pub files: Vec<SealedFile>,
}

/// One file of a sealed model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedFile {
    /// The OMS resource name: POSIX path relative to the model folder.
    pub path: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext (hex).
    pub sha256: Sha256Digest,
}

impl SealedFile {
    /// Where its sealed bytes live in the folder `dir`.
    pub fn sealed_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}{SEALED_SUFFIX}", self.path))
    }
}

impl SealedManifest {
    /// Reads and checks `dir/sealed.json`. Needs no key: this is how the agent
    /// learns the commitment to attest with and the resource to ask for.
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(MANIFEST_FILE);
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(invalid(
                &path,
                format!("larger than {MAX_MANIFEST_BYTES} bytes"),
            ));
        }
        Self::from_json(&bytes, &path)
    }

    /// Parses and checks a manifest; `path` names it in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|e| invalid(path, e.to_string()))?;
        manifest.check(path)?;
        Ok(manifest)
    }

    /// The manifest as written to `sealed.json`.
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain strings, integers and hex cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Checks what serde cannot: the version, the key resource's shape, and
    /// that paths are relative, unique, in OMS order and not ignored paths.
    fn check(&self, path: &Path) -> Result<(), ModelError> {
        if self.version != MANIFEST_VERSION {
            return Err(invalid(
                path,
                format!("version {}, expected {MANIFEST_VERSION}", self.version),
            ));
        }
        check_key_resource(&self.key_resource)?;
        if self.files.is_empty() {
            return Err(invalid(path, "lists no files".to_owned()));
        }
        let ignored = ignored_components(&HashOptions::default())?;
        for f in &self.files {
            let components = relative_components(&f.path).ok_or_else(|| {
                invalid(
                    path,
                    format!("file path {:?} is not a plain relative path", f.path),
                )
            })?;
            if oms::is_ignored(&components, &ignored) {
                return Err(invalid(
                    path,
                    format!("file path {:?} is an ignored path", f.path),
                ));
            }
        }
        for pair in self.files.windows(2) {
            if let [a, b] = pair
                && oms::compare_names(&a.path, &b.path) != std::cmp::Ordering::Less
            {
                return Err(invalid(
                    path,
                    format!(
                        "files {:?} and {:?} are not unique and in OMS order",
                        a.path, b.path
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn invalid(path: &Path, reason: String) -> ModelError {
    ModelError::SealedManifest {
        path: path.to_path_buf(),
        reason,
    }
}

/// The components of a plain relative POSIX path, or `None` for an absolute
/// path, an empty component, `.`, `..` or a NUL byte.
fn relative_components(path: &str) -> Option<Vec<&str>> {
    let components: Vec<&str> = path.split('/').collect();
    let plain = |c: &&str| !c.is_empty() && *c != "." && *c != ".." && !c.contains('\0');
    components.iter().all(plain).then_some(components)
}

/// Checks a key broker resource path: `REPO/TYPE/TAG`, three non-empty
/// segments of ASCII letters, digits, `-`, `_` and `.` (not `.` or `..`).
pub fn check_key_resource(resource: &str) -> Result<(), ModelError> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    let segments: Vec<&str> = resource.split('/').collect();
    if segments.len() == 3 && segments.iter().all(|s| segment_ok(s)) {
        Ok(())
    } else {
        Err(ModelError::KeyResource {
            resource: resource.to_owned(),
        })
    }
}

/// The default key resource for a model: `default/model/<name>`, the name
/// being the model path's last component with other characters replaced by `-`.
pub fn default_key_resource(model: &Path) -> String {
    let name: String = model_name(model)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.is_empty() || name == "." || name == ".." {
        "model".to_owned()
    } else {
        name
    };
    format!("default/model/{name}")
}

/// True when `path` is a sealed model folder (holds a `sealed.json` file).
pub fn is_sealed(path: &Path) -> bool {
    fs::symlink_metadata(path.join(MANIFEST_FILE)).is_ok_and(|m| m.is_file())
}

/// Seals the model at `src` (a file or a folder) into the folder `out` (which
/// must not exist or be empty) under `key`: one `.sealed` file per model file
/// and `sealed.json`, written last, so an interrupted run leaves no folder
/// that [`is_sealed`]. The commitment is that of [`load_and_hash`] over `src`.
/// A single-file model is sealed under its file name (the root is the same:
/// it covers the file digests only).
pub fn seal_folder(
    src: &Path,
    out: &Path,
    key: &SealKey,
    key_resource: &str,
    progress: Progress,
) -> Result<SealedManifest, ModelError> {
    check_key_resource(key_resource)?;
    let loaded = load_and_hash(src, progress)?;
    prepare_out(out)?;
    let mut files = Vec::with_capacity(loaded.files.len());
    for f in &loaded.files {
        let path = if f.rel_path == oms::SINGLE_FILE_NAME {
            f.file_name().unwrap_or("model").to_owned()
        } else {
            f.rel_path.clone()
        };
        let entry = SealedFile {
            path,
            size: f.size(),
            sha256: f.sha256,
        };
        let dest = entry.sealed_path(out);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        write_new(&dest, &sealed::seal(&f.bytes, key, &entry.path), None)?;
        files.push(entry);
    }
    let manifest = SealedManifest {
        version: MANIFEST_VERSION,
        model_commitment: loaded.commitment,
        key_resource: key_resource.to_owned(),
        files,
    };
    let manifest_path = out.join(MANIFEST_FILE);
    manifest.check(&manifest_path)?;
    write_new(&manifest_path, manifest.to_json_pretty().as_bytes(), None)?;
    Ok(manifest)
}

/// Writes `key` as its JWK to a new file with mode 0600; refuses to replace
/// an existing file.
pub fn write_key_file(path: &Path, key: &SealKey) -> Result<(), ModelError> {
    let jwk = zeroize::Zeroizing::new(key.to_jwk_bytes());
    write_new(path, &jwk, Some(0o600))
}

/// Reads a key file written by [`write_key_file`] (or any `oct` A256GCM JWK).
pub fn read_key_file(path: &Path) -> Result<SealKey, ModelError> {
    let bytes = zeroize::Zeroizing::new(fs::read(path).map_err(io_err(path))?);
    SealKey::from_jwk_bytes(&bytes).map_err(|source| ModelError::Unseal {
        path: path.to_path_buf(),
        source,
    })
}

fn prepare_out(out: &Path) -> Result<(), ModelError> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ModelError::Exists {
                    path: out.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(io_err(out))
        }
        Err(e) => Err(io_err(out)(e)),
    }
}

/// Creates `path` (never replacing a file), optionally with a Unix mode, and
/// writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), ModelError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ModelError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io_err(path)(e)
        }
    })?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// Loads a sealed model folder: reads each `.sealed` file once, decrypts it in
/// memory with `key`, hashes the decrypted bytes as they are authenticated,
/// and returns the same [`LoadedModel`] that [`load_and_hash`] gives for the
/// plaintext folder (the same files, per-file and per-tensor digests and
/// root; the manifest's model name is the sealed folder's, and each file's
/// `source` is its `.sealed` file). Refuses a root other than the claimed
/// commitment, a listed file that is missing, a file the manifest does not
/// list, a file sealed under another name, and any decryption failure.
pub fn load_sealed(
    dir: &Path,
    key: &SealKey,
    progress: Progress,
) -> Result<LoadedModel, ModelError> {
    let manifest = SealedManifest::read(dir)?;
    check_listing(dir, &manifest)?;
    let total = manifest.files.iter().map(|f| f.size).sum();
    let reporter = Reporter::new(progress, dir, manifest.files.len(), total, 1);
    let mut hashed = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        let source = entry.sealed_path(dir);
        let sealed_bytes = fs::read(&source).map_err(io_err(&source))?;
        let mut hasher = FileHasher::new(is_safetensors(Path::new(&entry.path)));
        // Decrypted in place: the weights are held once, as for a plain load.
        let plaintext = sealed::open_in_place(sealed_bytes, key, Some(&entry.path), |chunk| {
            hasher.update(chunk);
            reporter.advance(chunk.len());
        })
        .map_err(|e| ModelError::Unseal {
            path: source.clone(),
            source: e,
        })?;
        let size = plaintext.len() as u64;
        if size != entry.size {
            return Err(mismatch(
                entry,
                "size",
                entry.size.to_string(),
                size.to_string(),
            ));
        }
        let file = hasher.finish_file(entry.path.clone(), source, plaintext)?;
        if file.file.sha256 != entry.sha256 {
            return Err(mismatch(
                entry,
                "sha256",
                entry.sha256.to_hex(),
                file.file.sha256.to_hex(),
            ));
        }
        reporter.file_done(&file.file);
        hashed.push(file);
    }
    // The default serialization: the one `seal_folder` hashed with.
    let ignored = ignored_components(&HashOptions::default())?;
    let model = assemble(model_name(dir), &ignored, hashed);
    reporter.finish(&model.commitment, model.files.len(), total);
    if model.commitment != manifest.model_commitment {
        return Err(ModelError::CommitmentMismatch {
            dir: dir.to_path_buf(),
            claimed: manifest.model_commitment,
            found: model.commitment,
        });
    }
    Ok(model)
}

fn mismatch(
    entry: &SealedFile,
    field: &'static str,
    expected: String,
    found: String,
) -> ModelError {
    ModelError::SealedFileMismatch {
        path: entry.path.clone(),
        field,
        expected,
        found,
    }
}

/// The folder holds exactly `sealed.json` and one `.sealed` file per listed
/// file (git paths at the top are ignored, as for plaintext folders); no
/// symbolic links or special files.
fn check_listing(dir: &Path, manifest: &SealedManifest) -> Result<(), ModelError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
    if meta.file_type().is_symlink() {
        return Err(ModelError::Symlink {
            path: dir.to_path_buf(),
        });
    }
    let ignored = ignored_components(&HashOptions::default())?;
    let mut expected: BTreeSet<String> = manifest
        .files
        .iter()
        .map(|f| format!("{}{SEALED_SUFFIX}", f.path))
        .collect();
    expected.insert(MANIFEST_FILE.to_owned());
    let mut found = BTreeSet::new();
    walk_files(dir, &ignored, |rel, path, _| {
        if !expected.contains(&rel) {
            return Err(ModelError::SealedExtra { path });
        }
        found.insert(rel);
        Ok(())
    })?;
    if let Some(missing) = expected.difference(&found).next() {
        return Err(ModelError::SealedMissing {
            path: dir.join(missing),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_resources_are_three_plain_segments() {
        for ok in [
            "default/model/smollm2-135m-instruct",
            "a/b/c",
            "t_1/x.y/Z-9",
        ] {
            check_key_resource(ok).unwrap();
        }
        for bad in [
            "", "a/b", "a/b/c/d", "/a/b", "a//b", "a/../b", "a/b/c d", "a/b/é", "./b/c",
        ] {
            assert!(
                matches!(check_key_resource(bad), Err(ModelError::KeyResource { resource }) if resource == bad),
                "{bad}"
            );
        }
        assert_eq!(
            default_key_resource(Path::new("models/smollm2-135m-instruct")),
            "default/model/smollm2-135m-instruct"
        );
        assert_eq!(
            default_key_resource(Path::new("x/my model.gguf")),
            "default/model/my-model.gguf"
        );
    }

    #[test]
    fn relative_paths_only() {
        assert_eq!(relative_components("a/b.gguf"), Some(vec!["a", "b.gguf"]));
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b", "..", "a\0b"] {
            assert_eq!(relative_components(bad), None, "{bad:?}");
        }
    }

    fn manifest_json(files: &str, version: u32) -> String {
        format!(
            r#"{{"version":{version},"model_commitment":"sha256:{}","key_resource":"default/model/m","files":[{files}]}}"#,
            "ab".repeat(32)
        )
    }

    fn file(path: &str) -> String {
        format!(
            r#"{{"path":"{path}","size":1,"sha256":"{}"}}"#,
            "cd".repeat(32)
        )
    }

    #[test]
    fn manifest_is_checked() {
        let p = Path::new("sealed.json");
        let good = manifest_json(&[file("a"), file("b/c")].join(","), 1);
        let m = SealedManifest::from_json(good.as_bytes(), p).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(
            SealedManifest::from_json(m.to_json_pretty().as_bytes(), p).unwrap(),
            m
        );
        let reason = |json: String| match SealedManifest::from_json(json.as_bytes(), p) {
            Err(ModelError::SealedManifest { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(manifest_json(&file("a"), 2)),
            "version 2, expected 1"
        );
        assert_eq!(reason(manifest_json("", 1)), "lists no files");
        assert!(reason(manifest_json(&file("../a"), 1)).contains("not a plain relative path"));
        assert!(reason(manifest_json(&file(".git/x"), 1)).contains("ignored path"));
        assert!(reason(manifest_json(&[file("b"), file("a")].join(","), 1)).contains("OMS order"));
        assert!(reason(manifest_json(&[file("a"), file("a")].join(","), 1)).contains("OMS order"));
        assert!(
            reason(good.replace(r#""version""#, r#""extra":1,"version""#))
                .contains("unknown field")
        );
        assert!(matches!(
            SealedManifest::from_json(good.replace("default/model/m", "m").as_bytes(), p),
            Err(ModelError::KeyResource { .. })
        ));
    }
}
