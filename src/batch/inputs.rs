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
    (files, errors)
}

fn is_capture(p: &Path) -> bool {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(p)
        .and_then(|mut f| crate::capture::source::read_fully(&mut f, &mut head))
        .unwrap_or(0);
    crate::capture::looks_like_capture(&head[..n])
}

/// Walk a directory (symbolic links to directories are not followed).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() && is_capture(&p) {
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
