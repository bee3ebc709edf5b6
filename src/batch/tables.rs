//! The batch's tables: `captures`, `findings`, `flows`, `dns`, `tls`, each
//! written to a temporary name and renamed when the batch is complete.

use super::{CaptureResult, CaptureRow, TableRows};
use crate::atomic_file::{dir_of, TempPath};
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

/// Tables written under temporary names, renamed into place all together
/// when every one is complete. Dropped before that (an error part-way), it
/// removes the temporary files: no table that looks whole, no leftovers
/// (`TempPath`, which also covers SIGINT/SIGTERM and the files of a killed
/// batch).
#[derive(Default)]
pub struct TempTables {
    temps: Vec<TempPath>,
}

impl TempTables {
    /// A new table: its temporary file, created now.
    pub fn create(&mut self, dest: PathBuf) -> Result<File, String> {
        let (temp, file) = TempPath::create(&dest)
            .map_err(|e| format!("cannot create a temporary file for {}: {e}", dest.display()))?;
        self.temps.push(temp);
        Ok(file)
    }

    /// Sync every table to disk, then rename them all into place and sync
    /// the directory, so that after a crash a table under its final name is
    /// whole (as `report.md` and every other output of capsift).
    pub fn commit(self) -> Result<(), String> {
        for temp in &self.temps {
            temp.sync()
                .map_err(|e| format!("{}: {e}", temp.path().display()))?;
        }
        let dir = self.temps.first().map(|t| dir_of(t.path()).to_path_buf());
        TempPath::persist_all(self.temps).map_err(|e| e.to_string())?;
        if let Some(dir) = dir {
            // Best effort: the renames are done; a directory that cannot be
            // opened for syncing (some network file systems) is not an error.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    #[cfg(test)]
    fn paths(&self) -> Vec<PathBuf> {
        self.temps.iter().map(|t| t.path().to_path_buf()).collect()
    }
}

pub struct TableSet {
    sinks: Vec<(PathBuf, TableSink<BufWriter<File>>)>,
    temps: TempTables,
}

impl TableSet {
    pub fn create(dir: &Path, f: TableFormat) -> Result<TableSet, String> {
        // Built as the files are created, so a failure part-way removes
        // the ones already made (Drop of `temps`).
        let mut set = TableSet {
            sinks: Vec::new(),
            temps: TempTables::default(),
        };
        for t in TABLES {
            let dest = path_of(dir, t, f);
            let file = set.temps.create(dest.clone())?;
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
    pub fn commit(self, last: Option<CaptureResult>) -> Result<(), String> {
        let TableSet { sinks, temps } = self;
        let mut parts = last.map(TablePart::split).into_iter().flatten();
        let done: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = sinks
                .into_iter()
                .map(|(dest, mut sink)| {
                    let part = parts.next();
                    s.spawn(move || {
                        part.map_or(Ok(()), |p| p.write_to(&mut sink))?;
                        sink.finish()
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
        done.into_iter().collect::<Result<Vec<()>, _>>()?;
        temps.commit()
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

/// The format of the batch output in `dir`, from its `captures` table.
/// Tables of two formats side by side (a batch run again into the same
/// directory with another `--format`) are refused: which one is current
/// cannot be told.
pub fn format_of(dir: &Path) -> Result<TableFormat, String> {
    let present: Vec<TableFormat> = [TableFormat::Parquet, TableFormat::Ndjson, TableFormat::Csv]
        .into_iter()
        .filter(|f| path_of(dir, "captures", *f).exists())
        .collect();
    match present[..] {
        [f] => Ok(f),
        [] => Err(format!(
            "{}: no captures table (is it a capsift batch output?)",
            dir.display()
        )),
        _ => Err(format!(
            "{}: tables in several formats ({}): remove the ones of the earlier batch",
            dir.display(),
            present
                .iter()
                .map(|f| format!("captures.{}", extension(*f)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Read a table written by a batch in format `f`; `None` if it is not there.
pub fn read(dir: &Path, table: &str, f: TableFormat) -> Result<Option<DataFrame>, String> {
    read_columns(dir, table, f, None)
}

/// Read only `columns` of a table (those it has). Parquet reads just those
/// column chunks: the report needs 9 of the flows table's columns, and
/// reading the rest was most of the time the report took at the end of a
/// batch, when no worker is left to run beside it.
pub fn read_columns(
    dir: &Path,
    table: &str,
    f: TableFormat,
    columns: Option<&[&str]>,
) -> Result<Option<DataFrame>, String> {
    let p = path_of(dir, table, f);
    if !p.exists() {
        return Ok(None);
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
                reader = reader.with_columns(Some(present_columns(&schema, wanted)));
            }
            return reader.finish().map(Some).map_err(err);
        }
        TableFormat::Ndjson => JsonReader::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .infer_schema_len(None)
            .finish()
            .map_err(err)?,
        // Types from every row, not the first 100: a column whose first
        // rows all look like numbers (`frames` = "42") may hold text later
        // ("42 57"), and a guess from the start would fail on it.
        TableFormat::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .into_reader_with_file_handle(file)
            .finish()
            .map_err(err)?,
    };
    Ok(Some(match columns {
        Some(wanted) => {
            let present: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|c| df.column(c).is_ok())
                .collect();
            df.select(present).map_err(err)?
        }
        None => df,
    }))
}

/// The columns of `wanted` that a Parquet table's `schema` has.
fn present_columns(schema: &ArrowSchema, wanted: &[&str]) -> Vec<String> {
    wanted
        .iter()
        .filter(|c| schema.contains(c))
        .map(|c| c.to_string())
        .collect()
}

/// Rows per piece when a table is read back in pieces (merge, report).
const READ_CHUNK_ROWS: usize = 65_536;

/// Call `each` on table `table` of `dir` (format `f`) piece by piece, in
/// row order, with only `columns` (those it has) when given. Parquet is
/// read a slice of row groups at a time, so memory follows the piece, not
/// the table (a merged Kubernetes-wide batch can have hundreds of millions
/// of flows); CSV and NDJSON are read whole, as one piece. `each` returns
/// whether to go on. Returns whether the table exists.
pub fn for_each_chunk(
    dir: &Path,
    table: &str,
    f: TableFormat,
    columns: Option<&[&str]>,
    mut each: impl FnMut(DataFrame) -> Result<bool, String>,
) -> Result<bool, String> {
    let p = path_of(dir, table, f);
    if !p.exists() {
        return Ok(false);
    }
    if f != TableFormat::Parquet || std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) == 0 {
        if let Some(df) = read_columns(dir, table, f, columns)? {
            each(df)?;
        }
        return Ok(true);
    }
    let err = |e: PolarsError| format!("{}: {e}", p.display());
    let open = || File::open(&p).map_err(|e| format!("{}: {e}", p.display()));
    let mut reader = ParquetReader::new(open()?);
    let metadata = reader.get_metadata().map_err(err)?.clone();
    let schema = reader.schema().map_err(err)?;
    let wanted = columns.map(|w| present_columns(&schema, w));
    if wanted.as_ref().is_some_and(|w| w.is_empty()) {
        return Ok(true);
    }
    let mut offset = 0;
    while offset < metadata.num_rows {
        let mut reader = ParquetReader::new(open()?);
        // The footer once, not once per piece.
        reader.set_metadata(metadata.clone());
        let df = reader
            .with_columns(wanted.clone())
            .with_slice(Some((offset, READ_CHUNK_ROWS)))
            .finish()
            .map_err(err)?;
        offset += READ_CHUNK_ROWS;
        if !each(df)? {
            break;
        }
    }
    Ok(true)
}

/// Concatenate each table of `dirs` into `out`; returns the captures merged.
/// Tables are copied piece by piece ([`for_each_chunk`]), so memory
/// follows a piece of a Parquet table, not the merged total. All five
/// tables are written before any is renamed into place: a merge that fails
/// part-way (a shard without a table) changes nothing in `out`.
pub fn merge(dirs: &[PathBuf], out: &Path, f: TableFormat) -> Result<usize, String> {
    let formats = dirs
        .iter()
        .map(|d| format_of(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut temps = TempTables::default();
    let mut captures = 0;
    for t in TABLES {
        let missing = |d: &Path| {
            format!(
                "{}: no {t} table (is it a capsift batch output?)",
                d.display()
            )
        };
        // The merged columns, before any row is written: shards of one
        // capsift version share each table's columns; a type inferred
        // differently (a column all null in one shard) is widened to what
        // both hold. This reads a Parquet shard's first piece only, but a
        // CSV or NDJSON shard whole (its types come from every row), so
        // text shards are read twice.
        let mut empties = Vec::new();
        for (d, fd) in dirs.iter().zip(&formats) {
            let found = for_each_chunk(d, t, *fd, None, |df| {
                if df.height() == 0 {
                    return Ok(true);
                }
                empties.push(df.clear().lazy());
                Ok(false)
            })?;
            if !found {
                return Err(missing(d));
            }
        }
        let dest = path_of(out, t, f);
        let file = temps.create(dest.clone())?;
        // Parquet row groups of the default 65,536 rows.
        let mut sink = TableSink::new(BufWriter::with_capacity(1 << 20, file), f);
        // No shard has a row: the table is written empty, as a batch does.
        if !empties.is_empty() {
            let schema = concat(
                empties,
                UnionArgs {
                    to_supertypes: true,
                    ..Default::default()
                },
            )
            .and_then(|lf| lf.collect())
            .map_err(|e| format!("merging {t}: {e}"))?
            .schema()
            .as_ref()
            .clone();
            let err = |e: PolarsError| format!("merging {t}: {e}");
            for (d, fd) in dirs.iter().zip(&formats) {
                for_each_chunk(d, t, *fd, None, |df| {
                    if df.height() == 0 {
                        return Ok(true);
                    }
                    if t == "captures" {
                        captures += df.height();
                    }
                    let df = crate::report::parquet::conform(df, &schema).map_err(err)?;
                    sink.write_frame(df)
                        .map_err(|e| format!("merging {t}: {e}"))?;
                    Ok(true)
                })?;
            }
        }
        sink.finish()
            .map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    temps.commit()?;
    Ok(captures)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn csv_types_come_from_every_row() {
        // 150 rows whose `frames` look like numbers, then one that does not.
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("capture,frames\n");
        for i in 0..150 {
            text.push_str(&format!("a.pcap,{i}\n"));
        }
        text.push_str("a.pcap,42 57\n");
        std::fs::write(path_of(dir.path(), "findings", TableFormat::Csv), text).unwrap();
        let df = read(dir.path(), "findings", TableFormat::Csv)
            .unwrap()
            .unwrap();
        assert_eq!(df.height(), 151);
        assert_eq!(df.column("frames").unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn temp_tables_are_removed_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("flows.csv");
        let mut temps = TempTables::default();
        temps.create(dest.clone()).unwrap();
        let tmp = temps.paths();
        assert!(tmp[0].is_file());
        drop(temps);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut temps = TempTables::default();
        temps.create(dest.clone()).unwrap();
        let tmp = temps.paths();
        temps.commit().unwrap();
        assert!(dest.is_file() && !tmp[0].exists());
    }

    /// A flows-like table of `n` rows in `dir`, as a batch writes it
    /// (4,096-row groups); also used by the report's tests.
    pub(crate) fn flows_table(dir: &Path, n: usize, f: TableFormat) {
        let file = File::create(path_of(dir, "flows", f)).unwrap();
        let mut sink = TableSink::new(BufWriter::new(file), f).with_batch_rows(BATCH_ROWS);
        for i in 0..n {
            sink.write_value(serde_json::json!({
                "capture": format!("node-{}.pcap", i % 7),
                "flow_id": i,
                "tunnel": "",
                "src_ip": "10.0.0.1",
                "src_port": 40000 + (i % 20000),
                "dst_ip": format!("10.96.0.{}", i % 5),
                "dst_port": 443,
                "retransmissions": (i * 7919) % 100_003,
                "state": if i % 97 == 0 { "syn_unanswered" } else { "closed" },
            }))
            .unwrap();
        }
        sink.finish().unwrap();
    }

    #[test]
    fn parquet_is_read_in_pieces_and_merged_whole() {
        let n = 2 * READ_CHUNK_ROWS + 1000;
        let shard = tempfile::tempdir().unwrap();
        flows_table(shard.path(), n, TableFormat::Parquet);
        let mut pieces = Vec::new();
        for_each_chunk(
            shard.path(),
            "flows",
            TableFormat::Parquet,
            Some(&["flow_id"]),
            |df| {
                assert_eq!(df.width(), 1);
                pieces.push(df.height());
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(pieces, vec![READ_CHUNK_ROWS, READ_CHUNK_ROWS, 1000]);
        // The other tables, empty, so the directory is a batch output.
        for t in ["captures", "findings", "dns", "tls"] {
            let file = File::create(path_of(shard.path(), t, TableFormat::Parquet)).unwrap();
            TableSink::new(BufWriter::new(file), TableFormat::Parquet)
                .finish()
                .unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        for f in [TableFormat::Parquet, TableFormat::Csv] {
            merge(&[shard.path().to_path_buf()], out.path(), f).unwrap();
            let a = read(shard.path(), "flows", TableFormat::Parquet)
                .unwrap()
                .unwrap();
            let b = read(out.path(), "flows", f).unwrap().unwrap();
            assert_eq!(b.height(), n);
            assert!(a.equals_missing(&b), "{f:?}");
        }
    }

    #[test]
    fn a_directory_with_two_formats_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(format_of(dir.path())
            .unwrap_err()
            .contains("no captures table"));
        std::fs::write(
            path_of(dir.path(), "captures", TableFormat::Csv),
            "capture\n",
        )
        .unwrap();
        assert_eq!(format_of(dir.path()).unwrap(), TableFormat::Csv);
        std::fs::write(path_of(dir.path(), "captures", TableFormat::Ndjson), "").unwrap();
        assert!(format_of(dir.path())
            .unwrap_err()
            .contains("several formats"));
    }
}
