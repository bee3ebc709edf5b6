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
use foldhash::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// Copies of one packet at several points on one node arrive microseconds
/// apart; a retransmission takes at least an RTT plus the stack's timers.
pub const COPY_WINDOW_NS: i64 = 50_000_000;
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
    // A fixed seed: fingerprints are compared, never used as map keys alone.
    let mut h = foldhash::quality::FixedState::with_seed(0x6361_7073_6966_7421).build_hasher();
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
///
/// A direct-mapped table (no allocation per packet, no eviction pass): each
/// fingerprint has one slot, entries older than the window are ignored, and
/// a newer packet overwrites an older one in its slot. A collision can hide
/// a copy, never invent one (the whole 64-bit fingerprint must match).
/// Because entries are checked by timestamp, not by arrival order, pcapng
/// files that interleave interfaces in blocks (time jumping back) work too.
#[derive(Default)]
pub struct CopyDetector {
    slots: Vec<Slot>,
    /// The only capture point seen so far; while there is one, packets go
    /// to a small ring instead of the table (a copy needs a second point).
    single: Option<CapturePoint>,
    ring: Vec<Slot>,
    ring_at: usize,
    /// Copies seen, per pair of capture points (first seen, copy).
    pub pairs: HashMap<(CapturePoint, CapturePoint), PairStats>,
    pub copies: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    fp: u64,
    ts: Timestamp,
    frame: u64,
    point: CapturePoint,
}

/// 2^14 slots (640 KB, cache-friendly): copies of one packet at several
/// points arrive microseconds apart, so a slot is rarely reused before its
/// copies come; the 50 ms window still bounds how old a match may be.
const SLOTS: usize = 1 << 14;
/// Packets remembered while only one capture point has been seen.
const RING: usize = 4096;

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
        // One capture point so far (most captures): remember the latest
        // packets only, in a ring, cheaply. When a second point appears,
        // the ring seeds the table, so copies arriving right after the
        // original (microseconds apart) are still recognised.
        if self.slots.is_empty() {
            if self.single.is_none() || self.single == Some(point) {
                self.single = Some(point);
                let s = Slot {
                    fp,
                    ts,
                    frame,
                    point,
                };
                if self.ring.len() < RING {
                    self.ring.push(s);
                } else {
                    self.ring[self.ring_at] = s;
                    self.ring_at = (self.ring_at + 1) % RING;
                }
                return None;
            }
            // A second capture point: from now on, the table.
            self.single = None;
            self.slots = vec![
                Slot {
                    fp: 0,
                    ts: Timestamp(i64::MIN),
                    frame: 0,
                    point,
                };
                SLOTS
            ];
            for s in std::mem::take(&mut self.ring) {
                self.slots[(s.fp as usize) & (SLOTS - 1)] = s;
            }
        }
        let slot = &mut self.slots[(fp as usize) & (SLOTS - 1)];
        let recent = slot.fp == fp && ts.0.abs_diff(slot.ts.0) <= COPY_WINDOW_NS as u64;
        if recent && slot.point != point {
            let (p, f) = (slot.point, slot.frame);
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
        if !recent {
            *slot = Slot {
                fp,
                ts,
                frame,
                point,
            };
        }
        None
    }
}

#[derive(Debug, Clone, Default)]
pub struct PairStats {
    pub copies: u64,
    /// (original frame, copy frame), the first few.
    pub examples: Vec<(u64, u64)>,
}
