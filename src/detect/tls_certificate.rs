//! Certificate verdicts: `tls.name_mismatch`, `tls.expired`,
//! `tls.not_yet_valid`, `tls.unknown_issuer`, `tls.self_signed`,
//! `tls.invalid_certificate`: the server certificate checked by webpki
//! against the SNI (or the server IP) at the capture's own time.

use super::finding::sock;
use super::{Detector, Evidence, Finding, FinishContext, FlowRef, Severity};
use crate::tls::verify::Verdict;
use crate::tls::TlsHandshake;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Certificates;

struct Group<'a> {
    first: &'a TlsHandshake,
    connections: u64,
    clients: Vec<std::net::IpAddr>,
    frames: Vec<u64>,
}

fn kind(v: Verdict) -> Option<(&'static str, Severity)> {
    Some(match v {
        Verdict::NameMismatch => ("tls.name_mismatch", Severity::Critical),
        Verdict::Expired => ("tls.expired", Severity::Critical),
        Verdict::NotYetValid => ("tls.not_yet_valid", Severity::Critical),
        Verdict::UnknownIssuer => ("tls.unknown_issuer", Severity::Critical),
        Verdict::SelfSigned => ("tls.self_signed", Severity::Warning),
        Verdict::Invalid => ("tls.invalid_certificate", Severity::Warning),
        _ => return None,
    })
}

