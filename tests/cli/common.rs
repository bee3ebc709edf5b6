//! Helpers shared by the integration tests: run the real `capsift` binary
//! with a time limit, and find the captures the tests run on.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run capsift with `args`, optional stdin bytes; fail the test if it runs
/// longer than `limit` (a hang is a bug) or dies from a signal (a panic).
pub fn capsift(args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Run {
    watched(args, stdin, limit).0
}

pub fn info_json(path: &Path) -> (i32, serde_json::Value) {
    let p = path.to_string_lossy().to_string();
    let r = capsift(&["info", "--json", &p], None, Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "info --json {p}: bad JSON ({e}): {} / {}",
            r.stdout, r.stderr
        )
    });
    (r.status, v)
}

/// The findings of `kind` in an `analyze --format json` report.
pub fn of_kind<'a>(v: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// The kinds of the findings in an `analyze --format json` report.
pub fn kinds(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The rows of `capsift table TABLE --format ndjson -q EXTRA... PATH`,
/// which must succeed.
pub fn table_rows(table: &str, path: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let p = path.to_string_lossy().to_string();
    let mut args = vec!["table", table, "--format", "ndjson", "-q"];
    args.extend_from_slice(extra);
    args.push(&p);
    let r = capsift(&args, None, Duration::from_secs(60));
    assert_eq!(r.status, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Capture files under `dir` (recursively), recognised by magic bytes.
/// `captures/hostile/` is left out: those files are built to be broken and
/// have their own test (tests/cli/hostile_captures.rs).
pub fn captures_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("captures/hostile") {
                    stack.push(p);
                }
            } else if let Ok(bytes) = std::fs::read(&p) {
                if capsift::capture::looks_like_capture(&bytes[..bytes.len().min(8)]) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// `../shared/corpus` next to the repository, when this machine has it.
pub fn shared_corpus() -> Option<PathBuf> {
    let p = repo().join("../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "skipped: ../shared/corpus is not present (fresh clone without the shared corpus)"
        );
        None
    }
}

pub fn warning_kinds(file: &serde_json::Value) -> Vec<String> {
    file["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["kind"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Like [`capsift`], also returning the peak resident memory in KB (read
/// from /proc while it runs; 0 where /proc is not available).
pub fn capsift_peak_rss(args: &[&str], limit: Duration) -> (Run, u64) {
    watched(args, None, limit)
}

/// Run capsift under watch: time limit, signal, "panicked" on stderr, and
/// the peak resident memory sampled from /proc.
fn watched(args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> (Run, u64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capsift"));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("capsift starts");
    let pid = child.id();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let mut peak = 0u64;
    let status = loop {
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = st
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("capsift {args:?} ran longer than {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = err.join().unwrap_or_default();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("capsift {args:?} killed by a signal: {stderr}"));
    assert!(
        !stderr.contains("panicked"),
        "capsift {args:?} panicked: {stderr}"
    );
    (
        Run {
            status: code,
            stdout: out.join().unwrap_or_default(),
            stderr,
        },
        peak,
    )
}

/// A pcap of `n` SYNs from distinct source endpoints to 10.255.0.1:80,
/// none answered: `n` flows, as many as the flow table must hold.
pub fn write_syn_flows(p: &Path, n: u32) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
    w.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ])
    .unwrap();
    for i in 0..n {
        let mut pkt = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let src = (0x0a00_0001u32 + (i >> 8)).to_be_bytes();
        pkt.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        pkt.extend_from_slice(&src);
        pkt.extend_from_slice(&[10, 255, 0, 1]);
        pkt.extend_from_slice(&(1024 + (i & 0xff) as u16).to_be_bytes());
        pkt.extend_from_slice(&80u16.to_be_bytes());
        pkt.extend_from_slice(&i.to_be_bytes());
        pkt.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        let ts = 1 + i / 100_000;
        w.write_all(&ts.to_le_bytes()).unwrap();
        w.write_all(&(i % 100_000).to_le_bytes()).unwrap();
        w.write_all(&(pkt.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&(pkt.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&pkt).unwrap();
    }
}
