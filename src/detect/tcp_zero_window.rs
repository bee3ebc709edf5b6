//! `tcp.zero_window`: a receiver advertised a zero window.
//!
//! The sender must stop: the receiving application does not read its socket
//! fast enough (stuck, overloaded, or blocked on something else).

use super::{Detector, Evidence, Finding, FinishContext, FlowRef, Severity, TopN};
use crate::flow::Flow;
use serde_json::json;

pub struct ZeroWindow {
    flows: u64,
    worst: TopN<(FlowRef, Vec<u64>)>,
}

impl Default for ZeroWindow {
    fn default() -> Self {
        ZeroWindow {
            flows: 0,
            worst: TopN::new(10),
        }
    }
}

impl Detector for ZeroWindow {
    fn flow_ended(&mut self, f: &Flow) {
        let Some(t) = &f.tcp else { return };
        if t.counters.zero_windows == 0 {
            return;
        }
        self.flows += 1;
        self.worst.push(
            t.counters.zero_windows,
            (FlowRef::of(f), t.zero_window_frames.clone()),
        );
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        if self.worst.is_empty() {
            return Vec::new();
        }
        let worst = std::mem::replace(&mut self.worst, TopN::new(1)).into_sorted();
        let (n, (first, frames)) = &worst[0];
        let flows: Vec<serde_json::Value> = worst
            .iter()
            .map(|(n, (fr, frames))| json!({"flow": fr, "zero_windows": n, "frames": frames}))
            .collect();
        vec![Finding {
            kind: "tcp.zero_window",
            severity: Severity::Warning,
            title: format!("{} flow(s) stalled on a zero receive window (worst: {} times on {})", self.flows, n, first.label()),
            summary: "A receiver told its peer to stop sending (window 0): its application is not reading the socket fast enough. \
                      Requests then hang although the network is fine."
                .to_string(),
            evidence: Evidence {
                frames: frames.clone(),
                display_filter: format!("tcp.analysis.zero_window && ({})", first.display_filter()),
            },
            flow: Some(first.clone()),
            details: json!({"flows": flows, "flows_with_zero_window": self.flows}),
            next_checks: vec![
                "CPU throttling or saturation of the receiving pod: `kubectl top pod -n <ns>` and the container's CPU limits".to_string(),
                "The receiving app's own logs and thread/worker pool saturation; `ss -tm` on the pod shows the receive queue".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
