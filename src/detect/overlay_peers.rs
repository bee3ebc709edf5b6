//! Tunnel peers: `overlay.wireguard_handshake_unanswered` and `overlay.one_way`.
//!
//! WireGuard initiations that get no response mean the peer is gone, the keys
//! do not match, or UDP is blocked; cookie replies mean the peer is under
//! load. A node pair whose tunnel traffic flows one way only points at
//! asymmetric routing or a security group blocking the return.

use super::{Detector, Evidence, Finding, FinishContext, PacketEvent, Severity};
use crate::decode::tunnel::WireGuardMessage;
use crate::decode::Layer;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A pair is one-way when one direction carried at least this many tunnel packets and the other none.
pub const ONE_WAY_MIN_PACKETS: u64 = 20;
const MAX_PAIRS: usize = 10_000;

#[derive(Default)]
struct Wg {
    initiations: u64,
    responses: u64,
    cookies: u64,
    frames: Vec<u64>,
}

#[derive(Default)]
pub struct OverlayPeers {
    /// (initiator, responder, port) → counts; responses are keyed the other way round.
    wg: BTreeMap<(IpAddr, IpAddr, u16), Wg>,
    /// (src, dst, kind) → packets, first frame.
    pairs: BTreeMap<(IpAddr, IpAddr, &'static str), (u64, u64)>,
    /// Packets of node pairs beyond [`MAX_PAIRS`], not followed.
    skipped: u64,
}

impl Detector for OverlayPeers {
    fn limits_hit(&self) -> Vec<String> {
        super::limit_note(self.skipped, |n| {
            format!("overlay: more than {MAX_PAIRS} tunnel peer pairs; {n} packets of further pairs were not followed")
        })
    }

    fn packet(&mut self, ev: &PacketEvent<'_, '_>) {
        let layers = ev.decoded.outer_layers();
        let mut last_ip: Option<(IpAddr, IpAddr)> = None;
        for l in layers {
            let kind = match l {
                Layer::Ipv4(v) => {
                    last_ip = Some((IpAddr::V4(v.src()), IpAddr::V4(v.dst())));
                    continue;
                }
                Layer::Ipv6(v) => {
                    last_ip = Some((IpAddr::V6(v.src()), IpAddr::V6(v.dst())));
                    continue;
                }
                Layer::Vxlan { .. } => "vxlan",
                Layer::Geneve(_) => "geneve",
                Layer::Gre(_) => "gre",
                Layer::WireGuard { view, port } => {
                    if let Some((s, d)) = last_ip {
                        let (key, field) = match view.message() {
                            WireGuardMessage::HandshakeInitiation => ((s, d, *port), 0),
                            WireGuardMessage::HandshakeResponse => ((d, s, *port), 1),
                            WireGuardMessage::CookieReply => ((d, s, *port), 2),
                            WireGuardMessage::TransportData => ((s, d, *port), 3),
                        };
                        if field < 3 && self.wg.len() >= MAX_PAIRS && !self.wg.contains_key(&key) {
                            self.skipped += 1;
                        }
                        if field < 3 && (self.wg.len() < MAX_PAIRS || self.wg.contains_key(&key)) {
                            let w = self.wg.entry(key).or_default();
                            match field {
                                0 => w.initiations += 1,
                                1 => w.responses += 1,
                                _ => w.cookies += 1,
                            }
                            if w.frames.len() < 16 {
                                w.frames.push(ev.pkt.frame);
                            }
                        }
                    }
                    "wireguard"
                }
                _ => continue,
            };
            if let Some((s, d)) = last_ip {
                let key = (s, d, kind);
                if self.pairs.len() < MAX_PAIRS || self.pairs.contains_key(&key) {
                    let e = self.pairs.entry(key).or_insert((0, ev.pkt.frame));
                    e.0 += 1;
                }
            }
            break;
        }
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((i, r, port), w) in &self.wg {
            if w.initiations < 2 || w.responses > 0 {
                continue;
            }
            let cookie = if w.cookies > 0 {
                format!(" The responder sent {} cookie reply(ies): it is under load and rate-limits handshakes.", w.cookies)
            } else {
                String::new()
            };
            out.push(Finding {
                kind: "overlay.wireguard_handshake_unanswered",
                severity: Severity::Critical,
                title: format!("WireGuard peer {r}:{port} never answered {} handshake initiation(s) from {i}", w.initiations),
                summary: format!(
                    "{i} tried to (re)establish the WireGuard tunnel {} times and got no handshake response: the peer \
                     is down or unreachable, its public key does not match, or UDP {port} is blocked on the way. Pods \
                     behind this node pair cannot talk while it lasts.{cookie}",
                    w.initiations
                ),
                evidence: Evidence {
                    display_filter: format!("wg.type==1 && ip.src=={i} && ip.dst=={r}"),
                    frames: w.frames.clone(),
                },
                flow: None,
                details: json!({"initiator": i, "responder": r, "port": port,
                                "initiations": w.initiations, "responses": w.responses, "cookie_replies": w.cookies}),
                next_checks: vec![
                    "WIREGUARD_TUNNEL_DOWN style logs: the CNI agent logs on both nodes (`cilium status`, `kubectl logs -n kube-system <calico-node>`)".to_string(),
                    format!("UDP {port} between the node IPs in security groups / firewalls; `wg show` on both nodes (public keys, latest handshake)"),
                ],
                input: ctx.input,
            });
        }
        for ((s, d, kind), (n, frame)) in &self.pairs {
            if *n < ONE_WAY_MIN_PACKETS || self.pairs.contains_key(&(*d, *s, kind)) {
                continue;
            }
            out.push(Finding {
                kind: "overlay.one_way",
                severity: Severity::Warning,
                title: format!("{kind} traffic from node {s} to {d} flows one way only ({n} packets, none back)"),
                summary: format!(
                    "{n} {kind} packets went from {s} to {d} and not one came back in this capture. Either the return \
                     path takes another route (asymmetric routing, another interface or node), or something drops \
                     the reverse direction (security group, firewall on the tunnel port). If the capture covers only \
                     one direction by design (a mirror of one direction), ignore this."
                ),
                evidence: Evidence {
                    display_filter: format!("ip.src=={s} && ip.dst=={d} && {kind}"),
                    frames: vec![*frame],
                },
                flow: None,
                details: json!({"src": s, "dst": d, "tunnel": kind, "packets": n}),
                next_checks: vec![
                    format!("Capture on {d}'s uplink: do the packets arrive? `ip route get {s}` on {d}: which interface does the reply take?"),
                    "Security groups / firewalls: the tunnel port must be open in both directions between all nodes".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
