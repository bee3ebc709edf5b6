//! Decoding: from link-layer bytes to an encapsulation stack, outer to inner.
//!
//! The decoder is zero-copy: every layer is a view into the packet bytes.
//! Tunnels nest in any order (VXLAN in Geneve in IPv6 in IPv4 ...), up to
//! [`MAX_LAYERS`] layers; ICMP errors have the datagram they quote decoded
//! too, as layers after `quote_start`, so later stages can find the flow an
//! ICMP "fragmentation needed" is about.

pub mod ip;
pub mod link;
pub mod transport;
pub mod tunnel;

use crate::capture::LinkType;
use arrayvec::ArrayVec;
use ip::{proto, Ipv4View, Ipv6View};
use link::{ethertype, ArpView, EthernetView, Sll2View, SllView, VlanView};
use transport::{IcmpView, TcpView, UdpView};
use tunnel::{gre, GeneveView, GreView, VxlanView, WireGuardView};

/// Deeper stacks are cut here with a `decode.depth_limit` warning: real
/// overlays nest three or four tunnels (about a dozen layers) at most,
/// hostile files a thousand. A decoded packet is copied by value, so the
/// bound is also what a packet costs to pass around.
pub const MAX_LAYERS: usize = 16;

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer bytes than the header needs.
    Short,
    /// A field holds a value the protocol forbids.
    Field(&'static str),
}

