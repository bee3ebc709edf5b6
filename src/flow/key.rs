//! Flow identity: the innermost 5-tuple plus the tunnel context it was seen in.
//!
//! The same inner 5-tuple inside two tunnels (two VNIs, or two node pairs)
//! is two flows: on a hypervisor, overlapping pod CIDRs of two clusters are
//! common. A flow seen both inside a tunnel and decapsulated (a node's
//! `tcpdump -i any` sees the pod veth *and* the VXLAN underlay) is one flow:
//! see `FlowTable` for how the plain and tunnelled views are joined.

use crate::decode::{Decoded, Layer};
use arrayvec::ArrayVec;
use std::net::IpAddr;

/// One encapsulation level of a flow's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelHop {
    pub kind: HopKind,
    /// VNI (VXLAN, Geneve), key (GRE), VLAN id; 0 where the tunnel has none.
    pub id: u32,
    /// The outer endpoints, lower address first (unspecified for VLAN).
    pub outer: (IpAddr, IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HopKind {
    Vlan,
    Vxlan,
    Geneve,
    Gre,
    IpIp,
}

impl HopKind {
    pub fn name(self) -> &'static str {
        match self {
            HopKind::Vlan => "vlan",
            HopKind::Vxlan => "vxlan",
            HopKind::Geneve => "geneve",
            HopKind::Gre => "gre",
            HopKind::IpIp => "ipip",
        }
    }
}

/// Tunnel levels outer to inner; at most 8 are kept (deeper is hostile).
/// Up to four levels (VLAN tags count): real overlays nest two or three;
/// deeper levels are left out of the key. Kept small because every flow
/// and every flow-table key holds one.
pub type TunnelContext = ArrayVec<TunnelHop, 4>;

/// Transport endpoints, lower endpoint first, so both directions share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub proto: u8,
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
}

impl FiveTuple {
    /// Key and the direction of this packet: 0 when `src` is the lower endpoint.
    pub fn new(proto: u8, src: (IpAddr, u16), dst: (IpAddr, u16)) -> (FiveTuple, usize) {
        if src <= dst {
            (
                FiveTuple {
                    proto,
                    lo: src,
                    hi: dst,
                },
                0,
            )
        } else {
            (
                FiveTuple {
                    proto,
                    lo: dst,
                    hi: src,
                },
                1,
            )
        }
    }
}

/// What the flow layer needs from a decoded packet.
#[derive(Debug, Clone)]
pub struct PacketEndpoints {
    pub context: TunnelContext,
    pub proto: u8,
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    /// Index of the innermost IP layer in `Decoded::layers`.
    pub ip_index: usize,
    /// Index of the transport layer, if TCP or UDP.
    pub transport_index: Option<usize>,
    /// Length of the innermost IP packet according to its header.
    pub ip_len: u32,
}

fn ip_endpoints(l: &Layer<'_>) -> Option<(IpAddr, IpAddr)> {
    match l {
        Layer::Ipv4(v) => Some((IpAddr::V4(v.src()), IpAddr::V4(v.dst()))),
        Layer::Ipv6(v) => Some((IpAddr::V6(v.src()), IpAddr::V6(v.dst()))),
        _ => None,
    }
}

fn sorted(a: (IpAddr, IpAddr)) -> (IpAddr, IpAddr) {
    if a.0 <= a.1 {
        a
    } else {
        (a.1, a.0)
    }
}