impl Detector for Certificates {
    fn finish(&mut self, ctx: &FinishContext<'_>) -> Vec<Finding> {
        let Some(tls) = ctx.tls else {
            return Vec::new();
        };
        let mut groups: BTreeMap<(&'static str, String, String, String), Group<'_>> =
            BTreeMap::new();
        for h in &tls.handshakes {
            let (Some(c), Some(info)) = (&h.check, &h.cert) else {
                continue;
            };
            let Some((k, _)) = kind(c.verdict) else {
                continue;
            };
            let key = (
                k,
                sock(h.server.0, h.server.1),
                h.sni.clone().unwrap_or_default(),
                info.sha256.clone(),
            );
            let g = groups.entry(key).or_insert(Group {
                first: h,
                connections: 0,
                clients: Vec::new(),
                frames: Vec::new(),
            });
            g.connections += 1;
            if !g.clients.contains(&h.client.0) && g.clients.len() < 16 {
                g.clients.push(h.client.0);
            }
            for f in [Some(h.frame), h.cert_frame].into_iter().flatten() {
                if g.frames.len() < 16 && !g.frames.contains(&f) {
                    g.frames.push(f);
                }
            }
        }
        let mut out = Vec::new();
        for ((k, server, sni, _), g) in groups.into_iter().take(50) {
            let h = g.first;
            let (Some(c), Some(info)) = (&h.check, &h.cert) else {
                continue;
            };
            let Some((_, mut severity)) = kind(c.verdict) else {
                continue;
            };
            if sni.is_empty() && c.verdict == Verdict::NameMismatch {
                // Without SNI the client may not check names at all.
                severity = Severity::Warning;
            }
            let about = if sni.is_empty() {
                format!("the server IP {} (the client sent no SNI)", h.server.0)
            } else {
                sni.clone()
            };
            let (title, explain, next): (String, String, Vec<String>) = match c.verdict {
                Verdict::NameMismatch => (
                    format!("Certificate of {server} does not cover {about}: its names are {}", names(&info.san, &info.san_ip)),
                    format!(
                        "The client asked for {about}, and the certificate's Subject Alternative Names ({}) do not \
                         include it. Usually a stale Secret after a host change, or the wrong Ingress host/certificate \
                         served for this name. The client then aborts with \"certificate verify failed\".",
                        names(&info.san, &info.san_ip)
                    ),
                    vec![
                        "`kubectl get ingress -A -o wide` and `kubectl describe ingress <name> -n <ns>`: the host and its TLS secret".to_string(),
                        "`kubectl describe certificate -n <ns>` (cert-manager): dnsNames and Ready condition".to_string(),
                        "`kubectl get secret <tls-secret> -n <ns> -o jsonpath='{.data.tls\\.crt}' | base64 -d | openssl x509 -noout -ext subjectAltName`".to_string(),
                    ],
                ),
                Verdict::Expired => (
                    format!("Certificate of {server} ({about}) expired on {}, before the capture", info.not_after),
                    "At the time of the capture the certificate was past its notAfter date: renewal did not happen \
                     or the renewed Secret was not picked up by the server (pods not restarted, stale mount)."
                        .to_string(),
                    vec![
                        "`kubectl describe certificate -n <ns>` and `kubectl get certificaterequest -n <ns>` (cert-manager renewal errors)".to_string(),
                        "Does the Secret hold a newer certificate than the one served? Compare notAfter of the Secret with this one; restart the pods that cache it".to_string(),
                    ],
                ),
                Verdict::NotYetValid => (
                    format!("Certificate of {server} ({about}) is not valid until {}", info.not_before),
                    "The certificate's notBefore is after the capture time: a clock skew on the issuer or the client, or a certificate issued with a future date.".to_string(),
                    vec!["Check the clocks (chrony/NTP) of the nodes and of the issuing CA".to_string()],
                ),
                Verdict::UnknownIssuer => (
                    format!("Certificate of {server} ({about}) does not chain to a trusted CA (issuer: {})", info.issuer),
                    format!(
                        "\"x509: certificate signed by unknown authority\": the chain the server sent ({} certificate(s)) does \
                         not reach the public roots or a `--ca-bundle` given to capsift. Typical causes: a CA rotated half-way \
                         (istio-ca root mismatch mid rotation), a missing intermediate certificate, or a private CA the client does not trust.",
                        h.chain.len()
                    ),
                    vec![
                        format!("`openssl s_client -connect {server} -servername {} -showcerts`: is the intermediate sent?", if sni.is_empty() { "<host>" } else { sni.as_str() }),
                        "If the cluster CA should have signed it, run capsift again with `--ca-bundle` from `kubectl get cm kube-root-ca.crt -o jsonpath='{.data.ca\\.crt}'`".to_string(),
                        "Service mesh: compare the root cert of the mesh CA on both sides (rotation in progress?)".to_string(),
                    ],
                ),
                Verdict::SelfSigned => (
                    format!("Certificate of {server} ({about}) is self-signed ({})", info.subject),
                    "The server presents a self-signed certificate: clients that verify reject it. Usually a default or test certificate served instead of the real one (Ingress default certificate, a missing TLS Secret).".to_string(),
                    vec!["`kubectl describe ingress <name> -n <ns>`: is the TLS secret found? (otherwise the controller serves its fake default certificate)".to_string()],
                ),
                _ => (
                    format!("Certificate of {server} ({about}) is invalid: {}", c.chain_error.clone().unwrap_or_default()),
                    "webpki rejected the chain for a reason other than time, name or issuer (bad signature, wrong key usage, malformed).".to_string(),
                    vec![format!("`openssl s_client -connect {server} -showcerts` and `openssl verify` on the chain")],
                ),
            };
            let mut frames = g.frames.clone();
            frames.sort_unstable();
            let flow = FlowRef {
                flow_id: h.flow_id,
                proto: "tcp",
                src_ip: h.client.0,
                src_port: h.client.1,
                dst_ip: h.server.0,
                dst_port: h.server.1,
                tunnel: h.tunnel.clone(),
                outer_src: None,
                outer_dst: None,
            };
            out.push(Finding {
                kind: k,
                severity,
                title,
                summary: format!(
                    "{explain} Seen on {} connection(s) from {} client(s).",
                    g.connections,
                    g.clients.len()
                ),
                evidence: Evidence {
                    display_filter: format!(
                        "{} && tls.handshake.type==11",
                        flow.display_filter()
                            .split(" && tcp.port")
                            .next()
                            .unwrap_or("")
                    ),
                    frames,
                },
                flow: Some(flow),
                details: json!({
                    "sni": h.sni,
                    "checked_name": c.checked_name,
                    "san": info.san,
                    "san_ip": info.san_ip,
                    "subject": info.subject,
                    "issuer": info.issuer,
                    "not_before": info.not_before,
                    "not_after": info.not_after,
                    "cert_sha256": info.sha256,
                    "chain_length": h.chain.len(),
                    "chain_error": c.chain_error,
                    "name_error": c.name_error,
                    "capture_time": h.server_hello_ts.unwrap_or(h.ts).to_rfc3339(),
                    "connections": g.connections,
                    "clients": g.clients,
                }),
                next_checks: next,
                input: ctx.input,
            });
        }
        out
    }
}

fn names(san: &[String], ips: &[String]) -> String {
    let mut v: Vec<String> = san.iter().take(6).cloned().collect();
    v.extend(ips.iter().take(3).cloned());
    if v.is_empty() {
        "none (no SAN)".to_string()
    } else if san.len() + ips.len() > v.len() {
        format!(
            "{} and {} more",
            v.join(", "),
            san.len() + ips.len() - v.len()
        )
    } else {
        v.join(", ")
    }
}
