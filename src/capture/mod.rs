//! Reading captures: classic pcap and pcapng, plain or compressed, from a
//! file or stdin, streamed in constant memory.
//!
//! The framing (record and block boundaries, lengths, bounds) is checked
//! here before any bytes are handed to pcap-parser's block parsers, because
//! every length in a capture is hostile: a caplen of 3 GB must become a
//! warning with an offset, never an allocation. A file that ends in the
//! middle of a record (tcpdump killed) yields every complete packet and a
//! `capture.truncated` warning.

mod buffer;
mod linktype;
mod pcap;
mod pcapng;
pub mod source;
#[cfg(test)]
mod tests;
mod timestamp;
pub mod writer;

pub use linktype::LinkType;
pub use source::Compression;
pub use timestamp::{Timestamp, TsScale};

use crate::warning::Warnings;
use buffer::StreamBuffer;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::Path;

/// The largest record capsift accepts (captured bytes of one packet, or one
/// pcapng block). Larger lengths are treated as corruption. Real packets are
/// at most 256 KiB (tcpdump's snaplen); BIG TCP and GSO super-frames stay far
/// below this bound.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Limit on the interfaces one pcapng section may describe.
pub const MAX_INTERFACES: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// One captured packet, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// 1-based frame number, as Wireshark numbers frames.
    pub frame: u64,
    pub ts: Timestamp,
    /// False for pcapng Simple Packet Blocks, which carry no timestamp.
    pub has_ts: bool,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    pub link_type: LinkType,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// Offset of the record in the (decompressed) stream.
    pub offset: u64,
    /// The captured bytes (possibly fewer than `orig_len`).
    pub data: &'a [u8],
}

impl Packet<'_> {
    /// The capture cut this packet short (snaplen).
    pub fn is_snaplen_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// What the capture says about itself, beyond its packets.
#[derive(Debug, Clone, Default)]
pub struct CaptureMeta {
    pub link_types: BTreeSet<LinkType>,
    pub ts_resolutions: BTreeSet<String>,
    pub sections: u64,
    pub interfaces: u64,
    /// pcapng comments (section, interface and packet), the first few kept verbatim.
    pub comments: Vec<String>,
    pub comment_count: u64,
    /// pcapng blocks that carry no packet, by kind (`name_resolution`, ...).
    pub metadata_blocks: BTreeMap<&'static str, u64>,
    /// Bytes of those blocks, by kind.
    pub metadata_bytes: BTreeMap<&'static str, u64>,
}

const MAX_KEPT_COMMENTS: usize = 16;

impl CaptureMeta {
    fn add_comment(&mut self, c: &[u8]) {
        self.comment_count += 1;
        if self.comments.len() < MAX_KEPT_COMMENTS {
            let s = String::from_utf8_lossy(c);
            self.comments
                .push(s.trim_end_matches('\0').chars().take(512).collect());
        }
    }
}

#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
    /// The bytes are neither pcap nor pcapng.
    NotACapture {
        head: Vec<u8>,
    },
    /// The file header itself is damaged or cut.
    BadHeader(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::NotACapture { head } => write!(
                f,
                "not a pcap or pcapng capture (first bytes: {}); capsift reads pcap, pcapng, and either compressed with gzip or zstd",
                head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
            ),
            OpenError::BadHeader(m) => write!(f, "damaged capture header: {m}"),
        }
    }
}

impl std::error::Error for OpenError {}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

enum State {
    Pcap(pcap::PcapState),
    Pcapng(pcapng::PcapngState),
    Done,
}

/// Streams the packets of one capture. Problems that stop the reading are
/// recorded in `warnings`; `next_packet` then returns `None`.
pub struct CaptureReader {
    buf: StreamBuffer,
    state: State,
    /// Bytes of the record returned last, consumed at the next call.
    pending: usize,
    frame: u64,
    pub format: Format,
    pub compression: Compression,
    pub meta: CaptureMeta,
    pub warnings: Warnings,
    /// Set when a problem (not a clean end or a cut last record) stopped reading.
    pub damaged: bool,
}

/// How the reading of a record went.
pub(crate) enum Step {
    /// A packet is ready: consume `len` bytes after handing it out.
    Packet(RawPacket),
    /// A block without a packet was handled; go on.
    Continue,
    /// The end of the stream (warnings already recorded if it was unclean).
    End,
}

/// A packet's scalar fields; its bytes are `available()[data_start..data_end]`.
pub(crate) struct RawPacket {
    pub record_len: usize,
    pub data_start: usize,
    pub data_end: usize,
    pub ts: Timestamp,
    pub has_ts: bool,
    pub orig_len: u32,
    pub link_type: LinkType,
    pub interface: u32,
}

impl CaptureReader {
    /// Open a capture file (`-` for stdin).
    pub fn open(path: &Path) -> Result<CaptureReader, OpenError> {
        let src = source::open(path)?;
        Self::from_source(src.reader, src.compression)
    }

    /// Read a capture from any byte stream (compression is sniffed).
    pub fn from_reader(r: Box<dyn Read + Send>) -> Result<CaptureReader, OpenError> {
        let src = source::from_reader(r)?;
        Self::from_source(src.reader, src.compression)
    }

