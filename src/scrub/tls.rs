//! `--keep tls-handshake`: follow TLS record boundaries through each TCP
//! direction so that handshake, alert and change-cipher-spec records are
//! kept and everything else (application data, TLS 1.3's encrypted
//! handshake) is removed. Segments keep a prefix: the kept records from the
//! start of the payload up to the first byte that is not kept.
//!
//! With `--hash-names`, names in ClientHello (SNI) and certificates (subject
//! CN, SAN DNS names, and with `--anonymize` SAN IP addresses) are
//! rewritten. Those messages can span segments, so a first pass over the
//! file ([`NameCollector`]) reassembles the handshakes and records each
//! replacement by TCP sequence number; the writing pass applies them to
//! every copy of the bytes (retransmissions, other capture points).
//! Handshake bytes that could not be parsed are removed from there on.

use super::anonymize::{AddressMapper, NameHasher};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// One TCP direction: source, destination, source port, destination port.
pub type DirKey = (IpAddr, IpAddr, u16, u16);

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
/// Largest record length accepted (2^14 plus the expansion TLS allows).
const MAX_RECORD: u16 = 16_384 + 2_048;
/// Directions followed at once; beyond it the table starts again (counted).
pub const MAX_DIRECTIONS: usize = 1 << 18;
const MAX_SPANS: usize = 32;

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn kept_type(t: u8) -> bool {
    matches!(t, CHANGE_CIPHER_SPEC | ALERT | HANDSHAKE)
}

fn plausible_header(h: &[u8]) -> bool {
    h.len() >= 5
        && (20..=24).contains(&h[0])
        && h[1] == 3
        && h[2] <= 4
        && u16::from_be_bytes([h[3], h[4]]) <= MAX_RECORD
}

/// A record's place in the stream: `[start, end)` in sequence numbers.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
    ty: u8,
}

#[derive(Debug, Default)]
struct Direction {
    synced: bool,
    next_seq: u32,
    /// Where the current record ends (the next header starts).
    rec_end: u32,
    rec_type: u8,
    hdr: [u8; 5],
    hdr_len: usize,
    hdr_seq: u32,
    spans: VecDeque<Span>,
}

/// Handshake-record body bytes of an in-order segment, for the name pass.
#[derive(Debug, Clone, Copy)]
pub struct BodyPiece {
    /// Offset in the segment payload and length.
    pub at: usize,
    pub len: usize,
    pub seq: u32,
}

/// What one segment holds.
#[derive(Debug, Default)]
pub struct Classified {
    /// Payload bytes to keep from the start.
    pub keep: usize,
    /// Bytes of the segment that are TLS records (the rest of the removed
    /// bytes are not TLS as far as capsift can tell).
    pub tls_bytes: usize,
    /// Handshake bodies of in-order data (only when asked for).
    pub pieces: Vec<BodyPiece>,
    /// A ChangeCipherSpec record started in this segment: later handshake
    /// records of this direction are encrypted.
    pub ccs: bool,
}

/// Record boundaries of every TCP direction.
#[derive(Default)]
pub struct TlsStreams {
    dirs: HashMap<DirKey, Direction>,
    /// Times the table was full and started again.
    pub resets: u64,
}

impl TlsStreams {
    /// Classify one TCP segment's payload.
    pub fn segment(
        &mut self,
        key: DirKey,
        seq: u32,
        syn: bool,
        payload: &[u8],
        want_pieces: bool,
    ) -> Classified {
        if !self.dirs.contains_key(&key) && self.dirs.len() >= MAX_DIRECTIONS {
            self.dirs.clear();
            self.resets += 1;
        }
        let d = self.dirs.entry(key).or_default();
        let mut out = Classified::default();
        if syn {
            *d = Direction {
                synced: true,
                next_seq: seq.wrapping_add(1),
                rec_end: seq.wrapping_add(1),
                ..Direction::default()
            };
            return out;
        }
        if payload.is_empty() {
            return out;
        }
        if d.synced && seq != d.next_seq {
            if seq_lt(seq, d.next_seq) {
                // A retransmission or a copy from another capture point:
                // classify from the records already seen.
                return d.classify_old(seq, payload.len());
            }
            d.synced = false; // a gap: record boundaries are lost
        }
        if !d.synced {
            if !plausible_header(payload) {
                d.next_seq = seq.wrapping_add(payload.len() as u32);
                return out;
            }
            d.synced = true;
            d.rec_end = seq;
            d.hdr_len = 0;
            d.spans.clear();
        }
        d.walk(seq, payload, want_pieces, &mut out);
        out
    }
}

impl Direction {
    fn push_span(&mut self, s: Span) {
        if self.spans.len() == MAX_SPANS {
            self.spans.pop_front();
        }
        self.spans.push_back(s);
    }

