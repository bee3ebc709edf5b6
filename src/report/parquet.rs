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

/// Columns that may be null in a whole batch (or a whole capture, as the
/// batch's workers build one frame per capture) but are numbers when
/// present: every `Option` of an integer in the row types. Typing them by
/// name keeps each table's schema the same whatever capture comes first.
const INT_COLUMNS: &[&str] = &[
    "syn_mss_fwd",
    "syn_mss_rev",
    "answers",
    "response_frame",
    "flow_id",
    "src_port",
    "dst_port",
];

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

/// Rows as a DataFrame: the columns are the first row's keys, typed from
/// these rows' values. Every frame of a file is then conformed to the
/// first one's schema ([`ParquetTable::push_frame`]). The batch's workers
/// call this themselves so that the column building runs in parallel.
pub fn rows_to_frame(rows: &[serde_json::Value]) -> PolarsResult<DataFrame> {
    let mut kinds: Vec<(String, Kind)> = match rows.first() {
        Some(serde_json::Value::Object(first)) => {
            first.keys().map(|k| (k.clone(), Kind::Str)).collect()
        }
        _ => Vec::new(),
    };
    // Transpose rows into columns in one pass. Rows come from one struct
    // type, so their keys are in the columns' order: take values by
    // position and fall back to a lookup by name only where a key differs
    // (looking every cell up by name was most of the batch writer's time).
    let null = serde_json::Value::Null;
    let mut by_col: Vec<Vec<&serde_json::Value>> = kinds
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for r in rows {
        let obj = r.as_object();
        let mut it = obj.map(|o| o.iter().peekable());
        for (i, (name, _)) in kinds.iter().enumerate() {
            // Advance only on a match: a key left out of this row (a skipped
            // `None`) must not shift the ones after it.
            let next = it.as_mut().and_then(|it| it.next_if(|(k, _)| *k == name));
            let v = match next {
                Some((_, v)) => v,
                None => obj.and_then(|o| o.get(name)).unwrap_or(&null),
            };
            by_col[i].push(v);
        }
    }
    for ((name, kind), vals) in kinds.iter_mut().zip(&by_col) {
        *kind = kind_of(name, vals);
    }
    let cols: Vec<Column> = kinds
        .iter()
        .zip(&by_col)
        .map(|((name, kind), vals)| column(name, *kind, vals))
        .collect();
    DataFrame::new(rows.len(), cols)
}

/// `df` with the columns, order and types of `schema`: a column all null in
/// one capture may have been typed differently from the file's first
/// frame, so types are cast (not strictly) and missing columns are nulls.
fn conform(df: DataFrame, schema: &Schema) -> PolarsResult<DataFrame> {
    if df.schema().as_ref() == schema {
        return Ok(df);
    }
    let n = df.height();
    let cols: Vec<Column> = schema
        .iter()
        .map(|(name, dtype)| match df.column(name) {
            Ok(c) if c.dtype() == dtype => Ok(c.clone()),
            Ok(c) => {
                c.cast_with_options(dtype, polars::chunked_array::cast::CastOptions::NonStrict)
            }
            Err(_) => Ok(Column::full_null(name.clone(), n, dtype)),
        })
        .collect::<PolarsResult<_>>()?;
    DataFrame::new(n, cols)
}

/// A table written as Parquet, one row group per batch.
pub struct ParquetTable<W: Write> {
    out: Option<W>,
    writer: Option<polars::io::parquet::write::BatchedWriter<W>>,
    rows: Vec<serde_json::Value>,
    /// Frames pushed whole (batch workers), waiting for a full row group.
    frames: Option<DataFrame>,
    schema: Option<Schema>,
    batch_rows: usize,
    pub written: u64,
}

impl<W: Write> ParquetTable<W> {
    pub fn new(out: W) -> Self {
        ParquetTable {
            out: Some(out),
            writer: None,
            rows: Vec::new(),
            frames: None,
            schema: None,
            batch_rows: BATCH_ROWS,
            written: 0,
        }
    }

    /// Rows per row group (default [`BATCH_ROWS`]). The batch writer uses
    /// smaller groups so that encoding overlaps the workers' analysis
    /// instead of all happening after the last capture.
    pub fn with_batch_rows(mut self, n: usize) -> Self {
        self.batch_rows = n.max(1);
        self
    }

    pub fn push(&mut self, row: serde_json::Value) -> PolarsResult<()> {
        self.rows.push(row);
        if self.rows.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Add rows already turned into a frame ([`rows_to_frame`]).
    pub fn push_frame(&mut self, df: DataFrame) -> PolarsResult<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let df = match &self.schema {
            Some(s) => conform(df, s)?,
            None => {
                self.schema = Some(df.schema().as_ref().clone());
                df
            }
        };
        match self.frames.as_mut() {
            Some(f) => {
                f.vstack_mut_owned(df)?;
            }
            None => self.frames = Some(df),
        }
        if self
            .frames
            .as_ref()
            .is_some_and(|f| f.height() >= self.batch_rows)
        {
            self.flush_frames()?;
        }
        Ok(())
    }

    fn flush_frames(&mut self) -> PolarsResult<()> {
        let Some(mut df) = self.frames.take() else {
            return Ok(());
        };
        df.align_chunks_par();
        self.write_group(&df)
    }

    fn write_group(&mut self, df: &DataFrame) -> PolarsResult<()> {
        if self.writer.is_none() {
            let out = self
                .out
                .take()
                .ok_or_else(|| polars_err!(ComputeError: "parquet writer already used"))?;
            self.writer = Some(ParquetWriter::new(out).batched(df.schema())?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write_batch(df)?;
        }
        self.written += df.height() as u64;
        Ok(())
    }

    /// Rows buffered by [`push`](Self::push) become a frame like any other.
    fn flush(&mut self) -> PolarsResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let df = rows_to_frame(&self.rows)?;
        self.rows.clear();
        self.push_frame(df)
    }

    /// Write what is buffered and the file footer. A table with no rows
    /// gets a valid file with no columns.
    pub fn finish(mut self) -> PolarsResult<()> {
        self.flush()?;
        self.flush_frames()?;
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

    #[test]
    fn frames_from_several_captures_share_one_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.parquet");
        let mut t = ParquetTable::new(std::fs::File::create(&p).unwrap()).with_batch_rows(2);
        // The first capture has no value for a string column the second has,
        // and the second lacks a column altogether.
        let a =
            rows_to_frame(&[serde_json::json!({"capture": "a", "note": null, "n": 1})]).unwrap();
        let b = rows_to_frame(&[
            serde_json::json!({"capture": "b", "note": "x", "n": 2}),
            serde_json::json!({"capture": "b", "note": "y", "n": 3}),
        ])
        .unwrap();
        let c = rows_to_frame(&[serde_json::json!({"capture": "c", "n": 4})]).unwrap();
        for f in [a, b, c] {
            t.push_frame(f).unwrap();
        }
        t.finish().unwrap();
        let df = ParquetReader::new(std::fs::File::open(&p).unwrap())
            .finish()
            .unwrap();
        assert_eq!(df.height(), 4);
        assert_eq!(df.column("n").unwrap().dtype(), &DataType::Int64);
        assert_eq!(df.column("note").unwrap().null_count(), 2);
    }
}
