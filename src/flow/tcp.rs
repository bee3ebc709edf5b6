//! TCP sequence analysis with Wireshark's definitions of `tcp.analysis.*`.
//!
//! This follows `tcp_analyze_sequence_number()` of Wireshark 4.0's
//! `epan/dissectors/packet-tcp.c` check by check (same order, same
//! thresholds: 20 ms for fast retransmissions, the handshake RTT or 3 ms for
//! out-of-order, raw sequence numbers with 0 meaning "not seen yet"), so
//! that counts agree with tshark's on the same packets. Where capsift
//! deliberately differs (copies of one packet seen at two capture points,
//! the same 5-tuple in two tunnels) the difference is made before packets
//! reach this analyzer, not inside it.

use crate::capture::Timestamp;
use crate::decode::transport::tcp_flags::{ACK, FIN, RST, SYN};

/// Analysis flags of one segment (Wireshark's `TCP_A_*`).
pub mod flag {
    pub const RETRANSMISSION: u32 = 0x0001;
    pub const LOST_PACKET: u32 = 0x0002;
    pub const ACK_LOST_PACKET: u32 = 0x0004;
    pub const KEEP_ALIVE: u32 = 0x0008;
    pub const DUPLICATE_ACK: u32 = 0x0010;
    pub const ZERO_WINDOW: u32 = 0x0020;
    pub const ZERO_WINDOW_PROBE: u32 = 0x0040;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 0x0080;
    pub const KEEP_ALIVE_ACK: u32 = 0x0100;
    pub const OUT_OF_ORDER: u32 = 0x0200;
    pub const FAST_RETRANSMISSION: u32 = 0x0400;
    pub const WINDOW_UPDATE: u32 = 0x0800;
    pub const WINDOW_FULL: u32 = 0x1000;
    pub const REUSED_PORTS: u32 = 0x2000;
    pub const SPURIOUS_RETRANSMISSION: u32 = 0x4000;
}

/// Unacked segments tracked per direction, as Wireshark's `TCP_MAX_UNACKED_SEGMENTS`.
const MAX_UNACKED_SEGMENTS: u32 = 10_000;
/// Fast retransmission: within 20 ms of the last duplicate ACK.
const FAST_RETRANSMIT_WINDOW_NS: i64 = 20_000_000;
/// Out-of-order threshold before a handshake RTT is known.
const DEFAULT_OOO_THRESHOLD_NS: i64 = 3_000_000;

/// Window scale state: unknown (-1), not used (-2) or a shift count.
const WS_UNKNOWN: i8 = -1;
const WS_NONE: i8 = -2;

#[derive(Debug, Clone)]
struct Direction {
    nextseq: u32,
    nextseq_time: Timestamp,
    maxseqtobeacked: u32,
    lastack: u32,
    lastack_time: Timestamp,
    dupacknum: i32,
    window: u32,
    win_scale: i8,
    is_first_ack: bool,
    lastsegmentflags: u32,
    base_seq: Option<u32>,
    unacked: u32,
}

impl Default for Direction {
    fn default() -> Self {
        Direction {
            nextseq: 0,
            nextseq_time: Timestamp(0),
            maxseqtobeacked: 0,
            lastack: 0,
            lastack_time: Timestamp(0),
            dupacknum: 0,
            window: u32::MAX,
            win_scale: WS_UNKNOWN,
            is_first_ack: false,
            lastsegmentflags: 0,
            base_seq: None,
            unacked: 0,
        }
    }
}

/// One TCP segment as the analyzer needs it.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub ts: Timestamp,
    pub seq: u32,
    pub ack: u32,
    /// Payload length from the IP header (not the captured bytes).
    pub seglen: u32,
    pub flags: u8,
    /// Raw (unscaled) window field.
    pub window: u16,
    pub window_scale_option: Option<u8>,
}

#[inline]
fn gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
#[inline]
fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline]
fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// Sequence-analysis state of one TCP conversation (both directions).
#[derive(Debug, Clone, Default)]
pub struct TcpAnalyzer {
    dirs: [Direction; 2],
    /// Handshake RTT: from the most recent SYN to the first pure ACK.
    first_rtt_ns: Option<i64>,
    mru_syn: Option<Timestamp>,
}

impl TcpAnalyzer {
    /// Whether a SYN (without ACK) from direction `d` with this sequence
    /// number starts a new conversation on ports still in use (Wireshark:
    /// "reused ports").
    pub fn is_port_reuse(&self, d: usize, syn_seq: u32) -> bool {
        matches!(self.dirs[d].base_seq, Some(b) if b != syn_seq)
    }

