//! What each subcommand does, given already-parsed arguments. Kept out of
//! `main.rs` so that integration tests and other front ends can call it.

use crate::decode::DecodeConfig;
use crate::info::{self, FileInfo};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Exit statuses, documented in the README.
pub mod exit {
    /// Every input was read (a cut last record is still a success).
    pub const OK: i32 = 0;
    /// Bad usage or an internal error.
    pub const USAGE: i32 = 1;
    /// At least one input could not be opened or was damaged part-way.
    pub const INPUT_DAMAGED: i32 = 2;
    /// `--fail-on` was given and a finding reached that severity.
    pub const FINDINGS: i32 = 3;
    /// `scrub --verify` found a packet missing or payload that survived.
    pub const VERIFY_FAILED: i32 = 4;
}

#[derive(Serialize)]
struct InfoJson<'a> {
    capsift_version: &'static str,
    files: &'a [FileInfo],
}

/// `capsift info`: summarise each capture; text for people, JSON for tools.
pub fn info(paths: &[PathBuf], json: bool, cfg: &DecodeConfig, out: &mut dyn Write) -> i32 {
    let mut status = exit::OK;
    let mut files = Vec::new();
    for p in paths {
        match info::summarize(p, cfg) {
            Ok(fi) => {
                if !fi.complete {
                    status = exit::INPUT_DAMAGED;
                }
                if !json {
                    let _ = writeln!(out, "{}", info::render_text(&fi));
                }
                files.push(fi);
            }
            Err(e) => {
                eprintln!("capsift: {}: {e}", p.display());
                status = exit::INPUT_DAMAGED;
            }
        }
    }
    if json {
        let doc = InfoJson {
            capsift_version: env!("CARGO_PKG_VERSION"),
            files: &files,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => {
                let _ = writeln!(out, "{s}");
            }
            Err(e) => {
                eprintln!("capsift: internal error writing JSON: {e}");
                return exit::USAGE;
            }
        }
    }
    status
}

/// Output format of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Markdown,
    Json,
}

/// `capsift analyze`: findings with evidence for each input.
pub fn analyze(
    paths: &[PathBuf],
    format: ReportFormat,
    fail_on: Option<crate::detect::Severity>,
    opts: &crate::analyze::AnalyzeOptions,
    out: &mut dyn Write,
) -> i32 {
    use std::io::IsTerminal;
    let mut status = exit::OK;
    let mut inputs = Vec::new();
    let mut findings = Vec::new();
    for p in paths {
        match crate::analyze::analyze_input(p, inputs.len(), opts, &mut Default::default()) {
            Ok((summary, f)) => {
                if !summary.complete {
                    status = exit::INPUT_DAMAGED;
                }
                inputs.push(summary);
                findings.extend(f);
            }
            Err(e) => {
                eprintln!("capsift: {}: {e}", p.display());
                status = exit::INPUT_DAMAGED;
            }
        }
    }
    let report = crate::report::Report::new(inputs, findings);
    let text = match format {
        ReportFormat::Json => report.to_json(),
        ReportFormat::Markdown => crate::report::render_markdown(&report),
        ReportFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            crate::report::render_text(&report, color)
        }
    };
    let _ = writeln!(out, "{text}");
    if let (Some(threshold), Some(worst)) = (fail_on, report.worst()) {
        if worst >= threshold && status == exit::OK {
            status = exit::FINDINGS;
        }
    }
    status
}

/// Which table `capsift table` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Flows,
    Dns,
    Tls,
}

/// `capsift table NAME`: rows for other tools (docs/tables.md).
pub fn table(
    kind: TableKind,
    paths: &[PathBuf],
    format: crate::report::flows_table::TableFormat,
    output: Option<&std::path::Path>,
    opts: &crate::analyze::AnalyzeOptions,
    stdout: &mut dyn Write,
) -> i32 {
    use crate::report::dns_table::DnsRow;
    use crate::report::flows_table::{FlowRow, TableSink};
    use crate::report::tls_table::TlsRow;
    if let Some(o) = output {
        if let Err(e) = crate::atomic_file::check_not_input(o, paths) {
            eprintln!("capsift: {e}");
            return exit::USAGE;
        }
    }
    let mut file = match output {
        Some(o) => match crate::atomic_file::AtomicFile::create(o) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("capsift: cannot create {}: {e}", o.display());
                return exit::USAGE;
            }
        },
        None => None,
    };
    let sink: &mut dyn Write = match file.as_mut() {
        Some(f) => f,
        None => stdout,
    };
    if format == crate::report::flows_table::TableFormat::Parquet && output.is_none() {
        eprintln!("capsift: Parquet is binary: give an output file with -o");
        return exit::USAGE;
    }
    let mut writer = TableSink::new(sink, format);
    let mut status = exit::OK;
    let mut write_error = None;
    for (i, p) in paths.iter().enumerate() {
        let capture = p.display().to_string();
        let mut flow_rows = |f: &crate::flow::Flow| {
            if write_error.is_none() {
                if let Err(e) = writer.write(&FlowRow::of(&capture, f)) {
                    write_error = Some(e);
                }
            }
        };
        let mut sinks = crate::analyze::Sinks::default();
        // DNS and TLS rows are complete only at the end of an input.
        let mut end_rows: Vec<serde_json::Value> = Vec::new();
        let mut dns_rows = |q: &crate::dns::DnsQuery| {
            end_rows.push(serde_json::to_value(DnsRow::of(&capture, q)).unwrap_or_default())
        };
        let mut tls_end_rows: Vec<serde_json::Value> = Vec::new();
        let mut tls_rows = |h: &crate::tls::TlsHandshake| {
            tls_end_rows.push(serde_json::to_value(TlsRow::of(&capture, h)).unwrap_or_default())
        };
        match kind {
            TableKind::Flows => sinks.flows = Some(&mut flow_rows),
            TableKind::Dns => sinks.dns = Some(&mut dns_rows),
            TableKind::Tls => sinks.tls = Some(&mut tls_rows),
        }
        let r = crate::analyze::analyze_input(p, i, opts, &mut sinks);
        for row in end_rows.iter().chain(&tls_end_rows) {
            if write_error.is_none() {
                if let Err(e) = writer.write(row) {
                    write_error = Some(e);
                }
            }
        }
        match r {
            Ok((s, _)) if !s.complete => status = exit::INPUT_DAMAGED,
            Ok(_) => {}
            Err(e) => {
                eprintln!("capsift: {}: {e}", p.display());
                status = exit::INPUT_DAMAGED;
            }
        }
    }
    let flushed = writer.finish();
    if let Some(e) = write_error.or(flushed.err()) {
        eprintln!("capsift: writing the table failed: {e}");
        return exit::USAGE;
    }
    // The output file appears only now, complete.
    if let Some(f) = file {
        if let Err(e) = f.commit() {
            eprintln!("capsift: writing the table failed: {e}");
            return exit::USAGE;
        }
    }
    status
}

