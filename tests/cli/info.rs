//! `capsift info` on the captures shipped in `captures/`: real lab captures
//! (kernel VXLAN, tcpdump -i any, dumpcap pcapng) and synthetic tunnels.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn file_info(rel: &str) -> Value {
    let (status, v) = info_json(&repo().join(rel));
    assert_eq!(status, 0, "{rel}: {v}");
    v["files"][0].clone()
}

fn hints(f: &Value) -> Vec<String> {
    f["cni_hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["cni"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_shipped_capture_reads_cleanly() {
    for p in captures_under(&repo().join("captures")) {
        let (status, v) = info_json(&p);
        let f = &v["files"][0];
        let kinds = warning_kinds(f);
        if p.to_string_lossy().contains("truncated") {
            assert_eq!(kinds, ["capture.truncated"], "{}", p.display());
        } else {
            assert_eq!(status, 0, "{}", p.display());
            assert!(kinds.is_empty(), "{}: {kinds:?}", p.display());
        }
        assert!(f["packets"].as_u64().unwrap() > 0, "{}", p.display());
        assert_eq!(f["undecoded_packets"], 0, "{}", p.display());
    }
}

#[test]
fn tcpdump_any_vxlan_8472_is_sll2_and_flannel() {
    let f = file_info("captures/lab/vxlan-8472-any.pcap");
    assert_eq!(f["link_types"], serde_json::json!(["LINUX_SLL2"]));
    assert_eq!(f["format"], "pcap");
    let vx = &f["tunnels"]["vxlan"];
    assert!(vx["packets"].as_u64().unwrap() > 50);
    assert_eq!(vx["ports"]["8472"], vx["packets"]);
    assert_eq!(vx["vnis"]["42"], vx["packets"]);
    assert!(hints(&f)[0].contains("Flannel"));
    let stacks: Vec<&str> = f["hierarchy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["stack"].as_str().unwrap())
        .collect();
    assert!(
        stacks.contains(&"sll2/ipv4/udp/vxlan/eth/ipv4/tcp"),
        "{stacks:?}"
    );
    assert!(stacks.contains(&"sll2/ipv4/tcp"), "{stacks:?}");
}

#[test]
fn vxlan_4789_vni_4096_nanoseconds_is_calico() {
    let f = file_info("captures/lab/vxlan-4789-eth.pcap");
    assert_eq!(f["ts_resolution"], "ns");
    assert!(f["first_ts"].as_str().unwrap().len() == "2026-01-01T00:00:00.000000000Z".len());
    assert!(f["tunnels"]["vxlan"]["vnis"]["4096"].as_u64().unwrap() > 0);
    assert!(hints(&f).iter().any(|h| h.starts_with("Calico (VXLAN")));
}

#[test]
fn pcapng_with_several_interfaces_and_link_types() {
    let f = file_info("captures/lab/vxlan-8472-any.pcapng");
    assert_eq!(f["format"], "pcapng");
    assert!(f["interfaces"].as_u64().unwrap() >= 2);
    assert!(f["link_types"].as_array().unwrap().len() >= 2);
    assert!(f["tunnels"]["vxlan"]["packets"].as_u64().unwrap() > 0);
}

#[test]
fn synthetic_tunnels_are_recognised() {
    let g = file_info("captures/synth/geneve-options.pcap");
    assert_eq!(g["tunnels"]["geneve"]["packets"], g["packets"]);
    assert!(
        g["tunnels"]["geneve"]["option_classes"]["0x0102"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(hints(&g).iter().any(|h| h.contains("Antrea")));

    let i = file_info("captures/synth/ipip-4in4.pcap");
    assert_eq!(i["tunnels"]["ipip"]["ipv4_in_ipv4"], i["packets"]);
    assert!(hints(&i).iter().any(|h| h.contains("Calico (IP-in-IP")));
    let i6 = file_info("captures/synth/ipip-6in4.pcap");
    assert_eq!(i6["tunnels"]["ipip"]["ipv6_in_ipv4"], i6["packets"]);
    let i46 = file_info("captures/synth/ipip-4in6.pcap");
    assert_eq!(i46["tunnels"]["ipip"]["ipv4_in_ipv6"], i46["packets"]);
    let i66 = file_info("captures/synth/ipip-6in6.pcap");
    assert_eq!(i66["tunnels"]["ipip"]["ipv6_in_ipv6"], i66["packets"]);

    let gre = file_info("captures/synth/gre-key-seq.pcap");
    assert_eq!(gre["tunnels"]["gre"]["packets"], gre["packets"]);
    assert!(!gre["tunnels"]["gre"]["keys"]
        .as_object()
        .unwrap()
        .is_empty());
    let teb = file_info("captures/synth/gre-teb.pcap");
    assert_eq!(teb["tunnels"]["gre"]["packets"], teb["packets"]);

    let wg = file_info("captures/synth/wireguard-51871.pcap");
    let m = &wg["tunnels"]["wireguard"]["messages"];
    assert!(m["handshake_initiation"].as_u64().unwrap() >= 1);
    assert!(m["handshake_response"].as_u64().unwrap() >= 1);
    assert!(m["transport_data"].as_u64().unwrap() >= 10);
    assert!(hints(&wg).iter().any(|h| h.starts_with("Cilium")));

    let q = file_info("captures/synth/vlan-qinq-vxlan.pcap");
    assert_eq!(q["tunnels"]["vlan"]["packets"], q["packets"]);
    assert_eq!(q["tunnels"]["vxlan"]["packets"], q["packets"]);

    let n = file_info("captures/synth/nested-geneve-in-vxlan.pcap");
    assert_eq!(n["tunnels"]["vxlan"]["packets"], n["packets"]);
    assert_eq!(n["tunnels"]["geneve"]["packets"], n["packets"]);
}

#[test]
fn truncated_capture_keeps_its_packets_and_exit_zero() {
    let p = repo().join("captures/lab/plain-http-sll2-truncated.pcap");
    let (status, v) = info_json(&p);
    assert_eq!(status, 0);
    let f = &v["files"][0];
    assert!(f["packets"].as_u64().unwrap() > 10);
    let w = &f["warnings"][0];
    assert_eq!(w["kind"], "capture.truncated");
    assert!(w["offset"].as_u64().unwrap() > 24);
}

#[test]
fn gzip_zstd_and_stdin_give_the_same_counts() {
    use std::io::Write;
    let src = repo().join("captures/lab/vxlan-8472-any.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let (_, plain) = info_json(&src);
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("capture-no-suffix");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let zs = dir.path().join("capture.pcap.zst");
    std::fs::write(&zs, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
    for (p, comp) in [(&gz, "gzip"), (&zs, "zstd")] {
        let (status, v) = info_json(p);
        assert_eq!(status, 0);
        assert_eq!(v["files"][0]["compression"], comp);
        assert_eq!(v["files"][0]["packets"], plain["files"][0]["packets"]);
        assert_eq!(v["files"][0]["tunnels"], plain["files"][0]["tunnels"]);
    }
    let r = capsift(
        &["info", "--json", "-"],
        Some(&std::fs::read(&gz).unwrap()),
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["files"][0]["packets"], plain["files"][0]["packets"]);
}

#[test]
fn text_output_is_for_people() {
    let p = repo().join("captures/synth/geneve-options.pcap");
    let r = capsift(
        &["info", p.to_str().unwrap()],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 0);
    assert!(r.stdout.contains("Overlays:"));
    assert!(r.stdout.contains("Geneve"));
    assert!(r.stdout.contains("CNI hint:"));
}
