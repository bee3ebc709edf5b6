//! `tls.alpn_mismatch`: the client offered h2 (gRPC needs it) and the server
//! chose http/1.1 or nothing, or refused with no_application_protocol: the
//! field guide's "gRPC failing through HTTP Ingress".

use super::finding::sock;
use super::{Detector, Evidence, Finding, FinishContext, Severity};
use serde_json::json;

#[derive(Default)]
pub struct AlpnMismatch;

impl Detector for AlpnMismatch {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(tls) = ctx.tls else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for h in &tls.handshakes {
            if !h.alpn_offered.iter().any(|p| p == "h2") {
                continue;
            }
            let refused = h
                .alerts
                .iter()
                .any(|a| a.from_server && a.description == 120);
            let chosen = h.alpn_selected.clone();
            let h2_only = !h.alpn_offered.iter().any(|p| p == "http/1.1");
            // A server without ALPN support, with HTTP/1.1 offered too, is an
            // ordinary fallback; h2 only, or a server that picks http/1.1, is not.
            let mismatch = refused
                || (h.server_hello_frame.is_some()
                    && chosen.as_deref() != Some("h2")
                    && (h2_only || chosen.is_some()));
            if !mismatch
                || out.len() >= 20
                || !seen.insert((h.server, h.sni.clone(), chosen.clone(), refused))
            {
                continue;
            }
            let server = sock(h.server.0, h.server.1);
            let what = if refused {
                "refused the connection with alert no_application_protocol".to_string()
            } else {
                match &chosen {
                    Some(p) => format!("chose {p}"),
                    None => "chose no application protocol".to_string(),
                }
            };
            let mut frames: Vec<u64> = [Some(h.frame), h.server_hello_frame]
                .into_iter()
                .flatten()
                .collect();
            frames.extend(
                h.alerts
                    .iter()
                    .filter(|a| a.description == 120)
                    .map(|a| a.frame),
            );
            frames.sort_unstable();
            out.push(Finding {
                kind: "tls.alpn_mismatch",
                severity: if h2_only || refused { Severity::Warning } else { Severity::Info },
                title: format!("Client offered HTTP/2 (h2) to {server}{} and the server {what}", h.sni.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()),
                summary: format!(
                    "The client offered ALPN [{}]. {} gRPC needs HTTP/2 end to end: through an HTTP Ingress that \
                     speaks HTTP/1.1 to the client or the backend, gRPC calls fail.",
                    h.alpn_offered.join(", "),
                    if h2_only { "It offered only h2, as gRPC clients do." } else { "It could fall back to HTTP/1.1, so plain HTTPS still works, but gRPC would not." }
                ),
                evidence: Evidence {
                    display_filter: format!("ip.addr=={} && tcp.port=={} && tls.handshake.extensions_alpn_str", h.server.0, h.server.1),
                    frames,
                },
                flow: None,
                details: json!({"sni": h.sni, "server": server, "alpn_offered": h.alpn_offered,
                                "alpn_selected": chosen, "refused": refused}),
                next_checks: vec![
                    "GRPC failing through HTTP Ingress: needs the backend protocol annotation (e.g. `nginx.ingress.kubernetes.io/backend-protocol: \"GRPC\"`) or a Gateway API GRPCRoute".to_string(),
                    "`kubectl describe ingress <name> -n <ns>`: class and annotations".to_string(),
                ],
                input: ctx.input,
            });
        }
        out
    }
}
