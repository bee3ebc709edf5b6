//! `capsift batch` and `capsift merge`: many captures, in parallel, into
//! tables other tools can query, and a cross-capture report.
//!
//! Each worker analyses one capture at a time and hands its rows to the
//! writer thread, so memory grows with the number of workers, not with the
//! number of files. Tables and the report are written under temporary names
//! and renamed when complete: an interrupted batch leaves no table that looks
//! whole. `--shard I/N` takes a deterministic subset (by a hash of the path),
//! so N pods of a Kubernetes Indexed Job can split the inputs; `merge`
//! combines their output directories into what one run would have written.

mod hashing;
mod inputs;
mod progress;
pub mod report;
pub mod tables;

pub use inputs::{expand_inputs, shard_of};

use hashing::{FileHash, HashPool, HashingReader};

use crate::analyze::{self, AnalyzeOptions, Sinks};
use crate::detect::{Finding, Severity};
use crate::report::dns_table::DnsRow;
use crate::report::flows_table::{FlowRow, TableFormat};
use crate::report::frame_builder::FrameBuilder;
use crate::report::tls_table::TlsRow;
use polars::prelude::DataFrame;
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc, Mutex};

/// How often the progress display is brought up to date while captures run.
const PROGRESS_TICK: std::time::Duration = std::time::Duration::from_millis(250);

pub struct BatchOptions {
    pub inputs: Vec<String>,
    pub out: PathBuf,
    pub jobs: usize,
    pub format: TableFormat,
    pub quiet: bool,
    /// (index, count): this run takes the inputs whose shard is `index`.
    pub shard: Option<(u64, u64)>,
    pub analyze: AnalyzeOptions,
}

/// One row of `captures`: what happened to each input.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureRow {
    pub capture: String,
    pub size: u64,
    pub sha256: String,
    pub format: String,
    pub link_types: String,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub flows: u64,
    pub findings: u64,
    /// Worst finding severity, or `ok`.
    pub verdict: String,
    /// `ok`, `truncated` (cut last record, still analysed), `damaged`,
    /// `unreadable`, `failed` (an internal error of capsift).
    pub status: String,
    pub error: Option<String>,
    /// Warning kinds, space-separated.
    pub warnings: String,
}

/// One row of `findings`.
#[derive(Debug, Clone, Serialize)]
pub struct FindingRow {
    pub capture: String,
    pub kind: String,
    pub severity: String,
    /// What the finding is about, for grouping across captures (a DNS name,
    /// a server, a node pair ...).
    pub key: String,
    pub title: String,
    pub summary: String,
    pub frames: String,
    pub display_filter: String,
    pub flow_id: Option<u64>,
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<String>,
    pub dst_port: Option<u16>,
    pub tunnel: Option<String>,
    pub details: String,
    pub next_checks: String,
}

/// The grouping key of a finding: the thing several captures may share.
pub fn finding_key(f: &Finding) -> String {
    let d = &f.details;
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match f.kind {
        "dns.nxdomain" => s(&d["qname"]),
        "dns.ndots_storm" => s(&d["name"]),
        "dns.unanswered" | "dns.slow" => format!("{}:{}", s(&d["server_ip"]), s(&d["server_port"])),
        "mtu.blackhole" => format!("{} -> {}", s(&d["sender"]), s(&d["receiver"])),
        "mtu.icmp_too_big" => format!("{} mtu {}", s(&d["router"]), s(&d["mtu"])),
        "mtu.overlay_mismatch" | "mtu.fragmented_tunnel" => s(&d["tunnel"]),
        "tcp.syn_unanswered" | "tcp.connection_refused" => {
            let srv = &d["servers"][0];
            format!("{}:{}", s(&srv["server_ip"]), s(&srv["server_port"]))
        }
        "overlay.one_way" => format!("{} -> {}", s(&d["src"]), s(&d["dst"])),
        "overlay.wireguard_handshake_unanswered" => {
            format!("{} -> {}", s(&d["initiator"]), s(&d["responder"]))
        }
        "arp.mac_moved" => s(&d["ip"]),
        k if k.starts_with("tls.") => {
            let sni = s(&d["sni"]);
            if sni.is_empty() {
                s(&d["server"])
            } else {
                sni
            }
        }
        _ => f
            .flow
            .as_ref()
            .map(|fl| format!("{}:{}", fl.dst_ip, fl.dst_port))
            .unwrap_or_else(|| f.title.clone()),
    }
}

