//! `tcp.connection_refused`: a SYN answered by a RST.
//!
//! The target host is reachable but nothing listens on the port, or
//! kube-proxy/the CNI rejects because the Service has no endpoints.

use super::finding::{frames_filter, server_filter, sock};
use super::{Detector, Evidence, Finding, FinishContext, ServerGroups, Severity};
use crate::flow::{ConnState, Flow};
use serde_json::json;

#[derive(Default)]
pub struct ConnectionRefused {
    groups: ServerGroups,
}

impl Detector for ConnectionRefused {
    fn flow_ended(&mut self, f: &Flow) {
        if f.state() != ConnState::Refused {
            return;
        }
        let Some(t) = &f.tcp else { return };
        let mut frames = t.syn_frames.clone();
        if let Some((_, fr, _)) = t.first_rst {
            frames.push(fr);
        }
        self.groups.add(f, 1, &frames);
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (server, g) in self.groups.sorted().into_iter().take(20) {
            let target = sock(server.ip, server.port);
            let tunnel = if server.tunnel.is_empty() {
                String::new()
            } else {
                format!(" (inside {})", server.tunnel)
            };
            out.push(Finding {
                kind: "tcp.connection_refused",
                severity: Severity::Warning,
                title: format!("{} connection(s) to {target}{tunnel} were refused (RST answered the SYN)", g.flows),
                summary: format!(
                    "{} SYN(s) from {} client(s) to {target} were answered with a RST: the host is reachable \
                     but nothing accepts connections on port {}. Usually the application is not listening \
                     (crashed, wrong port, still starting) or the Service targets the wrong port.",
                    g.flows,
                    g.clients.len(),
                    server.port
                ),
                evidence: Evidence {
                    frames: g.frames.clone(),
                    display_filter: format!("{} && (tcp.flags.reset==1 || (tcp.flags.syn==1 && tcp.flags.ack==0))", server_filter(server.ip, server.port)),
                },
                flow: g.examples.first().cloned(),
                details: json!({
                    "server_ip": server.ip,
                    "server_port": server.port,
                    "tunnel": server.tunnel,
                    "connections": g.flows,
                    "clients": g.clients,
                    "flows": g.examples,
                    "frames_filter": frames_filter(&g.frames),
                }),
                next_checks: vec![
                    format!("On the target pod: `ss -ltnp | grep :{}` — is the app listening on that port and address (0.0.0.0, not 127.0.0.1)?", server.port),
                    "Direct Pod works, Service fails → Service port/targetPort mismatch: compare the Service YAML with the EndpointSlice ports (`kubectl get endpointslice -n <ns> -l kubernetes.io/service-name=<svc> -o yaml`)".to_string(),
                    "Pods not Ready or restarting: `kubectl get pods -n <ns> -o wide` and `kubectl describe pod` events".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
