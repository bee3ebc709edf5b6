//! Classic pcap framing: a 24-byte file header, then records of a 16-byte
//! header (24 for the "modified" Kuznetzov format) and `caplen` bytes.

use super::buffer::StreamBuffer;
use super::{
    warn_corrupt, warn_truncated, CaptureMeta, LinkType, OpenError, RawPacket, Step, StopReason,
    Timestamp, TsScale, MAX_RECORD_BYTES,
};
use crate::warning::Warnings;
use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header};

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LengthOrder {
    Normal,
    /// Format < 2.3: always swapped.
    Swapped,
    /// Format 2.3: swapped when caplen > len.
    SwappedIfCaplenLarger,
}

pub(super) fn is_magic(m: [u8; 4]) -> bool {
    let le = u32::from_le_bytes(m);
    let be = u32::from_be_bytes(m);
    [MAGIC_US, MAGIC_NS, MAGIC_MODIFIED].contains(&le)
        || [MAGIC_US, MAGIC_NS, MAGIC_MODIFIED].contains(&be)
}

pub(super) struct PcapState {
    /// Files older than format 2.3 store caplen and len the other way round
    /// (libpcap's `swap_lengths`); 2.3 files may too.
    lengths: LengthOrder,
    big_endian: bool,
    modified: bool,
    scale: TsScale,
    link_type: LinkType,
}

impl PcapState {
    pub(super) fn open(
        buf: &mut StreamBuffer,
        meta: &mut CaptureMeta,
        warnings: &mut Warnings,
    ) -> Result<Self, OpenError> {
        if !buf.ensure(24)? {
            return Err(OpenError::BadHeader(format!(
                "the pcap file header needs 24 bytes, the file has {}",
                buf.available().len()
            )));
        }
        let (_, hdr) = parse_pcap_header(&buf.available()[..24])
            .map_err(|e| OpenError::BadHeader(format!("pcap header not recognised: {e:?}")))?;
        let big_endian = hdr.is_bigendian();
        let modified = hdr.is_modified_format() || hdr.magic_number == MAGIC_MODIFIED.swap_bytes();
        let scale = if hdr.is_nanosecond_precision() {
            TsScale::NANOS
        } else {
            TsScale::MICROS
        };
        // The link type field's upper 16 bits carry FCS flags in newer files.
        let link_type = LinkType((hdr.network.0 as u32) & 0x0fff_ffff & 0xffff);
        let lengths = match (hdr.version_major, hdr.version_minor) {
            (2, 0..=2) | (0..=1, _) => LengthOrder::Swapped,
            (2, 3) => LengthOrder::SwappedIfCaplenLarger,
            _ => LengthOrder::Normal,
        };
        if hdr.snaplen == 0 {
            // Seen from some writers meaning "no limit"; harmless, but a
            // file that says it captured nothing deserves a word.
            warnings.push(
                "capture.snaplen_zero",
                || "the pcap file header gives a snaplen of 0 (no limit recorded); each packet's own captured length is used".to_string(),
                Some(16),
                None,
            );
        }
        meta.link_types.insert(link_type);
        meta.ts_resolutions.insert(scale.name());
        meta.sections = 1;
        meta.interfaces = 1;
        buf.consume(24);
        Ok(PcapState {
            lengths,
            big_endian,
            modified,
            scale,
            link_type,
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// (caplen, orig_len) of the record header at the start of `rec`.
    fn lengths(&self, rec: &[u8]) -> (u32, u32) {
        let (a, b) = (self.u32_at(rec, 8), self.u32_at(rec, 12));
        match self.lengths {
            LengthOrder::Normal => (a, b),
            LengthOrder::Swapped => (b, a),
            LengthOrder::SwappedIfCaplenLarger if a > b => (b, a),
            LengthOrder::SwappedIfCaplenLarger => (a, b),
        }
    }

    pub(super) fn next(
        &mut self,
        buf: &mut StreamBuffer,
        warnings: &mut Warnings,
        frames: u64,
    ) -> Result<Step, StopReason> {
        let hdr_len = if self.modified { 24 } else { 16 };
        if !buf.ensure(hdr_len)? {
            let have = buf.available().len();
            if have > 0 {
                warn_truncated(warnings, buf.offset(), frames, have, None);
            }
            return Ok(Step::End);
        }
        let (caplen, _) = self.lengths(buf.available());
        let caplen = caplen as usize;
        if caplen > MAX_RECORD_BYTES {
            warn_corrupt(
                warnings,
                "capture.corrupt_record",
                buf.offset(),
                format!(
                    "record {} claims {caplen} captured bytes (more than the {MAX_RECORD_BYTES}-byte limit): the file is damaged",
                    frames + 1
                ),
            );
            return Err(StopReason::Damaged);
        }
        let record_len = hdr_len + caplen;
        if !buf.ensure(record_len)? {
            let have = buf.available().len();
            warn_truncated(warnings, buf.offset(), frames, have, Some(record_len));
            return Ok(Step::End);
        }
        let rec = &buf.available()[..record_len];
        let (_, orig_len) = self.lengths(rec);
        let (ts_sec, ts_frac) = if self.modified || self.lengths != LengthOrder::Normal {
            // pcap-parser parses neither the modified format big-endian nor
            // swapped length fields; the timestamp is laid out as usual.
            (self.u32_at(rec, 0), self.u32_at(rec, 4))
        } else {
            let parsed = if self.big_endian {
                parse_pcap_frame_be(rec)
            } else {
                parse_pcap_frame(rec)
            };
            match parsed {
                Ok((_, b)) => (b.ts_sec, b.ts_usec),
                Err(e) => {
                    warn_corrupt(
                        warnings,
                        "capture.corrupt_record",
                        buf.offset(),
                        format!("record {} could not be parsed: {e:?}", frames + 1),
                    );
                    return Err(StopReason::Damaged);
                }
            }
        };
        let frac_units = match self.scale {
            TsScale::NANOS => i64::from(ts_frac),
            _ => i64::from(ts_frac) * 1000,
        };
        Ok(Step::Packet(RawPacket {
            record_len,
            data_start: hdr_len,
            data_end: record_len,
            ts: Timestamp::from_parts(i64::from(ts_sec), frac_units),
            has_ts: true,
            orig_len,
            link_type: self.link_type,
            interface: 0,
        }))
    }
}
