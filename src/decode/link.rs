//! Link layers: Ethernet, 802.1Q/QinQ, Linux cooked (SLL, SLL2), BSD
//! NULL/LOOP, NFLOG and PPP. Each view is a checked window over the packet
//! bytes; accessors never fail after `new_checked`.

use super::Malformed;

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const TEB: u16 = 0x6558;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const IPV6: u16 = 0x86dd;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MC: u16 = 0x8848;
    pub const PPP: u16 = 0x880b;
    pub const ERSPAN_2: u16 = 0x88be;
    pub const ERSPAN_3: u16 = 0x22eb;
}

/// Ethernet II header (802.3 length frames are reported by `is_llc`).
#[derive(Debug, Clone, Copy)]
pub struct EthernetView<'a>(&'a [u8]);

impl<'a> EthernetView<'a> {
    pub const LEN: usize = 14;
    pub fn new_checked(b: &'a [u8]) -> Result<Self, Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        Ok(EthernetView(&b[..Self::LEN]))
    }
    pub fn dst(&self) -> [u8; 6] {
        [
            self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]
    }
    pub fn src(&self) -> [u8; 6] {
        [
            self.0[6], self.0[7], self.0[8], self.0[9], self.0[10], self.0[11],
        ]
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.0, 12)
    }
    /// The 14 header bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Values below 0x0600 are an 802.3 length, followed by an LLC header.
    pub fn is_llc(&self) -> bool {
        self.ethertype() < 0x0600
    }
}

/// One 802.1Q (or 802.1ad) tag: TCI and the EtherType that follows.
#[derive(Debug, Clone, Copy)]
pub struct VlanView<'a> {
    bytes: &'a [u8],
    /// The TPID that announced this tag (0x8100, 0x88a8, 0x9100).
    pub tpid: u16,
}

impl<'a> VlanView<'a> {
    pub const LEN: usize = 4;
    pub fn new_checked(b: &'a [u8], tpid: u16) -> Result<Self, Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        Ok(VlanView {
            bytes: &b[..Self::LEN],
            tpid,
        })
    }
    pub fn id(&self) -> u16 {
        be16(self.bytes, 0) & 0x0fff
    }
    pub fn pcp(&self) -> u8 {
        self.bytes[0] >> 5
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.bytes, 2)
    }
}

/// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`), 16 bytes.
#[derive(Debug, Clone, Copy)]
pub struct SllView<'a>(&'a [u8]);

