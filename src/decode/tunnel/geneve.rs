//! Geneve (RFC 8926): 8 bytes, variable-length TLV options, then a frame
//! whose type is given by the protocol field.

use crate::decode::link::{be16, be32, ethertype};
use crate::decode::Malformed;

#[derive(Debug, Clone, Copy)]
pub struct GeneveView<'a>(&'a [u8]);

/// One Geneve option TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    pub class: u16,
    pub opt_type: u8,
    pub data: &'a [u8],
}

impl GeneveOption<'_> {
    /// The high bit of the type marks an option the receiver must understand.
    pub fn critical(&self) -> bool {
        self.opt_type & 0x80 != 0
    }
}

impl<'a> GeneveView<'a> {
    pub const FIXED_LEN: usize = 8;

    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::FIXED_LEN {
            return Err(Malformed::Short);
        }
        if b[0] >> 6 != 0 {
            return Err(Malformed::Field("geneve version"));
        }
        let len = Self::FIXED_LEN + usize::from(b[0] & 0x3f) * 4;
        if b.len() < len {
            return Err(Malformed::Short);
        }
        Ok((GeneveView(&b[..len]), &b[len..]))
    }

    pub fn header_len(&self) -> usize {
        self.0.len()
    }
    pub fn oam(&self) -> bool {
        self.0[1] & 0x80 != 0
    }
    pub fn critical_options_present(&self) -> bool {
        self.0[1] & 0x40 != 0
    }
    pub fn protocol(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn vni(&self) -> u32 {
        be32(self.0, 4) >> 8
    }
    pub fn options(&self) -> GeneveOptions<'a> {
        GeneveOptions(&self.0[Self::FIXED_LEN..])
    }

    /// Strict check for Geneve on a port not configured for it.
    pub fn plausible(b: &[u8]) -> bool {
        let Ok((v, inner)) = GeneveView::new_checked(b) else {
            return false;
        };
        if v.0[1] & 0x3f != 0 || v.0[7] != 0 {
            return false;
        }
        match v.protocol() {
            ethertype::TEB => super::vxlan::inner_ethernet_plausible(inner),
            ethertype::IPV4 => inner.first().is_some_and(|x| x >> 4 == 4),
            ethertype::IPV6 => inner.first().is_some_and(|x| x >> 4 == 6),
            _ => false,
        }
    }
}

/// Iterator over the option TLVs; stops at the first malformed one.
#[derive(Debug, Clone)]
pub struct GeneveOptions<'a>(&'a [u8]);

impl<'a> Iterator for GeneveOptions<'a> {
    type Item = GeneveOption<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = 4 + usize::from(b[3] & 0x1f) * 4;
        if b.len() < len {
            self.0 = &[];
            return None;
        }
        let opt = GeneveOption {
            class: be16(b, 0),
            opt_type: b[2],
            data: &b[4..len],
        };
        self.0 = &b[len..];
        Some(opt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_walked() {
        // opt len 3 words; protocol TEB; VNI 0x1234; one option class 0x0102 type 0x80 with 4 bytes
        let b = [
            0x03, 0x00, 0x65, 0x58, 0x00, 0x12, 0x34, 0x00, 0x01, 0x02, 0x80, 0x01, 1, 2, 3, 4,
            0xff, 0xff, 0x01, 0x00,
        ];
        let (g, inner) = GeneveView::new_checked(&b).unwrap();
        assert_eq!(g.vni(), 0x1234);
        assert_eq!(g.protocol(), 0x6558);
        assert_eq!(g.header_len(), 20);
        assert!(inner.is_empty());
        let opts: Vec<_> = g.options().collect();
        assert_eq!(opts.len(), 2);
        assert_eq!(opts[0].class, 0x0102);
        assert!(opts[0].critical());
        assert_eq!(opts[0].data, &[1, 2, 3, 4]);
        assert_eq!(opts[1].class, 0xffff);
        // Option length running past the header ends the walk.
        let mut bad = b;
        bad[11] = 0x1f;
        let (g, _) = GeneveView::new_checked(&bad).unwrap();
        assert_eq!(g.options().count(), 0);
    }
}
