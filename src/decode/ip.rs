//! IPv4 and IPv6 headers, with IPv4 options, fragments and IPv6 extension
//! headers. A view covers the header; the payload handed on is bounded by
//! the header's length fields *and* by the bytes captured.

use super::link::{be16, be32};
use super::Malformed;
use std::net::{Ipv4Addr, Ipv6Addr};

pub mod proto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const IPV4: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT: u8 = 59;
    pub const DSTOPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
}

/// Where the IP payload ends and whether the capture cut it.
#[derive(Debug, Clone, Copy)]
pub struct PayloadBounds {
    /// Payload length the header claims (None: length field 0, i.e. TSO/BIG TCP).
    pub claimed: Option<usize>,
    /// Payload bytes actually present.
    pub present: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Ipv4View<'a> {
    header: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4View<'a> {
    pub const MIN_LEN: usize = 20;

    /// Check the header; returns the view and the payload slice.
    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::MIN_LEN {
            return Err(Malformed::Short);
        }
        if b[0] >> 4 != 4 {
            return Err(Malformed::Field("ipv4 version"));
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < Self::MIN_LEN {
            return Err(Malformed::Field("ipv4 header length"));
        }
        if b.len() < ihl {
            return Err(Malformed::Short);
        }
        let total = usize::from(be16(b, 2));
        let end = if total == 0 {
            // Length 0: a TSO/BIG TCP super-frame, the frame gives the length.
            b.len()
        } else if total < ihl {
            return Err(Malformed::Field("ipv4 total length"));
        } else {
            total.min(b.len())
        };
        let payload = &b[ihl..end];
        Ok((
            Ipv4View {
                header: &b[..ihl],
                payload,
            },
            payload,
        ))
    }

    pub fn header_len(&self) -> usize {
        self.header.len()
    }
    pub fn header(&self) -> &'a [u8] {
        self.header
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.header[1]
    }
    pub fn total_len(&self) -> u16 {
        be16(self.header, 2)
    }
    pub fn ident(&self) -> u16 {
        be16(self.header, 4)
    }
    pub fn dont_fragment(&self) -> bool {
        self.header[6] & 0x40 != 0
    }
    pub fn more_fragments(&self) -> bool {
        self.header[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.header, 6) & 0x1fff) * 8
    }
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.header[8]
    }
    pub fn protocol(&self) -> u8 {
        self.header[9]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.header, 10)
    }
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.header[12],
            self.header[13],
            self.header[14],
            self.header[15],
        )
    }
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.header[16],
            self.header[17],
            self.header[18],
            self.header[19],
        )
    }
    pub fn options(&self) -> &'a [u8] {
        &self.header[Self::MIN_LEN..]
    }
    pub fn bounds(&self) -> PayloadBounds {
        let total = usize::from(self.total_len());
        PayloadBounds {
            claimed: (total != 0).then(|| total.saturating_sub(self.header_len())),
            present: self.payload.len(),
        }
    }
    /// The payload bytes captured (bounded by the total length).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// IPv6 fixed header plus the extension headers that follow it.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6View<'a> {
    header: &'a [u8],
    /// Fixed header plus extension headers.
    full_len: usize,
    /// The protocol after the extension headers.
    upper: u8,
    fragment: Option<Ipv6Fragment>,
    payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    pub offset: usize,
    pub more: bool,
    pub ident: u32,
}

/// More extension headers than any sane packet has: stop there.
const MAX_EXT_HEADERS: usize = 16;

