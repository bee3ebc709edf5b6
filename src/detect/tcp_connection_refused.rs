//! `tcp.connection_refused`: a SYN answered by a RST.
//!
//! The target host is reachable but nothing listens on the port, or
//! kube-proxy/the CNI rejects because the Service has no endpoints.

use super::finding::{frames_filter, server_filter, sock};
use super::tcp_syn_unanswered::{server_details, server_lines, tunnel_note};
use super::{Detector, Evidence, Finding, FinishContext, ServerGroups, Severity};
use crate::flow::{ConnState, Flow};
use serde_json::json;

#[derive(Default)]
pub struct ConnectionRefused {
    groups: ServerGroups,
}

impl Detector for ConnectionRefused {
    fn limits_hit(&self) -> Vec<String> {
        self.groups.limit_hit("tcp.connection_refused")
    }

    fn flow_ended(&mut self, f: &Flow) {
        if f.state() != ConnState::Refused {
            return;
        }
        let Some(t) = &f.tcp else { return };
        let mut frames = t.syn_frames.clone();
        if let Some((_, fr, _)) = t.first_rst {
            frames.push(fr);
        }
        self.groups.add(f, u64::from(t.syns), &frames);
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let servers = self.groups.sorted();
        let Some((top, g)) = servers.first() else {
            return Vec::new();
        };
        let conns: u64 = servers.iter().map(|(_, g)| g.flows).sum();
        let target = sock(top.ip, top.port);
        let mut frames = g.frames.clone();
        frames.sort_unstable();
        vec![Finding {
            kind: "tcp.connection_refused",
            severity: Severity::Warning,
            title: format!(
                "{conns} connection(s) were refused: a RST answered the SYN (most: {target}{})",
                tunnel_note(&top.tunnel)
            ),
            summary: format!(
                "The hosts are reachable but nothing accepts connections on these ports. Usually the application \
                 is not listening (crashed, wrong port, still starting, bound to 127.0.0.1) or the Service targets \
                 the wrong port. Per server:\n  {}",
                server_lines(&servers, "SYNs").join("\n  ")
            ),
            evidence: Evidence {
                display_filter: format!(
                    "{} && (tcp.flags.reset==1 || (tcp.flags.syn==1 && tcp.flags.ack==0))",
                    server_filter(top.ip, top.port)
                ),
                frames: frames.clone(),
            },
            flow: g.examples.first().cloned(),
            details: json!({
                "connections": conns,
                "servers": server_details(&servers),
                "frames_filter": frames_filter(&frames),
            }),
            next_checks: vec![
                format!("On the target pod: `ss -ltnp | grep :{}`: is the app listening on that port, on 0.0.0.0 rather than 127.0.0.1?", top.port),
                "Direct Pod works, Service fails → Service port/targetPort mismatch: compare the Service YAML with the EndpointSlice ports (`kubectl get endpointslice -n <ns> -l kubernetes.io/service-name=<svc> -o yaml`)".to_string(),
                "Pods not Ready or restarting: `kubectl get pods -n <ns> -o wide` and the events in `kubectl describe pod`".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
