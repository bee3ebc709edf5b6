//! Grouping one client's queries into lookups (search-list expansions).
//!
//! With `search app.svc.cluster.local svc.cluster.local cluster.local` and
//! `ndots:5`, glibc resolves `api.github.com` by asking, in order,
//! `api.github.com.app.svc.cluster.local`, `...svc.cluster.local`,
//! `...cluster.local` and finally `api.github.com`, each as A and AAAA.
//! Two names belong to one lookup when they share a leading part (the typed
//! name) and what follows it looks like search suffixes: one tail is a
//! label-suffix of the other (nested search lists, the Kubernetes case), or
//! the shared part has two labels or more and both tails are short. The
//! typed name is then the longest shared leading part of all the names.

use super::DnsQuery;
use crate::capture::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;

/// A lookup is over when its client asked nothing related for this long.
const LOOKUP_GAP_NS: i64 = 10_000_000_000;
/// After a name resolved, queries for it within this time (its AAAA after
/// its A) still belong to the lookup; later ones start a new lookup.
const RESOLVED_TAIL_NS: i64 = 1_000_000_000;
/// Open lookups per client (older ones are closed first).
const MAX_OPEN_PER_CLIENT: usize = 32;
/// Distinct names per lookup (a search list has at most 6 domains, ×2 for the absolute try).
const MAX_NAMES: usize = 16;
/// Closed lookups kept; beyond, the oldest are summarised only.
const MAX_CLOSED: usize = 200_000;
/// Clients with open lookups.
const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Lookup {
    pub id: u32,
    pub client: IpAddr,
    /// Distinct names in order of first query.
    pub names: Vec<String>,
    pub queries: Vec<usize>,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// The name that got an answer, and when it was first asked.
    pub resolved: Option<(String, Timestamp)>,
    /// The typed name (computed when closed).
    pub base: String,
    /// Suffixes appended to the typed name, in order (empty string: the name as typed).
    pub suffixes: Vec<String>,
}

impl Lookup {
    pub fn is_expansion(&self) -> bool {
        self.names.len() >= 2
    }
}

#[derive(Default)]
pub struct LookupGrouper {
    open: HashMap<IpAddr, Vec<Lookup>>,
    pub closed: Vec<Lookup>,
    next_id: u32,
    pub dropped: u64,
}

fn labels(n: &str) -> Vec<&str> {
    if n.is_empty() {
        Vec::new()
    } else {
        n.split('.').collect()
    }
}

fn common_prefix<'a>(a: &[&'a str], b: &[&'a str]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn is_label_suffix(long: &[&str], short: &[&str]) -> bool {
    short.len() <= long.len() && long[long.len() - short.len()..] == *short
}

/// Could `a` and `b` be two tries of one lookup?
fn related(a: &str, b: &str) -> bool {
    let (la, lb) = (labels(a), labels(b));
    let cp = common_prefix(&la, &lb);
    if cp == 0 {
        return false;
    }
    let (ta, tb) = (&la[cp..], &lb[cp..]);
    is_label_suffix(ta, tb)
        || is_label_suffix(tb, ta)
        || (cp >= 2 && ta.len() <= 4 && tb.len() <= 4)
}

