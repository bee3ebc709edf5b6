//! `tcp.port_reuse`: a new SYN on a 5-tuple still in use.
//!
//! The client (or the SNAT in front of it) picked a source port that was
//! still part of a tracked connection: SNAT port exhaustion on a node or NAT
//! gateway, or conntrack entries outliving their connections.

use super::finding::sock;
use super::{Detector, Evidence, Finding, FinishContext, ServerGroups, Severity};
use crate::flow::Flow;
use serde_json::json;

#[derive(Default)]
pub struct PortReuse {
    groups: ServerGroups,
    total: u64,
}

impl Detector for PortReuse {
    fn limits_hit(&self) -> Vec<String> {
        self.groups.limit_hit("tcp.port_reuse")
    }

    fn flow_ended(&mut self, f: &Flow) {
        let Some(t) = &f.tcp else { return };
        if !t.reused_ports {
            return;
        }
        self.total += 1;
        self.groups
            .add(f, 1, &t.syn_frames[..t.syn_frames.len().min(1)]);
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        if self.total == 0 {
            return Vec::new();
        }
        let groups = self.groups.sorted();
        let (server, g) = groups[0];
        let frames: Vec<u64> = groups
            .iter()
            .flat_map(|(_, g)| g.frames.iter().copied())
            .take(32)
            .collect();
        let per_server: Vec<serde_json::Value> = groups
            .iter()
            .take(10)
            .map(|(k, g)| json!({"server_ip": k.ip, "server_port": k.port, "reuses": g.flows, "clients": g.clients}))
            .collect();
        vec![Finding {
            kind: "tcp.port_reuse",
            severity: if self.total >= 10 { Severity::Warning } else { Severity::Info },
            title: format!("{} new connection(s) reused a 5-tuple still in use (most to {})", self.total, sock(server.ip, server.port)),
            summary: format!(
                "A SYN with a new initial sequence number arrived on a 5-tuple whose previous connection had not been \
                 forgotten. Many of these towards one destination ({} to {}) suggest SNAT source-port exhaustion \
                 (node or NAT gateway) or conntrack entries that outlive connections; such SYNs are often dropped.",
                g.flows,
                sock(server.ip, server.port)
            ),
            evidence: Evidence {
                display_filter: "tcp.analysis.reused_ports".to_string(),
                frames,
            },
            flow: g.examples.first().cloned(),
            details: json!({"reused": self.total, "servers": per_server}),
            next_checks: vec![
                "On the node doing SNAT: `conntrack -S` (insert_failed, drop) and `conntrack -L -p tcp --dport <port> | wc -l`".to_string(),
                "Latency cliffs at scale: iptables rule explosions / conntrack table pressure; observe kube-proxy metrics".to_string(),
                "Cloud NAT gateways: check their port-allocation metrics; spread egress over more source IPs".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