    fn classify_old(&self, seq: u32, len: usize) -> Classified {
        let mut out = Classified::default();
        let mut at = seq;
        let end = seq.wrapping_add(len as u32);
        let mut prefix = true;
        while seq_lt(at, end) {
            let Some(s) = self
                .spans
                .iter()
                .find(|s| !seq_lt(at, s.start) && seq_lt(at, s.end))
            else {
                break;
            };
            let upto = if seq_lt(s.end, end) { s.end } else { end };
            let n = upto.wrapping_sub(at) as usize;
            out.tls_bytes += n;
            if prefix && kept_type(s.ty) {
                out.keep += n;
            } else {
                prefix = false;
            }
            at = upto;
        }
        out
    }

    fn walk(&mut self, seq: u32, p: &[u8], want_pieces: bool, out: &mut Classified) {
        let mut pos = 0;
        let mut prefix = true;
        while pos < p.len() {
            let cur = seq.wrapping_add(pos as u32);
            if self.hdr_len > 0 || cur == self.rec_end {
                if self.hdr_len == 0 {
                    self.hdr_seq = cur;
                }
                let take = (5 - self.hdr_len).min(p.len() - pos);
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&p[pos..pos + take]);
                let split = self.hdr_len > 0 || take < 5;
                self.hdr_len += take;
                pos += take;
                if self.hdr_len < 5 {
                    break; // a header cut by the segment end: its type is not known yet
                }
                self.hdr_len = 0;
                if !plausible_header(&self.hdr) {
                    self.synced = false;
                    break;
                }
                let ty = self.hdr[0];
                let len = u32::from(u16::from_be_bytes([self.hdr[3], self.hdr[4]]));
                self.rec_type = ty;
                self.rec_end = self.hdr_seq.wrapping_add(5 + len);
                self.push_span(Span {
                    start: self.hdr_seq,
                    end: self.rec_end,
                    ty,
                });
                if ty == CHANGE_CIPHER_SPEC {
                    out.ccs = true;
                }
                out.tls_bytes += take;
                if split || !kept_type(ty) {
                    prefix = false;
                }
                if prefix {
                    out.keep = pos;
                }
            } else {
                let n = (self.rec_end.wrapping_sub(cur) as usize).min(p.len() - pos);
                out.tls_bytes += n;
                if want_pieces && self.rec_type == HANDSHAKE {
                    out.pieces.push(BodyPiece {
                        at: pos,
                        len: n,
                        seq: cur,
                    });
                }
                pos += n;
                if prefix && kept_type(self.rec_type) {
                    out.keep = pos;
                } else {
                    prefix = false;
                }
            }
        }
        self.next_seq = seq.wrapping_add(p.len() as u32);
    }
}

/// Bytes to write over the stream at a sequence number.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub seq: u32,
    pub bytes: Vec<u8>,
}

/// What the name pass found for one direction.
#[derive(Debug, Default, Clone)]
pub struct DirectionNames {
    pub replacements: Vec<Replacement>,
    /// Handshake bytes from here on could not be parsed: remove them.
    pub unsafe_from: Option<u32>,
}

/// Largest handshake reassembled per direction (certificate chains are a
/// few KB; beyond this the rest of the handshake is removed).
const MAX_HANDSHAKE: usize = 256 * 1024;

#[derive(Default)]
struct Assembly {
    buf: Vec<u8>,
    /// Runs of contiguous sequence numbers: (offset in buf, seq).
    runs: Vec<(usize, u32)>,
    parsed: usize,
    done: bool,
}

impl Assembly {
    fn seq_of(&self, off: usize) -> u32 {
        let i = self.runs.partition_point(|r| r.0 <= off).saturating_sub(1);
        let (o, s) = self.runs.get(i).copied().unwrap_or((0, 0));
        s.wrapping_add((off - o) as u32)
    }
}

/// First pass of `--hash-names` with `--keep tls-handshake`.
#[derive(Default)]
pub struct NameCollector {
    streams: TlsStreams,
    asm: HashMap<DirKey, Assembly>,
    pub found: HashMap<DirKey, DirectionNames>,
    pub names_hashed: u64,
    pub certificates: u64,
}

