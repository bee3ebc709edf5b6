//! Outputs appear complete or not at all: written to a temporary name in
//! the same directory, then renamed. A command also refuses to write over
//! one of its own inputs.
//!
//! Every temporary file is also
//! - registered process-wide while it exists, so that SIGINT (Ctrl-C),
//!   SIGTERM (`kubectl delete`, a pod evicted or past its deadline) and
//!   SIGHUP remove it before capsift exits (`crate::interrupt`);
//! - locked (`flock`) while it is written, so that the next run into the
//!   same directory can tell a file abandoned by a killed run (SIGKILL, the
//!   OOM killer: nothing can clean up after those) from one another process
//!   is still writing. A lock says this across PID namespaces, which a
//!   process id does not: two pods of an Indexed Job sharing a volume can
//!   both be PID 1.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// The temporary files this process has created and not yet renamed or
/// removed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Makes temporary names unique within the process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// An unlocked temporary file is only taken for abandoned once it has not
/// been written for this long: a writer locks its file right after creating
/// it, and this closes the instant between the two.
const ORPHAN_AGE: Duration = Duration::from_secs(10);

/// The registry of live temporary files, held. Files are created and
/// registered under it, and renamed and unregistered under it; the signal
/// handler removes them and exits with it held.
pub(crate) fn lock_live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The directory `dest` is in (`.` for a bare file name).
pub(crate) fn dir_of(dest: &Path) -> &Path {
    match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The prefix of `dest`'s temporary names: `.NAME.capsift-tmp-`.
fn temp_prefix(dest: &Path) -> io::Result<String> {
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
    })?;
    Ok(format!(".{}.capsift-tmp-", name.to_string_lossy()))
}

/// A temporary file beside `dest`: created new (never truncating another
/// writer's file) and registered, then locked where the file system has
/// locks; removed when dropped unless [`TempPath::persist`] (or
/// [`TempPath::persist_all`]) renamed it to `dest`.
pub struct TempPath {
    tmp: PathBuf,
    dest: PathBuf,
    /// A second handle on the writer's open file. flock belongs to the open
    /// file, so the lock lasts until the rename even after the writer's own
    /// handle is closed (on NFS, which emulates flock with POSIX locks, the
    /// first close ends it). Also the handle `sync` syncs through.
    held: File,
    /// Renamed or removed, and unregistered: nothing left for Drop.
    done: bool,
}

impl TempPath {
    /// Create `dest`'s temporary file and return it with the handle to
    /// write through. Abandoned temporary files of `dest` are removed first.
    pub fn create(dest: &Path) -> io::Result<(TempPath, File)> {
        let prefix = temp_prefix(dest)?;
        let dir = dir_of(dest);
        remove_orphans(dir, &prefix);
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Created and registered under the registry's lock: a signal handled
        // meanwhile comes either before the file exists or after it is
        // registered, never between.
        let mut live = lock_live();
        let mut attempt = 0;
        let (tmp, file) = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!("{prefix}{}-{stamp:x}-{n}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => break (tmp, f),
                // Another process with the same id (another pod) at the
                // same nanosecond: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        let held = match file.try_clone() {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        live.push(tmp.clone());
        drop(live);
        // Best effort: on a file system without locks only the protection
        // against another run's cleanup is lost (docs/batch.md).
        let _ = held.try_lock();
        let temp = TempPath {
            tmp,
            dest: dest.to_path_buf(),
            held,
            done: false,
        };
        Ok((temp, file))
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Sync the file's data and metadata to disk.
    pub fn sync(&self) -> io::Result<()> {
        self.held.sync_all()
    }

    /// Rename the temporary file to its destination. It does not sync:
    /// the caller has, through its writer or [`TempPath::sync`].
    pub fn persist(self) -> io::Result<()> {
        Self::persist_all(vec![self])
    }

    /// Rename every file to its destination with the registry held, so
    /// that a signal waits until all are renamed: tables meant to change
    /// together are not cut in two by Ctrl-C. If a rename fails, the ones
    /// before it stay renamed and the rest are removed.
    pub fn persist_all(temps: Vec<TempPath>) -> io::Result<()> {
        let mut live = lock_live();
        let mut result = Ok(());
        for mut t in temps {
            if result.is_ok() {
                result = fs::rename(&t.tmp, &t.dest).map_err(|e| {
                    io::Error::new(e.kind(), format!("renaming to {}: {e}", t.dest.display()))
                });
            }
            if result.is_err() {
                let _ = fs::remove_file(&t.tmp);
            }
            live.retain(|p| *p != t.tmp);
            // Drop would take the registry's lock, held here.
            t.done = true;
        }
        result
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
            lock_live().retain(|p| *p != self.tmp);
        }
    }
}

/// Remove the temporary files named `prefix*` in `dir` that nobody writes:
/// not this process's, not locked by any process, not written for
/// [`ORPHAN_AGE`]. Also removes the unlocked `NAME.capsift-tmp-PID` files
/// of capsift versions that did not lock.
fn remove_orphans(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e
            .file_name()
            .to_str()
            .is_some_and(|f| f.starts_with(prefix))
        {
            continue;
        }
        let path = e.path();
        if lock_live().contains(&path) {
            continue;
        }
        let idle = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= ORPHAN_AGE);
        if !idle {
            continue;
        }
        // Opened for writing: NFS emulates flock with POSIX locks, whose
        // exclusive kind needs a writable handle.
        let Ok(f) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        if f.try_lock().is_ok() {
            let _ = fs::remove_file(&path);
        }
    }
}

