//! Hostile input: damaged files, files cut anywhere, random bytes. capsift
//! must never panic or hang, and must say what was wrong.

use crate::common::*;
use std::time::Duration;

#[test]
fn shared_malformed_corpus_never_panics_and_always_explains() {
    let Some(corpus) = shared_corpus() else {
        return;
    };
    let files = captures_under(&corpus.join("malformed"));
    assert!(!files.is_empty());
    for f in files {
        let (status, v) = info_json(&f);
        assert!(status == 0 || status == 2, "{}: exit {status}", f.display());
        if status == 2 {
            let fi = &v["files"][0];
            assert!(
                !warning_kinds(fi).is_empty(),
                "{}: damaged but no warning",
                f.display()
            );
        }
    }
}

/// Cut every capture we ship at ten offsets; tcpdump killed mid-write is
/// the common case, so a cut inside a record must still give the packets
/// before it, exit 0 and a `capture.truncated` warning with the offset.
#[test]
fn captures_cut_at_ten_offsets() {
    let files = captures_under(&repo().join("captures"));
    assert!(!files.is_empty(), "no captures shipped in captures/");
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        if capsift::capture::Compression::sniff(&bytes) != capsift::capture::Compression::None {
            continue;
        }
        let (_, whole) = info_json(&f);
        let whole_packets = whole["files"][0]["packets"].as_u64().unwrap();
        for i in 1..=10u64 {
            let cut = (bytes.len() as u64 * i / 11) as usize;
            let p = dir.path().join(format!("cut-{i}.pcap"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let ps = p.to_string_lossy().to_string();
            let r = capsift(&["info", "--json", &ps], None, Duration::from_secs(60));
            if r.status == 2 && r.stderr.contains("header") {
                // Cut inside the file header: nothing to read, and it says so.
                continue;
            }
            let status = r.status;
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            let fi = &v["files"][0];
            assert_eq!(status, 0, "{} cut at {cut}: {v}", f.display());
            let packets = fi["packets"].as_u64().unwrap();
            assert!(packets <= whole_packets);
            let kinds = warning_kinds(fi);
            let w = fi["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["kind"] == "capture.truncated");
            // A cut exactly on a record boundary is a clean (shorter) file.
            if let Some(w) = w {
                let off = w["offset"].as_u64().unwrap();
                assert!(off < cut as u64, "{kinds:?}");
                assert!(w["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{packets} complete packets")));
            }
        }
    }
}

#[test]
fn random_bytes_empty_files_and_bare_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = Vec::new();
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random.bin", random.clone()),
        ("empty.pcap", Vec::new()),
        ("header-only.pcap", {
            let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            b.extend([0u8; 8]);
            b.extend(65535u32.to_le_bytes());
            b.extend(1u32.to_le_bytes());
            b
        }),
        ("pcap-then-random.pcap", {
            let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            b.extend([0u8; 8]);
            b.extend(0u32.to_le_bytes());
            b.extend(1u32.to_le_bytes());
            b.extend(&random);
            b
        }),
        ("pcapng-then-random.pcapng", {
            let mut b = vec![
                0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
            ];
            b.extend([0xff; 8]);
            b.extend(28u32.to_le_bytes());
            b.extend(&random);
            b
        }),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let r = capsift(
            &["info", "--json", p.to_str().unwrap()],
            None,
            Duration::from_secs(30),
        );
        assert!(r.status == 0 || r.status == 2, "{name}: {}", r.stderr);
        if r.status == 2 {
            assert!(
                r.stderr.contains(name) || r.stdout.contains("warnings"),
                "{name}: no explanation: {} {}",
                r.stdout,
                r.stderr
            );
        }
    }
}
