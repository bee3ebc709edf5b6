//! The tls table (`capsift table tls`): one row per handshake; columns in docs/tables.md.

use crate::tls::{alert_name, version_name, TlsHandshake};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TlsRow {
    pub capture: String,
    pub ts: String,
    pub frame: u64,
    pub client_ip: String,
    pub client_port: u16,
    pub server_ip: String,
    pub server_port: u16,
    pub tunnel: String,
    pub sni: Option<String>,
    pub version: Option<String>,
    pub alpn_offered: String,
    pub alpn_selected: Option<String>,
    pub cert_subject: Option<String>,
    pub cert_issuer: Option<String>,
    pub cert_san: String,
    pub cert_not_before: Option<String>,
    pub cert_not_after: Option<String>,
    pub cert_sha256: Option<String>,
    pub chain_length: usize,
    pub verdict: &'static str,
    pub verdict_detail: Option<String>,
    pub alert: Option<String>,
}

impl TlsRow {
    pub fn of(capture: &str, h: &TlsHandshake) -> TlsRow {
        let c = h.cert.as_ref();
        let verdict = match (&h.check, h.version) {
            (Some(ch), _) => ch.verdict.as_str(),
            (None, Some(0x0304)) => "not_visible",
            _ => "no_certificate",
        };
        let detail = h
            .check
            .as_ref()
            .and_then(|c| c.chain_error.clone().or(c.name_error.clone()));
        let alert = h.alerts.iter().find(|a| a.description != 0).map(|a| {
            format!(
                "{}:{}",
                if a.from_server { "server" } else { "client" },
                alert_name(a.description)
            )
        });
        TlsRow {
            capture: capture.to_string(),
            ts: h.ts.to_rfc3339(),
            frame: h.frame,
            client_ip: h.client.0.to_string(),
            client_port: h.client.1,
            server_ip: h.server.0.to_string(),
            server_port: h.server.1,
            tunnel: h.tunnel.clone(),
            sni: h.sni.clone(),
            version: h.version.map(version_name),
            alpn_offered: h.alpn_offered.join(" "),
            alpn_selected: h.alpn_selected.clone(),
            cert_subject: c.map(|c| c.subject.clone()),
            cert_issuer: c.map(|c| c.issuer.clone()),
            cert_san: c.map(|c| c.san.join(" ")).unwrap_or_default(),
            cert_not_before: c.map(|c| c.not_before.clone()),
            cert_not_after: c.map(|c| c.not_after.clone()),
            cert_sha256: c.map(|c| c.sha256.clone()),
            chain_length: h.chain.len(),
            verdict,
            verdict_detail: detail,
            alert,
        }
    }
}
