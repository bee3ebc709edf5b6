//! TLS through a TCP connection: the fuzz input is cut into segments sent
//! alternately by client and server on port 443 (and, with a flag, on 53
//! for DNS over TCP), written as a pcap and analysed, so record
//! reassembly, handshake parsing, certificates and verification all see
//! hostile bytes. The scrubber's TLS record tracker and name collector see
//! the same segments.
#![no_main]
use capsift::scrub::anonymize::{NameHasher, ScrubKey};
use libfuzzer_sys::fuzz_target;

fn packet(
    out: &mut Vec<u8>,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    port: u16,
    payload: &[u8],
) {
    let (src, dst) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2])
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1])
    };
    let (sp, dp) = if from_client {
        (40000u16, port)
    } else {
        (port, 40000u16)
    };
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    let total = (20 + 20 + payload.len()) as u16;
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sp.to_be_bytes());
    p.extend_from_slice(&dp.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    let ts = (out.len() as u32).to_le_bytes();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&ts);
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&p);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let port = if flags & 1 == 1 { 53 } else { 443 };
    let mut pcap = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    packet(&mut pcap, true, cseq, 0, 0x02, port, &[]);
    packet(&mut pcap, false, sseq, cseq + 1, 0x12, port, &[]);
    cseq += 1;
    sseq += 1;
    let key = ScrubKey::from_bytes([3; 32]);
    let mut names = NameHasher::new(&key);
    let mut collector = capsift::scrub::tls::NameCollector::default();
    let mut streams = capsift::scrub::tls::TlsStreams::default();
    let cdir = (
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
        40000,
        port,
    );
    let sdir = (
        "10.0.0.2".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
        port,
        40000,
    );
    collector.segment(cdir, cseq - 1, true, &[], &mut names, None);
    collector.segment(sdir, sseq - 1, true, &[], &mut names, None);
    let mut from_client = true;
    while rest.len() >= 2 {
        let n = (usize::from(rest[0]) << 4 | usize::from(rest[1] & 0x0f)).min(rest.len() - 2);
        let retransmit = rest[1] & 0x10 != 0;
        let seg = &rest[2..2 + n];
        rest = &rest[2 + n..];
        let (seq, ack) = if from_client {
            (cseq, sseq)
        } else {
            (sseq, cseq)
        };
        packet(&mut pcap, from_client, seq, ack, 0x18, port, seg);
        let dir = if from_client { cdir } else { sdir };
        let c = streams.segment(dir, seq, false, seg, false);
        assert!(c.keep <= seg.len());
        collector.segment(dir, seq, false, seg, &mut names, None);
        if !retransmit {
            if from_client {
                cseq = cseq.wrapping_add(n as u32)
            } else {
                sseq = sseq.wrapping_add(n as u32)
            }
            from_client = !from_client;
        }
    }
    collector.finish();
    let _ = capsift::tls::cert::describe(data);
    let opts = capsift::analyze::AnalyzeOptions::default();
    let _ = capsift::analyze::analyze_bytes(pcap, &opts);
});