impl FindingRow {
    pub fn of(capture: &str, f: &Finding) -> FindingRow {
        FindingRow {
            capture: capture.to_string(),
            kind: f.kind.to_string(),
            severity: f.severity.as_str().to_string(),
            key: finding_key(f),
            title: f.title.clone(),
            summary: f.summary.clone(),
            frames: f
                .evidence
                .frames
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            display_filter: f.evidence.display_filter.clone(),
            flow_id: f.flow.as_ref().map(|x| x.flow_id),
            src_ip: f.flow.as_ref().map(|x| x.src_ip.to_string()),
            src_port: f.flow.as_ref().map(|x| x.src_port),
            dst_ip: f.flow.as_ref().map(|x| x.dst_ip.to_string()),
            dst_port: f.flow.as_ref().map(|x| x.dst_port),
            tunnel: f.flow.as_ref().map(|x| x.tunnel.clone()),
            details: f.details.to_string(),
            next_checks: f.next_checks.join("\n"),
        }
    }
}

/// One table's rows from one capture, in the form the writer takes them.
pub enum TableRows {
    /// CSV and NDJSON: rows as JSON values, written one by one.
    Json(Vec<Value>),
    /// Parquet: typed columns, built by the worker as rows come ...
    Columns(FrameBuilder),
    /// ... and the frame they become, still in the worker, so the one
    /// writer thread only appends row groups.
    Frame(DataFrame),
    /// A row could not be added (a bug, not bad input): the batch stops.
    Failed(String),
}

impl TableRows {
    fn new(format: TableFormat) -> TableRows {
        match format {
            TableFormat::Parquet => TableRows::Columns(FrameBuilder::new()),
            _ => TableRows::Json(Vec::new()),
        }
    }

    fn push<T: Serialize>(&mut self, row: &T) {
        let failed = match self {
            TableRows::Json(rows) => match serde_json::to_value(row) {
                Ok(v) => {
                    rows.push(v);
                    None
                }
                Err(e) => Some(e.to_string()),
            },
            TableRows::Columns(b) => b.push(row).err().map(|e| e.to_string()),
            TableRows::Frame(_) | TableRows::Failed(_) => None,
        };
        if let Some(e) = failed {
            *self = TableRows::Failed(format!("building a table row: {e}"));
        }
    }

    /// Columns become a frame (in the worker, in parallel with the others).
    fn into_frame(self) -> TableRows {
        match self {
            TableRows::Columns(b) => b
                .finish()
                .map_or_else(|e| TableRows::Failed(e.to_string()), TableRows::Frame),
            other => other,
        }
    }
}

/// Everything one capture produced.
pub struct CaptureResult {
    pub capture: CaptureRow,
    /// The rows of `findings`, `flows`, `dns` and `tls`, in that order.
    pub tables: [TableRows; 4],
}