/// One decoded layer.
#[derive(Debug, Clone, Copy)]
pub enum Layer<'a> {
    Ethernet(EthernetView<'a>),
    Sll(SllView<'a>),
    Sll2(Sll2View<'a>),
    /// BSD loopback header with its address family.
    Null(u32),
    Nflog,
    Vlan(VlanView<'a>),
    Mpls(u32),
    /// 802.2 LLC (e.g. spanning tree): not decoded further.
    Llc,
    Arp(ArpView<'a>),
    Ppp(u16),
    Ipv4(Ipv4View<'a>),
    Ipv6(Ipv6View<'a>),
    Tcp(TcpView<'a>),
    Udp(UdpView<'a>),
    Icmp(IcmpView<'a>),
    Vxlan {
        view: VxlanView<'a>,
        /// The UDP port that carried it.
        port: u16,
        /// Recognised by content on a port not configured for VXLAN.
        heuristic: bool,
    },
    Geneve(GeneveView<'a>),
    Gre(GreView<'a>),
    Erspan,
    WireGuard {
        view: WireGuardView<'a>,
        port: u16,
    },
    /// An IP protocol capsift does not dissect (ESP, SCTP, OSPF ...).
    IpProto(u8),
}

/// Stable small codes for layers, used as compact hierarchy keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LayerKind {
    Ethernet,
    Sll,
    Sll2,
    Null,
    Nflog,
    Vlan,
    Mpls,
    Llc,
    Arp,
    Ppp,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Vxlan,
    Geneve,
    Gre,
    Erspan,
    WireGuard,
    Esp,
    Ah,
    Sctp,
    Igmp,
    Ospf,
    Pim,
    Vrrp,
    OtherIpProto,
}

impl LayerKind {
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Ethernet => "eth",
            LayerKind::Sll => "sll",
            LayerKind::Sll2 => "sll2",
            LayerKind::Null => "null",
            LayerKind::Nflog => "nflog",
            LayerKind::Vlan => "vlan",
            LayerKind::Mpls => "mpls",
            LayerKind::Llc => "llc",
            LayerKind::Arp => "arp",
            LayerKind::Ppp => "ppp",
            LayerKind::Ipv4 => "ipv4",
            LayerKind::Ipv6 => "ipv6",
            LayerKind::Tcp => "tcp",
            LayerKind::Udp => "udp",
            LayerKind::Icmp => "icmp",
            LayerKind::Icmpv6 => "icmpv6",
            LayerKind::Vxlan => "vxlan",
            LayerKind::Geneve => "geneve",
            LayerKind::Gre => "gre",
            LayerKind::Erspan => "erspan",
            LayerKind::WireGuard => "wireguard",
            LayerKind::Esp => "esp",
            LayerKind::Ah => "ah",
            LayerKind::Sctp => "sctp",
            LayerKind::Igmp => "igmp",
            LayerKind::Ospf => "ospf",
            LayerKind::Pim => "pim",
            LayerKind::Vrrp => "vrrp",
            LayerKind::OtherIpProto => "ipproto",
        }
    }
}

impl Layer<'_> {
    pub fn kind(&self) -> LayerKind {
        match self {
            Layer::Ethernet(_) => LayerKind::Ethernet,
            Layer::Sll(_) => LayerKind::Sll,
            Layer::Sll2(_) => LayerKind::Sll2,
            Layer::Null(_) => LayerKind::Null,
            Layer::Nflog => LayerKind::Nflog,
            Layer::Vlan(_) => LayerKind::Vlan,
            Layer::Mpls(_) => LayerKind::Mpls,
            Layer::Llc => LayerKind::Llc,
            Layer::Arp(_) => LayerKind::Arp,
            Layer::Ppp(_) => LayerKind::Ppp,
            Layer::Ipv4(_) => LayerKind::Ipv4,
            Layer::Ipv6(_) => LayerKind::Ipv6,
            Layer::Tcp(_) => LayerKind::Tcp,
            Layer::Udp(_) => LayerKind::Udp,
            Layer::Icmp(v) if v.v6 => LayerKind::Icmpv6,
            Layer::Icmp(_) => LayerKind::Icmp,
            Layer::Vxlan { .. } => LayerKind::Vxlan,
            Layer::Geneve(_) => LayerKind::Geneve,
            Layer::Gre(_) => LayerKind::Gre,
            Layer::Erspan => LayerKind::Erspan,
            Layer::WireGuard { .. } => LayerKind::WireGuard,
            Layer::IpProto(p) => match *p {
                proto::ESP => LayerKind::Esp,
                proto::AH => LayerKind::Ah,
                132 => LayerKind::Sctp,
                2 => LayerKind::Igmp,
                89 => LayerKind::Ospf,
                103 => LayerKind::Pim,
                112 => LayerKind::Vrrp,
                _ => LayerKind::OtherIpProto,
            },
        }
    }

    pub fn is_ip(&self) -> bool {
        matches!(self, Layer::Ipv4(_) | Layer::Ipv6(_))
    }
}

/// How decoding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeEnd {
    /// Every header that was expected was read (payload may follow).
    Complete,
    /// The captured bytes ended inside a header (snaplen or a cut packet).
    Truncated,
    /// A header was invalid.
    Malformed(&'static str),
    /// The link type is not one capsift decodes.
    UnsupportedLinkType,
    /// An EtherType (or SLL/PPP protocol) capsift does not decode.
    UnknownEtherType(u16),
    /// Nesting deeper than [`MAX_LAYERS`].
    DepthLimit,
}

/// A decoded packet: its layers outer to inner.
#[derive(Debug, Clone)]
pub struct Decoded<'a> {
    pub layers: ArrayVec<Layer<'a>, MAX_LAYERS>,
    /// Index of the first layer that belongs to a datagram quoted by an ICMP error.
    pub quote_start: Option<usize>,
    /// Bytes after the innermost header outside any ICMP quote (e.g. TCP payload).
    pub payload: &'a [u8],
    pub end: DecodeEnd,
    /// A non-first IP fragment: no transport header to decode.
    pub fragment: bool,
    /// Offset in the packet where the last header decoded (ICMP quotes
    /// included) ends: everything after it is payload.
    pub headers_end: usize,
}

impl<'a> Decoded<'a> {
    /// Layers outside any ICMP-quoted datagram.
    pub fn outer_layers(&self) -> &[Layer<'a>] {
        &self.layers[..self.quote_start.unwrap_or(self.layers.len())]
    }

    /// Layers of the datagram an ICMP error quotes.
    pub fn quoted_layers(&self) -> &[Layer<'a>] {
        match self.quote_start {
            Some(q) => &self.layers[q..],
            None => &[],
        }
    }

    /// Nothing useful could be decoded (see `docs/info.md`).
    pub fn is_undecoded(&self) -> bool {
        matches!(
            self.end,
            DecodeEnd::Malformed(_)
                | DecodeEnd::UnsupportedLinkType
                | DecodeEnd::UnknownEtherType(_)
        )
    }

    /// Innermost IP layer outside ICMP quotes, with its index.
    pub fn innermost_ip(&self) -> Option<(usize, &Layer<'a>)> {
        self.outer_layers()
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| l.is_ip())
    }
}

/// What a UDP port means to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum PortRole {
    None = 0,
    Vxlan,
    Geneve,
    WireGuard,
    GreInUdp,
}

/// Decoder settings: which UDP ports carry which tunnel.
#[derive(Clone)]
pub struct DecodeConfig {
    ports: Box<[u8; 65536]>,
    /// Recognise VXLAN, Geneve and WireGuard by content on other ports.
    pub heuristics: bool,
}

impl std::fmt::Debug for DecodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeConfig")
            .field("heuristics", &self.heuristics)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_VXLAN_PORTS: [u16; 2] = [4789, 8472];
pub const DEFAULT_GENEVE_PORTS: [u16; 1] = [6081];
pub const DEFAULT_WIREGUARD_PORTS: [u16; 2] = [51820, 51871];
/// GRE in UDP (RFC 8086).
pub const GRE_IN_UDP_PORT: u16 = 4754;

impl Default for DecodeConfig {
    fn default() -> Self {
        let mut c = DecodeConfig {
            ports: Box::new([0u8; 65536]),
            heuristics: true,
        };
        for p in DEFAULT_VXLAN_PORTS {
            c.add_vxlan_port(p);
        }
        for p in DEFAULT_GENEVE_PORTS {
            c.add_geneve_port(p);
        }
        for p in DEFAULT_WIREGUARD_PORTS {
            c.add_wireguard_port(p);
        }
        c.ports[usize::from(GRE_IN_UDP_PORT)] = PortRole::GreInUdp as u8;
        c
    }
}

impl DecodeConfig {
    pub fn add_vxlan_port(&mut self, p: u16) {
        self.ports[usize::from(p)] = PortRole::Vxlan as u8;
    }
    pub fn add_geneve_port(&mut self, p: u16) {
        self.ports[usize::from(p)] = PortRole::Geneve as u8;
    }
    pub fn add_wireguard_port(&mut self, p: u16) {
        self.ports[usize::from(p)] = PortRole::WireGuard as u8;
    }
    #[inline]
    fn role(&self, p: u16) -> PortRole {
        match self.ports[usize::from(p)] {
            1 => PortRole::Vxlan,
            2 => PortRole::Geneve,
            3 => PortRole::WireGuard,
            4 => PortRole::GreInUdp,
            _ => PortRole::None,
        }
    }
}

/// The next header to decode.
#[derive(Clone, Copy)]
enum Next {
    Ethernet,
    EtherType(u16),
    Ipv4,
    Ipv6,
    /// Raw IP: version from the first nibble.
    IpAny,
    IpProto(u8),
    Vxlan(u16, bool),
    Geneve,
    Gre,
    /// Port, and the message length on the wire (the UDP length: a cut
    /// capture keeps only the start of the message).
    WireGuard(u16, usize),
}

struct Decoder<'a, 'c, 'o> {
    cfg: &'c DecodeConfig,
    /// Address of the packet's first byte, to turn sub-slices into offsets.
    base: usize,
    len: usize,
    out: &'o mut Decoded<'a>,
    /// Inside an ICMP-quoted datagram: short headers end decoding quietly,
    /// because quotes are cut by design.
    in_quote: bool,
}

impl Decoded<'_> {
    /// Nothing decoded yet (cheap: the layer array is not initialised).
    pub fn empty() -> Self {
        Decoded {
            layers: ArrayVec::new(),
            quote_start: None,
            payload: &[],
            end: DecodeEnd::Complete,
            fragment: false,
            headers_end: 0,
        }
    }
}

/// Decode one packet.
pub fn decode<'a>(cfg: &DecodeConfig, link: LinkType, data: &'a [u8]) -> Decoded<'a> {
    let mut out = Decoded::empty();
    decode_into(cfg, link, data, &mut out);
    out
}

