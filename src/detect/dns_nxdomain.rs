//! `dns.nxdomain`: names that never resolved, after every search expansion.
//!
//! When a failed name is one or two edits from a name that did resolve, or
//! the same service in another namespace, say so: a typo or the wrong
//! namespace, the field guide's first two causes of NXDOMAIN.

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use crate::dns::rcode_is_nxdomain;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Default)]
pub struct NxDomain;

/// Optimal string alignment distance (Levenshtein plus transpositions), capped.
pub fn edit_distance(a: &str, b: &str, cap: usize) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > cap || a.len() > 255 || b.len() > 255 {
        return cap + 1;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[derive(Default)]
struct Failed {
    clients: BTreeSet<IpAddr>,
    lookups: u64,
    tried: Vec<String>,
    frames: Vec<u64>,
}

impl Detector for NxDomain {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(dns) = ctx.dns else {
            return Vec::new();
        };
        let qs = &dns.queries;
        // Names that resolved, as typed and as asked.
        let mut good: BTreeSet<String> = BTreeSet::new();
        for l in &dns.lookups.closed {
            if let Some((n, _)) = &l.resolved {
                good.insert(n.clone());
                if l.is_expansion() {
                    good.insert(l.base.clone());
                }
            }
        }
        let search: BTreeSet<String> = dns
            .lookups
            .closed
            .iter()
            .flat_map(|l| l.suffixes.iter().filter(|s| !s.is_empty()).cloned())
            .collect();
        // Strip known search suffixes so `web.app.svc.cluster.local` compares as `web`.
        let short = |n: &str| -> String {
            search
                .iter()
                .filter_map(|s| n.strip_suffix(&format!(".{s}")))
                .min_by_key(|x| x.len())
                .unwrap_or(n)
                .to_string()
        };
        let mut failed: BTreeMap<String, Failed> = BTreeMap::new();
        for l in &dns.lookups.closed {
            if l.resolved.is_some() {
                continue;
            }
            let answered: Vec<usize> = l
                .queries
                .iter()
                .copied()
                .filter(|&j| qs[j].rcode.is_some())
                .collect();
            if answered.is_empty()
                || !answered
                    .iter()
                    .all(|&j| qs[j].rcode.is_some_and(rcode_is_nxdomain))
            {
                continue;
            }
            let typed = if l.is_expansion() {
                l.base.clone()
            } else {
                short(&l.names[0])
            };
            if failed.len() >= 10_000 && !failed.contains_key(&typed) {
                continue;
            }
            let f = failed.entry(typed).or_default();
            f.clients.insert(l.client);
            f.lookups += 1;
            for n in &l.names {
                if !f.tried.contains(n) && f.tried.len() < 8 {
                    f.tried.push(n.clone());
                }
            }
            for &j in answered.iter().take(4) {
                if f.frames.len() < 16 {
                    f.frames.push(qs[j].frame);
                    if let Some(r) = qs[j].response_frame {
                        f.frames.push(r);
                    }
                }
            }
        }
        let good_short: BTreeSet<String> = good.iter().map(|g| short(g)).collect();
        let mut v: Vec<_> = failed.into_iter().collect();
        v.sort_by(|a, b| b.1.lookups.cmp(&a.1.lookups).then(a.0.cmp(&b.0)));
        v.into_iter()
            .take(10)
            .map(|(name, f)| {
                let near: Vec<String> = good_short
                    .iter()
                    .filter(|g| {
                        let d = edit_distance(&name, g, 2);
                        (1..=2).contains(&d)
                    })
                    .take(5)
                    .cloned()
                    .collect();
                // Same service, other namespace: `svc.ns` forms.
                let first = name.split('.').next().unwrap_or("");
                let other_ns: Vec<String> = good_short
                    .iter()
                    .filter(|g| g.contains('.') && g.split('.').next() == Some(first) && **g != name)
                    .take(5)
                    .cloned()
                    .collect();
                let hint = if !near.is_empty() {
                    format!(" It is {} edit(s) away from {}, which did resolve: probably a typo.",
                        edit_distance(&name, &near[0], 2), near.join(", "))
                } else if !other_ns.is_empty() {
                    format!(" {} resolved: the same service in another namespace? Use the fully qualified `<svc>.<namespace>.svc.<cluster-domain>`.", other_ns.join(", "))
                } else {
                    String::new()
                };
                let mut frames = f.frames.clone();
                frames.sort_unstable();
                Finding {
                    kind: "dns.nxdomain",
                    severity: Severity::Warning,
                    title: format!("{name} does not exist: NXDOMAIN for every try ({} lookup(s) from {} client(s))", f.lookups, f.clients.len()),
                    summary: format!(
                        "Every query for {name}, with each search suffix ({}), got NXDOMAIN.{hint}",
                        f.tried.join(", ")
                    ),
                    evidence: Evidence {
                        display_filter: format!("dns.flags.rcode==3 && dns.qry.name contains \"{}\"", name),
                        frames,
                    },
                    flow: None,
                    details: json!({
                        "qname": name,
                        "tried": f.tried,
                        "clients": f.clients,
                        "lookups": f.lookups,
                        "did_you_mean": near,
                        "same_service_elsewhere": other_ns,
                    }),
                    next_checks: vec![
                        "NXDOMAIN for a Service name: typo or namespace mismatch; prefer fully qualified service names (`<svc>.<ns>.svc.cluster.local`) during incidents".to_string(),
                        "Does the Service exist? `kubectl get svc -A | grep <name>`".to_string(),
                        "CoreDNS view: `kubectl logs -n kube-system deploy/coredns --tail=200` and its Corefile (`kubectl get cm coredns -n kube-system -o yaml`)".to_string(),
                    ],
                    input: ctx.input,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("wbe", "web", 2), 1);
        assert_eq!(edit_distance("web", "web", 2), 0);
        assert_eq!(edit_distance("api", "apix", 2), 1);
        assert_eq!(edit_distance("database", "web", 2), 3);
    }
}
