//! `capsift analyze`: the whole pipeline in one streaming pass per input.
//!
//! capture → decode → info counters → flow table (with copy detection and
//! TCP analysis) → detectors → findings. Ended flows are handed to the
//! detectors and to an optional sink (the `table flows` writer) as they end.

pub mod progress;

use crate::capture::{CaptureReader, OpenError, Timestamp};
use crate::decode::{self, DecodeConfig};
use crate::detect::{self, Finding, FinishContext, PacketEvent};
use crate::flow::{Flow, FlowConfig, FlowTable};
use crate::info::{FileInfo, InfoAccumulator};
use crate::warning::Warning;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    pub dns: crate::dns::DnsConfig,
    /// Trust anchors for certificate verification.
    pub trust: std::sync::Arc<crate::tls::verify::TrustStore>,
    /// Show a progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
}

/// What `analyze` reports about each input.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    pub path: String,
    pub format: &'static str,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub warnings: Vec<Warning>,
    pub complete: bool,
    pub link_types: Vec<String>,
    pub flows: u64,
    /// Packets recognised as copies of packets seen at another capture point.
    pub duplicate_copies: u64,
    pub tunnels: crate::info::Tunnels,
}

impl InputSummary {
    fn from_info(fi: FileInfo, flows: u64, copies: u64) -> Self {
        InputSummary {
            path: fi.path,
            format: fi.format,
            packets: fi.packets,
            bytes: fi.bytes,
            first_ts: fi.first_ts,
            last_ts: fi.last_ts,
            warnings: fi.warnings,
            complete: fi.complete,
            link_types: fi.link_types,
            flows,
            duplicate_copies: copies,
            tunnels: fi.tunnels,
        }
    }
}

/// Where table rows go while an input is analysed.
#[derive(Default)]
pub struct Sinks<'a> {
    /// Every flow, as it ends.
    pub flows: Option<&'a mut dyn FnMut(&Flow)>,
    /// Every DNS query, at the end of the input (when lookups are known).
    pub dns: Option<&'a mut dyn FnMut(&crate::dns::DnsQuery)>,
    /// Every TLS handshake, at the end of the input (when verified).
    pub tls: Option<&'a mut dyn FnMut(&crate::tls::TlsHandshake)>,
}

/// Analyse one input file (`-` for stdin), feeding the table sinks.
pub fn analyze_input(
    path: &Path,
    input: usize,
    opts: &AnalyzeOptions,
    sinks: &mut Sinks<'_>,
) -> Result<(InputSummary, Vec<Finding>), OpenError> {
    let reader = CaptureReader::open(path)?;
    let total = if path.as_os_str() == "-" {
        None
    } else {
        std::fs::metadata(path).ok().map(|m| m.len())
    };
    let bar = progress::Progress::new(opts.progress, total, &path.display().to_string());
    let r = analyze_reader(
        reader,
        &path.display().to_string(),
        input,
        opts,
        sinks,
        None,
        &bar,
    );
    bar.finish();
    Ok(r)
}

/// Analyse a whole capture held in memory (the fuzz targets): `None` when
/// the bytes are not a capture.
pub fn analyze_bytes(
    bytes: Vec<u8>,
    opts: &AnalyzeOptions,
) -> Option<(InputSummary, Vec<Finding>)> {
    let reader = CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes))).ok()?;
    let quiet = progress::Progress::new(false, None, "");
    Some(analyze_reader(
        reader,
        "memory",
        0,
        opts,
        &mut Sinks::default(),
        None,
        &quiet,
    ))
}