/// Decode one packet into `out` (which must be [`Decoded::empty`]): the
/// per-packet path uses this to build the result in place rather than move
/// a full layer array out of the decoder (2 % of `analyze`).
pub fn decode_into<'a>(cfg: &DecodeConfig, link: LinkType, data: &'a [u8], out: &mut Decoded<'a>) {
    let mut d = Decoder {
        cfg,
        out,
        base: data.as_ptr() as usize,
        len: data.len(),
        in_quote: false,
    };
    d.run(link, data);
}

impl<'a> Decoder<'a, '_, '_> {
    fn push(&mut self, l: Layer<'a>) -> bool {
        if self.out.layers.try_push(l).is_err() {
            self.out.end = DecodeEnd::DepthLimit;
            return false;
        }
        true
    }

    /// Headers extend at least to where `rest` starts.
    fn mark(&mut self, rest: &[u8]) {
        let at = (rest.as_ptr() as usize).wrapping_sub(self.base);
        if at <= self.len {
            self.out.headers_end = self.out.headers_end.max(at);
        }
    }

    fn fail(&mut self, m: Malformed) {
        if self.in_quote {
            return;
        }
        self.out.end = match m {
            Malformed::Short => DecodeEnd::Truncated,
            Malformed::Field(f) => DecodeEnd::Malformed(f),
        };
    }

