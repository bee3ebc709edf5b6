//! Capture writers: pcapng (default) and classic pcap, both with nanosecond
//! timestamps. Written by hand rather than with pcap-file 2.x, whose pcapng
//! timestamps are wrong; checked by opening the output with tshark
//! (tests/scrub_cli.rs).

use crate::capture::{LinkType, Timestamp};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Pcapng,
    Pcap,
}

pub struct CaptureWriter<W: Write> {
    out: W,
    format: OutputFormat,
    /// pcapng: output interfaces by (input interface, link type).
    interfaces: Vec<(u32, LinkType)>,
    /// pcap: the single link type, once known.
    pcap_link: Option<LinkType>,
    section_comment: String,
    header_done: bool,
    pub bytes_written: u64,
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

impl<W: Write> CaptureWriter<W> {
    pub fn new(out: W, format: OutputFormat, section_comment: String) -> Self {
        CaptureWriter {
            out,
            format,
            interfaces: Vec::new(),
            pcap_link: None,
            section_comment,
            header_done: false,
            bytes_written: 0,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.bytes_written += b.len() as u64;
        self.out.write_all(b)
    }

    fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
        buf.extend_from_slice(&code.to_le_bytes());
        buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
        buf.extend_from_slice(value);
        buf.resize(buf.len() + pad4(value.len()) - value.len(), 0);
    }

    fn block(&mut self, ty: u32, body: &[u8]) -> io::Result<()> {
        let len = (12 + body.len()) as u32;
        let mut b = Vec::with_capacity(len as usize);
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&len.to_le_bytes());
        self.put(&b)
    }

    fn header(&mut self, link: LinkType) -> io::Result<()> {
        if self.header_done {
            return Ok(());
        }
        self.header_done = true;
        match self.format {
            OutputFormat::Pcapng => {
                let mut body = Vec::new();
                body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
                body.extend_from_slice(&1u16.to_le_bytes());
                body.extend_from_slice(&0u16.to_le_bytes());
                body.extend_from_slice(&(-1i64).to_le_bytes());
                let comment = self.section_comment.clone();
                // The comment is plain text; keep it within an option's length field.
                let c = &comment.as_bytes()[..comment.len().min(60_000)];
                Self::option(&mut body, 1, c);
                Self::option(&mut body, 4, format!("capsift {}", env!("CARGO_PKG_VERSION")).as_bytes());
                Self::option(&mut body, 0, &[]);
                self.block(0x0a0d_0d0a, &body)
            }
            OutputFormat::Pcap => {
                self.pcap_link = Some(link);
                let mut h = Vec::with_capacity(24);
                h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
                h.extend_from_slice(&2u16.to_le_bytes());
                h.extend_from_slice(&4u16.to_le_bytes());
                h.extend_from_slice(&0i32.to_le_bytes());
                h.extend_from_slice(&0u32.to_le_bytes());
                h.extend_from_slice(&262_144u32.to_le_bytes());
                h.extend_from_slice(&link.0.to_le_bytes());
                self.put(&h)
            }
        }
    }

    fn interface(&mut self, input_if: u32, link: LinkType) -> io::Result<u32> {
        if let Some(i) = self.interfaces.iter().position(|&x| x == (input_if, link)) {
            return Ok(i as u32);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&(link.0 as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        Self::option(&mut body, 9, &[9]); // if_tsresol: nanoseconds
        Self::option(&mut body, 0, &[]);
        self.block(1, &body)?;
        self.interfaces.push((input_if, link));
        Ok((self.interfaces.len() - 1) as u32)
    }

    /// Write one packet: `data` is what is kept, `orig_len` the length on the wire.
    pub fn packet(
        &mut self,
        input_if: u32,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        self.header(link)?;
        let ns = ts.0.max(0) as u64;
        match self.format {
            OutputFormat::Pcapng => {
                let id = self.interface(input_if, link)?;
                let mut body = Vec::with_capacity(20 + pad4(data.len()));
                body.extend_from_slice(&id.to_le_bytes());
                body.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
                body.extend_from_slice(&(ns as u32).to_le_bytes());
                body.extend_from_slice(&(data.len() as u32).to_le_bytes());
                body.extend_from_slice(&orig_len.to_le_bytes());
                body.extend_from_slice(data);
                body.resize(20 + pad4(data.len()), 0);
                self.block(6, &body)
            }
            OutputFormat::Pcap => {
                if self.pcap_link != Some(link) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the input mixes link types ({} and {}); classic pcap holds one: use --format pcapng",
                            self.pcap_link.map(|l| l.name()).unwrap_or_default(),
                            link.name()
                        ),
                    ));
                }
                let mut h = Vec::with_capacity(16 + data.len());
                h.extend_from_slice(&((ns / 1_000_000_000) as u32).to_le_bytes());
                h.extend_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&orig_len.to_le_bytes());
                h.extend_from_slice(data);
                self.put(&h)
            }
        }
    }

    /// Make sure a file with no packets still has a valid header.
    pub fn finish(mut self, link_if_empty: LinkType) -> io::Result<W> {
        self.header(link_if_empty)?;
        self.out.flush()?;
        Ok(self.out)
    }
}
