//! `tcp.reset`: established connections reset mid-stream.
//!
//! Grouped by which side sent the RST. Resets from the server side during a
//! transfer point at the application or a proxy; resets that neither end
//! sent (seen mid-path) at a middlebox, stale conntrack or an idle timeout.

use super::finding::{frames_filter, sock};
use super::{Detector, Evidence, Finding, FinishContext, FlowRef, Severity, TopN};
use crate::flow::{ConnState, Flow};
use serde_json::json;

pub struct Resets {
    total: u64,
    by_server: u64,
    by_client: u64,
    worst: TopN<(FlowRef, usize, u64, bool)>,
}

impl Default for Resets {
    fn default() -> Self {
        Resets {
            total: 0,
            by_server: 0,
            by_client: 0,
            worst: TopN::new(10),
        }
    }
}

impl Detector for Resets {
    fn flow_ended(&mut self, f: &Flow) {
        if f.state() != ConnState::Reset {
            return;
        }
        let Some(t) = &f.tcp else { return };
        let Some((dir, frame, _)) = t.first_rst else {
            return;
        };
        self.total += 1;
        if dir == 1 {
            self.by_server += 1;
        } else {
            self.by_client += 1;
        }
        let bytes = f.bytes[0] + f.bytes[1];
        self.worst
            .push(bytes, (FlowRef::of(f), dir, frame, t.data_before_rst));
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        if self.total == 0 {
            return Vec::new();
        }
        let worst = std::mem::replace(&mut self.worst, TopN::new(1)).into_sorted();
        let mut frames: Vec<u64> = worst.iter().map(|(_, (_, _, fr, _))| *fr).collect();
        frames.sort_unstable();
        let flows: Vec<serde_json::Value> = worst
            .iter()
            .map(|(bytes, (fr, dir, frame, data))| {
                json!({"flow": fr, "reset_by": if *dir == 1 { "server" } else { "client" },
                       "rst_frame": frame, "bytes": bytes, "after_data": data})
            })
            .collect();
        let first = worst.first().map(|(_, (fr, _, _, _))| fr.clone());
        let (who, advice) = if self.by_server >= self.by_client {
            ("the server side", "the application, its sidecar or a proxy in front of it closed connections abruptly (crash, restart, request/idle timeout, connection limit)")
        } else {
            ("the client side", "clients aborted (timeouts, cancelled requests); check client-side timeouts against server latency")
        };
        vec![Finding {
            kind: "tcp.reset",
            severity: Severity::Warning,
            title: format!("{} connection(s) were reset after they were established, mostly by {who}", self.total),
            summary: format!(
                "{} established connection(s) ended with a RST ({} sent by the server side, {} by the client side). \
                 Most likely {advice}. Intermittent 5xx only via a Service with resets points at stale conntrack entries or differing paths.",
                self.total, self.by_server, self.by_client
            ),
            evidence: Evidence {
                display_filter: format!("tcp.flags.reset==1 && ({})", frames_filter(&frames)),
                frames,
            },
            flow: first.clone(),
            details: json!({
                "connections_reset": self.total,
                "reset_by_server": self.by_server,
                "reset_by_client": self.by_client,
                "flows": flows,
            }),
            next_checks: vec![
                format!(
                    "Logs of the pods behind {}: `kubectl logs -n <ns> <pod> --previous` and restarts in `kubectl get pods -n <ns>`",
                    first.as_ref().map_or("the server".to_string(), |f| sock(f.dst_ip, f.dst_port))
                ),
                "Intermittent resets only via the Service: stale conntrack or kube-proxy resync (`conntrack -S` on the node, kube-proxy logs)".to_string(),
                "Idle connections cut by a load balancer or proxy: compare its idle timeout with the client's keepalive".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
