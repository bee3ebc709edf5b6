//! The `capsift` command line: argument parsing only; the work is in the library.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

use capsift::analyze::AnalyzeOptions;
use capsift::capture::writer::OutputFormat;
use capsift::cli::{self, ReportFormat};
use capsift::decode::DecodeConfig;
use capsift::detect::Severity;
use capsift::dns::DnsConfig;
use capsift::flow::FlowConfig;
use capsift::report::flows_table::TableFormat;
use capsift::scrub::ScrubOptions;
use capsift::tls::verify::TrustStore;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "capsift",
    version,
    about = "pcap forensics for Kubernetes network incidents: overlay-aware decoding and verdicts",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find what went wrong: verdicts with evidence (frames, a Wireshark
    /// filter) and the next check to run, in one streaming pass.
    Analyze {
        /// Capture files (pcap or pcapng, optionally gzip/zstd); `-` reads stdin
        /// (e.g. `tcpdump -U -w - | capsift analyze -`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
        /// Exit with status 3 when a finding reaches this severity.
        #[arg(long, value_enum, value_name = "SEVERITY")]
        fail_on: Option<FailOn>,
        #[command(flatten)]
        analysis: AnalysisArgs,
    },
    /// Summarise captures like capinfos, overlay-aware: link types, times,
    /// protocol stacks, tunnels (VXLAN, Geneve, IP-in-IP, GRE, WireGuard,
    /// VLAN) and the CNI they suggest.
    Info {
        /// Capture files (pcap or pcapng, optionally gzip/zstd); `-` reads stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON (schema in docs/info.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        decode: DecodeArgs,
    },
    #[cfg(feature = "tables")]
    /// Analyse many captures in parallel into tables (flows, dns, tls,
    /// findings, captures) and a cross-capture report (docs/batch.md).
    Batch {
        /// Files, directories (walked; captures recognised by content) and glob patterns.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Output directory.
        #[arg(short, long)]
        output: PathBuf,
        /// Parallel workers (default: all cores).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Table format.
        #[arg(long, value_enum, default_value_t = TableFormatArg::Parquet)]
        format: TableFormatArg,
        /// Take only shard I of N (by a hash of the path): `--shard 3/8`, or
        /// `--shard auto/8` to read I from JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[command(flatten)]
        analysis: AnalysisArgs,
    },
    #[cfg(feature = "tables")]
    /// Combine batch outputs (e.g. the shards of an Indexed Job) into the
    /// tables and report one run would have written.
    Merge {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
        /// Table format of the merged output.
        #[arg(long, value_enum, default_value_t = TableFormatArg::Parquet)]
        format: TableFormatArg,
    },
    /// Make a capture safe to attach to a ticket: every payload byte removed,
    /// every header to the transport layer kept (outer, inner, ICMP-quoted),
    /// optionally addresses anonymized; a report says what left the file
    /// (docs/scrub.md).
    Scrub(ScrubArgs),
    /// Write a table (one row per flow) for other tools; columns in docs/tables.md.
    Table {
        #[command(subcommand)]
        table: TableCommand,
    },
}

#[derive(Subcommand)]
enum TableCommand {
    /// One row per flow (TCP and UDP), with TCP analysis counters.
    Flows(TableArgs),
    /// One row per DNS query, with its response, latency and search expansion.
    Dns(TableArgs),
    /// One row per TLS handshake, with SNI, ALPN, certificate and verdict.
    Tls(TableArgs),
}

#[derive(Args)]
struct TableArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Row format.
    #[arg(long, value_enum, default_value_t = TableFormatArg::Csv)]
    format: TableFormatArg,
    /// Output file (written atomically); stdout when absent.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

