//! The cross-capture report (`report.md`, `report.json`), computed with
//! polars from the batch's tables, so a merged set of shards gets the same
//! report as one run.

use super::tables::{for_each_chunk, read_columns, TABLES};
use crate::report::flows_table::TableFormat;
use polars::prelude::*;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;

/// Rows of a DataFrame as JSON objects (for the report's small tables).
fn rows(df: &DataFrame) -> Vec<Value> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    (0..df.height())
        .map(|i| {
            let mut m = serde_json::Map::new();
            for (c, name) in df.columns().iter().zip(&names) {
                let v = match c.get(i) {
                    Ok(AnyValue::Null) | Err(_) => Value::Null,
                    Ok(AnyValue::Boolean(b)) => Value::Bool(b),
                    Ok(AnyValue::String(s)) => Value::String(s.to_string()),
                    Ok(AnyValue::StringOwned(s)) => Value::String(s.to_string()),
                    Ok(AnyValue::Int64(x)) => json!(x),
                    Ok(AnyValue::Int32(x)) => json!(x),
                    Ok(AnyValue::UInt32(x)) => json!(x),
                    Ok(AnyValue::UInt64(x)) => json!(x),
                    Ok(AnyValue::Float64(x)) => json!(x),
                    Ok(other) => Value::String(other.to_string()),
                };
                m.insert(name.clone(), v);
            }
            Value::Object(m)
        })
        .collect()
}

/// Run `q` on `df` when it has rows and the columns the query needs (a
/// table from an empty or older batch may lack them); else no rows.
fn query(
    df: &DataFrame,
    needs: &[&str],
    q: impl FnOnce(LazyFrame) -> LazyFrame,
) -> Result<DataFrame, String> {
    if df.height() == 0 || !needs.iter().all(|c| df.column(c).is_ok()) {
        return Ok(DataFrame::empty());
    }
    q(df.clone().lazy())
        .collect()
        .map_err(|e| format!("report: {e}"))
}

/// The flows columns the report uses.
const FLOW_COLUMNS: [&str; 9] = [
    "capture",
    "flow_id",
    "tunnel",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "retransmissions",
    "state",
];

/// The 10 flows with most retransmissions (ties: capture, then flow id),
/// with the report's columns.
fn top_retransmitted(lf: LazyFrame) -> LazyFrame {
    lf.filter(col("retransmissions").gt(lit(0)))
        .select(FLOW_COLUMNS.map(col))
        .sort_by_exprs(
            [col("retransmissions"), col("capture"), col("flow_id")],
            SortMultipleOptions::default().with_order_descending_multi([true, false, false]),
        )
        .limit(10)
}

/// The only flows the report's queries look at.
#[derive(Default)]
struct FlowsOfInterest {
    /// Flows whose SYNs went unanswered (state, server, capture).
    syn_unanswered: DataFrame,
    /// The table's [`top_retransmitted`].
    top_retransmitted: DataFrame,
}

/// [`FlowsOfInterest`], read piece by piece, so the report's memory follows
/// the unanswered flows, not the flows table (which grows with every
/// capture of a batch). The top 10 of the table is the top 10 of the
/// pieces' top 10s.
fn flows_of_interest(dir: &Path, format: TableFormat) -> Result<FlowsOfInterest, String> {
    let err = |e: PolarsError| format!("report: {e}");
    let mut found = FlowsOfInterest::default();
    for_each_chunk(dir, "flows", format, Some(&FLOW_COLUMNS), |df| {
        if !FLOW_COLUMNS.iter().all(|c| df.column(c).is_ok()) {
            return Ok(false);
        }
        let syn = df
            .clone()
            .lazy()
            .filter(col("state").eq(lit("syn_unanswered")))
            .select([col("state"), col("dst_ip"), col("dst_port"), col("capture")])
            .collect()
            .map_err(err)?;
        let kept = &mut found.syn_unanswered;
        if kept.width() == 0 {
            *kept = syn;
        } else {
            kept.vstack_mut_owned(syn).map_err(err)?;
        }
        let top = std::mem::take(&mut found.top_retransmitted);
        let mut pieces = vec![top_retransmitted(df.lazy())];
        if top.width() > 0 {
            pieces.push(top.lazy());
        }
        found.top_retransmitted = concat(pieces, UnionArgs::default())
            .map(top_retransmitted)
            .and_then(|lf| lf.collect())
            .map_err(err)?;
        Ok(true)
    })?;
    Ok(found)
}

