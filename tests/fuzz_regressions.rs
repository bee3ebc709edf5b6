//! Every input a fuzz target ever failed on (fuzz/regressions/<target>/),
//! run again through the same checks as the target (fuzz/fuzz_targets/),
//! so a fixed crash stays fixed without nightly or cargo-fuzz.

use capsift::scrub::anonymize::{AddressMapper, NameHasher, ScrubKey};
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v.into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn dns_regressions() {
    let all = inputs("dns");
    assert!(!all.is_empty());
    for (p, data) in all {
        let _ = capsift::dns::message::parse(&data);
        let _ = capsift::dns::message::fallback(&data);
        let key = ScrubKey::from_bytes([7; 32]);
        let mut names = NameHasher::new(&key);
        let mut addrs = AddressMapper::new(&key, &[]);
        let mut msg = data.clone();
        if capsift::scrub::dns::rewrite(&mut msg, Some(&mut names), Some(&mut addrs)).is_ok() {
            assert_eq!(msg.len(), data.len());
            assert_eq!(
                msg[..12],
                data[..12],
                "{}: the header is never rewritten",
                p.display()
            );
            let mut again = msg.clone();
            assert!(
                capsift::scrub::dns::rewrite(&mut again, None, None).is_ok(),
                "{}",
                p.display()
            );
        }
    }
}

#[test]
fn scrub_regressions() {
    use capsift::scrub::{scrub_file, verify::verify, ScrubOptions};
    let all: Vec<_> = inputs("scrub")
        .into_iter()
        .filter(|(p, _)| p.extension().is_none_or(|e| e != "key"))
        .collect();
    assert!(!all.is_empty());
    for (p, _) in all {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let saved = PathBuf::from(format!("{}.key", p.display()));
        std::fs::write(
            &key,
            std::fs::read(&saved).unwrap_or_else(|_| "07".repeat(32).into_bytes()),
        )
        .unwrap();
        let out = dir.path().join("out.pcapng");
        let opts = ScrubOptions {
            keep_dns: true,
            keep_tls_handshake: true,
            hash_names: true,
            anonymize: true,
            key_file: Some(key),
            ..ScrubOptions::default()
        };
        let Ok(report) = scrub_file(&p, &out, &opts) else {
            continue;
        };
        assert_eq!(report.packets_in, report.packets_out);
        let v = verify(&p, &out, false, false, &opts.decode, &opts.dns_ports).unwrap();
        assert!(v.ok, "{}: {v:?}", p.display());
    }
}
