//! `capsift batch` and `capsift merge` on the shipped captures: tables,
//! report, faults, and shards that merge into what one run writes.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn run(args: &[&str]) -> Run {
    capsift(args, None, Duration::from_secs(300))
}

/// Table rows as canonical JSON strings, sorted (numbers compared as numbers).
fn table(dir: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.ndjson"))).unwrap_or_default();
    let mut rows: Vec<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let obj = v.as_object().unwrap();
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            keys.iter()
                .map(|k| {
                    let val = match &obj[*k] {
                        Value::Number(n) => format!("{:.6}", n.as_f64().unwrap()),
                        other => other.to_string(),
                    };
                    format!("{k}={val}")
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn shards_merged_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    // The lab and synthetic captures (captures/hostile/ is broken on purpose).
    let caps = repo().join("captures/lab");
    let caps = caps.to_str().unwrap();
    let synth = repo().join("captures/synth");
    let synth = synth.to_str().unwrap();
    let all = tmp.path().join("all");
    let r = run(&[
        "batch",
        caps,
        synth,
        "-o",
        all.to_str().unwrap(),
        "--format",
        "ndjson",
        "-j",
        "2",
        "-q",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let mut shard_dirs = Vec::new();
    for i in 0..3 {
        let d = tmp.path().join(format!("shard-{i}"));
        let s = format!("{i}/3");
        let r = run(&[
            "batch",
            caps,
            synth,
            "-o",
            d.to_str().unwrap(),
            "--format",
            "ndjson",
            "--shard",
            &s,
            "-q",
        ]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        shard_dirs.push(d);
    }
    let merged = tmp.path().join("merged");
    let mut args = vec![
        "merge",
        "-o",
        merged.to_str().unwrap(),
        "--format",
        "ndjson",
    ];
    let shard_strs: Vec<String> = shard_dirs
        .iter()
        .map(|d| d.to_string_lossy().to_string())
        .collect();
    args.extend(shard_strs.iter().map(|s| s.as_str()));
    let r = run(&args);
    assert_eq!(r.status, 0, "{}", r.stderr);
    for t in ["captures", "findings", "flows", "dns", "tls"] {
        let a = table(&all, t);
        let m = table(&merged, t);
        assert!(!a.is_empty() || t == "tls", "{t} empty");
        assert_eq!(a.len(), m.len(), "{t}: row counts");
        assert_eq!(a, m, "{t}: rows differ");
    }
    let ra: Value =
        serde_json::from_str(&std::fs::read_to_string(all.join("report.json")).unwrap()).unwrap();
    let rm: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(ra, rm, "the merged report equals the one-run report");
    // Every shard got something, and the shards split the files.
    let counts: Vec<usize> = shard_dirs
        .iter()
        .map(|d| table(d, "captures").len())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), table(&all, "captures").len());
}

#[test]
fn parquet_tables_report_and_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let good = repo().join("captures/lab/tcp-syn-unanswered-refused.pcap");
    std::fs::copy(&good, inputs.join("node-a.pcap")).unwrap();
    std::fs::copy(
        repo().join("captures/lab/dns-ndots-storm.pcap"),
        inputs.join("node-b"),
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(inputs.join("cut.pcap"), &bytes[..bytes.len() - 7]).unwrap();
    // A pcap header followed by a record claiming 3 GB: damaged part-way.
    let mut bad = bytes[..24].to_vec();
    bad.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 60, 0, 0, 0]);
    bad.extend([0u8; 64]);
    std::fs::write(inputs.join("corrupt.pcap"), bad).unwrap();
    std::fs::write(
        inputs.join("notes.txt"),
        b"not a capture, skipped by content",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let r = run(&[
        "batch",
        inputs.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(
        r.status, 2,
        "a damaged input is reported in the exit status: {}",
        r.stderr
    );
    assert!(r.stderr.contains("corrupt.pcap"));
    for t in ["captures", "findings", "flows", "dns", "tls"] {
        assert!(out.join(format!("{t}.parquet")).is_file(), "{t}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("capsift-tmp"))
        .collect();
    assert!(leftovers.is_empty());
    use polars::prelude::*;
    let caps = ParquetReader::new(std::fs::File::open(out.join("captures.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(caps.height(), 4, "notes.txt is not a capture");
    let strings = |df: &DataFrame, c: &str| -> Vec<String> {
        let ca = df.column(c).unwrap().str().unwrap().clone();
        (0..ca.len())
            .filter_map(|i| ca.get(i).map(String::from))
            .collect()
    };
    let status = strings(&caps, "status");
    assert!(status.contains(&"damaged".to_string()));
    assert!(status.contains(&"truncated".to_string()));
    // Each capture's SHA-256 is of the whole file, also for the damaged one
    // whose analysis stopped after 40 bytes.
    let names = strings(&caps, "capture");
    let sums = strings(&caps, "sha256");
    assert_eq!(sums.len(), 4);
    for (name, sum) in names.iter().zip(&sums) {
        let whole = ring::digest::digest(&ring::digest::SHA256, &std::fs::read(name).unwrap());
        let hex: String = whole.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sum, &hex, "{name}");
    }
    let findings = ParquetReader::new(std::fs::File::open(out.join("findings.parquet")).unwrap())
        .finish()
        .unwrap();
    let kinds = strings(&findings, "kind");
    assert!(kinds.contains(&"tcp.syn_unanswered".to_string()));
    assert!(kinds.contains(&"dns.nxdomain".to_string()));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Findings across captures"));
    assert!(report.contains("tcp.syn_unanswered"));
    assert!(report.contains("damaged"));
}

#[test]
fn bad_shard_and_empty_inputs_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o");
    let caps = repo().join("captures");
    let r = run(&[
        "batch",
        caps.to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
        "--shard",
        "3/3",
    ]);
    assert_eq!(r.status, 1);
    let r = run(&[
        "batch",
        tmp.path().to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("no capture files"));
}

/// A batch run again into the same directory with another format: the
/// report describes this run's tables, not the earlier ones left beside
/// them, and `merge` refuses the directory rather than guess which is
/// current (leaving its output untouched).
#[test]
fn report_reads_its_own_format_and_merge_refuses_two() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let first = repo().join("captures/lab/tcp-syn-unanswered-refused.pcap");
    let second = repo().join("captures/lab/dns-ndots-storm.pcap");
    assert!(first.is_file() && second.is_file());
    let r = run(&["batch", first.to_str().unwrap(), "-o", o, "-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let r = run(&[
        "batch",
        second.to_str().unwrap(),
        "-o",
        o,
        "--format",
        "csv",
        "-q",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(out.join("captures.parquet").is_file() && out.join("captures.csv").is_file());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("dns-ndots-storm.pcap"), "{report}");
    assert!(
        !report.contains("tcp-syn-unanswered-refused.pcap"),
        "{report}"
    );

    let merged = tmp.path().join("merged");
    let r = run(&["merge", o, "-o", merged.to_str().unwrap()]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(r.stderr.contains("several formats"), "{}", r.stderr);
    let left: Vec<_> = std::fs::read_dir(&merged)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "merge left {left:?}");
}

/// Without a terminal, progress is plain lines on stderr (the last one when
/// every capture is done); `-q` prints none.
#[test]
fn progress_lines_without_a_terminal_and_none_with_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let first = repo().join("captures/lab/tcp-syn-unanswered-refused.pcap");
    let second = repo().join("captures/lab/dns-ndots-storm.pcap");
    let (a, b) = (first.to_str().unwrap(), second.to_str().unwrap());
    let out = tmp.path().join("o");
    let r = run(&["batch", a, b, "-o", out.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stderr.contains("batch: 2/2 files"), "{}", r.stderr);
    let r = run(&["batch", a, b, "-o", out.to_str().unwrap(), "-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("batch: "), "{}", r.stderr);
}
