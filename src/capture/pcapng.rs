//! pcapng framing: sections, interfaces and packet blocks.
//!
//! Each block's length is checked (at least 12, a multiple of 4, within
//! [`MAX_RECORD_BYTES`], the trailing copy equal to the leading one) before
//! pcap-parser sees the block, and only the blocks capsift needs (SHB, IDB,
//! EPB, SPB) are parsed at all: others are skipped by length, which also
//! avoids pcap-parser 0.17's length underflow on malformed
//! process-information blocks.

use super::buffer::StreamBuffer;
use super::{
    warn_corrupt, warn_truncated, CaptureMeta, LinkType, OpenError, RawPacket, Step, StopReason,
    Timestamp, TsScale, MAX_INTERFACES, MAX_RECORD_BYTES,
};
use crate::warning::Warnings;
use pcap_parser::pcapng::{parse_block_be, parse_block_le, Block};
use pcap_parser::OptionCode;

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 0x0000_0001;
const SPB: u32 = 0x0000_0003;
const NRB: u32 = 0x0000_0004;
const ISB: u32 = 0x0000_0005;
const EPB: u32 = 0x0000_0006;
const DSB: u32 = 0x0000_000a;
const PIB: u32 = 0x8000_0001;
const BOM: u32 = 0x1a2b_3c4d;

struct Interface {
    link_type: LinkType,
    snaplen: u32,
    scale: TsScale,
    offset_secs: i64,
    /// `if_name` and `if_description`, cut to [`MAX_IF_TEXT`] characters.
    name: Option<String>,
    description: Option<String>,
}

/// Longest interface name or description kept (real ones are a few dozen).
const MAX_IF_TEXT: usize = 256;

fn if_text(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .trim_end_matches('\0')
        .chars()
        .take(MAX_IF_TEXT)
        .collect()
}

pub(super) struct PcapngState {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

fn min_len(block_type: u32) -> usize {
    match block_type {
        SHB => 28,
        IDB => 20,
        EPB => 32,
        SPB => 16,
        _ => 12,
    }
}

impl PcapngState {
    pub(super) fn interface_link_type(&self, id: u32) -> Option<LinkType> {
        self.interfaces.get(id as usize).map(|i| i.link_type)
    }

    /// Name and description of an interface of the current section.
    pub(super) fn interface_text(&self, id: u32) -> (Option<&str>, Option<&str>) {
        match self.interfaces.get(id as usize) {
            Some(i) => (i.name.as_deref(), i.description.as_deref()),
            None => (None, None),
        }
    }

