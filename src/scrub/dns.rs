//! DNS messages kept by `--keep dns`, rewritten in place: with
//! `--hash-names` every label gets a same-length keyed hash (so the
//! message stays valid and compression pointers still point at labels),
//! with `--anonymize` A and AAAA answers are mapped like the IP headers.
//! Record data that is neither an address nor a name (TXT, HTTPS hints, ...)
//! is zeroed when names are hashed, since it may spell names too.

use super::anonymize::{AddressMapper, NameHasher};

/// What was done to one message.
#[derive(Debug, Default, Clone, Copy)]
pub struct DnsRewrite {
    pub addresses: u64,
    pub opaque_bytes_zeroed: u64,
}

/// The message could not be walked: the caller removes it rather than keep
/// names or addresses it could not rewrite.
#[derive(Debug)]
pub struct Unwalkable;

const HEADER: usize = 12;
/// Compression pointers followed per name (a loop is a hostile message).
const MAX_HOPS: usize = 32;

struct Walker<'m, 'h> {
    msg: &'m mut [u8],
    /// Label starts walked so far, in message order (a bit per offset): a
    /// compression pointer may only lead to one of them.
    seen: Vec<u64>,
    /// Labels already hashed (pointers reach them again).
    hashed: Vec<u64>,
    names: Option<&'h mut NameHasher>,
}

fn bit(set: &[u64], at: usize) -> bool {
    set.get(at / 64).is_some_and(|w| w & (1 << (at % 64)) != 0)
}

fn set_bit(set: &mut [u64], at: usize) {
    if let Some(w) = set.get_mut(at / 64) {
        *w |= 1 << (at % 64);
    }
}

impl Walker<'_, '_> {
    fn byte(&self, at: usize) -> Result<u8, Unwalkable> {
        self.msg.get(at).copied().ok_or(Unwalkable)
    }

    fn u16(&self, at: usize) -> Result<u16, Unwalkable> {
        Ok(u16::from_be_bytes([self.byte(at)?, self.byte(at + 1)?]))
    }

    /// Walk the name at `at`, hashing its labels; returns where it ends.
    fn name(&mut self, mut at: usize) -> Result<usize, Unwalkable> {
        let mut end = None;
        let mut hops = 0;
        loop {
            let len = self.byte(at)?;
            if end.is_none() {
                set_bit(&mut self.seen, at);
            }
            match len >> 6 {
                0 if len == 0 => return Ok(end.unwrap_or(at + 1)),
                0 => {
                    let l = usize::from(len);
                    let label = at + 1..at + 1 + l;
                    if label.end > self.msg.len() {
                        return Err(Unwalkable);
                    }
                    if let Some(h) = self.names.as_deref_mut() {
                        if !bit(&self.hashed, at) {
                            h.hash_label(&mut self.msg[label.clone()]);
                            set_bit(&mut self.hashed, at);
                        }
                    }
                    at = label.end;
                }
                3 => {
                    let target = usize::from(self.u16(at)? & 0x3fff);
                    end.get_or_insert(at + 2);
                    hops += 1;
                    // A pointer leads back to a label already walked, never
                    // into the header, the middle of a label or record data:
                    // rewriting "labels" there would change the message's
                    // structure (both found by fuzzing, fuzz/regressions/dns).
                    if hops > MAX_HOPS
                        || target < HEADER
                        || target >= at
                        || !bit(&self.seen, target)
                    {
                        return Err(Unwalkable);
                    }
                    at = target;
                }
                _ => return Err(Unwalkable),
            }
        }
    }
}

/// Rewrite a DNS message in place. The message's layout (where every
/// name and record ends) is read before and after: a hostile message whose
/// names overlap (a record length cutting into a name, a pointer into
/// rewritten bytes) could read differently once rewritten, and is refused
/// instead (found by fuzzing, fuzz/regressions/dns). On an error the caller
/// removes the message; bytes may already have been rewritten.
pub fn rewrite(
    msg: &mut [u8],
    names: Option<&mut NameHasher>,
    addrs: Option<&mut AddressMapper>,
) -> Result<DnsRewrite, Unwalkable> {
    let mut before = Vec::new();
    walk(msg, None, None, &mut before)?;
    let mut layout = Vec::new();
    let out = walk(msg, names, addrs, &mut layout)?;
    let mut after = Vec::new();
    walk(msg, None, None, &mut after)?;
    if before != after || before != layout {
        return Err(Unwalkable);
    }
    Ok(out)
}

