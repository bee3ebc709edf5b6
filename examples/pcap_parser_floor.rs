//! The floor for reading speed: pcap-parser's own streaming reader, counting
//! records and bytes and nothing else (no decoding). `scripts/bench-compare.sh`
//! times it next to `capsift info`, capinfos and tshark on the same file.
//!
//! Run: `cargo run --release --example pcap_parser_floor -- FILE`

use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use std::fs::File;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcap_parser_floor FILE");
        std::process::exit(1);
    };
    let file = File::open(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1)
    });
    let mut reader = create_reader(1 << 20, file).unwrap_or_else(|e| {
        eprintln!("{path}: {e:?}");
        std::process::exit(1)
    });
    let (mut packets, mut bytes) = (0u64, 0u64);
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::Legacy(b) => {
                        packets += 1;
                        bytes += u64::from(b.caplen);
                    }
                    PcapBlockOwned::NG(b) if b.is_data_block() => packets += 1,
                    _ => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() || reader.refill().is_err() {
                    break;
                }
            }
            Err(e) => {
                eprintln!("{path}: {e:?}");
                break;
            }
        }
    }
    println!("{packets} packets, {bytes} bytes");
}
