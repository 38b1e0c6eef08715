//! Linux configfs-tsm attestation reports: the vendor-neutral guest interface
//! (`Documentation/ABI/testing/configfs-tsm-report`, Linux ≥ 6.7;
//! `specs/snp-tdx.md` §3).
//!
//! One request is: `mkdir` a uniquely named entry under
//! `/sys/kernel/config/tsm/report`, read `provider`, read `generation`,
//! write `privlevel` (optional) and `inblob`, read `generation` again (it must
//! have advanced by exactly our writes), read `outblob` and `auxblob`, read
//! `generation` a last time (unchanged, or another writer touched our entry and
//! the report may not be ours: retry with a fresh entry, a bounded number of
//! times), and `rmdir` the entry whatever happened.
//!
//! This module returns the kernel's bytes and never interprets them. It never
//! leaves an entry behind (a guard removes it even on error or panic), and it
//! needs no `unsafe`: configfs is plain files. configfs commits binary writes
//! on `close` and drops their errors, so a refused `inblob` write shows only as
//! a `generation` that did not move; that is checked.
//!
//! Tests imitate the kernel with a temporary directory driven by a hook
//! (`fake`, test builds only); in production the hook does nothing.

#![warn(clippy::indexing_slicing)]

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::collect::{CollectError, ENXIO, io_error};

/// Where Linux mounts the configfs-tsm report directory.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// Attempts [`TsmReport::request`] makes when another writer races it.
pub const DEFAULT_ATTEMPTS: u32 = 3;

const INTERFACE: &str = "configfs-tsm";
const MKDIR_TRIES: u32 = 4;

/// A client of the configfs-tsm report directory.
#[derive(Clone)]
pub struct TsmReport {
    root: PathBuf,
    attempts: u32,
    expected_provider: Option<&'static str>,
    hook: Arc<dyn Hook>,
}

/// What one request returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TsmOutput {
    /// The evidence: an SNP report for `sev_guest`, a DCAP quote for `tdx_guest`.
    #[serde(with = "crate::hex::base64")]
    pub outblob: Vec<u8>,
    /// Provider-specific auxiliary data (SNP: the GHCB certificate table).
    /// `None` when the attribute is absent or empty.
    #[serde(serialize_with = "serialize_opt_base64")]
    pub auxblob: Option<Vec<u8>>,
    /// The `provider` attribute (`sev_guest`, `tdx_guest`).
    pub provider: String,
    /// The `generation` the blobs were read at.
    pub generation: u64,
}

impl Default for TsmReport {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl fmt::Debug for TsmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsmReport")
            .field("root", &self.root)
            .field("attempts", &self.attempts)
            .field("expected_provider", &self.expected_provider)
            .finish_non_exhaustive()
    }
}

