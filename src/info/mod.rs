//! `capsift info`: what is in a capture, overlay-aware (capinfos plus the
//! encapsulation hierarchy, per-tunnel counts and CNI hints).
//!
//! [`InfoAccumulator`] is fed every packet of one pass; it keeps only
//! counters and bounded maps, so memory does not grow with the file.

mod cni;
pub(crate) mod text;

pub use text::render_text;

use crate::capture::{CaptureReader, OpenError, Packet, Timestamp};
use crate::decode::{self, DecodeConfig, Decoded, Layer, LayerKind, MAX_LAYERS};
use crate::warning::{Warning, Warnings};
use arrayvec::ArrayVec;
use foldhash::HashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Distinct protocol stacks kept; further ones are counted under `(other)`.
pub const MAX_STACKS: usize = 4096;
/// Distinct keys kept per counter map (VNIs, VLAN ids, ports ...).
pub const MAX_MAP_KEYS: usize = 4096;

#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub format: &'static str,
    pub compression: &'static str,
    pub link_types: Vec<String>,
    /// Timestamp resolution (`us`, `ns` ...); several joined by `,` when interfaces differ.
    pub ts_resolution: String,
    pub packets: u64,
    /// Captured bytes (sum of captured lengths).
    pub bytes: u64,
    /// Bytes on the wire (sum of original lengths).
    pub bytes_on_wire: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub duration_s: f64,
    pub snaplen_truncated_packets: u64,
    pub undecoded_packets: u64,
    pub sections: u64,
    pub interfaces: u64,
    pub comments: Vec<String>,
    pub metadata_blocks: BTreeMap<&'static str, u64>,
    /// Read to the end without damage (a cut last record still counts as complete).
    pub complete: bool,
    pub warnings: Vec<Warning>,
    pub hierarchy: Vec<StackCount>,
    pub tunnels: Tunnels,
    pub cni_hints: Vec<CniHint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackCount {
    pub stack: String,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tunnels {
    pub vxlan: VxlanStats,
    pub geneve: GeneveStats,
    pub ipip: IpipStats,
    pub gre: GreStats,
    pub vlan: VlanStats,
    pub wireguard: WireGuardStats,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VxlanStats {
    pub packets: u64,
    pub ports: BTreeMap<u16, u64>,
    pub vnis: BTreeMap<u32, u64>,
    /// Packets whose VXLAN was recognised by content on an unconfigured port.
    pub heuristic_packets: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneveStats {
    pub packets: u64,
    pub vnis: BTreeMap<u32, u64>,
    /// Packets per option class, keys as `0x0102`.
    pub option_classes: BTreeMap<String, u64>,
    pub critical_option_packets: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IpipStats {
    pub packets: u64,
    pub ipv4_in_ipv4: u64,
    pub ipv6_in_ipv4: u64,
    pub ipv4_in_ipv6: u64,
    pub ipv6_in_ipv6: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GreStats {
    pub packets: u64,
    pub keys: BTreeMap<u32, u64>,
    pub erspan_packets: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VlanStats {
    pub packets: u64,
    pub ids: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WireGuardStats {
    pub packets: u64,
    pub ports: BTreeMap<u16, u64>,
    pub messages: WireGuardMessages,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WireGuardMessages {
    pub handshake_initiation: u64,
    pub handshake_response: u64,
    pub cookie_reply: u64,
    pub transport_data: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CniHint {
    pub cni: String,
    pub evidence: String,
}

type StackKey = ArrayVec<u8, MAX_LAYERS>;

/// Counters for one capture, fed packet by packet.
#[derive(Default)]
pub struct InfoAccumulator {
    packets: u64,
    bytes: u64,
    bytes_on_wire: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    prev_ts: Option<Timestamp>,
    snaplen_truncated: u64,
    undecoded: u64,
    stacks: HashMap<StackKey, (u64, u64)>,
    other_stacks: (u64, u64),
    tunnels: Tunnels,
    geneve_classes: BTreeMap<u16, u64>,
    pub warnings: Warnings,
}

fn bump<K: Ord>(m: &mut BTreeMap<K, u64>, k: K) {
    if let Some(v) = m.get_mut(&k) {
        *v += 1;
    } else if m.len() < MAX_MAP_KEYS {
        m.insert(k, 1);
    }
}

/// Push `v` if not yet present (per-packet distinct values).
fn once<T: PartialEq + Copy, const N: usize>(set: &mut ArrayVec<T, N>, v: T) -> bool {
    if set.contains(&v) || set.is_full() {
        return false;
    }
    set.push(v);
    true
}

impl InfoAccumulator {
    pub fn add(&mut self, pkt: &Packet<'_>, d: &Decoded<'_>) {
        self.packets += 1;
        let caplen = pkt.data.len() as u64;
        self.bytes += caplen;
        self.bytes_on_wire += u64::from(pkt.orig_len);
        if pkt.has_ts {
            self.first = Some(self.first.map_or(pkt.ts, |f| f.min(pkt.ts)));
            self.last = Some(self.last.map_or(pkt.ts, |l| l.max(pkt.ts)));
            if let Some(prev) = self.prev_ts {
                if pkt.ts.0 < prev.0 - 1_000_000_000 {
                    let (p, n) = (prev, pkt.ts);
                    self.warnings.push(
                        "capture.time_backwards",
                        || format!("frame {} is stamped {n}, more than a second before the previous frame ({p}): captures merged out of order or a clock jump; durations and latencies around it are unreliable", pkt.frame),
                        Some(pkt.offset),
                        Some(pkt.frame),
                    );
                }
            }
            self.prev_ts = Some(pkt.ts);
        }
        if pkt.is_snaplen_truncated() {
            self.snaplen_truncated += 1;
        }
        self.note_decode(pkt, d);
        self.count_stack(d, caplen);
        self.count_tunnels(d);
    }

    fn note_decode(&mut self, pkt: &Packet<'_>, d: &Decoded<'_>) {
        if d.is_undecoded() {
            self.undecoded += 1;
        }
        let frame = pkt.frame;
        match d.end {
            decode::DecodeEnd::DepthLimit => self.warnings.push(
                "decode.depth_limit",
                || format!("frame {frame} nests more than {MAX_LAYERS} layers; decoding stopped at that depth"),
                Some(pkt.offset),
                Some(frame),
            ),
            decode::DecodeEnd::Malformed(what) => self.warnings.push(
                "decode.malformed",
                || format!("frame {frame} has an invalid header ({what}); it was decoded up to that header"),
                Some(pkt.offset),
                Some(frame),
            ),
            decode::DecodeEnd::UnsupportedLinkType => {
                let lt = pkt.link_type.name();
                self.warnings.push(
                    "decode.unsupported_link_type",
                    || format!("frame {frame} has link type {lt}, which capsift does not decode; such frames are counted but not analysed"),
                    Some(pkt.offset),
                    Some(frame),
                )
            }
            decode::DecodeEnd::Truncated if !pkt.is_snaplen_truncated() => self.warnings.push(
                "decode.short_packet",
                || format!("frame {frame} ends inside a header although it was captured whole; the sender built a short packet"),
                Some(pkt.offset),
                Some(frame),
            ),
            _ => {}
        }
    }

    fn count_stack(&mut self, d: &Decoded<'_>, caplen: u64) {
        let mut key = StackKey::new();
        for l in d.layers.iter() {
            key.push(l.kind() as u8);
        }
        if let Some(e) = self.stacks.get_mut(&key) {
            e.0 += 1;
            e.1 += caplen;
        } else if self.stacks.len() < MAX_STACKS {
            self.stacks.insert(key, (1, caplen));
        } else {
            self.other_stacks.0 += 1;
            self.other_stacks.1 += caplen;
        }
    }

    fn count_tunnels(&mut self, d: &Decoded<'_>) {
        let t = &mut self.tunnels;
        let mut vx_ports = ArrayVec::<u16, 8>::new();
        let mut vx_vnis = ArrayVec::<u32, 8>::new();
        let mut gn_vnis = ArrayVec::<u32, 8>::new();
        let mut gn_classes = ArrayVec::<u16, 16>::new();
        let mut gre_keys = ArrayVec::<u32, 8>::new();
        let mut vlan_ids = ArrayVec::<u16, 8>::new();
        let mut wg_ports = ArrayVec::<u16, 4>::new();
        let (mut vx, mut vx_heur, mut gn, mut gn_crit, mut gre, mut erspan, mut vlan, mut wg) =
            (false, false, false, false, false, false, false, false);
        let mut ipip = [false; 4];
        let mut wg_msgs = ArrayVec::<decode::tunnel::WireGuardMessage, 4>::new();
        let mut prev: Option<LayerKind> = None;
        for l in d.outer_layers() {
            match l {
                Layer::Vxlan {
                    view,
                    port,
                    heuristic,
                } => {
                    vx = true;
                    vx_heur |= *heuristic;
                    once(&mut vx_ports, *port);
                    once(&mut vx_vnis, view.vni());
                }
                Layer::Geneve(g) => {
                    gn = true;
                    gn_crit |= g.options().any(|o| o.critical());
                    once(&mut gn_vnis, g.vni());
                    for o in g.options() {
                        once(&mut gn_classes, o.class);
                    }
                }
                Layer::Gre(g) => {
                    gre = true;
                    if let Some(k) = g.key() {
                        once(&mut gre_keys, k);
                    }
                }
                Layer::Erspan => erspan = true,
                Layer::Vlan(v) => {
                    vlan = true;
                    once(&mut vlan_ids, v.id());
                }
                Layer::WireGuard { view, port } => {
                    wg = true;
                    once(&mut wg_ports, *port);
                    once(&mut wg_msgs, view.message());
                }
                Layer::Ipv4(_) | Layer::Ipv6(_) => {
                    let inner_v6 = matches!(l, Layer::Ipv6(_));
                    match prev {
                        Some(LayerKind::Ipv4) => ipip[usize::from(inner_v6)] = true,
                        Some(LayerKind::Ipv6) => ipip[2 + usize::from(inner_v6)] = true,
                        _ => {}
                    }
                }
                _ => {}
            }
            prev = Some(l.kind());
        }
        if vx {
            t.vxlan.packets += 1;
            t.vxlan.heuristic_packets += u64::from(vx_heur);
            vx_ports.iter().for_each(|p| bump(&mut t.vxlan.ports, *p));
            vx_vnis.iter().for_each(|v| bump(&mut t.vxlan.vnis, *v));
        }
        if gn {
            t.geneve.packets += 1;
            t.geneve.critical_option_packets += u64::from(gn_crit);
            gn_vnis.iter().for_each(|v| bump(&mut t.geneve.vnis, *v));
            gn_classes
                .iter()
                .for_each(|c| bump(&mut self.geneve_classes, *c));
        }
        if ipip.iter().any(|x| *x) {
            t.ipip.packets += 1;
            t.ipip.ipv4_in_ipv4 += u64::from(ipip[0]);
            t.ipip.ipv6_in_ipv4 += u64::from(ipip[1]);
            t.ipip.ipv4_in_ipv6 += u64::from(ipip[2]);
            t.ipip.ipv6_in_ipv6 += u64::from(ipip[3]);
        }
        if gre {
            t.gre.packets += 1;
            t.gre.erspan_packets += u64::from(erspan);
            gre_keys.iter().for_each(|k| bump(&mut t.gre.keys, *k));
        }
        if vlan {
            t.vlan.packets += 1;
            vlan_ids.iter().for_each(|i| bump(&mut t.vlan.ids, *i));
        }
        if wg {
            t.wireguard.packets += 1;
            wg_ports
                .iter()
                .for_each(|p| bump(&mut t.wireguard.ports, *p));
            for m in wg_msgs {
                let c = &mut t.wireguard.messages;
                use decode::tunnel::WireGuardMessage as M;
                match m {
                    M::HandshakeInitiation => c.handshake_initiation += 1,
                    M::HandshakeResponse => c.handshake_response += 1,
                    M::CookieReply => c.cookie_reply += 1,
                    M::TransportData => c.transport_data += 1,
                }
            }
        }
    }

    /// The summary, with what the reader learned about the file.
    pub fn finish(mut self, path: &str, reader: &CaptureReader) -> FileInfo {
        let mut warnings = reader.warnings.clone();
        warnings.extend(&self.warnings);
        let mut hierarchy: Vec<StackCount> = self
            .stacks
            .iter()
            .map(|(k, (p, b))| StackCount {
                stack: stack_name(k),
                packets: *p,
                bytes: *b,
            })
            .collect();
        if self.other_stacks.0 > 0 {
            hierarchy.push(StackCount {
                stack: "(other)".into(),
                packets: self.other_stacks.0,
                bytes: self.other_stacks.1,
            });
        }
        hierarchy.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.stack.cmp(&b.stack)));
        self.tunnels.geneve.option_classes = self
            .geneve_classes
            .iter()
            .map(|(c, n)| (format!("{c:#06x}"), *n))
            .collect();
        let cni_hints = cni::hints(&self.tunnels);
        let meta = &reader.meta;
        FileInfo {
            path: path.to_string(),
            format: reader.format.as_str(),
            compression: reader.compression.as_str(),
            link_types: meta.link_types.iter().map(|l| l.name()).collect(),
            ts_resolution: meta
                .ts_resolutions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
            packets: self.packets,
            bytes: self.bytes,
            bytes_on_wire: self.bytes_on_wire,
            first_ts: self.first.map(|t| t.to_rfc3339()),
            last_ts: self.last.map(|t| t.to_rfc3339()),
            duration_s: match (self.first, self.last) {
                (Some(f), Some(l)) => (l.0 - f.0) as f64 / 1e9,
                _ => 0.0,
            },
            snaplen_truncated_packets: self.snaplen_truncated,
            undecoded_packets: self.undecoded,
            sections: meta.sections,
            interfaces: meta.interfaces,
            comments: meta.comments.clone(),
            metadata_blocks: meta.metadata_blocks.clone(),
            complete: !reader.damaged,
            warnings: warnings.to_vec(),
            hierarchy,
            tunnels: self.tunnels,
            cni_hints,
        }
    }
}

fn stack_name(k: &StackKey) -> String {
    if k.is_empty() {
        return "(none)".into();
    }
    let names: Vec<&str> = k
        .iter()
        .map(|c| LAYER_KINDS.get(usize::from(*c)).map_or("?", |k| k.name()))
        .collect();
    names.join("/")
}

/// LayerKind by code (the enum is `repr(u8)` with implicit discriminants).
const LAYER_KINDS: [LayerKind; 29] = [
    LayerKind::Ethernet,
    LayerKind::Sll,
    LayerKind::Sll2,
    LayerKind::Null,
    LayerKind::Nflog,
    LayerKind::Vlan,
    LayerKind::Mpls,
    LayerKind::Llc,
    LayerKind::Arp,
    LayerKind::Ppp,
    LayerKind::Ipv4,
    LayerKind::Ipv6,
    LayerKind::Tcp,
    LayerKind::Udp,
    LayerKind::Icmp,
    LayerKind::Icmpv6,
    LayerKind::Vxlan,
    LayerKind::Geneve,
    LayerKind::Gre,
    LayerKind::Erspan,
    LayerKind::WireGuard,
    LayerKind::Esp,
    LayerKind::Ah,
    LayerKind::Sctp,
    LayerKind::Igmp,
    LayerKind::Ospf,
    LayerKind::Pim,
    LayerKind::Vrrp,
    LayerKind::OtherIpProto,
];

/// Read and summarise one capture in a single streaming pass.
pub fn summarize(path: &Path, cfg: &DecodeConfig) -> Result<FileInfo, OpenError> {
    let mut reader = CaptureReader::open(path)?;
    let mut acc = InfoAccumulator::default();
    while let Some(pkt) = reader.next_packet() {
        let d = decode::decode(cfg, pkt.link_type, pkt.data);
        acc.add(&pkt, &d);
    }
    Ok(acc.finish(&path.display().to_string(), &reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_kind_table_matches_discriminants() {
        for (i, k) in LAYER_KINDS.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
    }
}
