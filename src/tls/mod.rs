//! TLS handshakes: ClientHello, ServerHello, certificates, plaintext alerts.
//!
//! The TCP byte stream of each direction is reassembled (retransmissions and
//! reordering handled by [`Reassembler`]), cut into TLS records, and the
//! handshake messages, which may span records or share one, are put back
//! together before tls-parser reads them. Following stops once both sides
//! send application data, so bulk transfers cost nothing here.

pub mod cert;
pub mod verify;

use crate::capture::{Packet, Timestamp};
use crate::decode::transport::tcp_flags::{FIN, RST, SYN};
use crate::decode::{Decoded, Layer};
use crate::flow::stream::Reassembler;
use crate::flow::{Flow, Observation};
use crate::warning::Warnings;
use foldhash::HashMap;
use std::net::IpAddr;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

/// Bytes buffered per direction while a handshake is followed.
const STREAM_LIMIT: usize = 256 * 1024;
/// A TLS record is at most 2^14 bytes plus expansion.
const MAX_RECORD: usize = 18 * 1024 + 256;
/// Connections followed at once, and handshakes kept.
const MAX_CONNS: usize = 100_000;
pub const MAX_HANDSHAKES: usize = 200_000;
/// The ServerHello random that marks a HelloRetryRequest (RFC 8446 4.1.3).
const HELLO_RETRY_REQUEST_RANDOM: &[u8] = &[
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// Certificates kept per chain.
const MAX_CHAIN: usize = 10;

#[derive(Debug, Clone)]
pub struct Alert {
    pub from_server: bool,
    pub level: u8,
    pub description: u8,
    pub frame: u64,
}

/// One TLS handshake as seen on the wire.
#[derive(Debug, Clone)]
pub struct TlsHandshake {
    pub flow_id: u64,
    pub ts: Timestamp,
    pub frame: u64,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub tunnel: String,
    pub client_hello: bool,
    pub sni: Option<String>,
    pub offered_versions: Vec<u16>,
    pub alpn_offered: Vec<String>,
    pub server_hello_frame: Option<u64>,
    pub version: Option<u16>,
    pub alpn_selected: Option<String>,
    pub chain: Vec<Vec<u8>>,
    pub cert_frame: Option<u64>,
    pub alerts: Vec<Alert>,
    /// Application-data records the client sent after the ServerHello
    /// (TLS 1.3: the first is its encrypted Finished).
    pub client_app_records: u32,
    pub server_app_records: u32,
    /// How the client ended the connection before the handshake completed: (RST?, frame, ts).
    pub client_closed: Option<(bool, u64, Timestamp)>,
    pub server_hello_ts: Option<Timestamp>,
    pub check: Option<verify::Check>,
    pub cert: Option<cert::CertInfo>,
    /// The server asked for a second ClientHello (TLS 1.3 HelloRetryRequest).
    pub hello_retry: bool,
}

impl TlsHandshake {
    pub fn is_tls13(&self) -> bool {
        self.version == Some(0x0304)
    }
}

struct Conn {
    hs: TlsHandshake,
    streams: [Reassembler; 2],
    hs_buf: [Vec<u8>; 2],
    encrypted: [bool; 2],
    /// Frame where a record or handshake message claimed more than the
    /// limits allow (the direction is no longer followed).
    oversized: Option<u64>,
}

/// Follows TLS handshakes through one capture.
#[derive(Default)]
pub struct TlsTracker {
    conns: HashMap<u64, Conn>,
    pub handshakes: Vec<TlsHandshake>,
    pub dropped: u64,
    /// Connections given up because a record or handshake message claimed
    /// more than [`MAX_RECORD`] / [`STREAM_LIMIT`] bytes, and the first frame.
    pub oversized: u64,
    pub oversized_first_frame: Option<u64>,
    /// Connections whose reassembly passed [`STREAM_LIMIT`].
    pub reassembly_overflows: u64,
}

fn looks_like_tls_handshake(p: &[u8]) -> bool {
    p.len() >= 6 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04
}

fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

impl TlsTracker {
    pub fn packet(
        &mut self,
        pkt: &Packet<'_>,
        d: &Decoded<'_>,
        obs: Option<&Observation>,
        flow: Option<&Flow>,
    ) {
        let (Some(o), Some(f)) = (obs, flow) else {
            return;
        };
        if o.copy_of.is_some() || f.proto != 6 {
            return;
        }
        let Some(Layer::Tcp(t)) = d
            .outer_layers()
            .iter()
            .rev()
            .find(|l| matches!(l, Layer::Tcp(_)))
            .copied()
        else {
            return;
        };
        if !self.conns.contains_key(&f.id) {
            if d.payload.is_empty() || !looks_like_tls_handshake(d.payload) {
                return;
            }
            if self.conns.len() >= MAX_CONNS {
                self.dropped += 1;
                return;
            }
            let hs = TlsHandshake {
                flow_id: f.id,
                ts: pkt.ts,
                frame: pkt.frame,
                client: f.src,
                server: f.dst,
                tunnel: crate::flow::key::context_label(&f.tunnel),
                client_hello: false,
                sni: None,
                offered_versions: Vec::new(),
                alpn_offered: Vec::new(),
                server_hello_frame: None,
                version: None,
                alpn_selected: None,
                chain: Vec::new(),
                cert_frame: None,
                alerts: Vec::new(),
                client_app_records: 0,
                server_app_records: 0,
                client_closed: None,
                server_hello_ts: None,
                check: None,
                cert: None,
                hello_retry: false,
            };
            self.conns.insert(
                f.id,
                Conn {
                    hs,
                    streams: Default::default(),
                    hs_buf: Default::default(),
                    encrypted: [false; 2],
                    oversized: None,
                },
            );
        }
        let Some(c) = self.conns.get_mut(&f.id) else {
            return;
        };
        let dir = o.dir;
        if dir == 0 && (t.has(FIN) || t.has(RST)) && c.hs.client_closed.is_none() {
            c.hs.client_closed = Some((t.has(RST), pkt.frame, pkt.ts));
        }
        c.streams[dir].push(t.seq(), t.has(SYN), d.payload, STREAM_LIMIT);
        let done = c.records(dir, pkt);
        if done || (c.streams[0].broken && c.streams[1].broken) {
            self.end(f.id);
        } else if t.has(RST) || (t.has(FIN) && dir == 1) {
            // The server closed or someone reset: nothing more will come.
            self.end(f.id);
        }
    }

    fn end(&mut self, flow_id: u64) {
        if let Some(c) = self.conns.remove(&flow_id) {
            if c.streams.iter().any(|s| s.overflowed) {
                self.reassembly_overflows += 1;
            }
            if let Some(f) = c.oversized {
                self.oversized += 1;
                self.oversized_first_frame =
                    Some(self.oversized_first_frame.map_or(f, |o| o.min(f)));
            }
            if self.handshakes.len() < MAX_HANDSHAKES {
                self.handshakes.push(c.hs);
            } else {
                self.dropped += 1;
            }
        }
    }

    /// A flow ended: its handshake, if any, is complete as far as we know.
    pub fn flow_ended(&mut self, flow_id: u64) {
        self.end(flow_id);
    }

    /// End of capture: verify every certificate seen, and say which bounds
    /// were hit (`tls.limit`, `tls.oversized`).
    pub fn finish(&mut self, store: &verify::TrustStore, warnings: &mut Warnings) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.end(id);
        }
        self.handshakes.sort_by_key(|h| h.frame);
        // A server sends the same certificate in every handshake: parse and
        // fingerprint each distinct one once (it was 8 % of `analyze`).
        let mut described: HashMap<Vec<u8>, Option<cert::CertInfo>> = HashMap::default();
        for h in &mut self.handshakes {
            h.cert = h.chain.first().and_then(|c| {
                if let Some(d) = described.get(c.as_slice()) {
                    return d.clone();
                }
                let d = cert::describe(c);
                if described.len() < MAX_DESCRIBED {
                    described.insert(c.to_vec(), d.clone());
                }
                d
            });
            if !h.chain.is_empty() {
                let ip = h.server.0;
                let at = h.server_hello_ts.unwrap_or(h.ts);
                let self_issued = h.cert.as_ref().is_some_and(|c| c.self_issued);
                h.check = Some(verify::check(
                    store,
                    &h.chain,
                    h.sni.as_deref(),
                    ip,
                    at,
                    self_issued,
                ));
            }
        }
        let mut tls_limits = Vec::new();
        if self.dropped > 0 {
            tls_limits.push(format!(
                "{} connection(s) not analysed (more than {} at once or {} handshakes in all)",
                self.dropped, MAX_CONNS, MAX_HANDSHAKES
            ));
        }
        if self.reassembly_overflows > 0 {
            tls_limits.push(format!(
            "{} connection(s) given up when reassembly passed its bounds ({} KiB or 256 out-of-order segments per direction)",
            self.reassembly_overflows,
            STREAM_LIMIT / 1024
        ));
        }
        if !tls_limits.is_empty() {
            warnings.push(
                "tls.limit",
                || {
                    format!(
                        "TLS: {}; some TLS findings may be missing",
                        tls_limits.join("; ")
                    )
                },
                None,
                None,
            );
        }
        if self.oversized > 0 {
            let (n, f) = (self.oversized, self.oversized_first_frame);
            warnings.push(
            "tls.oversized",
            || format!("{n} TLS connection(s) stopped being followed: a record or handshake message claimed more bytes than TLS allows (a damaged or hostile stream); their handshakes are left incomplete"),
            None,
            f,
        );
        }
    }
}

