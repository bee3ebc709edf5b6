//! `dns.servfail`: the DNS server could not answer (upstream failed, DNSSEC, loops).

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Default)]
pub struct ServFail;

impl Detector for ServFail {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(dns) = ctx.dns else {
            return Vec::new();
        };
        let mut by: BTreeMap<String, (u64, Vec<IpAddr>, Vec<u64>, (IpAddr, u16))> = BTreeMap::new();
        for q in dns.queries.iter().filter(|q| q.rcode == Some(2)) {
            if by.len() >= 10_000 && !by.contains_key(&q.qname) {
                continue;
            }
            let e = by
                .entry(q.qname.clone())
                .or_insert((0, Vec::new(), Vec::new(), q.server));
            e.0 += 1;
            if !e.1.contains(&q.client.0) && e.1.len() < 16 {
                e.1.push(q.client.0);
            }
            if e.2.len() < 8 {
                e.2.push(q.frame);
                if let Some(r) = q.response_frame {
                    e.2.push(r);
                }
            }
        }
        if by.is_empty() {
            return Vec::new();
        }
        let total: u64 = by.values().map(|e| e.0).sum();
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0));
        let names: Vec<serde_json::Value> = v
            .iter()
            .take(20)
            .map(|(n, e)| json!({"qname": n, "servfails": e.0, "clients": e.1, "server": e.3.0}))
            .collect();
        let (top, e) = &v[0];
        let mut frames: Vec<u64> = v
            .iter()
            .flat_map(|(_, e)| e.2.iter().copied())
            .take(24)
            .collect();
        frames.sort_unstable();
        vec![Finding {
            kind: "dns.servfail",
            severity: Severity::Warning,
            title: format!("{total} DNS answer(s) were SERVFAIL, for {} name(s) (most: {top}, from {})", v.len(), e.3.0),
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
