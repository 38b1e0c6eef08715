//! Load a model (a file or a folder): walk it, read every file exactly once,
//! and hash the bytes as they arrive, in parallel across files and cores.
//!
//! Each file is opened once and read in 4 MiB chunks straight into the buffer
//! that is handed on ([`LoadedFile::bytes`]); each chunk goes to the SHA-256 of
//! the file (and, for `.safetensors`, to the per-tensor hasher) as soon as it
//! is read. Files of 16 MiB or more are read by one thread while other threads
//! hash the chunks already read, so reading and hashing overlap; files are
//! taken largest first by a pool of workers, one per core. A file whose size
//! changes while it is read is refused.
//!
//! Never reopens a path after hashing it, never memory-maps (a mapped file can
//! change under the hash), and never follows symbolic links (the pinned OMS
//! serialization has `allow_symlinks = false`). Walk rules follow the stock
//! `model_signing` tool: every regular file below the folder, hidden files
//! included, minus the ignored paths; empty folders contribute nothing.
//! Ignored folders are not descended into (the stock tool still lists them
//! and would refuse a symbolic link inside `.git`; this walker skips them).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, IsTerminal as _, Read as _};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use attestor::digest::Sha256Digest;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest as _, Sha256};

use super::oms::{self, Manifest, Resource, Serialization};
use super::safetensors::{TensorDigest, TensorHasher};
use super::{ModelCommitment, ModelError};

/// Read size, and the unit handed from the reader to the hashers.
pub const CHUNK: usize = 4 << 20;
/// Files at least this large are read and hashed on separate threads.
pub const PIPELINE_MIN: u64 = 16 << 20;
/// With [`Progress::Auto`], a progress bar is drawn only for models at least this large.
pub const BAR_MIN: u64 = 8 << 20;

/// How to report progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar when stderr is a terminal and the model is over
    /// [`BAR_MIN`] bytes, plain log lines otherwise.
    Auto,
    /// Plain log lines: one per file, one summary.
    Log,
    /// Nothing.
    Silent,
}

/// What to hash. The default is the stock tool's default: git paths ignored,
/// nothing else; plus per-tensor digests for `.safetensors` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashOptions {
    /// Ignore `.git`, `.gitattributes`, `.github` and `.gitignore` at the top
    /// of the folder (the stock tool's `--ignore-git-paths`, on by default).
    pub ignore_git_paths: bool,
    /// Further paths to ignore, relative to the model folder (POSIX form); a
    /// folder ignores everything below it. They change the root as they would
    /// with the stock tool's `--ignore-paths`.
    pub ignore_paths: Vec<String>,
    /// Worker threads; `None` means one per available core.
    pub threads: Option<NonZeroUsize>,
    /// Compute per-tensor digests of `.safetensors` files (the manifest
    /// extension). They do not enter the root.
    pub tensor_digests: bool,
}

impl Default for HashOptions {
    fn default() -> Self {
        Self {
            ignore_git_paths: true,
            ignore_paths: Vec::new(),
            threads: None,
            tensor_digests: true,
        }
    }
}

/// One model file: the bytes that were hashed, to be handed to the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// The OMS resource name: POSIX path relative to the model folder, or
    /// `"."` when the model is a single file.
    pub rel_path: String,
    /// Where it was read from. For messages only: never reopen it.
    pub source: PathBuf,
    /// The file's content, exactly the bytes that were hashed.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub sha256: Sha256Digest,
}

impl LoadedFile {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The file's own name (last component of `source`), e.g. to pick a
    /// loader by extension when the model is a single file.
    pub fn file_name(&self) -> Option<&str> {
        self.source.file_name().and_then(|n| n.to_str())
    }
}

/// A model read and hashed: its files, its OMS manifest, its commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModel {
    /// Every file, in OMS (manifest) order.
    pub files: Vec<LoadedFile>,
    /// The OMS v1.0 manifest over `files` (plus per-tensor digests).
    pub manifest: Manifest,
    /// `sha256:<root>` of the manifest.
    pub commitment: ModelCommitment,
}

