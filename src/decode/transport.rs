//! TCP, UDP, ICMPv4 and ICMPv6 headers.

use super::link::{be16, be32};
use super::Malformed;

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

#[derive(Debug, Clone, Copy)]
pub struct TcpView<'a>(&'a [u8]);

/// Parsed TCP options of one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// Number of SACK blocks, and the blocks (left, right), at most 4.
    pub sack_count: u8,
    pub sack: [(u32, u32); 4],
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
}

impl<'a> TcpView<'a> {
    pub const MIN_LEN: usize = 20;

    /// Returns the view and the segment payload.
    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::MIN_LEN {
            return Err(Malformed::Short);
        }
        let off = usize::from(b[12] >> 4) * 4;
        if off < Self::MIN_LEN {
            return Err(Malformed::Field("tcp data offset"));
        }
        if b.len() < off {
            return Err(Malformed::Short);
        }
        Ok((TcpView(&b[..off]), &b[off..]))
    }

    pub fn src_port(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.0, 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.0, 8)
    }
    pub fn header_len(&self) -> usize {
        self.0.len()
    }
    pub fn flags(&self) -> u8 {
        self.0[13]
    }
    pub fn has(&self, flag: u8) -> bool {
        self.flags() & flag != 0
    }
    pub fn window(&self) -> u16 {
        be16(self.0, 14)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.0, 16)
    }
    /// The TCP header, options included.
    pub fn header(&self) -> &'a [u8] {
        self.0
    }
    pub fn raw_options(&self) -> &'a [u8] {
        &self.0[Self::MIN_LEN..]
    }

    /// Parse the options; malformed options end the walk (what was read is kept).
    pub fn options(&self) -> TcpOptions {
        let mut o = TcpOptions::default();
        let b = self.raw_options();
        let mut i = 0;
        while i < b.len() {
            let kind = b[i];
            match kind {
                0 => break,
                1 => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = b.get(i + 1) else { break };
            let len = usize::from(len);
            if len < 2 || i + len > b.len() {
                break;
            }
            let v = &b[i + 2..i + len];
            match (kind, v.len()) {
                (2, 2) => o.mss = Some(be16(v, 0)),
                (3, 1) => o.window_scale = Some(v[0]),
                (4, 0) => o.sack_permitted = true,
                (5, n) if n % 8 == 0 => {
                    for blk in v.chunks_exact(8).take(4) {
                        o.sack[usize::from(o.sack_count)] = (be32(blk, 0), be32(blk, 4));
                        o.sack_count += 1;
                    }
                }
                (8, 8) => o.timestamps = Some((be32(v, 0), be32(v, 4))),
                _ => {}
            }
            i += len;
        }
        o
    }
}

#[derive(Debug, Clone, Copy)]
pub struct UdpView<'a>(&'a [u8]);

impl<'a> UdpView<'a> {
    pub const LEN: usize = 8;

    /// Returns the view and the datagram payload (bounded by the length field).
    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        let len = usize::from(be16(b, 4));
        let end = if len == 0 {
            // Zero length: jumbogram or a GSO super-frame.
            b.len()
        } else if len < Self::LEN {
            return Err(Malformed::Field("udp length"));
        } else {
            len.min(b.len())
        };
        Ok((UdpView(&b[..Self::LEN]), &b[Self::LEN..end]))
    }
    pub fn src_port(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn length(&self) -> u16 {
        be16(self.0, 4)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.0, 6)
    }
    pub fn header(&self) -> &'a [u8] {
        self.0
    }
}

/// ICMPv4 or ICMPv6 header (the first 8 bytes).
#[derive(Debug, Clone, Copy)]
pub struct IcmpView<'a> {
    bytes: &'a [u8],
    pub v6: bool,
}

impl<'a> IcmpView<'a> {
    pub const LEN: usize = 8;
    pub fn new_checked(b: &'a [u8], v6: bool) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        Ok((
            IcmpView {
                bytes: &b[..Self::LEN],
                v6,
            },
            &b[Self::LEN..],
        ))
    }
    /// The first 8 bytes (type, code, checksum, rest of header).
    pub fn header(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn icmp_type(&self) -> u8 {
        self.bytes[0]
    }
    pub fn code(&self) -> u8 {
        self.bytes[1]
    }
    /// The rest-of-header word (identifier/sequence, MTU, pointer ...).
    pub fn rest(&self) -> u32 {
        be32(self.bytes, 4)
    }

    /// Error messages quote the packet that caused them.
    pub fn is_error(&self) -> bool {
        if self.v6 {
            matches!(self.icmp_type(), 1..=4)
        } else {
            matches!(self.icmp_type(), 3 | 4 | 5 | 11 | 12)
        }
    }

    /// Next-hop MTU of an ICMPv4 fragmentation-needed or ICMPv6 packet-too-big.
    pub fn too_big_mtu(&self) -> Option<u32> {
        if self.v6 {
            (self.icmp_type() == 2).then(|| self.rest())
        } else {
            (self.icmp_type() == 3 && self.code() == 4).then(|| self.rest() & 0xffff)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_syn_options() {
        // A Linux SYN: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
        let mut b = vec![
            0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
        ];
        b.extend_from_slice(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        let (t, payload) = TcpView::new_checked(&b).unwrap();
        assert!(payload.is_empty());
        assert!(t.has(tcp_flags::SYN));
        assert!(!t.has(tcp_flags::ACK));
        let o = t.options();
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.window_scale, Some(7));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamps, Some((9, 0)));
    }

    #[test]
    fn tcp_options_with_lying_length_stop() {
        let mut b = vec![0u8; 24];
        b[12] = 0x60;
        b[20] = 2;
        b[21] = 200;
        let (t, _) = TcpView::new_checked(&b).unwrap();
        assert_eq!(t.options(), TcpOptions::default());
        b[21] = 0; // zero-length option must not loop
        let (t, _) = TcpView::new_checked(&b).unwrap();
        assert_eq!(t.options(), TcpOptions::default());
    }

    #[test]
    fn icmp_too_big() {
        let b = [3, 4, 0, 0, 0, 0, 0x05, 0xc8];
        let (v, _) = IcmpView::new_checked(&b, false).unwrap();
        assert!(v.is_error());
        assert_eq!(v.too_big_mtu(), Some(1480));
        let b6 = [2, 0, 0, 0, 0, 0, 0x05, 0x00];
        let (v, _) = IcmpView::new_checked(&b6, true).unwrap();
        assert_eq!(v.too_big_mtu(), Some(1280));
    }
}
