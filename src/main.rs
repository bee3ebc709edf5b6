//! The `capsift` command line: argument parsing only; the work is in the library.

use capsift::cli;
use capsift::decode::DecodeConfig;
use clap::{Args, Parser, Subcommand};
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

fn main() {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let status = match cli.command {
        Command::Info {
            files,
            json,
            decode,
        } => cli::info(&files, json, &decode.config(), &mut out),
    };
    drop(out);
    std::process::exit(status);
}
