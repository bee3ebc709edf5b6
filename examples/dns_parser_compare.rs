//! Measures which DNS parser accepts the DNS messages of real captures:
//! dns-parser (the crate first asked for) against hickory-proto (used).
//!
//! Run: `cargo run --release --example dns_parser_compare -- FILE...`
//! Prints, per parser, messages accepted and rejected, and the rejected
//! messages' first question type (from capsift's own bounded header reader).

use capsift::capture::CaptureReader;
use capsift::decode::{decode, DecodeConfig, Layer};
use capsift::dns::message;
use std::collections::BTreeMap;

fn main() {
    let cfg = DecodeConfig::default();
    let (mut total, mut dp_fail, mut hk_fail) = (0u64, 0u64, 0u64);
    let mut dp_types: BTreeMap<String, u64> = BTreeMap::new();
    let mut hk_types: BTreeMap<String, u64> = BTreeMap::new();
    for path in std::env::args().skip(1) {
        let Ok(mut r) = CaptureReader::open(std::path::Path::new(&path)) else {
            continue;
        };
        while let Some(p) = r.next_packet() {
            let d = decode(&cfg, p.link_type, p.data);
            let is_dns = d.outer_layers().iter().any(|l| match l {
                Layer::Udp(u) => u.src_port() == 53 || u.dst_port() == 53,
                _ => false,
            });
            if !is_dns || d.payload.len() < 12 {
                continue;
            }
            total += 1;
            let kind = message::fallback(d.payload)
                .map(|m| message::qtype_name(m.qtype))
                .unwrap_or_else(|| "unreadable".into());
            if dns_parser::Packet::parse(d.payload).is_err() {
                dp_fail += 1;
                *dp_types.entry(kind.clone()).or_default() += 1;
            }
            if hickory_proto::op::Message::from_vec(d.payload).is_err() {
                hk_fail += 1;
                *hk_types.entry(kind).or_default() += 1;
            }
        }
    }
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            100.0 * n as f64 / total as f64
        }
    };
    println!("DNS messages over UDP/53: {total}");
    println!(
        "dns-parser 0.8 rejected:   {dp_fail} ({:.1} %) by question type {dp_types:?}",
        pct(dp_fail)
    );
    println!(
        "hickory-proto 0.25 rejected: {hk_fail} ({:.1} %) by question type {hk_types:?}",
        pct(hk_fail)
    );
}
