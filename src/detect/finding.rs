//! Findings: what a detector concluded, with the evidence and what to check next.

use crate::flow::key::{context_label, context_outer};
use crate::flow::Flow;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// 1-based frame numbers in the input, as Wireshark numbers them (a sample).
    pub frames: Vec<u64>,
    /// A Wireshark display filter that shows the evidence.
    pub display_filter: String,
}

/// A flow as findings and tables show it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRef {
    pub flow_id: u64,
    pub proto: &'static str,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    /// Tunnel context, e.g. `vxlan:42`; empty for plain traffic.
    pub tunnel: String,
    pub outer_src: Option<IpAddr>,
    pub outer_dst: Option<IpAddr>,
}

pub fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmpv6",
        _ => "ip",
    }
}

impl FlowRef {
    pub fn of(f: &Flow) -> FlowRef {
        let outer = context_outer(&f.tunnel);
        FlowRef {
            flow_id: f.id,
            proto: proto_name(f.proto),
            src_ip: f.src.0,
            src_port: f.src.1,
            dst_ip: f.dst.0,
            dst_port: f.dst.1,
            tunnel: context_label(&f.tunnel),
            outer_src: outer.map(|o| o.0),
            outer_dst: outer.map(|o| o.1),
        }
    }

    /// `10.0.0.1:40000 → 10.0.0.2:80 (vxlan:42)`
    pub fn label(&self) -> String {
        let t = if self.tunnel.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.tunnel)
        };
        format!(
            "{} → {}{t}",
            sock(self.src_ip, self.src_port),
            sock(self.dst_ip, self.dst_port)
        )
    }

    /// A display filter that selects this flow's packets.
    pub fn display_filter(&self) -> String {
        let ipf = |a: IpAddr| match a {
            IpAddr::V4(_) => format!("ip.addr=={a}"),
            IpAddr::V6(_) => format!("ipv6.addr=={a}"),
        };
        let mut s = format!(
            "{} && {} && {p}.port=={} && {p}.port=={}",
            ipf(self.src_ip),
            ipf(self.dst_ip),
            self.src_port,
            self.dst_port,
            p = self.proto
        );
        if let Some(vni) = self.tunnel.strip_prefix("vxlan:") {
            if let Ok(v) = vni.split('/').next().unwrap_or("").parse::<u32>() {
                s.push_str(&format!(" && vxlan.vni=={v}"));
            }
        }
        s
    }
}

pub fn sock(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

/// Packets to a TCP server endpoint, in either direction.
pub fn server_filter(ip: IpAddr, port: u16) -> String {
    let a = match ip {
        IpAddr::V4(_) => format!("ip.addr=={ip}"),
        IpAddr::V6(_) => format!("ipv6.addr=={ip}"),
    };
    format!("{a} && tcp.port=={port}")
}

/// `frame.number in {1 2 3}`
pub fn frames_filter(frames: &[u64]) -> String {
    let v: Vec<String> = frames.iter().map(|f| f.to_string()).collect();
    format!("frame.number in {{{}}}", v.join(" "))
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable dotted id, e.g. `tcp.retransmissions`.
    pub kind: &'static str,
    pub severity: Severity,
    /// One line for the verdict.
    pub title: String,
    /// A few sentences: what, how much, what it usually means.
    pub summary: String,
    pub evidence: Evidence,
    /// The flow most concerned (the worst one when several are).
    pub flow: Option<FlowRef>,
    pub details: serde_json::Value,
    /// What to run or look at next, in the field guide's vocabulary.
    pub next_checks: Vec<String>,
    /// Index of the input this finding is about (in `inputs`).
    pub input: usize,
}