    fn set_payload(&mut self, p: &'a [u8]) {
        if !self.in_quote {
            self.out.payload = p;
        }
    }

    fn run(&mut self, link: LinkType, data: &'a [u8]) {
        let (mut next, mut rest) = match self.link_layer(link, data) {
            Some(x) => x,
            None => return,
        };
        self.mark(rest);
        // Each iteration pushes a layer or ends, so MAX_LAYERS bounds the loop.
        loop {
            let step = match next {
                Next::Ethernet => self.ethernet(rest),
                Next::EtherType(et) => self.ethertype(et, rest),
                Next::Ipv4 => self.ipv4(rest),
                Next::Ipv6 => self.ipv6(rest),
                Next::IpAny => match rest.first().map(|b| b >> 4) {
                    Some(4) => self.ipv4(rest),
                    Some(6) => self.ipv6(rest),
                    Some(_) => Err(Malformed::Field("ip version")),
                    None => Err(Malformed::Short),
                },
                Next::IpProto(p) => self.ip_proto(p, rest),
                Next::Vxlan(port, heur) => self.vxlan(port, heur, rest),
                Next::Geneve => self.geneve(rest),
                Next::Gre => self.gre(rest),
                Next::WireGuard(port, wire) => self.wireguard(port, wire, rest),
            };
            match step {
                Ok(Some((n, r))) => {
                    self.mark(r);
                    next = n;
                    rest = r;
                }
                Ok(None) => return,
                Err(m) => {
                    self.fail(m);
                    return;
                }
            }
        }
    }

