//! `capsift scrub`: make a capture safe to attach to a ticket while keeping
//! what diagnosis needs.
//!
//! Every header up to the transport layer is kept at every encapsulation
//! level (outer, inner, and headers quoted in ICMP errors); every payload
//! byte is removed by shortening the captured length (the original length
//! stays, so sizes and MTU evidence survive). Opt-ins keep DNS messages and
//! TLS handshakes; `--anonymize` maps addresses consistently from a key;
//! checksums are updated incrementally. The output is written atomically.
//! Policy and report: `docs/scrub.md`.

pub mod anonymize;
pub mod checksum;
pub mod cryptopan;
pub mod dns;
pub mod packet;
pub mod selfcheck;
pub mod tls;
pub mod verify;

use crate::atomic_file::{check_not_input, AtomicFile};
use crate::capture::writer::{CaptureWriter, IfDesc, OutputFormat};
use crate::capture::{CaptureReader, LinkType};
use crate::decode::{decode, DecodeConfig};
use anonymize::{AddressMapper, Cidr, NameHasher, ScrubKey};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to keep besides headers, and how to anonymize.
#[derive(Debug, Clone)]
pub struct ScrubOptions {
    pub keep_dns: bool,
    pub keep_tls_handshake: bool,
    /// pcapng interface names and descriptions.
    pub keep_interface_names: bool,
    pub hash_names: bool,
    pub anonymize: bool,
    pub key_file: Option<PathBuf>,
    pub keep_nets: Vec<Cidr>,
    /// `--tag key=value`, written to the section header.
    pub tags: Vec<String>,
    pub format: OutputFormat,
    pub decode: DecodeConfig,
    pub dns_ports: Vec<u16>,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        ScrubOptions {
            keep_dns: false,
            keep_tls_handshake: false,
            keep_interface_names: false,
            hash_names: false,
            anonymize: false,
            key_file: None,
            keep_nets: Vec::new(),
            tags: Vec::new(),
            format: OutputFormat::Pcapng,
            decode: DecodeConfig::default(),
            dns_ports: vec![53],
        }
    }
}

/// The policy line written to the output's section header (and read back
/// by `--verify`): it never contains the key.
pub const POLICY_PREFIX: &str = "capsift-scrub-policy:";

