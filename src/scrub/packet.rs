//! What to keep and rewrite in one packet, read off its decoded layers:
//! offsets of every address, MAC and checksum at every encapsulation level
//! (ICMP-quoted headers included), the kept length, and where DNS or TLS
//! payload starts. Offsets come from the decoder's views, which are slices
//! of the packet bytes.

use super::checksum::ChecksumField;
use super::tls::DirKey;
use crate::decode::transport::tcp_flags;
use crate::decode::{Decoded, Layer};
use arrayvec::ArrayVec;
use std::net::IpAddr;

/// Fields of one packet, as offsets into its bytes.
#[derive(Debug, Default)]
pub struct Plan {
    /// End of the last header (ICMP quotes included): the default kept length.
    pub headers_end: usize,
    /// IP address fields: offset and length (4 or 16).
    pub ips: ArrayVec<(usize, usize), 40>,
    /// MAC address fields (6 bytes).
    pub macs: ArrayVec<usize, 8>,
    pub checksums: ArrayVec<ChecksumField, 20>,
    /// The innermost transport payload outside ICMP quotes.
    pub transport: Option<Transport>,
}

#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub tcp: bool,
    pub src_port: u16,
    pub dst_port: u16,
    /// Offset and length of the payload as captured.
    pub payload_at: usize,
    pub payload_len: usize,
    pub seq: u32,
    pub syn: bool,
    pub dir: DirKey,
}

fn off(data: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize)
}

/// The enclosing IP header of layer `i`: pseudo-header addresses and where
/// its payload ends.
fn enclosing_ip(
    data: &[u8],
    layers: &[Layer<'_>],
    i: usize,
) -> Option<((usize, usize), usize, bool)> {
    layers[..i].iter().rev().find_map(|l| match l {
        Layer::Ipv4(v) => {
            let o = off(data, v.header());
            let p = v.payload();
            Some(((o + 12, 8), off(data, p) + p.len(), true))
        }
        Layer::Ipv6(v) => {
            let o = off(data, v.header());
            let p = v.payload();
            Some(((o + 8, 32), off(data, p) + p.len(), false))
        }
        _ => None,
    })
}

pub fn plan(data: &[u8], d: &Decoded<'_>) -> Plan {
    let mut p = Plan {
        headers_end: d.headers_end.min(data.len()),
        ..Plan::default()
    };
    let layers = &d.layers[..];
    for (i, l) in layers.iter().enumerate() {
        match l {
            Layer::Ethernet(v) => {
                let o = off(data, v.bytes());
                let _ = p.macs.try_push(o);
                let _ = p.macs.try_push(o + 6);
            }
            Layer::Sll(v) => {
                let b = v.bytes();
                if u16::from_be_bytes([b[4], b[5]]) == 6 {
                    let _ = p.macs.try_push(off(data, b) + 6);
                }
            }
            Layer::Sll2(v) => {
                let b = v.bytes();
                if b[11] == 6 {
                    let _ = p.macs.try_push(off(data, b) + 12);
                }
            }
            Layer::Arp(v) => {
                for hw in [v.sender_hw(), v.target_hw()] {
                    if hw.len() == 6 {
                        let _ = p.macs.try_push(off(data, hw));
                    }
                }
                for pr in [v.sender_proto(), v.target_proto()] {
                    if pr.len() == 4 || pr.len() == 16 {
                        let _ = p.ips.try_push((off(data, pr), pr.len()));
                    }
                }
            }
            Layer::Ipv4(v) => {
                let h = v.header();
                let o = off(data, h);
                let _ = p.ips.try_push((o + 12, 4));
                let _ = p.ips.try_push((o + 16, 4));
                let _ = p.checksums.try_push(ChecksumField {
                    field: o + 10,
                    start: o,
                    end: o + h.len(),
                    pseudo: None,
                    udp: false,
                });
            }
            Layer::Ipv6(v) => {
                let o = off(data, v.header());
                let _ = p.ips.try_push((o + 8, 16));
                let _ = p.ips.try_push((o + 24, 16));
            }
            Layer::Tcp(v) => {
                if let Some((pseudo, end, _)) = enclosing_ip(data, layers, i) {
                    let o = off(data, v.header());
                    let _ = p.checksums.try_push(ChecksumField {
                        field: o + 16,
                        start: o,
                        end,
                        pseudo: Some(pseudo),
                        udp: false,
                    });
                }
            }
            Layer::Udp(v) => {
                if let Some((pseudo, end, v4)) = enclosing_ip(data, layers, i) {
                    let o = off(data, v.header());
                    let _ = p.checksums.try_push(ChecksumField {
                        field: o + 6,
                        start: o,
                        end,
                        pseudo: Some(pseudo),
                        udp: v4,
                    });
                }
            }
            Layer::Icmp(v) => {
                if let Some((pseudo, end, _)) = enclosing_ip(data, layers, i) {
                    let o = off(data, v.header());
                    let _ = p.checksums.try_push(ChecksumField {
                        field: o + 2,
                        start: o,
                        end,
                        pseudo: v.v6.then_some(pseudo),
                        udp: false,
                    });
                }
            }
            Layer::Gre(v) => {
                let b = v.bytes();
                if v.has_checksum() {
                    if let Some((_, end, _)) = enclosing_ip(data, layers, i) {
                        let o = off(data, b);
                        let _ = p.checksums.try_push(ChecksumField {
                            field: o + 4,
                            start: o,
                            end,
                            pseudo: None,
                            udp: false,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if !d.fragment {
        let outer = d.outer_layers();
        let ip = outer.iter().rev().find_map(|l| match l {
            Layer::Ipv4(v) => Some((IpAddr::V4(v.src()), IpAddr::V4(v.dst()))),
            Layer::Ipv6(v) => Some((IpAddr::V6(v.src()), IpAddr::V6(v.dst()))),
            _ => None,
        });
        let last = outer.last();
        let t = match (last, ip) {
            (Some(Layer::Tcp(v)), Some((s, dst))) => Some((
                true,
                v.src_port(),
                v.dst_port(),
                v.seq(),
                v.has(tcp_flags::SYN),
                s,
                dst,
            )),
            (Some(Layer::Udp(v)), Some((s, dst))) => {
                Some((false, v.src_port(), v.dst_port(), 0, false, s, dst))
            }
            _ => None,
        };
        if let Some((tcp, sp, dp, seq, syn, s, dst)) = t {
            let at = if d.payload.is_empty() {
                p.headers_end
            } else {
                off(data, d.payload)
            };
            if at <= data.len() {
                p.transport = Some(Transport {
                    tcp,
                    src_port: sp,
                    dst_port: dp,
                    payload_at: at,
                    payload_len: d.payload.len().min(data.len() - at),
                    seq,
                    syn,
                    dir: (s, dst, sp, dp),
                });
            }
        }
    }
    p
}
