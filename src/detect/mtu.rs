//! `mtu.icmp_too_big` and `mtu.blackhole`.
//!
//! Path MTU discovery works when a router that cannot forward a packet with
//! DF set says so (ICMPv4 fragmentation needed, ICMPv6 packet too big); the
//! sender then sends smaller packets. When that ICMP is dropped (a firewall,
//! a security group, an overlay that eats it), large segments vanish while
//! small ones pass: the classic "small requests work, large responses hang".
//!
//! Black-hole verdict, per direction of a TCP flow: a data segment was sent
//! at least [`MIN_TRANSMISSIONS`] times and never acknowledged, it is larger
//! than every packet that got through in that direction, DF was set (or
//! IPv6), no ICMP too-big was seen for the flow, and it is not an offload
//! super-frame. Lost segments that are later acknowledged are loss, not a
//! black hole.

use super::finding::sock;
use super::offload::{is_superframe, tcp_segment, TcpSegment};
use super::{Detector, Evidence, Finding, FinishContext, FlowRef, PacketEvent, Severity};
use crate::decode::transport::tcp_flags::{ACK, SYN};
use crate::decode::Layer;
use crate::flow::Flow;
use foldhash::{HashMap, HashSet};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

pub const MIN_TRANSMISSIONS: u16 = 3;
/// Segments tracked per flow direction (the oldest unacknowledged are kept).
const MAX_SEGMENTS: usize = 1024;
const MAX_FLOWS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Seg {
    len: u32,
    ip_len: u32,
    tx: u16,
    first_frame: u64,
    last_frame: u64,
}

#[derive(Default)]
struct DirSegs {
    /// Unacknowledged segments in sequence-number order. A deque rather
    /// than a map: segments arrive almost always in order and leave from
    /// the front when acknowledged, so this costs no allocation per
    /// segment (the map's node churn was 5 % of `analyze`).
    segs: VecDeque<(u32, Seg)>,
    /// Largest IP packet of this direction that was acknowledged.
    max_acked_ip: u32,
    /// The SYN or SYN-ACK (acknowledged by the next segment of the peer).
    syn: Option<(u32, u32)>,
}

#[derive(Default)]
struct FlowMtu {
    dirs: [DirSegs; 2],
}

/// (sender, receiver, protocol, sender port, receiver port)
pub(crate) type Tuple = (IpAddr, IpAddr, u8, u16, u16);

struct TooBig {
    router: IpAddr,
    mtu: u32,
    /// The packet that was too big, from the quote.
    quoted: Tuple,
    frames: Vec<u64>,
    count: u64,
    tunnel: String,
}

struct Stalled {
    flow: FlowRef,
    dir: usize,
    max_acked_ip: u32,
    min_stuck_ip: u32,
    max_tx: u16,
    frames: Vec<u64>,
    tuple: Tuple,
    tunnel_overhead_hint: String,
    /// The tunnel the flow was seen in (here or as another view of it) and
    /// what that tunnel adds to each packet.
    overhead: Option<(String, u32)>,
}

/// Pod MTUs the common overlays need on a 1500-byte underlay.
const OVERLAY_MTUS: [(u32, &str); 5] = [
    (1480, "IP-in-IP (Calico IPIP)"),
    (1450, "VXLAN or Geneve (Flannel, Calico VXLAN, Cilium, OVN)"),
    (1440, "WireGuard over IPv4"),
    (1430, "VXLAN over IPv6"),
    (1420, "WireGuard over IPv6"),
];

#[derive(Default)]
pub struct Mtu {
    flows: HashMap<u64, FlowMtu>,
    too_big: Vec<TooBig>,
    too_big_tuples: HashSet<Tuple>,
    stalled: Vec<Stalled>,
    /// Segments of flows not followed because [`MAX_FLOWS`] were open.
    flows_skipped: u64,
}

#[inline]
fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

fn ip_pair(l: &Layer<'_>) -> Option<(IpAddr, IpAddr)> {
    match l {
        Layer::Ipv4(v) => Some((IpAddr::V4(v.src()), IpAddr::V4(v.dst()))),
        Layer::Ipv6(v) => Some((IpAddr::V6(v.src()), IpAddr::V6(v.dst()))),
        _ => None,
    }
}

