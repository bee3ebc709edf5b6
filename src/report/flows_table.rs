//! The flows table (`capsift table flows`): one row per flow, columns
//! documented in docs/tables.md. Rows are written as flows end, so the
//! table streams in constant memory.

use crate::detect::finding::proto_name;
use crate::flow::key::{context_label, context_outer};
use crate::flow::Flow;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Debug, Clone, Serialize)]
pub struct FlowRow {
    pub capture: String,
    pub flow_id: u64,
    pub first_ts: String,
    pub last_ts: String,
    pub first_frame: u64,
    pub last_frame: u64,
    pub tunnel: String,
    pub outer_src: String,
    pub outer_dst: String,
    pub proto: &'static str,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub packets_fwd: u64,
    pub packets_rev: u64,
    pub bytes_fwd: u64,
    pub bytes_rev: u64,
    pub state: &'static str,
    pub handshake_rtt_ms: Option<f64>,
    pub syn_mss_fwd: Option<u16>,
    pub syn_mss_rev: Option<u16>,
    pub max_ip_len_fwd: u32,
    pub max_ip_len_rev: u32,
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    pub out_of_order: u64,
    pub lost_segments: u64,
    pub dup_acks: u64,
    pub zero_windows: u64,
    pub window_full: u64,
    pub keep_alives: u64,
    pub resets: u64,
    pub reused_ports: bool,
    pub copies_skipped: u64,
}