impl<'a> Ipv6View<'a> {
    pub const FIXED_LEN: usize = 40;

    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::FIXED_LEN {
            return Err(Malformed::Short);
        }
        if b[0] >> 4 != 6 {
            return Err(Malformed::Field("ipv6 version"));
        }
        let plen = usize::from(be16(b, 4));
        let end = if plen == 0 {
            // Jumbogram / BIG TCP: the hop-by-hop jumbo option or the frame gives the length.
            b.len()
        } else {
            (Self::FIXED_LEN + plen).min(b.len())
        };
        let mut next = b[6];
        let mut at = Self::FIXED_LEN;
        let mut fragment = None;
        for _ in 0..MAX_EXT_HEADERS {
            let len = match next {
                proto::HOPOPT | proto::ROUTING | proto::DSTOPTS | proto::MOBILITY => {
                    let l = b.get(at + 1).ok_or(Malformed::Short)?;
                    (usize::from(*l) + 1) * 8
                }
                proto::AH => {
                    let l = b.get(at + 1).ok_or(Malformed::Short)?;
                    (usize::from(*l) + 2) * 4
                }
                proto::FRAGMENT => {
                    if at + 8 > end {
                        return Err(Malformed::Short);
                    }
                    let off = be16(b, at + 2);
                    fragment = Some(Ipv6Fragment {
                        offset: usize::from(off >> 3) * 8,
                        more: off & 1 == 1,
                        ident: be32(b, at + 4),
                    });
                    8
                }
                _ => break,
            };
            if at + len > end {
                return Err(Malformed::Short);
            }
            next = b[at];
            at += len;
            if matches!(fragment, Some(f) if f.offset != 0) {
                // Later fragments carry no further headers.
                break;
            }
        }
        let payload = &b[at..end];
        Ok((
            Ipv6View {
                header: &b[..Self::FIXED_LEN],
                full_len: at,
                upper: next,
                fragment,
                payload,
            },
            payload,
        ))
    }

    /// The fixed 40-byte header.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }
    pub fn traffic_class(&self) -> u8 {
        ((be16(self.header, 0) >> 4) & 0xff) as u8
    }
    pub fn flow_label(&self) -> u32 {
        be32(self.header, 0) & 0x000f_ffff
    }
    pub fn payload_len(&self) -> u16 {
        be16(self.header, 4)
    }
    pub fn next_header(&self) -> u8 {
        self.header[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.header[7]
    }
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.header[8..24]);
        Ipv6Addr::from(a)
    }
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.header[24..40]);
        Ipv6Addr::from(a)
    }
    /// Fixed header plus extension headers.
    pub fn header_len(&self) -> usize {
        self.full_len
    }
    /// The upper-layer protocol after all extension headers.
    pub fn upper_protocol(&self) -> u8 {
        self.upper
    }
    pub fn fragment(&self) -> Option<Ipv6Fragment> {
        self.fragment
    }
    pub fn bounds(&self) -> PayloadBounds {
        let plen = usize::from(self.payload_len());
        PayloadBounds {
            claimed: (plen != 0).then(|| (plen + Self::FIXED_LEN).saturating_sub(self.full_len)),
            present: self.payload.len(),
        }
    }
    /// The payload after the extension headers, as captured.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An IPv4/UDP header from a real DNS query (tcpdump's dns_udp.pcap).
    const V4: [u8; 28] = [
        0x45, 0x00, 0x00, 0x3c, 0x1b, 0x2a, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 192, 168, 1, 10,
        192, 168, 1, 1, 0xd4, 0x31, 0x00, 0x35, 0x00, 0x28, 0x00, 0x00,
    ];

    #[test]
    fn ipv4_fields_and_truncated_payload() {
        let (v, p) = Ipv4View::new_checked(&V4).unwrap();
        assert_eq!(v.protocol(), proto::UDP);
        assert!(v.dont_fragment());
        assert!(!v.is_fragment());
        assert_eq!(v.src(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(p.len(), 8);
        let b = v.bounds();
        assert_eq!(b.claimed, Some(40));
        assert_eq!(b.present, 8);
    }

    #[test]
    fn ipv4_rejects_lying_lengths() {
        let mut bad = V4;
        bad[0] = 0x44; // IHL 16 bytes
        assert!(Ipv4View::new_checked(&bad).is_err());
        let mut bad = V4;
        bad[0] = 0x4f; // IHL 60 bytes, more than present
        assert!(Ipv4View::new_checked(&bad).is_err());
        let mut bad = V4;
        bad[2] = 0;
        bad[3] = 10; // total length shorter than the header
        assert!(Ipv4View::new_checked(&bad).is_err());
    }

    #[test]
    fn ipv6_walks_extension_headers() {
        let mut b = vec![0u8; 40 + 8 + 8 + 8];
        b[0] = 0x60;
        b[4] = 0;
        b[5] = 24;
        b[6] = proto::HOPOPT;
        b[40] = proto::FRAGMENT; // hop-by-hop, 8 bytes
        b[48] = proto::UDP; // fragment header: offset 0, more fragments
        b[48 + 3] = 1;
        let (v, p) = Ipv6View::new_checked(&b).unwrap();
        assert_eq!(v.upper_protocol(), proto::UDP);
        assert_eq!(v.header_len(), 56);
        assert_eq!(
            v.fragment(),
            Some(Ipv6Fragment {
                offset: 0,
                more: true,
                ident: 0
            })
        );
        assert_eq!(p.len(), 8);
        // An extension header running past the packet is refused.
        b[41] = 200;
        assert!(Ipv6View::new_checked(&b).is_err());
    }
}