    fn from_source(
        reader: Box<dyn Read + Send>,
        compression: Compression,
    ) -> Result<CaptureReader, OpenError> {
        let mut buf = StreamBuffer::new(reader);
        buf.ensure(4)?;
        let head = buf.available();
        let magic = head.get(..4).map(|m| [m[0], m[1], m[2], m[3]]);
        let mut meta = CaptureMeta::default();
        let mut warnings = Warnings::default();
        let (state, format) = match magic {
            Some(m) if pcap::is_magic(m) => (
                State::Pcap(pcap::PcapState::open(&mut buf, &mut meta, &mut warnings)?),
                Format::Pcap,
            ),
            Some([0x0a, 0x0d, 0x0d, 0x0a]) => (
                State::Pcapng(pcapng::PcapngState::open(
                    &mut buf,
                    &mut meta,
                    &mut warnings,
                )?),
                Format::Pcapng,
            ),
            None => {
                return Err(OpenError::BadHeader(format!(
                    "the input has only {} byte(s), too few for a capture file header",
                    head.len()
                )))
            }
            _ => {
                return Err(OpenError::NotACapture {
                    head: head.iter().take(8).copied().collect(),
                })
            }
        };
        Ok(CaptureReader {
            buf,
            state,
            pending: 0,
            frame: 0,
            format,
            compression,
            meta,
            warnings,
            damaged: false,
        })
    }

    /// Stream offset where reading currently stands.
    pub fn offset(&self) -> u64 {
        self.buf.offset()
    }

    /// The next packet, or `None` at the end (clean, cut or damaged: see `warnings`).
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        self.buf.consume(self.pending);
        self.pending = 0;
        loop {
            let step = match &mut self.state {
                State::Pcap(s) => s.next(&mut self.buf, &mut self.warnings, self.frame),
                State::Pcapng(s) => s.next(
                    &mut self.buf,
                    &mut self.meta,
                    &mut self.warnings,
                    self.frame,
                ),
                State::Done => return None,
            };
            match step {
                Ok(Step::Continue) => continue,
                Ok(Step::End) => {
                    self.state = State::Done;
                    return None;
                }
                Err(StopReason::Damaged) => {
                    self.damaged = true;
                    self.state = State::Done;
                    return None;
                }
                Err(StopReason::Io(e)) => {
                    let off = self.buf.offset();
                    self.warnings.push(
                        "capture.io_error",
                        || format!("reading stopped at byte {off}: {e}"),
                        Some(off),
                        None,
                    );
                    self.damaged = true;
                    self.state = State::Done;
                    return None;
                }
                Ok(Step::Packet(raw)) => {
                    self.frame += 1;
                    self.pending = raw.record_len;
                    let offset = self.buf.offset();
                    let data = &self.buf.available()[raw.data_start..raw.data_end];
                    return Some(Packet {
                        frame: self.frame,
                        ts: raw.ts,
                        has_ts: raw.has_ts,
                        orig_len: raw.orig_len,
                        link_type: raw.link_type,
                        interface: raw.interface,
                        offset,
                        data,
                    });
                }
            }
        }
    }

    /// Packets read so far.
    /// pcapng `if_name` and `if_description` of an interface of the current
    /// section (pcap files have neither).
    pub fn interface_text(&self, id: u32) -> (Option<&str>, Option<&str>) {
        match &self.state {
            State::Pcapng(s) => s.interface_text(id),
            _ => (None, None),
        }
    }

    /// Link type of an interface of the current section (pcap: the file's).
    pub fn interface_link_type(&self, id: u32) -> Option<LinkType> {
        match &self.state {
            State::Pcapng(s) => s.interface_link_type(id),
            _ => self.meta.link_types.iter().next().copied(),
        }
    }

    pub fn packets_read(&self) -> u64 {
        self.frame
    }
}

pub(crate) enum StopReason {
    /// Corruption that breaks the framing; a warning was recorded.
    Damaged,
    Io(io::Error),
}

impl From<io::Error> for StopReason {
    fn from(e: io::Error) -> Self {
        StopReason::Io(e)
    }
}

/// Record a cut last record: the common case of tcpdump killed mid-write.
pub(crate) fn warn_truncated(
    w: &mut Warnings,
    offset: u64,
    frame: u64,
    have: usize,
    need: Option<usize>,
) {
    let need = match need {
        Some(n) => format!("{n} bytes"),
        None => "a complete header".to_string(),
    };
    w.push(
        "capture.truncated",
        || {
            format!(
                "the capture ends in the middle of a record at byte {offset} ({have} bytes present, the record needs {need}); \
                 {frame} complete packets were read (typical of tcpdump killed while writing)"
            )
        },
        Some(offset),
        None,
    );
}

pub(crate) fn warn_corrupt(w: &mut Warnings, kind: &str, offset: u64, what: String) {
    w.push(
        kind,
        || format!("{what} at byte {offset}; reading stopped there"),
        Some(offset),
        None,
    );
}

/// Is this the start of a pcap or pcapng file, possibly compressed? Used to
/// pick capture files out of directories by content rather than name.
pub fn looks_like_capture(head: &[u8]) -> bool {
    match head.get(..4) {
        Some(m) => {
            pcap::is_magic([m[0], m[1], m[2], m[3]])
                || m == [0x0a, 0x0d, 0x0d, 0x0a]
                || Compression::sniff(head) != Compression::None
        }
        None => false,
    }
}
