//! `tls.alert`: plaintext TLS alerts other than close_notify, with who sent them.

use super::finding::sock;
use super::{Detector, Evidence, Finding, FinishContext, Severity};
use crate::tls::alert_name;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Alerts;

/// One alert (description, direction, server) across connections.
struct AlertsSeen {
    level: u8,
    count: u64,
    /// The first 16 frames it was seen in.
    frames: Vec<u64>,
    sni: Option<String>,
}

impl Detector for Alerts {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(tls) = ctx.tls else {
            return Vec::new();
        };
        // (description, from_server, server) -> what was seen of it
        let mut by: BTreeMap<(u8, bool, String), AlertsSeen> = BTreeMap::new();
        for h in &tls.handshakes {
            for a in &h.alerts {
                if a.description == 0 || a.description == 90 {
                    continue; // close_notify, user_canceled
                }
                let e = by
                    .entry((a.description, a.from_server, sock(h.server.0, h.server.1)))
                    .or_insert(AlertsSeen {
                        level: a.level,
                        count: 0,
                        frames: Vec::new(),
                        sni: h.sni.clone(),
                    });
                e.count += 1;
                if e.frames.len() < 16 {
                    e.frames.push(a.frame);
                }
            }
        }
        by.into_iter()
            .take(20)
            .map(|((desc, from_server, server), seen)| {
                let AlertsSeen {
                    level,
                    count: n,
                    frames,
                    sni,
                } = seen;
                let who = if from_server { "the server" } else { "the client" };
                let name = alert_name(desc);
                let meaning = match desc {
                    42 | 43 | 44 | 45 | 46 | 48 => "the client rejected the server's certificate",
                    40 => "no common cipher suite, version or signature algorithm (or a required client certificate missing)",
                    70 => "no common protocol version",
                    112 => "the server has no certificate for the SNI the client sent",
                    116 => "the server requires a client certificate (mTLS) that was not sent",
                    120 => "no common application protocol (ALPN), e.g. h2 only against an HTTP/1.1 backend",
                    _ => "the handshake failed",
                };
                Finding {
                    kind: "tls.alert",
                    severity: if level == 2 { Severity::Warning } else { Severity::Info },
                    title: format!("{who} sent TLS alert {name} ({desc}) on {n} connection(s) to {server}"),
                    summary: format!(
                        "A {} alert `{name}` from {who}: {meaning}.{}",
                        if level == 2 { "fatal" } else { "warning-level" },
                        sni.as_ref().map(|s| format!(" SNI: {s}.")).unwrap_or_default()
                    ),
                    evidence: Evidence {
                        display_filter: format!("tls.alert_message.desc=={desc}"),
                        frames: frames.clone(),
                    },
                    flow: None,
                    details: json!({"description": name, "code": desc, "level": level,
                                    "sender": if from_server { "server" } else { "client" },
                                    "server": server, "sni": sni, "connections": n}),
                    next_checks: vec![
                        "Certificate verify failed: `kubectl describe certificate -n <ns>`, the TLS Secret and the Ingress host".to_string(),
                        format!("Reproduce: `openssl s_client -connect {server}{} -showcerts`", sni.as_ref().map(|s| format!(" -servername {s}")).unwrap_or_default()),
                    ],
                    input: ctx.input,
                }
            })
            .collect()
    }
}