/// Analyse one capture for the batch: never fails, a bad file is a row.
pub fn analyze_one(
    path: &Path,
    opts: &AnalyzeOptions,
    format: TableFormat,
    bytes_done: &AtomicU64,
    hash_pool: Option<&Arc<HashPool>>,
) -> CaptureResult {
    let name = path.display().to_string();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let hash = Arc::new(Mutex::new(Some(FileHash::new(hash_pool.cloned()))));
    // The same open file, to hash what the analysis did not read.
    let mut rest = None;
    let mut flows = TableRows::new(format);
    let mut dns = TableRows::new(format);
    let mut tls = TableRows::new(format);
    let opened = std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            rest = f.try_clone().ok();
            let reader = HashingReader {
                inner: f,
                hash: hash.clone(),
            };
            crate::capture::CaptureReader::from_reader(Box::new(reader)).map_err(|e| e.to_string())
        });
    let result = opened.map(|reader| {
        let mut flow_rows = |f: &crate::flow::Flow| flows.push(&FlowRow::of(&name, f));
        let mut dns_rows = |q: &crate::dns::DnsQuery| dns.push(&DnsRow::of(&name, q));
        let mut tls_rows = |h: &crate::tls::TlsHandshake| tls.push(&TlsRow::of(&name, h));
        let mut sinks = Sinks {
            flows: Some(&mut flow_rows),
            dns: Some(&mut dns_rows),
            tls: Some(&mut tls_rows),
        };
        let quiet = crate::analyze::progress::Progress::new(false, None, "");
        analyze::analyze_reader(reader, &name, 0, opts, &mut sinks, Some(bytes_done), &quiet)
    });
    // The whole file, also where the analysis stopped early; empty when it
    // could not be opened or read to the end.
    let sha256 = hash
        .lock()
        .ok()
        .and_then(|mut h| h.take())
        .zip(rest)
        .and_then(|(h, file)| h.finish_rest(file))
        .unwrap_or_default();
    match result {
        Ok((s, findings)) => {
            let mut finding_rows = TableRows::new(format);
            for f in &findings {
                finding_rows.push(&FindingRow::of(&name, f));
            }
            let worst = findings.iter().map(|f| f.severity).max();
            let status = if !s.complete {
                "damaged"
            } else if s.warnings.iter().any(|w| w.kind == "capture.truncated") {
                "truncated"
            } else {
                "ok"
            };
            CaptureResult {
                capture: CaptureRow {
                    capture: name.clone(),
                    size,
                    sha256,
                    format: s.format.to_string(),
                    link_types: s.link_types.join(" "),
                    packets: s.packets,
                    bytes: s.bytes,
                    first_ts: s.first_ts.clone(),
                    last_ts: s.last_ts.clone(),
                    flows: s.flows,
                    findings: findings.len() as u64,
                    verdict: worst.map_or("ok", Severity::as_str).to_string(),
                    status: status.to_string(),
                    error: (!s.complete).then(|| {
                        s.warnings
                            .iter()
                            .map(|w| w.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    }),
                    warnings: s
                        .warnings
                        .iter()
                        .map(|w| w.kind.clone())
                        .collect::<Vec<_>>()
                        .join(" "),
                },
                tables: [finding_rows, flows, dns, tls],
            }
        }
        Err(e) => CaptureResult::not_analysed(name, size, sha256, "unreadable", e, format),
    }
}

impl CaptureResult {
    /// A capture that yielded no rows: its `captures` row says why.
    fn not_analysed(
        capture: String,
        size: u64,
        sha256: String,
        status: &str,
        error: String,
        format: TableFormat,
    ) -> CaptureResult {
        CaptureResult {
            capture: CaptureRow {
                capture,
                size,
                sha256,
                format: String::new(),
                link_types: String::new(),
                packets: 0,
                bytes: 0,
                first_ts: None,
                last_ts: None,
                flows: 0,
                findings: 0,
                verdict: "ok".to_string(),
                status: status.to_string(),
                error: Some(error),
                warnings: String::new(),
            },
            tables: [
                TableRows::new(format),
                TableRows::new(format),
                TableRows::new(format),
                TableRows::new(format),
            ],
        }
    }
}

/// `run`, or, if it panics (a bug in capsift, not bad input: no code path
/// is meant to), a `failed` row for `path` instead of the end of the whole
/// batch.
fn guard(path: &Path, format: TableFormat, run: impl FnOnce() -> CaptureResult) -> CaptureResult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        CaptureResult::not_analysed(
            path.display().to_string(),
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            String::new(),
            "failed",
            format!(
                "capsift internal error (please report it, with this capture if you can): {what}"
            ),
            format,
        )
    })
}

/// What a batch did, for the exit status.
pub struct BatchSummary {
    pub captures: usize,
    pub failed: usize,
    pub errors: Vec<String>,
}

