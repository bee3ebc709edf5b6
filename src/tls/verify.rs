//! Certificate verification with rustls-webpki, at the capture's own time.
//!
//! No name matching or chain building is written here: webpki checks the
//! chain against the trust anchors (the public web roots plus any
//! `--ca-bundle`) and the SAN against the SNI, as a client would have at the
//! moment the capture was taken.

use crate::capture::Timestamp;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use serde::Serialize;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use webpki::{EndEntityCert, KeyUsage};

/// The verdict on one server certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    NameMismatch,
    Expired,
    NotYetValid,
    UnknownIssuer,
    SelfSigned,
    /// Other chain problems (bad signature, wrong usage, malformed).
    Invalid,
    /// TLS 1.3: the certificate is encrypted.
    NotVisible,
    /// The handshake ended before a certificate was sent.
    NoCertificate,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NameMismatch => "name_mismatch",
            Verdict::Expired => "expired",
            Verdict::NotYetValid => "not_yet_valid",
            Verdict::UnknownIssuer => "unknown_issuer",
            Verdict::SelfSigned => "self_signed",
            Verdict::Invalid => "invalid",
            Verdict::NotVisible => "not_visible",
            Verdict::NoCertificate => "no_certificate",
        }
    }
}

/// Trust anchors: the web roots and the user's CA bundles.
#[derive(Debug)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    pub extra: usize,
}

impl Default for TrustStore {
    fn default() -> Self {
        TrustStore {
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            extra: 0,
        }
    }
}

impl TrustStore {
    /// Add every certificate of a PEM bundle as a trust anchor.
    pub fn add_pem_file(&mut self, path: &Path) -> Result<usize, String> {
        let iter = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: cannot read the CA bundle: {e}", path.display()))?;
        let mut n = 0;
        for c in iter {
            let der =
                c.map_err(|e| format!("{}: not a PEM certificate bundle: {e}", path.display()))?;
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| format!("{}: unusable CA certificate: {e:?}", path.display()))?
                .to_owned();
            self.anchors.push(anchor);
            n += 1;
        }
        if n == 0 {
            return Err(format!(
                "{}: no certificate found in the CA bundle",
                path.display()
            ));
        }
        self.extra += n;
        Ok(n)
    }
}

/// The outcome of checking a chain and a name.
#[derive(Debug, Clone)]
pub struct Check {
    pub verdict: Verdict,
    /// webpki's error for the chain, if any.
    pub chain_error: Option<String>,
    /// webpki's error for the name, if any.
    pub name_error: Option<String>,
    /// What the name was checked against: the SNI, or the server IP without one.
    pub checked_name: String,
}

/// Verify `chain` (end entity first) for `sni` (or the server IP) at `at`.
pub fn check(
    store: &TrustStore,
    chain: &[Vec<u8>],
    sni: Option<&str>,
    server_ip: IpAddr,
    at: Timestamp,
    self_issued: bool,
) -> Check {
    let Some(leaf) = chain.first() else {
        return Check {
            verdict: Verdict::NoCertificate,
            chain_error: None,
            name_error: None,
            checked_name: String::new(),
        };
    };
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let checked_name = sni
        .map(String::from)
        .unwrap_or_else(|| server_ip.to_string());
    let ee = match EndEntityCert::try_from(&leaf_der) {
        Ok(e) => e,
        Err(e) => {
            return Check {
                verdict: Verdict::Invalid,
                chain_error: Some(format!("{e:?}")),
                name_error: None,
                checked_name,
            }
        }
    };
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let secs = at.0.div_euclid(1_000_000_000).max(0) as u64;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let chain_res = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &store.anchors,
        &intermediates,
        time,
        KeyUsage::server_auth(),
        None,
        None,
    );
    let name = match sni {
        Some(s) => ServerName::try_from(s.to_string()).map_err(|e| format!("{e:?}")),
        None => Ok(ServerName::IpAddress(server_ip.into())),
    };
    let name_res = match name {
        Ok(n) => ee
            .verify_is_valid_for_subject_name(&n)
            .map_err(|e| format!("{e:?}")),
        Err(e) => Err(format!("SNI is not a valid DNS name: {e}")),
    };
    let chain_error = chain_res.as_ref().err().map(|e| format!("{e:?}"));
    let verdict = match chain_res {
        Err(webpki::Error::CertExpired { .. }) => Verdict::Expired,
        Err(webpki::Error::CertNotValidYet { .. }) => Verdict::NotYetValid,
        Err(webpki::Error::UnknownIssuer) if self_issued && chain.len() == 1 => Verdict::SelfSigned,
        Err(webpki::Error::UnknownIssuer) => Verdict::UnknownIssuer,
        Err(_) => Verdict::Invalid,
        Ok(_) if name_res.is_err() => Verdict::NameMismatch,
        Ok(_) => Verdict::Ok,
    };
    // A name mismatch is worth saying even when the chain fails for another reason.
    Check {
        verdict,
        chain_error,
        name_error: name_res.err(),
        checked_name,
    }
}
