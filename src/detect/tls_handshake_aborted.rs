//! `tls.handshake_aborted`: under TLS 1.3 the certificate is encrypted, so a
//! rejection shows only as behaviour: the client closes or resets right
//! after the server's first flight without sending its Finished or any data.
//! Reported as a heuristic with a confidence.

use super::finding::sock;
use super::{Detector, Evidence, Finding, FinishContext, Severity};
use crate::tls::alert_name;
use serde_json::json;

/// The client must close within this time after the ServerHello.
const ABORT_WINDOW_NS: i64 = 2_000_000_000;

#[derive(Default)]
pub struct HandshakeAborted;

impl Detector for HandshakeAborted {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(tls) = ctx.tls else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for h in tls.handshakes.iter().filter(|h| h.is_tls13()) {
            let Some(sh_ts) = h.server_hello_ts else {
                continue;
            };
            // The first client record after the ServerHello is its Finished.
            if h.client_app_records > 1 {
                continue;
            }
            let client_alert = h.alerts.iter().find(|a| !a.from_server);
            let closed = h
                .client_closed
                .filter(|(_, _, t)| t.0.saturating_sub(sh_ts.0) <= ABORT_WINDOW_NS);
            let (confidence, why) = match (client_alert, closed, h.client_app_records) {
                (Some(a), _, _) => (
                    "high",
                    format!(
                        "the client sent a plaintext alert {} ({})",
                        alert_name(a.description),
                        a.description
                    ),
                ),
                (None, Some((rst, _, _)), 0) => (
                    "medium",
                    format!(
                        "the client {} without sending its Finished",
                        if rst {
                            "reset the connection"
                        } else {
                            "closed the connection"
                        }
                    ),
                ),
                (None, Some((rst, _, _)), _) => (
                    "low",
                    format!(
                        "the client {} right after one encrypted record (an encrypted alert?)",
                        if rst { "reset" } else { "closed" }
                    ),
                ),
                _ => continue,
            };
            if out.len() >= 20 {
                break;
            }
            let server = sock(h.server.0, h.server.1);
            let mut frames: Vec<u64> = [
                Some(h.frame),
                h.server_hello_frame,
                closed.map(|c| c.1),
                client_alert.map(|a| a.frame),
            ]
            .into_iter()
            .flatten()
            .collect();
            frames.sort_unstable();
            frames.dedup();
            out.push(Finding {
                kind: "tls.handshake_aborted",
                severity: Severity::Warning,
                title: format!(
                    "TLS 1.3 handshake with {server}{} aborted by the client after the server's certificate (likely rejected; confidence {confidence})",
                    h.sni.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
                ),
                summary: format!(
                    "Under TLS 1.3 the certificate is encrypted, so capsift cannot check it; but {why} right after the \
                     server's first flight. Clients do that when they reject the certificate (unknown CA, name \
                     mismatch, expired). This is a heuristic: verify with the client's error message or with \
                     `openssl s_client -connect {server}{} -tls1_3`.",
                    h.sni.as_ref().map(|s| format!(" -servername {s}")).unwrap_or_default()
                ),
                evidence: Evidence {
                    display_filter: format!("ip.addr=={} && tcp.port=={} && tcp.port=={}", h.server.0, h.server.1, h.client.1),
                    frames,
                },
                flow: None,
                details: json!({"sni": h.sni, "server": server, "client": sock(h.client.0, h.client.1),
                                "confidence": confidence, "reason": why,
                                "client_records_after_server_hello": h.client_app_records}),
                next_checks: vec![
                    "The client's own log line (\"certificate verify failed\", \"unknown authority\")".to_string(),
                    "`kubectl describe certificate -n <ns>` and the TLS Secret the server uses".to_string(),
                    "Capture again with the client forced to TLS 1.2 (certificate visible) to let capsift verify it".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
