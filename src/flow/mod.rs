//! The flow table: bidirectional, tunnel-aware flows with TCP state.
//!
//! Flows end when they close (after a short linger for late retransmissions)
//! or go idle, and ended flows are handed to the caller, so memory follows
//! the number of concurrent flows, not the number of packets.

pub mod dedup;
pub mod defrag;
pub mod key;
pub mod stream;
pub mod tcp;

use crate::capture::{Packet, Timestamp};
use crate::decode::transport::tcp_flags::{ACK, FIN, RST, SYN};
use crate::decode::{Decoded, Layer};
use dedup::{CapturePoint, CopyDetector};
use foldhash::HashMap;
use key::{FiveTuple, HopKind, PacketEndpoints, TunnelContext};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use tcp::{flag, Segment, TcpAnalyzer};

/// Flow-table limits and timeouts (capture time, not wall time).
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub tcp_idle_timeout_ns: i64,
    pub udp_idle_timeout_ns: i64,
    /// A closed or reset TCP flow stays this long for late segments.
    pub closed_linger_ns: i64,
    /// At most this many flows at once; beyond it new flows are not tracked
    /// (with a `flow.table_full` warning).
    pub max_flows: usize,
    /// Recognise copies of one packet at several capture points.
    pub dedup: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle_timeout_ns: 300_000_000_000,
            udp_idle_timeout_ns: 60_000_000_000,
            closed_linger_ns: 10_000_000_000,
            max_flows: 2_000_000,
            dedup: true,
        }
    }
}

/// Example frames kept per flow and kind of event.
pub const MAX_EXAMPLE_FRAMES: usize = 16;

/// Per-flow TCP analysis counters (tshark's `tcp.analysis.*`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TcpCounters {
    /// All retransmissions, fast and spurious included (tshark's `tcp.analysis.retransmission`).
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    pub out_of_order: u64,
    pub lost_segments: u64,
    pub ack_lost_segments: u64,
    pub dup_acks: u64,
    pub zero_windows: u64,
    pub window_full: u64,
    pub keep_alives: u64,
    pub resets: u64,
}

/// How a TCP connection turned out, as far as the capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    /// Handshake seen, connection still open at the end of the capture.
    Established,
    /// The SYN was answered by a RST.
    Refused,
    /// The SYN got no answer at all.
    SynUnanswered,
    /// The initiator reset its own unanswered SYN (a scanner, or a client
    /// giving up): no answer was seen.
    Aborted,
    /// Reset after it was established (or mid-stream).
    Reset,
    /// FIN in both directions.
    Closed,
    /// Picked up mid-stream (no SYN seen), still open.
    Midstream,
    /// Not TCP.
    NotTcp,
}

impl ConnState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Established => "established",
            ConnState::Refused => "refused",
            ConnState::SynUnanswered => "syn_unanswered",
            ConnState::Aborted => "aborted",
            ConnState::Reset => "reset",
            ConnState::Closed => "closed",
            ConnState::Midstream => "midstream",
            ConnState::NotTcp => "",
        }
    }
}

/// TCP-specific state of a flow.
#[derive(Debug, Clone, Default)]
pub struct TcpState {
    pub analyzer: TcpAnalyzer,
    pub counters: TcpCounters,
    /// SYNs (without ACK) from the initiator, and when the first was sent.
    pub syns: u32,
    pub first_syn: Option<(Timestamp, u64)>,
    pub synacks: u32,
    pub fins: [bool; 2],
    /// Direction and frame of the first RST.
    pub first_rst: Option<(usize, u64, Timestamp)>,
    pub data_before_rst: bool,
    /// The first RST came after FINs in both directions (an ordinary close).
    pub rst_after_close: bool,
    pub reused_ports: bool,
    /// Segments carrying payload, per direction (retransmitted ones included).
    pub data_segments: [u64; 2],
    /// Frames flagged, per kind: retransmission, zero window, reset ...
    pub retrans_frames: Vec<u64>,
    pub zero_window_frames: Vec<u64>,
    pub syn_frames: Vec<u64>,
}

