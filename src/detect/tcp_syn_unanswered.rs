//! `tcp.syn_unanswered`: SYNs that got no answer at all.
//!
//! A SYN retransmitted with nothing coming back is a silent drop: a
//! NetworkPolicy, a security group, a blackholed route, or a Service whose
//! kube-proxy rules point nowhere. (A RST would be `tcp.connection_refused`.)

use super::finding::{frames_filter, server_filter};
use super::{Detector, Evidence, Finding, FinishContext, ServerGroups, Severity};
use crate::flow::{ConnState, Flow};
use serde_json::json;

/// A single SYN counts as unanswered only if the capture went on this long after it.
const SINGLE_SYN_WAIT_NS: i64 = 1_000_000_000;

#[derive(Default)]
pub struct SynUnanswered {
    groups: ServerGroups,
    /// Flows with one SYN: decided at the end, when the capture's end time is known.
    pending: Vec<(i64, Flow)>,
}

impl Detector for SynUnanswered {
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
        let mut out = Vec::new();
        for (server, g) in self.groups.sorted().into_iter().take(20) {
            let clients: Vec<String> = g.clients.iter().map(|c| c.to_string()).collect();
            let tunnel = if server.tunnel.is_empty() {
                String::new()
            } else {
                format!(" (inside {})", server.tunnel)
            };
            let target = super::finding::sock(server.ip, server.port);
            out.push(Finding {
                kind: "tcp.syn_unanswered",
                severity: Severity::Critical,
                title: format!(
                    "{} connection(s) to {target}{tunnel} got no answer to their SYN",
                    g.flows
                ),
                summary: format!(
                    "{} SYNs from {} client(s) to {target} were sent (retransmitted) and nothing came back: \
                     not a SYN-ACK, not a RST, not an ICMP error. Packets to this destination are dropped silently \
                     on the way or at the target: a NetworkPolicy or security group dropping them, a blackholed route, \
                     or a Service with no ready endpoints behind a rule that drops.",
                    g.events,
                    g.clients.len()
                ),
                evidence: Evidence {
                    display_filter: format!(
                        "{} && tcp.flags.syn==1 && tcp.flags.ack==0",
                        server_filter(server.ip, server.port)
                    ),
                    frames: g.frames.clone(),
                },
                flow: g.examples.first().cloned(),
                details: json!({
                    "server_ip": server.ip,
                    "server_port": server.port,
                    "tunnel": server.tunnel,
                    "connections": g.flows,
                    "syns": g.events,
                    "clients": clients,
                    "flows": g.examples,
                    "frames_filter": frames_filter(&g.frames),
                }),
                next_checks: vec![
                    format!("Is anything listening? From a pod on another node: `nc -vz {} {}`; on the target pod: `ss -ltn`", server.ip, server.port),
                    "NetworkPolicy: `kubectl get networkpolicy -A`, then check the target pods' labels (`kubectl get pod -n <ns> --show-labels`) against the policy selectors".to_string(),
                    "If it is a Service VIP: `kubectl get endpointslice -n <ns> -l kubernetes.io/service-name=<svc> -o wide` (Service has no endpoints → selector mismatch or pods not Ready)".to_string(),
                    "Compare Pod IP with Service VIP: if the pod IP answers and the VIP does not, suspect kube-proxy/CNI; if neither, suspect NetworkPolicy, routes or the security group".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
