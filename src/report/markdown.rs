//! The Markdown report, to paste into a ticket.

use super::Report;
use std::fmt::Write;

pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## capsift verdict\n\n**{}**\n", r.verdict());
    let _ = writeln!(s, "| input | format | packets | flows | first | last |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for inp in &r.inputs {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} |",
            inp.path,
            inp.format,
            inp.packets,
            inp.flows,
            inp.first_ts.as_deref().unwrap_or("-"),
            inp.last_ts.as_deref().unwrap_or("-")
        );
    }
    let warnings: Vec<_> = r.inputs.iter().flat_map(|i| i.warnings.iter()).collect();
    if !warnings.is_empty() {
        let _ = writeln!(s, "\nWarnings:\n");
        for w in warnings {
            let _ = writeln!(s, "- `{}`: {}", w.kind, w.message);
        }
    }
    for f in &r.findings {
        let _ = writeln!(
            s,
            "\n### {} — {}\n",
            f.severity.as_str().to_uppercase(),
            f.title
        );
        let _ = writeln!(s, "`{}`\n", f.kind);
        for line in f.summary.lines() {
            let _ = writeln!(s, "{}", line.trim_start());
        }
        if let Some(fl) = &f.flow {
            let _ = writeln!(s, "\n- Flow: `{}`", fl.label());
        }
        if !f.evidence.frames.is_empty() {
            let frames: Vec<String> = f
                .evidence
                .frames
                .iter()
                .take(16)
                .map(|x| x.to_string())
                .collect();
            let _ = writeln!(s, "- Frames: {}", frames.join(", "));
        }
        let _ = writeln!(s, "- Wireshark filter: `{}`", f.evidence.display_filter);
        if !f.next_checks.is_empty() {
            let _ = writeln!(s, "\nNext checks:\n");
            for c in &f.next_checks {
                let _ = writeln!(s, "1. {c}");
            }
        }
    }
    s
}