/// An ICMP "fragmentation needed" / "packet too big": who sent it, the MTU
/// it announces, and the packet it quotes as (src, dst, proto, sport, dport).
pub(crate) fn icmp_too_big(d: &crate::decode::Decoded<'_>) -> Option<(IpAddr, u32, Tuple)> {
    let outer = d.outer_layers();
    let pos = outer.iter().position(|l| matches!(l, Layer::Icmp(_)))?;
    let Layer::Icmp(icmp) = outer[pos] else {
        return None;
    };
    let mtu = icmp.too_big_mtu()?;
    let router = outer[..pos].iter().rev().find_map(ip_pair)?.0;
    let qip = d.quoted_layers().first()?;
    let (src, dst) = ip_pair(qip)?;
    let (proto, payload) = match qip {
        Layer::Ipv4(v) => (v.protocol(), v.payload()),
        Layer::Ipv6(v) => (v.upper_protocol(), v.payload()),
        _ => return None,
    };
    // Ports are the first four bytes of TCP and UDP alike; quotes may hold
    // only 8 bytes of the transport header.
    let (sp, dp) = if payload.len() >= 4 && matches!(proto, 6 | 17) {
        (
            u16::from_be_bytes([payload[0], payload[1]]),
            u16::from_be_bytes([payload[2], payload[3]]),
        )
    } else {
        (0, 0)
    };
    Some((router, mtu, (src, dst, proto, sp, dp)))
}

impl Mtu {
    fn icmp(&mut self, ev: &PacketEvent<'_, '_>) {
        let Some((router, mtu, tuple)) = icmp_too_big(ev.decoded) else {
            return;
        };
        let (src, dst, proto, _, dp) = tuple;
        self.too_big_tuples.insert(tuple);
        let tunnel = ev
            .flow
            .map(|f| crate::flow::key::context_label(&f.tunnel))
            .unwrap_or_default();
        // One group per router, MTU and destination service: a tunnel's
        // source port changes with every retransmission.
        if let Some(t) = self.too_big.iter_mut().find(|t| {
            t.router == router
                && t.mtu == mtu
                && (t.quoted.0, t.quoted.1, t.quoted.2, t.quoted.4) == (src, dst, proto, dp)
        }) {
            t.count += 1;
            if t.frames.len() < 16 {
                t.frames.push(ev.pkt.frame);
            }
        } else if self.too_big.len() < 1000 {
            self.too_big.push(TooBig {
                router,
                mtu,
                quoted: tuple,
                frames: vec![ev.pkt.frame],
                count: 1,
                tunnel,
            });
        }
    }

    fn segment(&mut self, ev: &PacketEvent<'_, '_>) {
        let Some(TcpSegment {
            obs: o,
            flow: f,
            tcp: t,
            ip_len,
            seglen,
        }) = tcp_segment(ev)
        else {
            return;
        };
        if !self.flows.contains_key(&f.id) && self.flows.len() >= MAX_FLOWS {
            self.flows_skipped += 1;
            return;
        }
        let st = self.flows.entry(f.id).or_default();
        let d = o.dir;
        if t.has(SYN) {
            st.dirs[d].syn = Some((t.seq().wrapping_add(1), ip_len));
        }
        if seglen > 0 && !is_superframe(Some(f), d, seglen, ip_len) {
            let segs = &mut st.dirs[d].segs;
            let seq = t.seq();
            let at = if segs.back().is_none_or(|b| b.0 < seq) {
                segs.len()
            } else {
                segs.partition_point(|e| e.0 < seq)
            };
            if let Some((_, s)) = segs.get_mut(at).filter(|e| e.0 == seq) {
                s.tx = s.tx.saturating_add(1);
                s.last_frame = ev.pkt.frame;
            } else if segs.len() < MAX_SEGMENTS {
                segs.insert(
                    at,
                    (
                        seq,
                        Seg {
                            len: seglen,
                            ip_len,
                            tx: 1,
                            first_frame: ev.pkt.frame,
                            last_frame: ev.pkt.frame,
                        },
                    ),
                );
            }
        }
        if t.has(ACK) {
            let ack = t.ack();
            let other = &mut st.dirs[1 - d];
            if let Some((syn_end, syn_ip)) = other.syn {
                if seq_le(syn_end, ack) {
                    other.max_acked_ip = other.max_acked_ip.max(syn_ip);
                    other.syn = None;
                }
            }
            // Segments are kept in sequence order, so what this ACK covers
            // is a prefix (a sequence wrap only delays a few removals).
            while let Some((seq, s)) = other.segs.front() {
                if !seq_le(seq.wrapping_add(s.len), ack) {
                    break;
                }
                other.max_acked_ip = other.max_acked_ip.max(s.ip_len);
                other.segs.pop_front();
            }
        }
    }
}

impl Detector for Mtu {
    fn limits_hit(&self) -> Vec<String> {
        super::limit_note(self.flows_skipped, |n| {
            format!("mtu.blackhole: more than {MAX_FLOWS} TCP flows open at once; {n} segments of further flows were not checked for a black hole")
        })
    }

