//! One packet seen at several capture points is one packet.
//!
//! `tcpdump -i any` on a node captures a pod's segment on the pod veth, on
//! the bridge or VXLAN device, and encapsulated on the uplink. tshark then
//! calls the later copies retransmissions. capsift fingerprints the
//! innermost IP packet (addresses, IPv4 id, lengths, the whole transport
//! header but its checksum, the first payload bytes; not TTL or the IP
//! checksum, which routing changes) and treats a packet as a copy when the
//! same fingerprint was seen within [`COPY_WINDOW_NS`] at a *different*
//! capture point (another interface, or inside vs outside a tunnel). A
//! packet repeated at the same point is a real retransmission and is left
//! to the TCP analysis.

use crate::capture::{Packet, Timestamp};
use crate::decode::{Decoded, Layer};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Copies of one packet at several points on one node arrive microseconds
/// apart; a retransmission takes at least an RTT plus the stack's timers.
pub const COPY_WINDOW_NS: i64 = 50_000_000;
/// Bound on remembered fingerprints (the window bounds them already; this is
/// a cap for hostile timestamps).
const MAX_REMEMBERED: usize = 1 << 20;
/// Pairs of capture points tracked for the report.
const MAX_POINT_PAIRS: usize = 1024;

/// Where a packet was captured: interface, SLL ifindex, and tunnel depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapturePoint {
    pub interface: u32,
    /// Linux ifindex from an SLL2 header.
    pub ifindex: Option<u32>,
    /// Number of tunnel layers around the innermost IP packet.
    pub tunnel_depth: u8,
}

impl CapturePoint {
    pub fn of(pkt: &Packet<'_>, d: &Decoded<'_>, tunnel_depth: usize) -> CapturePoint {
        let ifindex = match d.layers.first() {
            Some(Layer::Sll2(s)) => Some(s.ifindex()),
            _ => None,
        };
        CapturePoint {
            interface: pkt.interface,
            ifindex,
            tunnel_depth: tunnel_depth.min(255) as u8,
        }
    }

    pub fn describe(&self) -> String {
        let mut s = match self.ifindex {
            Some(i) => format!("ifindex {i}"),
            None => format!("interface {}", self.interface),
        };
        if self.tunnel_depth > 0 {
            s.push_str(&format!(" (inside {} tunnel layer(s))", self.tunnel_depth));
        }
        s
    }
}

/// Fingerprint of the innermost IP packet of `d`, from layer `ip_index` on.
pub fn fingerprint(d: &Decoded<'_>, ip_index: usize) -> Option<u64> {
    let layers = d.outer_layers();
    let mut h = DefaultHasher::new();
    match layers.get(ip_index)? {
        Layer::Ipv4(v) => {
            4u8.hash(&mut h);
            (v.src(), v.dst(), v.ident(), v.total_len(), v.protocol()).hash(&mut h);
            v.header()[6..8].hash(&mut h);
        }
        Layer::Ipv6(v) => {
            6u8.hash(&mut h);
            (v.src(), v.dst(), v.payload_len(), v.upper_protocol()).hash(&mut h);
        }
        _ => return None,
    }
    match layers.get(ip_index + 1) {
        Some(Layer::Tcp(t)) => {
            (
                t.src_port(),
                t.dst_port(),
                t.seq(),
                t.ack(),
                t.flags(),
                t.window(),
            )
                .hash(&mut h);
            t.raw_options().hash(&mut h);
        }
        Some(Layer::Udp(u)) => (u.src_port(), u.dst_port(), u.length()).hash(&mut h),
        Some(Layer::Icmp(i)) => (i.icmp_type(), i.code(), i.rest()).hash(&mut h),
        _ => {}
    }
    let p = d.payload;
    p[..p.len().min(64)].hash(&mut h);
    Some(h.finish())
}

/// Remembers recent fingerprints and recognises copies.
#[derive(Default)]
pub struct CopyDetector {
    recent: HashMap<u64, (Timestamp, CapturePoint, u64)>,
    /// Latest timestamp seen per capture point.
    latest: HashMap<CapturePoint, Timestamp>,
    order: VecDeque<(Timestamp, u64)>,
    /// Copies seen, per pair of capture points (first seen, copy).
    pub pairs: HashMap<(CapturePoint, CapturePoint), PairStats>,
    pub copies: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PairStats {
    pub copies: u64,
    /// (original frame, copy frame), the first few.
    pub examples: Vec<(u64, u64)>,
}

impl CopyDetector {
    /// Returns the frame of the first copy when this packet is a copy seen
    /// at another point; remembers it otherwise.
    pub fn check(
        &mut self,
        fp: u64,
        point: CapturePoint,
        ts: Timestamp,
        frame: u64,
    ) -> Option<u64> {
        // Each capture point's packets are in time order, but a pcapng
        // writer may interleave points in blocks, jumping back in time. So
        // forget only what is older than every point's latest packet.
        if self.latest.len() < MAX_POINT_PAIRS || self.latest.contains_key(&point) {
            let e = self.latest.entry(point).or_insert(ts);
            *e = (*e).max(ts);
        }
        let horizon = self.latest.values().min().copied().unwrap_or(ts);
        while let Some(&(t, old)) = self.order.front() {
            if horizon.0.saturating_sub(t.0) <= COPY_WINDOW_NS && self.order.len() < MAX_REMEMBERED
            {
                break;
            }
            self.order.pop_front();
            if matches!(self.recent.get(&old), Some((t2, _, _)) if *t2 == t) {
                self.recent.remove(&old);
            }
        }
        if let Some(&(t, p, f)) = self.recent.get(&fp) {
            if p != point && ts.0.saturating_sub(t.0).abs() <= COPY_WINDOW_NS {
                self.copies += 1;
                if self.pairs.len() < MAX_POINT_PAIRS || self.pairs.contains_key(&(p, point)) {
                    let e = self.pairs.entry((p, point)).or_default();
                    e.copies += 1;
                    if e.examples.len() < 8 {
                        e.examples.push((f, frame));
                    }
                }
                return Some(f);
            }
        }
        self.recent.insert(fp, (ts, point, frame));
        self.order.push_back((ts, fp));
        None
    }
}
