//! In-order byte streams from TCP segments, for the protocols that need
//! them (DNS over TCP, TLS handshakes).
//!
//! Retransmitted and overlapping bytes are taken once; out-of-order segments
//! wait (within a bound) for the gap before them to fill. A gap that never
//! fills, or more buffered data than the bound, ends the stream: the consumer
//! is told, and no guess is made about the missing bytes.

use std::collections::BTreeMap;

#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// One direction of a TCP connection as a byte stream.
#[derive(Debug, Default)]
pub struct Reassembler {
    next: Option<u32>,
    buf: Vec<u8>,
    pending: BTreeMap<u32, Vec<u8>>,
    pending_bytes: usize,
    /// Set once the stream cannot continue (bound exceeded, or closed).
    pub broken: bool,
    /// The bound was exceeded (so the consumer can say so in a warning).
    pub overflowed: bool,
}

impl Reassembler {
    /// Add a segment. `limit` bounds buffered bytes (contiguous plus pending).
    pub fn push(&mut self, seq: u32, syn: bool, payload: &[u8], limit: usize) {
        if self.broken {
            return;
        }
        let start = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next.get_or_insert(start);
        if payload.is_empty() {
            return;
        }
        let end = start.wrapping_add(payload.len() as u32);
        if !seq_lt(next, end) {
            return; // all old data (a retransmission)
        }
        if seq_lt(next, start) {
            // A hole before this segment: keep it for later.
            if self.pending_bytes + payload.len() + self.buf.len() > limit
                || self.pending.len() >= 256
            {
                self.broken = true;
                self.overflowed = true;
                return;
            }
            self.pending_bytes += payload.len();
            self.pending
                .entry(start)
                .or_insert_with(|| payload.to_vec());
            return;
        }
        let skip = next.wrapping_sub(start) as usize;
        self.append(&payload[skip..], limit);
        // Pending segments that now fit.
        while let Some((&s, _)) = self.pending.iter().next() {
            let Some(n) = self.next else { break };
            if seq_lt(n, s) {
                break;
            }
            let Some(data) = self.pending.remove(&s) else {
                break;
            };
            self.pending_bytes -= data.len();
            let e = s.wrapping_add(data.len() as u32);
            if seq_lt(n, e) {
                let skip = n.wrapping_sub(s) as usize;
                self.append(&data[skip..], limit);
            }
        }
    }

    fn append(&mut self, data: &[u8], limit: usize) {
        if self.buf.len() + data.len() > limit {
            self.broken = true;
            self.overflowed = true;
            return;
        }
        self.buf.extend_from_slice(data);
        if let Some(n) = self.next.as_mut() {
            *n = n.wrapping_add(data.len() as u32);
        }
    }

    /// Contiguous bytes not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
    }

    /// Stop buffering (the consumer is done with this direction).
    pub fn close(&mut self) {
        self.broken = true;
        self.buf = Vec::new();
        self.pending.clear();
        self.pending_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_dedups_and_bounds() {
        let mut r = Reassembler::default();
        r.push(99, true, b"", 100);
        r.push(100, false, b"hello ", 100);
        r.push(112, false, b"!", 100); // out of order
        r.push(106, false, b"world", 100); // still a 1-byte hole at 111
        assert_eq!(r.data(), b"hello world");
        r.push(100, false, b"hello world?", 100); // overlapping retransmission fills it
        assert_eq!(r.data(), b"hello world?!");
        r.consume(6);
        assert_eq!(r.data(), b"world?!");
        r.push(113, false, &[0u8; 200], 100);
        assert!(r.broken);
    }

    #[test]
    fn sequence_wraps() {
        let mut r = Reassembler::default();
        r.push(u32::MAX - 2, false, b"abc", 100);
        r.push(0, false, b"def", 100);
        assert_eq!(r.data(), b"abcdef");
    }
}
