//! Opening a capture: a file or stdin, plain or gzip/zstd-compressed.
//!
//! Compression is recognised by magic bytes, never by file name: captures
//! arrive from tickets renamed, and `kubectl ... | gzip` produces files with
//! no suffix at all.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// How the bytes of a capture were stored on disk or on the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Recognise a compression container from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A byte stream that starts with bytes already read (for sniffing) and
/// continues with the rest of the underlying reader.
struct Prefixed<R> {
    head: Vec<u8>,
    pos: usize,
    rest: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = (self.head.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

/// Read until `buf` is full or the stream ends; pipes and decompressors
/// return short reads, and a single `read()` is not enough to sniff a header.
pub fn read_fully(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// An opened capture byte stream, decompressed if needed.
pub struct CaptureSource {
    pub reader: Box<dyn Read + Send>,
    pub compression: Compression,
}

/// Open `path` (`-` is stdin) and undo gzip or zstd compression if the
/// first bytes say so.
pub fn open(path: &Path) -> io::Result<CaptureSource> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path)?)
    };
    from_reader(raw)
}

/// Wrap an arbitrary reader, sniffing compression.
pub fn from_reader(mut raw: Box<dyn Read + Send>) -> io::Result<CaptureSource> {
    let mut head = vec![0u8; 4];
    let n = read_fully(raw.as_mut(), &mut head)?;
    head.truncate(n);
    let compression = Compression::sniff(&head);
    let joined = Prefixed {
        head,
        pos: 0,
        rest: raw,
    };
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(joined),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            joined,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(joined)?),
    };
    Ok(CaptureSource {
        reader,
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniffs_gzip_and_zstd() {
        let plain = b"\xd4\xc3\xb2\xa1hello capture".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&plain[..], 1).unwrap();
        for (bytes, kind) in [
            (plain.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
        ] {
            let mut src = from_reader(Box::new(io::Cursor::new(bytes))).unwrap();
            assert_eq!(src.compression, kind);
            let mut out = Vec::new();
            src.reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
    }
}