    pub(super) fn open(
        buf: &mut StreamBuffer,
        meta: &mut CaptureMeta,
        warnings: &mut Warnings,
    ) -> Result<Self, OpenError> {
        let mut st = PcapngState {
            big_endian: false,
            interfaces: Vec::new(),
        };
        // The first block must be a readable section header.
        match st.next(buf, meta, warnings, 0) {
            Ok(Step::Continue) if meta.sections == 1 => Ok(st),
            Err(StopReason::Io(e)) => Err(OpenError::Io(e)),
            _ => Err(OpenError::BadHeader(
                warnings
                    .to_vec()
                    .first()
                    .map(|w| w.message.clone())
                    .unwrap_or_else(|| "the pcapng section header block is incomplete".into()),
            )),
        }
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    pub(super) fn next(
        &mut self,
        buf: &mut StreamBuffer,
        meta: &mut CaptureMeta,
        warnings: &mut Warnings,
        frames: u64,
    ) -> Result<Step, StopReason> {
        let head_len = 12;
        if !buf.ensure(head_len)? {
            let have = buf.available().len();
            if have > 0 {
                warn_truncated(warnings, buf.offset(), frames, have, None);
            }
            return Ok(Step::End);
        }
        let head = buf.available();
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SHB {
            // A new section may switch byte order.
            let bom = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            if bom == BOM {
                self.big_endian = false;
            } else if bom == BOM.swap_bytes() {
                self.big_endian = true;
            } else {
                warn_corrupt(
                    warnings,
                    "capture.corrupt_block",
                    buf.offset(),
                    format!("section header with an unknown byte-order mark {bom:#010x}"),
                );
                return Err(StopReason::Damaged);
            }
        }
        let block_type = self.u32_at(head, 0);
        let block_len = self.u32_at(head, 4) as usize;
        if block_len < min_len(block_type)
            || !block_len.is_multiple_of(4)
            || block_len > MAX_RECORD_BYTES
        {
            warn_corrupt(
                warnings,
                "capture.corrupt_block",
                buf.offset(),
                format!(
                    "pcapng block of type {block_type:#x} claims a length of {block_len} bytes \
                     (a block needs at least {}, a multiple of 4, at most {MAX_RECORD_BYTES}): the file is damaged",
                    min_len(block_type)
                ),
            );
            return Err(StopReason::Damaged);
        }
        let wanted = matches!(block_type, SHB | IDB | EPB | SPB);
        if !wanted {
            let kind = match block_type {
                NRB => "name_resolution",
                ISB => "interface_statistics",
                DSB => "decryption_secrets",
                PIB => "process_information",
                0x0000_0bad | 0x4000_0bad => "custom",
                0x0000_0009 => "systemd_journal",
                _ => "other",
            };
            *meta.metadata_blocks.entry(kind).or_insert(0) += 1;
            *meta.metadata_bytes.entry(kind).or_insert(0) += block_len as u64;
            if !buf.skip(block_len as u64)? {
                warn_truncated(warnings, buf.offset(), frames, 0, Some(block_len));
                return Ok(Step::End);
            }
            return Ok(Step::Continue);
        }
        if !buf.ensure(block_len)? {
            let have = buf.available().len();
            warn_truncated(warnings, buf.offset(), frames, have, Some(block_len));
            return Ok(Step::End);
        }
        let block = &buf.available()[..block_len];
        let trailer = self.u32_at(block, block_len - 4) as usize;
        if trailer != block_len {
            warn_corrupt(
                warnings,
                "capture.corrupt_block",
                buf.offset(),
                format!(
                    "pcapng block of type {block_type:#x}: leading length {block_len} and trailing length {trailer} differ"
                ),
            );
            return Err(StopReason::Damaged);
        }
        let parsed = if self.big_endian {
            parse_block_be(block)
        } else {
            parse_block_le(block)
        };
        let offset = buf.offset();
        let parsed = match parsed {
            Ok((_, b)) => b,
            Err(e) => {
                // The framing is sound, so a bad block can be skipped.
                warnings.push(
                    "capture.bad_block",
                    || format!("pcapng block of type {block_type:#x} at byte {offset} could not be parsed ({e:?}); it was skipped"),
                    Some(offset),
                    None,
                );
                buf.consume(block_len);
                return Ok(Step::Continue);
            }
        };
        match parsed {
            Block::SectionHeader(shb) => {
                meta.sections += 1;
                self.interfaces.clear();
                for o in &shb.options {
                    if o.code == OptionCode::Comment {
                        meta.add_comment(o.value());
                    }
                }
                buf.consume(block_len);
                Ok(Step::Continue)
            }
            Block::InterfaceDescription(idb) => {
                let scale = match TsScale::from_tsresol(idb.if_tsresol) {
                    Some(s) => s,
                    None => {
                        let r = idb.if_tsresol;
                        warnings.push(
                            "capture.bad_tsresol",
                            || format!("interface at byte {offset} has an unusable if_tsresol {r:#x}; microseconds assumed"),
                            Some(offset),
                            None,
                        );
                        TsScale::MICROS
                    }
                };
                let (mut name, mut description) = (None, None);
                for o in &idb.options {
                    match o.code {
                        OptionCode::Comment => meta.add_comment(o.value()),
                        OptionCode::IfName => name = Some(if_text(o.value())),
                        OptionCode::IfDescription => description = Some(if_text(o.value())),
                        _ => {}
                    }
                }
                if self.interfaces.len() < MAX_INTERFACES {
                    let link_type = LinkType(u32::from(idb.linktype.0 as u16));
                    meta.link_types.insert(link_type);
                    meta.ts_resolutions.insert(scale.name());
                    meta.interfaces += 1;
                    self.interfaces.push(Interface {
                        link_type,
                        snaplen: idb.snaplen,
                        scale,
                        offset_secs: idb.if_tsoffset,
                        name,
                        description,
                    });
                } else {
                    warnings.push(
                        "capture.too_many_interfaces",
                        || format!("more than {MAX_INTERFACES} interfaces in one section (byte {offset}); the rest are ignored"),
                        Some(offset),
                        None,
                    );
                }
                buf.consume(block_len);
                Ok(Step::Continue)
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = self.interfaces.get(epb.if_id as usize) else {
                    let id = epb.if_id;
                    let n = self.interfaces.len();
                    warnings.push(
                        "capture.unknown_interface",
                        || format!("packet at byte {offset} names interface {id}, but the section describes only {n}; such packets are skipped"),
                        Some(offset),
                        None,
                    );
                    buf.consume(block_len);
                    return Ok(Step::Continue);
                };
                let caplen = epb.caplen as usize;
                if caplen > epb.data.len() {
                    let have = epb.data.len();
                    warnings.push(
                        "capture.bad_block",
                        || format!("packet at byte {offset} claims {caplen} captured bytes but its block holds {have}; it was skipped"),
                        Some(offset),
                        None,
                    );
                    buf.consume(block_len);
                    return Ok(Step::Continue);
                }
                for o in &epb.options {
                    if o.code == OptionCode::Comment {
                        meta.add_comment(o.value());
                    }
                }
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                // Offset of the packet bytes inside the block: 28-byte EPB header.
                let data_start = 28;
                Ok(Step::Packet(RawPacket {
                    record_len: block_len,
                    data_start,
                    data_end: data_start + caplen,
                    ts: iface.scale.to_timestamp(units, iface.offset_secs),
                    has_ts: true,
                    orig_len: epb.origlen,
                    link_type: iface.link_type,
                    interface: epb.if_id,
                }))
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = self.interfaces.first() else {
                    warnings.push(
                        "capture.unknown_interface",
                        || format!("simple packet block at byte {offset} before any interface description; skipped"),
                        Some(offset),
                        None,
                    );
                    buf.consume(block_len);
                    return Ok(Step::Continue);
                };
                let mut caplen = (spb.origlen as usize).min(spb.data.len());
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Ok(Step::Packet(RawPacket {
                    record_len: block_len,
                    data_start: 12,
                    data_end: 12 + caplen,
                    ts: Timestamp(0),
                    has_ts: false,
                    orig_len: spb.origlen,
                    link_type: iface.link_type,
                    interface: 0,
                }))
            }
            _ => {
                buf.consume(block_len);
                Ok(Step::Continue)
            }
        }
    }
}
