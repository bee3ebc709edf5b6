//! Outputs appear complete or not at all: written to a temporary name in
//! the same directory, then renamed. A command also refuses to write over
//! one of its own inputs.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
        })?;
        let tmp = dir.join(format!(
            ".{}.capsift-tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let f = File::create(&tmp)?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// Flush, sync and rename into place.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(out) = self.out.take() {
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        fs::rename(&self.tmp, &self.dest)
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

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.tmp);
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
}
