//! `capsift scrub --verify ORIGINAL SCRUBBED`: an independent check of a
//! scrubbed file. Every packet must still be there (same count, timestamps
//! and original lengths), and no run of 8 or more bytes of removed payload
//! may survive in the scrubbed packet. "Removed payload" is what the policy
//! written in the scrubbed file's section header (or given on the command
//! line) does not keep: the bytes after the headers, except DNS messages
//! under `keep=dns` and TLS handshake records under `keep=tls-handshake`.
//!
//! Two checks per packet: the scrubbed packet is no longer than the policy
//! allows, and no 8-byte window of it that reaches past its own headers
//! (and past the payload the policy keeps) equals a window of the removed
//! payload. Windows wholly inside header
//! fields are not searched: rewritten addresses can match payload bytes by
//! chance (an anonymized address ending in 0x00 next to `ff02::`), and
//! header fields hold rewritten values, not payload. Runs made of one
//! repeated byte (zero padding) prove nothing and are not counted either.

use super::packet;
use super::tls::TlsStreams;
use super::POLICY_PREFIX;
use crate::capture::CaptureReader;
use crate::decode::{decode, DecodeConfig};
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;

pub const RUN: usize = 8;
/// Problems listed by frame; beyond this only counted.
const MAX_LISTED: usize = 20;

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub original: String,
    pub scrubbed: String,
    /// The policy the check applied.
    pub policy: String,
    pub packets_original: u64,
    pub packets_scrubbed: u64,
    /// Packets whose timestamp or original length differ.
    pub packets_changed: u64,
    /// Packets where a removed payload run survives, and the first frames.
    pub packets_leaking: u64,
    /// Packets longer than the policy allows (headers, plus DNS or TLS
    /// handshake bytes where kept).
    pub packets_over_policy: u64,
    pub over_policy_frames: Vec<u64>,
    pub leaking_frames: Vec<u64>,
    pub changed_frames: Vec<u64>,
    pub payload_bytes_checked: u64,
    pub ok: bool,
}