    fn link_layer(&mut self, link: LinkType, data: &'a [u8]) -> Option<(Next, &'a [u8])> {
        let r = match link {
            LinkType::ETHERNET => Ok((Next::Ethernet, data)),
            LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => Ok((Next::IpAny, data)),
            LinkType::IPV4 => Ok((Next::Ipv4, data)),
            LinkType::IPV6 => Ok((Next::Ipv6, data)),
            LinkType::LINUX_SLL => SllView::new_checked(data).map(|v| {
                self.push(Layer::Sll(v));
                (Next::EtherType(v.protocol()), &data[SllView::LEN..])
            }),
            LinkType::LINUX_SLL2 => Sll2View::new_checked(data).map(|v| {
                self.push(Layer::Sll2(v));
                (Next::EtherType(v.protocol()), &data[Sll2View::LEN..])
            }),
            LinkType::NULL | LinkType::LOOP => {
                link::null_family(data, link == LinkType::LOOP).map(|fam| {
                    self.push(Layer::Null(fam));
                    match link::null_family_ethertype(fam) {
                        Some(et) => (Next::EtherType(et), &data[4..]),
                        None => (Next::IpAny, &data[4..]),
                    }
                })
            }
            LinkType::NFLOG => link::nflog_payload(data).map(|(fam, p)| {
                self.push(Layer::Nflog);
                match fam {
                    2 => (Next::Ipv4, p),
                    10 => (Next::Ipv6, p),
                    _ => (Next::IpAny, p),
                }
            }),
            _ => {
                self.out.end = DecodeEnd::UnsupportedLinkType;
                return None;
            }
        };
        match r {
            Ok(x) => Some(x),
            Err(m) => {
                self.fail(m);
                None
            }
        }
    }
}

type Step<'a> = Result<Option<(Next, &'a [u8])>, Malformed>;