impl TsmReport {
    /// A client of the report directory at `root` (normally [`DEFAULT_ROOT`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            attempts: DEFAULT_ATTEMPTS,
            expected_provider: None,
            hook: Arc::new(Kernel),
        }
    }

    /// The report directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets how many fresh entries a racing writer may cost (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Refuses, before writing anything, an entry whose `provider` is not
    /// `provider` ([`CollectError::ProviderMismatch`]).
    pub fn expect_provider(mut self, provider: &'static str) -> Self {
        self.expected_provider = Some(provider);
        self
    }

    /// Generates a report over `inblob` (the 64 REPORT_DATA bytes), at
    /// `privlevel` (SNP VMPL) when given, else at the kernel's default.
    pub fn request(
        &self,
        inblob: &[u8; 64],
        privlevel: Option<u32>,
    ) -> Result<TsmOutput, CollectError> {
        let mut last = (0, 0);
        for _ in 0..self.attempts {
            let entry = self.create_entry("report")?;
            match self.attempt(&entry.path, inblob, privlevel)? {
                Attempt::Done(out) => return Ok(out),
                Attempt::Raced { before, after } => last = (before, after),
            }
        }
        Err(CollectError::GenerationRace {
            path: self.root.clone(),
            attempts: self.attempts,
            before: last.0,
            after: last.1,
        })
    }

    /// Reads the provider of a fresh entry, then removes it. Writes nothing,
    /// so no report is generated.
    pub fn probe_provider(&self) -> Result<String, CollectError> {
        let entry = self.create_entry("probe")?;
        self.read_provider(&entry.path)
    }

    fn attempt(
        &self,
        entry: &Path,
        inblob: &[u8; 64],
        privlevel: Option<u32>,
    ) -> Result<Attempt, CollectError> {
        let provider = self.read_provider(entry)?;
        if let Some(expected) = self.expected_provider
            && provider != expected
        {
            return Err(CollectError::ProviderMismatch {
                path: self.root.clone(),
                expected,
                found: provider,
            });
        }
        let start = self.read_generation(entry)?;
        let mut writes = 0u64;
        if let Some(level) = privlevel {
            self.write(entry, Attr::Privlevel, format!("{level}\n").as_bytes())?;
            writes += 1;
        }
        self.write(entry, Attr::Inblob, inblob)?;
        writes += 1;

        let before = self.read_generation(entry)?;
        let moved = before.wrapping_sub(start);
        if moved < writes {
            let attr = if privlevel.is_some() && moved == 0 {
                Attr::Privlevel
            } else {
                Attr::Inblob
            };
            return Err(CollectError::WriteNotApplied {
                path: entry.to_path_buf(),
                attr: attr.file(),
                expected: start.wrapping_add(writes),
                found: before,
            });
        }
        if moved > writes {
            return Ok(Attempt::Raced {
                before,
                after: before,
            });
        }

        let outblob = self.read(entry, Attr::Outblob)?;
        if outblob.is_empty() {
            return Err(CollectError::Invalid {
                interface: INTERFACE,
                what: entry.join(Attr::Outblob.file()).display().to_string(),
                reason: "empty".into(),
            });
        }
        let auxblob = self
            .read_optional(entry, Attr::Auxblob)?
            .filter(|b| !b.is_empty());
        let after = self.read_generation(entry)?;
        if after != before {
            return Ok(Attempt::Raced { before, after });
        }
        Ok(Attempt::Done(TsmOutput {
            outblob,
            auxblob,
            provider,
            generation: after,
        }))
    }

    fn create_entry(&self, purpose: &str) -> Result<Entry<'_>, CollectError> {
        let mut last = None;
        for _ in 0..MKDIR_TRIES {
            let path = self.root.join(unique_name(purpose));
            match fs::create_dir(&path) {
                Ok(()) => {
                    let entry = Entry {
                        path,
                        hook: self.hook.as_ref(),
                    };
                    // The fake kernel populates the entry here and may refuse
                    // it as the kernel's mkdir would.
                    if let Err(err) = self.hook.event(&entry.path, Event::Created) {
                        return Err(self.mkdir_error(&entry.path, &err));
                    }
                    return Ok(entry);
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
                Err(err) => return Err(self.mkdir_error(&path, &err)),
            }
        }
        let err = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(io_error("mkdir", &self.root, &err))
    }

    fn mkdir_error(&self, path: &Path, err: &io::Error) -> CollectError {
        if err.kind() == io::ErrorKind::NotFound {
            return CollectError::TsmUnavailable {
                path: self.root.clone(),
                reason: self.absent_reason(),
            };
        }
        if err.raw_os_error() == Some(ENXIO) {
            return CollectError::TsmUnavailable {
                path: self.root.clone(),
                reason: "no TSM provider is registered: not a confidential guest, or its \
                         guest driver (sev-guest, tdx-guest) is not loaded"
                    .into(),
            };
        }
        io_error("mkdir", path, err)
    }

    fn absent_reason(&self) -> String {
        let config = self.root.parent().and_then(Path::parent);
        let mounted = config
            .and_then(|c| fs::read_dir(c).ok())
            .is_some_and(|mut d| d.next().is_some());
        match config {
            Some(config) if !mounted => format!(
                "configfs is not mounted at {0} (mount -t configfs none {0}); \
                 configfs-tsm also needs Linux >= 6.7",
                config.display()
            ),
            _ => "configfs has no tsm/report: needs Linux >= 6.7 with CONFIG_TSM_REPORTS \
                  and the guest's TSM driver"
                .into(),
        }
    }

    fn read_provider(&self, entry: &Path) -> Result<String, CollectError> {
        let raw = self.read(entry, Attr::Provider)?;
        let text = String::from_utf8_lossy(&raw);
        Ok(text.trim_end_matches(['\n', '\0']).to_string())
    }

    fn read_generation(&self, entry: &Path) -> Result<u64, CollectError> {
        let raw = self.read(entry, Attr::Generation)?;
        let text = String::from_utf8_lossy(&raw);
        text.trim().parse().map_err(|e| CollectError::Invalid {
            interface: INTERFACE,
            what: entry.join(Attr::Generation.file()).display().to_string(),
            reason: format!("`{}` is not a generation number: {e}", text.trim()),
        })
    }

    fn write(&self, entry: &Path, attr: Attr, bytes: &[u8]) -> Result<(), CollectError> {
        let path = entry.join(attr.file());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, &e))?;
        file.write_all(bytes)
            .map_err(|e| io_error("write", &path, &e))?;
        // configfs commits a binary attribute on close; the generation check
        // after this is what tells whether it took.
        drop(file);
        self.hook
            .event(entry, Event::Wrote(attr))
            .map_err(|e| io_error("write", &path, &e))
    }

    fn read(&self, entry: &Path, attr: Attr) -> Result<Vec<u8>, CollectError> {
        let path = entry.join(attr.file());
        self.hook
            .event(entry, Event::Reading(attr))
            .and_then(|()| fs::read(&path))
            .map_err(|e| io_error("read", &path, &e))
    }

    fn read_optional(&self, entry: &Path, attr: Attr) -> Result<Option<Vec<u8>>, CollectError> {
        match self.read(entry, attr) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(CollectError::Io {
                hint: "not found", ..
            }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_hook(root: impl Into<PathBuf>, hook: Arc<dyn Hook>) -> Self {
        Self {
            hook,
            ..Self::new(root)
        }
    }
}

enum Attempt {
    Done(TsmOutput),
    Raced { before: u64, after: u64 },
}

/// The entry directory, removed on drop (success, error or panic).
struct Entry<'a> {
    path: PathBuf,
    hook: &'a dyn Hook,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        // Nothing useful can be done about a failed rmdir here: the evidence
        // (or the error being returned) matters more than a stale entry.
        let _ = self.hook.event(&self.path, Event::Removing);
        let _ = fs::remove_dir(&self.path);
    }
}