pub struct AtomicFile {
    temp: TempPath,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let (temp, f) = TempPath::create(dest)?;
        Ok(AtomicFile {
            temp,
            out: Some(BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// Flush, sync and rename into place.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(out) = self.out.take() {
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        self.temp.persist()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.out {
            Some(o) => o.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

/// Refuse an output path that is one of the inputs (same file on disk).
pub fn check_not_input(output: &Path, inputs: &[PathBuf]) -> Result<(), String> {
    let Ok(out_meta) = fs::metadata(output) else {
        return Ok(());
    };
    for i in inputs {
        if let Ok(m) = fs::metadata(i) {
            if same_file(&m, &out_meta) {
                return Err(format!(
                    "refusing to write {}: it is one of the inputs; choose another output path",
                    output.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appears_only_on_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!p.exists());
        f.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        let mut g = AtomicFile::create(&p).unwrap();
        g.write_all(b"partial").unwrap();
        drop(g);
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(check_not_input(&p, std::slice::from_ref(&p)).is_err());
    }

    fn age(p: &Path, by: Duration) {
        let f = OpenOptions::new().write(true).open(p).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn temporary_files_are_registered_until_renamed_or_removed() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("flows.parquet");
        let (a, _) = TempPath::create(&dest).unwrap();
        let (b, _) = TempPath::create(&dest).unwrap();
        assert_ne!(a.path(), b.path(), "two writers never share a name");
        assert!(lock_live().contains(&a.path().to_path_buf()));
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        a.persist().unwrap();
        drop(b);
        let live = lock_live();
        assert!(!live.contains(&pa) && !live.contains(&pb));
        assert!(dest.is_file() && !pa.exists() && !pb.exists());
    }

    #[test]
    fn only_abandoned_temporary_files_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("flows.parquet");
        let name = |s: &str| d.path().join(format!(".flows.parquet.capsift-tmp-{s}"));
        // Killed runs: an old-style name (pid only) and a current one, both
        // unlocked and idle for a minute.
        let (old_style, killed) = (name("4999999"), name("1-5f5e100-0"));
        // A run in another PID namespace (pod), same pid as ours perhaps,
        // still writing: locked, and idle as long (a slow capture).
        let (writing, young) = (name("1-abc-0"), name("1-def-0"));
        let other_table = d.path().join(".dns.parquet.capsift-tmp-1-0-0");
        for f in [&old_style, &killed, &writing, &young, &other_table] {
            fs::write(f, b"partial").unwrap();
        }
        for f in [&old_style, &killed, &writing, &other_table] {
            age(f, Duration::from_secs(60));
        }
        let holder = OpenOptions::new().write(true).open(&writing).unwrap();
        holder.lock().unwrap();
        let (ours, _) = TempPath::create(&dest).unwrap();
        age(ours.path(), Duration::from_secs(60));
        let (_second, _) = TempPath::create(&dest).unwrap();
        assert!(
            !old_style.exists() && !killed.exists(),
            "abandoned: removed"
        );
        assert!(writing.exists(), "locked by a live writer: kept");
        assert!(young.exists(), "written a moment ago: kept");
        assert!(other_table.exists(), "another table's files: left alone");
        assert!(ours.path().exists(), "this process's own: kept");
    }
}