impl LoadedModel {
    /// The file with this OMS resource name.
    pub fn file(&self, rel_path: &str) -> Option<&LoadedFile> {
        self.files.iter().find(|f| f.rel_path == rel_path)
    }

    /// Total bytes over all files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(LoadedFile::size).sum()
    }
}

/// Loads and hashes the model at `path` (a file or a folder) with the default
/// [`HashOptions`].
pub fn load_and_hash(path: &Path, progress: Progress) -> Result<LoadedModel, ModelError> {
    load_and_hash_with(path, &HashOptions::default(), progress)
}

/// Loads and hashes the model at `path` (a file or a folder).
pub fn load_and_hash_with(
    path: &Path,
    options: &HashOptions,
    progress: Progress,
) -> Result<LoadedModel, ModelError> {
    // Hashing ciphertext would give a commitment no one can check against
    // the weights: a sealed folder loads only through `load_sealed`.
    if super::sealed::is_sealed(path) {
        return Err(ModelError::SealedFolder {
            path: path.to_path_buf(),
        });
    }
    let ignored = ignored_components(options)?;
    let planned = plan(path, &ignored, options.tensor_digests)?;
    let total: u64 = planned.iter().map(|p| p.size).sum();
    let threads = options
        .threads
        .map_or_else(
            || thread::available_parallelism().map_or(1, NonZeroUsize::get),
            NonZeroUsize::get,
        )
        .clamp(1, planned.len().max(1));
    let reporter = Reporter::new(progress, path, planned.len(), total, threads);

    let loaded = load_all(&planned, threads, &reporter)?;
    let model = assemble(model_name(path), &ignored, loaded);
    reporter.finish(&model.commitment, model.files.len(), total);
    Ok(model)
}

/// The ignore rules of `options` as path components.
pub(super) fn ignored_components(options: &HashOptions) -> Result<Vec<Vec<String>>, ModelError> {
    let mut ignore_names: Vec<String> = Vec::new();
    if options.ignore_git_paths {
        ignore_names.extend(oms::GIT_PATHS.iter().map(|p| (*p).to_owned()));
    }
    let mut ignored = Vec::new();
    for p in ignore_names.iter().chain(&options.ignore_paths) {
        ignored.push(oms::ignore_components(p)?);
    }
    Ok(ignored)
}

/// The model from its hashed files (in OMS order): manifest and commitment.
/// The one place a [`LoadedModel`] is put together, for plaintext and sealed
/// folders alike, so both give the same manifest for the same bytes.
pub(super) fn assemble(name: String, ignored: &[Vec<String>], loaded: Vec<Hashed>) -> LoadedModel {
    let mut files = Vec::with_capacity(loaded.len());
    let mut resources = Vec::with_capacity(loaded.len());
    let mut tensor_digests = BTreeMap::new();
    for Hashed { file, tensors } in loaded {
        resources.push(Resource::sha256(file.rel_path.clone(), file.sha256));
        if let Some(t) = tensors {
            tensor_digests.insert(file.rel_path.clone(), t);
        }
        files.push(file);
    }
    let serialization = Serialization::files_sha256(ignored.iter().map(|c| c.join("/")).collect());
    let manifest = Manifest::new(name, serialization, resources, tensor_digests);
    let commitment = manifest.commitment();
    LoadedModel {
        files,
        manifest,
        commitment,
    }
}