/// One bidirectional flow. Direction 0 is initiator → responder.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: u64,
    pub proto: u8,
    /// Shared with every flow in the same tunnel (interned by the table):
    /// a flow costs a pointer for it, not the whole context.
    pub tunnel: Arc<TunnelContext>,
    /// Other tunnel contexts the same flow was seen in (plain and tunnelled views joined).
    pub also_seen_in: Vec<Arc<TunnelContext>>,
    /// Initiator and responder endpoints.
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub first_frame: u64,
    pub last_frame: u64,
    pub packets: [u64; 2],
    /// Innermost IP bytes (header lengths, not captured lengths).
    pub bytes: [u64; 2],
    pub max_ip_len: [u32; 2],
    pub syn_mss: [Option<u16>; 2],
    /// Largest IP packet that had DF set, per direction.
    pub df_seen: [bool; 2],
    pub copies_skipped: u64,
    pub tcp: Option<TcpState>,
    /// For the tuple index: which canonical side the initiator is.
    init_dir: usize,
    /// The key the flow was created with is (`tunnel`, `tuple`); `keys`
    /// holds only further views (a tunnelled view of a plain flow), so a
    /// flow seen one way allocates nothing for its keys.
    tuple: FiveTuple,
    context_id: u32,
    keys: Vec<(u32, FiveTuple)>,
}

impl Flow {
    pub fn state(&self) -> ConnState {
        let Some(t) = &self.tcp else {
            return ConnState::NotTcp;
        };
        let rst = t.first_rst.is_some();
        if t.syns > 0 && t.synacks == 0 {
            return match t.first_rst {
                Some((1, _, _)) => ConnState::Refused,
                Some(_) if self.packets[1] == 0 => ConnState::Aborted,
                Some(_) => ConnState::Reset,
                None if self.packets[1] == 0 => ConnState::SynUnanswered,
                None => ConnState::Established,
            };
        }
        if rst && !t.rst_after_close {
            ConnState::Reset
        } else if t.fins[0] && t.fins[1] {
            ConnState::Closed
        } else if t.syns == 0 && t.synacks == 0 {
            ConnState::Midstream
        } else {
            ConnState::Established
        }
    }

    pub fn handshake_rtt_ms(&self) -> Option<f64> {
        self.tcp
            .as_ref()
            .and_then(|t| t.analyzer.first_rtt_ns())
            .map(|n| n as f64 / 1e6)
    }

    fn closed(&self) -> bool {
        matches!(
            self.state(),
            ConnState::Closed | ConnState::Reset | ConnState::Refused | ConnState::Aborted
        )
    }
}

/// What the flow layer did with one packet.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    /// Index of the flow in the table (valid until the next `observe`).
    pub slot: usize,
    /// Direction: 0 initiator → responder.
    pub dir: usize,
    /// TCP analysis flags (`tcp::flag`), 0 for other protocols.
    pub tcp_flags: u32,
    /// This packet is a copy of one seen at another capture point.
    pub copy_of: Option<u64>,
}

#[derive(Default)]
pub struct FlowStats {
    pub flows_created: u64,
    pub packets_without_flow: u64,
    pub table_full_drops: u64,
    /// Packets whose tunnel context could not be interned ([`MAX_CONTEXTS`]).
    pub contexts_overflowed: u64,
}

/// Distinct tunnel contexts interned per capture (a hostile file could
/// invent one per packet); beyond it, contexts share one id and a
/// `flow.too_many_tunnels` warning says so.
pub const MAX_CONTEXTS: usize = 1 << 16;
const OVERFLOW_CONTEXT: u32 = u32::MAX;