impl LookupGrouper {
    pub fn query(&mut self, i: usize, queries: &mut [DnsQuery]) {
        let (client, ts) = (queries[i].client.0, queries[i].ts);
        let name = queries[i].qname.clone();
        if !self.open.contains_key(&client) && self.open.len() >= MAX_CLIENTS {
            self.dropped += 1;
            return;
        }
        let mut open = self.open.remove(&client).unwrap_or_default();
        // Close what went quiet.
        let (stale, mut live): (Vec<Lookup>, Vec<Lookup>) = open
            .drain(..)
            .partition(|l| ts.0.saturating_sub(l.last_ts.0) > LOOKUP_GAP_NS);
        for l in stale {
            self.close(l, queries);
        }
        let pos = live.iter().position(|l| {
            if l.names.contains(&name) {
                // The same name again: its other record type, or a retry.
                // Once resolved, only what follows at once belongs here.
                return match &l.resolved {
                    Some((_, at)) => ts.0.saturating_sub(at.0) < RESOLVED_TAIL_NS,
                    None => true,
                };
            }
            if l.resolved.is_some() || l.names.len() >= MAX_NAMES {
                return false;
            }
            let base_ok = if l.names.len() >= 2 {
                let base = labels(&l.base);
                common_prefix(&labels(&name), &base) == base.len()
            } else {
                true
            };
            base_ok && l.names.last().is_some_and(|last| related(last, &name))
        });
        let id = match pos {
            Some(p) => {
                let l = &mut live[p];
                if !l.names.contains(&name) {
                    l.names.push(name);
                    l.base = shared_base(&l.names);
                }
                l.queries.push(i);
                l.last_ts = ts;
                l.id
            }
            None => {
                if live.len() >= MAX_OPEN_PER_CLIENT {
                    let oldest = live.remove(0);
                    self.close(oldest, queries);
                }
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                live.push(Lookup {
                    id,
                    client,
                    base: name.clone(),
                    names: vec![name],
                    queries: vec![i],
                    first_ts: ts,
                    last_ts: ts,
                    resolved: None,
                    suffixes: Vec::new(),
                });
                id
            }
        };
        queries[i].lookup = Some(id);
        self.open.insert(client, live);
    }

    /// A response arrived for query `i`.
    pub fn answered(&mut self, i: usize, queries: &[DnsQuery], resolved: bool) {
        let q = &queries[i];
        let Some(id) = q.lookup else { return };
        if let Some(l) = self
            .open
            .get_mut(&q.client.0)
            .and_then(|v| v.iter_mut().find(|l| l.id == id))
        {
            if let Some(t) = q.latency_ns {
                l.last_ts = Timestamp(q.last_sent.0.saturating_add(t)).max(l.last_ts);
            }
            if resolved && l.resolved.is_none() {
                let first_ask = l
                    .queries
                    .iter()
                    .filter(|&&j| queries[j].qname == q.qname)
                    .map(|&j| queries[j].ts)
                    .min()
                    .unwrap_or(q.ts);
                l.resolved = Some((q.qname.clone(), first_ask));
            }
        }
    }

    fn close(&mut self, mut l: Lookup, queries: &mut [DnsQuery]) {
        l.base = shared_base(&l.names);
        if l.is_expansion() {
            let nb = labels(&l.base).len();
            l.suffixes = l.names.iter().map(|n| labels(n)[nb..].join(".")).collect();
            for &j in &l.queries {
                if queries[j].qname != l.base {
                    queries[j].search_base = Some(l.base.clone());
                }
            }
        }
        if self.closed.len() < MAX_CLOSED {
            self.closed.push(l);
        } else {
            self.dropped += 1;
        }
    }

    pub fn finish(&mut self, queries: &mut [DnsQuery]) {
        let mut all: Vec<Lookup> = self.open.drain().flat_map(|(_, v)| v).collect();
        all.sort_by_key(|l| l.first_ts);
        for l in all {
            self.close(l, queries);
        }
        self.closed.sort_by_key(|l| l.first_ts);
    }
}

/// The longest leading part (in labels) that all names share.
fn shared_base(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let f = labels(first);
    let n = names
        .iter()
        .skip(1)
        .map(|x| common_prefix(&f, &labels(x)))
        .min()
        .unwrap_or(f.len());
    f[..n].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_between_tries() {
        assert!(related(
            "api.github.com.app.svc.cluster.local",
            "api.github.com.svc.cluster.local"
        ));
        assert!(related("api.github.com.cluster.local", "api.github.com"));
        assert!(related(
            "db.data.app.svc.cluster.local",
            "db.data.svc.cluster.local"
        ));
        assert!(!related(
            "www.google.com.app.svc.cluster.local",
            "www.facebook.com.app.svc.cluster.local"
        ));
        assert!(!related(
            "web.app.svc.cluster.local",
            "db.app.svc.cluster.local"
        ));
        assert!(!related("host.corp.example.com", "host.ec2.internal"));
        assert!(related("a.b.ec2.internal", "a.b.corp.example"));
    }

    #[test]
    fn base_is_the_shared_part() {
        let names: Vec<String> = [
            "api.github.com.app.svc.cluster.local",
            "api.github.com.svc.cluster.local",
            "api.github.com.cluster.local",
            "api.github.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(shared_base(&names), "api.github.com");
    }
}