/// Parse `--shard I/N` (`auto/N` reads `JOB_COMPLETION_INDEX`).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: expected I/N, e.g. 0/4"))?;
    let n: u64 = n
        .parse()
        .map_err(|_| format!("--shard {s}: N is not a number"))?;
    let i: u64 = if i == "auto" {
        std::env::var("JOB_COMPLETION_INDEX")
            .map_err(|_| {
                "--shard auto/N needs JOB_COMPLETION_INDEX (set by Kubernetes Indexed Jobs)"
                    .to_string()
            })?
            .parse()
            .map_err(|_| "JOB_COMPLETION_INDEX is not a number".to_string())?
    } else {
        i.parse()
            .map_err(|_| format!("--shard {s}: I is not a number"))?
    };
    if n == 0 || i >= n {
        return Err(format!("--shard {s}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// `capsift batch`.
#[cfg(feature = "tables")]
pub fn batch(
    inputs: Vec<String>,
    output: PathBuf,
    jobs: Option<usize>,
    format: crate::report::flows_table::TableFormat,
    shard: Option<&str>,
    quiet: bool,
    analyze: crate::analyze::AnalyzeOptions,
) -> i32 {
    let shard = match shard.map(parse_shard).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("capsift: {e}");
            return exit::USAGE;
        }
    };
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = crate::batch::BatchOptions {
        inputs,
        out: output,
        jobs,
        format,
        quiet,
        shard,
        analyze,
    };
    match crate::batch::run(&opts) {
        Ok(s) => {
            for e in &s.errors {
                eprintln!("capsift: {e}");
            }
            if !quiet {
                eprintln!(
                    "capsift: {} capture(s) analysed into {} ({} failed); see report.md",
                    s.captures,
                    opts.out.display(),
                    s.failed
                );
            }
            if s.errors.is_empty() {
                exit::OK
            } else {
                exit::INPUT_DAMAGED
            }
        }
        Err(e) => {
            eprintln!("capsift: {e}");
            exit::USAGE
        }
    }
}

/// `capsift merge`.
#[cfg(feature = "tables")]
pub fn merge(
    dirs: &[PathBuf],
    output: &std::path::Path,
    format: crate::report::flows_table::TableFormat,
) -> i32 {
    match crate::batch::merge(dirs, output, format) {
        Ok(n) => {
            eprintln!(
                "capsift: merged {} directories ({n} captures) into {}",
                dirs.len(),
                output.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("capsift: {e}");
            exit::USAGE
        }
    }
}

/// `capsift scrub IN -o OUT`: the text summary goes to stdout (stderr when
/// the capture itself goes to stdout), the JSON report to `report`.
pub fn scrub(
    input: &Path,
    output: &Path,
    report_path: Option<&Path>,
    opts: &crate::scrub::ScrubOptions,
) -> i32 {
    if let Some(rp) = report_path {
        if let Err(e) = crate::atomic_file::check_not_input(rp, &[input.to_path_buf()]) {
            eprintln!("capsift: {e}");
            return exit::USAGE;
        }
    }
    let r = match crate::scrub::scrub_file(input, output, opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("capsift: {e}");
            return exit::USAGE;
        }
    };
    if let Some(rp) = report_path {
        let json = serde_json::to_string_pretty(&r).unwrap_or_default();
        let res = crate::atomic_file::AtomicFile::create(rp).and_then(|mut f| {
            f.write_all(json.as_bytes())?;
            f.write_all(b"\n")?;
            f.commit()
        });
        if let Err(e) = res {
            eprintln!("capsift: cannot write {}: {e}", rp.display());
            return exit::USAGE;
        }
    }
    let text = crate::scrub::render_text(&r);
    if output.as_os_str() == "-" {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if r.input_damaged {
        exit::INPUT_DAMAGED
    } else {
        exit::OK
    }
}

/// `capsift scrub --verify ORIGINAL SCRUBBED`.
pub fn scrub_verify(
    original: &Path,
    scrubbed: &Path,
    opts: &crate::scrub::ScrubOptions,
    json: bool,
) -> i32 {
    match crate::scrub::verify::verify(
        original,
        scrubbed,
        opts.keep_dns,
        opts.keep_tls_handshake,
        &opts.decode,
        &opts.dns_ports,
    ) {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                print!("{}", crate::scrub::verify::render_text(&r));
            }
            if r.ok {
                exit::OK
            } else {
                exit::VERIFY_FAILED
            }
        }
        Err(e) => {
            eprintln!("capsift: {e}");
            exit::INPUT_DAMAGED
        }
    }
}
