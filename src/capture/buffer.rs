//! A refilling window over a byte stream.
//!
//! pcap-parser's own reader fills its buffer with a single `read()`, which
//! fails on pipes and decompressors (short reads), so capsift keeps its own
//! window: `ensure(n)` reads until `n` bytes are available or the stream
//! ends. The window grows only when a single record needs it, and the caller
//! checks every length read from the file against a bound before asking.

use std::io::{self, Read};

/// Default window size: measured here, a 1 MiB streaming buffer beats mmap.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

pub struct StreamBuffer {
    reader: Box<dyn Read + Send>,
    data: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `data[start]`.
    offset: u64,
    eof: bool,
}

impl StreamBuffer {
    pub fn new(reader: Box<dyn Read + Send>) -> Self {
        StreamBuffer {
            reader,
            data: vec![0; DEFAULT_CAPACITY],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Bytes currently available.
    #[inline]
    pub fn available(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Stream offset of the first available byte.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Make at least `n` bytes available. Returns `Ok(false)` when the stream
    /// ends first (the bytes that exist stay available). The caller bounds `n`.
    pub fn ensure(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.start + n > self.data.len() {
            // Slide what is left to the front, and grow if one record needs it.
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.data.len() {
                self.data.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            match self.reader.read(&mut self.data[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Drop `n` available bytes (n <= available().len()).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
        if self.start == self.end && self.data.len() > DEFAULT_CAPACITY {
            // A huge record has passed: give the memory back.
            self.data.truncate(DEFAULT_CAPACITY);
            self.data.shrink_to_fit();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Skip `n` bytes that may not be buffered (for blocks we do not parse).
    /// Returns `Ok(false)` when the stream ended before `n` bytes.
    pub fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        loop {
            let have = (self.end - self.start) as u64;
            if have >= n {
                self.consume(n as usize);
                return Ok(true);
            }
            self.consume(have as usize);
            n -= have;
            if !self.ensure(1)? {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A reader that returns one byte per call, like a slow pipe.
    pub(in crate::capture) struct Trickle(pub Vec<u8>, pub usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn short_reads_are_joined_and_large_records_grow_the_window() {
        let data: Vec<u8> = (0..(3 * DEFAULT_CAPACITY)).map(|i| i as u8).collect();
        let mut b = StreamBuffer::new(Box::new(Trickle(data.clone(), 0)));
        assert!(b.ensure(24).unwrap());
        assert_eq!(&b.available()[..24], &data[..24]);
        b.consume(10);
        assert!(b.ensure(2 * DEFAULT_CAPACITY).unwrap());
        assert_eq!(b.available()[0], data[10]);
        assert_eq!(b.offset(), 10);
        b.consume(2 * DEFAULT_CAPACITY);
        assert!(b.skip(DEFAULT_CAPACITY as u64 - 20).unwrap());
        assert!(b.ensure(10).unwrap());
        assert!(!b.ensure(11).unwrap());
        assert_eq!(b.available().len(), 10);
    }
}
