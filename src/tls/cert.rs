//! What a report shows of a certificate (x509-parser): names, validity, digest.

use serde::Serialize;
use x509_parser::extensions::GeneralName;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// SAN dNSName entries, as written in the certificate.
    pub san: Vec<String>,
    /// SAN iPAddress entries.
    pub san_ip: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
}

/// At most this many SAN entries are kept (some certificates carry hundreds).
const MAX_SAN: usize = 512;

pub fn describe(der: &[u8]) -> Option<CertInfo> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut san = Vec::new();
    let mut san_ip = Vec::new();
    if let Ok(Some(ext)) = c.subject_alternative_name() {
        for g in &ext.value.general_names {
            match g {
                GeneralName::DNSName(d) if san.len() < MAX_SAN => san.push(d.to_string()),
                GeneralName::IPAddress(b) if san_ip.len() < MAX_SAN => {
                    let ip = match b.len() {
                        4 => std::net::IpAddr::from([b[0], b[1], b[2], b[3]]).to_string(),
                        16 => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(b);
                            std::net::IpAddr::from(a).to_string()
                        }
                        _ => continue,
                    };
                    san_ip.push(ip);
                }
                _ => {}
            }
        }
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let v = c.validity();
    let ts = |t: &x509_parser::time::ASN1Time| {
        crate::capture::Timestamp(t.timestamp().saturating_mul(1_000_000_000)).to_rfc3339()
    };
    Some(CertInfo {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        self_issued: c.subject().as_raw() == c.issuer().as_raw(),
        san,
        san_ip,
        not_before: ts(&v.not_before),
        not_after: ts(&v.not_after),
        sha256,
    })
}
