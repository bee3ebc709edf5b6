//! IP fragment reassembly, for the datagrams whose content matters to a
//! detector (DNS responses larger than the path MTU are fragmented).
//!
//! Bounded: at most [`MAX_DATAGRAMS`] datagrams in progress, each at most
//! 64 KiB, dropped after [`TIMEOUT_NS`] of capture time without completing.
//! Overlapping fragments keep the first bytes received.

use crate::capture::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;

pub const MAX_DATAGRAMS: usize = 1024;
/// Bytes held in partial datagrams at most.
pub const MAX_BYTES: usize = 16 << 20;
pub const TIMEOUT_NS: i64 = 30_000_000_000;
const MAX_DATAGRAM: usize = 65_535;

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ident: u32,
    pub proto: u8,
}

#[derive(Debug)]
struct Partial {
    data: Vec<u8>,
    /// Byte ranges received, as (start, end).
    have: Vec<(usize, usize)>,
    /// Total length, known once the last fragment arrived.
    total: Option<usize>,
    first_ts: Timestamp,
}

#[derive(Default)]
pub struct Defragmenter {
    partial: HashMap<FragKey, Partial>,
    bytes: usize,
    pub dropped: u64,
}

impl Defragmenter {
    /// Add a fragment (`offset` in bytes, `more` = more fragments follow).
    /// Returns the whole payload when this fragment completes the datagram.
    pub fn push(
        &mut self,
        key: FragKey,
        offset: usize,
        more: bool,
        payload: &[u8],
        ts: Timestamp,
    ) -> Option<Vec<u8>> {
        let mut freed = 0;
        self.partial.retain(|_, p| {
            let keep = ts.0.saturating_sub(p.first_ts.0) <= TIMEOUT_NS;
            if !keep {
                freed += p.data.len();
            }
            keep
        });
        self.bytes -= freed;
        let end = offset.checked_add(payload.len())?;
        if end > MAX_DATAGRAM {
            self.dropped += 1;
            return None;
        }
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_DATAGRAMS {
            self.dropped += 1;
            return None;
        }
        let p = self.partial.entry(key).or_insert(Partial {
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            first_ts: ts,
        });
        if p.data.len() < end {
            if self.bytes + (end - p.data.len()) > MAX_BYTES {
                self.dropped += 1;
                return None;
            }
            self.bytes += end - p.data.len();
            p.data.resize(end, 0);
        }
        // Keep bytes already received; fill only the new ones.
        let mut i = offset;
        while i < end {
            if let Some(&(_, e)) = p.have.iter().find(|(s, e)| *s <= i && i < *e) {
                i = e.min(end);
                continue;
            }
            let next_start = p
                .have
                .iter()
                .map(|(s, _)| *s)
                .filter(|s| *s > i)
                .min()
                .unwrap_or(end)
                .min(end);
            p.data[i..next_start].copy_from_slice(&payload[i - offset..next_start - offset]);
            i = next_start;
        }
        p.have.push((offset, end));
        if !more {
            p.total = Some(end);
        }
        let total = p.total?;
        // Complete when the ranges cover 0..total.
        let mut ranges = p.have.clone();
        ranges.sort_unstable();
        let mut covered = 0;
        for (s, e) in ranges {
            if s > covered {
                return None;
            }
            covered = covered.max(e);
        }
        if covered < total {
            return None;
        }
        let mut p = self.partial.remove(&key)?;
        self.bytes -= p.data.len();
        p.data.truncate(total);
        Some(p.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragKey {
        FragKey {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            ident: 7,
            proto: 17,
        }
    }

    #[test]
    fn out_of_order_and_overlap() {
        let mut d = Defragmenter::default();
        let t = Timestamp(0);
        assert!(d.push(key(), 8, false, b"world", t).is_none());
        assert!(d.push(key(), 0, true, b"hello, w", t).is_some());
        let mut d = Defragmenter::default();
        assert!(d.push(key(), 0, true, b"hello, w", t).is_none());
        assert!(d.push(key(), 4, true, b"XXXX", t).is_none());
        assert_eq!(
            d.push(key(), 8, false, b"orld!", t).unwrap(),
            b"hello, world!"
        );
    }

    #[test]
    fn bounds() {
        let mut d = Defragmenter::default();
        assert!(d
            .push(key(), 65_530, false, &[0u8; 100], Timestamp(0))
            .is_none());
        assert_eq!(d.dropped, 1);
        for i in 0..(MAX_DATAGRAMS as u32 + 10) {
            let mut k = key();
            k.ident = i;
            d.push(k, 0, true, b"x", Timestamp(0));
        }
        assert!(d.dropped >= 10);
        // Old fragments expire.
        let mut k = key();
        k.ident = 99_999;
        d.push(k, 0, true, b"y", Timestamp(TIMEOUT_NS + 1));
        assert_eq!(d.partial.len(), 1);
    }
}
