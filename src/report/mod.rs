//! Reports: the findings of `analyze` as text (people), Markdown (tickets)
//! and JSON (machines), and the per-flow table.

pub mod dns_table;
pub mod flows_table;
#[cfg(feature = "tables")]
pub mod frame_builder;
mod markdown;
#[cfg(feature = "tables")]
pub mod parquet;
mod text;
pub mod tls_table;

pub use markdown::render_markdown;
pub use text::render_text;

use crate::analyze::InputSummary;
use crate::detect::{Finding, Severity};
use serde::Serialize;

/// The whole result of `analyze`: the JSON document's shape (docs/analyze.md).
#[derive(Debug, Serialize)]
pub struct Report {
    pub capsift_version: &'static str,
    pub inputs: Vec<InputSummary>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(inputs: Vec<InputSummary>, mut findings: Vec<Finding>) -> Report {
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.input.cmp(&b.input)));
        Report {
            capsift_version: env!("CARGO_PKG_VERSION"),
            inputs,
            findings,
        }
    }

    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The one-line verdict that opens every report.
    pub fn verdict(&self) -> String {
        let packets: u64 = self.inputs.iter().map(|i| i.packets).sum();
        let flows: u64 = self.inputs.iter().map(|i| i.flows).sum();
        let problems: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity > Severity::Info)
            .collect();
        if self.inputs.is_empty() {
            return "NO VERDICT: no input could be read (see the errors above)".to_string();
        }
        match problems.first() {
            None => format!(
                "OK: no network problem found in {packets} packets and {flows} flows{}",
                if self.inputs.iter().any(|i| !i.complete) {
                    " (but an input is damaged: see its warnings)"
                } else {
                    ""
                }
            ),
            Some(top) => {
                let more = problems.len() - 1;
                format!(
                    "{}: {}{}",
                    top.severity.as_str().to_uppercase(),
                    top.title,
                    if more > 0 {
                        format!(" (+{more} more finding{})", if more > 1 { "s" } else { "" })
                    } else {
                        String::new()
                    }
                )
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
