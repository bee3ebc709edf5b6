//! Batch inputs: files, directories (walked, captures recognised by their
//! first bytes) and glob patterns; and the shard a path belongs to.

use std::path::{Path, PathBuf};

/// Capture files for the inputs, sorted and without duplicates, and the
/// inputs that matched nothing or could not be read.
pub fn expand_inputs(inputs: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for i in inputs {
        let p = Path::new(i);
        if p.is_dir() {
            walk(p, &mut files);
        } else if p.is_file() {
            files.push(p.to_path_buf());
        } else if i.contains(['*', '?', '[']) {
            match glob::glob(i) {
                Ok(paths) => {
                    let before = files.len();
                    for entry in paths.flatten() {
                        if entry.is_dir() {
                            walk(&entry, &mut files);
                        } else if is_capture(&entry) {
                            files.push(entry);
                        }
                    }
                    if files.len() == before {
                        errors.push(format!("{i}: the pattern matches no capture file"));
                    }
                }
                Err(e) => errors.push(format!("{i}: bad pattern: {e}")),
            }
        } else {
            errors.push(format!("{i}: no such file or directory"));
        }
    }
    files.sort();
    files.dedup();
    // One capture reached by several paths (a link beside its target, a
    // directory named twice) is analysed once, under the first of them.
    let mut seen = std::collections::HashSet::new();
    files.retain(|p| seen.insert(file_id(p)));
    (files, errors)
}

#[derive(PartialEq, Eq, Hash)]
enum FileId {
    Inode(u64, u64),
    Path(PathBuf),
}

fn file_id(p: &Path) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(p) {
            return FileId::Inode(m.dev(), m.ino());
        }
    }
    FileId::Path(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// A regular, non-empty file that starts like a capture. (Empty first:
/// procfs files say they are empty, and reading some of them blocks.)
fn is_capture(p: &Path) -> bool {
    if !std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return false;
    }
    let mut head = [0u8; 8];
    let n = std::fs::File::open(p)
        .and_then(|mut f| crate::capture::source::read_fully(&mut f, &mut head))
        .unwrap_or(0);
    crate::capture::looks_like_capture(&head[..n])
}

/// Walk a directory. Symbolic links are followed (a directory of links to
/// the captures collected from each node is common), each directory at
/// most once, so a link loop ends the walk instead of running it forever.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !std::fs::canonicalize(&d).is_ok_and(|c| seen.insert(c)) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            // `metadata` follows links; `file_type` would not.
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if is_capture(&p) {
                out.push(p);
            }
        }
    }
}

/// The shard (0..n) of a path: FNV-1a of the path as written, so every pod
/// of an Indexed Job that sees the same paths agrees on the split.
pub fn shard_of(p: &Path, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.to_string_lossy().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if n == 0 {
        0
    } else {
        h % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_and_loops_end() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store");
        let incident = d.path().join("incident");
        std::fs::create_dir_all(store.join("deep")).unwrap();
        std::fs::create_dir(&incident).unwrap();
        // A pcap header is enough to be recognised as a capture.
        let header = [
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        std::fs::write(store.join("node-a.pcap"), header).unwrap();
        std::fs::write(store.join("deep/node-b.pcap"), header).unwrap();
        std::os::unix::fs::symlink(store.join("node-a.pcap"), incident.join("a.pcap")).unwrap();
        // Two names for one file: analysed once, under the first name.
        std::os::unix::fs::symlink(store.join("node-a.pcap"), incident.join("b.pcap")).unwrap();
        std::os::unix::fs::symlink(store.join("deep"), incident.join("deep")).unwrap();
        // A loop back to the top.
        std::os::unix::fs::symlink(&incident, incident.join("deep-loop")).unwrap();
        let (files, errors) = expand_inputs(&[incident.display().to_string()]);
        assert!(errors.is_empty());
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(&incident).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.pcap", "deep/node-b.pcap"]);
    }

    #[test]
    fn shards_split_everything_once() {
        let paths: Vec<PathBuf> = (0..100)
            .map(|i| PathBuf::from(format!("/captures/node-{i}.pcap")))
            .collect();
        let mut seen = 0;
        for s in 0..4 {
            seen += paths.iter().filter(|p| shard_of(p, 4) == s).count();
        }
        assert_eq!(seen, 100);
        assert_eq!(
            shard_of(Path::new("/a.pcap"), 4),
            shard_of(Path::new("/a.pcap"), 4)
        );
    }
}
