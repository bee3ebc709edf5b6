//! The batch's tables: `captures`, `findings`, `flows`, `dns`, `tls`, each
//! written to a temporary name and renamed when the batch is complete.

use super::{CaptureResult, CaptureRow, TableRows};
use crate::report::flows_table::{TableFormat, TableSink};
use polars::prelude::*;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub const TABLES: [&str; 5] = ["captures", "findings", "flows", "dns", "tls"];

/// Row group size of batch tables: small enough that row groups are
/// encoded while workers still analyse (rather than all at the end), large
/// enough for Parquet's column compression to work.
const BATCH_ROWS: usize = 4096;

pub fn extension(f: TableFormat) -> &'static str {
    match f {
        TableFormat::Parquet => "parquet",
        TableFormat::Csv => "csv",
        TableFormat::Ndjson => "ndjson",
    }
}

pub fn path_of(dir: &Path, table: &str, f: TableFormat) -> PathBuf {
    dir.join(format!("{table}.{}", extension(f)))
}

fn tmp_of(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.capsift-tmp-{}", std::process::id()))
}

pub struct TableSet {
    sinks: Vec<(PathBuf, TableSink<BufWriter<File>>)>,
    /// Every table's destination, for removing the temporary files of a
    /// batch that did not complete.
    dests: Vec<PathBuf>,
    committed: bool,
}

impl Drop for TableSet {
    /// A batch that stops with an error leaves no temporary file behind
    /// (and, as before, no table that looks whole).
    fn drop(&mut self) {
        if !self.committed {
            for dest in &self.dests {
                let _ = std::fs::remove_file(tmp_of(dest));
            }
        }
    }
}

impl TableSet {
    pub fn create(dir: &Path, f: TableFormat) -> Result<TableSet, String> {
        // Built as the files are created, so a failure part-way removes
        // the ones already made (Drop).
        let mut set = TableSet {
            sinks: Vec::new(),
            dests: Vec::new(),
            committed: false,
        };
        for t in TABLES {
            let dest = path_of(dir, t, f);
            let tmp = tmp_of(&dest);
            let file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
            set.dests.push(dest.clone());
            set.sinks.push((
                dest,
                TableSink::new(BufWriter::with_capacity(1 << 20, file), f)
                    .with_batch_rows(BATCH_ROWS),
            ));
        }
        Ok(set)
    }

    pub fn write(&mut self, r: CaptureResult) -> Result<(), String> {
        for ((_, sink), part) in self.sinks.iter_mut().zip(TablePart::split(r)) {
            part.write_to(sink)?;
        }
        Ok(())
    }

    /// Write the last capture's rows, finish every table, then rename them
    /// all into place. The tables are finished side by side (each writes
    /// its part of `last`, then its last row group and footer): this runs
    /// after the last worker, on an otherwise idle machine, so the last
    /// capture is not written table after table on one thread first.
    pub fn commit(mut self, last: Option<CaptureResult>) -> Result<(), String> {
        let sinks = std::mem::take(&mut self.sinks);
        let mut parts = last.map(TablePart::split).into_iter().flatten();
        let done: Vec<Result<PathBuf, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = sinks
                .into_iter()
                .map(|(dest, mut sink)| {
                    let part = parts.next();
                    s.spawn(move || {
                        part.map_or(Ok(()), |p| p.write_to(&mut sink))?;
                        sink.finish()
                            .map(|()| dest.clone())
                            .map_err(|e| format!("{}: {e}", dest.display()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("finishing a table: thread failed".to_string()))
                })
                .collect()
        });
        let done = done.into_iter().collect::<Result<Vec<_>, _>>()?;
        for dest in done {
            let tmp = tmp_of(&dest);
            std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        }
        self.committed = true;
        Ok(())
    }
}

/// One capture's share of one table, in [`TABLES`] order.
enum TablePart {
    Capture(Box<CaptureRow>),
    Rows(TableRows),
}

impl TablePart {
    fn split(r: CaptureResult) -> impl Iterator<Item = TablePart> {
        std::iter::once(TablePart::Capture(Box::new(r.capture)))
            .chain(r.tables.into_iter().map(TablePart::Rows))
    }

