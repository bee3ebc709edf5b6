//! `tcp.syn_unanswered`: SYNs that got no answer at all.
//!
//! A SYN retransmitted with nothing coming back is a silent drop: a
//! NetworkPolicy, a security group, a blackholed route, or a Service whose
//! kube-proxy rules point nowhere. (A RST would be `tcp.connection_refused`.)

use super::finding::{frames_filter, server_filter, sock};
use super::{Detector, Evidence, Finding, FinishContext, ServerGroups, Severity};
use crate::flow::{ConnState, Flow};
use serde_json::json;

/// A single SYN counts as unanswered only if the capture went on this long after it.
pub const SINGLE_SYN_WAIT_NS: i64 = 1_000_000_000;

#[derive(Default)]
pub struct SynUnanswered {
    groups: ServerGroups,
    /// Flows with one SYN: decided at the end, when the capture's end time is known.
    pending: Vec<(i64, Flow)>,
}

impl Detector for SynUnanswered {
    fn limits_hit(&self) -> Vec<String> {
        self.groups.limit_hit("tcp.syn_unanswered")
    }

    fn flow_ended(&mut self, f: &Flow) {
        let Some(t) = &f.tcp else { return };
        match f.state() {
            ConnState::SynUnanswered => {}
            // A client that gave up with a RST after retransmitting its SYN.
            ConnState::Aborted if t.syns >= 2 => {}
            _ => return,
        }
        if t.syns >= 2 {
            self.groups.add(f, u64::from(t.syns), &t.syn_frames);
        } else if self.pending.len() < 10_000 {
            let first = t.first_syn.map_or(f.first_ts.0, |s| s.0 .0);
            self.pending.push((first, f.clone()));
        }
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let end = ctx.last_ts.map_or(i64::MIN, |t| t.0);
        for (first, f) in std::mem::take(&mut self.pending) {
            if end.saturating_sub(first) >= SINGLE_SYN_WAIT_NS {
                let frames = f
                    .tcp
                    .as_ref()
                    .map(|t| t.syn_frames.clone())
                    .unwrap_or_default();
                self.groups.add(&f, 1, &frames);
            }
        }
        let servers = self.groups.sorted();
        let Some((top, g)) = servers.first() else {
            return Vec::new();
        };
        let conns: u64 = servers.iter().map(|(_, g)| g.flows).sum();
        let syns: u64 = servers.iter().map(|(_, g)| g.events).sum();
        let lines = server_lines(&servers, "SYNs");
        let mut frames = g.frames.clone();
        frames.sort_unstable();
        let target = sock(top.ip, top.port);
        vec![Finding {
            kind: "tcp.syn_unanswered",
            severity: Severity::Critical,
            title: format!(
                "{conns} connection(s) to {} server endpoint(s) got no answer to their SYN (most: {target}{})",
                servers.len(),
                tunnel_note(&top.tunnel)
            ),
            summary: format!(
                "{syns} SYNs were sent (and retransmitted) and nothing came back: no SYN-ACK, no RST, no ICMP error. \
                 Packets to these destinations are dropped silently on the way or at the target: a NetworkPolicy or \
                 security group dropping them, a blackholed route, or a Service with no ready endpoints behind a rule \
                 that drops. Per server:\n  {}",
                lines.join("\n  ")
            ),
            evidence: Evidence {
                display_filter: format!(
                    "{} && tcp.flags.syn==1 && tcp.flags.ack==0",
                    server_filter(top.ip, top.port)
                ),
                frames: frames.clone(),
            },
            flow: g.examples.first().cloned(),
            details: json!({
                "connections": conns,
                "syns": syns,
                "servers": server_details(&servers),
                "frames_filter": frames_filter(&frames),
            }),
            next_checks: vec![
                format!("Is anything listening? From a pod on another node: `nc -vz {} {}`; on the target pod: `ss -ltn`", top.ip, top.port),
                "NetworkPolicy: `kubectl get networkpolicy -A`, then the target pods' labels (`kubectl get pod -n <ns> --show-labels`) against the policy selectors; only some clients failing points here too".to_string(),
                "If the destination is a Service VIP: `kubectl get endpointslice -n <ns> -l kubernetes.io/service-name=<svc> -o wide` (Service has no endpoints → selector mismatch or pods not Ready)".to_string(),
                "Compare Pod IP with Service VIP: if the pod IP answers and the VIP does not, suspect kube-proxy/CNI; if neither does, NetworkPolicy, routes or the security group".to_string(),
            ],
            input: ctx.input,
        }]
    }
}

pub(crate) fn tunnel_note(t: &str) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!(" inside {t}")
    }
}

/// One line per server, for summaries: the five with most connections.
pub(crate) fn server_lines(
    servers: &[(&super::ServerKey, &super::ServerGroup)],
    events: &str,
) -> Vec<String> {
    let mut lines: Vec<String> = servers
        .iter()
        .take(5)
        .map(|(k, g)| {
            format!(
                "{}{}: {} connection(s), {} {events}, from {} client(s) ({})",
                sock(k.ip, k.port),
                tunnel_note(&k.tunnel),
                g.flows,
                g.events,
                g.clients.len(),
                g.clients
                    .iter()
                    .take(3)
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    if servers.len() > 5 {
        lines.push(format!(
            "... and {} more server endpoints (see details)",
            servers.len() - 5
        ));
    }
    lines
}

pub(crate) fn server_details(
    servers: &[(&super::ServerKey, &super::ServerGroup)],
) -> Vec<serde_json::Value> {
    servers
        .iter()
        .take(20)
        .map(|(k, g)| {
            json!({"server_ip": k.ip, "server_port": k.port, "tunnel": k.tunnel,
                   "connections": g.flows, "events": g.events, "clients": g.clients,
                   "flows": g.examples, "frames": g.frames})
        })
        .collect()
}
