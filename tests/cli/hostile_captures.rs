//! The hostile captures of `captures/hostile/` (made by its generate.py)
//! and a million-flow capture written here: for each, every command ends
//! without a panic or a hang, says what was wrong with a warning (or an
//! error for a file that is no capture at all), and stays within its
//! documented memory bound.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn hostile(name: &str) -> String {
    repo()
        .join("captures/hostile")
        .join(name)
        .to_string_lossy()
        .to_string()
}

fn warnings(v: &Value) -> Vec<String> {
    v["inputs"][0]["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| w["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// analyze, info and scrub on one file; returns analyze's status and JSON.
fn all_commands(path: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.pcapng");
    let r = capsift(&["info", "--json", path], None, LIMIT);
    assert!(r.status == 0 || r.status == 2, "info {path}: {}", r.stderr);
    let r = capsift(
        &[
            "scrub",
            path,
            "-o",
            out.to_str().unwrap(),
            "--keep",
            "dns",
            "--keep",
            "tls-handshake",
            "--anonymize",
            "--hash-names",
            "--key-file",
            dir.path().join("k").to_str().unwrap(),
        ],
        None,
        LIMIT,
    );
    assert!(r.status <= 2, "scrub {path}: {}", r.stderr);
    if r.status != 1 {
        let v = capsift(
            &["scrub", "--verify", path, out.to_str().unwrap()],
            None,
            LIMIT,
        );
        assert_eq!(v.status, 0, "verify {path}: {}", v.stdout);
    }
    let (r, peak_kb) = capsift_peak_rss(&["analyze", "--format", "json", "-q", path], LIMIT);
    // The documented bound for a small hostile file (docs/hardening.md).
    assert!(
        peak_kb < 100 * 1024,
        "analyze {path} peaked at {peak_kb} KB"
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r.status, v)
}

#[test]
fn each_hostile_capture_is_survived_and_explained() {
    let expect: [(&str, i32, &str); 13] = [
        ("tls-gap-then-300-segments.pcap", 0, "tls.limit"),
        ("caplen-4g.pcap", 2, "capture.corrupt_record"),
        ("snaplen-0.pcap", 0, "capture.snaplen_zero"),
        ("pcapng-lying-lengths.pcapng", 2, "capture.corrupt_block"),
        (
            "pcapng-undescribed-interface.pcapng",
            0,
            "capture.unknown_interface",
        ),
        ("nested-ipip-1000.pcap", 0, "decode.depth_limit"),
        ("nested-vxlan-300.pcap", 0, "decode.depth_limit"),
        ("dns-compression-loops.pcap", 0, "dns.malformed"),
        ("tls-claims-16mb.pcap", 0, "tls.oversized"),
        ("time-backwards.pcap", 0, "capture.time_backwards"),
        ("zero-length-packets.pcap", 0, "decode.short_packet"),
        ("random-after-header.pcap", 2, "capture.corrupt_record"),
        ("many-flows.pcap", 0, ""),
    ];
    for (name, status, kind) in expect {
        let (s, v) = all_commands(&hostile(name));
        assert_eq!(s, status, "{name}: {v}");
        if !kind.is_empty() {
            assert!(
                warnings(&v).iter().any(|k| k == kind),
                "{name}: {:?}",
                warnings(&v)
            );
        }
    }
    // Not a capture at all: an error that says what capsift reads.
    let r = capsift(&["analyze", &hostile("random.bin")], None, LIMIT);
    assert_eq!(r.status, 2);
    assert!(
        r.stderr.contains("not a pcap or pcapng capture"),
        "{}",
        r.stderr
    );
    // A smaller flow table on request: the rest is dropped, and it says so.
    let r = capsift(
        &[
            "analyze",
            "--format",
            "json",
            "-q",
            "--max-flows",
            "5000",
            &hostile("many-flows.pcap"),
        ],
        None,
        LIMIT,
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        warnings(&v).iter().any(|k| k == "flow.table_full"),
        "{:?}",
        warnings(&v)
    );
    assert_eq!(v["inputs"][0]["flows"], 5000);
    // The 20,000 flows are all there.
    let (_, v) = all_commands(&hostile("many-flows.pcap"));
    assert_eq!(v["inputs"][0]["flows"], 20_000, "{}", v["inputs"][0]);
}

/// The generator is the source of truth: the files in the repository are
/// what it writes (run `python3 captures/hostile/generate.py` after a change).
#[test]
fn shipped_hostile_files_match_the_generator() {
    let Ok(py) = std::process::Command::new("python3")
        .arg("--version")
        .output()
    else {
        eprintln!("skipped: python3 not found");
        return;
    };
    assert!(py.status.success());
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("python3")
        .arg(repo().join("captures/hostile/generate.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(st.status.success());
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let shipped = repo().join("captures/hostile").join(e.file_name());
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(&shipped).unwrap(),
            "{}",
            shipped.display()
        );
    }
}

/// A million distinct flows (1,000,000 SYNs from distinct source endpoints,
/// none closed): every one is tracked, and `analyze` stays under 1 GB.
#[test]
fn a_million_flows_stay_under_a_gigabyte() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("million.pcap");
    write_syn_flows(&p, 1_000_000);
    let ps = p.to_string_lossy().to_string();
    let (r, peak_kb) = capsift_peak_rss(
        &["analyze", "--format", "json", "-q", &ps],
        Duration::from_secs(300),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["inputs"][0]["flows"], 1_000_000);
    assert!(peak_kb > 0, "peak RSS could not be read");
    assert!(
        peak_kb < 1024 * 1024,
        "analyze of a million flows peaked at {peak_kb} KB"
    );
    eprintln!("a million flows: analyze peaked at {} MB", peak_kb / 1024);
}