pub fn verify(
    original: &Path,
    scrubbed: &Path,
    mut keep_dns: bool,
    mut keep_tls: bool,
    decode_cfg: &DecodeConfig,
    dns_ports: &[u16],
) -> Result<VerifyReport, String> {
    let mut a =
        CaptureReader::open(original).map_err(|e| format!("{}: {e}", original.display()))?;
    let mut b =
        CaptureReader::open(scrubbed).map_err(|e| format!("{}: {e}", scrubbed.display()))?;
    let mut r = VerifyReport {
        original: original.display().to_string(),
        scrubbed: scrubbed.display().to_string(),
        ..VerifyReport::default()
    };
    // The policy the scrubbed file declares adds to what the caller gave.
    if let Some(p) = declared_policy(scrubbed) {
        for part in p.split_whitespace() {
            if let Some(k) = part.strip_prefix("keep=") {
                keep_dns |= k.split(',').any(|x| x == "dns");
                keep_tls |= k.split(',').any(|x| x == "tls-handshake");
            }
        }
        r.policy = p;
    }
    let mut tls = TlsStreams::default();
    // Reused for every packet: removed-payload windows, and the windows of
    // the bytes the policy lets through (not evidence of a leak).
    let mut windows: HashSet<u64> = HashSet::new();
    let mut kept: HashSet<u64> = HashSet::new();
    let mut frame = 0u64;
    loop {
        let pa = a.next_packet();
        let Some(pa) = pa else {
            while b.next_packet().is_some() {
                r.packets_scrubbed += 1;
            }
            break;
        };
        frame += 1;
        r.packets_original += 1;
        // The scrubbed file's section header is read with its first packet.
        let Some(pb) = b.next_packet() else {
            while a.next_packet().is_some() {
                r.packets_original += 1;
            }
            break;
        };
        r.packets_scrubbed += 1;
        if pa.ts.0.max(0) != pb.ts.0.max(0) || pa.orig_len != pb.orig_len {
            r.packets_changed += 1;
            if r.changed_frames.len() < MAX_LISTED {
                r.changed_frames.push(frame);
            }
        }
        let data = pa.data;
        let d = decode(decode_cfg, pa.link_type, data);
        let plan = packet::plan(data, &d);
        let mut allowed = plan.headers_end;
        if let Some(t) = plan.transport {
            let dns = dns_ports.contains(&t.src_port) || dns_ports.contains(&t.dst_port);
            if dns && keep_dns {
                allowed = t.payload_at + t.payload_len;
            } else if !dns && t.tcp && keep_tls {
                let pay = &data[t.payload_at..t.payload_at + t.payload_len];
                allowed = t.payload_at + tls.segment(t.dir, t.seq, t.syn, pay, false).keep;
            }
        }
        let allowed = allowed.max(plan.headers_end).min(data.len());
        if pb.data.len() > allowed {
            r.packets_over_policy += 1;
            if r.over_policy_frames.len() < MAX_LISTED {
                r.over_policy_frames.push(frame);
            }
        }
        let removed = &data[allowed..];
        if removed.len() < RUN || pb.data.len() < RUN {
            continue;
        }
        r.payload_bytes_checked += removed.len() as u64;
        windows.clear();
        kept.clear();
        kept.extend(data[..allowed].windows(RUN).map(word));
        for w in removed.windows(RUN) {
            if w.iter().all(|x| *x == w[0]) {
                continue;
            }
            let k = word(w);
            if !kept.contains(&k) {
                windows.insert(k);
            }
        }
        // Windows wholly inside header fields, or inside payload the policy
        // keeps (a DNS message, TLS handshake records: rewritten, and
        // already bounded by the length check above), are not searched: a
        // hashed label next to a DNS header can equal removed bytes by
        // chance (found by fuzzing, fuzz/regressions/scrub/).
        let scrubbed_headers = decode(decode_cfg, pb.link_type, pb.data).headers_end;
        let exempt = if allowed > plan.headers_end {
            allowed.max(scrubbed_headers)
        } else {
            scrubbed_headers
        };
        let from = exempt.saturating_sub(RUN - 1).min(pb.data.len());
        if pb.data[from..]
            .windows(RUN)
            .any(|w| windows.contains(&word(w)))
        {
            r.packets_leaking += 1;
            if r.leaking_frames.len() < MAX_LISTED {
                r.leaking_frames.push(frame);
            }
        }
    }
    r.ok = r.packets_original == r.packets_scrubbed
        && r.packets_changed == 0
        && r.packets_leaking == 0
        && r.packets_over_policy == 0;
    Ok(r)
}

/// The policy line of a scrubbed file's section header (read with its first packet).
fn declared_policy(path: &Path) -> Option<String> {
    let mut r = CaptureReader::open(path).ok()?;
    let _ = r.next_packet();
    r.meta
        .comments
        .iter()
        .find_map(|c| c.strip_prefix(POLICY_PREFIX).map(|p| p.trim().to_string()))
}

fn word(w: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&w[..8]);
    u64::from_le_bytes(b)
}

pub fn render_text(r: &VerifyReport) -> String {
    let mut s = format!(
        "{}: {} (policy: {})\n",
        if r.ok { "verified" } else { "VERIFY FAILED" },
        r.scrubbed,
        if r.policy.is_empty() {
            "none declared: nothing kept beyond headers"
        } else {
            &r.policy
        }
    );
    s.push_str(&format!(
        "packets: {} original, {} scrubbed, {} with a different timestamp or length{}\n",
        r.packets_original,
        r.packets_scrubbed,
        r.packets_changed,
        if r.changed_frames.is_empty() {
            String::new()
        } else {
            format!(" (frames {:?})", r.changed_frames)
        }
    ));
    s.push_str(&format!(
        "policy: {} packets longer than the policy allows{}\n",
        r.packets_over_policy,
        if r.over_policy_frames.is_empty() {
            String::new()
        } else {
            format!(" (frames {:?})", r.over_policy_frames)
        }
    ));
    s.push_str(&format!(
        "payload: {} removed bytes checked; {} packets still hold a run of {RUN}+ of them{}\n",
        r.payload_bytes_checked,
        r.packets_leaking,
        if r.leaking_frames.is_empty() {
            String::new()
        } else {
            format!(" (frames {:?})", r.leaking_frames)
        }
    ));
    s
}
