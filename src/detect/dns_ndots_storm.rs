//! `dns.ndots_storm`: lookups that walked the search list before resolving.
//!
//! With `ndots:5` every name with fewer than five dots is first tried with
//! each search suffix: `api.github.com` costs six NXDOMAIN queries (A and
//! AAAA for three suffixes) before the real one, and any loss among them
//! costs a 5-second retry.

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use crate::dns::rcode_is_nxdomain;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Default)]
pub struct NdotsStorm;

#[derive(Default)]
struct Agg {
    lookups: u64,
    queries: u64,
    wasted: u64,
    time_lost_ns: i64,
    max_time_lost_ns: i64,
    suffixes: Vec<String>,
    wasted_suffixes: Vec<String>,
    frames: Vec<u64>,
    resolved: u64,
}

/// `<ns>.svc.<zone>` in a search list names the pod's namespace.
pub fn namespace_of(search: &[String]) -> Option<(String, String)> {
    search.iter().find_map(|s| {
        let l: Vec<&str> = s.split('.').collect();
        (l.len() >= 3 && l[1] == "svc").then(|| (l[0].to_string(), l[2..].join(".")))
    })
}

impl Detector for NdotsStorm {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(dns) = ctx.dns else {
            return Vec::new();
        };
        let qs = &dns.queries;
        let mut by: HashMap<(IpAddr, String), Agg> = HashMap::new();
        for l in &dns.lookups.closed {
            if !l.is_expansion() {
                continue;
            }
            let resolved_name = l.resolved.as_ref().map(|r| r.0.as_str());
            let wasted: Vec<usize> = l
                .queries
                .iter()
                .copied()
                .filter(|&j| {
                    Some(qs[j].qname.as_str()) != resolved_name
                        && qs[j].rcode.is_some_and(rcode_is_nxdomain)
                })
                .collect();
            if wasted.len() < 2 || by.len() >= 10_000 {
                continue;
            }
            let a = by.entry((l.client, l.base.clone())).or_default();
            a.lookups += 1;
            a.queries += l.queries.len() as u64;
            a.wasted += wasted.len() as u64;
            let lost = match &l.resolved {
                Some((_, t)) => t.0.saturating_sub(l.first_ts.0),
                None => l.last_ts.0.saturating_sub(l.first_ts.0),
            };
            a.resolved += u64::from(l.resolved.is_some());
            a.time_lost_ns += lost;
            a.max_time_lost_ns = a.max_time_lost_ns.max(lost);
            for s in &l.suffixes {
                if !s.is_empty() && !a.suffixes.contains(s) {
                    a.suffixes.push(s.clone());
                }
            }
            let nb = l.base.split('.').count();
            for &j in &wasted {
                let suffix: String = qs[j]
                    .qname
                    .split('.')
                    .skip(nb)
                    .collect::<Vec<_>>()
                    .join(".");
                if !suffix.is_empty()
                    && !a.wasted_suffixes.contains(&suffix)
                    && a.wasted_suffixes.len() < 8
                {
                    a.wasted_suffixes.push(suffix);
                }
            }
            for &j in wasted.iter().take(8) {
                if a.frames.len() < 24 {
                    a.frames.push(qs[j].frame);
                }
            }
        }
        let mut v: Vec<_> = by.into_iter().filter(|(_, a)| a.resolved > 0).collect();
        v.sort_by(|a, b| b.1.wasted.cmp(&a.1.wasted).then(a.0.cmp(&b.0)));
        let clients: std::collections::BTreeSet<IpAddr> = v.iter().map(|((c, _), _)| *c).collect();
        v.into_iter()
            .take(10)
            .map(|((client, name), a)| {
                let per_lookup_q = a.queries as f64 / a.lookups as f64;
                let per_lookup_w = a.wasted as f64 / a.lookups as f64;
                let ns = namespace_of(&a.suffixes);
                let ns_text = ns
                    .as_ref()
                    .map(|(n, z)| format!(" The search list shows the pod is in namespace `{n}` of cluster domain `{z}`."))
                    .unwrap_or_default();
                let mut frames = a.frames.clone();
                frames.sort_unstable();
                Finding {
                    kind: "dns.ndots_storm",
                    severity: if per_lookup_w >= 4.0 { Severity::Warning } else { Severity::Info },
                    title: format!(
                        "Each lookup of {name} from {client} sends {per_lookup_q:.0} queries, {per_lookup_w:.0} of them wasted on search suffixes"
                    ),
                    summary: format!(
                        "{client} looked up {name} {} time(s). Because the name has fewer dots than `ndots` (5 in Kubernetes), \
                         the resolver first tried it with search domains ({}), and each of those tries came back NXDOMAIN: \
                         {} wasted queries in all, {:.1} ms lost per lookup on average ({:.1} ms at worst). A single lost \
                         query among them costs a 5-second retry.{ns_text} \
                         Fix: use the fully qualified name with a trailing dot (`{name}.`), or set the pod's \
                         `dnsConfig.options` to `ndots: \"1\"` (or 2), or run NodeLocal DNSCache so the misses are answered on the node.",
                        a.lookups,
                        a.wasted_suffixes.join(", "),
                        a.wasted,
                        a.time_lost_ns as f64 / a.lookups as f64 / 1e6,
                        a.max_time_lost_ns as f64 / 1e6,
                    ),
                    evidence: Evidence {
                        display_filter: format!(
                            "{} && dns.flags.rcode==3 && dns.qry.name contains \"{name}.\"",
                            if client.is_ipv4() { format!("ip.addr=={client}") } else { format!("ipv6.addr=={client}") }
                        ),
                        frames,
                    },
                    flow: None,
                    details: json!({
                        "client": client,
                        "name": name,
                        "search_domains": a.suffixes,
                        "namespace": ns.as_ref().map(|n| n.0.clone()),
                        "cluster_domain": ns.as_ref().map(|n| n.1.clone()),
                        "lookups": a.lookups,
                        "queries": a.queries,
                        "wasted_queries": a.wasted,
                        "queries_per_lookup": per_lookup_q,
                        "wasted_per_lookup": per_lookup_w,
                        "time_lost_ms": a.time_lost_ns as f64 / 1e6,
                        "max_time_lost_ms": a.max_time_lost_ns as f64 / 1e6,
                        "clients_with_storms": clients.len(),
                    }),
                    next_checks: vec![
                        "`kubectl exec <pod> -- cat /etc/resolv.conf`: confirm `options ndots:5` and the search list".to_string(),
                        format!("Trailing dot in the client's configuration: `{name}.` is looked up once"),
                        "Pod spec: `dnsConfig: {options: [{name: ndots, value: \"1\"}]}` on latency-sensitive pods".to_string(),
                        "NodeLocal DNSCache, and CoreDNS load: `kubectl top pod -n kube-system -l k8s-app=kube-dns`".to_string(),
                    ],
                    input: ctx.input,
                }
            })
            .collect()
    }
}