    /// A SYN (no ACK) repeating the conversation's SYN: Wireshark restores
    /// `nextseq` so the copy is analysed as a retransmission.
    fn same_syn_again(&mut self, d: usize) {
        let dir = &mut self.dirs[d];
        dir.nextseq = dir.maxseqtobeacked;
    }

    /// The handshake RTT seen at the capture point, in nanoseconds (None
    /// when not seen, or negative because timestamps went backwards).
    pub fn first_rtt_ns(&self) -> Option<i64> {
        self.first_rtt_ns.filter(|r| *r > 0)
    }

    /// Analyse one segment sent in direction `d` (0 or 1); returns its flags.
    pub fn analyze(&mut self, d: usize, s: &Segment) -> u32 {
        let r = 1 - d;
        let flags = s.flags;
        let mut ta: u32 = 0;

        if flags & (SYN | ACK) == SYN && self.dirs[d].base_seq == Some(s.seq) {
            self.same_syn_again(d);
        }
        if flags & (SYN | ACK) == (SYN | ACK) {
            if let Some(b) = self.dirs[d].base_seq {
                if b != s.seq {
                    self.dirs[d].base_seq = Some(s.seq);
                    ta |= flag::REUSED_PORTS;
                }
            }
        }
        // Base sequence numbers (Wireshark keeps them for relative numbers;
        // here they serve the port-reuse test above).
        if self.dirs[d].base_seq.is_none() {
            self.dirs[d].base_seq = Some(if flags & SYN != 0 {
                s.seq
            } else {
                s.seq.wrapping_sub(1)
            });
        }
        if self.dirs[r].base_seq.is_none() && flags & ACK != 0 {
            self.dirs[r].base_seq = Some(s.ack.wrapping_sub(1));
        }

        ta |= self.sequence(d, r, s);

        // After the sequence analysis, as in Wireshark: SYN bookkeeping,
        // window scale options, handshake RTT and first-ACK state.
        let window_scale = s.window_scale_option.map(|w| w.min(14) as i8);
        if flags & SYN != 0 {
            if flags & ACK == 0 {
                self.mru_syn = Some(s.ts);
            }
            self.dirs[d].is_first_ack = true;
            if let Some(ws) = window_scale {
                self.dirs[d].win_scale = ws;
            }
            // verify_tcp_window_scaling()
            if self.dirs[d].win_scale == WS_UNKNOWN {
                self.dirs[d].win_scale = WS_NONE;
                self.dirs[r].win_scale = WS_NONE;
            } else if flags & ACK != 0 && self.dirs[r].win_scale == WS_NONE {
                self.dirs[d].win_scale = WS_NONE;
            }
        }
        if flags & (SYN | ACK) == ACK {
            if let (Some(syn), None) = (self.mru_syn, self.first_rtt_ns) {
                let rtt = s.ts.0.wrapping_sub(syn.0);
                if rtt != 0 {
                    self.first_rtt_ns = Some(rtt);
                }
            }
            self.dirs[d].is_first_ack = false;
        }
        ta
    }