impl NameCollector {
    pub fn segment(
        &mut self,
        key: DirKey,
        seq: u32,
        syn: bool,
        payload: &[u8],
        names: &mut NameHasher,
        addrs: Option<&mut AddressMapper>,
    ) {
        let c = self.streams.segment(key, seq, syn, payload, true);
        if syn {
            self.asm.remove(&key);
        }
        if c.pieces.is_empty() && !c.ccs {
            return;
        }
        if !self.asm.contains_key(&key) && self.asm.len() >= MAX_DIRECTIONS {
            // Cannot follow more handshakes at once: keep none of this one's.
            self.mark_unsafe(key, seq);
            return;
        }
        let a = self.asm.entry(key).or_default();
        if a.done {
            return;
        }
        for p in &c.pieces {
            if a.buf.len() + p.len > MAX_HANDSHAKE {
                let s = p.seq;
                a.done = true;
                self.mark_unsafe(key, s);
                return;
            }
            let contiguous = a
                .runs
                .last()
                .is_some_and(|&(o, s)| s.wrapping_add((a.buf.len() - o) as u32) == p.seq);
            if !contiguous {
                a.runs.push((a.buf.len(), p.seq));
            }
            a.buf.extend_from_slice(&payload[p.at..p.at + p.len]);
        }
        self.parse_messages(key, names, addrs);
        if c.ccs {
            // Handshake records after ChangeCipherSpec are encrypted.
            if let Some(a) = self.asm.get_mut(&key) {
                a.done = true;
            }
        }
    }

    fn mark_unsafe(&mut self, key: DirKey, seq: u32) {
        let f = self.found.entry(key).or_default();
        if f.unsafe_from.is_none() {
            f.unsafe_from = Some(seq);
        }
    }

    fn parse_messages(
        &mut self,
        key: DirKey,
        names: &mut NameHasher,
        mut addrs: Option<&mut AddressMapper>,
    ) {
        let Some(a) = self.asm.get_mut(&key) else {
            return;
        };
        let mut reps: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut failed_at = None;
        while a.buf.len() >= a.parsed + 4 {
            let h = &a.buf[a.parsed..];
            let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            if h.len() < 4 + len {
                break;
            }
            let body = &h[4..4 + len];
            let base = a.parsed + 4;
            let ok = match h[0] {
                1 => client_hello_names(body, base, names, &mut reps),
                11 => {
                    self.certificates += 1;
                    certificate_names(body, base, names, addrs.as_deref_mut(), &mut reps)
                }
                _ => true,
            };
            if !ok {
                failed_at = Some(a.parsed);
                break;
            }
            a.parsed += 4 + len;
        }
        let mut out = Vec::new();
        for (off, bytes) in reps {
            self.names_hashed += 1;
            // Split where the sequence numbers are not contiguous (record headers).
            let mut start = 0;
            while start < bytes.len() {
                let seq0 = a.seq_of(off + start);
                let mut n = 1;
                while start + n < bytes.len()
                    && a.seq_of(off + start + n) == seq0.wrapping_add(n as u32)
                {
                    n += 1;
                }
                out.push(Replacement {
                    seq: seq0,
                    bytes: bytes[start..start + n].to_vec(),
                });
                start += n;
            }
        }
        let unsafe_seq = failed_at.map(|o| a.seq_of(o));
        if failed_at.is_some() {
            a.done = true;
        }
        let f = self.found.entry(key).or_default();
        f.replacements.extend(out);
        if let Some(s) = unsafe_seq {
            f.unsafe_from.get_or_insert(s);
        }
    }

