//! Parquet output for tables, with polars: rows (the same structs the CSV
//! and NDJSON writers emit) become typed columns ([`FrameBuilder`]) and are
//! written in row groups as they come, so memory follows the batch size.

use super::frame_builder::FrameBuilder;
use polars::prelude::*;
use std::io::Write;

/// Rows buffered before a row group is written.
pub const BATCH_ROWS: usize = 65_536;

/// The Parquet writer every capsift table uses. Snappy, not polars'
/// default zstd: every Parquet reader has it (it is Spark's and DuckDB's
/// default), and polars creates a zstd context for every page, which made
/// compression most of the batch writer's time. With whole row groups the
/// files are about as large as zstd's were (docs/PERFORMANCE.md, "Batch
/// scaling").
pub fn parquet_writer<W: Write>(out: W) -> ParquetWriter<W> {
    ParquetWriter::new(out).with_compression(ParquetCompression::Snappy)
}

/// Rows (structs, or JSON objects) as a DataFrame, through
/// [`FrameBuilder`]. Every frame of a file is then conformed to the first
/// one's schema ([`ParquetTable::push_frame`]).
pub fn rows_to_frame<T: serde::Serialize>(rows: &[T]) -> PolarsResult<DataFrame> {
    let mut b = FrameBuilder::new();
    for r in rows {
        b.push(r).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    }
    b.finish()
}

/// `df` with the columns, order and types of `schema`: a column all null in
/// one capture may have been typed differently from the file's first
/// frame, so types are cast (not strictly) and missing columns are nulls.
pub fn conform(df: DataFrame, schema: &Schema) -> PolarsResult<DataFrame> {
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
    rows: FrameBuilder,
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
            rows: FrameBuilder::new(),
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

    pub fn push<T: serde::Serialize + ?Sized>(&mut self, row: &T) -> PolarsResult<()> {
        self.rows
            .push(row)
            .map_err(|e| polars_err!(ComputeError: "{e}"))?;
        if self.rows.len() >= self.group_rows() {
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
            .is_some_and(|f| f.height() >= self.group_rows())
        {
            self.flush_frames()?;
        }
        Ok(())
    }

    /// Rows of the next row group: `batch_rows` at first, then a sixteenth
    /// of what is written, up to [`BATCH_ROWS`]. Small groups keep the
    /// batch writer's encoding beside the workers; growing ones keep a
    /// table of hundreds of millions of rows (a Kubernetes-wide batch) to
    /// thousands of row groups, not a footer of hundreds of megabytes.
    fn group_rows(&self) -> usize {
        let grown = usize::try_from(self.written / 16).unwrap_or(usize::MAX);
        grown.clamp(self.batch_rows, self.batch_rows.max(BATCH_ROWS))
    }

    fn flush_frames(&mut self) -> PolarsResult<()> {
        let Some(mut df) = self.frames.take() else {
            return Ok(());
        };
        // One chunk, so one row group: polars writes a row group per chunk,
        // and the frames of several small captures would each be their own.
        df.rechunk_mut_par();
        self.write_group(&df)
    }

    fn write_group(&mut self, df: &DataFrame) -> PolarsResult<()> {
        if self.writer.is_none() {
            let out = self
                .out
                .take()
                .ok_or_else(|| polars_err!(ComputeError: "parquet writer already used"))?;
            self.writer = Some(parquet_writer(out).batched(df.schema())?);
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
        let df = std::mem::take(&mut self.rows).finish()?;
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
                parquet_writer(out).finish(&mut empty)?;
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
            t.push(&serde_json::json!({"capture": "a.pcap", "flow_id": i, "handshake_rtt_ms": null,
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
    fn row_groups_grow_with_the_table() {
        let mut t = ParquetTable::new(Vec::new()).with_batch_rows(4096);
        assert_eq!(t.group_rows(), 4096);
        t.written = 16 * 10_000;
        assert_eq!(t.group_rows(), 10_000);
        t.written = 16_000_000_000;
        assert_eq!(t.group_rows(), BATCH_ROWS);
        let big = ParquetTable::new(Vec::new()).with_batch_rows(100_000);
        assert_eq!(big.group_rows(), 100_000);
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
