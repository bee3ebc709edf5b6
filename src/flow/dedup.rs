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
/// A two-way set-associative table (no allocation per packet, no eviction
/// pass): a fingerprint can sit in either slot of its set, entries outside
/// the window are ignored, and a new packet replaces the entry of its set
/// farthest from it in time. A collision can hide a copy, never invent one
/// (the whole 64-bit fingerprint must match); it takes three fingerprints
/// live in one set at once, not two as in the direct-mapped table this
/// replaced, where an anonymization key in 200 hid copies in a 122-packet
/// capture (docs/scrub.md). Because entries are checked by timestamp, not
/// by arrival order, pcapng files that interleave interfaces in blocks
/// (time jumping back) work too.
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

/// 2^14 slots in 2^13 sets of two (640 KB, cache-friendly): copies of one
/// packet at several points arrive microseconds apart, so a set is rarely
/// full before its copies come; the 50 ms window still bounds how old a
/// match may be.
const SLOTS: usize = 1 << 14;
const WAYS: usize = 2;
const SETS: usize = SLOTS / WAYS;

/// Whether `slot` holds a packet within the copy window of `ts`.
fn in_window(slot: &Slot, ts: Timestamp) -> bool {
    ts.0.abs_diff(slot.ts.0) <= COPY_WINDOW_NS as u64
}

/// The slots of `fp`'s set.
fn set_of(slots: &mut [Slot], fp: u64) -> &mut [Slot] {
    let first = (fp as usize & (SETS - 1)) * WAYS;
    &mut slots[first..first + WAYS]
}

/// Remember `s` in its set, in place of the entry farthest from it in time
/// (an empty slot, or one outside the window, comes first).
fn remember(slots: &mut [Slot], s: Slot) {
    let set = set_of(slots, s.fp);
    let far = |x: &Slot| s.ts.0.abs_diff(x.ts.0);
    if let Some(victim) = set.iter_mut().max_by_key(|x| far(x)) {
        *victim = s;
    }
}
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
                remember(&mut self.slots, s);
            }
        }
        let seen = set_of(&mut self.slots, fp)
            .iter()
            .find(|s| s.fp == fp && in_window(s, ts))
            .copied();
        if let Some(slot) = seen.filter(|s| s.point != point) {
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
        // Seen at this point already (a retransmission): the first stays,
        // so later copies still point to it.
        if seen.is_none() {
            remember(
                &mut self.slots,
                Slot {
                    fp,
                    ts,
                    frame,
                    point,
                },
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn point(interface: u32) -> CapturePoint {
        CapturePoint {
            interface,
            ifindex: None,
            tunnel_depth: 0,
        }
    }

    /// Two packets whose fingerprints share a set, each seen at two points,
    /// interleaved: both copies are found (one slot per fingerprint would
    /// have lost the first packet to the second).
    #[test]
    fn two_fingerprints_in_one_set_both_find_their_copies() {
        let mut d = CopyDetector::default();
        let (a, b) = (0x1234_0000_0000_0007_u64, 0x9876_0000_0000_0007_u64);
        assert_eq!((a as usize) & (SETS - 1), (b as usize) & (SETS - 1));
        let t = |us: i64| Timestamp(us * 1000);
        assert_eq!(d.check(a, point(0), t(0), 1), None);
        assert_eq!(d.check(a, point(1), t(5), 2), Some(1));
        assert_eq!(d.check(b, point(0), t(10), 3), None);
        assert_eq!(d.check(a, point(2), t(15), 4), Some(1));
        assert_eq!(d.check(b, point(1), t(20), 5), Some(3));
        // A retransmission at the same point is not a copy, and the first
        // packet stays the one copies point to.
        assert_eq!(d.check(a, point(0), t(25), 6), None);
        assert_eq!(d.check(a, point(3), t(30), 7), Some(1));
        // Outside the window, a fingerprint is a new packet.
        let late = t(COPY_WINDOW_NS / 1000 + 100);
        assert_eq!(d.check(a, point(1), late, 8), None);
        assert_eq!(d.copies, 4);
    }
}
