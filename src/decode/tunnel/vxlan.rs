//! VXLAN (RFC 7348): 8 bytes, then an Ethernet frame.

use crate::decode::link::{be16, be32, ethertype};
use crate::decode::Malformed;

#[derive(Debug, Clone, Copy)]
pub struct VxlanView<'a>(&'a [u8]);

impl<'a> VxlanView<'a> {
    pub const LEN: usize = 8;

    pub fn new_checked(b: &'a [u8]) -> Result<(Self, &'a [u8]), Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        Ok((VxlanView(&b[..Self::LEN]), &b[Self::LEN..]))
    }

    pub fn flags(&self) -> u8 {
        self.0[0]
    }
    /// The I flag says the VNI is valid.
    pub fn vni_valid(&self) -> bool {
        self.0[0] & 0x08 != 0
    }
    pub fn vni(&self) -> u32 {
        be32(self.0, 4) >> 8
    }

    /// Strict check for VXLAN on a port not configured for it: flags exactly
    /// "I", reserved bytes zero, and an inner Ethernet frame carrying IPv4,
    /// IPv6 or ARP whose IP version nibble matches.
    pub fn plausible(b: &[u8]) -> bool {
        if b.len() < Self::LEN + 14 + 20 {
            return false;
        }
        if b[0] != 0x08 || b[1] != 0 || b[2] != 0 || b[3] != 0 || b[7] != 0 {
            return false;
        }
        inner_ethernet_plausible(&b[Self::LEN..])
    }
}

/// An Ethernet frame whose EtherType and first payload nibble agree.
pub(crate) fn inner_ethernet_plausible(eth: &[u8]) -> bool {
    if eth.len() < 14 + 20 {
        return false;
    }
    match be16(eth, 12) {
        ethertype::IPV4 => eth[14] >> 4 == 4 && eth[14] & 0x0f >= 5,
        ethertype::IPV6 => eth[14] >> 4 == 6,
        ethertype::ARP => be16(eth, 14) == 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_and_heuristic() {
        let mut b = vec![0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0x00];
        let (v, inner) = VxlanView::new_checked(&b).unwrap();
        assert_eq!(v.vni(), 4096);
        assert!(v.vni_valid());
        assert!(inner.is_empty());
        assert!(!VxlanView::plausible(&b));
        b.extend_from_slice(&[0u8; 12]);
        b.extend_from_slice(&[0x08, 0x00, 0x45]);
        b.extend_from_slice(&[0u8; 19]);
        assert!(VxlanView::plausible(&b));
        b[3] = 1;
        assert!(!VxlanView::plausible(&b));
    }
}