pub struct FlowTable {
    cfg: FlowConfig,
    /// Boxed: a million flows must not mean a Vec of million large structs
    /// that doubles (and copies) as it grows.
    slots: Vec<Option<Box<Flow>>>,
    free: Vec<usize>,
    /// (interned tunnel context, 5-tuple) → slot. Keys are 48 bytes, not a
    /// whole context each: a million flows fit in well under a gigabyte.
    by_key: HashMap<(u32, FiveTuple), usize>,
    /// Distinct tunnel contexts seen, by id (id 0: no tunnel), at most
    /// [`MAX_CONTEXTS`]; further contexts share [`OVERFLOW_CONTEXT`].
    contexts: HashMap<TunnelContext, u32>,
    context_arcs: Vec<Arc<TunnelContext>>,
    /// Bare 5-tuple → slot of the latest flow with it in a tunnel or VLAN, to
    /// join plain and tunnelled views (plain flows are in `by_key` under
    /// context 0, so a plain capture pays nothing for this index).
    by_tuple: HashMap<FiveTuple, usize>,
    next_id: u64,
    last_sweep: Timestamp,
    pub copies: CopyDetector,
    pub stats: FlowStats,
    /// Flows live boxed in the table; ending one moves its box here
    /// rather than copying the flow out.
    #[allow(clippy::vec_box)]
    ended: Vec<Box<Flow>>,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::default(),
            contexts: HashMap::default(),
            context_arcs: vec![Arc::new(TunnelContext::new())],
            by_tuple: HashMap::default(),
            next_id: 1,
            last_sweep: Timestamp(i64::MIN),
            copies: CopyDetector::default(),
            stats: FlowStats::default(),
            ended: Vec::new(),
        }
    }

    pub fn flow(&self, slot: usize) -> Option<&Flow> {
        self.slots.get(slot).and_then(|f| f.as_deref())
    }

    pub fn len(&self) -> usize {
        self.by_tuple.len().max(self.slots.len() - self.free.len())
    }

    pub fn is_empty(&self) -> bool {
        self.slots.len() == self.free.len()
    }

    /// Flows that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<Box<Flow>> {
        std::mem::take(&mut self.ended)
    }

    /// End every flow (end of capture), handing each to `each` as it ends:
    /// one at a time, so that a million open flows are never collected in
    /// one list.
    pub fn finish_each(&mut self, mut each: impl FnMut(Box<Flow>)) {
        for slot in 0..self.slots.len() {
            self.evict(slot);
            for f in self.ended.drain(..) {
                each(f);
            }
        }
    }

    fn evict(&mut self, slot: usize) {
        if let Some(f) = self.slots.get_mut(slot).and_then(|s| s.take()) {
            let primary = (f.context_id, f.tuple);
            if self.by_key.get(&primary) == Some(&slot) {
                self.by_key.remove(&primary);
            }
            if self.by_tuple.get(&f.tuple) == Some(&slot) {
                self.by_tuple.remove(&f.tuple);
            }
            for k in &f.keys {
                if self.by_key.get(k) == Some(&slot) {
                    self.by_key.remove(k);
                }
                if self.by_tuple.get(&k.1) == Some(&slot) {
                    self.by_tuple.remove(&k.1);
                }
            }
            self.free.push(slot);
            self.ended.push(f);
        }
    }

    fn sweep(&mut self, now: Timestamp) {
        // Once per second of capture time is often enough.
        if now.0.saturating_sub(self.last_sweep.0) < 1_000_000_000 {
            return;
        }
        self.last_sweep = now;
        for slot in 0..self.slots.len() {
            let Some(f) = self.slots[slot].as_deref() else {
                continue;
            };
            let idle = now.0.saturating_sub(f.last_ts.0);
            let limit = if f.closed() {
                self.cfg.closed_linger_ns
            } else if f.proto == 6 {
                self.cfg.tcp_idle_timeout_ns
            } else {
                self.cfg.udp_idle_timeout_ns
            };
            if idle > limit {
                self.evict(slot);
            }
        }
    }

    /// The interned id of a tunnel context (0 for none, the common case,
    /// without a lookup).
    fn context_id(&mut self, ctx: &TunnelContext) -> u32 {
        if ctx.is_empty() {
            return 0;
        }
        if let Some(&id) = self.contexts.get(ctx) {
            return id;
        }
        if self.context_arcs.len() >= MAX_CONTEXTS {
            self.stats.contexts_overflowed += 1;
            return OVERFLOW_CONTEXT;
        }
        let id = self.context_arcs.len() as u32;
        self.context_arcs.push(Arc::new(ctx.clone()));
        self.contexts.insert(ctx.clone(), id);
        id
    }

    fn context_arc(&self, id: u32, ctx: &TunnelContext) -> Arc<TunnelContext> {
        match self.context_arcs.get(id as usize) {
            Some(a) if id != OVERFLOW_CONTEXT => a.clone(),
            _ => Arc::new(ctx.clone()),
        }
    }

    fn find(&mut self, ctx: &TunnelContext, ctx_id: u32, tuple: &FiveTuple) -> Option<usize> {
        if let Some(&s) = self.by_key.get(&(ctx_id, *tuple)) {
            return Some(s);
        }
        // Join the plain and the tunnelled view of one flow (node captures
        // see both); two different tunnels never join.
        // Plain flows are found through `by_key` with context 0; only
        // tunnelled (or VLAN-tagged) flows are indexed by bare 5-tuple.
        let &s = if ctx_id != 0 {
            self.by_key
                .get(&(0, *tuple))
                .or_else(|| self.by_tuple.get(tuple))?
        } else {
            self.by_tuple.get(tuple)?
        };
        let f = self.slots.get(s)?.as_deref()?;
        let plain = |c: &TunnelContext| c.iter().all(|h| h.kind == HopKind::Vlan);
        if plain(ctx) || plain(&f.tunnel) {
            if f.keys.len() < 7 {
                let new_view = *ctx != *f.tunnel && !f.also_seen_in.iter().any(|c| **c == *ctx);
                let arc = new_view.then(|| self.context_arc(ctx_id, ctx));
                let f = self.slots[s].as_deref_mut()?;
                f.keys.push((ctx_id, *tuple));
                f.also_seen_in.extend(arc);
                self.by_key.insert((ctx_id, *tuple), s);
            }
            return Some(s);
        }
        None
    }

    fn create(
        &mut self,
        ep: &PacketEndpoints,
        ctx_id: u32,
        tuple: FiveTuple,
        canon_dir: usize,
        pkt: &Packet<'_>,
        initiator_is_sender: bool,
    ) -> Option<usize> {
        if self.slots.len() - self.free.len() >= self.cfg.max_flows {
            self.stats.table_full_drops += 1;
            return None;
        }
        let (src, dst) = if initiator_is_sender {
            (ep.src, ep.dst)
        } else {
            (ep.dst, ep.src)
        };
        let init_dir = if initiator_is_sender {
            canon_dir
        } else {
            1 - canon_dir
        };
        let flow = Flow {
            id: self.next_id,
            proto: ep.proto,
            tunnel: self.context_arc(ctx_id, &ep.context),
            also_seen_in: Vec::new(),
            src,
            dst,
            first_ts: pkt.ts,
            last_ts: pkt.ts,
            first_frame: pkt.frame,
            last_frame: pkt.frame,
            packets: [0; 2],
            bytes: [0; 2],
            max_ip_len: [0; 2],
            syn_mss: [None; 2],
            df_seen: [false; 2],
            copies_skipped: 0,
            tcp: (ep.proto == 6).then(TcpState::default),
            init_dir,
            tuple,
            context_id: ctx_id,
            keys: Vec::new(),
        };
        self.next_id += 1;
        self.stats.flows_created += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(Box::new(flow));
                s
            }
            None => {
                self.slots.push(Some(Box::new(flow)));
                self.slots.len() - 1
            }
        };
        self.by_key.insert((ctx_id, tuple), slot);
        if ctx_id != 0 {
            self.by_tuple.insert(tuple, slot);
        }
        Some(slot)
    }

    /// Account one decoded packet. Returns `None` for packets that belong
    /// to no flow (no IP, non-first fragments, ICMP) or when the table is full.
    pub fn observe(&mut self, pkt: &Packet<'_>, d: &Decoded<'_>) -> Option<Observation> {
        if pkt.has_ts {
            self.sweep(pkt.ts);
        }
        let Some(ep) = key::endpoints(d) else {
            self.stats.packets_without_flow += 1;
            return None;
        };
        if d.fragment || !matches!(ep.proto, 6 | 17) || ep.transport_index.is_none() {
            self.stats.packets_without_flow += 1;
            return None;
        }
        let tunnel_depth = ep
            .context
            .iter()
            .filter(|h| h.kind != HopKind::Vlan)
            .count();
        let copy_of = if self.cfg.dedup {
            dedup::fingerprint(d, ep.ip_index).and_then(|fp| {
                let point = CapturePoint::of(pkt, d, tunnel_depth);
                self.copies.check(fp, point, pkt.ts, pkt.frame)
            })
        } else {
            None
        };
        let (tuple, canon_dir) = FiveTuple::new(ep.proto, ep.src, ep.dst);
        let tcp_view = match d.outer_layers().get(ep.ip_index + 1) {
            Some(Layer::Tcp(t)) => Some(*t),
            _ => None,
        };
        let syn_only = tcp_view.is_some_and(|t| t.flags() & (SYN | ACK) == SYN);
        let ctx_id = self.context_id(&ep.context);
        let mut slot = self.find(&ep.context, ctx_id, &tuple);
        // A new SYN with another initial sequence number on a 5-tuple in
        // use: the ports were reused (tshark's tcp.analysis.reused_ports).
        let mut reused = false;
        if let (Some(s), Some(t), None) = (slot, tcp_view, copy_of) {
            if syn_only {
                let f = self.slots[s].as_deref()?;
                let d_of_sender = usize::from(canon_dir != f.init_dir);
                if f.tcp
                    .as_ref()
                    .is_some_and(|st| st.analyzer.is_port_reuse(d_of_sender, t.seq()))
                {
                    self.evict(s);
                    slot = None;
                    reused = true;
                }
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if copy_of.is_some() {
                    // The original was not tracked (table full): nothing to add to.
                    return None;
                }
                let initiator_is_sender = match tcp_view.map(|t| t.flags() & (SYN | ACK)) {
                    // The initiator is the SYN sender; a SYN-ACK means the other side.
                    Some(SYN) => true,
                    Some(f) if f == SYN | ACK => false,
                    // Picked up mid-stream, or UDP: guess the client by its port.
                    _ => sender_looks_like_client(ep.src.1, ep.dst.1),
                };
                self.create(&ep, ctx_id, tuple, canon_dir, pkt, initiator_is_sender)?
            }
        };
        let flow = self.slots[slot].as_deref_mut()?;
        let dir = usize::from(canon_dir != flow.init_dir);
        if let Some(orig) = copy_of {
            flow.copies_skipped += 1;
            return Some(Observation {
                slot,
                dir,
                tcp_flags: 0,
                copy_of: Some(orig),
            });
        }
        flow.last_ts = pkt.ts.max(flow.last_ts);
        flow.last_frame = pkt.frame;
        flow.packets[dir] += 1;
        flow.bytes[dir] += u64::from(ep.ip_len);
        flow.max_ip_len[dir] = flow.max_ip_len[dir].max(ep.ip_len);
        if let Some(Layer::Ipv4(v)) = d.outer_layers().get(ep.ip_index) {
            flow.df_seen[dir] |= v.dont_fragment();
        }
        let mut tcp_flags = 0;
        if let (Some(t), Some(st)) = (tcp_view, flow.tcp.as_mut()) {
            let opts = t.options();
            let hdr_len = t.header_len() as u32;
            let ip_payload = match d.outer_layers().get(ep.ip_index) {
                Some(Layer::Ipv4(v)) => v.bounds().claimed,
                Some(Layer::Ipv6(v)) => v.bounds().claimed,
                _ => None,
            };
            // tshark's seglen: the TCP segment's reported length (the IP
            // payload length, but never more than the frame had on the wire)
            // minus the TCP header; with a zero IP length (TSO), what is left
            // of the frame.
            let payload_at = match d.outer_layers().get(ep.ip_index) {
                Some(Layer::Ipv4(v)) => offset_in(pkt.data, v.payload()),
                Some(Layer::Ipv6(v)) => offset_in(pkt.data, v.payload()),
                _ => None,
            };
            let on_wire = payload_at.map(|o| (pkt.orig_len as usize).saturating_sub(o));
            let reported = match (ip_payload, on_wire) {
                (Some(p), Some(w)) => p.min(w),
                (Some(p), None) => p,
                (None, Some(w)) => w,
                (None, None) => d.payload.len() + hdr_len as usize,
            };
            if reported < hdr_len as usize {
                // Wireshark skips the analysis of a segment shorter than its header.
                return Some(Observation {
                    slot,
                    dir,
                    tcp_flags: 0,
                    copy_of: None,
                });
            }
            let seglen = (reported - hdr_len as usize) as u32;
            let seg = Segment {
                ts: pkt.ts,
                seq: t.seq(),
                ack: t.ack(),
                seglen,
                flags: t.flags(),
                window: t.window(),
                window_scale_option: opts.window_scale,
            };
            let f = t.flags();
            if f & SYN != 0 {
                if opts.mss.is_some() {
                    flow.syn_mss[dir] = opts.mss;
                }
                if f & ACK == 0 {
                    st.syns += 1;
                    if st.first_syn.is_none() {
                        st.first_syn = Some((pkt.ts, pkt.frame));
                    }
                } else {
                    st.synacks += 1;
                }
                if st.syn_frames.len() < MAX_EXAMPLE_FRAMES {
                    st.syn_frames.push(pkt.frame);
                }
            }
            if f & FIN != 0 {
                st.fins[dir] = true;
            }
            if f & RST != 0 {
                st.counters.resets += 1;
                if st.first_rst.is_none() {
                    st.first_rst = Some((dir, pkt.frame, pkt.ts));
                    st.data_before_rst = flow.bytes[0] + flow.bytes[1] > 0 && st.synacks > 0;
                    st.rst_after_close = st.fins[0] && st.fins[1];
                }
            }
            if seglen > 0 {
                st.data_segments[dir] += 1;
            }
            tcp_flags = st.analyzer.analyze(dir, &seg);
            if reused {
                tcp_flags |= flag::REUSED_PORTS;
            }
            if tcp_flags & flag::REUSED_PORTS != 0 {
                st.reused_ports = true;
            }
            count_flags(st, tcp_flags, pkt.frame);
        }
        Some(Observation {
            slot,
            dir,
            tcp_flags,
            copy_of: None,
        })
    }
}

