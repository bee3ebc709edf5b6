//! Parquet output for tables, with polars: rows (as JSON objects, the same
//! rows the CSV and NDJSON writers emit) become typed columns and are
//! written in row groups as they come, so memory follows the batch size.

use polars::prelude::*;
use std::io::Write;

/// Rows buffered before a row group is written.
pub const BATCH_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Bool,
    Str,
}

/// Columns that may be null in a whole batch but are numbers when present.
const INT_COLUMNS: &[&str] = &["syn_mss_fwd", "syn_mss_rev", "answers", "response_frame"];

fn kind_of(name: &str, values: &[&serde_json::Value]) -> Kind {
    if INT_COLUMNS.contains(&name) {
        return Kind::Int;
    }
    if name.ends_with("_ms") || name.ends_with("_s") || name == "rate" {
        return Kind::Float;
    }
    let mut kind = None;
    for v in values {
        let k = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::Bool(_) => Kind::Bool,
            serde_json::Value::Number(n) if n.is_f64() => Kind::Float,
            serde_json::Value::Number(_) => Kind::Int,
            _ => Kind::Str,
        };
        kind = Some(match (kind, k) {
            (None, k) => k,
            (Some(a), b) if a == b => a,
            (Some(Kind::Int), Kind::Float) | (Some(Kind::Float), Kind::Int) => Kind::Float,
            _ => Kind::Str,
        });
    }
    kind.unwrap_or(Kind::Str)
}

fn column(name: &str, kind: Kind, values: &[&serde_json::Value]) -> Column {
    let name = PlSmallStr::from(name);
    match kind {
        Kind::Int => Column::new(
            name,
            values
                .iter()
                .map(|v| v.as_i64())
                .collect::<Vec<Option<i64>>>(),
        ),
        Kind::Float => Column::new(
            name,
            values
                .iter()
                .map(|v| v.as_f64())
                .collect::<Vec<Option<f64>>>(),
        ),
        Kind::Bool => Column::new(
            name,
            values
                .iter()
                .map(|v| v.as_bool())
                .collect::<Vec<Option<bool>>>(),
        ),
        Kind::Str => Column::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<Vec<Option<String>>>(),
        ),
    }
}

/// Build a DataFrame from rows that all have the same keys (in order).
/// `kinds` fixes the column types (after the first batch, so that every
/// row group of a file has one schema).
fn frame(rows: &[serde_json::Value], kinds: &mut Vec<(String, Kind)>) -> PolarsResult<DataFrame> {
    if kinds.is_empty() {
        if let Some(serde_json::Value::Object(first)) = rows.first() {
            for name in first.keys() {
                let vals: Vec<&serde_json::Value> = rows
                    .iter()
                    .map(|r| r.get(name).unwrap_or(&serde_json::Value::Null))
                    .collect();
                kinds.push((name.clone(), kind_of(name, &vals)));
            }
        }
    }
    let cols: Vec<Column> = kinds
        .iter()
        .map(|(name, kind)| {
            let vals: Vec<&serde_json::Value> = rows
                .iter()
                .map(|r| r.get(name).unwrap_or(&serde_json::Value::Null))
                .collect();
            column(name, *kind, &vals)
        })
        .collect();
    DataFrame::new(rows.len(), cols)
}

/// A table written as Parquet, one row group per batch.
pub struct ParquetTable<W: Write> {
    out: Option<W>,
    writer: Option<polars::io::parquet::write::BatchedWriter<W>>,
    kinds: Vec<(String, Kind)>,
    rows: Vec<serde_json::Value>,
    pub written: u64,
}

impl<W: Write> ParquetTable<W> {
    pub fn new(out: W) -> Self {
        ParquetTable {
            out: Some(out),
            writer: None,
            kinds: Vec::new(),
            rows: Vec::new(),
            written: 0,
        }
    }

    pub fn push(&mut self, row: serde_json::Value) -> PolarsResult<()> {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> PolarsResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let df = frame(&self.rows, &mut self.kinds)?;
        if self.writer.is_none() {
            let out = self
                .out
                .take()
                .ok_or_else(|| polars_err!(ComputeError: "parquet writer already used"))?;
            self.writer = Some(ParquetWriter::new(out).batched(df.schema())?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write_batch(&df)?;
        }
        self.written += self.rows.len() as u64;
        self.rows.clear();
        Ok(())
    }

    /// Write what is buffered and the file footer. A table with no rows
    /// gets a valid file with no columns.
    pub fn finish(mut self) -> PolarsResult<()> {
        self.flush()?;
        match (self.writer.take(), self.out.take()) {
            (Some(w), _) => {
                w.finish()?;
            }
            (None, Some(out)) => {
                let mut empty = DataFrame::empty();
                ParquetWriter::new(out).finish(&mut empty)?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_typed_columns_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let mut t = ParquetTable::new(std::fs::File::create(&p).unwrap());
        for i in 0..3 {
            t.push(serde_json::json!({"capture": "a.pcap", "flow_id": i, "handshake_rtt_ms": null,
                                      "syn_mss_fwd": null, "reused_ports": i == 1, "state": "closed"}))
                .unwrap();
        }
        t.finish().unwrap();
        let df = ParquetReader::new(std::fs::File::open(&p).unwrap())
            .finish()
            .unwrap();
        assert_eq!(df.height(), 3);
        assert_eq!(df.column("flow_id").unwrap().dtype(), &DataType::Int64);
        assert_eq!(
            df.column("handshake_rtt_ms").unwrap().dtype(),
            &DataType::Float64
        );
        assert_eq!(df.column("syn_mss_fwd").unwrap().dtype(), &DataType::Int64);
        assert_eq!(
            df.column("reused_ports").unwrap().dtype(),
            &DataType::Boolean
        );
        assert_eq!(df.column("state").unwrap().dtype(), &DataType::String);
    }
}