impl ScrubOptions {
    pub fn kept(&self) -> Vec<&'static str> {
        let mut k = vec!["headers"];
        if self.keep_dns {
            k.push("dns");
        }
        if self.keep_tls_handshake {
            k.push("tls-handshake");
        }
        if self.keep_interface_names {
            k.push("interface-names");
        }
        k
    }

    fn policy_line(&self) -> String {
        let mut s = format!(
            "{POLICY_PREFIX} keep={} anonymize={} hash-names={}",
            self.kept().join(","),
            if self.anonymize { "yes" } else { "no" },
            if self.hash_names { "yes" } else { "no" },
        );
        if !self.keep_nets.is_empty() {
            let nets: Vec<String> = self.keep_nets.iter().map(|c| c.to_string()).collect();
            s.push_str(&format!(" keep-net={}", nets.join(",")));
        }
        s
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct RemovedBytes {
    /// Transport payload that was neither DNS nor TLS.
    pub payload: u64,
    /// DNS messages (all of them without `--keep dns`; unreadable ones with it).
    pub dns: u64,
    /// TLS records other than handshake, alert and change-cipher-spec
    /// (application data, TLS 1.3's encrypted handshake).
    pub tls_application_data: u64,
    /// Bytes after the last header of packets capsift could not decode fully.
    pub undecoded: u64,
    /// pcapng blocks without packets (name resolution, decryption secrets, ...).
    pub metadata_blocks: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ScrubReport {
    pub capsift_version: &'static str,
    pub input: String,
    pub output: String,
    pub format: &'static str,
    pub policy: String,
    pub kept: Vec<&'static str>,
    pub tags: Vec<String>,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Captured bytes of the packets, in and out.
    pub captured_bytes_in: u64,
    pub captured_bytes_out: u64,
    pub removed_bytes: RemovedBytes,
    /// Metadata removed, by pcapng block kind, counts.
    pub metadata_blocks_removed: BTreeMap<&'static str, u64>,
    pub comments_removed: u64,
    pub interface_names_removed: bool,
    pub dns_messages_kept: u64,
    pub tls_handshake_bytes_kept: u64,
    pub packets_undecoded: u64,
    pub anonymized: Option<AnonymizedCounts>,
    pub names: Option<NameCounts>,
    pub checksums_updated: u64,
    pub key_file_created: bool,
    /// Reading stopped early (the packets before the damage were written).
    pub input_damaged: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct AnonymizedCounts {
    pub distinct_ip_addresses: u64,
    pub ipv4_fields: u64,
    pub ipv6_fields: u64,
    pub kept_by_range: u64,
    pub distinct_mac_addresses: u64,
    pub mac_fields: u64,
    pub dns_answer_addresses: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct NameCounts {
    pub dns_labels_hashed: u64,
    pub dns_opaque_bytes_zeroed: u64,
    /// DNS messages that could not be walked (removed instead).
    pub dns_messages_unreadable: u64,
    pub tls_names_hashed: u64,
    pub tls_certificates: u64,
}

struct Secrets {
    mapper: Option<AddressMapper>,
    names: Option<NameHasher>,
}

/// Scrub `input` into `output` (`-` writes to stdout).
pub fn scrub_file(input: &Path, output: &Path, opts: &ScrubOptions) -> Result<ScrubReport, String> {
    let stdout = output.as_os_str() == "-";
    if !stdout {
        check_not_input(output, &[input.to_path_buf()])?;
    }
    let mut report = ScrubReport {
        capsift_version: env!("CARGO_PKG_VERSION"),
        input: input.display().to_string(),
        output: output.display().to_string(),
        format: match opts.format {
            OutputFormat::Pcapng => "pcapng",
            OutputFormat::Pcap => "pcap",
        },
        policy: opts.policy_line(),
        kept: opts.kept(),
        tags: opts.tags.clone(),
        interface_names_removed: !opts.keep_interface_names,
        ..ScrubReport::default()
    };
    let mut secrets = Secrets {
        mapper: None,
        names: None,
    };
    if opts.anonymize || opts.hash_names {
        let path = opts.key_file.as_ref().ok_or(
            "--anonymize and --hash-names need --key-file FILE (created with a new random key when it does not exist)",
        )?;
        let (key, created) = ScrubKey::load_or_create(path)?;
        report.key_file_created = created;
        if opts.anonymize {
            secrets.mapper = Some(AddressMapper::new(&key, &opts.keep_nets));
        }
        if opts.hash_names {
            secrets.names = Some(NameHasher::new(&key));
        }
    }
    // Names in TLS handshakes can span segments: find them in a first pass.
    let tls_names = if opts.keep_tls_handshake && opts.hash_names {
        if input.as_os_str() == "-" {
            return Err("--hash-names with --keep tls-handshake reads the input twice: give a file, not stdin".into());
        }
        Some(collect_tls_names(input, opts, &mut secrets)?)
    } else {
        None
    };

    let mut reader = CaptureReader::open(input).map_err(|e| e.to_string())?;
    let sink = if stdout {
        Sink::Stdout(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout(),
        ))
    } else {
        Sink::File(
            AtomicFile::create(output)
                .map_err(|e| format!("cannot create {}: {e}", output.display()))?,
        )
    };
    let mut comments = vec![
        format!(
            "Scrubbed by capsift {} (payload removed; headers kept to the transport layer).",
            env!("CARGO_PKG_VERSION")
        ),
        opts.policy_line(),
    ];
    comments.extend(opts.tags.iter().map(|t| format!("tag {t}")));
    let mut writer = CaptureWriter::new(sink, opts.format, comments);
    let mut run = Run {
        opts,
        tls: tls::TlsStreams::default(),
        tls_names: tls_names.as_ref(),
        buf: Vec::with_capacity(1 << 16),
        old: Vec::with_capacity(1 << 16),
    };
    let write_err = |e: std::io::Error| format!("cannot write {}: {e}", output.display());
    while let Some(pkt) = reader.next_packet() {
        let (ts, orig_len, link, iface) = (
            pkt.has_ts.then_some(pkt.ts),
            pkt.orig_len,
            pkt.link_type,
            pkt.interface,
        );
        run.packet(pkt.data, link, &mut secrets, &mut report);
        let describe = |i: u32| {
            let l = reader.interface_link_type(i).unwrap_or(link);
            if !opts.keep_interface_names {
                return (l, IfDesc::default());
            }
            let (name, description) = reader.interface_text(i);
            (
                l,
                IfDesc {
                    name: name.map(str::to_string),
                    description: description.map(str::to_string),
                },
            )
        };
        writer
            .packet(iface, link, &describe, ts, &run.buf, orig_len)
            .map_err(write_err)?;
        report.packets_out += 1;
        report.captured_bytes_out += run.buf.len() as u64;
    }
    let empty_link = reader
        .meta
        .link_types
        .iter()
        .next()
        .copied()
        .unwrap_or(LinkType::ETHERNET);
    let sink = writer.finish(empty_link).map_err(write_err)?;
    report.metadata_blocks_removed = reader.meta.metadata_blocks.clone();
    report.removed_bytes.metadata_blocks = reader.meta.metadata_bytes.values().sum();
    report.comments_removed = reader.meta.comment_count;
    report.input_damaged = reader.damaged;
    report.warnings = reader
        .warnings
        .to_vec()
        .into_iter()
        .map(|w| w.message)
        .collect();
    if run.tls.resets > 0 {
        report.warnings.push(format!(
            "more than {} TCP directions at once: TLS record tracking started again {} times (handshake bytes of the directions dropped were removed, not kept)",
            tls::MAX_DIRECTIONS,
            run.tls.resets
        ));
    }
    if let Some(m) = &secrets.mapper {
        let a = report.anonymized.get_or_insert_with(Default::default);
        a.distinct_ip_addresses = m.distinct() as u64;
        a.distinct_mac_addresses = m.distinct_macs() as u64;
        a.kept_by_range = m.kept_by_range;
    }
    if let Some(h) = &secrets.names {
        let n = report.names.get_or_insert_with(Default::default);
        n.dns_labels_hashed = h.labels_hashed;
        if let Some(t) = &tls_names {
            n.tls_names_hashed = t.names_hashed;
            n.tls_certificates = t.certificates;
        }
    }
    drop(reader);
    sink.finish().map_err(write_err)?;
    Ok(report)
}

/// Where the scrubbed capture goes: a file that appears complete or not at all, or stdout.
enum Sink {
    File(AtomicFile),
    Stdout(std::io::BufWriter<std::io::Stdout>),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(b),
            Sink::Stdout(o) => o.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(o) => o.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.commit(),
            Sink::Stdout(mut o) => o.flush(),
        }
    }
}

struct Run<'o, 'n> {
    opts: &'o ScrubOptions,
    tls: tls::TlsStreams,
    tls_names: Option<&'n tls::NameCollector>,
    /// The packet as written, and a copy before rewriting (for checksums).
    buf: Vec<u8>,
    old: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Other,
    Dns,
    Tls,
}

impl Run<'_, '_> {
    fn is_dns_port(&self, p: u16) -> bool {
        self.opts.dns_ports.contains(&p)
    }

    fn packet(
        &mut self,
        data: &[u8],
        link: LinkType,
        secrets: &mut Secrets,
        report: &mut ScrubReport,
    ) {
        report.packets_in += 1;
        report.captured_bytes_in += data.len() as u64;
        let d = decode(&self.opts.decode, link, data);
        let undecoded = d.is_undecoded();
        let plan = packet::plan(data, &d);
        drop(d);
        let mut keep = plan.headers_end;
        let mut kind = PayloadKind::Other;
        let mut dns_regions: arrayvec::ArrayVec<(usize, usize), 16> = arrayvec::ArrayVec::new();
        let mut tls_seg = None;
        if let Some(t) = plan.transport {
            let pay = &data[t.payload_at..t.payload_at + t.payload_len];
            if self.is_dns_port(t.src_port) || self.is_dns_port(t.dst_port) {
                kind = PayloadKind::Dns;
                if self.opts.keep_dns {
                    if !t.tcp {
                        let _ = dns_regions.try_push((t.payload_at, t.payload_at + t.payload_len));
                        keep = t.payload_at + t.payload_len;
                    } else {
                        // DNS over TCP: whole length-prefixed messages from the segment start.
                        let mut pos = 0;
                        while pos + 2 <= pay.len() {
                            let n = usize::from(u16::from_be_bytes([pay[pos], pay[pos + 1]]));
                            if pos + 2 + n > pay.len() || dns_regions.is_full() {
                                break;
                            }
                            dns_regions.push((t.payload_at + pos + 2, t.payload_at + pos + 2 + n));
                            pos += 2 + n;
                        }
                        keep = t.payload_at + pos;
                    }
                    report.dns_messages_kept += dns_regions.len() as u64;
                }
            } else if t.tcp && self.opts.keep_tls_handshake {
                let c = self.tls.segment(t.dir, t.seq, t.syn, pay, false);
                if c.tls_bytes > 0 {
                    kind = PayloadKind::Tls;
                }
                keep = t.payload_at + c.keep;
                report.tls_handshake_bytes_kept += c.keep as u64;
                if c.keep > 0 {
                    tls_seg = Some((t.dir, t.seq, t.payload_at, c.keep));
                }
            }
        }
        let keep = keep.max(plan.headers_end).min(data.len());
        let removed = (data.len() - keep) as u64;
        if undecoded {
            report.packets_undecoded += 1;
            report.removed_bytes.undecoded += removed;
        } else {
            match kind {
                PayloadKind::Other => report.removed_bytes.payload += removed,
                PayloadKind::Dns => report.removed_bytes.dns += removed,
                PayloadKind::Tls => report.removed_bytes.tls_application_data += removed,
            }
        }
        self.buf.clear();
        self.buf.extend_from_slice(&data[..keep]);
        let rewriting = secrets.mapper.is_some() || secrets.names.is_some();
        if !rewriting {
            return;
        }
        self.old.clear();
        self.old.extend_from_slice(&self.buf);
        if let Some(m) = secrets.mapper.as_mut() {
            let a = report.anonymized.get_or_insert_with(Default::default);
            for &o in &plan.macs {
                if let Some(b) = self.buf.get_mut(o..o + 6) {
                    m.map_mac(b);
                    a.mac_fields += 1;
                }
            }
            for &(o, n) in &plan.ips {
                if let Some(b) = self.buf.get_mut(o..o + n) {
                    m.map_ip_bytes(b);
                    if n == 4 {
                        a.ipv4_fields += 1;
                    } else {
                        a.ipv6_fields += 1;
                    }
                }
            }
        }
        let mut cut = None;
        for &(a, b) in &dns_regions {
            let Some(msg) = self.buf.get_mut(a..b) else {
                break;
            };
            match dns::rewrite(msg, secrets.names.as_mut(), secrets.mapper.as_mut()) {
                Ok(r) => {
                    if secrets.mapper.is_some() {
                        report
                            .anonymized
                            .get_or_insert_with(Default::default)
                            .dns_answer_addresses += r.addresses;
                    }
                    if secrets.names.is_some() {
                        report
                            .names
                            .get_or_insert_with(Default::default)
                            .dns_opaque_bytes_zeroed += r.opaque_bytes_zeroed;
                    }
                }
                Err(dns::Unwalkable) => {
                    // Keep nothing we could not rewrite. (For DNS over TCP the
                    // length prefix stays; the message goes.)
                    report
                        .names
                        .get_or_insert_with(Default::default)
                        .dns_messages_unreadable += 1;
                    report.dns_messages_kept = report.dns_messages_kept.saturating_sub(1);
                    report.removed_bytes.dns += (b - a) as u64;
                    cut = Some(a);
                    break;
                }
            }
        }
        if let (Some((dir, seq, at, len)), Some(found)) = (tls_seg, self.tls_names) {
            if let Some(n) = found.found.get(&dir) {
                let k = tls::apply(n, seq, &mut self.buf[at..at + len]);
                if k < len {
                    report.tls_handshake_bytes_kept -= (len - k) as u64;
                    report.removed_bytes.tls_application_data += (len - k) as u64;
                    cut = Some(cut.map_or(at + k, |c: usize| c.min(at + k)));
                }
            }
        }
        if let Some(c) = cut {
            self.buf.truncate(c.max(plan.headers_end));
            self.old.truncate(self.buf.len());
        }
        for c in plan.checksums.iter().rev() {
            if checksum::update(&self.old, &mut self.buf, c) {
                report.checksums_updated += 1;
            }
        }
    }
}

fn collect_tls_names(
    input: &Path,
    opts: &ScrubOptions,
    secrets: &mut Secrets,
) -> Result<tls::NameCollector, String> {
    let mut reader = CaptureReader::open(input).map_err(|e| e.to_string())?;
    let mut c = tls::NameCollector::default();
    let Some(names) = secrets.names.as_mut() else {
        return Ok(c);
    };
    while let Some(pkt) = reader.next_packet() {
        let d = decode(&opts.decode, pkt.link_type, pkt.data);
        let plan = packet::plan(pkt.data, &d);
        if let Some(t) = plan.transport.filter(|t| t.tcp) {
            if opts.dns_ports.contains(&t.src_port) || opts.dns_ports.contains(&t.dst_port) {
                continue;
            }
            let pay = &pkt.data[t.payload_at..t.payload_at + t.payload_len];
            c.segment(t.dir, t.seq, t.syn, pay, names, secrets.mapper.as_mut());
        }
    }
    c.finish();
    Ok(c)
}

/// The one-screen summary.
pub fn render_text(r: &ScrubReport) -> String {
    let mut s = String::new();
    let kb = crate::info::text::human_bytes;
    s.push_str(&format!(
        "scrubbed {} -> {} ({})\n",
        r.input, r.output, r.format
    ));
    s.push_str(&format!(
        "packets: {} in, {} out (every packet kept; original lengths kept)\n",
        r.packets_in, r.packets_out
    ));
    s.push_str(&format!(
        "captured bytes: {} in, {} out\n",
        kb(r.captured_bytes_in),
        kb(r.captured_bytes_out)
    ));
    let rb = &r.removed_bytes;
    s.push_str("removed:\n");
    s.push_str(&format!("  {:<24}{}\n", "payload", kb(rb.payload)));
    s.push_str(&format!("  {:<24}{}\n", "DNS messages", kb(rb.dns)));
    s.push_str(&format!(
        "  {:<24}{}\n",
        "TLS application data",
        kb(rb.tls_application_data)
    ));
    s.push_str(&format!(
        "  {:<24}{} ({} packets capsift could not decode fully)\n",
        "past undecoded headers",
        kb(rb.undecoded),
        r.packets_undecoded
    ));
    let blocks: Vec<String> = r
        .metadata_blocks_removed
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    s.push_str(&format!(
        "  {:<24}{}{}\n",
        "metadata blocks",
        kb(rb.metadata_blocks),
        if blocks.is_empty() {
            String::new()
        } else {
            format!(" ({})", blocks.join(", "))
        }
    ));
    s.push_str(&format!("  {:<24}{}\n", "comments", r.comments_removed));
    if r.interface_names_removed {
        s.push_str("  interface names and descriptions (interfaces keep their numbers)\n");
    }
    s.push_str(&format!("kept: {}", r.kept.join(", ")));
    if r.kept.contains(&"dns") {
        s.push_str(&format!(" ({} DNS messages)", r.dns_messages_kept));
    }
    if r.kept.contains(&"tls-handshake") {
        s.push_str(&format!(
            " ({} of TLS handshakes and alerts)",
            kb(r.tls_handshake_bytes_kept)
        ));
    }
    s.push('\n');
    match &r.anonymized {
        Some(a) => s.push_str(&format!(
            "anonymized: {} IP addresses (prefix-preserving: {} IPv4 and {} IPv6 fields, {} in kept ranges), {} MAC addresses ({} fields), {} DNS answer addresses\n",
            a.distinct_ip_addresses, a.ipv4_fields, a.ipv6_fields, a.kept_by_range, a.distinct_mac_addresses, a.mac_fields, a.dns_answer_addresses
        )),
        None => s.push_str("addresses: not anonymized (use --anonymize --key-file KEY)\n"),
    }
    if let Some(n) = &r.names {
        s.push_str(&format!(
            "names hashed: {} DNS labels, {} TLS names in {} certificates; {} opaque DNS record bytes zeroed; {} unreadable DNS messages removed\n",
            n.dns_labels_hashed, n.tls_names_hashed, n.tls_certificates, n.dns_opaque_bytes_zeroed, n.dns_messages_unreadable
        ));
    }
    if r.checksums_updated > 0 {
        s.push_str(&format!("checksums updated: {}\n", r.checksums_updated));
    }
    if r.key_file_created {
        s.push_str("key: a new key file was created; keep it to scrub more captures with the same mapping\n");
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}
