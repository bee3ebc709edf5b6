//! Reader tests on small captures built byte by byte: every framing rule,
//! both byte orders, and the ways files are cut or lie.

use super::*;
use std::io::Cursor;

fn reader(bytes: Vec<u8>) -> CaptureReader {
    CaptureReader::from_reader(Box::new(Cursor::new(bytes))).expect("opens")
}

fn collect(r: &mut CaptureReader) -> Vec<(u64, Timestamp, u32, LinkType, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push((p.frame, p.ts, p.interface, p.link_type, p.data.to_vec()));
    }
    v
}

fn pcap(big_endian: bool, magic: u32, link: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut b = Vec::new();
    b.extend(w32(magic));
    b.extend(w16(2));
    b.extend(w16(4));
    b.extend(w32(0));
    b.extend(w32(0));
    b.extend(w32(65535));
    b.extend(w32(link));
    for (s, frac, data) in records {
        b.extend(w32(*s));
        b.extend(w32(*frac));
        b.extend(w32(data.len() as u32));
        b.extend(w32(data.len() as u32 + 4));
        b.extend_from_slice(data);
    }
    b
}

#[test]
fn pcap_both_byte_orders_and_resolutions() {
    for be in [false, true] {
        for (magic, frac, nanos) in [(0xa1b2_c3d4u32, 7u32, 7000i64), (0xa1b2_3c4d, 7, 7)] {
            let b = pcap(be, magic, 1, &[(100, frac, b"abc"), (101, 0, b"defg")]);
            let mut r = reader(b);
            assert_eq!(r.format, Format::Pcap);
            let p = collect(&mut r);
            assert_eq!(p.len(), 2);
            assert_eq!(p[0].1, Timestamp(100_000_000_000 + nanos));
            assert_eq!(p[1].4, b"defg");
            assert_eq!(p[1].0, 2);
            assert!(r.warnings.is_empty());
        }
    }
}

#[test]
fn pcap_cut_last_record_warns_with_offset() {
    let b = pcap(
        false,
        0xa1b2_c3d4,
        1,
        &[(1, 0, b"first"), (2, 0, b"second-packet")],
    );
    for cut in [b.len() - 3, b.len() - 13 - 10] {
        let mut r = reader(b[..cut].to_vec());
        let p = collect(&mut r);
        assert_eq!(p.len(), 1);
        let w = r.warnings.to_vec();
        assert_eq!(w[0].kind, "capture.truncated");
        assert_eq!(w[0].offset, Some(24 + 16 + 5));
        assert!(w[0].message.contains("1 complete packets"));
        assert!(!r.damaged);
    }
}

#[test]
fn pcap_huge_caplen_is_corruption_not_allocation() {
    let mut b = pcap(false, 0xa1b2_c3d4, 1, &[(1, 0, b"ok")]);
    b.extend(1u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(3_000_000_000u32.to_le_bytes());
    b.extend(60u32.to_le_bytes());
    b.extend([0u8; 64]);
    let mut r = reader(b);
    assert_eq!(collect(&mut r).len(), 1);
    assert!(r.damaged);
    let w = r.warnings.to_vec();
    assert_eq!(w[0].kind, "capture.corrupt_record");
    assert_eq!(w[0].offset, Some(24 + 16 + 2));
}

#[test]
fn not_a_capture_is_an_open_error() {
    assert!(matches!(
        CaptureReader::from_reader(Box::new(Cursor::new(b"GET / HTTP/1.1\r\n".to_vec()))),
        Err(OpenError::NotACapture { .. })
    ));
    assert!(matches!(
        CaptureReader::from_reader(Box::new(Cursor::new(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0]))),
        Err(OpenError::BadHeader(_))
    ));
    assert!(matches!(
        CaptureReader::from_reader(Box::new(Cursor::new(Vec::new()))),
        Err(OpenError::BadHeader(_))
    ));
}

/// A pcapng writer just big enough for tests.
struct Ng {
    be: bool,
    b: Vec<u8>,
}

