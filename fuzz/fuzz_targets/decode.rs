//! One packet through the decoder on every link type capsift knows, then
//! what later stages read off the decoded layers (flow endpoints, the copy
//! fingerprint, the scrub plan).
#![no_main]
use capsift::capture::LinkType;
use capsift::decode::{decode, DecodeConfig};
use libfuzzer_sys::fuzz_target;

const LINKS: [u32; 12] = [1, 101, 113, 276, 0, 108, 228, 229, 239, 9, 12, 14];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let link = LinkType(LINKS[usize::from(sel) % LINKS.len()]);
    let cfg = DecodeConfig::default();
    let d = decode(&cfg, link, pkt);
    assert!(d.headers_end <= pkt.len());
    let _ = d.is_undecoded();
    if let Some(ep) = capsift::flow::key::endpoints(&d) {
        let _ = capsift::flow::dedup::fingerprint(&d, ep.ip_index);
        let _ = capsift::flow::key::tunnel_overhead(&ep.context);
    }
    let plan = capsift::scrub::packet::plan(pkt, &d);
    for (o, n) in &plan.ips {
        assert!(o + n <= plan.headers_end.max(pkt.len()));
    }
});