/// A file to read.
struct Planned {
    rel_path: String,
    source: PathBuf,
    /// Size when listed: for scheduling and progress only.
    size: u64,
    tensors: bool,
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn is_safetensors(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors")
}

/// Visits every regular file below `root` with its `/`-joined path relative
/// to it, skipping ignored paths (ignored folders are not descended into).
/// Symbolic links and special files are refused; the walk never follows a
/// link. The one walk shared by plaintext and sealed folders.
pub(super) fn walk_files(
    root: &Path,
    ignored: &[Vec<String>],
    mut visit: impl FnMut(String, PathBuf, &fs::DirEntry) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    let mut dirs: Vec<(PathBuf, Vec<String>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, components)) = dirs.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let Ok(name) = entry.file_name().into_string() else {
                return Err(ModelError::NonUtf8Path { path });
            };
            let mut rel = components.clone();
            rel.push(name);
            let rel_refs: Vec<&str> = rel.iter().map(String::as_str).collect();
            if oms::is_ignored(&rel_refs, ignored) {
                continue;
            }
            // DirEntry::file_type and ::metadata do not follow symbolic links.
            let kind = entry.file_type().map_err(io_err(&path))?;
            if kind.is_symlink() {
                return Err(ModelError::Symlink { path });
            } else if kind.is_dir() {
                dirs.push((path, rel));
            } else if kind.is_file() {
                visit(rel.join("/"), path, &entry)?;
            } else {
                return Err(ModelError::SpecialFile { path });
            }
        }
    }
    Ok(())
}

/// The files of the model, in OMS order.
fn plan(root: &Path, ignored: &[Vec<String>], tensors: bool) -> Result<Vec<Planned>, ModelError> {
    let meta = fs::symlink_metadata(root).map_err(io_err(root))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(ModelError::Symlink {
            path: root.to_path_buf(),
        });
    }
    if kind.is_file() {
        return Ok(vec![Planned {
            rel_path: oms::SINGLE_FILE_NAME.to_owned(),
            source: root.to_path_buf(),
            size: meta.len(),
            tensors: tensors && is_safetensors(root),
        }]);
    }
    if !kind.is_dir() {
        return Err(ModelError::SpecialFile {
            path: root.to_path_buf(),
        });
    }

    let mut out = Vec::new();
    walk_files(root, ignored, |rel_path, path, entry| {
        let size = entry.metadata().map_err(io_err(&path))?.len();
        out.push(Planned {
            rel_path,
            tensors: tensors && is_safetensors(&path),
            source: path,
            size,
        });
        Ok(())
    })?;
    if out.is_empty() {
        return Err(ModelError::NoFiles {
            path: root.to_path_buf(),
        });
    }
    out.sort_by(|a, b| oms::compare_names(&a.rel_path, &b.rel_path));
    Ok(out)
}

/// The model's name as the stock tool gives it: the last path component, or
/// that of the resolved path when there is none (`.`, `..`).
pub(super) fn model_name(path: &Path) -> String {
    let last = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    last(path)
        .or_else(|| fs::canonicalize(path).ok().as_deref().and_then(last))
        .unwrap_or_default()
}

/// One file read and hashed, with its per-tensor digests if it is safetensors.
pub(super) struct Hashed {
    pub(super) file: LoadedFile,
    pub(super) tensors: Option<Vec<TensorDigest>>,
}

/// The digests of one file, fed chunk by chunk: SHA-256, and per-tensor
/// digests for safetensors.
pub(super) struct FileHasher {
    file: Sha256,
    tensors: Option<TensorHasher>,
}

impl FileHasher {
    pub(super) fn new(tensors: bool) -> Self {
        Self {
            file: Sha256::new(),
            tensors: tensors.then(TensorHasher::new),
        }
    }

    pub(super) fn update(&mut self, chunk: &[u8]) {
        self.file.update(chunk);
        if let Some(t) = &mut self.tensors {
            t.update(chunk);
        }
    }

    fn finish(self) -> Digests {
        Digests {
            sha256: finalize(self.file),
            tensors: self.tensors.map(TensorHasher::finish),
        }
    }

    /// The hashed file: `bytes` must be exactly the bytes given to `update`.
    pub(super) fn finish_file(
        self,
        rel_path: String,
        source: PathBuf,
        bytes: Vec<u8>,
    ) -> Result<Hashed, ModelError> {
        hashed(self.finish(), rel_path, source, bytes)
    }
}

