//! `tcp.retransmissions`: flows whose retransmission rate passes a threshold.
//!
//! Rate = retransmitted segments (tshark's `tcp.analysis.retransmission`,
//! fast and spurious included) / segments carrying data. A flow is listed
//! from [`MIN_RETRANSMISSIONS`] retransmissions and [`MIN_RATE`]; the
//! finding is critical when a listed flow reaches [`CRITICAL_RATE`].

use super::finding::frames_filter;
use super::{Detector, Evidence, Finding, FinishContext, FlowRef, Severity, TopN};
use crate::flow::Flow;
use serde_json::json;

pub const MIN_RETRANSMISSIONS: u64 = 3;
pub const MIN_RATE: f64 = 0.02;
pub const CRITICAL_RATE: f64 = 0.10;

struct Listed {
    flow: FlowRef,
    retrans: u64,
    fast: u64,
    spurious: u64,
    dup_acks: u64,
    data_segments: u64,
    frames: Vec<u64>,
    state: &'static str,
}

pub struct Retransmissions {
    /// Flows told by ICMP to send smaller packets: their resends are PMTUD.
    too_big: foldhash::HashSet<super::mtu::Tuple>,
    after_pmtud: u64,
    flows_listed: u64,
    retrans_total: u64,
    data_total: u64,
    worst: TopN<Listed>,
}

impl Default for Retransmissions {
    fn default() -> Self {
        Retransmissions {
            too_big: Default::default(),
            after_pmtud: 0,
            flows_listed: 0,
            retrans_total: 0,
            data_total: 0,
            worst: TopN::new(10),
        }
    }
}

impl Detector for Retransmissions {
    fn packet(&mut self, ev: &super::PacketEvent<'_, '_>) {
        if let Some((_, _, t)) = super::mtu::icmp_too_big(ev.decoded) {
            if self.too_big.len() < 100_000 {
                self.too_big.insert(t);
            }
        }
    }

    fn flow_ended(&mut self, f: &Flow) {
        let Some(t) = &f.tcp else { return };
        let data = t.data_segments[0] + t.data_segments[1];
        let c = &t.counters;
        self.retrans_total += c.retransmissions;
        self.data_total += data;
        if c.retransmissions < MIN_RETRANSMISSIONS || data == 0 {
            return;
        }
        let rate = c.retransmissions as f64 / data as f64;
        if rate < MIN_RATE {
            return;
        }
        // Segments resent smaller after an ICMP too-big are path MTU
        // discovery doing its job (see mtu.icmp_too_big), not loss.
        let tuple = (f.src.0, f.dst.0, f.proto, f.src.1, f.dst.1);
        let reverse = (f.dst.0, f.src.0, f.proto, f.dst.1, f.src.1);
        if self.too_big.contains(&tuple) || self.too_big.contains(&reverse) {
            self.after_pmtud += 1;
            return;
        }
        self.flows_listed += 1;
        self.worst.push(
            c.retransmissions,
            Listed {
                flow: FlowRef::of(f),
                retrans: c.retransmissions,
                fast: c.fast_retransmissions,
                spurious: c.spurious_retransmissions,
                dup_acks: c.dup_acks,
                data_segments: data,
                frames: t.retrans_frames.clone(),
                state: f.state().as_str(),
            },
        );
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        if self.worst.is_empty() {
            return Vec::new();
        }
        let worst = std::mem::replace(&mut self.worst, TopN::new(1)).into_sorted();
        let max_rate = worst
            .iter()
            .map(|(_, l)| l.retrans as f64 / l.data_segments as f64)
            .fold(0.0, f64::max);
        let severity = if max_rate >= CRITICAL_RATE {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let first = &worst[0].1;
        let mut frames: Vec<u64> = worst
            .iter()
            .flat_map(|(_, l)| l.frames.iter().copied())
            .collect();
        frames.sort_unstable();
        frames.truncate(32);
        let overall = if self.data_total > 0 {
            self.retrans_total as f64 / self.data_total as f64
        } else {
            0.0
        };
        let lines: Vec<String> = worst
            .iter()
            .take(5)
            .map(|(_, l)| {
                format!(
                    "{}: {} of {} data segments retransmitted ({:.1} %, {} fast, {} spurious), {} dup ACKs, {}",
                    l.flow.label(),
                    l.retrans,
                    l.data_segments,
                    100.0 * l.retrans as f64 / l.data_segments as f64,
                    l.fast,
                    l.spurious,
                    l.dup_acks,
                    if l.state.is_empty() { "udp" } else { l.state }
                )
            })
            .collect();
        let flows: Vec<serde_json::Value> = worst
            .iter()
            .map(|(_, l)| {
                json!({"flow": l.flow, "retransmissions": l.retrans, "fast_retransmissions": l.fast,
                       "spurious_retransmissions": l.spurious, "dup_acks": l.dup_acks,
                       "data_segments": l.data_segments,
                       "rate": l.retrans as f64 / l.data_segments as f64, "state": l.state,
                       "frames": l.frames})
            })
            .collect();
        vec![Finding {
            kind: "tcp.retransmissions",
            severity,
            title: format!(
                "{} flow(s) lose packets: up to {:.1} % of data segments retransmitted (worst: {})",
                self.flows_listed,
                100.0 * max_rate,
                first.flow.label()
            ),
            summary: format!(
                "Segments are being lost between the endpoints and sent again. Over the whole capture {} of {} data segments \
                 ({:.2} %) were retransmissions. Worst flows:\n  {}",
                self.retrans_total,
                self.data_total,
                100.0 * overall,
                lines.join("\n  ")
            ),
            evidence: Evidence {
                display_filter: format!("tcp.analysis.retransmission && ({})", first.flow.display_filter()),
                frames,
            },
            flow: Some(first.flow.clone()),
            details: json!({
                "flows_over_threshold": self.flows_listed,
                "threshold": {"min_retransmissions": MIN_RETRANSMISSIONS, "min_rate": MIN_RATE, "critical_rate": CRITICAL_RATE},
                "capture_retransmissions": self.retrans_total,
                "capture_data_segments": self.data_total,
                "flows_not_listed_after_icmp_too_big": self.after_pmtud,
                "flows": flows,
                "frames_filter": frames_filter(&first.frames),
            }),
            next_checks: vec![
                "Do the losses sit on one path? Compare the flows' node pairs; if they share a node or a tunnel, check that node's NIC drops (`ip -s link`, `ethtool -S <nic> | grep -i drop`) and `nstat -az | grep -i -E 'retrans|drop'`".to_string(),
                "Large segments lost while small ones pass points at an MTU problem on the overlay: check the pod and tunnel MTU (`ip link` in the pod and on the node) against the underlay".to_string(),
                "Conntrack pressure on the nodes (`conntrack -S`, `sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max`) and CPU saturation of the endpoints".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