/// Every query of the report, as (title, rows).
fn compute(dir: &Path, format: TableFormat) -> Result<Vec<(&'static str, Vec<Value>)>, String> {
    // Only the tables of this format: a directory may still hold another
    // format's tables from an earlier batch.
    let load = |t: &str, columns: &[&str]| {
        read_columns(dir, t, format, Some(columns)).map(|d| d.unwrap_or_default())
    };
    let captures = load(
        "captures",
        &[
            "capture", "status", "verdict", "findings", "packets", "error",
        ],
    )?;
    let findings = load("findings", &["kind", "key", "capture", "severity", "title"])?;
    let flows = flows_of_interest(dir, format)?;
    let mut out = Vec::new();

    let per_capture = query(
        &captures,
        &["capture", "status", "verdict", "findings", "packets"],
        |lf| {
            lf.select([
                col("capture"),
                col("status"),
                col("verdict"),
                col("findings"),
                col("packets"),
                col("error"),
            ])
            .sort(["capture"], Default::default())
        },
    )?;
    out.push(("Verdict per capture", rows(&per_capture)));

    let grouped = query(
        &findings,
        &["kind", "key", "capture", "severity", "title"],
        |lf| {
            lf
                // Rows arrive in worker completion order; sort so the example
                // title does not depend on it (or on how shards were merged).
                .sort(["capture", "title"], Default::default())
                .group_by([col("kind"), col("key")])
                .agg([
                    col("capture").n_unique().alias("captures"),
                    len().alias("findings"),
                    col("severity").first().alias("severity"),
                    col("title").first().alias("example"),
                ])
                .sort_by_exprs(
                    [col("captures"), col("findings"), col("kind"), col("key")],
                    SortMultipleOptions::default()
                        .with_order_descending_multi([true, true, false, false]),
                )
        },
    )?;
    out.push(("Findings across captures", rows(&grouped)));

    let syn = query(
        &flows.syn_unanswered,
        &["state", "dst_ip", "dst_port", "capture"],
        |lf| {
            lf.filter(col("state").eq(lit("syn_unanswered")))
                .group_by([col("dst_ip"), col("dst_port")])
                .agg([
                    len().alias("connections"),
                    col("capture").n_unique().alias("captures"),
                ])
                .sort_by_exprs(
                    [col("connections"), col("dst_ip"), col("dst_port")],
                    SortMultipleOptions::default()
                        .with_order_descending_multi([true, false, false]),
                )
                .limit(10)
        },
    )?;
    out.push(("Servers with most unanswered SYNs", rows(&syn)));

    let top = query(
        &flows.top_retransmitted,
        &["retransmissions", "capture", "src_ip", "dst_ip"],
        top_retransmitted,
    )?;
    out.push(("Top flows by retransmissions", rows(&top)));

    let blackholes = query(&findings, &["kind", "key", "capture"], |lf| {
        lf.filter(
            col("kind")
                .eq(lit("mtu.blackhole"))
                .or(col("kind").eq(lit("mtu.overlay_mismatch"))),
        )
        .group_by([col("kind"), col("key")])
        .agg([col("capture").n_unique().alias("captures")])
        .sort(["key"], Default::default())
    })?;
    out.push((
        "Node pairs and overlays with MTU problems",
        rows(&blackholes),
    ));
    Ok(out)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.replace('|', "\\|").replace('\n', " "),
        other => other.to_string(),
    }
}

/// Write `report.md` and `report.json` into `dir` (atomically).
pub fn write(dir: &Path, format: TableFormat) -> Result<(), String> {
    let sections = compute(dir, format)?;
    let mut md = String::new();
    let _ = writeln!(md, "# capsift batch report\n");
    let _ = writeln!(md, "Tables in this directory: {}.\n", TABLES.join(", "));
    let mut js = serde_json::Map::new();
    js.insert("capsift_version".into(), json!(env!("CARGO_PKG_VERSION")));
    for (title, rows) in &sections {
        let _ = writeln!(md, "## {title}\n");
        if rows.is_empty() {
            let _ = writeln!(md, "None.\n");
        } else if let Some(Value::Object(first)) = rows.first() {
            let cols: Vec<&String> = first.keys().collect();
            let _ = writeln!(
                md,
                "| {} |",
                cols.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            let _ = writeln!(
                md,
                "|{}|",
                cols.iter().map(|_| "---").collect::<Vec<_>>().join("|")
            );
            for r in rows.iter().take(50) {
                let vals: Vec<String> = cols.iter().map(|c| cell(&r[c.as_str()])).collect();
                let _ = writeln!(md, "| {} |", vals.join(" | "));
            }
            if rows.len() > 50 {
                let _ = writeln!(md, "\n... {} more rows in report.json", rows.len() - 50);
            }
            let _ = writeln!(md);
        }
        let key = title.to_lowercase().replace(' ', "_");
        js.insert(key, Value::Array(rows.clone()));
    }
    let atomic = |name: &str, text: &str| -> Result<(), String> {
        let p = dir.join(name);
        let mut f = crate::atomic_file::AtomicFile::create(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| format!("{}: {e}", p.display()))?;
        f.commit().map_err(|e| format!("{}: {e}", p.display()))
    };
    atomic("report.md", &md)?;
    atomic(
        "report.json",
        &serde_json::to_string_pretty(&Value::Object(js)).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_read_in_pieces_give_the_whole_table_answers() {
        // Three pieces; the largest retransmission counts spread over them.
        let dir = tempfile::tempdir().unwrap();
        let n = 150_000usize;
        crate::batch::tables::tests::flows_table(dir.path(), n, TableFormat::Parquet);

        let kept = flows_of_interest(dir.path(), TableFormat::Parquet).unwrap();
        let whole = read_columns(
            dir.path(),
            "flows",
            TableFormat::Parquet,
            Some(&FLOW_COLUMNS),
        )
        .unwrap()
        .unwrap();
        assert!(
            kept.syn_unanswered.height() + kept.top_retransmitted.height() < whole.height() / 50
        );
        let top = |df: &DataFrame| top_retransmitted(df.clone().lazy()).collect().unwrap();
        assert!(top(&kept.top_retransmitted).equals(&top(&whole)));
        let syn = |df: &DataFrame| {
            df.clone()
                .lazy()
                .filter(col("state").eq(lit("syn_unanswered")))
                .group_by([col("dst_ip")])
                .agg([len().alias("n")])
                .sort(["dst_ip"], Default::default())
                .collect()
                .unwrap()
        };
        assert!(syn(&kept.syn_unanswered).equals(&syn(&whole)));
        assert_eq!(
            syn(&kept.syn_unanswered)
                .column("n")
                .unwrap()
                .sum_reduce()
                .unwrap()
                .value()
                .extract::<u64>(),
            Some((n as u64).div_ceil(97))
        );
    }
}