#[derive(Args)]
struct ScrubArgs {
    /// Capture to scrub (pcap or pcapng, optionally gzip/zstd; `-` for stdin).
    #[arg(required_unless_present = "verify")]
    input: Option<PathBuf>,
    /// Output file, written atomically (`-` for stdout).
    #[arg(short, long, required_unless_present = "verify")]
    output: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "REPORT.json")]
    report: Option<PathBuf>,
    /// Output format (nanosecond timestamps either way).
    #[arg(long, value_enum, default_value_t = CaptureFormatArg::Pcapng)]
    format: CaptureFormatArg,
    /// Keep more than headers. Repeatable.
    #[arg(long, value_enum, value_name = "WHAT")]
    keep: Vec<KeepArg>,
    /// Replace each DNS label (and TLS SNI and certificate names) by a
    /// same-length keyed hash, except suffixes like svc.cluster.local. Needs --key-file.
    #[arg(long)]
    hash_names: bool,
    /// Map IPv4/IPv6 addresses prefix-preservingly (Crypto-PAn) and MAC
    /// addresses by a keyed hash, at every level. Needs --key-file.
    #[arg(long)]
    anonymize: bool,
    /// Secret key (64 hex digits); a new one is made when the file does not
    /// exist. The same key gives the same mapping in every capture.
    #[arg(long, value_name = "KEY")]
    key_file: Option<PathBuf>,
    /// Leave addresses in this range as they are (e.g. the Service CIDR). Repeatable.
    #[arg(long = "keep-net", value_name = "CIDR")]
    keep_nets: Vec<String>,
    /// Label written to the output's section header, e.g. `--tag cluster=prod-eu`. Repeatable.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// Check a scrubbed file against its original instead of scrubbing: every
    /// packet present, no run of 8+ removed payload bytes left. Exit 4 if not.
    #[arg(long, num_args = 2, value_names = ["ORIGINAL", "SCRUBBED"], conflicts_with_all = ["input", "output"])]
    verify: Option<Vec<PathBuf>>,
    /// With --verify: print JSON.
    #[arg(long, requires = "verify")]
    json: bool,
    /// Also treat this port as DNS (53 always is). Repeatable.
    #[arg(long = "dns-port", value_name = "PORT")]
    dns_ports: Vec<u16>,
    #[command(flatten)]
    decode: DecodeArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeepArg {
    /// DNS messages (names hashed with --hash-names).
    Dns,
    /// TLS ClientHello, ServerHello, Certificate, alerts; not application data.
    TlsHandshake,
    /// pcapng interface names and descriptions.
    InterfaceNames,
}

#[derive(Clone, Copy, ValueEnum)]
enum CaptureFormatArg {
    Pcapng,
    Pcap,
}

