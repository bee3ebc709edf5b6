//! `capsift analyze` and `capsift table flows` on real lab captures: each
//! verdict the lab was built to show, and no false alarm where it was not.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn analyze(rel: &str, extra: &[&str]) -> (i32, Value) {
    let p = repo().join(rel);
    let mut args = vec!["analyze", "--format", "json"];
    args.extend_from_slice(extra);
    let ps = p.to_string_lossy().to_string();
    args.push(&ps);
    let r = capsift(&args, None, Duration::from_secs(60));
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{rel}: {e}: {} {}", r.stdout, r.stderr));
    (r.status, v)
}

#[test]
fn unanswered_syn_and_refused_connection() {
    let (status, v) = analyze("captures/lab/tcp-syn-unanswered-refused.pcap", &[]);
    assert_eq!(status, 0);
    let syn = of_kind(&v, "tcp.syn_unanswered");
    assert_eq!(syn.len(), 1, "{:?}", kinds(&v));
    let s = &syn[0];
    assert_eq!(s["severity"], "critical");
    assert_eq!(s["details"]["servers"][0]["server_port"], 8443);
    assert!(s["details"]["syns"].as_u64().unwrap() >= 2);
    assert!(s["evidence"]["display_filter"]
        .as_str()
        .unwrap()
        .contains("tcp.port==8443"));
    assert!(!s["evidence"]["frames"].as_array().unwrap().is_empty());
    assert!(!s["next_checks"].as_array().unwrap().is_empty());
    let refused = of_kind(&v, "tcp.connection_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["details"]["servers"][0]["server_port"], 8081);
    // The successful connection in the same capture is not reported.
    assert!(of_kind(&v, "tcp.reset").is_empty());
    assert!(of_kind(&v, "tcp.retransmissions").is_empty());
}

#[test]
fn fail_on_sets_the_exit_status() {
    let (status, _) = analyze(
        "captures/lab/tcp-syn-unanswered-refused.pcap",
        &["--fail-on", "critical"],
    );
    assert_eq!(status, 3);
    let (status, _) = analyze(
        "captures/synth/geneve-options.pcap",
        &["--fail-on", "warning"],
    );
    assert_eq!(status, 0);
}

#[test]
fn random_loss_is_reported_from_both_ends() {
    for side in ["client", "server"] {
        let (status, v) = analyze(&format!("captures/lab/tcp-loss-{side}.pcap"), &[]);
        assert_eq!(status, 0);
        let r = of_kind(&v, "tcp.retransmissions");
        assert_eq!(r.len(), 1, "{side}: {:?}", kinds(&v));
        let flows = r[0]["details"]["flows"].as_array().unwrap();
        assert!(!flows.is_empty());
        for f in flows {
            assert!(f["retransmissions"].as_u64().unwrap() >= 3);
            assert_eq!(f["flow"]["dst_port"], 8080);
        }
        assert!(of_kind(&v, "tcp.syn_unanswered").is_empty());
    }
}

#[test]
fn copies_at_several_capture_points_are_not_retransmissions() {
    let (status, v) = analyze("captures/lab/vxlan-8472-any.pcap", &[]);
    assert_eq!(status, 0);
    assert!(
        of_kind(&v, "tcp.retransmissions").is_empty(),
        "{:?}",
        kinds(&v)
    );
    let d = of_kind(&v, "capture.duplicate_points");
    assert_eq!(d.len(), 1);
    assert!(d[0]["details"]["copies"].as_u64().unwrap() > 100);
    assert_eq!(d[0]["severity"], "info");
    assert!(v["inputs"][0]["duplicate_copies"].as_u64().unwrap() > 100);
    // The verdict is OK: copies are information, not a problem.
    let r = capsift(
        &[
            "analyze",
            repo()
                .join("captures/lab/vxlan-8472-any.pcap")
                .to_str()
                .unwrap(),
        ],
        None,
        Duration::from_secs(30),
    );
    assert!(r.stdout.starts_with("OK:"), "{}", r.stdout);
}

fn flows_table(rel: &str, extra: &[&str]) -> Vec<Value> {
    table_rows("flows", &repo().join(rel), extra)
}

#[test]
fn without_dedup_the_copies_look_like_tshark_sees_them() {
    let dedup = flows_table("captures/lab/vxlan-8472-any.pcap", &[]);
    let raw = flows_table("captures/lab/vxlan-8472-any.pcap", &["--no-dedup"]);
    let sum =
        |rows: &[Value], col: &str| -> u64 { rows.iter().map(|r| r[col].as_u64().unwrap()).sum() };
    assert_eq!(sum(&dedup, "retransmissions"), 0);
    assert!(sum(&dedup, "copies_skipped") > 100);
    assert!(sum(&raw, "retransmissions") + sum(&raw, "dup_acks") > 50);
}

#[test]
fn flows_table_columns_and_atomic_csv() {
    let rows = flows_table("captures/lab/tcp-loss-server.pcap", &[]);
    assert!(!rows.is_empty());
    for r in &rows {
        for col in [
            "flow_id",
            "first_ts",
            "last_ts",
            "tunnel",
            "outer_src",
            "outer_dst",
            "proto",
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "packets_fwd",
            "packets_rev",
            "bytes_fwd",
            "bytes_rev",
            "state",
            "handshake_rtt_ms",
            "syn_mss_fwd",
            "syn_mss_rev",
            "max_ip_len_fwd",
            "max_ip_len_rev",
            "retransmissions",
            "fast_retransmissions",
            "spurious_retransmissions",
            "out_of_order",
            "lost_segments",
            "dup_acks",
            "zero_windows",
            "window_full",
            "keep_alives",
            "resets",
        ] {
            assert!(r.get(col).is_some(), "missing column {col}");
        }
        assert_eq!(r["dst_port"], 8080);
        assert_eq!(r["syn_mss_fwd"], 1460);
        assert!(r["handshake_rtt_ms"].as_f64().unwrap() > 0.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flows.csv");
    let p = repo().join("captures/lab/tcp-loss-server.pcap");
    let r = capsift(
        &[
            "table",
            "flows",
            "-q",
            "-o",
            out.to_str().unwrap(),
            p.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("capture,flow_id,first_ts"));
    assert_eq!(lines.count(), rows.len());
    // Refuses to overwrite its input.
    let r = capsift(
        &[
            "table",
            "flows",
            "-q",
            "-o",
            p.to_str().unwrap(),
            p.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("refusing"));
}

#[test]
fn stdin_markdown_and_truncated_input() {
    let bytes = std::fs::read(repo().join("captures/lab/tcp-syn-unanswered-refused.pcap")).unwrap();
    let r = capsift(
        &["analyze", "--format", "markdown", "-"],
        Some(&bytes),
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("## capsift verdict"));
    assert!(r.stdout.contains("tcp.syn_unanswered"));
    let (status, v) = analyze("captures/lab/plain-http-sll2-truncated.pcap", &[]);
    assert_eq!(status, 0);
    assert_eq!(v["inputs"][0]["warnings"][0]["kind"], "capture.truncated");
    assert!(v["inputs"][0]["packets"].as_u64().unwrap() > 0);
}

#[test]
fn no_false_alarms_on_healthy_captures() {
    for rel in [
        "captures/synth/geneve-options.pcap",
        "captures/synth/ipip-6in4.pcap",
        "captures/synth/wireguard-51871.pcap",
        "captures/lab/vxlan-4789-eth.pcap",
        "captures/lab/tls-ok.pcap",
    ] {
        let ca = repo().join("captures/lab/tls-lab-ca.pem");
        let (_, v) = analyze(rel, &["--ca-bundle", ca.to_str().unwrap()]);
        let bad: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "info")
            .map(|f| format!("{}: {}", f["kind"], f["title"]))
            .collect();
        assert!(bad.is_empty(), "{rel}: {bad:?}");
    }
}

#[test]
fn copies_are_recognised_when_interfaces_come_in_blocks() {
    // Each interface's packets in one block: time jumps back between blocks.
    let rows = flows_table("captures/lab/vxlan-8472-interleaved.pcapng", &[]);
    let tcp: Vec<&Value> = rows.iter().filter(|r| r["proto"] == "tcp").collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0]["retransmissions"], 0);
    assert_eq!(tcp[0]["out_of_order"], 0);
    assert!(tcp[0]["copies_skipped"].as_u64().unwrap() > 20);
}

#[test]
fn tables_as_parquet_read_back_with_polars() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        repo().join("captures/lab/tls-lab.pcap"),
        repo().join("captures/lab/dns-ndots-storm.pcap"),
    ];
    let ins: Vec<String> = inputs
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    for (table, key) in [("flows", "flow_id"), ("dns", "qname"), ("tls", "sni")] {
        let out = dir.path().join(format!("{table}.parquet"));
        let mut args = vec![
            "table",
            table,
            "-q",
            "--format",
            "parquet",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(ins.iter().map(|s| s.as_str()));
        let r = capsift(&args, None, Duration::from_secs(60));
        assert_eq!(r.status, 0, "{}", r.stderr);
        let df = ParquetReader::new(std::fs::File::open(&out).unwrap())
            .finish()
            .unwrap();
        let mut args = vec!["table", table, "-q", "--format", "ndjson"];
        args.extend(ins.iter().map(|s| s.as_str()));
        let nd = capsift(&args, None, Duration::from_secs(60));
        assert_eq!(df.height(), nd.stdout.lines().count(), "{table}");
        assert!(df.column(key).is_ok(), "{table}: {key}");
        assert!(df.column("capture").is_ok());
    }
    // Parquet needs a file.
    let r = capsift(
        &["table", "flows", "--format", "parquet", &ins[0]],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 1);
}
