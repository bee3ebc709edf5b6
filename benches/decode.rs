//! Read + decode throughput, on captures shipped in `captures/` (held in
//! memory, so the disk is out of the measurement) and, when present, on the
//! generated mixed node capture in `bench-data/` (see docs/PERFORMANCE.md).
//!
//! Run: `cargo bench --bench decode`

use capsift::capture::CaptureReader;
use capsift::decode::{decode, DecodeConfig};
use capsift::info::InfoAccumulator;
use divan::counter::BytesCount;
use divan::Bencher;
use std::io::Cursor;
use std::path::PathBuf;

fn main() {
    divan::main();
}

fn load(rel: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(p).ok()
}

/// The shipped captures used here, concatenated in spirit: each is read whole.
const SHIPPED: &[&str] = &[
    "captures/lab/vxlan-8472-any.pcap",
    "captures/lab/tcp-loss-server.pcap",
    "captures/synth/geneve-options.pcap",
    "captures/synth/wireguard-51871.pcap",
];

fn read_only(bytes: &[u8]) -> u64 {
    let mut r = CaptureReader::from_reader(Box::new(Cursor::new(bytes.to_vec()))).unwrap();
    let mut n = 0u64;
    while let Some(p) = r.next_packet() {
        n += p.data.len() as u64;
    }
    n
}

fn read_decode(bytes: &[u8], cfg: &DecodeConfig) -> usize {
    let mut r = CaptureReader::from_reader(Box::new(Cursor::new(bytes.to_vec()))).unwrap();
    let mut layers = 0;
    while let Some(p) = r.next_packet() {
        layers += decode(cfg, p.link_type, p.data).layers.len();
    }
    layers
}

fn read_decode_info(bytes: &[u8], cfg: &DecodeConfig) -> u64 {
    let mut r = CaptureReader::from_reader(Box::new(Cursor::new(bytes.to_vec()))).unwrap();
    let mut acc = InfoAccumulator::default();
    while let Some(p) = r.next_packet() {
        let d = decode(cfg, p.link_type, p.data);
        acc.add(&p, &d);
    }
    acc.finish("bench", &r).packets
}

#[divan::bench(args = SHIPPED)]
fn shipped_read(b: Bencher, file: &str) {
    let Some(bytes) = load(file) else { return };
    b.counter(BytesCount::new(bytes.len()))
        .bench(|| read_only(divan::black_box(&bytes)));
}

#[divan::bench(args = SHIPPED)]
fn shipped_read_decode(b: Bencher, file: &str) {
    let Some(bytes) = load(file) else { return };
    let cfg = DecodeConfig::default();
    b.counter(BytesCount::new(bytes.len()))
        .bench(|| read_decode(divan::black_box(&bytes), &cfg));
}

#[divan::bench(args = SHIPPED)]
fn shipped_info(b: Bencher, file: &str) {
    let Some(bytes) = load(file) else { return };
    let cfg = DecodeConfig::default();
    b.counter(BytesCount::new(bytes.len()))
        .bench(|| read_decode_info(divan::black_box(&bytes), &cfg));
}

/// The first 64 MB of the generated mixed capture, if it was generated.
#[divan::bench(sample_count = 10)]
fn mixed_64mb_info(b: Bencher) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-data/mixed-100M.pcap");
    let Ok(mut bytes) = std::fs::read(p) else {
        eprintln!("bench-data/mixed-100M.pcap missing: run scripts/bench-compare.sh first");
        return;
    };
    bytes.truncate(64 << 20);
    let cfg = DecodeConfig::default();
    b.counter(BytesCount::new(bytes.len()))
        .bench(|| read_decode_info(divan::black_box(&bytes), &cfg));
}