/// Analyse an opened capture. `bytes_done`, when given, is advanced by the
/// bytes read (batch progress).
pub fn analyze_reader(
    mut reader: CaptureReader,
    name: &str,
    input: usize,
    opts: &AnalyzeOptions,
    sinks: &mut Sinks<'_>,
    bytes_done: Option<&std::sync::atomic::AtomicU64>,
    bar: &progress::Progress,
) -> (InputSummary, Vec<Finding>) {
    let mut reported: u64 = 0;
    let mut info = InfoAccumulator::default();
    let mut flows = FlowTable::new(opts.flow.clone());
    let mut detectors = detect::all();
    let mut dns = crate::dns::DnsTracker::new(opts.dns.clone());
    let mut tls = crate::tls::TlsTracker::default();
    let (mut first, mut last): (Option<Timestamp>, Option<Timestamp>) = (None, None);
    let mut n: u64 = 0;
    while let Some(pkt) = reader.next_packet() {
        let mut d = decode::Decoded::empty();
        decode::decode_into(&opts.decode, pkt.link_type, pkt.data, &mut d);
        info.add(&pkt, &d);
        if pkt.has_ts {
            first = Some(first.map_or(pkt.ts, |f| f.min(pkt.ts)));
            last = Some(last.map_or(pkt.ts, |l| l.max(pkt.ts)));
        }
        let obs = flows.observe(&pkt, &d);
        let flow_id = obs.and_then(|o| flows.flow(o.slot)).map(|f| f.id);
        dns.packet(&pkt, &d, obs.as_ref(), flow_id);
        tls.packet(&pkt, &d, obs.as_ref(), obs.and_then(|o| flows.flow(o.slot)));
        let ev = PacketEvent {
            pkt: &pkt,
            decoded: &d,
            obs,
            flow: obs.and_then(|o| flows.flow(o.slot)),
        };
        for det in detectors.iter_mut() {
            det.packet(&ev);
        }
        for f in flows.take_ended() {
            tls.flow_ended(f.id);
            for det in detectors.iter_mut() {
                det.flow_ended(&f);
            }
            if let Some(sink) = sinks.flows.as_mut() {
                sink(&f);
            }
        }
        n += 1;
        if n & 0xfff == 0 {
            bar.update(pkt.offset, n);
            if let Some(b) = bytes_done {
                b.fetch_add(
                    pkt.offset.saturating_sub(reported),
                    std::sync::atomic::Ordering::Relaxed,
                );
                reported = pkt.offset;
            }
        }
    }
    flows.finish_each(|f| {
        for det in detectors.iter_mut() {
            det.flow_ended(&f);
        }
        if let Some(sink) = sinks.flows.as_mut() {
            sink(&f);
        }
    });
    if let Some(b) = bytes_done {
        b.fetch_add(
            reader.offset().saturating_sub(reported),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    dns.finish(&mut info.warnings);
    tls.finish(&opts.trust, &mut info.warnings);
    if let Some(sink) = sinks.tls.as_mut() {
        for h in &tls.handshakes {
            sink(h);
        }
    }
    if let Some(sink) = sinks.dns.as_mut() {
        for q in &dns.queries {
            sink(q);
        }
    }
    let ctx = FinishContext {
        input,
        first_ts: first,
        last_ts: last,
        copies: &flows.copies,
        dns: Some(&dns),
        tls: Some(&tls),
    };
    let mut findings: Vec<Finding> = detectors.iter_mut().flat_map(|d| d.finish(&ctx)).collect();
    if flows.stats.table_full_drops > 0 {
        info.warnings.push(
            "flow.table_full",
            || {
                format!(
                    "more than {} concurrent flows: {} packets of further flows were not analysed",
                    opts.flow.max_flows, flows.stats.table_full_drops
                )
            },
            None,
            None,
        );
    }
    if flows.stats.contexts_overflowed > 0 {
        info.warnings.push(
            "flow.too_many_tunnels",
            || {
                format!(
                    "more than {} distinct tunnel contexts (endpoints, VNIs, keys): flows in the further ones share one context, so equal 5-tuples in two of them may be counted as one flow",
                    crate::flow::MAX_CONTEXTS
                )
            },
            None,
            None,
        );
    }
    let limits: Vec<String> = detectors.iter().flat_map(|d| d.limits_hit()).collect();
    if !limits.is_empty() {
        info.warnings.push(
            "analysis.limit",
            || {
                format!(
                    "{}: some findings may be missing (bounds in docs/hardening.md)",
                    limits.join("; ")
                )
            },
            None,
            None,
        );
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let fi = info.finish(name, &reader);
    let summary = InputSummary::from_info(fi, flows.stats.flows_created, flows.copies.copies);
    (summary, findings)
}
