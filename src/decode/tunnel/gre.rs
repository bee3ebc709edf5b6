//! GRE (RFC 2784/2890) and enhanced GRE (PPTP, RFC 2637), with ERSPAN.

use crate::decode::link::{be16, be32};
use crate::decode::Malformed;

#[derive(Debug, Clone, Copy)]
pub struct GreView<'a>(&'a [u8]);

const C: u16 = 0x8000;
const R: u16 = 0x4000;
const K: u16 = 0x2000;
const S: u16 = 0x1000;
/// Enhanced GRE (version 1): acknowledgment number present.
const A: u16 = 0x0080;

impl<'a> GreView<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < 4 {
            return Err(Malformed::Short);
        }
        let flags = be16(b, 0);
        let version = flags & 0x7;
        let mut len = 4;
        match version {
            0 => {
                if flags & R != 0 {
                    // Source routing (RFC 1701) is obsolete; not decoded.
                    return Err(Malformed::Field("gre routing"));
                }
                if flags & C != 0 {
                    len += 4;
                }
                if flags & K != 0 {
                    len += 4;
                }
                if flags & S != 0 {
                    len += 4;
                }
            }
            1 => {
                if flags & K == 0 {
                    return Err(Malformed::Field("enhanced gre without key"));
                }
                len += 4;
                if flags & S != 0 {
                    len += 4;
                }
                if flags & A != 0 {
                    len += 4;
                }
            }
            _ => return Err(Malformed::Field("gre version")),
        }
        if b.len() < len {
            return Err(Malformed::Short);
        }
        Ok((GreView(&b[..len]), &b[len..]))
    }

    fn flags(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn version(&self) -> u8 {
        (self.flags() & 7) as u8
    }
    pub fn protocol(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn header_len(&self) -> usize {
        self.0.len()
    }
    /// The header bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// A checksum follows the flags (the C bit of version 0).
    pub fn has_checksum(&self) -> bool {
        self.version() == 0 && self.flags() & C != 0
    }
    pub fn key(&self) -> Option<u32> {
        let f = self.flags();
        if f & K == 0 {
            return None;
        }
        let at = if self.version() == 0 && f & C != 0 {
            8
        } else {
            4
        };
        Some(be32(self.0, at))
    }
    pub fn sequence(&self) -> Option<u32> {
        let f = self.flags();
        if f & S == 0 {
            return None;
        }
        let mut at = 4;
        if self.version() == 0 && f & C != 0 {
            at += 4;
        }
        if f & K != 0 {
            at += 4;
        }
        Some(be32(self.0, at))
    }
}

/// Length of the ERSPAN header before the mirrored Ethernet frame.
/// Type II (EtherType 0x88be) has 8 bytes; type I (0x88be without a GRE
/// sequence number) has none; type III (0x22eb) has 12, plus 8 when the
/// optional platform sub-header flag is set.
pub fn erspan_header_len(gre: &GreView<'_>, payload: &[u8]) -> Result<usize, Malformed> {
    match gre.protocol() {
        0x88be if gre.sequence().is_none() => Ok(0),
        0x88be => (payload.len() >= 8).then_some(8).ok_or(Malformed::Short),
        0x22eb => {
            if payload.len() < 12 {
                return Err(Malformed::Short);
            }
            let len = if payload[11] & 0x01 != 0 { 20 } else { 12 };
            (payload.len() >= len)
                .then_some(len)
                .ok_or(Malformed::Short)
        }
        _ => Err(Malformed::Field("not erspan")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_sequence() {
        // K and S set, IPv4, key 0x01020304, seq 7
        let b = [0x30, 0x00, 0x08, 0x00, 1, 2, 3, 4, 0, 0, 0, 7, 0x45];
        let (g, inner) = GreView::new_checked(&b).unwrap();
        assert_eq!(g.protocol(), 0x0800);
        assert_eq!(g.key(), Some(0x0102_0304));
        assert_eq!(g.sequence(), Some(7));
        assert_eq!(inner, &[0x45]);
        // checksum present shifts the key
        let b = [0xa0, 0x00, 0x65, 0x58, 0, 0, 0, 0, 0, 0, 0, 9];
        let (g, _) = GreView::new_checked(&b).unwrap();
        assert_eq!(g.key(), Some(9));
        assert!(GreView::new_checked(&b[..8]).is_err());
    }

    #[test]
    fn pptp_enhanced() {
        // version 1, K and S and A, protocol PPP
        let b = [
            0x30, 0x81, 0x88, 0x0b, 0, 10, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4, 0xff,
        ];
        let (g, inner) = GreView::new_checked(&b).unwrap();
        assert_eq!(g.version(), 1);
        assert_eq!(g.header_len(), 16);
        assert_eq!(inner, &[0xff]);
    }
}