impl ScrubArgs {
    fn options(&self) -> Result<ScrubOptions, String> {
        let mut keep_nets = Vec::new();
        for n in &self.keep_nets {
            keep_nets.push(n.parse()?);
        }
        for t in &self.tags {
            if !t.contains('=') {
                return Err(format!(
                    "--tag {t}: expected KEY=VALUE, e.g. cluster=prod-eu"
                ));
            }
        }
        let mut dns_ports = vec![53];
        dns_ports.extend(&self.dns_ports);
        Ok(ScrubOptions {
            keep_dns: self.keep.contains(&KeepArg::Dns),
            keep_tls_handshake: self.keep.contains(&KeepArg::TlsHandshake),
            keep_interface_names: self.keep.contains(&KeepArg::InterfaceNames),
            hash_names: self.hash_names,
            anonymize: self.anonymize,
            key_file: self.key_file.clone(),
            keep_nets,
            tags: self.tags.clone(),
            format: match self.format {
                CaptureFormatArg::Pcapng => OutputFormat::Pcapng,
                CaptureFormatArg::Pcap => OutputFormat::Pcap,
            },
            decode: self.decode.config(),
            dns_ports,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Warning,
    Critical,
}

#[derive(Clone, Copy, ValueEnum)]
enum TableFormatArg {
    Csv,
    Ndjson,
    Parquet,
}

/// Decoder settings shared by every command that reads packets.
#[derive(Args)]
struct DecodeArgs {
    /// Also decode VXLAN on this UDP port (4789 and 8472 always are). Repeatable.
    #[arg(long = "vxlan-port", value_name = "PORT")]
    vxlan_ports: Vec<u16>,
    /// Also decode Geneve on this UDP port (6081 always is). Repeatable.
    #[arg(long = "geneve-port", value_name = "PORT")]
    geneve_ports: Vec<u16>,
    /// Also decode WireGuard on this UDP port (51820 and 51871 always are). Repeatable.
    #[arg(long = "wireguard-port", value_name = "PORT")]
    wireguard_ports: Vec<u16>,
    /// Do not recognise VXLAN, Geneve or WireGuard by content on other ports.
    #[arg(long)]
    no_heuristics: bool,
}

impl DecodeArgs {
    fn config(&self) -> DecodeConfig {
        let mut c = DecodeConfig::default();
        self.vxlan_ports.iter().for_each(|p| c.add_vxlan_port(*p));
        self.geneve_ports.iter().for_each(|p| c.add_geneve_port(*p));
        self.wireguard_ports
            .iter()
            .for_each(|p| c.add_wireguard_port(*p));
        c.heuristics = !self.no_heuristics;
        c
    }
}

/// Settings of the analysis pipeline.
#[derive(Args)]
struct AnalysisArgs {
    #[command(flatten)]
    decode: DecodeArgs,
    /// Treat copies of one packet seen at several capture points (`tcpdump -i any`)
    /// as separate packets, as tshark does.
    #[arg(long)]
    no_dedup: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Also follow DNS on this port (TCP and UDP; 53 always is). Repeatable.
    #[arg(long = "dns-port", value_name = "PORT")]
    dns_ports: Vec<u16>,
    /// Flows tracked at once (about 850 bytes each: the default 2,000,000
    /// is 1.7 GB at most); further flows get a `flow.table_full` warning.
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    max_flows: usize,
    /// Trust the CA certificates in this PEM file, besides the public web
    /// roots (e.g. the cluster CA: `kubectl get cm kube-root-ca.crt -o
    /// jsonpath='{.data.ca\.crt}'`). Repeatable.
    #[arg(long = "ca-bundle", value_name = "PEM")]
    ca_bundles: Vec<PathBuf>,
}

impl AnalysisArgs {
    fn options(&self) -> AnalyzeOptions {
        let mut trust = TrustStore::default();
        for p in &self.ca_bundles {
            if let Err(e) = trust.add_pem_file(p) {
                eprintln!("capsift: {e}");
                std::process::exit(cli::exit::USAGE);
            }
        }
        AnalyzeOptions {
            trust: std::sync::Arc::new(trust),
            decode: self.decode.config(),
            flow: FlowConfig {
                dedup: !self.no_dedup,
                max_flows: self.max_flows.max(1),
                ..FlowConfig::default()
            },
            progress: !self.quiet,
            dns: {
                let mut d = DnsConfig::default();
                d.ports.extend(&self.dns_ports);
                d
            },
        }
    }
}

#[cfg(feature = "tables")]
fn table_format(f: TableFormatArg) -> TableFormat {
    match f {
        TableFormatArg::Csv => TableFormat::Csv,
        TableFormatArg::Ndjson => TableFormat::Ndjson,
        TableFormatArg::Parquet => TableFormat::Parquet,
    }
}

fn main() {
    let cli = Cli::parse();
    // Ctrl-C and SIGTERM remove unfinished outputs; if the handler cannot
    // be set up, the next run into the directory removes them instead.
    #[cfg(unix)]
    let _ = capsift::interrupt::install();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let status = match cli.command {
        Command::Analyze {
            files,
            format,
            fail_on,
            analysis,
        } => {
            let format = match format {
                FormatArg::Text => ReportFormat::Text,
                FormatArg::Markdown => ReportFormat::Markdown,
                FormatArg::Json => ReportFormat::Json,
            };
            let fail_on = fail_on.map(|f| match f {
                FailOn::Warning => Severity::Warning,
                FailOn::Critical => Severity::Critical,
            });
            cli::analyze(&files, format, fail_on, &analysis.options(), &mut out)
        }
        Command::Info {
            files,
            json,
            decode,
        } => cli::info(&files, json, &decode.config(), &mut out),
        #[cfg(feature = "tables")]
        Command::Batch {
            inputs,
            output,
            jobs,
            format,
            shard,
            analysis,
        } => cli::batch(
            inputs,
            output,
            jobs,
            table_format(format),
            shard.as_deref(),
            analysis.quiet,
            analysis.options(),
        ),
        #[cfg(feature = "tables")]
        Command::Merge {
            dirs,
            output,
            format,
        } => cli::merge(&dirs, &output, table_format(format)),
        Command::Scrub(args) => match args.options() {
            Err(e) => {
                eprintln!("capsift: {e}");
                cli::exit::USAGE
            }
            Ok(opts) => match (&args.verify, &args.input, &args.output) {
                (Some(v), _, _) => cli::scrub_verify(&v[0], &v[1], &opts, args.json),
                (None, Some(i), Some(o)) => cli::scrub(i, o, args.report.as_deref(), &opts),
                _ => {
                    eprintln!("capsift: scrub needs IN -o OUT (or --verify ORIGINAL SCRUBBED)");
                    cli::exit::USAGE
                }
            },
        },
        Command::Table { table } => {
            let (kind, t) = match table {
                TableCommand::Flows(t) => (cli::TableKind::Flows, t),
                TableCommand::Dns(t) => (cli::TableKind::Dns, t),
                TableCommand::Tls(t) => (cli::TableKind::Tls, t),
            };
            let format = match t.format {
                TableFormatArg::Csv => TableFormat::Csv,
                TableFormatArg::Ndjson => TableFormat::Ndjson,
                TableFormatArg::Parquet => TableFormat::Parquet,
            };
            cli::table(
                kind,
                &t.files,
                format,
                t.output.as_deref(),
                &t.analysis.options(),
                &mut out,
            )
        }
    };
    drop(out);
    std::process::exit(status);
}