/// Distinct certificates remembered while describing handshakes.
const MAX_DESCRIBED: usize = 4096;

impl Conn {
    /// Read the complete records of direction `dir`. Returns true when the
    /// handshake is over (both sides send application data) or the stream
    /// is not TLS after all.
    fn records(&mut self, dir: usize, pkt: &Packet<'_>) -> bool {
        loop {
            let buf = self.streams[dir].data();
            if buf.len() < 5 {
                return false;
            }
            let (ty, len) = (buf[0], usize::from(u16::from_be_bytes([buf[3], buf[4]])));
            if !(0x14..=0x18).contains(&ty) || buf[1] != 0x03 || len > MAX_RECORD {
                // Not (or no longer) TLS: stop following this direction.
                if (0x14..=0x18).contains(&ty) && buf[1] == 0x03 {
                    self.oversized.get_or_insert(pkt.frame);
                }
                self.streams[dir].close();
                return self.streams[1 - dir].broken;
            }
            if buf.len() < 5 + len {
                return false;
            }
            let body = buf[5..5 + len].to_vec();
            self.streams[dir].consume(5 + len);
            match ty {
                0x14 => self.encrypted[dir] = true,
                0x15 if len == 2 => self.hs.alerts.push(Alert {
                    from_server: dir == 1,
                    level: body[0],
                    description: body[1],
                    frame: pkt.frame,
                }),
                0x16 if !self.encrypted[dir] => self.handshake_bytes(dir, &body, pkt),
                0x17 => {
                    if self.hs.server_hello_frame.is_some() {
                        if dir == 0 {
                            self.hs.client_app_records += 1;
                        } else {
                            self.hs.server_app_records += 1;
                        }
                    }
                    if self.hs.client_app_records >= 2 && self.hs.server_app_records >= 1 {
                        return true;
                    }
                }
                _ => {}
            }
        }
    }

