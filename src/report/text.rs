//! The text report: a verdict line, then findings by severity, each with
//! evidence, a Wireshark display filter and the next checks.

use super::Report;
use crate::detect::Severity;
use std::fmt::Write;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn severity(&self, s: Severity) -> String {
        let (code, label) = match s {
            Severity::Critical => ("1;31", "CRITICAL"),
            Severity::Warning => ("1;33", "WARNING"),
            Severity::Info => ("1;36", "INFO"),
        };
        self.paint(code, label)
    }
}

pub fn render_text(r: &Report, color: bool) -> String {
    let st = Style { color };
    let mut s = String::new();
    let _ = writeln!(s, "{}", st.paint("1", &r.verdict()));
    let _ = writeln!(s);
    for (i, inp) in r.inputs.iter().enumerate() {
        let span = match (&inp.first_ts, &inp.last_ts) {
            (Some(a), Some(b)) => format!(", {a} .. {b}"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "Input {}: {} ({}, {}; {} packets, {} flows{span})",
            i + 1,
            inp.path,
            inp.format,
            inp.link_types.join("+"),
            inp.packets,
            inp.flows
        );
        for w in &inp.warnings {
            let times = if w.count > 1 {
                format!(" (x{})", w.count)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {} {}{times}: {}",
                st.paint("33", "warning"),
                w.kind,
                w.message
            );
        }
    }
    if r.findings.is_empty() {
        let _ = writeln!(s, "\nNo findings.");
        return s;
    }
    for f in &r.findings {
        let _ = writeln!(s);
        let input = if r.inputs.len() > 1 {
            format!(" [input {}]", f.input + 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{} {}{input}  ({})",
            st.severity(f.severity),
            st.paint("1", &f.title),
            f.kind
        );
        for line in f.summary.lines() {
            let _ = writeln!(s, "    {line}");
        }
        if let Some(fl) = &f.flow {
            let _ = writeln!(s, "    flow:     {}", fl.label());
        }
        if !f.evidence.frames.is_empty() {
            let frames: Vec<String> = f
                .evidence
                .frames
                .iter()
                .take(12)
                .map(|x| x.to_string())
                .collect();
            let more = f.evidence.frames.len().saturating_sub(12);
            let _ = writeln!(
                s,
                "    frames:   {}{}",
                frames.join(", "),
                if more > 0 {
                    format!(" (+{more})")
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(s, "    wireshark: {}", f.evidence.display_filter);
        for (i, c) in f.next_checks.iter().enumerate() {
            let lead = if i == 0 { "next:    " } else { "         " };
            let _ = writeln!(s, "    {} → {c}", st.paint("32", lead));
        }
    }
    s
}
