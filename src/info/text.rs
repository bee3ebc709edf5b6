//! The human-readable form of `capsift info`.

use super::FileInfo;
use std::fmt::Write;

/// Bytes for people (decimal units), shared by the text reports.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn counts<K: std::fmt::Display>(m: &std::collections::BTreeMap<K, u64>) -> String {
    let v: Vec<String> = m
        .iter()
        .take(10)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let more = m.len().saturating_sub(10);
    if more > 0 {
        format!("{} (+{more} more)", v.join(", "))
    } else {
        v.join(", ")
    }
}

pub fn render_text(f: &FileInfo) -> String {
    let mut s = String::new();
    let comp = if f.compression == "none" {
        String::new()
    } else {
        format!(", {}-compressed", f.compression)
    };
    let _ = writeln!(s, "File:           {} ({}{comp})", f.path, f.format);
    let _ = writeln!(s, "Link types:     {}", f.link_types.join(", "));
    let _ = writeln!(
        s,
        "Packets:        {} ({} captured, {} on the wire)",
        f.packets,
        human_bytes(f.bytes),
        human_bytes(f.bytes_on_wire)
    );
    if f.snaplen_truncated_packets > 0 || f.undecoded_packets > 0 {
        let _ = writeln!(
            s,
            "                {} cut by snaplen, {} undecoded",
            f.snaplen_truncated_packets, f.undecoded_packets
        );
    }
    match (&f.first_ts, &f.last_ts) {
        (Some(a), Some(b)) => {
            let _ = writeln!(
                s,
                "Time:           {a} .. {b} ({:.3} s, timestamps in {})",
                f.duration_s, f.ts_resolution
            );
        }
        _ => {
            let _ = writeln!(s, "Time:           no timestamped packets");
        }
    }
    if f.format == "pcapng" {
        let _ = writeln!(
            s,
            "Sections:       {}, interfaces: {}",
            f.sections, f.interfaces
        );
    }
    let t = &f.tunnels;
    let mut tun = Vec::new();
    if t.vxlan.packets > 0 {
        tun.push(format!(
            "VXLAN      {:>9} packets  ports {}  VNIs {}",
            t.vxlan.packets,
            counts(&t.vxlan.ports),
            counts(&t.vxlan.vnis)
        ));
    }
    if t.geneve.packets > 0 {
        tun.push(format!(
            "Geneve     {:>9} packets  VNIs {}  option classes {}",
            t.geneve.packets,
            counts(&t.geneve.vnis),
            if t.geneve.option_classes.is_empty() {
                "none".into()
            } else {
                counts(&t.geneve.option_classes)
            }
        ));
    }
    if t.ipip.packets > 0 {
        tun.push(format!(
            "IP-in-IP   {:>9} packets  4in4 {}, 6in4 {}, 4in6 {}, 6in6 {}",
            t.ipip.packets,
            t.ipip.ipv4_in_ipv4,
            t.ipip.ipv6_in_ipv4,
            t.ipip.ipv4_in_ipv6,
            t.ipip.ipv6_in_ipv6
        ));
    }
    if t.gre.packets > 0 {
        tun.push(format!(
            "GRE        {:>9} packets  keys {}{}",
            t.gre.packets,
            if t.gre.keys.is_empty() {
                "none".into()
            } else {
                counts(&t.gre.keys)
            },
            if t.gre.erspan_packets > 0 {
                format!(", {} ERSPAN", t.gre.erspan_packets)
            } else {
                String::new()
            }
        ));
    }
    if t.vlan.packets > 0 {
        tun.push(format!(
            "802.1Q     {:>9} packets  ids {}",
            t.vlan.packets,
            counts(&t.vlan.ids)
        ));
    }
    if t.wireguard.packets > 0 {
        let m = &t.wireguard.messages;
        tun.push(format!(
            "WireGuard  {:>9} packets  ports {}  initiation {}, response {}, cookie {}, data {}",
            t.wireguard.packets,
            counts(&t.wireguard.ports),
            m.handshake_initiation,
            m.handshake_response,
            m.cookie_reply,
            m.transport_data
        ));
    }
    if tun.is_empty() {
        let _ = writeln!(s, "Overlays:       none seen");
    } else {
        let _ = writeln!(s, "Overlays:");
        for l in tun {
            let _ = writeln!(s, "  {l}");
        }
    }
    for h in &f.cni_hints {
        let _ = writeln!(s, "CNI hint:       {} ({})", h.cni, h.evidence);
    }
    let _ = writeln!(s, "Protocol stacks:");
    for h in f.hierarchy.iter().take(15) {
        let _ = writeln!(
            s,
            "  {:<48} {:>9} packets {:>10}",
            h.stack,
            h.packets,
            human_bytes(h.bytes)
        );
    }
    if f.hierarchy.len() > 15 {
        let _ = writeln!(
            s,
            "  ... {} more stacks (see --json)",
            f.hierarchy.len() - 15
        );
    }
    if !f.warnings.is_empty() {
        let _ = writeln!(s, "Warnings:");
        for w in &f.warnings {
            let times = if w.count > 1 {
                format!(" (x{})", w.count)
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {}{times}: {}", w.kind, w.message);
        }
    }
    s
}