const UNSPECIFIED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// Find the innermost IP packet outside ICMP quotes, its transport ports
/// and the tunnel levels around it.
pub fn endpoints(d: &Decoded<'_>) -> Option<PacketEndpoints> {
    let layers = d.outer_layers();
    let (ip_index, _) = d.innermost_ip()?;
    let mut context = TunnelContext::new();
    let mut last_ip: Option<(IpAddr, IpAddr)> = None;
    let mut prev_was_ip = false;
    for l in &layers[..ip_index + 1] {
        let hop = match l {
            Layer::Vlan(v) => Some((HopKind::Vlan, u32::from(v.id()), (UNSPECIFIED, UNSPECIFIED))),
            Layer::Vxlan { view, .. } => last_ip.map(|o| (HopKind::Vxlan, view.vni(), o)),
            Layer::Geneve(g) => last_ip.map(|o| (HopKind::Geneve, g.vni(), o)),
            Layer::Gre(g) => last_ip.map(|o| (HopKind::Gre, g.key().unwrap_or(0), o)),
            Layer::Ipv4(_) | Layer::Ipv6(_) if prev_was_ip => {
                last_ip.map(|o| (HopKind::IpIp, 0, o))
            }
            _ => None,
        };
        if let Some((kind, id, outer)) = hop {
            let _ = context.try_push(TunnelHop {
                kind,
                id,
                outer: sorted(outer),
            });
        }
        prev_was_ip = l.is_ip();
        if let Some(e) = ip_endpoints(l) {
            last_ip = Some(e);
        }
    }
    let (src_ip, dst_ip) = ip_endpoints(&layers[ip_index])?;
    let ip_len = match &layers[ip_index] {
        Layer::Ipv4(v) => u32::from(v.total_len()),
        Layer::Ipv6(v) => u32::from(v.payload_len()) + 40,
        _ => 0,
    };
    let (proto, ports, transport_index) = match layers.get(ip_index + 1) {
        Some(Layer::Tcp(t)) => (6, (t.src_port(), t.dst_port()), Some(ip_index + 1)),
        Some(Layer::Udp(u)) => (17, (u.src_port(), u.dst_port()), Some(ip_index + 1)),
        Some(Layer::Icmp(i)) => (if i.v6 { 58 } else { 1 }, (0, 0), None),
        _ => match &layers[ip_index] {
            Layer::Ipv4(v) => (v.protocol(), (0, 0), None),
            Layer::Ipv6(v) => (v.upper_protocol(), (0, 0), None),
            _ => (0, (0, 0), None),
        },
    };
    Some(PacketEndpoints {
        context,
        proto,
        src: (src_ip, ports.0),
        dst: (dst_ip, ports.1),
        ip_index,
        transport_index,
        ip_len,
    })
}

/// A short text form of a context: `vxlan:42` or `vlan:100/geneve:4660`.
pub fn context_label(c: &TunnelContext) -> String {
    c.iter()
        .map(|h| match h.kind {
            HopKind::IpIp => "ipip".to_string(),
            k => format!("{}:{}", k.name(), h.id),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Bytes a tunnel stack adds to each inner IP packet, as the outer IP
/// packet carries it: VXLAN and Geneve 50 over IPv4 / 70 over IPv6 (outer
/// IP, UDP 8, tunnel header 8, inner Ethernet 14; Geneve options add to
/// that), GRE 24 / 44 (outer IP and a 4-byte header; a key or sequence
/// number adds 4 each), IP-in-IP 20 / 40. VLAN tags do not count: they ride
/// in the link header, outside the IP MTU. `None` without a tunnel.
pub fn tunnel_overhead(c: &TunnelContext) -> Option<u32> {
    let mut total = 0;
    let mut any = false;
    for h in c {
        let ip = if h.outer.0.is_ipv6() { 40 } else { 20 };
        total += match h.kind {
            HopKind::Vlan => continue,
            HopKind::Vxlan | HopKind::Geneve => ip + 8 + 8 + 14,
            HopKind::Gre => ip + 4,
            HopKind::IpIp => ip,
        };
        any = true;
    }
    any.then_some(total)
}

/// The outermost tunnel's endpoints as `a-b`, or empty.
pub fn context_outer(c: &TunnelContext) -> Option<(IpAddr, IpAddr)> {
    c.iter().find(|h| h.kind != HopKind::Vlan).map(|h| h.outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_of_common_stacks() {
        let v4: (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let v6: (IpAddr, IpAddr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let hop = |kind, outer| TunnelHop { kind, id: 1, outer };
        let mut c = TunnelContext::new();
        assert_eq!(tunnel_overhead(&c), None);
        c.push(hop(HopKind::Vlan, (UNSPECIFIED, UNSPECIFIED)));
        assert_eq!(tunnel_overhead(&c), None, "a VLAN tag is not in the IP MTU");
        c.push(hop(HopKind::Vxlan, v4));
        assert_eq!(tunnel_overhead(&c), Some(50));
        c.push(hop(HopKind::IpIp, v6));
        assert_eq!(
            tunnel_overhead(&c),
            Some(90),
            "nested: VXLAN 50 + IPv6-in-IP 40"
        );
    }
}
