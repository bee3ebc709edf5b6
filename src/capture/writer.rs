//! Capture writers: pcapng (default) and classic pcap, both with nanosecond
//! timestamps. Written by hand rather than with pcap-file 2.x, whose pcapng
//! timestamps are wrong; checked by opening the output with tshark
//! (tests/cli/scrub.rs).

use crate::capture::{LinkType, Timestamp};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Pcapng,
    Pcap,
}

/// pcapng interface name and description to write (when kept).
#[derive(Debug, Clone, Default)]
pub struct IfDesc {
    pub name: Option<String>,
    pub description: Option<String>,
}

pub struct CaptureWriter<W: Write> {
    out: W,
    format: OutputFormat,
    /// pcapng: link types of the interfaces written, by number (the input's).
    interfaces: Vec<LinkType>,
    /// pcap: the single link type, once known.
    pcap_link: Option<LinkType>,
    section_comments: Vec<String>,
    header_done: bool,
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

impl<W: Write> CaptureWriter<W> {
    /// `section_comments`: pcapng section header comments (the first names
    /// capsift and the policy); pcap has nowhere to put them.
    pub fn new(out: W, format: OutputFormat, section_comments: Vec<String>) -> Self {
        CaptureWriter {
            out,
            format,
            interfaces: Vec::new(),
            pcap_link: None,
            section_comments,
            header_done: false,
        }
    }

    fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
        buf.extend_from_slice(&code.to_le_bytes());
        buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
        buf.extend_from_slice(value);
        buf.resize(buf.len() + pad4(value.len()) - value.len(), 0);
    }

    /// A pcapng block made of `parts` (already padded to 4 bytes), written
    /// straight to the output: no buffer per packet.
    fn block(&mut self, ty: u32, parts: &[&[u8]]) -> io::Result<()> {
        let len = (12 + parts.iter().map(|p| p.len()).sum::<usize>()) as u32;
        self.out.write_all(&ty.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        for p in parts {
            self.out.write_all(p)?;
        }
        self.out.write_all(&len.to_le_bytes())
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
                for comment in &self.section_comments {
                    // An option's length field holds at most 65535 bytes.
                    let c = &comment.as_bytes()[..comment.len().min(60_000)];
                    Self::option(&mut body, 1, c);
                }
                Self::option(
                    &mut body,
                    4,
                    format!("capsift {}", env!("CARGO_PKG_VERSION")).as_bytes(),
                );
                Self::option(&mut body, 0, &[]);
                self.block(0x0a0d_0d0a, &[&body])
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
                self.out.write_all(&h)
            }
        }
    }

    fn idb(&mut self, link: LinkType, text: &IfDesc) -> io::Result<()> {
        let mut body = Vec::new();
        body.extend_from_slice(&(link.0 as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        if let Some(n) = &text.name {
            Self::option(&mut body, 2, n.as_bytes());
        }
        if let Some(d) = &text.description {
            Self::option(&mut body, 3, d.as_bytes());
        }
        Self::option(&mut body, 9, &[9]); // if_tsresol: nanoseconds
        Self::option(&mut body, 0, &[]);
        self.block(1, &[&body])
    }

    /// The output interface for input interface `id`: numbers are kept
    /// (so `frame.interface_id == N` filters still work), interfaces before
    /// it are described from `describe`, and a new section starts where the
    /// input's did (an interface number reused with another link type).
    fn interface(
        &mut self,
        id: u32,
        link: LinkType,
        describe: &dyn Fn(u32) -> (LinkType, IfDesc),
    ) -> io::Result<u32> {
        let i = id as usize;
        if let Some(l) = self.interfaces.get(i) {
            if *l == link {
                return Ok(id);
            }
            self.header_done = false;
            self.interfaces.clear();
            self.header(link)?;
        }
        while self.interfaces.len() <= i {
            let n = self.interfaces.len() as u32;
            let (l, text) = if n == id {
                (link, describe(n).1)
            } else {
                describe(n)
            };
            self.idb(l, &text)?;
            self.interfaces.push(l);
        }
        Ok(id)
    }

    /// Write one packet: `data` is what is kept, `orig_len` the length on the
    /// wire; `ts` is `None` for a packet that had no timestamp (a pcapng
    /// simple packet block): it is written as an enhanced packet block
    /// stamped 0, because a simple packet block cannot say that its
    /// captured bytes are fewer than its original length.
    /// `describe` gives the link type and kept text of an input interface.
    pub fn packet(
        &mut self,
        input_if: u32,
        link: LinkType,
        describe: &dyn Fn(u32) -> (LinkType, IfDesc),
        ts: Option<Timestamp>,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        self.header(link)?;
        let ns = ts.map_or(0, |t| t.0.max(0) as u64);
        match self.format {
            OutputFormat::Pcapng => {
                let id = self.interface(input_if, link, describe)?;
                let mut head = [0u8; 20];
                head[..4].copy_from_slice(&id.to_le_bytes());
                head[4..8].copy_from_slice(&((ns >> 32) as u32).to_le_bytes());
                head[8..12].copy_from_slice(&(ns as u32).to_le_bytes());
                head[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
                head[16..].copy_from_slice(&orig_len.to_le_bytes());
                let pad = [0u8; 3];
                self.block(6, &[&head, data, &pad[..pad4(data.len()) - data.len()]])
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
                let mut head = [0u8; 16];
                head[..4].copy_from_slice(&((ns / 1_000_000_000) as u32).to_le_bytes());
                head[4..8].copy_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
                head[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
                head[12..].copy_from_slice(&orig_len.to_le_bytes());
                self.out.write_all(&head)?;
                self.out.write_all(data)
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