pub fn run(opts: &BatchOptions) -> Result<BatchSummary, String> {
    let (mut files, mut errors) = expand_inputs(&opts.inputs);
    if let Some((i, n)) = opts.shard {
        files.retain(|p| shard_of(p, n) == i);
    }
    if files.is_empty() && errors.is_empty() {
        return Err("no capture files found in the inputs".to_string());
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let mut writers = tables::TableSet::create(&opts.out, opts.format)?;
    // Largest first: a big capture started last would leave the other
    // workers idle while it runs (longest-processing-time-first keeps the
    // finish within one small file of optimal).
    let mut by_size: Vec<(u64, PathBuf)> = files
        .iter()
        .map(|p| {
            (
                std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                p.clone(),
            )
        })
        .collect();
    by_size.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total_bytes: u64 = by_size.iter().map(|(n, _)| n).sum();
    // No more workers than captures (`-j 64` on 3 files starts 3).
    let workers = opts.jobs.clamp(1, files.len().max(1));
    let bar = progress::BatchProgress::new(opts.quiet, files.len() as u64, total_bytes, workers);
    let queue = Mutex::new(by_size.into_iter().map(|(_, p)| p).collect::<VecDeque<_>>());
    let bytes_done = AtomicU64::new(0);
    let (tx, rx) = mpsc::sync_channel::<CaptureResult>(workers);
    let mut failed = 0;
    let mut write_error = None;
    let mut last = None;
    let format = opts.format;
    let mut analyze_opts = opts.analyze.clone();
    analyze_opts.progress = false;
    let hash_pool = Arc::new(HashPool::new(workers));
    let mut spawn_error = None;
    let mut started = 0;
    std::thread::scope(|s| {
        for worker in 0..workers {
            let tx = tx.clone();
            let (queue, bytes_done, bar, analyze_opts, hash_pool) =
                (&queue, &bytes_done, &bar, &analyze_opts, &hash_pool);
            // Taken before the thread starts: if it cannot start, or panics,
            // dropping the slot counts it out of the readers.
            let slot = hash_pool.reader();
            let spawned = std::thread::Builder::new()
                .name(format!("capsift-worker-{worker}"))
                .spawn_scoped(s, move || {
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                        let Some(path) = next else { break };
                        bar.start(worker, &path);
                        let r = guard(&path, format, || {
                            let mut r = analyze_one(
                                &path,
                                analyze_opts,
                                format,
                                bytes_done,
                                Some(hash_pool),
                            );
                            r.tables = r.tables.map(TableRows::into_frame);
                            r
                        });
                        if tx.send(r).is_err() {
                            break;
                        }
                    }
                    drop(tx);
                    // Nothing left to analyse: hash for the workers still reading.
                    slot.help_until_done();
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => spawn_error = Some(e),
            }
        }
        drop(tx);
        // The last capture's rows go to `commit`, which writes its tables
        // in parallel instead of one after the other here (every capture
        // sends one result, also one whose analysis panicked).
        let mut received = 0;
        loop {
            // Woken at least every PROGRESS_TICK to show the bytes read of
            // captures still running (a single large one takes minutes).
            let r = match rx.recv_timeout(PROGRESS_TICK) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bar.tick(&bytes_done);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            received += 1;
            if matches!(
                r.capture.status.as_str(),
                "damaged" | "unreadable" | "failed"
            ) {
                failed += 1;
                errors.push(format!(
                    "{}: {}",
                    r.capture.capture,
                    r.capture
                        .error
                        .clone()
                        .unwrap_or_else(|| r.capture.status.clone())
                ));
            }
            bar.done(&bytes_done);
            if received == files.len() {
                last = Some(r);
            } else if write_error.is_none() {
                if let Err(e) = writers.write(r) {
                    write_error = Some(e);
                }
            }
        }
    });
    bar.finish();
    if started == 0 {
        let why = spawn_error.map(|e| e.to_string()).unwrap_or_default();
        return Err(format!("could not start a worker thread: {why}"));
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    writers.commit(last)?;
    report::write(&opts.out, opts.format)?;
    Ok(BatchSummary {
        captures: files.len(),
        failed,
        errors,
    })
}

/// `capsift merge`: concatenate the tables of several batch outputs and
/// recompute the report.
pub fn merge(dirs: &[PathBuf], out: &Path, format: TableFormat) -> Result<usize, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let n = tables::merge(dirs, out, format)?;
    report::write(out, format)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_analysis_becomes_a_failed_row() {
        let r = guard(Path::new("node-a.pcap"), TableFormat::Parquet, || {
            panic!("index out of bounds")
        });
        assert_eq!(r.capture.status, "failed");
        assert_eq!(r.capture.capture, "node-a.pcap");
        let error = r.capture.error.unwrap_or_default();
        assert!(error.contains("internal error") && error.contains("index out of bounds"));
        assert!(r.tables.iter().all(|t| matches!(t, TableRows::Columns(_))));
    }
}