    fn packet(&mut self, ev: &PacketEvent<'_, '_>) {
        self.icmp(ev);
        self.segment(ev);
    }

    fn flow_ended(&mut self, f: &Flow) {
        let Some(st) = self.flows.remove(&f.id) else {
            return;
        };
        for (d, dir) in st.dirs.iter().enumerate() {
            let stuck: Vec<&Seg> = dir
                .segs
                .iter()
                .map(|(_, s)| s)
                .filter(|s| s.tx >= MIN_TRANSMISSIONS)
                .collect();
            let Some(min_stuck) = stuck.iter().map(|s| s.ip_len).min() else {
                continue;
            };
            let v6 = f.src.0.is_ipv6();
            if min_stuck <= dir.max_acked_ip || !(f.df_seen[d] || v6) || self.stalled.len() >= 1000
            {
                continue;
            }
            let (s, r) = if d == 0 {
                (f.src, f.dst)
            } else {
                (f.dst, f.src)
            };
            let mut frames: Vec<u64> = stuck
                .iter()
                .flat_map(|s| [s.first_frame, s.last_frame])
                .collect();
            frames.sort_unstable();
            frames.dedup();
            frames.truncate(24);
            self.stalled.push(Stalled {
                flow: FlowRef::of(f),
                dir: d,
                max_acked_ip: dir.max_acked_ip,
                min_stuck_ip: min_stuck,
                max_tx: stuck.iter().map(|s| s.tx).max().unwrap_or(0),
                frames,
                tuple: (s.0, r.0, 6, s.1, r.1),
                tunnel_overhead_hint: crate::flow::key::context_label(&f.tunnel),
                overhead: std::iter::once(&f.tunnel)
                    .chain(f.also_seen_in.iter())
                    .find_map(|c| {
                        crate::flow::key::tunnel_overhead(c)
                            .map(|o| (crate::flow::key::context_label(c), o))
                    }),
            });
        }
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for t in &self.too_big {
            let (s, d, p, sp, dp) = t.quoted;
            let proto = super::finding::proto_name(p);
            out.push(Finding {
                kind: "mtu.icmp_too_big",
                severity: Severity::Info,
                title: format!(
                    "{} told {} to send at most {} bytes towards {} ({} ICMP too-big message(s))",
                    t.router, s, t.mtu, d, t.count
                ),
                summary: if t.router == s {
                    format!(
                        "{} could not send its own {proto} packets to {} with DF set: its outgoing link takes at \
                         most {} bytes, and it told itself so (the ICMP never leaves the node). When the quoted \
                         packets are tunnel packets (UDP {dp}), the tunnel device's MTU is larger than the underlay \
                         can carry: the pods behind it will see a black hole, because this ICMP is not passed on to them.",
                        s,
                        sock(d, dp),
                        t.mtu
                    )
                } else {
                    format!(
                        "A router on the path ({}) could not forward {proto} packets from {} to {} with DF set and \
                         asked for at most {} bytes: path MTU discovery is working{}. If the sender keeps sending \
                         large packets afterwards, something between it and the ICMP sender strips the ICMP.",
                        t.router,
                        sock(s, sp),
                        sock(d, dp),
                        t.mtu,
                        if t.tunnel.is_empty() { String::new() } else { format!(" (inside {})", t.tunnel) }
                    )
                },
                evidence: Evidence {
                    display_filter: "(icmp.type==3 && icmp.code==4) || icmpv6.type==2".to_string(),
                    frames: t.frames.clone(),
                },
                flow: None,
                details: json!({"router": t.router, "mtu": t.mtu, "sender": s, "destination": d,
                                "protocol": proto, "src_port": sp, "dst_port": dp,
                                "messages": t.count, "tunnel": t.tunnel}),
                next_checks: vec![
                    format!("Which link has MTU {}? `tracepath {d}` from the sender, `ip link` on the nodes and tunnel devices", t.mtu),
                    "Make the pod/tunnel MTU fit the smallest link so the ICMP is not needed (CNI MTU setting)".to_string(),
                ],
                input: ctx.input,
            });
        }
        // Black holes: grouped per sender → receiver path.
        let mut paths: BTreeMap<(IpAddr, IpAddr, String), Vec<&Stalled>> = BTreeMap::new();
        for s in &self.stalled {
            if self.too_big_tuples.contains(&s.tuple) {
                continue; // PMTUD was told; that is not a black hole
            }
            paths
                .entry((s.tuple.0, s.tuple.1, s.flow.tunnel.clone()))
                .or_default()
                .push(s);
        }
        for ((snd, rcv, tunnel), v) in paths {
            let low = v.iter().map(|s| s.max_acked_ip).max().unwrap_or(0);
            let high = v.iter().map(|s| s.min_stuck_ip).min().unwrap_or(0);
            if high <= low {
                continue;
            }
            let first = v[0];
            let mut frames: Vec<u64> = v.iter().flat_map(|s| s.frames.iter().copied()).collect();
            frames.sort_unstable();
            frames.truncate(32);
            let tunnel_note = if tunnel.is_empty() {
                String::new()
            } else {
                format!(" The flow runs inside {tunnel}: the sizes are of the inner packets.")
            };
            // The MTU to set: exact when the tunnel is in the capture (its
            // overhead is known), else the bracket and the usual overlay
            // values inside it.
            let overhead = v.iter().find_map(|s| s.overhead.clone());
            let candidates: Vec<(u32, &str)> = OVERLAY_MTUS
                .iter()
                .copied()
                .filter(|(m, _)| *m >= low && *m < high)
                .collect();
            let (recommended, mtu_to_set) = match &overhead {
                Some((label, o)) => {
                    let m = 1500u32.saturating_sub(*o).clamp(low, high.saturating_sub(1).max(low));
                    (
                        m,
                        format!(
                            "Tunnel overhead: {label} adds {o} bytes to every packet, so on a 1500-byte underlay \
                             the inner packets can be at most {}: MTU to set on the pods and the tunnel device: {m} \
                             (underlay MTU minus {o}; check the underlay with `ip link`).",
                            1500u32.saturating_sub(*o)
                        ),
                    )
                }
                None => (
                    low,
                    format!(
                        "MTU to set: at most {} (the path carries {low} but not {high}); pin it with the ping sweep below.{}",
                        high.saturating_sub(1),
                        if candidates.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " No tunnel is visible in this capture; if the pods use an overlay on a 1500-byte underlay, \
                                 its overhead is the usual cause and the MTU to set is {}.",
                                candidates
                                    .iter()
                                    .map(|(m, what)| format!("{m} for {what}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                ),
            };
            let flows: Vec<serde_json::Value> = v
                .iter()
                .map(|s| json!({"flow": s.flow, "direction": if s.dir == 0 { "initiator_to_responder" } else { "responder_to_initiator" },
                                "largest_acknowledged_ip_len": s.max_acked_ip, "smallest_stuck_ip_len": s.min_stuck_ip,
                                "transmissions": s.max_tx, "frames": s.frames}))
                .collect();
            out.push(Finding {
                kind: "mtu.blackhole",
                severity: Severity::Critical,
                title: format!(
                    "Path MTU black hole from {snd} to {rcv}: packets of {high} bytes never arrive, packets up to {low} bytes do"
                ),
                summary: format!(
                    "{} flow(s) from {snd} to {rcv} stalled: segments of {high} bytes (IP) were sent up to {} times and never \
                     acknowledged, while packets up to {low} bytes got through. DF was set and no ICMP \
                     fragmentation-needed / packet-too-big came back, so the sender never learned to send smaller \
                     packets: a link on the path has an MTU between {low} and {} bytes and the ICMP that would say \
                     so is dropped (firewall, security group, NetworkPolicy on ICMP, or an overlay MTU mismatch).{tunnel_note} \
                     {mtu_to_set} Or let ICMP type 3 code 4 / ICMPv6 type 2 through so that PMTUD works.",
                    v.len(),
                    v.iter().map(|s| s.max_tx).max().unwrap_or(0),
                    high - 1
                ),
                evidence: Evidence {
                    display_filter: format!("tcp.analysis.retransmission && ip.src=={snd} && ip.dst=={rcv} && ip.len>={high}"),
                    frames,
                },
                flow: Some(first.flow.clone()),
                details: json!({
                    "mtu_estimate": {"low": low, "high": high},
                    "sender": snd,
                    "receiver": rcv,
                    "tunnel": tunnel,
                    "recommended_mtu": recommended,
                    "tunnel_overhead": overhead.as_ref().map(|(label, o)| json!({"tunnel": label, "bytes": o})),
                    "overlay_mtu_candidates": candidates.iter().map(|(m, what)| json!({"mtu": m, "overlay": what})).collect::<Vec<_>>(),
                    "stalled_flows": flows,
                    "tunnel_stack": first.tunnel_overhead_hint,
                }),
                next_checks: vec![
                    format!("ICMP sweep from netshoot on the sender's node: `ping -M do -s {} {rcv}` (fails) and `-s {}` (works)", high.saturating_sub(28), low.saturating_sub(28)),
                    format!("`tracepath {rcv}` and `ip link` MTUs of the pod, the tunnel device and the underlay on both nodes"),
                    "Firewalls/security groups/NetworkPolicies must allow ICMP fragmentation-needed (type 3 code 4) and ICMPv6 packet-too-big".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
