//! `capture.duplicate_points`: the capture saw the same packets at several
//! points (pod veth, bridge, VXLAN device, uplink). capsift counts each
//! packet once; tshark would report the copies as retransmissions.

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use serde_json::json;

pub struct DuplicatePoints;

impl Detector for DuplicatePoints {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let c = ctx.copies;
        if c.copies == 0 {
            return Vec::new();
        }
        let mut pairs: Vec<_> = c.pairs.iter().collect();
        pairs.sort_by(|a, b| b.1.copies.cmp(&a.1.copies).then(a.0.cmp(b.0)));
        let lines: Vec<String> = pairs
            .iter()
            .take(6)
            .map(|((a, b), s)| {
                format!(
                    "{} then {}: {} copies",
                    a.describe(),
                    b.describe(),
                    s.copies
                )
            })
            .collect();
        let frames: Vec<u64> = pairs
            .iter()
            .flat_map(|(_, s)| s.examples.iter().flat_map(|(o, c)| [*o, *c]))
            .take(16)
            .collect();
        let details: Vec<serde_json::Value> = pairs
            .iter()
            .take(20)
            .map(|((a, b), s)| {
                json!({"first_seen_at": a.describe(), "copy_at": b.describe(),
                       "first_interface": a.interface, "first_ifindex": a.ifindex, "first_tunnel_depth": a.tunnel_depth,
                       "copy_interface": b.interface, "copy_ifindex": b.ifindex, "copy_tunnel_depth": b.tunnel_depth,
                       "copies": s.copies, "examples": s.examples})
            })
            .collect();
        vec![Finding {
            kind: "capture.duplicate_points",
            severity: Severity::Info,
            title: format!("{} packets were captured more than once, at different points; each was counted once", c.copies),
            summary: format!(
                "This looks like `tcpdump -i any` on a node: the same packet passes the pod veth, the bridge or tunnel \
                 device and the uplink. capsift counted each packet once; tshark counts the copies as \
                 retransmissions and duplicate ACKs. Capture points:\n  {}",
                lines.join("\n  ")
            ),
            evidence: Evidence {
                display_filter: super::finding::frames_filter(&frames),
                frames,
            },
            flow: None,
            details: json!({"copies": c.copies, "point_pairs": details}),
            next_checks: vec![
                "To see one copy per packet in Wireshark, filter on one interface: `sll.ifindex == N` (SLL2) or `frame.interface_id == N` (pcapng)".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