/// `attestor-<purpose>-<pid>-<counter>-<random>`: unique per process and call,
/// and unguessable enough that another process does not pick it by accident.
fn unique_name(purpose: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(n);
    hasher.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(t.as_nanos());
    }
    format!(
        "attestor-{purpose}-{}-{n}-{:08x}",
        std::process::id(),
        hasher.finish() & 0xffff_ffff
    )
}

fn serialize_opt_base64<S: serde::Serializer>(
    v: &Option<Vec<u8>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => crate::hex::base64::serialize(bytes, s),
        None => s.serialize_none(),
    }
}

/// The attributes of an entry this client touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Inblob,
    Privlevel,
    Generation,
    Outblob,
    Auxblob,
    Provider,
}

impl Attr {
    /// The attribute's file name.
    pub(crate) const fn file(self) -> &'static str {
        match self {
            Self::Inblob => "inblob",
            Self::Privlevel => "privlevel",
            Self::Generation => "generation",
            Self::Outblob => "outblob",
            Self::Auxblob => "auxblob",
            Self::Provider => "provider",
        }
    }
}

/// A point in a request where the kernel acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// After `mkdir` of the entry.
    Created,
    /// After a write to the attribute was closed.
    Wrote(Attr),
    /// Before the attribute is read.
    Reading(Attr),
    /// Before `rmdir` of the entry.
    Removing,
}