/// Offset of `part` inside `whole`, when it is a sub-slice of it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    (p >= w && p + part.len() <= w + whole.len()).then(|| p - w)
}

/// Without a SYN, which side is the client? The one on an ephemeral port:
/// a port below 1024 is a server's; Linux picks client ports from 32768 up.
/// Otherwise the first sender is taken as the client.
fn sender_looks_like_client(sport: u16, dport: u16) -> bool {
    let server_port = |p: u16| p < 1024;
    let ephemeral = |p: u16| p >= 32768;
    if server_port(sport) != server_port(dport) {
        return server_port(dport);
    }
    if ephemeral(sport) != ephemeral(dport) {
        return ephemeral(sport);
    }
    true
}

fn count_flags(st: &mut TcpState, f: u32, frame: u64) {
    let c = &mut st.counters;
    let retrans = flag::RETRANSMISSION | flag::FAST_RETRANSMISSION | flag::SPURIOUS_RETRANSMISSION;
    if f & retrans != 0 {
        c.retransmissions += 1;
        if st.retrans_frames.len() < MAX_EXAMPLE_FRAMES {
            st.retrans_frames.push(frame);
        }
    }
    if f & flag::FAST_RETRANSMISSION != 0 {
        c.fast_retransmissions += 1;
    }
    if f & flag::SPURIOUS_RETRANSMISSION != 0 {
        c.spurious_retransmissions += 1;
    }
    if f & flag::OUT_OF_ORDER != 0 {
        c.out_of_order += 1;
    }
    if f & flag::LOST_PACKET != 0 {
        c.lost_segments += 1;
    }
    if f & flag::ACK_LOST_PACKET != 0 {
        c.ack_lost_segments += 1;
    }
    if f & flag::DUPLICATE_ACK != 0 {
        c.dup_acks += 1;
    }
    if f & flag::ZERO_WINDOW != 0 {
        c.zero_windows += 1;
        if st.zero_window_frames.len() < MAX_EXAMPLE_FRAMES {
            st.zero_window_frames.push(frame);
        }
    }
    if f & flag::WINDOW_FULL != 0 {
        c.window_full += 1;
    }
    if f & flag::KEEP_ALIVE != 0 {
        c.keep_alives += 1;
    }
}

#[cfg(test)]
mod size_probe {
    #[test]
    fn print_sizes() {
        eprintln!(
            "Flow {} TcpState {} TcpAnalyzer {} TunnelContext {} FiveTuple {} Slot {}",
            std::mem::size_of::<super::Flow>(),
            std::mem::size_of::<super::TcpState>(),
            std::mem::size_of::<super::tcp::TcpAnalyzer>(),
            std::mem::size_of::<super::key::TunnelContext>(),
            std::mem::size_of::<super::key::FiveTuple>(),
            std::mem::size_of::<Option<super::Flow>>(),
        );
    }
}
