//! `dns.unanswered`: queries that never got a response, and queries that
//! were answered only after the resolver's 5-second retry.
//!
//! Regular 5-second gaps are the signature of the conntrack race on UDP:
//! the A and AAAA queries leave one socket at once, one loses the race for
//! a conntrack entry and is dropped, and glibc waits its 5-second timeout.

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A query counts as unanswered if the capture went on this long after its last transmission.
pub const WAIT_NS: i64 = 2_000_000_000;

#[derive(Default)]
pub struct Unanswered;

#[derive(Default)]
struct PerServer {
    unanswered: u64,
    late: u64,
    five_second_gaps: u64,
    clients: Vec<IpAddr>,
    names: Vec<String>,
    frames: Vec<u64>,
}

impl Detector for Unanswered {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(dns) = ctx.dns else {
            return Vec::new();
        };
        let end = ctx.last_ts.map_or(i64::MIN, |t| t.0);
        let mut by: BTreeMap<(IpAddr, u16), PerServer> = BTreeMap::new();
        let (mut total, mut total_q) = (0u64, 0u64);
        for q in &dns.queries {
            total_q += 1;
            let unanswered = q.rcode.is_none() && end.saturating_sub(q.last_sent.0) >= WAIT_NS;
            // Answered, but only after the resolver timed out and asked again.
            let late = q.rcode.is_some() && q.retransmit_gaps_ms.iter().any(|g| *g >= 1000.0);
            if !unanswered && !late {
                continue;
            }
            if by.len() >= 1000 && !by.contains_key(&q.server) {
                continue;
            }
            let s = by.entry(q.server).or_default();
            if unanswered {
                s.unanswered += 1;
                total += 1;
            } else {
                s.late += 1;
            }
            s.five_second_gaps += q
                .retransmit_gaps_ms
                .iter()
                .filter(|g| (4_500.0..=5_500.0).contains(*g))
                .count() as u64;
            if !s.clients.contains(&q.client.0) && s.clients.len() < 16 {
                s.clients.push(q.client.0);
            }
            if !s.names.contains(&q.qname) && s.names.len() < 10 {
                s.names.push(q.qname.clone());
            }
            if s.frames.len() < 24 {
                s.frames.push(q.frame);
            }
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1.unanswered + e.1.late));
        v.into_iter()
            .take(5)
            .map(|((ip, port), s)| {
                let race = if s.five_second_gaps > 0 {
                    format!(
                        " {} retransmission(s) came exactly 5 s after the first try: the resolver's timeout. Regular 5-second \
                         stalls point at the conntrack race on UDP (A and AAAA sent together from one socket, one dropped), \
                         fixed by `options single-request-reopen` in the pod's dnsConfig, NodeLocal DNSCache, or a newer kernel.",
                        s.five_second_gaps
                    )
                } else {
                    String::new()
                };
                let mut frames = s.frames.clone();
                frames.sort_unstable();
                Finding {
                    kind: "dns.unanswered",
                    severity: if s.unanswered >= 3 || s.five_second_gaps > 0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    title: match (s.unanswered, s.late) {
                        (0, l) => format!("DNS server {ip}:{port} answered {l} quer(ies) only after the client timed out and retried"),
                        (u, 0) => format!("DNS server {ip}:{port} left {u} quer(ies) unanswered"),
                        (u, l) => format!("DNS server {ip}:{port} left {u} quer(ies) unanswered and answered {l} only after a retry"),
                    },
                    summary: format!(
                        "{} of {total_q} DNS queries in the capture got no response ({} of them sent to {ip}), from {} client(s), \
                         for names such as {}.{race}",
                        total,
                        s.unanswered,
                        s.clients.len(),
                        s.names.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
                    ),
                    evidence: Evidence {
                        display_filter: format!(
                            "{} && dns.flags.response==0 && !dns.response_in",
                            if ip.is_ipv4() { format!("ip.dst=={ip}") } else { format!("ipv6.dst=={ip}") }
                        ),
                        frames,
                    },
                    flow: None,
                    details: json!({
                        "server_ip": ip, "server_port": port,
                        "unanswered": s.unanswered, "answered_after_retry": s.late,
                        "five_second_retries": s.five_second_gaps,
                        "clients": s.clients, "names": s.names,
                    }),
                    next_checks: vec![
                        "Timeouts to CoreDNS: CPU throttling or an iptables loop: `kubectl top pod -n kube-system -l k8s-app=kube-dns` and `kubectl logs -n kube-system deploy/coredns --tail=200`".to_string(),
                        format!("Is {ip} the cluster DNS Service? `kubectl get svc -n kube-system kube-dns -o wide`, and does it have endpoints (`kubectl get endpointslice -n kube-system -l kubernetes.io/service-name=kube-dns`)?"),
                        "Conntrack drops on the client's node: `conntrack -S` (insert_failed) ".to_string(),
                    ],
                    input: ctx.input,
                }
            })
            .collect()
    }
}