    fn handshake_bytes(&mut self, dir: usize, body: &[u8], pkt: &Packet<'_>) {
        let b = &mut self.hs_buf[dir];
        if b.len() + body.len() > STREAM_LIMIT {
            self.streams[dir].close();
            self.streams[dir].overflowed = true;
            return;
        }
        b.extend_from_slice(body);
        loop {
            let b = &self.hs_buf[dir];
            if b.len() < 4 {
                return;
            }
            let len = (usize::from(b[1]) << 16) | (usize::from(b[2]) << 8) | usize::from(b[3]);
            if len > STREAM_LIMIT {
                // A handshake message claiming up to 16 MB: never buffered.
                self.oversized.get_or_insert(pkt.frame);
                self.hs_buf[dir] = Vec::new();
                self.streams[dir].close();
                return;
            }
            if b.len() < 4 + len {
                return;
            }
            let msg = b[..4 + len].to_vec();
            self.hs_buf[dir].drain(..4 + len);
            self.message(dir, &msg, pkt);
        }
    }

    fn message(&mut self, dir: usize, msg: &[u8], pkt: &Packet<'_>) {
        let Ok((_, TlsMessage::Handshake(m))) = tls_parser::parse_tls_message_handshake(msg) else {
            return;
        };
        let hs = &mut self.hs;
        match m {
            TlsMessageHandshake::ClientHello(ch) if dir == 0 => {
                if !hs.client_hello {
                    // The handshake starts at the first ClientHello (a second
                    // one after a HelloRetryRequest repeats it).
                    hs.ts = pkt.ts;
                    hs.frame = pkt.frame;
                }
                hs.client_hello = true;
                hs.offered_versions = vec![ch.version.0];
                let exts = ch
                    .ext
                    .and_then(|e| tls_parser::parse_tls_extensions(e).ok())
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                for e in exts {
                    match e {
                        TlsExtension::SNI(names) => {
                            if let Some((_, n)) = names.iter().find(|(t, _)| t.0 == 0) {
                                hs.sni = Some(String::from_utf8_lossy(n).to_ascii_lowercase());
                            }
                        }
                        TlsExtension::ALPN(protos) => {
                            hs.alpn_offered = protos
                                .iter()
                                .take(16)
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect();
                        }
                        TlsExtension::SupportedVersions(vs) => {
                            hs.offered_versions = vs
                                .iter()
                                .map(|v| v.0)
                                .filter(|v| !is_grease(*v))
                                .take(16)
                                .collect();
                        }
                        _ => {}
                    }
                }
            }
            TlsMessageHandshake::ServerHello(sh)
                if dir == 1 && sh.random == HELLO_RETRY_REQUEST_RANDOM =>
            {
                // TLS 1.3 HelloRetryRequest: a second ClientHello and the real
                // ServerHello follow in plaintext.
                hs.hello_retry = true;
            }
            TlsMessageHandshake::ServerHello(sh) if dir == 1 => {
                hs.server_hello_frame = Some(pkt.frame);
                hs.server_hello_ts = Some(pkt.ts);
                hs.version = Some(sh.version.0);
                let exts = sh
                    .ext
                    .and_then(|e| tls_parser::parse_tls_extensions(e).ok())
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                for e in exts {
                    match e {
                        TlsExtension::SupportedVersions(vs) => {
                            if let Some(v) = vs.first() {
                                hs.version = Some(v.0);
                            }
                        }
                        TlsExtension::ALPN(protos) => {
                            hs.alpn_selected = protos
                                .first()
                                .map(|p| String::from_utf8_lossy(p).into_owned());
                        }
                        _ => {}
                    }
                }
                if hs.version == Some(0x0304) {
                    // Everything after the ServerHello is encrypted in TLS 1.3.
                    self.encrypted = [true, true];
                }
            }
            TlsMessageHandshake::Certificate(c) if dir == 1 && hs.chain.is_empty() => {
                hs.cert_frame = Some(pkt.frame);
                hs.chain = c
                    .cert_chain
                    .iter()
                    .take(MAX_CHAIN)
                    .map(|r| r.data.to_vec())
                    .collect();
            }
            _ => {}
        }
    }
}

/// TLS alert descriptions (RFC 8446 6 and RFC 5246 7.2).
pub fn alert_name(d: u8) -> &'static str {
    match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown_alert",
    }
}

/// `TLS 1.2`, `TLS 1.3` ...
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("0x{v:04x}"),
    }
}