impl<'a> SllView<'a> {
    pub const LEN: usize = 16;
    pub fn new_checked(b: &'a [u8]) -> Result<Self, Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        Ok(SllView(&b[..Self::LEN]))
    }
    /// 0 to us, 1 broadcast, 2 multicast, 3 to another host, 4 outgoing.
    pub fn packet_type(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn arphrd(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn protocol(&self) -> u16 {
        be16(self.0, 14)
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`, what `tcpdump -i any`
/// writes today), 20 bytes. Unlike v1 it carries the interface index, which
/// tells the pod veth from the node's uplink.
#[derive(Debug, Clone, Copy)]
pub struct Sll2View<'a>(&'a [u8]);

impl<'a> Sll2View<'a> {
    pub const LEN: usize = 20;
    pub fn new_checked(b: &'a [u8]) -> Result<Self, Malformed> {
        if b.len() < Self::LEN {
            return Err(Malformed::Short);
        }
        Ok(Sll2View(&b[..Self::LEN]))
    }
    pub fn protocol(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn ifindex(&self) -> u32 {
        be32(self.0, 4)
    }
    pub fn arphrd(&self) -> u16 {
        be16(self.0, 8)
    }
    pub fn packet_type(&self) -> u8 {
        self.0[10]
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// BSD loopback: a 4-byte address family, host order (NULL) or network order (LOOP).
pub fn null_family(b: &[u8], big_endian_only: bool) -> Result<u32, Malformed> {
    if b.len() < 4 {
        return Err(Malformed::Short);
    }
    let be = be32(b, 0);
    if big_endian_only {
        return Ok(be);
    }
    let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    // The writer's byte order is unknown; the family is a small number.
    Ok(if le < 0x1_0000 { le } else { be })
}

pub fn null_family_ethertype(family: u32) -> Option<u16> {
    match family {
        2 => Some(ethertype::IPV4),
        // AF_INET6 differs by OS: BSD 24, FreeBSD 28, macOS 30, Linux 10.
        10 | 24 | 28 | 30 => Some(ethertype::IPV6),
        _ => None,
    }
}

/// NFLOG (`LINKTYPE_NFLOG`): a 4-byte header then TLVs in host byte order;
/// the TLV of type 9 holds the packet, starting at its IP header.
/// Returns the address family and the packet bytes.
pub fn nflog_payload(b: &[u8]) -> Result<(u8, &[u8]), Malformed> {
    if b.len() < 4 {
        return Err(Malformed::Short);
    }
    let family = b[0];
    let mut at = 4usize;
    // Bounded: each step advances by at least 4 bytes.
    while at + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
        let ty = u16::from_le_bytes([b[at + 2], b[at + 3]]);
        if len < 4 {
            return Err(Malformed::Field("nflog tlv length"));
        }
        let end = at
            .checked_add(len)
            .ok_or(Malformed::Field("nflog tlv length"))?;
        if ty == 9 {
            let end = end.min(b.len());
            return Ok((family, &b[at + 4..end]));
        }
        at = end.div_ceil(4) * 4;
    }
    Err(Malformed::Field("nflog without payload"))
}

/// PPP inside GRE (PPTP): optional address/control `ff 03`, then the protocol.
/// Returns (header length, protocol).
pub fn ppp_header(b: &[u8]) -> Result<(usize, u16), Malformed> {
    let mut at = 0;
    if b.len() >= 2 && b[0] == 0xff && b[1] == 0x03 {
        at = 2;
    }
    let first = *b.get(at).ok_or(Malformed::Short)?;
    if first & 1 == 1 {
        // Protocol-field compression: one byte.
        Ok((at + 1, u16::from(first)))
    } else {
        let second = *b.get(at + 1).ok_or(Malformed::Short)?;
        Ok((at + 2, u16::from_be_bytes([first, second])))
    }
}

/// ARP for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy)]
pub struct ArpView<'a>(&'a [u8]);

impl<'a> ArpView<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, Malformed> {
        if b.len() < 8 {
            return Err(Malformed::Short);
        }
        let hlen = usize::from(b[4]);
        let plen = usize::from(b[5]);
        let len = 8 + 2 * (hlen + plen);
        if b.len() < len {
            return Err(Malformed::Short);
        }
        Ok(ArpView(&b[..len]))
    }
    pub fn operation(&self) -> u16 {
        be16(self.0, 6)
    }
    fn hlen(&self) -> usize {
        usize::from(self.0[4])
    }
    fn plen(&self) -> usize {
        usize::from(self.0[5])
    }
    /// The whole ARP message.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    pub fn is_ethernet_ipv4(&self) -> bool {
        be16(self.0, 0) == 1 && be16(self.0, 2) == 0x0800 && self.hlen() == 6 && self.plen() == 4
    }
    pub fn sender_hw(&self) -> &'a [u8] {
        &self.0[8..8 + self.hlen()]
    }
    pub fn sender_proto(&self) -> &'a [u8] {
        let s = 8 + self.hlen();
        &self.0[s..s + self.plen()]
    }
    pub fn target_hw(&self) -> &'a [u8] {
        let s = 8 + self.hlen() + self.plen();
        &self.0[s..s + self.hlen()]
    }
    pub fn target_proto(&self) -> &'a [u8] {
        let s = 8 + 2 * self.hlen() + self.plen();
        &self.0[s..s + self.plen()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll2_header_fields() {
        // protocol IPv4, reserved, ifindex 7, ARPHRD_ETHER, outgoing, addr len 6, MAC
        let b = [
            0x08, 0x00, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6, 0x02, 0x42, 0xac, 0x11, 0, 2, 0, 0,
        ];
        let v = Sll2View::new_checked(&b).unwrap();
        assert_eq!(v.protocol(), 0x0800);
        assert_eq!(v.ifindex(), 7);
        assert_eq!(v.arphrd(), 1);
        assert_eq!(v.packet_type(), 4);
        assert!(Sll2View::new_checked(&b[..19]).is_err());
    }

    #[test]
    fn nflog_finds_payload_and_rejects_loops() {
        // family 2, version 0, res id 0; TLV len 8 type 1; TLV len 8 type 9
        let b = [
            2, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0, 8, 0, 9, 0, 0x45, 1, 2, 3,
        ];
        let (fam, p) = nflog_payload(&b).unwrap();
        assert_eq!(fam, 2);
        assert_eq!(p, &[0x45, 1, 2, 3]);
        // A zero-length TLV must not loop forever.
        assert!(nflog_payload(&[2, 0, 0, 0, 0, 0, 1, 0]).is_err());
    }

    #[test]
    fn ppp_protocol_forms() {
        assert_eq!(ppp_header(&[0xff, 0x03, 0x00, 0x21]).unwrap(), (4, 0x21));
        assert_eq!(ppp_header(&[0x21, 0x45]).unwrap(), (1, 0x21));
        assert!(ppp_header(&[0xff, 0x03]).is_err());
    }
}
