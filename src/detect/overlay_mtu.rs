//! Overlay arithmetic: `mtu.overlay_mismatch` and `mtu.fragmented_tunnel`.
//!
//! Each tunnel adds a fixed overhead (VXLAN 50, Geneve 50 plus options,
//! IPv4-in-IPv4 20, IPv6-in-IPv4 20, GRE 24 and up, WireGuard 60 over IPv4
//! and 80 over IPv6, 4 per 802.1Q tag), measured here from the packets: the
//! outer IP length minus the inner IP length. An inner MTU plus that
//! overhead above the underlay MTU shows up as outer packets the kernel must
//! fragment, or as inner packets (seen decapsulated on the pod side) bigger
//! than any outer packet can carry.

use super::{Detector, Evidence, Finding, FinishContext, PacketEvent, Severity};
use crate::decode::Layer;
use crate::flow::key::HopKind;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Default)]
struct Tunnel {
    packets: u64,
    /// Overhead (outer IP length - inner IP length) → packets.
    overheads: BTreeMap<u32, u64>,
    max_outer: u32,
    max_inner: u32,
    /// Largest first fragment of a fragmented outer packet, and how many.
    fragmented: u64,
    fragment_size: u32,
    fragment_frames: Vec<u64>,
    /// Largest decapsulated copy of an inner packet (pod side), with its frame.
    max_plain_inner: (u32, u64),
    max_inner_mss: u16,
}

#[derive(Default)]
pub struct OverlayMtu {
    tunnels: BTreeMap<&'static str, Tunnel>,
}

fn ip_len(l: &Layer<'_>) -> Option<u32> {
    match l {
        Layer::Ipv4(v) => Some(u32::from(v.total_len())),
        Layer::Ipv6(v) => Some(u32::from(v.payload_len()) + 40),
        _ => None,
    }
}