impl<'a> Decoder<'a, '_, '_> {
    fn ethernet(&mut self, b: &'a [u8]) -> Step<'a> {
        let v = EthernetView::new_checked(b)?;
        if !self.push(Layer::Ethernet(v)) {
            return Ok(None);
        }
        Ok(Some((
            Next::EtherType(v.ethertype()),
            &b[EthernetView::LEN..],
        )))
    }

    fn ethertype(&mut self, et: u16, b: &'a [u8]) -> Step<'a> {
        match et {
            ethertype::IPV4 => Ok(Some((Next::Ipv4, b))),
            ethertype::IPV6 => Ok(Some((Next::Ipv6, b))),
            ethertype::ARP | ethertype::RARP => {
                let v = ArpView::new_checked(b)?;
                self.push(Layer::Arp(v));
                self.mark(&b[v.bytes().len()..]);
                Ok(None)
            }
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                let v = VlanView::new_checked(b, et)?;
                if !self.push(Layer::Vlan(v)) {
                    return Ok(None);
                }
                Ok(Some((Next::EtherType(v.ethertype()), &b[VlanView::LEN..])))
            }
            ethertype::TEB => Ok(Some((Next::Ethernet, b))),
            ethertype::MPLS | ethertype::MPLS_MC => self.mpls(b),
            ethertype::PPP => {
                let (len, p) = link::ppp_header(b)?;
                if !self.push(Layer::Ppp(p)) {
                    return Ok(None);
                }
                self.mark(&b[len..]);
                let next = match p {
                    0x0021 => Next::Ipv4,
                    0x0057 => Next::Ipv6,
                    _ => {
                        self.set_payload(&b[len..]);
                        return Ok(None);
                    }
                };
                Ok(Some((next, &b[len..])))
            }
            et if et < 0x0600 => {
                // An 802.3 length field, or SLL's 802.2/802.3 protocol markers
                // (0x0004, 0x0001): LLC follows.
                self.mark(b);
                self.push(Layer::Llc);
                self.set_payload(b);
                Ok(None)
            }
            other => {
                self.mark(b);
                if !self.in_quote {
                    self.out.end = DecodeEnd::UnknownEtherType(other);
                }
                self.set_payload(b);
                Ok(None)
            }
        }
    }

    fn mpls(&mut self, b: &'a [u8]) -> Step<'a> {
        // Walk the label stack to the bottom-of-stack bit; guess IP by nibble.
        let mut at = 0;
        loop {
            let e = b.get(at..at + 4).ok_or(Malformed::Short)?;
            let entry = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            if !self.push(Layer::Mpls(entry >> 12)) {
                return Ok(None);
            }
            at += 4;
            if entry & 0x100 != 0 {
                break;
            }
        }
        Ok(Some((Next::IpAny, &b[at..])))
    }

    fn ipv4(&mut self, b: &'a [u8]) -> Step<'a> {
        let (v, payload) = Ipv4View::new_checked(b)?;
        if !self.push(Layer::Ipv4(v)) {
            return Ok(None);
        }
        if v.frag_offset() != 0 {
            if !self.in_quote {
                self.out.fragment = true;
            }
            self.mark(payload);
            self.set_payload(payload);
            return Ok(None);
        }
        Ok(Some((Next::IpProto(v.protocol()), payload)))
    }

    fn ipv6(&mut self, b: &'a [u8]) -> Step<'a> {
        let (v, payload) = Ipv6View::new_checked(b)?;
        if !self.push(Layer::Ipv6(v)) {
            return Ok(None);
        }
        if matches!(v.fragment(), Some(f) if f.offset != 0) {
            if !self.in_quote {
                self.out.fragment = true;
            }
            self.mark(payload);
            self.set_payload(payload);
            return Ok(None);
        }
        Ok(Some((Next::IpProto(v.upper_protocol()), payload)))
    }

    fn ip_proto(&mut self, p: u8, b: &'a [u8]) -> Step<'a> {
        match p {
            proto::TCP => {
                let (v, payload) = TcpView::new_checked(b)?;
                self.push(Layer::Tcp(v));
                self.mark(payload);
                self.set_payload(payload);
                Ok(None)
            }
            proto::UDP => self.udp(b),
            proto::ICMP | proto::ICMPV6 => {
                let v6 = p == proto::ICMPV6;
                let (v, rest) = IcmpView::new_checked(b, v6)?;
                if !self.push(Layer::Icmp(v)) {
                    return Ok(None);
                }
                self.mark(rest);
                if v.is_error() && !self.in_quote && !rest.is_empty() {
                    self.set_payload(rest);
                    self.in_quote = true;
                    self.out.quote_start = Some(self.out.layers.len());
                    return Ok(Some((if v6 { Next::Ipv6 } else { Next::Ipv4 }, rest)));
                }
                self.set_payload(rest);
                Ok(None)
            }
            proto::IPV4 => Ok(Some((Next::Ipv4, b))),
            proto::IPV6 => Ok(Some((Next::Ipv6, b))),
            proto::GRE => Ok(Some((Next::Gre, b))),
            proto::NO_NEXT => Ok(None),
            other => {
                self.mark(b);
                self.push(Layer::IpProto(other));
                self.set_payload(b);
                Ok(None)
            }
        }
    }

    fn udp(&mut self, b: &'a [u8]) -> Step<'a> {
        let (v, payload) = UdpView::new_checked(b)?;
        if !self.push(Layer::Udp(v)) {
            return Ok(None);
        }
        self.mark(payload);
        self.set_payload(payload);
        let (sp, dp) = (v.src_port(), v.dst_port());
        let wire = match v.length() {
            0 => payload.len(),
            n => usize::from(n).saturating_sub(UdpView::LEN),
        };
        // Like Wireshark, the destination's meaning first, then the source's.
        for port in [dp, sp] {
            match self.cfg.role(port) {
                PortRole::Vxlan => return Ok(Some((Next::Vxlan(port, false), payload))),
                PortRole::Geneve => return Ok(Some((Next::Geneve, payload))),
                PortRole::GreInUdp => return Ok(Some((Next::Gre, payload))),
                PortRole::WireGuard => {
                    if WireGuardView::new_checked(payload, wire).is_ok() {
                        return Ok(Some((Next::WireGuard(port, wire), payload)));
                    }
                }
                PortRole::None => {}
            }
        }
        // Content checks only between unprivileged ports, where no
        // well-known protocol (DNS, NTP, ...) lives.
        if self.cfg.heuristics && sp >= 1024 && dp >= 1024 && !self.in_quote {
            if VxlanView::plausible(payload) {
                return Ok(Some((Next::Vxlan(dp, true), payload)));
            }
            if GeneveView::plausible(payload) {
                return Ok(Some((Next::Geneve, payload)));
            }
            if WireGuardView::new_checked(payload, wire).is_ok() {
                return Ok(Some((Next::WireGuard(dp, wire), payload)));
            }
        }
        Ok(None)
    }

    fn vxlan(&mut self, port: u16, heuristic: bool, b: &'a [u8]) -> Step<'a> {
        let (v, inner) = VxlanView::new_checked(b)?;
        if !self.push(Layer::Vxlan {
            view: v,
            port,
            heuristic,
        }) {
            return Ok(None);
        }
        self.set_payload(inner);
        Ok(Some((Next::Ethernet, inner)))
    }

    fn geneve(&mut self, b: &'a [u8]) -> Step<'a> {
        let (v, inner) = GeneveView::new_checked(b)?;
        if !self.push(Layer::Geneve(v)) {
            return Ok(None);
        }
        self.set_payload(inner);
        match v.protocol() {
            ethertype::TEB => Ok(Some((Next::Ethernet, inner))),
            et => Ok(Some((Next::EtherType(et), inner))),
        }
    }

    fn gre(&mut self, b: &'a [u8]) -> Step<'a> {
        let (v, inner) = GreView::new_checked(b)?;
        if !self.push(Layer::Gre(v)) {
            return Ok(None);
        }
        self.set_payload(inner);
        match v.protocol() {
            ethertype::ERSPAN_2 | ethertype::ERSPAN_3 => {
                let hl = gre::erspan_header_len(&v, inner)?;
                if !self.push(Layer::Erspan) {
                    return Ok(None);
                }
                Ok(Some((Next::Ethernet, &inner[hl..])))
            }
            et => Ok(Some((Next::EtherType(et), inner))),
        }
    }

    fn wireguard(&mut self, port: u16, wire: usize, b: &'a [u8]) -> Step<'a> {
        let view = WireGuardView::new_checked(b, wire)?;
        self.push(Layer::WireGuard { view, port });
        // Only the cleartext header fields: type, reserved, indexes, counter.
        self.mark(&b[view.message().cleartext_len().min(b.len())..]);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(et: u16) -> Vec<u8> {
        let mut b = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        b.extend_from_slice(&et.to_be_bytes());
        b
    }

    fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut b = vec![
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        b[2..4].copy_from_slice(&total.to_be_bytes());
        b.extend_from_slice(payload);
        b
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&sport.to_be_bytes());
        b.extend_from_slice(&dport.to_be_bytes());
        b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(payload);
        b
    }

    fn tcp_syn() -> Vec<u8> {
        vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]
    }

    fn names(d: &Decoded<'_>) -> Vec<&'static str> {
        d.layers.iter().map(|l| l.kind().name()).collect()
    }

    fn vxlan_frame(port: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut vx = vec![0x08, 0, 0, 0];
        vx.extend_from_slice(&(vni << 8).to_be_bytes());
        vx.extend_from_slice(inner);
        let mut f = eth(0x0800);
        f.extend(ipv4(17, &udp(40000, port, &vx)));
        f
    }

    #[test]
    fn vxlan_on_8472_nests_to_tcp() {
        let mut inner = eth(0x0800);
        inner.extend(ipv4(6, &tcp_syn()));
        let f = vxlan_frame(8472, 42, &inner);
        let d = decode(&DecodeConfig::default(), LinkType::ETHERNET, &f);
        assert_eq!(
            names(&d),
            ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "tcp"]
        );
        assert_eq!(d.end, DecodeEnd::Complete);
        match d.layers[3] {
            Layer::Vxlan {
                view,
                port,
                heuristic,
            } => {
                assert_eq!(view.vni(), 42);
                assert_eq!(port, 8472);
                assert!(!heuristic);
            }
            _ => panic!("not vxlan"),
        }
    }

    #[test]
    fn vxlan_on_other_port_only_by_heuristic() {
        let mut inner = eth(0x0800);
        inner.extend(ipv4(6, &tcp_syn()));
        let f = vxlan_frame(9999, 7, &inner);
        let d = decode(&DecodeConfig::default(), LinkType::ETHERNET, &f);
        assert!(matches!(
            d.layers[3],
            Layer::Vxlan {
                heuristic: true,
                ..
            }
        ));
        let mut cfg = DecodeConfig {
            heuristics: false,
            ..Default::default()
        };
        let d = decode(&cfg, LinkType::ETHERNET, &f);
        assert_eq!(names(&d), ["eth", "ipv4", "udp"]);
        cfg.add_vxlan_port(9999);
        let d = decode(&cfg, LinkType::ETHERNET, &f);
        assert_eq!(d.layers.len(), 7);
    }

    #[test]
    fn icmp_quote_is_separate() {
        let quoted = ipv4(6, &tcp_syn()[..8]);
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        icmp.extend(quoted);
        let mut f = eth(0x0800);
        f.extend(ipv4(1, &icmp));
        let d = decode(&DecodeConfig::default(), LinkType::ETHERNET, &f);
        assert_eq!(d.quote_start, Some(3));
        assert_eq!(names(&d), ["eth", "ipv4", "icmp", "ipv4"]);
        // The quoted TCP header is cut to 8 bytes: that is no truncation.
        assert_eq!(d.end, DecodeEnd::Complete);
        assert_eq!(d.outer_layers().len(), 3);
    }

    #[test]
    fn headers_end_covers_every_header_and_icmp_quotes() {
        let mut inner = eth(0x0800);
        inner.extend(ipv4(6, &[tcp_syn(), b"GET / HTTP/1.1".to_vec()].concat()));
        let f = vxlan_frame(8472, 42, &inner);
        let d = decode(&DecodeConfig::default(), LinkType::ETHERNET, &f);
        assert_eq!(d.headers_end, f.len() - 14, "everything but the HTTP bytes");
        let quoted = ipv4(17, &udp(5353, 53, b"query-bytes"));
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend(quoted);
        let mut p = eth(0x0800);
        p.extend(ipv4(1, &icmp));
        let d = decode(&DecodeConfig::default(), LinkType::ETHERNET, &p);
        assert_eq!(
            d.headers_end,
            p.len() - 11,
            "the quoted UDP header is a header too"
        );
    }

    #[test]
    fn thousand_deep_nesting_stops_at_the_limit() {
        let mut p = ipv4(6, &tcp_syn());
        for _ in 0..1000 {
            p = ipv4(4, &p);
        }
        let d = decode(&DecodeConfig::default(), LinkType::RAW, &p);
        assert_eq!(d.end, DecodeEnd::DepthLimit);
        assert_eq!(d.layers.len(), MAX_LAYERS);
    }

    #[test]
    fn snaplen_cut_decodes_as_far_as_it_goes() {
        let mut inner = eth(0x0800);
        inner.extend(ipv4(6, &tcp_syn()));
        let f = vxlan_frame(4789, 1, &inner);
        let d = decode(
            &DecodeConfig::default(),
            LinkType::ETHERNET,
            &f[..f.len() - 10],
        );
        assert_eq!(names(&d), ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4"]);
        assert_eq!(d.end, DecodeEnd::Truncated);
    }

    #[test]
    fn every_prefix_of_a_packet_decodes_without_panic() {
        let mut inner = eth(0x8100);
        inner.extend_from_slice(&[0, 100, 0x86, 0xdd]);
        let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        v6.extend_from_slice(&[0u8; 32]);
        v6.extend(tcp_syn());
        inner.extend(v6);
        let f = vxlan_frame(8472, 3, &inner);
        for n in 0..=f.len() {
            let _ = decode(&DecodeConfig::default(), LinkType::ETHERNET, &f[..n]);
        }
        let d = decode(&DecodeConfig::default(), LinkType::ETHERNET, &f);
        assert_eq!(
            names(&d),
            ["eth", "ipv4", "udp", "vxlan", "eth", "vlan", "ipv6", "tcp"]
        );
    }
}
