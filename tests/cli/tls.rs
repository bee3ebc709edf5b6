//! TLS verdicts on the real lab captures: openssl s_server with a lab CA,
//! curl and openssl s_client forced to TLS 1.2 (certificate visible) and
//! TLS 1.3 connections (one completing, one aborted).

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn analyze(rel: &str, ca: bool) -> Value {
    let p = repo().join(rel);
    let ca_path = repo().join("captures/lab/tls-lab-ca.pem");
    let mut args = vec!["analyze", "--format", "json"];
    let ca_s = ca_path.to_string_lossy().to_string();
    if ca {
        args.extend(["--ca-bundle", &ca_s]);
    }
    let ps = p.to_string_lossy().to_string();
    args.push(&ps);
    let r = capsift(&args, None, Duration::from_secs(60));
    assert_eq!(r.status, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn one<'a>(v: &'a Value, kind: &str) -> &'a Value {
    let f: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect();
    assert_eq!(f.len(), 1, "{kind} in {:?}", kinds(v));
    f[0]
}

#[test]
fn good_certificate_with_the_lab_ca_is_ok() {
    let v = analyze("captures/lab/tls-ok.pcap", true);
    assert!(
        !kinds(&v)
            .iter()
            .any(|k| k.starts_with("tls.") && k != "tls.alpn_mismatch"),
        "{:?}",
        kinds(&v)
    );
    // Without the lab CA the same certificate does not chain to a trusted root.
    let v = analyze("captures/lab/tls-ok.pcap", false);
    let f = one(&v, "tls.unknown_issuer");
    assert_eq!(f["details"]["issuer"], "O=capsift lab, CN=capsift lab CA");
}

#[test]
fn sni_not_in_san_is_a_name_mismatch() {
    let v = analyze("captures/lab/tls-name-mismatch.pcap", true);
    let f = one(&v, "tls.name_mismatch");
    let d = &f["details"];
    assert_eq!(d["sni"], "wrong.app.svc.cluster.local");
    assert_eq!(d["san"], serde_json::json!(["web.app.svc.cluster.local"]));
    assert!(d["subject"]
        .as_str()
        .unwrap()
        .contains("web.app.svc.cluster.local"));
    assert!(!d["not_after"].as_str().unwrap().is_empty());
    assert!(f["next_checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().contains("kubectl describe certificate")));
}

#[test]
fn expired_at_capture_time() {
    let v = analyze("captures/lab/tls-expired.pcap", true);
    let f = one(&v, "tls.expired");
    assert!(f["details"]["not_after"]
        .as_str()
        .unwrap()
        .starts_with("2024-01-01"));
    assert_eq!(f["severity"], "critical");
    let alert = one(&v, "tls.alert");
    assert_eq!(alert["details"]["description"], "certificate_expired");
    assert_eq!(alert["details"]["sender"], "client");
}

#[test]
fn other_ca_and_self_signed() {
    let v = analyze("captures/lab/tls-unknown-issuer.pcap", true);
    let f = one(&v, "tls.unknown_issuer");
    assert!(f["details"]["issuer"]
        .as_str()
        .unwrap()
        .contains("capsift other CA"));
    let v = analyze("captures/lab/tls-self-signed.pcap", true);
    let f = one(&v, "tls.self_signed");
    assert_eq!(f["details"]["subject"], f["details"]["issuer"]);
}

#[test]
fn no_sni_is_checked_against_the_server_ip_and_says_so() {
    let v = analyze("captures/lab/tls-no-sni.pcap", true);
    let f = one(&v, "tls.name_mismatch");
    assert!(f["details"]["sni"].is_null());
    assert_eq!(f["details"]["checked_name"], "10.202.2.10");
    assert!(f["title"].as_str().unwrap().contains("no SNI"));
}

#[test]
fn tls13_complete_is_quiet_and_aborted_is_a_heuristic() {
    let v = analyze("captures/lab/tls13-complete.pcap", true);
    assert!(
        !kinds(&v).iter().any(|k| k.starts_with("tls.")),
        "{:?}",
        kinds(&v)
    );
    let v = analyze("captures/lab/tls13-aborted.pcap", true);
    let f = one(&v, "tls.handshake_aborted");
    assert_eq!(f["details"]["confidence"], "high");
    assert!(f["summary"].as_str().unwrap().contains("heuristic"));
}

#[test]
fn alpn_h2_refused_and_fallback() {
    let v = analyze("captures/lab/tls-alpn-mismatch.pcap", true);
    let f = one(&v, "tls.alpn_mismatch");
    assert_eq!(f["details"]["refused"], true);
    assert_eq!(f["severity"], "warning");
    let v = analyze("captures/lab/tls-alpn-h2-refused.pcap", true);
    let f = one(&v, "tls.alpn_mismatch");
    assert_eq!(f["details"]["alpn_selected"], "http/1.1");
    assert_eq!(
        f["severity"], "info",
        "h2 with an http/1.1 fallback offered"
    );
}

#[test]
fn tls_table_has_one_row_per_handshake_with_verdicts() {
    let ca = repo().join("captures/lab/tls-lab-ca.pem");
    let rows = table_rows(
        "tls",
        &repo().join("captures/lab/tls-lab.pcap"),
        &["--ca-bundle", ca.to_str().unwrap()],
    );
    let verdicts: Vec<&str> = rows
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "ok",
            "name_mismatch",
            "expired",
            "unknown_issuer",
            "self_signed",
            "name_mismatch",
            "not_visible",
            "not_visible",
            "ok",
            "no_certificate"
        ]
    );
    assert_eq!(rows[0]["version"], "TLS 1.2");
    assert_eq!(rows[6]["version"], "TLS 1.3");
    assert_eq!(rows[8]["alpn_selected"], "http/1.1");
    assert_eq!(rows[9]["alert"], "server:no_application_protocol");
    assert_eq!(rows[0]["cert_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn ca_bundle_errors_are_clear() {
    let p = repo().join("captures/lab/tls-ok.pcap");
    let r = capsift(
        &[
            "analyze",
            "--ca-bundle",
            "/nonexistent.pem",
            p.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("/nonexistent.pem"), "{}", r.stderr);
}
