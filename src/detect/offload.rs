//! `capture.offload_superframes`: "packets" far larger than the MTU that
//! GSO/TSO/GRO build at the capture point (host captures). They never travel
//! on the wire in that size, so they are never evidence of an MTU problem.

use super::{Detector, Evidence, Finding, FinishContext, PacketEvent, Severity};
use crate::decode::Layer;
use crate::flow::Flow;
use serde_json::json;

/// IP packets above this are offload artefacts even on jumbo-frame networks.
pub const JUMBO_IP_MAX: u32 = 9216;

/// Is this TCP segment a super-frame? Larger than the MSS its receiver
/// announced (when the handshake was seen), larger than a jumbo frame, or
/// with an IP length of 0 (TSO/BIG TCP).
pub fn is_superframe(flow: Option<&Flow>, dir: usize, seglen: u32, ip_len: u32) -> bool {
    if ip_len == 0 || ip_len > JUMBO_IP_MAX {
        return true;
    }
    // The sender in `dir` may send at most the MSS the other side announced.
    match flow.and_then(|f| f.syn_mss[1 - dir.min(1)]) {
        Some(mss) => seglen > u32::from(mss),
        None => false,
    }
}

/// A TCP segment (first copy only) with the sizes the MTU detectors use.
pub(crate) struct TcpSegment<'p, 'a> {
    pub obs: crate::flow::Observation,
    pub flow: &'p Flow,
    pub tcp: crate::decode::transport::TcpView<'a>,
    /// Innermost IP length field (0 for TSO/BIG TCP).
    pub ip_len: u32,
    /// Payload bytes according to the IP header.
    pub seglen: u32,
}

pub(crate) fn tcp_segment<'p, 'a>(ev: &PacketEvent<'p, 'a>) -> Option<TcpSegment<'p, 'a>> {
    let (o, f) = (ev.obs?, ev.flow?);
    if o.copy_of.is_some() || f.proto != 6 {
        return None;
    }
    let layers = ev.decoded.outer_layers();
    let (ip_i, _) = ev.decoded.innermost_ip()?;
    let (ip_len, claimed) = match &layers[ip_i] {
        Layer::Ipv4(v) => (u32::from(v.total_len()), v.bounds().claimed),
        Layer::Ipv6(v) => (u32::from(v.payload_len()) + 40, v.bounds().claimed),
        _ => return None,
    };
    let Some(Layer::Tcp(t)) = layers.get(ip_i + 1) else {
        return None;
    };
    let seglen = claimed.map_or(ev.decoded.payload.len(), |c| {
        c.saturating_sub(t.header_len())
    }) as u32;
    Some(TcpSegment {
        obs: o,
        flow: f,
        tcp: *t,
        ip_len,
        seglen,
    })
}

#[derive(Default)]
pub struct OffloadSuperframes {
    count: u64,
    max_ip_len: u32,
    frames: Vec<u64>,
}

impl Detector for OffloadSuperframes {
    fn packet(&mut self, ev: &PacketEvent<'_, '_>) {
        let Some(TcpSegment {
            obs: o,
            flow: f,
            tcp: _,
            ip_len,
            seglen,
        }) = tcp_segment(ev)
        else {
            return;
        };
        let wire_len = if ip_len == 0 { ev.pkt.orig_len } else { ip_len };
        if seglen > 0 && is_superframe(Some(f), o.dir, seglen, ip_len) {
            self.count += 1;
            self.max_ip_len = self.max_ip_len.max(wire_len);
            if self.frames.len() < 16 {
                self.frames.push(ev.pkt.frame);
            }
        }
    }

    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        if self.count == 0 {
            return Vec::new();
        }
        vec![Finding {
            kind: "capture.offload_superframes",
            severity: Severity::Info,
            title: format!(
                "{} TCP super-frames up to {} bytes: segmentation offload (GSO/TSO/GRO) at the capture point",
                self.count, self.max_ip_len
            ),
            summary: "The capture was taken on a host with segmentation offload: the kernel hands the NIC (or receives \
                      from it) TCP 'packets' of many segments. They are larger than the MSS and the MTU but never \
                      travel on the wire in that size, so capsift does not count them as oversize or MTU evidence."
                .to_string(),
            evidence: Evidence {
                display_filter: super::finding::frames_filter(&self.frames),
                frames: self.frames.clone(),
            },
            flow: None,
            details: json!({"superframes": self.count, "max_ip_len": self.max_ip_len}),
            next_checks: vec![
                "To see wire-sized packets, capture with offloads off on that interface: `ethtool -K <if> gso off tso off gro off` (test systems only)".to_string(),
            ],
            input: ctx.input,
        }]
    }
}