impl FlowRow {
    pub fn of(capture: &str, f: &Flow) -> FlowRow {
        let outer = context_outer(&f.tunnel);
        let c = f
            .tcp
            .as_ref()
            .map(|t| t.counters.clone())
            .unwrap_or_default();
        FlowRow {
            capture: capture.to_string(),
            flow_id: f.id,
            first_ts: f.first_ts.to_rfc3339(),
            last_ts: f.last_ts.to_rfc3339(),
            first_frame: f.first_frame,
            last_frame: f.last_frame,
            tunnel: context_label(&f.tunnel),
            outer_src: outer.map(|o| o.0.to_string()).unwrap_or_default(),
            outer_dst: outer.map(|o| o.1.to_string()).unwrap_or_default(),
            proto: proto_name(f.proto),
            src_ip: f.src.0.to_string(),
            src_port: f.src.1,
            dst_ip: f.dst.0.to_string(),
            dst_port: f.dst.1,
            packets_fwd: f.packets[0],
            packets_rev: f.packets[1],
            bytes_fwd: f.bytes[0],
            bytes_rev: f.bytes[1],
            state: f.state().as_str(),
            handshake_rtt_ms: f.handshake_rtt_ms(),
            syn_mss_fwd: f.syn_mss[0],
            syn_mss_rev: f.syn_mss[1],
            max_ip_len_fwd: f.max_ip_len[0],
            max_ip_len_rev: f.max_ip_len[1],
            retransmissions: c.retransmissions,
            fast_retransmissions: c.fast_retransmissions,
            spurious_retransmissions: c.spurious_retransmissions,
            out_of_order: c.out_of_order,
            lost_segments: c.lost_segments,
            dup_acks: c.dup_acks,
            zero_windows: c.zero_windows,
            window_full: c.window_full,
            keep_alives: c.keep_alives,
            resets: c.resets,
            reused_ports: f.tcp.as_ref().is_some_and(|t| t.reused_ports),
            copies_skipped: f.copies_skipped,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Ndjson,
    Parquet,
}

/// A table being written in any of the formats.
pub enum TableSink<W: Write> {
    Text(RowWriter<W>),
    #[cfg(feature = "tables")]
    Parquet(Box<super::parquet::ParquetTable<W>>),
}

impl<W: Write> TableSink<W> {
    pub fn new(out: W, format: TableFormat) -> Self {
        match format {
            #[cfg(feature = "tables")]
            TableFormat::Parquet => {
                TableSink::Parquet(Box::new(super::parquet::ParquetTable::new(out)))
            }
            // Built without polars (the fuzz targets): NDJSON instead.
            #[cfg(not(feature = "tables"))]
            TableFormat::Parquet => TableSink::Text(RowWriter::new(out, TableFormat::Ndjson)),
            f => TableSink::Text(RowWriter::new(out, f)),
        }
    }

    pub fn write<T: Serialize>(&mut self, row: &T) -> io::Result<()> {
        match self {
            TableSink::Text(w) => w.write(row),
            #[cfg(feature = "tables")]
            TableSink::Parquet(p) => p.push(row).map_err(|e| io::Error::other(e.to_string())),
        }
    }

    /// Add rows already built into a frame (by a batch worker, or read
    /// from a shard by `merge`).
    #[cfg(feature = "tables")]
    pub fn write_frame(&mut self, df: polars::prelude::DataFrame) -> io::Result<()> {
        match self {
            TableSink::Parquet(p) => p
                .push_frame(df)
                .map_err(|e| io::Error::other(e.to_string())),
            TableSink::Text(w) => w.write_frame(df),
        }
    }

    /// Parquet rows per row group (no effect on CSV and NDJSON).
    #[cfg(feature = "tables")]
    pub fn with_batch_rows(self, n: usize) -> Self {
        match self {
            #[cfg(feature = "tables")]
            TableSink::Parquet(p) => TableSink::Parquet(Box::new(p.with_batch_rows(n))),
            #[allow(unreachable_patterns)]
            t => t,
        }
    }

    /// Write a row that is already a JSON value, without serializing it
    /// again (for Parquet, a deep copy with a hash lookup per key was most
    /// of the batch writer's time).
    pub fn write_value(&mut self, row: serde_json::Value) -> io::Result<()> {
        match self {
            TableSink::Text(w) => w.write(&row),
            #[cfg(feature = "tables")]
            TableSink::Parquet(p) => p.push(&row).map_err(|e| io::Error::other(e.to_string())),
        }
    }

    /// Finish the file (Parquet footer) and flush.
    pub fn finish(self) -> io::Result<()> {
        match self {
            TableSink::Text(w) => w.into_inner().flush(),
            #[cfg(feature = "tables")]
            TableSink::Parquet(p) => p.finish().map_err(|e| io::Error::other(e.to_string())),
        }
    }
}

/// Streams rows as CSV (with a header line) or NDJSON.
pub struct RowWriter<W: Write> {
    out: W,
    format: TableFormat,
    header_done: bool,
}

impl<W: Write> RowWriter<W> {
    pub fn new(out: W, format: TableFormat) -> Self {
        RowWriter {
            out,
            format,
            header_done: false,
        }
    }

    pub fn write<T: Serialize>(&mut self, row: &T) -> io::Result<()> {
        match self.format {
            TableFormat::Ndjson | TableFormat::Parquet => {
                serde_json::to_writer(&mut self.out, row)?;
                self.out.write_all(b"\n")
            }
            TableFormat::Csv => {
                let v = serde_json::to_value(row)?;
                let obj = v
                    .as_object()
                    .ok_or_else(|| io::Error::other("table row is not an object"))?;
                if !self.header_done {
                    let names: Vec<String> = obj.keys().map(|k| csv_field(k)).collect();
                    writeln!(self.out, "{}", names.join(","))?;
                    self.header_done = true;
                }
                let vals: Vec<String> = obj
                    .values()
                    .map(|v| match v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => csv_field(s),
                        other => csv_field(&other.to_string()),
                    })
                    .collect();
                writeln!(self.out, "{}", vals.join(","))
            }
        }
    }

    /// A whole frame, written by polars (CSV header only before the first).
    #[cfg(feature = "tables")]
    pub fn write_frame(&mut self, mut df: polars::prelude::DataFrame) -> io::Result<()> {
        use polars::prelude::{CsvWriter, JsonFormat, JsonWriter, SerWriter};
        let done = match self.format {
            TableFormat::Csv => CsvWriter::new(&mut self.out)
                .include_header(!self.header_done)
                .finish(&mut df),
            _ => JsonWriter::new(&mut self.out)
                .with_json_format(JsonFormat::JsonLines)
                .finish(&mut df),
        };
        self.header_done = true;
        done.map_err(|e| io::Error::other(e.to_string()))
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
