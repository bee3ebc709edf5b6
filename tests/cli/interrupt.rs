//! Interrupted runs (Ctrl-C, a pod's SIGTERM): capsift removes its
//! unfinished outputs, leaves nothing that looks whole, and exits with the
//! shell's status for the signal.

use crate::common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The temporary files in `dir` (none if it does not exist yet).
fn temps_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(".capsift-tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until capsift has created its temporary outputs in `dir`.
fn wait_for_temps(dir: &Path, child: &mut Child) {
    let start = Instant::now();
    while temps_in(dir).is_empty() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("capsift ended ({st}) before its outputs were started");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no temporary output appeared in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Send `signal` (a name for kill(1)), wait for the end, return the exit
/// code and stderr.
fn interrupt(child: &mut Child, signal: &str) -> (Option<i32>, String) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} failed");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("capsift did not end after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// `scrub -` waiting for the rest of its input (a capture streamed from a
/// node) when SIGTERM comes: the half-written output is removed.
#[test]
fn sigterm_during_scrub_removes_the_unfinished_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticket.pcapng");
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsift"))
        .args(["scrub", "-", "-o", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let capture = std::fs::read(repo().join("captures/lab/tls-lab.pcap")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&capture[..capture.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // stdin stays open: capsift waits for the rest, its output unfinished.
    wait_for_temps(dir.path(), &mut child);
    let (code, stderr) = interrupt(&mut child, "TERM");
    drop(stdin);
    assert_eq!(code, Some(128 + 15), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM: removed 1 unfinished output file"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Ctrl-C while a batch analyses: no table, no report, no temporary file;
/// the next batch into the directory runs as if nothing happened.
#[test]
fn sigint_during_batch_leaves_no_table_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("node-a");
    std::fs::create_dir(&input).unwrap();
    write_syn_flows(&input.join("node-a.pcap"), 500_000);
    let out = dir.path().join("out");
    let args = [
        "batch",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-j",
        "1",
        "-q",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsift"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_temps(&out, &mut child);
    let (code, stderr) = interrupt(&mut child, "INT");
    assert_eq!(code, Some(128 + 2), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT: removed 5 unfinished output file"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    let again = capsift(&args, None, Duration::from_secs(300));
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(out.join("flows.parquet").is_file() && out.join("report.md").is_file());
    assert!(temps_in(&out).is_empty());
}