fn hashed(
    digests: Digests,
    rel_path: String,
    source: PathBuf,
    bytes: Vec<u8>,
) -> Result<Hashed, ModelError> {
    let Digests { sha256, tensors } = digests;
    let tensors = tensors
        .transpose()
        .map_err(|source_err| ModelError::Safetensors {
            path: source.clone(),
            source: source_err,
        })?;
    Ok(Hashed {
        file: LoadedFile {
            rel_path,
            source,
            bytes,
            sha256,
        },
        tensors,
    })
}

/// Reads every planned file on `threads` workers, largest first; returns them
/// in plan (OMS) order, or the first error in that order.
fn load_all(
    planned: &[Planned],
    threads: usize,
    reporter: &Reporter,
) -> Result<Vec<Hashed>, ModelError> {
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(planned.get(i).map_or(0, |p| p.size)));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);

    let mut results: Vec<(usize, Result<Hashed, ModelError>)> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some((i, p)) = order.get(k).and_then(|&i| Some((i, planned.get(i)?)))
                        else {
                            break;
                        };
                        let result = load_file(p, reporter);
                        match &result {
                            Ok(hashed) => reporter.file_done(&hashed.file),
                            Err(_) => failed.store(true, Ordering::Relaxed),
                        }
                        done.push((i, result));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().flat_map(join).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn finalize(hasher: Sha256) -> Sha256Digest {
    Sha256Digest::from(<[u8; 32]>::from(hasher.finalize()))
}

/// Opens one file, reads it once into memory, hashes it on the way.
fn load_file(p: &Planned, reporter: &Reporter) -> Result<Hashed, ModelError> {
    let path = p.source.as_path();
    let mut file = File::open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(ModelError::SpecialFile {
            path: path.to_path_buf(),
        });
    }
    let size = meta.len();
    let too_large = || ModelError::TooLarge {
        path: path.to_path_buf(),
        len: size,
    };
    // Allocations are limited to isize::MAX bytes.
    let len = isize::try_from(size)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(too_large)?;
    // A zeroed allocation: pages are only touched by the reads (no byte loop,
    // which `resize` would be in an unoptimised build).
    let mut bytes = vec![0u8; len];

    let digests = if size < PIPELINE_MIN {
        let mut hasher = FileHasher::new(p.tensors);
        stream(&mut file, &mut bytes, path, |chunk| {
            hasher.update(chunk);
            reporter.advance(chunk.len());
        })?;
        hasher.finish()
    } else {
        pipelined(&mut file, &mut bytes, p, reporter)?
    };
    hashed(digests, p.rel_path.clone(), p.source.clone(), bytes)
}

/// The digests of one file's bytes.
struct Digests {
    sha256: Sha256Digest,
    /// Present for safetensors files: the per-tensor digests or the header error.
    tensors: Option<Result<Vec<TensorDigest>, attestor::ParseError>>,
}

/// Reads on this thread; hashes on one thread per digest, chunk by chunk as
/// the chunks are read.
fn pipelined(
    file: &mut File,
    bytes: &mut [u8],
    p: &Planned,
    reporter: &Reporter,
) -> Result<Digests, ModelError> {
    thread::scope(|s| {
        let (file_tx, file_rx) = mpsc::channel::<&[u8]>();
        let file_hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for chunk in file_rx {
                h.update(chunk);
                reporter.advance(chunk.len());
            }
            finalize(h)
        });
        let (tensor_tx, tensor_hasher) = if p.tensors {
            let (tx, rx) = mpsc::channel::<&[u8]>();
            let handle = s.spawn(move || {
                let mut t = TensorHasher::new();
                for chunk in rx {
                    t.update(chunk);
                }
                t.finish()
            });
            (Some(tx), Some(handle))
        } else {
            (None, None)
        };
        // A send fails only if a hasher thread died; its panic is re-raised at join.
        let read = stream(file, bytes, &p.source, |chunk| {
            let _ = file_tx.send(chunk);
            if let Some(tx) = &tensor_tx {
                let _ = tx.send(chunk);
            }
        });
        drop(file_tx);
        drop(tensor_tx);
        let sha256 = join(file_hasher);
        let tensors = tensor_hasher.map(join);
        read.map(|()| Digests { sha256, tensors })
    })
}

