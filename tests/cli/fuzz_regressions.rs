//! Every input a fuzz target ever failed on (fuzz/regressions/<target>/),
//! run again through the same check as the target
//! (`capsift::scrub::selfcheck`), so a fixed failure stays fixed without
//! nightly or cargo-fuzz.

use std::path::PathBuf;

/// The inputs kept for a target (a `NAME.key` file beside an input is the
/// scrub key it failed with).
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_none_or(|e| e != "key"));
    v.sort();
    assert!(!v.is_empty(), "no regression inputs in {}", dir.display());
    v
}

#[test]
fn dns_regressions() {
    for p in inputs("dns") {
        let data = std::fs::read(&p).unwrap();
        if let Err(e) = capsift::scrub::selfcheck::dns_message(&data) {
            panic!("{}: {e}", p.display());
        }
    }
}

#[test]
fn scrub_regressions() {
    for p in inputs("scrub") {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let saved = PathBuf::from(format!("{}.key", p.display()));
        let bytes = std::fs::read(&saved).unwrap_or_else(|_| "07".repeat(32).into_bytes());
        std::fs::write(&key, bytes).unwrap();
        let out = dir.path().join("out.pcapng");
        if let Err(e) = capsift::scrub::selfcheck::scrub_everything(&p, &out, &key) {
            panic!("{}: {e}", p.display());
        }
    }
}
