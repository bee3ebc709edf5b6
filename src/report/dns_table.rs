//! The dns table (`capsift table dns`): one row per query; columns in docs/tables.md.

use crate::dns::message::{qtype_name, rcode_name};
use crate::dns::{DnsQuery, Transport};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct DnsRow {
    pub capture: String,
    pub ts: String,
    pub frame: u64,
    pub client_ip: String,
    pub client_port: u16,
    pub server_ip: String,
    pub server_port: u16,
    pub transport: &'static str,
    pub id: u16,
    pub qname: String,
    pub qtype: String,
    pub rcode: Option<String>,
    pub answers: Option<u16>,
    pub latency_ms: Option<f64>,
    pub retransmits: u32,
    pub search_base: Option<String>,
    pub truncated: bool,
    pub response_frame: Option<u64>,
    pub addresses: String,
}

impl DnsRow {
    pub fn of(capture: &str, q: &DnsQuery) -> DnsRow {
        DnsRow {
            capture: capture.to_string(),
            ts: q.ts.to_rfc3339(),
            frame: q.frame,
            client_ip: q.client.0.to_string(),
            client_port: q.client.1,
            server_ip: q.server.0.to_string(),
            server_port: q.server.1,
            transport: match q.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            },
            id: q.id,
            qname: q.qname.clone(),
            qtype: qtype_name(q.qtype),
            rcode: q.rcode.map(rcode_name),
            answers: q.rcode.map(|_| q.answers),
            latency_ms: q.latency_ns.map(|n| n as f64 / 1e6),
            retransmits: q.retransmits,
            search_base: q.search_base.clone(),
            truncated: q.truncated,
            response_frame: q.response_frame,
            addresses: q
                .addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}