/// The first tunnel layer: its kind name and index.
fn first_tunnel(layers: &[Layer<'_>]) -> Option<(&'static str, usize)> {
    layers.iter().enumerate().find_map(|(i, l)| match l {
        Layer::Vxlan { .. } => Some(("vxlan", i)),
        Layer::Geneve(_) => Some(("geneve", i)),
        Layer::Gre(_) => Some(("gre", i)),
        Layer::WireGuard { .. } => Some(("wireguard", i)),
        Layer::Ipv4(_) | Layer::Ipv6(_)
            if i > 0 && layers[..i].last().is_some_and(|p| p.is_ip()) =>
        {
            Some(("ipip", i))
        }
        _ => None,
    })
}

impl Detector for OverlayMtu {
    fn packet(&mut self, ev: &PacketEvent<'_, '_>) {
        let layers = ev.decoded.outer_layers();
        if let Some((kind, ti)) = first_tunnel(layers) {
            let Some((oi, outer)) = layers[..ti]
                .iter()
                .enumerate()
                .rev()
                .find(|(_, l)| l.is_ip())
            else {
                return;
            };
            let t = self.tunnels.entry(kind).or_default();
            t.packets += 1;
            if let Layer::Ipv4(v) = outer {
                if v.more_fragments() && v.frag_offset() == 0 {
                    t.fragmented += 1;
                    t.fragment_size = t.fragment_size.max(u32::from(v.total_len()));
                    if t.fragment_frames.len() < 16 {
                        t.fragment_frames.push(ev.pkt.frame);
                    }
                    return;
                }
            }
            let Some(outer_len) =
                ip_len(&layers[oi]).filter(|l| *l > 0 && *l <= super::offload::JUMBO_IP_MAX)
            else {
                return;
            };
            t.max_outer = t.max_outer.max(outer_len);
            let inner = layers[ti..]
                .iter()
                .skip(usize::from(kind != "ipip"))
                .find(|l| l.is_ip());
            if let Some(inner_len) = inner.and_then(ip_len).filter(|l| *l > 0 && *l < outer_len) {
                *t.overheads.entry(outer_len - inner_len).or_default() += 1;
                t.max_inner = t.max_inner.max(inner_len);
            } else if let Layer::WireGuard { view, .. } = &layers[ti] {
                // Encrypted: the inner packet is the data minus header and tag, padded to 16.
                if let Some(inner_len) = view.inner_len().filter(|l| *l > 0) {
                    *t.overheads.entry(outer_len - inner_len as u32).or_default() += 1;
                }
            }
            if let Some(Layer::Tcp(tcp)) = layers.iter().rev().find(|l| matches!(l, Layer::Tcp(_)))
            {
                if let Some(mss) = tcp.options().mss {
                    t.max_inner_mss = t.max_inner_mss.max(mss);
                }
            }
            return;
        }
        // A decapsulated copy of a tunnelled flow (the pod side of a node capture).
        let (Some(f), Some(o)) = (ev.flow, ev.obs) else {
            return;
        };
        if !f.tunnel.is_empty() || o.copy_of.is_some() && f.also_seen_in.is_empty() {
            return;
        }
        let Some(kind) = f
            .also_seen_in
            .iter()
            .flat_map(|c| c.iter())
            .find_map(|h| match h.kind {
                HopKind::Vxlan => Some("vxlan"),
                HopKind::Geneve => Some("geneve"),
                HopKind::Gre => Some("gre"),
                HopKind::IpIp => Some("ipip"),
                HopKind::Vlan => None,
            })
        else {
            return;
        };
        let Some((ii, _)) = ev.decoded.innermost_ip() else {
            return;
        };
        let Some(len) =
            ip_len(&layers[ii]).filter(|l| *l > 0 && *l <= super::offload::JUMBO_IP_MAX)
        else {
            return;
        };
        let t = self.tunnels.entry(kind).or_default();
        if len > t.max_plain_inner.0 {
            t.max_plain_inner = (len, ev.pkt.frame);
        }
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (kind, t) in &self.tunnels {
            let overhead = t.overheads.iter().max_by_key(|(_, n)| **n).map(|(o, _)| *o);
            if t.fragmented > 0 {
                out.push(Finding {
                    kind: "mtu.fragmented_tunnel",
                    severity: Severity::Warning,
                    title: format!("{} {kind} packet(s) were IP-fragmented on the underlay (fragments of {} bytes)", t.fragmented, t.fragment_size),
                    summary: format!(
                        "Encapsulated packets were too big for the underlay and the kernel fragmented the outer packet. \
                         Fragmented tunnel traffic is slow, is dropped by many firewalls and load balancers, and breaks \
                         on paths that drop fragments. The inner MTU is too large for this underlay{}.",
                        overhead.map(|o| format!(" (tunnel overhead {o} bytes)")).unwrap_or_default()
                    ),
                    evidence: Evidence {
                        display_filter: "ip.flags.mf==1 || ip.frag_offset>0".to_string(),
                        frames: t.fragment_frames.clone(),
                    },
                    flow: None,
                    details: json!({"tunnel": kind, "fragmented_packets": t.fragmented,
                                    "fragment_size": t.fragment_size, "overhead": overhead,
                                    "recommended_mtu": overhead.map(|o| t.fragment_size.saturating_sub(o))}),
                    next_checks: vec![format!("Compare `ip link` MTU of the pods and the {kind} device with the underlay NIC; set the CNI MTU to underlay MTU minus the overhead")],
                    input: ctx.input,
                });
            }
            let Some(o) = overhead else { continue };
            // The underlay carries at least the largest outer packet seen (or the fragment size).
            let underlay = t.max_outer.max(t.fragment_size);
            let plain_needs = t.max_plain_inner.0 + o;
            let mss_needs = u32::from(t.max_inner_mss) + 40 + o;
            let evidence_plain = t.max_plain_inner.0 > 0 && plain_needs > underlay;
            if !(evidence_plain || t.fragmented > 0) || underlay == 0 {
                continue;
            }
            let inner_mtu = t
                .max_plain_inner
                .0
                .max(u32::from(t.max_inner_mss) + 40)
                .max(t.max_inner);
            let recommended = underlay.saturating_sub(o);
            let mut frames = t.fragment_frames.clone();
            if t.max_plain_inner.1 > 0 {
                frames.push(t.max_plain_inner.1);
            }
            frames.sort_unstable();
            out.push(Finding {
                kind: "mtu.overlay_mismatch",
                severity: Severity::Critical,
                title: format!(
                    "{kind} overlay MTU mismatch: inner packets of {inner_mtu} bytes plus {o} bytes of {kind} need {}, the underlay carries {underlay}: set the pod/tunnel MTU to {recommended}",
                    inner_mtu + o
                ),
                summary: format!(
                    "The {kind} tunnel adds {o} bytes (measured: outer IP length minus inner IP length). Inner packets of \
                     {inner_mtu} bytes (largest seen{}; SYN MSS up to {} announces {} with headers) become {} bytes on \
                     the underlay, whose largest packet here is {underlay} bytes. Large packets are then fragmented or \
                     dropped (an MTU black hole when DF is set and the ICMP is lost). Set the pod and tunnel MTU to \
                     {recommended} ({underlay} - {o}), or raise the underlay MTU.",
                    if evidence_plain { " on the pod side" } else { "" },
                    t.max_inner_mss,
                    mss_needs - o,
                    inner_mtu + o
                ),
                evidence: Evidence {
                    display_filter: format!("{kind} || ip.flags.mf==1"),
                    frames,
                },
                flow: None,
                details: json!({
                    "tunnel": kind,
                    "overhead": o,
                    "overheads_seen": t.overheads,
                    "inner_mtu": inner_mtu,
                    "max_inner_syn_mss": t.max_inner_mss,
                    "underlay_mtu_seen": underlay,
                    "needed_underlay_mtu": inner_mtu + o,
                    "recommended_mtu": recommended,
                    "fragmented_packets": t.fragmented,
                }),
                next_checks: vec![
                    "`ip link` in a pod (eth0 MTU), on the node (the tunnel device and the uplink)".to_string(),
                    format!("CNI MTU setting (Calico `veth_mtu`, Cilium `--mtu`, Flannel `net-conf.json`) = {recommended}"),
                    "VXLAN MTU black holes: jumbo frames mismatched across racks; ICMP sweep from netshoot (`ping -M do -s <size>`)".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
