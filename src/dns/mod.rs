//! DNS transactions and lookups.
//!
//! Queries are matched to responses by client, server, id and question;
//! a query sent again before its answer is a retransmission of the same
//! transaction (glibc resends after 5 s, sometimes from another port). The
//! queries one client sends for one typed name (`api.github.com` with each
//! search suffix appended, A and AAAA) are grouped into a lookup, which is
//! what the ndots detector reasons about.

pub mod lookup;
pub mod message;

use crate::capture::{Packet, Timestamp};
use crate::decode::{Decoded, Layer};
use crate::flow::stream::Reassembler;
use crate::flow::Observation;
use crate::warning::Warnings;
use foldhash::HashMap;
use message::DnsMessage;
use serde::Serialize;
use std::net::IpAddr;

/// Queries kept for the report and the table; beyond it a warning says so.
pub const MAX_QUERIES: usize = 1_000_000;
/// A DNS-over-TCP stream buffers at most this much (one message is ≤ 64 KiB).
const TCP_STREAM_LIMIT: usize = 128 * 1024;
/// TCP DNS connections followed at once.
const MAX_TCP_STREAMS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub ports: Vec<u16>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { ports: vec![53] }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// One DNS transaction (a query and, if seen, its response).
#[derive(Debug, Clone)]
pub struct DnsQuery {
    pub ts: Timestamp,
    pub frame: u64,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub transport: Transport,
    pub id: u16,
    pub qname: String,
    pub qtype: u16,
    pub rcode: Option<u16>,
    pub answers: u16,
    pub addresses: Vec<IpAddr>,
    pub truncated: bool,
    /// From the last transmission of the query to the response.
    pub latency_ns: Option<i64>,
    pub response_frame: Option<u64>,
    pub retransmits: u32,
    /// Gaps between transmissions of this query (ms), the first few.
    pub retransmit_gaps_ms: Vec<f64>,
    pub last_sent: Timestamp,
    /// The typed name when this query is a search expansion of it.
    pub search_base: Option<String>,
    pub lookup: Option<u32>,
}

/// Client, server, transport, id, question type and name. The transport is
/// part of it: a truncated UDP answer makes the client ask the same
/// question with the same id over TCP, a separate transaction.
type TxKey = (IpAddr, IpAddr, Transport, u16, u16, String);

/// Follows DNS over UDP and TCP through one capture.
pub struct DnsTracker {
    cfg: DnsConfig,
    pub queries: Vec<DnsQuery>,
    pending: HashMap<TxKey, usize>,
    tcp: HashMap<(u64, usize), Reassembler>,
    pub lookups: lookup::LookupGrouper,
    defrag: crate::flow::defrag::Defragmenter,
    pub unmatched_responses: u64,
    pub messages: u64,
    pub fallback_parses: u64,
    pub unparseable: u64,
    pub dropped_queries: u64,
    /// Segments of DNS-over-TCP streams beyond [`MAX_TCP_STREAMS`].
    pub tcp_streams_dropped: u64,
    /// DNS-over-TCP streams whose reassembly passed [`TCP_STREAM_LIMIT`].
    pub tcp_streams_overflowed: u64,
}

impl DnsTracker {
    pub fn new(cfg: DnsConfig) -> Self {
        DnsTracker {
            cfg,
            queries: Vec::new(),
            pending: HashMap::default(),
            tcp: HashMap::default(),
            lookups: lookup::LookupGrouper::default(),
            defrag: Default::default(),
            unmatched_responses: 0,
            messages: 0,
            fallback_parses: 0,
            unparseable: 0,
            dropped_queries: 0,
            tcp_streams_dropped: 0,
            tcp_streams_overflowed: 0,
        }
    }

    fn is_dns_port(&self, p: u16) -> bool {
        self.cfg.ports.contains(&p)
    }

