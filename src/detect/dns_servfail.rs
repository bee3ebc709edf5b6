//! `dns.servfail`: the DNS server could not answer (upstream failed, DNSSEC, loops).

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Default)]
pub struct ServFail;

/// The SERVFAILs for one name.
struct NameFailures {
    count: u64,
    /// Up to 16 distinct clients.
    clients: Vec<IpAddr>,
    /// Up to 8 query frames, each with its response.
    frames: Vec<u64>,
    server: (IpAddr, u16),
}

impl Detector for ServFail {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(dns) = ctx.dns else {
            return Vec::new();
        };
        let mut by: BTreeMap<String, NameFailures> = BTreeMap::new();
        for q in dns.queries.iter().filter(|q| q.rcode == Some(2)) {
            if by.len() >= 10_000 && !by.contains_key(&q.qname) {
                continue;
            }
            let e = by.entry(q.qname.clone()).or_insert(NameFailures {
                count: 0,
                clients: Vec::new(),
                frames: Vec::new(),
                server: q.server,
            });
            e.count += 1;
            if !e.clients.contains(&q.client.0) && e.clients.len() < 16 {
                e.clients.push(q.client.0);
            }
            if e.frames.len() < 8 {
                e.frames.push(q.frame);
                if let Some(r) = q.response_frame {
                    e.frames.push(r);
                }
            }
        }
        if by.is_empty() {
            return Vec::new();
        }
        let total: u64 = by.values().map(|e| e.count).sum();
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1.count));
        let names: Vec<serde_json::Value> = v
            .iter()
            .take(20)
            .map(|(n, e)| json!({"qname": n, "servfails": e.count, "clients": e.clients, "server": e.server.0}))
            .collect();
        let (top, e) = &v[0];
        let mut frames: Vec<u64> = v
            .iter()
            .flat_map(|(_, e)| e.frames.iter().copied())
            .take(24)
            .collect();
        frames.sort_unstable();
        vec![Finding {
            kind: "dns.servfail",
            severity: Severity::Warning,
            title: format!("{total} DNS answer(s) were SERVFAIL, for {} name(s) (most: {top}, from {})", v.len(), e.server.0),
            summary: "The DNS server failed to resolve these names: its upstream resolver is unreachable or failing, \
                      a DNSSEC validation failed, or a forwarding loop. Clients retry and stall."
                .to_string(),
            evidence: Evidence { display_filter: "dns.flags.rcode==2".to_string(), frames },
            flow: None,
            details: json!({"servfails": total, "names": names}),
            next_checks: vec![
                "CoreDNS logs for the upstream errors: `kubectl logs -n kube-system deploy/coredns --tail=200`".to_string(),
                "Stub/upstream resolver health and the forward plugin: `kubectl get cm coredns -n kube-system -o yaml`".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