/// The test seam: what the kernel does behind configfs at each [`Event`].
/// The real kernel acts inside the syscalls, so production uses [`Kernel`].
pub(crate) trait Hook: Send + Sync {
    /// Called at `event` on the entry directory `entry`; an error is reported
    /// as if the syscall had returned it.
    fn event(&self, entry: &Path, event: Event) -> io::Result<()>;
}

/// Production hook: the kernel needs no help.
struct Kernel;

impl Hook for Kernel {
    fn event(&self, _entry: &Path, _event: Event) -> io::Result<()> {
        Ok(())
    }
}

/// A temporary directory that imitates configfs-tsm, for tests here and in
/// the SNP and TDX collectors.
#[cfg(test)]
pub(crate) mod fake {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    use std::{fs, io};

    use super::{Attr, Event, Hook};
    use crate::bytes::Writer;
    use crate::collect::EINVAL;

    /// A directory removed on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("attestor-test-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        /// A `tsm/report` directory inside, created.
        pub(crate) fn report_root(&self) -> PathBuf {
            let root = self.0.join("config/tsm/report");
            fs::create_dir_all(&root).unwrap();
            root
        }

        /// Entries currently under the report root.
        pub(crate) fn entries(&self) -> usize {
            fs::read_dir(self.0.join("config/tsm/report"))
                .map(|d| d.count())
                .unwrap_or(0)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Where the fake refuses an operation with an errno.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Fail {
        Mkdir(i32),
        Read(Attr, i32),
    }

    /// Imitates the kernel: writing `inblob` bumps `generation` and produces
    /// `outblob` (and `auxblob`); concurrent writers are simulated on demand.
    pub(crate) struct FakeKernel {
        pub(crate) provider: &'static str,
        /// `None`: the provider hides `auxblob`.
        pub(crate) aux: Option<Vec<u8>>,
        /// Concurrent writes injected right after our inblob write, one per attempt.
        pub(crate) race_on_write: AtomicU32,
        /// Concurrent writes injected between reading outblob and the last
        /// generation read, one per attempt.
        pub(crate) race_on_read: AtomicU32,
        /// Drop our inblob writes (what an EBUSY on close looks like).
        pub(crate) lose_writes: AtomicBool,
        /// Put other REPORT_DATA into the outblob.
        pub(crate) wrong_report_data: AtomicBool,
        /// Write this into `generation` instead of a number.
        pub(crate) garbage_generation: AtomicBool,
        pub(crate) fail: Mutex<Option<Fail>>,
        /// Entries created, for counting attempts.
        pub(crate) created: AtomicU32,
        /// TDX quote version the fake writes (4 or 5).
        pub(crate) quote_version: AtomicU32,
    }

    impl FakeKernel {
        pub(crate) fn new(provider: &'static str, aux: Option<Vec<u8>>) -> Self {
            Self {
                provider,
                aux,
                race_on_write: AtomicU32::new(0),
                race_on_read: AtomicU32::new(0),
                lose_writes: AtomicBool::new(false),
                wrong_report_data: AtomicBool::new(false),
                garbage_generation: AtomicBool::new(false),
                fail: Mutex::new(None),
                created: AtomicU32::new(0),
                quote_version: AtomicU32::new(4),
            }
        }

        pub(crate) fn sev() -> Self {
            Self::new("sev_guest", Some(b"FAKE CERT TABLE".to_vec()))
        }

        pub(crate) fn tdx() -> Self {
            Self::new("tdx_guest", None)
        }

        fn bump(entry: &Path) -> io::Result<()> {
            let path = entry.join("generation");
            let n: u64 = fs::read_to_string(&path)?.trim().parse().unwrap_or(0);
            fs::write(path, format!("{}\n", n + 1))
        }

        fn take(counter: &AtomicU32) -> bool {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }

        /// SNP: a 0x4A0-byte report with REPORT_DATA at 0x50. TDX: a v4
        /// quote head with REPORT_DATA at 568 (v5: at 574). `empty`: nothing. Others: the inblob.
        fn outblob(&self, inblob: &[u8]) -> Vec<u8> {
            let mut report_data = inblob.to_vec();
            if self.wrong_report_data.load(Ordering::SeqCst) {
                report_data.iter_mut().for_each(|b| *b ^= 0xff);
            }
            let mut w = Writer::new();
            match self.provider {
                "sev_guest" => {
                    w.u32_le(3).zeros(0x50 - 4).bytes(&report_data);
                    w.zeros(0x4A0 - w.len());
                }
                "tdx_guest" if self.quote_version.load(Ordering::SeqCst) == 5 => {
                    w.u16_le(5).u16_le(2).u32_le(0x81).zeros(48 - 8);
                    w.u16_le(3).u32_le(648).zeros(574 - 54);
                    w.bytes(&report_data).zeros(64).u32_le(0);
                }
                "tdx_guest" => {
                    w.u16_le(4).u16_le(2).u32_le(0x81).zeros(568 - 8);
                    w.bytes(&report_data).u32_le(0);
                }
                "empty" => {}
                _ => {
                    w.bytes(&report_data);
                }
            }
            w.into_vec()
        }
    }

    impl Hook for FakeKernel {
        fn event(&self, entry: &Path, event: Event) -> io::Result<()> {
            let fail = *self.fail.lock().unwrap();
            match event {
                Event::Created => {
                    if let Some(Fail::Mkdir(errno)) = fail {
                        return Err(io::Error::from_raw_os_error(errno));
                    }
                    self.created.fetch_add(1, Ordering::SeqCst);
                    let generation = if self.garbage_generation.load(Ordering::SeqCst) {
                        "many\n"
                    } else {
                        "0\n"
                    };
                    fs::write(entry.join("generation"), generation)?;
                    fs::write(entry.join("provider"), format!("{}\n", self.provider))?;
                    fs::write(entry.join("privlevel_floor"), "0\n")?;
                    fs::write(entry.join("inblob"), b"")?;
                    fs::write(entry.join("privlevel"), b"")?;
                }
                Event::Wrote(Attr::Inblob) => {
                    if self.lose_writes.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    Self::bump(entry)?;
                    let inblob = fs::read(entry.join("inblob"))?;
                    fs::write(entry.join("outblob"), self.outblob(&inblob))?;
                    if let Some(aux) = &self.aux {
                        fs::write(entry.join("auxblob"), aux)?;
                    }
                    if Self::take(&self.race_on_write) {
                        Self::bump(entry)?;
                    }
                }
                Event::Wrote(_) => Self::bump(entry)?,
                Event::Reading(attr) => {
                    if let Some(Fail::Read(a, errno)) = fail
                        && a == attr
                    {
                        return Err(io::Error::from_raw_os_error(errno));
                    }
                    if attr == Attr::Outblob && !entry.join("outblob").exists() {
                        return Err(io::Error::from_raw_os_error(EINVAL));
                    }
                    if attr == Attr::Auxblob && Self::take(&self.race_on_read) {
                        Self::bump(entry)?;
                    }
                }
                Event::Removing => {
                    for file in fs::read_dir(entry)? {
                        fs::remove_file(file?.path())?;
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::fake::{Fail, FakeKernel, TempDir};
    use super::*;
    use crate::collect::{EFBIG, EINVAL};

    fn client(dir: &TempDir, kernel: &Arc<FakeKernel>) -> TsmReport {
        TsmReport::with_hook(dir.report_root(), kernel.clone())
    }

    fn data() -> [u8; 64] {
        core::array::from_fn(|i| u8::try_from(i).unwrap())
    }

    #[test]
    fn request_produces_report_and_removes_entry() {
        let dir = TempDir::new("tsm-ok");
        let kernel = Arc::new(FakeKernel::sev());
        let out = client(&dir, &kernel).request(&data(), None).unwrap();
        assert_eq!(out.provider, "sev_guest");
        assert_eq!(out.generation, 1);
        assert_eq!(out.outblob.len(), 0x4A0);
        assert_eq!(&out.outblob[0x50..0x90], &data()[..]);
        assert_eq!(out.auxblob.as_deref(), Some(&b"FAKE CERT TABLE"[..]));
        assert_eq!(dir.entries(), 0);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["provider"], "sev_guest");
        assert_eq!(json["auxblob"], "RkFLRSBDRVJUIFRBQkxF");
    }

    #[test]
    fn privlevel_counts_as_a_write() {
        let dir = TempDir::new("tsm-priv");
        let kernel = Arc::new(FakeKernel::sev());
        let out = client(&dir, &kernel).request(&data(), Some(2)).unwrap();
        assert_eq!(out.generation, 2);
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn auxblob_absent_or_empty_is_none() {
        let dir = TempDir::new("tsm-noaux");
        let kernel = Arc::new(FakeKernel::tdx());
        let out = client(&dir, &kernel).request(&data(), None).unwrap();
        assert_eq!(out.auxblob, None);
        assert_eq!(out.provider, "tdx_guest");
        assert!(serde_json::to_value(&out).unwrap()["auxblob"].is_null());
        let kernel = Arc::new(FakeKernel::new("sev_guest", Some(Vec::new())));
        let out = client(&dir, &kernel).request(&data(), None).unwrap();
        assert_eq!(out.auxblob, None);
    }

    #[test]
    fn concurrent_writer_during_reads_is_retried() {
        let dir = TempDir::new("tsm-race1");
        let kernel = Arc::new(FakeKernel::sev());
        kernel.race_on_read.store(1, Ordering::SeqCst);
        let out = client(&dir, &kernel).request(&data(), None).unwrap();
        assert_eq!(&out.outblob[0x50..0x90], &data()[..]);
        assert_eq!(kernel.created.load(Ordering::SeqCst), 2);
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn concurrent_writer_after_our_write_is_retried() {
        let dir = TempDir::new("tsm-racew");
        let kernel = Arc::new(FakeKernel::sev());
        kernel.race_on_write.store(2, Ordering::SeqCst);
        let out = client(&dir, &kernel).request(&data(), None).unwrap();
        assert_eq!(out.generation, 1);
        assert_eq!(kernel.created.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn persistent_race_fails_after_bounded_attempts() {
        let dir = TempDir::new("tsm-race");
        let kernel = Arc::new(FakeKernel::sev());
        kernel.race_on_read.store(100, Ordering::SeqCst);
        let err = client(&dir, &kernel)
            .with_attempts(3)
            .request(&data(), None)
            .unwrap_err();
        match &err {
            CollectError::GenerationRace {
                attempts,
                before,
                after,
                ..
            } => {
                assert_eq!(*attempts, 3);
                assert_eq!((*before, *after), (1, 2));
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("another process"), "{err}");
        assert_eq!(kernel.created.load(Ordering::SeqCst), 3);
        assert_eq!(dir.entries(), 0);
        // Zero attempts still means one.
        kernel.race_on_read.store(0, Ordering::SeqCst);
        client(&dir, &kernel)
            .with_attempts(0)
            .request(&data(), None)
            .unwrap();
    }

    #[test]
    fn lost_write_is_detected() {
        let dir = TempDir::new("tsm-lost");
        let kernel = Arc::new(FakeKernel::sev());
        kernel.lose_writes.store(true, Ordering::SeqCst);
        let err = client(&dir, &kernel).request(&data(), None).unwrap_err();
        assert!(
            matches!(
                err,
                CollectError::WriteNotApplied {
                    attr: "inblob",
                    expected: 1,
                    found: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn provider_mismatch_refused_before_writing() {
        let dir = TempDir::new("tsm-prov");
        let kernel = Arc::new(FakeKernel::tdx());
        let err = client(&dir, &kernel)
            .expect_provider("sev_guest")
            .request(&data(), None)
            .unwrap_err();
        assert!(
            matches!(&err, CollectError::ProviderMismatch { expected: "sev_guest", found, .. } if found == "tdx_guest"),
            "{err}"
        );
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn kernel_errors_map_to_hints_and_entry_is_removed() {
        let dir = TempDir::new("tsm-efbig");
        let kernel = Arc::new(FakeKernel::sev());
        *kernel.fail.lock().unwrap() = Some(Fail::Read(Attr::Outblob, EFBIG));
        let err = client(&dir, &kernel).request(&data(), None).unwrap_err();
        assert!(
            matches!(&err, CollectError::Io { op: "read", hint, path, .. }
                if hint.contains("maximum") && path.ends_with("outblob")),
            "{err}"
        );
        assert_eq!(dir.entries(), 0);

        *kernel.fail.lock().unwrap() = Some(Fail::Read(Attr::Auxblob, EINVAL));
        let err = client(&dir, &kernel).request(&data(), None).unwrap_err();
        assert!(matches!(err, CollectError::Io { .. }), "{err}");

        *kernel.fail.lock().unwrap() = Some(Fail::Mkdir(ENXIO));
        let err = client(&dir, &kernel).request(&data(), None).unwrap_err();
        assert!(
            matches!(&err, CollectError::TsmUnavailable { reason, .. } if reason.contains("provider")),
            "{err}"
        );

        *kernel.fail.lock().unwrap() = Some(Fail::Mkdir(13));
        let err = client(&dir, &kernel).probe_provider().unwrap_err();
        assert!(
            matches!(
                &err,
                CollectError::Io {
                    op: "mkdir",
                    hint: "run as root",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn empty_outblob_and_bad_generation_are_invalid() {
        let dir = TempDir::new("tsm-invalid");
        let kernel = Arc::new(FakeKernel::new("sev_guest", None));
        kernel.garbage_generation.store(true, Ordering::SeqCst);
        let err = client(&dir, &kernel).request(&data(), None).unwrap_err();
        assert!(
            matches!(&err, CollectError::Invalid { reason, .. } if reason.contains("many")),
            "{err}"
        );

        let kernel = Arc::new(FakeKernel::new("empty", None));
        let err = client(&dir, &kernel).request(&data(), None).unwrap_err();
        assert!(
            matches!(&err, CollectError::Invalid { reason, what, .. } if reason == "empty" && what.ends_with("outblob")),
            "{err}"
        );
        assert_eq!(dir.entries(), 0);
    }

    #[test]
    fn outblob_without_inblob_is_refused() {
        let dir = TempDir::new("tsm-noinblob");
        let kernel = Arc::new(FakeKernel::sev());
        let report = client(&dir, &kernel);
        let entry = report.create_entry("t").unwrap();
        let err = report.read(&entry.path, Attr::Outblob).unwrap_err();
        assert!(
            matches!(&err, CollectError::Io { hint, .. } if hint.contains("privlevel")),
            "{err}"
        );
    }

    #[test]
    fn missing_root_says_what_to_mount() {
        let dir = TempDir::new("tsm-missing");
        let report = TsmReport::new(dir.path().join("config/tsm/report"));
        let err = report.request(&data(), None).unwrap_err();
        assert!(
            matches!(&err, CollectError::TsmUnavailable { reason, .. } if reason.contains("mount -t configfs")),
            "{err}"
        );
        let err = report.probe_provider().unwrap_err();
        assert!(matches!(err, CollectError::TsmUnavailable { .. }));
    }

    #[test]
    fn probe_reads_provider_and_removes_entry() {
        let dir = TempDir::new("tsm-probe");
        let kernel = Arc::new(FakeKernel::tdx());
        assert_eq!(client(&dir, &kernel).probe_provider().unwrap(), "tdx_guest");
        assert_eq!(dir.entries(), 0);
        assert!(format!("{:?}", client(&dir, &kernel)).contains("TsmReport"));
        assert_eq!(TsmReport::default().root(), Path::new(DEFAULT_ROOT));
    }

    #[test]
    fn entry_names_are_unique() {
        let a = unique_name("x");
        let b = unique_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("attestor-x-{}-", std::process::id())));
    }
}
