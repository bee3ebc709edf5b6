//! Internet checksums kept right after rewriting, by incremental update
//! (RFC 1624): the new checksum is the old one adjusted by the difference
//! between the old and the new bytes it covers. Because only the difference
//! is used, a checksum that was wrong stays wrong by the same amount: an
//! offloaded (partial) checksum stays a valid partial checksum and a zero
//! UDP checksum ("none") stays zero, as the issue asks.

/// A checksum field and what it covers, as offsets in the packet bytes.
#[derive(Debug, Clone, Copy)]
pub struct ChecksumField {
    /// Offset of the 16-bit checksum.
    pub field: usize,
    /// Covered bytes (those captured): `[start, end)`.
    pub start: usize,
    pub end: usize,
    /// Pseudo-header addresses (source and destination, contiguous) of the
    /// enclosing IP header: offset and length (8 for IPv4, 32 for IPv6).
    pub pseudo: Option<(usize, usize)>,
    /// UDP over IPv4: zero means "no checksum" and a computed zero is sent as 0xffff.
    pub udp: bool,
}

/// One's-complement sum of big-endian 16-bit words; `odd` when the slice
/// starts at an odd distance from the start of the checksummed data.
fn sum(data: &[u8], odd: bool) -> u32 {
    let mut s: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    let f = fold(s);
    if odd {
        u32::from(f.swap_bytes())
    } else {
        u32::from(f)
    }
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn covered_sum(b: &[u8], c: &ChecksumField) -> u32 {
    let end = c.end.min(b.len());
    let mut s = 0u32;
    if c.start < c.field.min(end) {
        s += sum(&b[c.start..c.field.min(end)], false);
    }
    let after = c.field + 2;
    if after < end {
        s += sum(&b[after..end], (after - c.start) % 2 == 1);
    }
    if let Some((at, len)) = c.pseudo {
        if let Some(p) = b.get(at..at + len) {
            s += sum(p, false);
        }
    }
    s
}

/// Update the checksum at `c.field` in `new` for the changes from `old`
/// (same length: `new` is `old` rewritten in place). Returns whether it changed.
pub fn update(old: &[u8], new: &mut [u8], c: &ChecksumField) -> bool {
    let Some(field) = old.get(c.field..c.field + 2) else {
        return false;
    };
    let hc = u16::from_be_bytes([field[0], field[1]]);
    if c.udp && hc == 0 {
        return false;
    }
    let m = fold(u64::from(covered_sum(old, c)));
    let m2 = fold(u64::from(covered_sum(new, c)));
    if m == m2 {
        return false;
    }
    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
    let mut hc2 = !fold(u64::from(!hc) + u64::from(!m) + u64::from(m2));
    if c.udp && hc2 == 0 {
        hc2 = 0xffff;
    }
    new[c.field..c.field + 2].copy_from_slice(&hc2.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full checksum of `b` with the field at `field` zeroed.
    fn full(b: &[u8], field: usize) -> u16 {
        let mut v = b.to_vec();
        v[field] = 0;
        v[field + 1] = 0;
        !fold(u64::from(sum(&v, false)))
    }

    #[test]
    fn ipv4_header_checksum_follows_address_rewrite() {
        // An IPv4 header from a real capture (captures/lab, 10.0.0.1 -> 10.0.0.2).
        let mut h: Vec<u8> = vec![
            0x45, 0, 0, 0x3c, 0x1c, 0x46, 0x40, 0, 0x40, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = full(&h, 10);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let old = h.clone();
        h[12..16].copy_from_slice(&[192, 0, 2, 77]);
        h[16..20].copy_from_slice(&[198, 51, 100, 3]);
        let f = ChecksumField {
            field: 10,
            start: 0,
            end: 20,
            pseudo: None,
            udp: false,
        };
        assert!(update(&old, &mut h, &f));
        assert_eq!(u16::from_be_bytes([h[10], h[11]]), full(&h, 10));
    }

    #[test]
    fn odd_offsets_and_wrong_checksums_keep_their_error() {
        let old: Vec<u8> = (0u8..41).collect();
        // Changes at an odd and an even offset, 41 bytes (an odd length).
        let f = ChecksumField {
            field: 2,
            start: 0,
            end: 41,
            pseudo: None,
            udp: false,
        };
        let mut right = old.clone();
        let c = full(&right, 2);
        right[2..4].copy_from_slice(&c.to_be_bytes());
        let mut new_right = right.clone();
        new_right[7] = 0xee;
        new_right[30] = 0x11;
        update(&right, &mut new_right, &f);
        assert_eq!(
            u16::from_be_bytes([new_right[2], new_right[3]]),
            full(&new_right, 2)
        );
        // A deliberately wrong checksum stays off by the same amount.
        let mut wrong = right.clone();
        wrong[2] ^= 0x10;
        let mut new_wrong = wrong.clone();
        new_wrong[7] = 0xee;
        new_wrong[30] = 0x11;
        update(&wrong, &mut new_wrong, &f);
        let val = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
        assert_eq!(
            val(&right).wrapping_sub(val(&wrong)),
            val(&new_right).wrapping_sub(val(&new_wrong))
        );
    }

    #[test]
    fn zero_udp_checksum_stays_zero() {
        let old = vec![0u8; 16];
        let mut new = old.clone();
        new[12] = 1;
        let f = ChecksumField {
            field: 6,
            start: 0,
            end: 16,
            pseudo: None,
            udp: true,
        };
        assert!(!update(&old, &mut new, &f));
        assert_eq!(&new[6..8], &[0, 0]);
    }
}
