//! Which CNI the overlay traffic suggests, from the ports and VNIs seen.
//! These are hints, each with the evidence: defaults can be reconfigured.

use super::{CniHint, Tunnels};

/// Calico's default VXLAN network identifier.
const CALICO_VNI: u32 = 4096;

pub fn hints(t: &Tunnels) -> Vec<CniHint> {
    let mut out = Vec::new();
    let mut hint = |cni: &str, evidence: String| {
        out.push(CniHint {
            cni: cni.to_string(),
            evidence,
        })
    };
    if let Some(n) = t.vxlan.ports.get(&8472) {
        hint(
            "Flannel or Cilium",
            format!("{n} VXLAN packets on UDP 8472, the Linux kernel default port that Flannel and Cilium use"),
        );
    }
    if let Some(n) = t.vxlan.ports.get(&4789) {
        match t.vxlan.vnis.get(&CALICO_VNI) {
            Some(c) => hint(
                "Calico (VXLAN mode)",
                format!(
                    "{n} VXLAN packets on UDP 4789, {c} of them with VNI 4096, Calico's default"
                ),
            ),
            None => hint(
                "Cilium, Antrea or another VXLAN overlay on the IANA port",
                format!(
                    "{n} VXLAN packets on UDP 4789 (VNIs: {})",
                    join_keys(t.vxlan.vnis.keys())
                ),
            ),
        }
    }
    if t.ipip.ipv4_in_ipv4 > 0 {
        hint(
            "Calico (IP-in-IP mode)",
            format!(
                "{} IPv4-in-IPv4 (protocol 4) packets, Calico's IPIP encapsulation",
                t.ipip.ipv4_in_ipv4
            ),
        );
    }
    if t.geneve.packets > 0 {
        hint(
            "Antrea, OVN-Kubernetes or Cilium (Geneve mode)",
            format!(
                "{} Geneve packets (VNIs: {}; option classes: {})",
                t.geneve.packets,
                join_keys(t.geneve.vnis.keys()),
                if t.geneve.option_classes.is_empty() {
                    "none".to_string()
                } else {
                    join_keys(t.geneve.option_classes.keys())
                }
            ),
        );
    }
    if let Some(n) = t.wireguard.ports.get(&51871) {
        hint(
            "Cilium (WireGuard transparent encryption)",
            format!("{n} WireGuard packets on UDP 51871, Cilium's WireGuard port"),
        );
    }
    if let Some(n) = t.wireguard.ports.get(&51820) {
        hint(
            "Calico or Flannel (WireGuard)",
            format!(
                "{n} WireGuard packets on UDP 51820, the port Calico's and Flannel's WireGuard use"
            ),
        );
    }
    if t.gre.erspan_packets > 0 {
        hint(
            "a traffic mirror (ERSPAN), not a CNI",
            format!(
                "{} packets are ERSPAN copies: the capture was taken from a port mirror",
                t.gre.erspan_packets
            ),
        );
    }
    out
}

fn join_keys<K: ToString>(keys: impl Iterator<Item = K>) -> String {
    let v: Vec<String> = keys.take(8).map(|k| k.to_string()).collect();
    v.join(", ")
}
