//! `arp.mac_moved`: an IP answered from a new MAC without a gratuitous ARP.
//!
//! When an address moves (VM migration, failover, a pod IP reused on another
//! node) without announcing it, neighbours keep the stale MAC in their ARP
//! cache and send to the old one until it expires: "stale ARP caches after a
//! move, metal L2 moved MAC without GARP".

use super::{Detector, Evidence, Finding, FinishContext, PacketEvent, Severity};
use crate::decode::Layer;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

const MAX_IPS: usize = 100_000;

/// An address answered by a new MAC without an announcement.
struct MacMove {
    ip: Ipv4Addr,
    old: [u8; 6],
    new: [u8; 6],
    old_frame: u64,
    new_frame: u64,
}

#[derive(Default)]
pub struct MacMoved {
    /// IP → (current MAC, frame it was learned in).
    seen: BTreeMap<Ipv4Addr, ([u8; 6], u64)>,
    moves: Vec<MacMove>,
    /// ARP messages about addresses beyond [`MAX_IPS`], not followed.
    ips_skipped: u64,
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Detector for MacMoved {
    fn limits_hit(&self) -> Vec<String> {
        super::limit_note(self.ips_skipped, |n| {
            format!("arp.mac_moved: more than {MAX_IPS} IP addresses in ARP; {n} messages about further addresses were not followed")
        })
    }

    fn packet(&mut self, ev: &PacketEvent<'_, '_>) {
        let Some(Layer::Arp(a)) = ev
            .decoded
            .outer_layers()
            .iter()
            .find(|l| matches!(l, Layer::Arp(_)))
        else {
            return;
        };
        if !a.is_ethernet_ipv4() {
            return;
        }
        let (sp, sh) = (a.sender_proto(), a.sender_hw());
        let ip = Ipv4Addr::new(sp[0], sp[1], sp[2], sp[3]);
        let hw = [sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]];
        if ip.is_unspecified() {
            return; // ARP probe
        }
        // Gratuitous: sender and target address are the same (an announcement).
        let gratuitous = a.sender_proto() == a.target_proto();
        match self.seen.get(&ip) {
            Some((old, frame)) if *old != hw && !gratuitous => {
                if self.moves.len() < 100 {
                    self.moves.push(MacMove {
                        ip,
                        old: *old,
                        new: hw,
                        old_frame: *frame,
                        new_frame: ev.pkt.frame,
                    });
                }
                self.seen.insert(ip, (hw, ev.pkt.frame));
            }
            Some(_) => {
                self.seen.insert(ip, (hw, ev.pkt.frame));
            }
            None if self.seen.len() < MAX_IPS => {
                self.seen.insert(ip, (hw, ev.pkt.frame));
            }
            None => self.ips_skipped += 1,
        }
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        self.moves
            .iter()
            .map(|m| (m.ip, &m.old, &m.new, &m.old_frame, &m.new_frame))
            .map(|(ip, old, new, f_old, f_new)| Finding {
                kind: "arp.mac_moved",
                severity: Severity::Warning,
                title: format!("{ip} moved from MAC {} to {} without a gratuitous ARP", mac(*old), mac(*new)),
                summary: format!(
                    "ARP for {ip} was answered by {} (frame {f_old}) and later by {} (frame {f_new}), and no \
                     gratuitous ARP announced the move. Neighbours that cached the old MAC keep sending to it until \
                     their entry expires: traffic to {ip} disappears for some clients only.",
                    mac(*old),
                    mac(*new)
                ),
                evidence: Evidence {
                    display_filter: format!("arp.src.proto_ipv4=={ip}"),
                    frames: vec![*f_old, *f_new],
                },
                flow: None,
                details: json!({"ip": ip, "old_mac": mac(*old), "new_mac": mac(*new), "old_frame": f_old, "new_frame": f_new}),
                next_checks: vec![
                    format!("`ip neigh show {ip}` on the nodes and routers that talk to it; flush stale entries (`ip neigh flush {ip}`)"),
                    "Stale ARP caches: tcpdump on the uplink interfaces during the move; make the failover send a gratuitous ARP (arping -U)".to_string(),
                ],
                input: ctx.input,
            })
            .collect()
    }
}