    fn sequence(&mut self, d: usize, r: usize, s: &Segment) -> u32 {
        use flag::*;
        let (seq, ack, seglen, flags) = (s.seq, s.ack, s.seglen, s.flags);
        let window = u32::from(s.window);
        let mut ta: u32 = 0;
        let sfr = SYN | FIN | RST;

        'fwd: {
            let (fwd, rev) = (&self.dirs[d], &self.dirs[r]);
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                ta |= ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && flags & sfr == 0 {
                ta |= ZERO_WINDOW;
            }
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && flags & RST == 0 {
                ta |= LOST_PACKET;
            }
            if (seglen == 0 || seglen == 1)
                && seq == fwd.nextseq.wrapping_sub(1)
                && flags & (SYN | FIN | RST) == 0
            {
                ta |= KEEP_ALIVE;
            }
            let same_seq_ack = seq == fwd.nextseq && ack == fwd.lastack && flags & sfr == 0;
            if seglen == 0 && window != 0 && window != fwd.window && same_seq_ack {
                ta |= WINDOW_UPDATE;
            }
            if seglen > 0 && rev.win_scale != WS_UNKNOWN && flags & sfr == 0 {
                let shift = if rev.is_first_ack || rev.win_scale == WS_NONE {
                    0
                } else {
                    rev.win_scale as u32
                };
                let edge = rev.lastack.wrapping_add(rev.window.wrapping_shl(shift));
                if seq.wrapping_add(seglen) == edge {
                    ta |= WINDOW_FULL;
                }
            }
            if seglen == 0
                && window != 0
                && window == fwd.window
                && same_seq_ack
                && rev.lastsegmentflags & KEEP_ALIVE != 0
            {
                ta |= KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if seglen == 0
                && window == 0
                && window == fwd.window
                && same_seq_ack
                && rev.lastsegmentflags & ZERO_WINDOW_PROBE != 0
            {
                ta |= ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if seglen == 0 && window != 0 && window == fwd.window && same_seq_ack {
                let f = &mut self.dirs[d];
                f.dupacknum = if f.dupacknum == -1 {
                    1
                } else {
                    f.dupacknum + 1
                };
                ta |= DUPLICATE_ACK;
            }
        }
        // finished_fwd:
        if ack != self.dirs[d].lastack {
            self.dirs[d].dupacknum = 0;
        }
        {
            let rev = &mut self.dirs[r];
            if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && flags & ACK != 0 {
                if lt(rev.maxseqtobeacked, rev.nextseq) {
                    rev.maxseqtobeacked = rev.nextseq;
                    ta |= ACK_LOST_PACKET;
                } else {
                    if rev.dupacknum == 0 {
                        ta |= ACK_LOST_PACKET;
                    }
                    rev.dupacknum = -1;
                }
            }
        }
        'retrans: {
            if !(seglen > 0 || flags & (SYN | FIN) != 0) {
                break 'retrans;
            }
            let (fwd, rev) = (&self.dirs[d], &self.dirs[r]);
            let mut seq_not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
            if ta & KEEP_ALIVE != 0 {
                break 'retrans;
            }
            if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                seq_not_advanced = false;
            }
            if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
                ta |= SPURIOUS_RETRANSMISSION;
                break 'retrans;
            }
            // Like Wireshark, time differences are unsigned: a timestamp that
            // goes backwards makes a huge difference, never a small one.
            let since_dupack = s.ts.0.wrapping_sub(rev.lastack_time.0) as u64;
            // Wireshark's dupacknum is unsigned: the -1 left by an "ACKed
            // unseen segment" counts as a large number here.
            if seq_not_advanced
                && rev.dupacknum as u32 >= 2
                && rev.lastack == seq
                && since_dupack < FAST_RETRANSMIT_WINDOW_NS as u64
            {
                ta |= FAST_RETRANSMISSION;
                break 'retrans;
            }
            let since_nextseq = s.ts.0.wrapping_sub(fwd.nextseq_time.0) as u64;
            let ooo_threshold = self.first_rtt_ns.unwrap_or(DEFAULT_OOO_THRESHOLD_NS) as u64;
            let syn_fin = u32::from(flags & (SYN | FIN) != 0);
            if seq_not_advanced
                && since_nextseq < ooo_threshold
                && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin)
            {
                ta |= OUT_OF_ORDER;
                break 'retrans;
            }
            if seq_not_advanced {
                ta |= RETRANSMISSION;
            }
        }
        // finished_checking_retransmission_type:
        let fwd = &mut self.dirs[d];
        let mut nextseq = seq.wrapping_add(seglen);
        if (seglen != 0 || flags & (SYN | FIN) != 0) && fwd.unacked < MAX_UNACKED_SEGMENTS {
            fwd.unacked += 1;
            if flags & (SYN | FIN) != 0 {
                nextseq = nextseq.wrapping_add(1);
            }
        }
        if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && ta & ZERO_WINDOW_PROBE == 0 {
            fwd.nextseq = nextseq;
            fwd.nextseq_time = s.ts;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && ta & ZERO_WINDOW_PROBE == 0 {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_time = s.ts;
        fwd.lastsegmentflags = ta;
        // Segments this ACK covers leave the other direction's unacked count.
        if flags & ACK != 0 {
            let rev = &mut self.dirs[r];
            if rev.unacked > 0 && !lt(ack, rev.nextseq) {
                rev.unacked = 0;
            }
        }
        ta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(ms: i64, seq: u32, ack: u32, len: u32, flags: u8, win: u16) -> Segment {
        Segment {
            ts: Timestamp(ms * 1_000_000),
            seq,
            ack,
            seglen: len,
            flags,
            window: win,
            window_scale_option: None,
        }
    }

    #[test]
    fn handshake_data_loss_dupacks_fast_retransmit() {
        let mut a = TcpAnalyzer::default();
        // client 0, server 1
        assert_eq!(a.analyze(0, &seg(0, 1000, 0, 0, SYN, 64240)), 0);
        assert_eq!(a.analyze(1, &seg(1, 5000, 1001, 0, SYN | ACK, 65160)), 0);
        assert_eq!(a.analyze(0, &seg(2, 1001, 5001, 0, ACK, 502)), 0);
        assert_eq!(a.first_rtt_ns(), Some(2_000_000));
        // server sends 4 segments; the first is lost before the capture point
        let f = a.analyze(1, &seg(10, 6001, 1001, 1000, ACK, 509));
        assert_eq!(f & flag::LOST_PACKET, flag::LOST_PACKET);
        a.analyze(1, &seg(10, 7001, 1001, 1000, ACK, 509));
        a.analyze(1, &seg(10, 8001, 1001, 1000, ACK, 509));
        // client ACKs 5001 three times: the second and third are duplicates
        a.analyze(0, &seg(11, 1001, 5001, 0, ACK, 502));
        let d1 = a.analyze(0, &seg(11, 1001, 5001, 0, ACK, 502));
        let d2 = a.analyze(0, &seg(12, 1001, 5001, 0, ACK, 502));
        assert_eq!(d1 & flag::DUPLICATE_ACK, flag::DUPLICATE_ACK);
        assert_eq!(d2 & flag::DUPLICATE_ACK, flag::DUPLICATE_ACK);
        // retransmission of 5001 within 20 ms of the dup acks: fast
        let r = a.analyze(1, &seg(13, 5001, 1001, 1000, ACK, 509));
        assert_eq!(r, flag::FAST_RETRANSMISSION);
        // and once more 300 ms later: plain retransmission
        let r = a.analyze(1, &seg(313, 5001, 1001, 1000, ACK, 509));
        assert_eq!(r, flag::RETRANSMISSION);
        // client ACKs everything; a later copy of old data is spurious
        a.analyze(0, &seg(314, 1001, 9001, 0, ACK, 502));
        let sp = a.analyze(1, &seg(400, 6001, 1001, 1000, ACK, 509));
        assert_eq!(sp, flag::SPURIOUS_RETRANSMISSION);
    }

    #[test]
    fn syn_retransmission_and_zero_window() {
        let mut a = TcpAnalyzer::default();
        a.analyze(0, &seg(0, 77, 0, 0, SYN, 64240));
        assert_eq!(
            a.analyze(0, &seg(1000, 77, 0, 0, SYN, 64240)),
            flag::RETRANSMISSION
        );
        assert!(!a.is_port_reuse(0, 77));
        assert!(a.is_port_reuse(0, 12345));
        a.analyze(1, &seg(1001, 9, 78, 0, SYN | ACK, 100));
        let z = a.analyze(1, &seg(1002, 10, 78, 0, ACK, 0));
        assert_eq!(z & flag::ZERO_WINDOW, flag::ZERO_WINDOW);
    }

    #[test]
    fn time_going_backwards_is_never_within_a_window() {
        let mut a = TcpAnalyzer::default();
        a.analyze(0, &seg(100, 1000, 0, 0, SYN, 64240));
        a.analyze(1, &seg(101, 5000, 1001, 0, SYN | ACK, 65160));
        a.analyze(1, &seg(110, 5001, 1001, 1000, ACK, 509));
        a.analyze(1, &seg(111, 6001, 1001, 1000, ACK, 509));
        // An older copy of the first segment stamped before the newest: tshark
        // sees a huge unsigned difference, so a retransmission, not out-of-order.
        let r = a.analyze(1, &seg(105, 5001, 1001, 1000, ACK, 509));
        assert_eq!(r, flag::RETRANSMISSION);
    }

    #[test]
    fn keepalive_is_not_a_retransmission() {
        let mut a = TcpAnalyzer::default();
        a.analyze(0, &seg(0, 100, 0, 0, SYN, 1000));
        a.analyze(1, &seg(1, 500, 101, 0, SYN | ACK, 1000));
        a.analyze(0, &seg(2, 101, 501, 10, ACK, 1000));
        let k = a.analyze(0, &seg(5000, 110, 501, 1, ACK, 1000));
        assert_eq!(
            k & (flag::KEEP_ALIVE | flag::RETRANSMISSION),
            flag::KEEP_ALIVE
        );
    }
}
