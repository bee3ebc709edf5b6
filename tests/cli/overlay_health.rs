//! MTU and overlay-health verdicts on real lab captures (namespaces, veth,
//! kernel VXLAN, nftables dropping ICMP), and no false alarm elsewhere.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn analyze(p: &std::path::Path) -> Value {
    let r = capsift(
        &["analyze", "-q", "--format", "json", p.to_str().unwrap()],
        None,
        Duration::from_secs(60),
    );
    assert!(r.status == 0 || r.status == 2, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn lab(name: &str) -> Value {
    analyze(&repo().join("captures/lab").join(name))
}

/// The black hole's MTU bracket must contain the real path MTU.
fn assert_blackhole(v: &Value, true_mtu: u64) {
    let bh = of_kind(v, "mtu.blackhole");
    assert_eq!(bh.len(), 1, "{:?}", v["findings"]);
    let est = &bh[0]["details"]["mtu_estimate"];
    let (low, high) = (est["low"].as_u64().unwrap(), est["high"].as_u64().unwrap());
    assert!(
        low <= true_mtu && true_mtu < high,
        "{true_mtu} not in [{low}, {high})"
    );
    assert_eq!(bh[0]["severity"], "critical");
    assert!(!bh[0]["details"]["stalled_flows"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(bh[0]["details"]["recommended_mtu"].as_u64().unwrap() <= true_mtu);
    let text = bh[0]["summary"].as_str().unwrap();
    assert!(
        text.contains("ICMP") && text.contains("MTU to set"),
        "{text}"
    );
}

#[test]
fn routed_path_with_icmp_dropped_is_a_black_hole() {
    // Router link MTU 1400, nftables drops the router's frag-needed.
    assert_blackhole(&lab("mtu-blackhole.pcap"), 1400);
}

#[test]
fn same_path_with_icmp_allowed_is_pmtud_not_a_black_hole() {
    let v = lab("mtu-pmtud-ok.pcap");
    assert!(of_kind(&v, "mtu.blackhole").is_empty());
    let tb = of_kind(&v, "mtu.icmp_too_big");
    assert_eq!(tb.len(), 1);
    assert_eq!(tb[0]["details"]["mtu"], 1400);
    assert_eq!(tb[0]["details"]["router"], "10.202.4.1");
}

#[test]
fn vxlan_with_df_and_pod_mtu_1500_black_holes_inside_the_overlay() {
    // Inner 1500 + 50 bytes of VXLAN on a 1500 underlay: the inner path MTU is 1450.
    assert_blackhole(&lab("vxlan-mtu-mismatch-df-pod.pcap"), 1450);
    let any = lab("vxlan-mtu-mismatch-df-node-any.pcap");
    assert_blackhole(&any, 1450);
    // On the node both views of the flow are seen: the tunnel's overhead is
    // known, and with it the exact MTU to set.
    let bh = &of_kind(&any, "mtu.blackhole")[0];
    assert_eq!(bh["details"]["tunnel_overhead"]["bytes"], 50);
    assert_eq!(bh["details"]["recommended_mtu"], 1450);
    assert!(bh["summary"]
        .as_str()
        .unwrap()
        .contains("MTU to set on the pods and the tunnel device: 1450"));
    // From the pod side alone the tunnel is invisible: the usual overlay MTUs
    // inside the bracket are offered, 1450 among them.
    let pod = lab("vxlan-mtu-mismatch-df-pod.pcap");
    let c = &of_kind(&pod, "mtu.blackhole")[0]["details"]["overlay_mtu_candidates"];
    assert!(
        c.as_array().unwrap().iter().any(|x| x["mtu"] == 1450),
        "{c}"
    );
    // The node's ICMP to itself, about its own tunnel packets.
    let tb = of_kind(&any, "mtu.icmp_too_big");
    assert_eq!(tb.len(), 1);
    assert!(tb[0]["summary"].as_str().unwrap().contains("told itself"));
}

#[test]
fn vxlan_without_df_fragments_on_the_underlay() {
    let v = lab("vxlan-mtu-mismatch-underlay.pcap");
    let frag = of_kind(&v, "mtu.fragmented_tunnel");
    assert_eq!(frag.len(), 1);
    assert!(frag[0]["details"]["fragmented_packets"].as_u64().unwrap() > 50);
    let mm = of_kind(&v, "mtu.overlay_mismatch");
    assert_eq!(mm.len(), 1);
    let d = &mm[0]["details"];
    assert_eq!(d["overhead"], 50);
    assert_eq!(d["recommended_mtu"], 1450);
    assert_eq!(d["tunnel"], "vxlan");
    assert!(mm[0]["title"].as_str().unwrap().contains("1450"));
}

#[test]
fn offload_superframes_are_recognised_and_not_mtu_evidence() {
    for f in [
        "mtu-offload-superframes.pcap",
        "mtu-offload-superframes-client.pcap",
    ] {
        let v = lab(f);
        assert_eq!(of_kind(&v, "capture.offload_superframes").len(), 1, "{f}");
        assert!(of_kind(&v, "mtu.blackhole").is_empty(), "{f}");
        assert!(of_kind(&v, "mtu.overlay_mismatch").is_empty(), "{f}");
    }
}

#[test]
fn tunnel_peers_and_arp() {
    let v = lab("vxlan-one-way.pcap");
    let ow = of_kind(&v, "overlay.one_way");
    assert_eq!(ow.len(), 1);
    assert_eq!(ow[0]["details"]["src"], "10.204.1.1");
    assert!(ow[0]["details"]["packets"].as_u64().unwrap() >= 30);
    let v = lab("arp-mac-moved.pcap");
    let mm = of_kind(&v, "arp.mac_moved");
    assert_eq!(mm.len(), 1, "only the silent move, not the announced one");
    assert_eq!(mm[0]["details"]["ip"], "10.204.9.10");
    assert!(of_kind(&lab("arp-mac-moved-announced.pcap"), "arp.mac_moved").is_empty());
    let wg = analyze(&repo().join("captures/synth/wireguard-handshake-unanswered.pcap"));
    let f = of_kind(&wg, "overlay.wireguard_handshake_unanswered");
    assert_eq!(f.len(), 1);
    assert!(f[0]["details"]["initiations"].as_u64().unwrap() >= 2);
    assert_eq!(f[0]["details"]["responses"], 0);
    // Real WireGuard (wireguard-go in two namespaces, captures/lab/README-wireguard.md):
    // a peer with the wrong public key drops every initiation...
    let real = lab("wireguard-real-handshake-unanswered.pcap");
    let f = of_kind(&real, "overlay.wireguard_handshake_unanswered");
    assert_eq!(f.len(), 1, "{:?}", real["findings"]);
    assert_eq!(f[0]["details"]["initiations"], 3);
    assert_eq!(f[0]["details"]["responses"], 0);
    assert_eq!(f[0]["evidence"]["frames"], serde_json::json!([3, 4, 5]));
    // ...while a working tunnel (initiation, response, data) raises nothing.
    let ok = lab("wireguard-real-ok.pcap");
    assert!(
        ok["findings"].as_array().unwrap().is_empty(),
        "{:?}",
        ok["findings"]
    );
}

/// No mtu.*, overlay.* or arp.* warning on captures built to be healthy,
/// on the loss captures (loss is not a black hole), or on the shared corpus.
#[test]
fn no_false_alarms() {
    let meant: [&str; 9] = [
        "wireguard-real-handshake-unanswered.pcap",
        "mtu-blackhole.pcap",
        "vxlan-mtu-mismatch-df-pod.pcap",
        "vxlan-mtu-mismatch-df-node-any.pcap",
        "vxlan-mtu-mismatch-underlay.pcap",
        "vxlan-one-way.pcap",
        "arp-mac-moved.pcap",
        "wireguard-handshake-unanswered.pcap",
        "vxlan-mtu-mismatch-df-underlay.pcap",
    ];
    let mut files = captures_under(&repo().join("captures"));
    if let Some(c) = shared_corpus() {
        files.extend(captures_under(&c));
    }
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if meant.contains(&name.as_str()) {
            continue;
        }
        let v = analyze(&p);
        let bad: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                let k = f["kind"].as_str().unwrap();
                (k.starts_with("mtu.") || k.starts_with("overlay.") || k.starts_with("arp."))
                    && f["severity"] != "info"
            })
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", p.display());
    }
}
