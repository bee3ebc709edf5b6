//! `dns.slow`: a DNS server whose answers are slow.
//!
//! Cluster DNS answers cached names in well under a millisecond and
//! forwarded ones in tens of milliseconds; a p99 above [`P99_THRESHOLD_MS`]
//! (over at least [`MIN_ANSWERS`] answers) or any answer slower than
//! [`MAX_THRESHOLD_MS`] makes every lookup behind it slow.

use super::{Detector, Evidence, Finding, FinishContext, Severity};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const P99_THRESHOLD_MS: f64 = 200.0;
pub const MIN_ANSWERS: usize = 20;
pub const MAX_THRESHOLD_MS: f64 = 1000.0;

#[derive(Default)]
pub struct Slow;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1);
    sorted[idx]
}

impl Detector for Slow {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(dns) = ctx.dns else {
            return Vec::new();
        };
        let mut by: BTreeMap<(IpAddr, u16), Vec<(f64, u64)>> = BTreeMap::new();
        for q in &dns.queries {
            if let Some(l) = q.latency_ns {
                if by.len() < 1000 || by.contains_key(&q.server) {
                    by.entry(q.server)
                        .or_default()
                        .push((l as f64 / 1e6, q.response_frame.unwrap_or(q.frame)));
                }
            }
        }
        let mut out = Vec::new();
        for ((ip, port), mut v) in by {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let lat: Vec<f64> = v.iter().map(|x| x.0).collect();
            let (p50, p99, max) = (
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                lat[lat.len() - 1],
            );
            let slow_p99 = lat.len() >= MIN_ANSWERS && p99 > P99_THRESHOLD_MS;
            if !(slow_p99 || max > MAX_THRESHOLD_MS) {
                continue;
            }
            let mut frames: Vec<u64> = v.iter().rev().take(8).map(|x| x.1).collect();
            frames.sort_unstable();
            out.push(Finding {
                kind: "dns.slow",
                severity: Severity::Warning,
                title: format!("DNS server {ip}:{port} answers slowly: p99 {p99:.0} ms, slowest {max:.0} ms ({} answers)", lat.len()),
                summary: format!(
                    "Median {p50:.1} ms, p99 {p99:.1} ms, maximum {max:.1} ms over {} answered queries. Every connection \
                     that starts with a lookup waits this long first.",
                    lat.len()
                ),
                evidence: Evidence {
                    display_filter: format!("dns.time > {:.3}", (P99_THRESHOLD_MS / 1000.0).min(max / 1000.0 * 0.99)),
                    frames,
                },
                flow: None,
                details: json!({"server_ip": ip, "server_port": port, "answers": lat.len(),
                                "p50_ms": p50, "p99_ms": p99, "max_ms": max,
                                "threshold": {"p99_ms": P99_THRESHOLD_MS, "min_answers": MIN_ANSWERS, "max_ms": MAX_THRESHOLD_MS}}),
                next_checks: vec![
                    "CoreDNS CPU throttling: `kubectl top pod -n kube-system -l k8s-app=kube-dns` against its limits".to_string(),
                    "Slow upstream for external names: the forward plugin in `kubectl get cm coredns -n kube-system -o yaml`; NodeLocal DNSCache".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
