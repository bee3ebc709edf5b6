//! DNS findings on the real lab captures (dnsmasq as cluster DNS, a glibc
//! client with `search app.svc.cluster.local svc.cluster.local cluster.local`
//! and `ndots:5`).

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn analyze(rel: &str) -> Value {
    let p = repo().join(rel);
    let r = capsift(
        &["analyze", "--format", "json", p.to_str().unwrap()],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn ndots_storm_groups_expansions_and_infers_the_namespace() {
    let v = analyze("captures/lab/dns-ndots-storm.pcap");
    let storms = of_kind(&v, "dns.ndots_storm");
    let gh = storms
        .iter()
        .find(|f| f["details"]["name"] == "api.github.com")
        .expect("api.github.com storm");
    let d = &gh["details"];
    assert_eq!(
        d["search_domains"],
        serde_json::json!([
            "app.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local"
        ])
    );
    assert_eq!(d["namespace"], "app");
    assert_eq!(
        d["queries"], 8,
        "3 expansions and the name itself, A and AAAA each"
    );
    assert_eq!(d["wasted_queries"], 6);
    assert!(d["time_lost_ms"].as_f64().unwrap() > 0.0);
    let text = gh["summary"].as_str().unwrap();
    assert!(text.contains("ndots"));
    assert!(text.contains("trailing dot"));
    // The short service name resolves at the first suffix: no storm.
    assert!(!storms.iter().any(|f| f["details"]["name"] == "web"));
    // `db.data` resolves at the second suffix: two wasted queries.
    let db = storms
        .iter()
        .find(|f| f["details"]["name"] == "db.data")
        .expect("db.data");
    assert_eq!(db["details"]["wasted_queries"], 2);
    // The trailing-dot lookup of api.github.com. is one pair, not a storm of its own.
    assert_eq!(
        storms
            .iter()
            .filter(|f| f["details"]["name"] == "api.github.com")
            .count(),
        1
    );
}

#[test]
fn typo_is_nxdomain_with_a_suggestion() {
    let v = analyze("captures/lab/dns-ndots-storm.pcap");
    let nx = of_kind(&v, "dns.nxdomain");
    assert_eq!(nx.len(), 1, "{nx:?}");
    assert_eq!(nx[0]["details"]["qname"], "wbe");
    assert_eq!(nx[0]["details"]["did_you_mean"], serde_json::json!(["web"]));
    assert!(nx[0]["summary"].as_str().unwrap().contains("typo"));
}

#[test]
fn dropped_queries_are_unanswered_with_five_second_retries() {
    let v = analyze("captures/lab/dns-drops.pcap");
    let un = of_kind(&v, "dns.unanswered");
    assert!(!un.is_empty());
    let total_unanswered: u64 = un
        .iter()
        .map(|f| f["details"]["unanswered"].as_u64().unwrap())
        .sum();
    let late: u64 = un
        .iter()
        .map(|f| f["details"]["answered_after_retry"].as_u64().unwrap())
        .sum();
    let five: u64 = un
        .iter()
        .map(|f| f["details"]["five_second_retries"].as_u64().unwrap())
        .sum();
    assert!(total_unanswered >= 1, "the silent server");
    assert!(
        late >= 10,
        "dropped queries answered after the 5 s retry: {late}"
    );
    assert!(five >= 10);
    assert!(un.iter().any(|f| f["severity"] == "critical"));
    // The storms now cost whole retry periods.
    let storms = of_kind(&v, "dns.ndots_storm");
    assert!(storms
        .iter()
        .any(|f| f["details"]["time_lost_ms"].as_f64().unwrap() > 4000.0));
}

#[test]
fn dns_table_rows() {
    let rows = table_rows(
        "dns",
        &repo().join("captures/lab/dns-ndots-storm.pcap"),
        &[],
    );
    assert!(rows.len() >= 30);
    let first = &rows[0];
    assert_eq!(first["qname"], "api.github.com.app.svc.cluster.local");
    assert_eq!(first["rcode"], "NXDOMAIN");
    assert_eq!(first["search_base"], "api.github.com");
    assert_eq!(first["transport"], "udp");
    assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(
        rows.iter().any(|r| r["transport"] == "tcp"),
        "the truncated answer retried over TCP"
    );
    let resolved = rows
        .iter()
        .find(|r| r["qname"] == "api.github.com" && r["qtype"] == "A")
        .unwrap();
    assert_eq!(resolved["rcode"], "NOERROR");
    assert!(resolved["search_base"].is_null());
    assert!(!resolved["addresses"].as_str().unwrap().is_empty());
}

#[test]
fn dns_over_tcp_with_many_requests_in_one_connection() {
    let Some(corpus) = shared_corpus() else {
        return;
    };
    let p = corpus
        .join("dns/suricata-verify__dns-tcp-multirequest-buffer_dns-tcp-multirequest-buffer.pcap");
    let rows = table_rows("dns", &p, &[]);
    assert_eq!(rows.len(), 20);
    assert!(rows
        .iter()
        .all(|r| r["transport"] == "tcp" && r["rcode"] == "NXDOMAIN"));
}