/// Fills `buf` from `file` chunk by chunk, giving each chunk to `emit` as soon
/// as it is read; the file must end exactly where `buf` does.
fn stream<'a>(
    file: &mut File,
    buf: &'a mut [u8],
    path: &Path,
    mut emit: impl FnMut(&'a [u8]),
) -> Result<(), ModelError> {
    let size_at_open = buf.len() as u64;
    let changed = |found| ModelError::Changed {
        path: path.to_path_buf(),
        size_at_open,
        found,
    };
    for chunk in buf.chunks_mut(CHUNK) {
        file.read_exact(chunk).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                changed("ended early")
            } else {
                io_err(path)(e)
            }
        })?;
        emit(chunk);
    }
    let mut probe = [0u8; 1];
    loop {
        match file.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(changed("grew")),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
}

/// Progress on stderr: a bar, log lines, or nothing.
pub(super) struct Reporter {
    bar: Option<ProgressBar>,
    log: bool,
    started: Instant,
}

impl Reporter {
    pub(super) fn new(
        progress: Progress,
        path: &Path,
        files: usize,
        total: u64,
        threads: usize,
    ) -> Self {
        let bar_wanted = match progress {
            Progress::Auto => std::io::stderr().is_terminal() && total >= BAR_MIN,
            Progress::Log | Progress::Silent => false,
        };
        let log = match progress {
            Progress::Auto => !bar_wanted,
            Progress::Log => true,
            Progress::Silent => false,
        };
        let bar = bar_wanted.then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "hashing model {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        if log {
            eprintln!(
                "model: reading and hashing {} ({files} files, {total} bytes, {threads} threads)",
                path.display()
            );
        }
        Self {
            bar,
            log,
            started: Instant::now(),
        }
    }

    pub(super) fn advance(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    pub(super) fn file_done(&self, file: &LoadedFile) {
        if self.log {
            eprintln!(
                "model: {} {} bytes sha256:{}",
                file.rel_path,
                file.size(),
                file.sha256
            );
        }
    }

    pub(super) fn finish(&self, commitment: &ModelCommitment, files: usize, total: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.log || self.bar.is_some() {
            let secs = self.started.elapsed().as_secs_f64();
            let rate = if secs > 0.0 {
                total as f64 / secs / 1e6
            } else {
                0.0
            };
            eprintln!(
                "model: {commitment} over {files} files, {total} bytes in {secs:.3} s ({rate:.0} MB/s)"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test data built from small counters
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, data: &[u8]) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    #[test]
    fn bytes_handed_on_are_the_bytes_hashed() {
        let dir = tempfile::tempdir().unwrap();
        // One file big enough for the pipelined path, and one small.
        let big: Vec<u8> = (0..(PIPELINE_MIN as usize + CHUNK / 3))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        write(dir.path(), "big.bin", &big);
        write(dir.path(), "small/x.txt", b"x");
        let m = load_and_hash(dir.path(), Progress::Silent).unwrap();
        assert_eq!(m.files.len(), 2);
        for f in &m.files {
            assert_eq!(f.sha256, Sha256Digest::of(&f.bytes), "{}", f.rel_path);
        }
        assert_eq!(m.file("big.bin").unwrap().bytes, big);
        assert_eq!(m.file("small/x.txt").unwrap().bytes, b"x");
        assert_eq!(m.total_bytes(), big.len() as u64 + 1);
    }

    #[test]
    fn thread_count_does_not_change_the_result() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..9 {
            write(
                dir.path(),
                &format!("d{}/f{i}", i % 3),
                &vec![i as u8; i * 1000],
            );
        }
        let one = HashOptions {
            threads: NonZeroUsize::new(1),
            ..HashOptions::default()
        };
        let four = HashOptions {
            threads: NonZeroUsize::new(4),
            ..HashOptions::default()
        };
        let a = load_and_hash_with(dir.path(), &one, Progress::Silent).unwrap();
        let b = load_and_hash_with(dir.path(), &four, Progress::Silent).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn large_safetensors_gets_tensor_digests_through_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let n = PIPELINE_MIN as usize + 12; // bytes in tensor "w"
        let header = format!(
            r#"{{"w":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}},"z":{{"dtype":"U8","shape":[4],"data_offsets":[{n},{}]}}}}"#,
            n + 4
        );
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        let data: Vec<u8> = (0..n + 4).map(|i| (i % 13) as u8).collect();
        file.extend_from_slice(&data);
        write(dir.path(), "m.safetensors", &file);
        let m = load_and_hash(dir.path(), Progress::Silent).unwrap();
        let t = &m.manifest.tensor_digests["m.safetensors"];
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].sha256, Sha256Digest::of(&data[..n]));
        assert_eq!(t[1].sha256, Sha256Digest::of(&data[n..]));

        // Truncated in the data: an error, not a panic.
        write(dir.path(), "m.safetensors", &file[..file.len() - 1]);
        assert!(matches!(
            load_and_hash(dir.path(), Progress::Silent),
            Err(ModelError::Safetensors { .. })
        ));
    }

    #[test]
    fn refuses_symlinks_special_files_and_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_and_hash(dir.path(), Progress::Silent),
            Err(ModelError::NoFiles { .. })
        ));
        write(dir.path(), "a", b"a");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
            assert!(matches!(
                load_and_hash(dir.path(), Progress::Silent),
                Err(ModelError::Symlink { .. })
            ));
            assert!(matches!(
                load_and_hash(&dir.path().join("link"), Progress::Silent),
                Err(ModelError::Symlink { .. })
            ));
        }
        assert!(matches!(
            load_and_hash(&dir.path().join("missing"), Progress::Silent),
            Err(ModelError::Io { .. })
        ));
        let bad = HashOptions {
            ignore_paths: vec!["../x".into()],
            ..HashOptions::default()
        };
        assert!(matches!(
            load_and_hash_with(dir.path(), &bad, Progress::Silent),
            Err(ModelError::IgnorePath { .. })
        ));
    }

    #[test]
    fn a_file_that_changes_size_while_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, [1u8; 10]).unwrap();
        for (buf_len, found) in [(5, "grew"), (20, "ended early")] {
            let mut file = File::open(&path).unwrap();
            let mut buf = vec![0u8; buf_len];
            match stream(&mut file, &mut buf, &path, |_| {}) {
                Err(ModelError::Changed {
                    size_at_open,
                    found: f,
                    ..
                }) => {
                    assert_eq!(size_at_open, buf_len as u64);
                    assert_eq!(f, found);
                }
                other => panic!("{buf_len}: {other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_sockets_and_non_utf8_names() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a", b"a");
        let _sock = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        assert!(matches!(
            load_and_hash(dir.path(), Progress::Silent),
            Err(ModelError::SpecialFile { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"bad\xff");
        fs::write(dir.path().join(name), b"x").unwrap();
        assert!(matches!(
            load_and_hash(dir.path(), Progress::Silent),
            Err(ModelError::NonUtf8Path { .. })
        ));
    }

    #[test]
    fn model_name_is_the_last_component() {
        assert_eq!(model_name(Path::new("models/abc/")), "abc");
        assert_eq!(model_name(Path::new("x/file.gguf")), "file.gguf");
        assert!(!model_name(Path::new(".")).is_empty());
    }
}
