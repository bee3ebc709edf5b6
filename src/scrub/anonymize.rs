//! Consistent anonymization from one secret key: IP addresses by Crypto-PAn
//! (prefix-preserving), MAC addresses and DNS/TLS names by a keyed hash.
//! The same key gives the same mapping in every file, so captures from
//! several nodes still line up after scrubbing.

use super::cryptopan::CryptoPan;
use ring::hmac;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// 32 secret bytes: the Crypto-PAn key and, through HMAC, the name and MAC keys.
#[derive(Clone)]
pub struct ScrubKey([u8; 32]);

impl ScrubKey {
    /// Read a key file (64 hex digits), or create one with a new random key
    /// (mode 0600) when it does not exist. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(ScrubKey, bool), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = decode_hex(&hex).filter(|b| b.len() == 32).ok_or_else(|| {
                    format!(
                        "{}: not a capsift key (64 hex digits expected); remove it to have a new key made",
                        path.display()
                    )
                })?;
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                Ok((ScrubKey(k), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
                    .map_err(|_| "the system random generator failed".to_string())?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts
                    .open(path)
                    .map_err(|e| format!("cannot create key file {}: {e}", path.display()))?;
                let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                writeln!(f, "{hex}")
                    .map_err(|e| format!("cannot write key file {}: {e}", path.display()))?;
                Ok((ScrubKey(k), true))
            }
            Err(e) => Err(format!("cannot read key file {}: {e}", path.display())),
        }
    }

    pub fn from_bytes(k: [u8; 32]) -> ScrubKey {
        ScrubKey(k)
    }

    fn derived(&self, purpose: &[u8]) -> hmac::Key {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&k, purpose).as_ref())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An address range left as it is (`--keep-net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, b) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s}: not an address range like 10.96.0.0/12 or fd00::/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = if b.is_empty() {
            max
        } else {
            b.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s}: prefix length must be 0..={max}"))?
        };
        Ok(Cidr { addr, bits })
    }
}

impl Cidr {
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// Ranges never mapped: they identify no one, and keeping them keeps
/// captures readable (broadcast, multicast, loopback, unspecified).
pub const ALWAYS_KEPT: [&str; 7] = [
    "0.0.0.0/32",
    "255.255.255.255/32",
    "224.0.0.0/4",
    "127.0.0.0/8",
    "::/128",
    "::1/128",
    "ff00::/8",
];

/// Maps IP and MAC addresses, counting what it mapped.
pub struct AddressMapper {
    pan: CryptoPan,
    mac_key: hmac::Key,
    keep: Vec<Cidr>,
    macs: HashMap<[u8; 6], [u8; 6]>,
    pub ipv4_mapped: u64,
    pub ipv6_mapped: u64,
    pub kept_by_range: u64,
}

/// Distinct MAC addresses remembered; beyond it each is hashed again.
const MAX_MACS: usize = 1 << 16;

impl AddressMapper {
    pub fn new(key: &ScrubKey, keep_nets: &[Cidr]) -> AddressMapper {
        let mut keep: Vec<Cidr> = ALWAYS_KEPT.iter().filter_map(|s| s.parse().ok()).collect();
        keep.extend_from_slice(keep_nets);
        AddressMapper {
            pan: CryptoPan::new(&key.0),
            mac_key: key.derived(b"capsift mac"),
            keep,
            macs: HashMap::new(),
            ipv4_mapped: 0,
            ipv6_mapped: 0,
            kept_by_range: 0,
        }
    }

    /// Distinct addresses mapped so far.
    pub fn distinct(&self) -> usize {
        self.pan.mapped()
    }

    pub fn distinct_macs(&self) -> usize {
        self.macs.len()
    }

    pub fn map_ip(&mut self, a: IpAddr) -> IpAddr {
        if self.keep.iter().any(|c| c.contains(a)) {
            self.kept_by_range += 1;
            return a;
        }
        match a {
            IpAddr::V4(_) => self.ipv4_mapped += 1,
            IpAddr::V6(_) => self.ipv6_mapped += 1,
        }
        self.pan.map(a)
    }

    /// Rewrite 4 or 16 address bytes in place; other lengths are left alone.
    pub fn map_ip_bytes(&mut self, b: &mut [u8]) -> bool {
        let a = match b.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(&b[..]).unwrap_or_default()),
            16 => IpAddr::from(<[u8; 16]>::try_from(&b[..]).unwrap_or_default()),
            _ => return false,
        };
        let m = self.map_ip(a);
        match m {
            IpAddr::V4(v) => b.copy_from_slice(&v.octets()),
            IpAddr::V6(v) => b.copy_from_slice(&v.octets()),
        }
        m != a
    }

    /// A unicast MAC gets a keyed hash keeping its individual/group and
    /// universal/local bits; group addresses are kept (broadcast, and
    /// multicast MACs derived from group IPs), except the low 24 bits of
    /// IPv6 solicited-node groups (33:33:ff:..), which come from a unicast address.
    pub fn map_mac(&mut self, b: &mut [u8]) {
        let Ok(mac) = <[u8; 6]>::try_from(&b[..]) else {
            return;
        };
        if mac[0] & 1 == 1 && !(mac[0] == 0x33 && mac[1] == 0x33 && mac[2] == 0xff) {
            return;
        }
        if mac == [0; 6] {
            return;
        }
        let m = match self.macs.get(&mac) {
            Some(m) => *m,
            None => {
                let h = hmac::sign(&self.mac_key, &mac);
                let h = h.as_ref();
                let mut m = [0u8; 6];
                if mac[0] & 1 == 1 {
                    m[..3].copy_from_slice(&mac[..3]);
                    m[3..].copy_from_slice(&h[3..6]);
                } else {
                    m.copy_from_slice(&h[..6]);
                    m[0] = (h[0] & 0xfc) | (mac[0] & 0x03);
                }
                if self.macs.len() < MAX_MACS {
                    self.macs.insert(mac, m);
                }
                m
            }
        };
        b.copy_from_slice(&m);
    }
}

/// Labels kept as they are by `--hash-names`: Kubernetes' own suffixes and
/// common top-level labels carry no customer information and keep hashed
/// names recognisable (`x7f2k.q0d9.svc.cluster.local`).
pub const KEPT_LABELS: &[&str] = &[
    "svc",
    "cluster",
    "local",
    "default",
    "kube-system",
    "kube-public",
    "kube-dns",
    "pod",
    "internal",
    "localdomain",
    "localhost",
    "in-addr",
    "arpa",
    "ip6",
    "_tcp",
    "_udp",
    "com",
    "net",
    "org",
    "io",
    "dev",
    "cloud",
    "*",
];

/// Same-length keyed hash of DNS labels.
pub struct NameHasher {
    key: hmac::Key,
    cache: HashMap<Vec<u8>, Vec<u8>>,
    pub labels_hashed: u64,
}

const MAX_CACHED_LABELS: usize = 1 << 16;
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl NameHasher {
    pub fn new(key: &ScrubKey) -> NameHasher {
        NameHasher {
            key: key.derived(b"capsift names"),
            cache: HashMap::new(),
            labels_hashed: 0,
        }
    }

    /// Rewrite one label in place (case-insensitive: `API` and `api` hash alike).
    pub fn hash_label(&mut self, label: &mut [u8]) {
        let lower: Vec<u8> = label.iter().map(u8::to_ascii_lowercase).collect();
        if KEPT_LABELS.iter().any(|k| k.as_bytes() == lower.as_slice()) {
            return;
        }
        self.labels_hashed += 1;
        if let Some(h) = self.cache.get(&lower) {
            label.copy_from_slice(h);
            return;
        }
        let mut out = Vec::with_capacity(label.len());
        let mut block = 0u8;
        while out.len() < label.len() {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(&lower);
            ctx.update(&[block]);
            let tag = ctx.sign();
            for b in tag.as_ref() {
                if out.len() == label.len() {
                    break;
                }
                out.push(ALPHABET[usize::from(*b) % ALPHABET.len()]);
            }
            block = block.wrapping_add(1);
        }
        label.copy_from_slice(&out);
        if self.cache.len() < MAX_CACHED_LABELS {
            self.cache.insert(lower, out);
        }
    }

    /// Rewrite a dotted name in place, label by label.
    pub fn hash_dotted(&mut self, name: &mut [u8]) {
        for label in name.split_mut(|b| *b == b'.') {
            if !label.is_empty() {
                self.hash_label(label);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_length_suffix_and_consistency() {
        let key = ScrubKey::from_bytes([7; 32]);
        let mut h = NameHasher::new(&key);
        let mut a = b"payments.prod.svc.cluster.local".to_vec();
        h.hash_dotted(&mut a);
        assert_eq!(a.len(), 31);
        assert!(a.ends_with(b".svc.cluster.local"));
        assert!(!a.starts_with(b"payments"));
        let mut b = b"PAYMENTS.other.svc.cluster.local".to_vec();
        h.hash_dotted(&mut b);
        assert_eq!(a[..8], b[..8], "same label, same hash, case-insensitive");
        let mut h2 = NameHasher::new(&key);
        let mut c = b"payments".to_vec();
        h2.hash_label(&mut c);
        assert_eq!(c, a[..8].to_vec(), "same key, same mapping in another run");
    }

    #[test]
    fn macs_keep_their_kind_and_ranges_stay() {
        let key = ScrubKey::from_bytes([9; 32]);
        let mut m = AddressMapper::new(&key, &["10.96.0.0/12".parse().unwrap()]);
        let mut bcast = [0xff; 6];
        m.map_mac(&mut bcast);
        assert_eq!(bcast, [0xff; 6]);
        let mut uni = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
        m.map_mac(&mut uni);
        assert_ne!(uni, [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(uni[0] & 3, 0x02);
        let svc: IpAddr = "10.96.0.10".parse().unwrap();
        assert_eq!(m.map_ip(svc), svc);
        let pod: IpAddr = "10.244.1.5".parse().unwrap();
        assert_ne!(m.map_ip(pod), pod);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }
}