    fn write_to(self, sink: &mut TableSink<BufWriter<File>>) -> Result<(), String> {
        let err = |e: std::io::Error| format!("writing tables: {e}");
        match self {
            TablePart::Capture(row) => sink.write(&*row).map_err(err),
            TablePart::Rows(TableRows::Json(rows)) => {
                for v in rows {
                    sink.write_value(v).map_err(err)?;
                }
                Ok(())
            }
            TablePart::Rows(TableRows::Columns(b)) => {
                let df = b.finish().map_err(|e| format!("writing tables: {e}"))?;
                sink.write_frame(df).map_err(err)
            }
            TablePart::Rows(TableRows::Frame(df)) => sink.write_frame(df).map_err(err),
            TablePart::Rows(TableRows::Failed(e)) => Err(e),
        }
    }
}

/// Read a table written by a batch, whatever its format.
pub fn read(dir: &Path, table: &str) -> Result<Option<DataFrame>, String> {
    read_columns(dir, table, None)
}

/// Read only `columns` of a table (those it has). Parquet reads just those
/// column chunks: the report needs 9 of the flows table's columns, and
/// reading the rest was most of the time the report took at the end of a
/// batch, when no worker is left to run beside it.
pub fn read_columns(
    dir: &Path,
    table: &str,
    columns: Option<&[&str]>,
) -> Result<Option<DataFrame>, String> {
    for f in [TableFormat::Parquet, TableFormat::Ndjson, TableFormat::Csv] {
        let p = path_of(dir, table, f);
        if !p.exists() {
            continue;
        }
        let err = |e: PolarsError| format!("{}: {e}", p.display());
        let file = File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) == 0 {
            return Ok(Some(DataFrame::empty()));
        }
        let df = match f {
            TableFormat::Parquet => {
                let mut reader = ParquetReader::new(file);
                if let Some(wanted) = columns {
                    let schema = reader.schema().map_err(err)?;
                    let present = wanted
                        .iter()
                        .filter(|c| schema.contains(c))
                        .map(|c| c.to_string())
                        .collect();
                    reader = reader.with_columns(Some(present));
                }
                return reader.finish().map(Some).map_err(err);
            }
            TableFormat::Ndjson => JsonReader::new(file)
                .with_json_format(JsonFormat::JsonLines)
                .finish()
                .map_err(err)?,
            TableFormat::Csv => CsvReadOptions::default()
                .with_has_header(true)
                .into_reader_with_file_handle(file)
                .finish()
                .map_err(err)?,
        };
        return Ok(Some(match columns {
            Some(wanted) => {
                let present: Vec<&str> = wanted
                    .iter()
                    .copied()
                    .filter(|c| df.column(c).is_ok())
                    .collect();
                df.select(present).map_err(err)?
            }
            None => df,
        }));
    }
    Ok(None)
}

/// Write a DataFrame as a table, atomically.
pub fn write_frame(df: &mut DataFrame, dest: &Path, f: TableFormat) -> Result<(), String> {
    let tmp = tmp_of(dest);
    let file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let err = |e: PolarsError| format!("{}: {e}", dest.display());
    match f {
        TableFormat::Parquet => {
            crate::report::parquet::parquet_writer(file)
                .finish(df)
                .map_err(err)?;
        }
        TableFormat::Csv => CsvWriter::new(file)
            .include_header(true)
            .finish(df)
            .map_err(err)?,
        TableFormat::Ndjson => JsonWriter::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)
            .map_err(err)?,
    }
    std::fs::rename(&tmp, dest).map_err(|e| format!("{}: {e}", dest.display()))
}

/// Concatenate each table of `dirs` into `out`; returns the captures merged.
pub fn merge(dirs: &[PathBuf], out: &Path, f: TableFormat) -> Result<usize, String> {
    let mut captures = 0;
    for t in TABLES {
        let mut frames: Vec<DataFrame> = Vec::new();
        for d in dirs {
            match read(d, t)? {
                Some(df) if df.height() > 0 => frames.push(df),
                Some(_) => {}
                None => {
                    return Err(format!(
                        "{}: no {t} table (is it a capsift batch output?)",
                        d.display()
                    ))
                }
            }
        }
        let mut merged = match frames.len() {
            0 => DataFrame::empty(),
            _ => {
                let lfs: Vec<LazyFrame> = frames.into_iter().map(|df| df.lazy()).collect();
                // Shards of one capsift version share each table's columns;
                // a type inferred differently (all nulls) is widened.
                concat(
                    lfs,
                    UnionArgs {
                        to_supertypes: true,
                        ..Default::default()
                    },
                )
                .and_then(|lf| lf.collect())
                .map_err(|e| format!("merging {t}: {e}"))?
            }
        };
        if t == "captures" {
            captures = merged.height();
        }
        write_frame(&mut merged, &path_of(out, t, f), f)?;
    }
    Ok(captures)
}
