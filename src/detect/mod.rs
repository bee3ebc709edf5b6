//! Detectors: one module each, behind one small trait.
//!
//! A detector sees every packet (with the flow it belongs to) and every flow
//! when it ends, and turns what it saw into findings at the end. Adding a
//! detector is a new module plus one line in [`all`]; no other detector changes.

pub mod finding;

mod arp_mac_moved;
mod dns_ndots_storm;
mod dns_nxdomain;
mod dns_servfail;
mod dns_slow;
mod dns_unanswered;
mod duplicate_points;
mod mtu;
pub mod offload;
mod overlay_mtu;
mod overlay_peers;
mod tcp_connection_refused;
mod tcp_port_reuse;
mod tcp_reset;
mod tcp_retransmissions;
mod tcp_syn_unanswered;
mod tcp_zero_window;
mod tls_alert;
mod tls_alpn_mismatch;
mod tls_certificate;
mod tls_handshake_aborted;

pub use finding::{Evidence, Finding, FlowRef, Severity};

use crate::capture::{Packet, Timestamp};
use crate::decode::Decoded;
use crate::flow::dedup::CopyDetector;
use crate::flow::{Flow, Observation};
use std::collections::HashMap;
use std::net::IpAddr;

/// One packet, decoded, with what the flow layer made of it.
pub struct PacketEvent<'p, 'a> {
    pub pkt: &'p Packet<'a>,
    pub decoded: &'p Decoded<'a>,
    pub obs: Option<Observation>,
    pub flow: Option<&'p Flow>,
}

/// What detectors may need to know at the end of an input.
pub struct FinishContext<'a> {
    pub input: usize,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub copies: &'a CopyDetector,
    /// DNS transactions and lookups of the input, when DNS was followed.
    pub dns: Option<&'a crate::dns::DnsTracker>,
    /// TLS handshakes of the input, verified.
    pub tls: Option<&'a crate::tls::TlsTracker>,
}

pub trait Detector {
    fn packet(&mut self, _ev: &PacketEvent<'_, '_>) {}
    fn flow_ended(&mut self, _flow: &Flow) {}
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding>;
    /// Bounds this detector hit (docs/hardening.md), for a warning: a
    /// finding it may have missed is never lost silently.
    fn limits_hit(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a detector says of a bound it hit (`skipped` items it did not
/// follow), or nothing when it hit none.
pub fn limit_note(skipped: u64, note: impl FnOnce(u64) -> String) -> Vec<String> {
    if skipped == 0 {
        Vec::new()
    } else {
        vec![note(skipped)]
    }
}

/// Every detector, in report order.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(mtu::Mtu::default()),
        Box::new(overlay_mtu::OverlayMtu::default()),
        Box::new(overlay_peers::OverlayPeers::default()),
        Box::new(tcp_syn_unanswered::SynUnanswered::default()),
        Box::new(tcp_connection_refused::ConnectionRefused::default()),
        Box::new(tcp_retransmissions::Retransmissions::default()),
        Box::new(tcp_reset::Resets::default()),
        Box::new(tcp_zero_window::ZeroWindow::default()),
        Box::new(tcp_port_reuse::PortReuse::default()),
        Box::new(tls_certificate::Certificates),
        Box::new(tls_handshake_aborted::HandshakeAborted),
        Box::new(tls_alert::Alerts),
        Box::new(tls_alpn_mismatch::AlpnMismatch),
        Box::new(dns_unanswered::Unanswered),
        Box::new(dns_nxdomain::NxDomain),
        Box::new(dns_ndots_storm::NdotsStorm),
        Box::new(dns_servfail::ServFail),
        Box::new(dns_slow::Slow),
        Box::new(arp_mac_moved::MacMoved::default()),
        Box::new(offload::OffloadSuperframes::default()),
        Box::new(duplicate_points::DuplicatePoints),
    ]
}

/// Server endpoints a group of flows went to (a Service VIP, a pod IP:port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    pub ip: IpAddr,
    pub port: u16,
    pub tunnel: String,
}

/// Flows grouped by server, bounded in groups and in flows kept per group.
#[derive(Default)]
pub struct ServerGroups {
    pub groups: HashMap<ServerKey, ServerGroup>,
    pub dropped_groups: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ServerGroup {
    pub flows: u64,
    /// A count summed over the flows (SYNs, resets ...).
    pub events: u64,
    pub clients: Vec<IpAddr>,
    pub examples: Vec<FlowRef>,
    pub frames: Vec<u64>,
}

const MAX_GROUPS: usize = 10_000;
const MAX_EXAMPLES: usize = 5;
const MAX_FRAMES: usize = 32;
const MAX_CLIENTS: usize = 16;

impl ServerGroups {
    /// The group bound, when it was hit.
    pub fn limit_hit(&self, what: &str) -> Vec<String> {
        limit_note(self.dropped_groups, |n| {
            format!("{what}: more than {MAX_GROUPS} distinct servers; {n} flows of further servers were not grouped")
        })
    }
}

impl ServerGroups {
    pub fn add(&mut self, f: &Flow, events: u64, frames: &[u64]) {
        let fr = FlowRef::of(f);
        let key = ServerKey {
            ip: f.dst.0,
            port: f.dst.1,
            tunnel: fr.tunnel.clone(),
        };
        if !self.groups.contains_key(&key) && self.groups.len() >= MAX_GROUPS {
            self.dropped_groups += 1;
            return;
        }
        let g = self.groups.entry(key).or_default();
        g.flows += 1;
        g.events += events;
        if !g.clients.contains(&f.src.0) && g.clients.len() < MAX_CLIENTS {
            g.clients.push(f.src.0);
        }
        if g.examples.len() < MAX_EXAMPLES {
            g.examples.push(fr);
        }
        for fr in frames {
            if g.frames.len() >= MAX_FRAMES {
                break;
            }
            g.frames.push(*fr);
        }
    }

    /// Groups, most flows first.
    pub fn sorted(&self) -> Vec<(&ServerKey, &ServerGroup)> {
        let mut v: Vec<_> = self.groups.iter().collect();
        v.sort_by(|a, b| b.1.flows.cmp(&a.1.flows).then(a.0.cmp(b.0)));
        v
    }
}

/// Keep the `n` largest by `score`, bounded memory.
pub struct TopN<T> {
    n: usize,
    items: Vec<(u64, T)>,
}

impl<T> TopN<T> {
    pub fn new(n: usize) -> Self {
        TopN {
            n,
            items: Vec::new(),
        }
    }
    pub fn push(&mut self, score: u64, item: T) {
        if self.items.len() < self.n {
            self.items.push((score, item));
            return;
        }
        if let Some((i, min)) = self
            .items
            .iter()
            .enumerate()
            .min_by_key(|(_, (s, _))| *s)
            .map(|(i, (s, _))| (i, *s))
        {
            if score > min {
                self.items[i] = (score, item);
            }
        }
    }
    pub fn into_sorted(mut self) -> Vec<(u64, T)> {
        self.items.sort_by_key(|e| std::cmp::Reverse(e.0));
        self.items
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