/// One pass over the message; `layout` gets every name's and record's end.
fn walk(
    msg: &mut [u8],
    names: Option<&mut NameHasher>,
    mut addrs: Option<&mut AddressMapper>,
    layout: &mut Vec<usize>,
) -> Result<DnsRewrite, Unwalkable> {
    if msg.len() < HEADER {
        return Err(Unwalkable);
    }
    let hashing = names.is_some();
    let counts = [4usize, 6, 8, 10].map(|o| usize::from(u16::from_be_bytes([msg[o], msg[o + 1]])));
    let words = msg.len() / 64 + 1;
    let mut w = Walker {
        msg,
        seen: vec![0; words],
        hashed: vec![0; words],
        names,
    };
    let mut out = DnsRewrite::default();
    let mut at = HEADER;
    for _ in 0..counts[0] {
        at = w.name(at)? + 4;
        layout.push(at);
    }
    let records = counts[1] + counts[2] + counts[3];
    for _ in 0..records {
        at = w.name(at)?;
        layout.push(at);
        let rtype = w.u16(at)?;
        let rdlen = usize::from(w.u16(at + 8)?);
        let rdata = at + 10;
        let end = rdata + rdlen;
        if end > w.msg.len() {
            return Err(Unwalkable);
        }
        match rtype {
            // A, AAAA
            1 | 28 => {
                if let Some(m) = addrs.as_deref_mut() {
                    if m.map_ip_bytes(&mut w.msg[rdata..end]) {
                        out.addresses += 1;
                    }
                }
            }
            // NS, CNAME, PTR, DNAME: one name
            2 | 5 | 12 | 39 => {
                layout.push(w.name(rdata)?);
            }
            // MX: preference, name
            15 => {
                layout.push(w.name(rdata + 2)?);
            }
            // SRV: priority, weight, port, target
            33 => {
                layout.push(w.name(rdata + 6)?);
            }
            // SOA: two names then numbers
            6 => {
                let n = w.name(rdata)?;
                layout.push(n);
                layout.push(w.name(n)?);
            }
            // OPT (EDNS): options are about the transport, not names
            41 => {}
            _ if hashing => {
                w.msg[rdata..end].fill(0);
                out.opaque_bytes_zeroed += rdlen as u64;
            }
            _ => {}
        }
        at = end;
        layout.push(at);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrub::anonymize::ScrubKey;

    /// A response for `web.app.svc.cluster.local` A 10.244.1.7 with a
    /// compression pointer, as dnsmasq sends it.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for l in ["web", "app", "svc", "cluster", "local"] {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 244, 1, 7]);
        m
    }

    #[test]
    fn names_hashed_once_and_address_mapped() {
        let key = ScrubKey::from_bytes([1; 32]);
        let mut h = NameHasher::new(&key);
        let mut a = AddressMapper::new(&key, &[]);
        let mut m = response();
        let r = rewrite(&mut m, Some(&mut h), Some(&mut a)).unwrap();
        assert_eq!(r.addresses, 1);
        assert_eq!(
            h.labels_hashed, 2,
            "web and app, once each despite the pointer"
        );
        assert_ne!(&m[13..16], b"web");
        assert_eq!(&m[21..24], b"svc");
        assert_ne!(&m[m.len() - 4..], &[10, 244, 1, 7]);
        // The message still parses, with the same structure.
        let msg = hickory_proto::op::Message::from_vec(&m).unwrap();
        assert_eq!(msg.answers().len(), 1);
        assert!(msg.queries()[0]
            .name()
            .to_ascii()
            .ends_with(".svc.cluster.local."));
    }

    #[test]
    fn pointer_loops_are_refused() {
        let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        let key = ScrubKey::from_bytes([1; 32]);
        let mut h = NameHasher::new(&key);
        assert!(rewrite(&mut m, Some(&mut h), None).is_err());
    }
}