impl Ng {
    fn new() -> Self {
        Ng {
            be: false,
            b: Vec::new(),
        }
    }
    fn w32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn w16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut blk = Vec::new();
        blk.extend(self.w32(ty));
        blk.extend(self.w32(len as u32));
        blk.extend_from_slice(body);
        blk.resize(len - 4, 0);
        blk.extend(self.w32(len as u32));
        self.b.extend(blk);
    }
    fn opt(&self, code: u16, val: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend(self.w16(code));
        o.extend(self.w16(val.len() as u16));
        o.extend_from_slice(val);
        o.resize(4 + val.len().div_ceil(4) * 4, 0);
        o
    }
    fn shb(&mut self, be: bool, comment: Option<&str>) {
        self.be = be;
        let mut body = Vec::new();
        body.extend(self.w32(0x1a2b_3c4d));
        body.extend(self.w16(1));
        body.extend(self.w16(0));
        body.extend([0xff; 8]);
        if let Some(c) = comment {
            body.extend(self.opt(1, c.as_bytes()));
            body.extend(self.opt(0, &[]));
        }
        self.block(0x0a0d_0d0a, &body);
    }
    fn idb(&mut self, link: u16, tsresol: Option<u8>) {
        let mut body = Vec::new();
        body.extend(self.w16(link));
        body.extend(self.w16(0));
        body.extend(self.w32(0));
        if let Some(r) = tsresol {
            body.extend(self.opt(9, &[r]));
            body.extend(self.opt(0, &[]));
        }
        self.block(1, &body);
    }
    fn epb(&mut self, ifid: u32, ts: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend(self.w32(ifid));
        body.extend(self.w32((ts >> 32) as u32));
        body.extend(self.w32(ts as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend_from_slice(data);
        body.resize(20 + data.len().div_ceil(4) * 4, 0);
        self.block(6, &body);
    }
    fn spb(&mut self, data: &[u8]) {
        let mut body = Vec::new();
        body.extend(self.w32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body);
    }
}

#[test]
fn pcapng_sections_interfaces_resolutions_and_byte_orders() {
    let mut ng = Ng::new();
    ng.shb(false, Some("made by a test"));
    ng.idb(1, None); // microseconds
    ng.idb(276, Some(9)); // SLL2, nanoseconds
    ng.epb(0, 1_500_000, b"eth-packet");
    ng.epb(1, 2_000_000_123, b"sll2-packet");
    ng.block(4, &[0u8; 8]); // name resolution: skipped, counted
    ng.block(0x8000_0001, &[0u8; 4]); // process information: never parsed
    ng.shb(true, None); // a big-endian section
    ng.idb(101, Some(0x80 | 10)); // raw IP, 2^-10 s
    ng.epb(0, 2048, b"raw");
    ng.spb(b"simple");
    let mut r = reader(ng.b);
    assert_eq!(r.format, Format::Pcapng);
    let p = collect(&mut r);
    assert_eq!(p.len(), 4, "{:?}", r.warnings.to_vec());
    assert_eq!(p[0].1, Timestamp(1_500_000_000));
    assert_eq!(p[0].3, LinkType::ETHERNET);
    assert_eq!(p[1].1, Timestamp(2_000_000_123));
    assert_eq!(p[1].2, 1);
    assert_eq!(p[1].3, LinkType::LINUX_SLL2);
    assert_eq!(p[2].1, Timestamp(2_000_000_000));
    assert_eq!(p[2].3, LinkType::RAW);
    assert_eq!(p[3].4, b"simple");
    assert_eq!(r.meta.sections, 2);
    assert_eq!(r.meta.interfaces, 3);
    assert_eq!(r.meta.comments, vec!["made by a test".to_string()]);
    assert_eq!(r.meta.metadata_blocks.get("name_resolution"), Some(&1));
    assert_eq!(r.meta.metadata_blocks.get("process_information"), Some(&1));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings.to_vec());
}

#[test]
fn pcapng_lying_lengths_and_unknown_interfaces() {
    let mut ng = Ng::new();
    ng.shb(false, None);
    ng.idb(1, None);
    ng.epb(0, 1, b"good");
    ng.epb(7, 1, b"on an interface never described");
    ng.epb(0, 2, b"good again");
    let good_len = ng.b.len();
    // A block whose length is not a multiple of 4.
    ng.b.extend(6u32.to_le_bytes());
    ng.b.extend(37u32.to_le_bytes());
    ng.b.extend([0u8; 40]);
    let mut r = reader(ng.b);
    let p = collect(&mut r);
    assert_eq!(p.len(), 2);
    let kinds: Vec<String> = r.warnings.to_vec().into_iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        ["capture.unknown_interface", "capture.corrupt_block"]
    );
    assert_eq!(r.warnings.to_vec()[1].offset, Some(good_len as u64));
    assert!(r.damaged);
}

#[test]
fn pcapng_trailing_length_mismatch_and_cut_block() {
    let mut ng = Ng::new();
    ng.shb(false, None);
    ng.idb(1, None);
    ng.epb(0, 1, b"one");
    let mut bad = ng.b.clone();
    let n = bad.len();
    bad[n - 4] ^= 0xff;
    let mut r = reader(bad);
    assert_eq!(collect(&mut r).len(), 0);
    assert!(r.damaged);

    ng.epb(0, 2, b"two, to be cut");
    let n = ng.b.len();
    let mut r = reader(ng.b[..n - 5].to_vec());
    assert_eq!(collect(&mut r).len(), 1);
    assert!(r.warnings.contains("capture.truncated"));
    assert!(!r.damaged);
}

use super::buffer::tests::Trickle;

#[test]
fn pipes_with_short_reads_work() {
    let b = pcap(false, 0xa1b2_c3d4, 1, &[(1, 0, b"abc"), (2, 0, b"def")]);
    let mut r = CaptureReader::from_reader(Box::new(Trickle(b, 0))).unwrap();
    assert_eq!(collect(&mut r).len(), 2);
    let mut ng = Ng::new();
    ng.shb(false, None);
    ng.idb(1, None);
    ng.epb(0, 1, b"one");
    let mut r = CaptureReader::from_reader(Box::new(Trickle(ng.b, 0))).unwrap();
    assert_eq!(collect(&mut r).len(), 1);
}

#[test]
fn pcap_before_2_3_has_its_lengths_swapped() {
    // Version 2.0 header; record says (len=100, caplen=3) in the old order.
    let mut b = pcap(false, 0xa1b2_c3d4, 1, &[]);
    b[4..6].copy_from_slice(&2u16.to_le_bytes());
    b[6..8].copy_from_slice(&0u16.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(100u32.to_le_bytes());
    b.extend(3u32.to_le_bytes());
    b.extend_from_slice(b"abc");
    let mut r = reader(b);
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        assert_eq!(p.data, b"abc");
        assert_eq!(p.orig_len, 100);
        n += 1;
    }
    assert_eq!(n, 1);
    assert!(r.warnings.is_empty());
}