    /// Handshakes still incomplete at the end: what they hold was not parsed.
    pub fn finish(&mut self) {
        let pending: Vec<(DirKey, u32)> = self
            .asm
            .iter()
            .filter(|(_, a)| !a.done && a.parsed < a.buf.len())
            .map(|(k, a)| (*k, a.seq_of(a.parsed)))
            .collect();
        for (k, s) in pending {
            self.mark_unsafe(k, s);
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

/// SNI host names of a ClientHello body; offsets are `base` + offset in body.
fn client_hello_names(
    body: &[u8],
    base: usize,
    names: &mut NameHasher,
    reps: &mut Vec<(usize, Vec<u8>)>,
) -> bool {
    let walk = || -> Option<Vec<(usize, usize)>> {
        let mut at = 2 + 32; // version, random
        at += 1 + usize::from(*body.get(at)?); // session id
        at += 2 + be16(body, at)?; // cipher suites
        at += 1 + usize::from(*body.get(at)?); // compression
        if at == body.len() {
            return Some(Vec::new()); // no extensions
        }
        let ext_end = at + 2 + be16(body, at)?;
        at += 2;
        let mut found = Vec::new();
        while at + 4 <= ext_end.min(body.len()) {
            let ty = be16(body, at)?;
            let len = be16(body, at + 2)?;
            let data = at + 4;
            if ty == 0 {
                let list_end = data + 2 + be16(body, data)?;
                let mut p = data + 2;
                while p + 3 <= list_end {
                    let n = be16(body, p + 1)?;
                    if p + 3 + n > body.len() {
                        return None;
                    }
                    found.push((p + 3, n));
                    p += 3 + n;
                }
            }
            at = data + len;
        }
        Some(found)
    };
    let Some(found) = walk() else {
        return false;
    };
    for (at, n) in found {
        let mut name = body[at..at + n].to_vec();
        names.hash_dotted(&mut name);
        reps.push((base + at, name));
    }
    true
}

/// Names in a TLS 1.2 Certificate message: each certificate is parsed and
/// every occurrence of its subject CN and SAN DNS names (and, when
/// anonymizing, SAN IP addresses) in its DER is replaced.
fn certificate_names(
    body: &[u8],
    base: usize,
    names: &mut NameHasher,
    mut addrs: Option<&mut AddressMapper>,
    reps: &mut Vec<(usize, Vec<u8>)>,
) -> bool {
    use x509_parser::prelude::*;
    let u24 = |at: usize| -> Option<usize> {
        Some(
            (usize::from(*body.get(at)?) << 16)
                | (usize::from(*body.get(at + 1)?) << 8)
                | usize::from(*body.get(at + 2)?),
        )
    };
    let Some(total) = u24(0) else { return false };
    let end = (3 + total).min(body.len());
    let mut at = 3;
    while at + 3 <= end {
        let Some(n) = u24(at) else { return false };
        let der_at = at + 3;
        let Some(der) = body.get(der_at..der_at + n) else {
            return false;
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return false;
        };
        let mut texts: Vec<Vec<u8>> = Vec::new();
        let mut ips: Vec<Vec<u8>> = Vec::new();
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                texts.push(s.as_bytes().to_vec());
            }
        }
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for g in &san.value.general_names {
                match g {
                    GeneralName::DNSName(s) => texts.push(s.as_bytes().to_vec()),
                    GeneralName::IPAddress(b) => ips.push(b.to_vec()),
                    _ => {}
                }
            }
        }
        for t in texts.iter().filter(|t| t.len() >= 3) {
            let mut h = t.clone();
            names.hash_dotted(&mut h);
            for pos in find_all(der, t) {
                reps.push((base + der_at + pos, h.clone()));
            }
        }
        if let Some(m) = addrs.as_deref_mut() {
            for ip in ips.iter().filter(|b| b.len() == 4 || b.len() == 16) {
                let mut mapped = ip.clone();
                m.map_ip_bytes(&mut mapped);
                // The SAN's own encoding: [7] length address.
                let mut needle = vec![0x87, ip.len() as u8];
                needle.extend_from_slice(ip);
                for pos in find_all(der, &needle) {
                    reps.push((base + der_at + pos + 2, mapped.clone()));
                }
            }
        }
        at = der_at + n;
    }
    true
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return Vec::new();
    }
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// Apply the name pass's replacements to a kept segment payload starting at
/// `seq`; returns how many bytes may be kept (cut where unsafe bytes start).
pub fn apply(names: &DirectionNames, seq: u32, payload: &mut [u8]) -> usize {
    let end = seq.wrapping_add(payload.len() as u32);
    let mut keep = payload.len();
    if let Some(u) = names.unsafe_from {
        if seq_lt(u, end) {
            keep = if seq_lt(u, seq) {
                0
            } else {
                u.wrapping_sub(seq) as usize
            };
        }
    }
    for r in &names.replacements {
        let r_end = r.seq.wrapping_add(r.bytes.len() as u32);
        if !seq_lt(r.seq, end) || !seq_lt(seq, r_end) {
            continue;
        }
        for (i, b) in r.bytes.iter().enumerate() {
            let s = r.seq.wrapping_add(i as u32);
            if !seq_lt(s, seq) && seq_lt(s, end) {
                payload[s.wrapping_sub(seq) as usize] = *b;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DirKey {
        (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            40000,
            443,
        )
    }

    #[test]
    fn handshake_kept_application_data_removed_across_segments() {
        let mut t = TlsStreams::default();
        t.segment(key(), 999, true, &[], false);
        // A 10-byte handshake record split over two segments, then app data.
        let mut s1 = vec![22, 3, 3, 0, 10];
        s1.extend_from_slice(&[1; 6]);
        let c1 = t.segment(key(), 1000, false, &s1, false);
        assert_eq!(c1.keep, 11);
        let mut s2 = vec![1; 4];
        s2.extend_from_slice(&[23, 3, 3, 0, 3, 9, 9, 9]);
        let c2 = t.segment(key(), 1011, false, &s2, false);
        assert_eq!(
            c2.keep, 4,
            "the rest of the handshake, not the application data"
        );
        // A retransmission of the first segment is classified from the spans.
        let c3 = t.segment(key(), 1000, false, &s1, false);
        assert_eq!(c3.keep, 11);
        // Plain text never syncs.
        let c4 = t.segment(key(), 1023, false, b"GET / HTTP/1.1\r\n", false);
        assert_eq!(c4.keep, 0);
    }
}