    /// Look at one packet; `obs` is what the flow table made of it.
    pub fn packet(
        &mut self,
        pkt: &Packet<'_>,
        d: &Decoded<'_>,
        obs: Option<&Observation>,
        flow_id: Option<u64>,
    ) {
        if obs.is_some_and(|o| o.copy_of.is_some()) {
            return; // the same packet at another capture point
        }
        let layers = d.outer_layers();
        let Some((ip_i, _)) = d.innermost_ip() else {
            return;
        };
        let (src, dst) = match &layers[ip_i] {
            Layer::Ipv4(v) => (IpAddr::V4(v.src()), IpAddr::V4(v.dst())),
            Layer::Ipv6(v) => (IpAddr::V6(v.src()), IpAddr::V6(v.dst())),
            _ => return,
        };
        // A fragmented datagram (large DNS answers): reassemble, then read it
        // at its last fragment, as tshark does.
        let frag = match &layers[ip_i] {
            Layer::Ipv4(v) if v.is_fragment() => Some((
                v.ident() as u32,
                v.protocol(),
                v.frag_offset(),
                v.more_fragments(),
                v.payload(),
            )),
            Layer::Ipv6(v) => v
                .fragment()
                .map(|f| (f.ident, v.upper_protocol(), f.offset, f.more, v.payload())),
            _ => None,
        };
        if let Some((ident, proto, offset, more, payload)) = frag {
            if proto != 17 {
                return;
            }
            let key = crate::flow::defrag::FragKey {
                src,
                dst,
                ident,
                proto,
            };
            let Some(dgram) = self.defrag.push(key, offset, more, payload, pkt.ts) else {
                return;
            };
            let Ok((u, data)) = crate::decode::transport::UdpView::new_checked(&dgram) else {
                return;
            };
            let (sp, dp) = (u.src_port(), u.dst_port());
            if self.is_dns_port(sp) || self.is_dns_port(dp) {
                if let Some(m) = self.parse(data) {
                    self.message(pkt, m, (src, sp), (dst, dp), Transport::Udp);
                }
            }
            return;
        }
        match layers.get(ip_i + 1) {
            Some(Layer::Udp(u)) => {
                let (sp, dp) = (u.src_port(), u.dst_port());
                if !(self.is_dns_port(sp) || self.is_dns_port(dp)) {
                    return;
                }
                if let Some(m) = self.parse(d.payload) {
                    self.message(pkt, m, (src, sp), (dst, dp), Transport::Udp);
                }
            }
            Some(Layer::Tcp(t)) => {
                let (sp, dp) = (t.src_port(), t.dst_port());
                if !(self.is_dns_port(sp) || self.is_dns_port(dp)) {
                    return;
                }
                let (Some(o), Some(fid)) = (obs, flow_id) else {
                    return;
                };
                let key = (fid, o.dir);
                if !self.tcp.contains_key(&key) && self.tcp.len() >= MAX_TCP_STREAMS {
                    self.tcp_streams_dropped += 1;
                    return;
                }
                let syn = t.has(crate::decode::transport::tcp_flags::SYN);
                let r = self.tcp.entry(key).or_default();
                r.push(t.seq(), syn, d.payload, TCP_STREAM_LIMIT);
                // Length-prefixed messages (RFC 1035 4.2.2).
                let mut msgs = Vec::new();
                loop {
                    let buf = r.data();
                    if buf.len() < 2 {
                        break;
                    }
                    let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                    if buf.len() < 2 + len {
                        break;
                    }
                    msgs.push(buf[2..2 + len].to_vec());
                    r.consume(2 + len);
                }
                let fin = t.has(crate::decode::transport::tcp_flags::FIN)
                    || t.has(crate::decode::transport::tcp_flags::RST);
                if r.overflowed {
                    self.tcp_streams_overflowed += 1;
                }
                if fin || r.broken {
                    self.tcp.remove(&key);
                }
                for m in msgs {
                    if let Some(m) = self.parse(&m) {
                        self.message(pkt, m, (src, sp), (dst, dp), Transport::Tcp);
                    }
                }
            }
            _ => {}
        }
    }

