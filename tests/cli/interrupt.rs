//! Interrupted runs (Ctrl-C, a pod's SIGTERM): capsift removes its
//! unfinished outputs, leaves nothing that looks whole, and dies of the
//! signal (a shell shows 128 + its number); a signal inherited as ignored
//! (`nohup`) stays ignored.

use crate::common::*;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
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

/// Wait until capsift has created `n` temporary outputs in `dir`.
fn wait_for_temps(dir: &Path, n: usize, child: &mut Child) {
    let start = Instant::now();
    while temps_in(dir).len() < n {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("capsift ended ({st}) before its outputs were started");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{n} temporary outputs did not appear in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Send `signal` (a name such as TERM) with the shell's kill builtin.
fn send(child: &Child, signal: &str) {
    let sent = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "sh", signal])
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -s {signal} failed");
}

/// Send `signal`, wait for the end, return the signal that ended capsift
/// and its stderr.
fn interrupt(child: &mut Child, signal: &str) -> (Option<i32>, String) {
    send(child, signal);
    let status = wait(child, signal);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.signal(), stderr)
}

fn wait(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("capsift did not end after {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A command that runs its arguments with SIGINT, SIGTERM and SIGHUP at
/// their default action: capsift keeps a signal its parent ignores, and a
/// test run in the background of a script (SIGINT ignored) must still see
/// capsift handle it.
fn with_default_signals() -> Command {
    let mut c = Command::new("env");
    c.arg("--default-signal=INT,TERM,HUP");
    c
}

/// `capsift scrub - -o OUT` (optionally under `nohup`), fed half of a
/// capture and waiting for the rest, its output unfinished.
fn scrub_waiting(out: &Path, nohup: bool) -> (Child, std::process::ChildStdin, Vec<u8>) {
    let mut cmd = if nohup {
        Command::new("nohup")
    } else {
        with_default_signals()
    };
    let mut child = cmd
        .arg(env!("CARGO_BIN_EXE_capsift"))
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
    wait_for_temps(out.parent().unwrap(), 1, &mut child);
    (child, stdin, capture)
}

/// `scrub -` waiting for the rest of its input (a capture streamed from a
/// node) when SIGTERM comes: the half-written output is removed.
#[test]
fn sigterm_during_scrub_removes_the_unfinished_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticket.pcapng");
    let (mut child, stdin, _) = scrub_waiting(&out, false);
    let (signal, stderr) = interrupt(&mut child, "TERM");
    drop(stdin);
    assert_eq!(signal, Some(15), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM: removed 1 unfinished output file"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Under `nohup`, SIGHUP stays ignored: the scrub goes on and completes.
#[test]
fn sighup_ignored_by_nohup_stays_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticket.pcapng");
    let (mut child, mut stdin, capture) = scrub_waiting(&out, true);
    send(&child, "HUP");
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP ended capsift");
    stdin.write_all(&capture[capture.len() / 2..]).unwrap();
    drop(stdin);
    let status = wait(&mut child, "the end of its input");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(out.is_file());
    assert!(temps_in(dir.path()).is_empty());
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
    let mut child = with_default_signals()
        .arg(env!("CARGO_BIN_EXE_capsift"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // All five tables started (they are created one after another).
    wait_for_temps(&out, 5, &mut child);
    let (signal, stderr) = interrupt(&mut child, "INT");
    assert_eq!(signal, Some(2), "{stderr}");
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