    fn parse(&mut self, bytes: &[u8]) -> Option<DnsMessage> {
        self.messages += 1;
        let m = message::parse(bytes);
        match &m {
            Some(m) if m.fallback => self.fallback_parses += 1,
            None => self.unparseable += 1,
            _ => {}
        }
        m
    }

    fn message(
        &mut self,
        pkt: &Packet<'_>,
        m: DnsMessage,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        transport: Transport,
    ) {
        if m.is_response {
            let key = (dst.0, src.0, transport, m.id, m.qtype, m.qname.clone());
            let Some(i) = self.pending.remove(&key) else {
                self.unmatched_responses += 1;
                return;
            };
            let q = &mut self.queries[i];
            q.rcode = Some(m.rcode);
            q.answers = m.answers;
            q.addresses = m.addresses;
            q.truncated = m.truncated;
            q.latency_ns = Some(pkt.ts.0.saturating_sub(q.last_sent.0));
            q.response_frame = Some(pkt.frame);
            let resolved = m.rcode == 0 && m.answers > 0;
            self.lookups.answered(i, &self.queries, resolved);
            return;
        }
        let key = (src.0, dst.0, transport, m.id, m.qtype, m.qname.clone());
        if let Some(&i) = self.pending.get(&key) {
            let q = &mut self.queries[i];
            q.retransmits += 1;
            if q.retransmit_gaps_ms.len() < 8 {
                q.retransmit_gaps_ms
                    .push(pkt.ts.0.saturating_sub(q.last_sent.0) as f64 / 1e6);
            }
            q.last_sent = pkt.ts;
            return;
        }
        if self.queries.len() >= MAX_QUERIES {
            self.dropped_queries += 1;
            return;
        }
        let i = self.queries.len();
        self.queries.push(DnsQuery {
            ts: pkt.ts,
            frame: pkt.frame,
            client: src,
            server: dst,
            transport,
            id: m.id,
            qname: m.qname,
            qtype: m.qtype,
            rcode: None,
            answers: 0,
            addresses: Vec::new(),
            truncated: false,
            latency_ns: None,
            response_frame: None,
            retransmits: 0,
            retransmit_gaps_ms: Vec::new(),
            last_sent: pkt.ts,
            search_base: None,
            lookup: None,
        });
        self.pending.insert(key, i);
        self.lookups.query(i, &mut self.queries);
    }

    /// End of capture: close open lookups.
    pub fn finish(&mut self, warnings: &mut Warnings) {
        self.lookups.finish(&mut self.queries);
        let limits = [
            (
                self.tcp_streams_dropped,
                format!("more than {MAX_TCP_STREAMS} DNS-over-TCP streams at once"),
            ),
            (
                self.tcp_streams_overflowed,
                format!("DNS-over-TCP streams buffering more than {TCP_STREAM_LIMIT} bytes"),
            ),
            (
                self.lookups.dropped,
                "more than 100000 DNS clients with lookups in progress".to_string(),
            ),
            (
                self.defrag.dropped,
                "IP fragments of DNS messages beyond the reassembly bounds (1024 datagrams, 16 MB)"
                    .to_string(),
            ),
        ];
        let hit: Vec<String> = limits
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{what}: {n} not analysed"))
            .collect();
        if !hit.is_empty() {
            warnings.push(
                "dns.limit",
                || format!("{}; some DNS findings may be missing", hit.join("; ")),
                None,
                None,
            );
        }
        if self.unparseable > 0 {
            let (n, m) = (self.unparseable, self.messages);
            warnings.push(
                "dns.malformed",
                || format!("{n} of {m} DNS messages could not be read (a compression loop, a name running past the end, counts larger than the message): they are left out, so their queries may show as unanswered"),
                None,
                None,
            );
        }
        if self.dropped_queries > 0 {
            let n = self.dropped_queries;
            warnings.push(
                "dns.too_many_queries",
                || format!("more than {MAX_QUERIES} DNS queries: {n} further queries were not analysed"),
                None,
                None,
            );
        }
    }
}

/// NXDOMAIN response code.
pub fn rcode_is_nxdomain(r: u16) -> bool {
    r == 3
}
