//! Rows straight into typed polars columns.
//!
//! Table rows are plain structs (`FlowRow`, `DnsRow` ...) that derive
//! `Serialize` for CSV and NDJSON. For Parquet they used to become
//! `serde_json::Value` objects first (a map and a string per cell, then
//! freed), which was about a tenth of a batch worker's time and most of its
//! allocations. [`FrameBuilder`] is a serde `Serializer` instead: each field
//! lands in its column as it is serialized, strings copied once into the
//! column's buffer. The struct stays the one definition of a table's
//! columns, for every format.
//!
//! Typing: a column takes the type of its first non-null value; integers
//! met by floats become floats, anything else mixed becomes strings (as
//! NDJSON readers do). A column that is null in every row is typed by its
//! name ([`INT_COLUMNS`], `*_ms`, `*_s`, `rate`) so every frame of a table
//! has the same schema whatever capture comes first. A field that is not a
//! scalar (a list or a map) is stored as its JSON text.

use polars::prelude::*;
use serde::ser::{self, Serialize};
use std::fmt;

/// Columns that may be null in a whole batch (or a whole capture, as the
/// batch's workers build one frame per capture) but are numbers when
/// present: every `Option` of an integer in the row types.
pub const INT_COLUMNS: &[&str] = &[
    "syn_mss_fwd",
    "syn_mss_rev",
    "answers",
    "response_frame",
    "flow_id",
    "src_port",
    "dst_port",
];

enum Data {
    /// Only nulls so far.
    Null,
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(StringChunkedBuilder),
}

struct ColumnBuf {
    name: PlSmallStr,
    data: Data,
    /// Cells pushed, nulls included.
    len: usize,
}

/// One scalar cell.
enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'a str),
}

impl ColumnBuf {
    fn new(name: &str, nulls: usize) -> ColumnBuf {
        ColumnBuf {
            name: PlSmallStr::from(name),
            data: Data::Null,
            len: nulls,
        }
    }

    fn strings(name: &PlSmallStr, len: usize) -> StringChunkedBuilder {
        StringChunkedBuilder::new(name.clone(), len.max(16))
    }

    /// The column as strings (a kind other than the first one arrived).
    fn widen_to_str(&mut self) {
        let mut b = Self::strings(&self.name, self.len);
        match std::mem::replace(&mut self.data, Data::Null) {
            Data::Null => (0..self.len).for_each(|_| b.append_null()),
            Data::Int(v) => v
                .iter()
                .for_each(|x| b.append_option(x.map(|x| x.to_string()))),
            Data::Float(v) => v
                .iter()
                .for_each(|x| b.append_option(x.map(|x| x.to_string()))),
            Data::Bool(v) => v
                .iter()
                .for_each(|x| b.append_option(x.map(|x| x.to_string()))),
            Data::Str(s) => {
                self.data = Data::Str(s);
                return;
            }
        }
        self.data = Data::Str(b);
    }

    fn push(&mut self, cell: Cell<'_>) {
        let n = self.len;
        // The first value decides the kind; earlier rows were nulls.
        if matches!(self.data, Data::Null) {
            self.data = match cell {
                Cell::Null => Data::Null,
                Cell::Int(_) => Data::Int(vec![None; n]),
                Cell::Float(_) => Data::Float(vec![None; n]),
                Cell::Bool(_) => Data::Bool(vec![None; n]),
                Cell::Str(_) => {
                    let mut b = Self::strings(&self.name, n);
                    (0..n).for_each(|_| b.append_null());
                    Data::Str(b)
                }
            };
        }
        // Integers met by a float become floats; other mixes, strings.
        if let (Data::Int(v), Cell::Float(_)) = (&self.data, &cell) {
            self.data = Data::Float(v.iter().map(|x| x.map(|x| x as f64)).collect());
        }
        let fits = matches!(
            (&self.data, &cell),
            (_, Cell::Null)
                | (Data::Int(_), Cell::Int(_))
                | (Data::Float(_), Cell::Float(_) | Cell::Int(_))
                | (Data::Bool(_), Cell::Bool(_))
                | (Data::Str(_), _)
        );
        if !fits {
            self.widen_to_str();
        }
        match (&mut self.data, cell) {
            (Data::Null, _) => {}
            (Data::Int(v), Cell::Int(x)) => v.push(Some(x)),
            (Data::Int(v), _) => v.push(None),
            (Data::Float(v), Cell::Float(x)) => v.push(Some(x)),
            (Data::Float(v), Cell::Int(x)) => v.push(Some(x as f64)),
            (Data::Float(v), _) => v.push(None),
            (Data::Bool(v), Cell::Bool(x)) => v.push(Some(x)),
            (Data::Bool(v), _) => v.push(None),
            (Data::Str(b), Cell::Null) => b.append_null(),
            (Data::Str(b), Cell::Str(s)) => b.append_value(s),
            (Data::Str(b), Cell::Int(x)) => b.append_value(x.to_string()),
            (Data::Str(b), Cell::Float(x)) => b.append_value(x.to_string()),
            (Data::Str(b), Cell::Bool(x)) => b.append_value(if x { "true" } else { "false" }),
        }
        self.len += 1;
    }

    fn into_column(self) -> Column {
        let name = self.name;
        match self.data {
            Data::Null => {
                let dtype = if INT_COLUMNS.contains(&name.as_str()) {
                    DataType::Int64
                } else if name.ends_with("_ms") || name.ends_with("_s") || name == "rate" {
                    DataType::Float64
                } else {
                    DataType::String
                };
                Column::full_null(name, self.len, &dtype)
            }
            Data::Int(v) => Column::new(name, v),
            Data::Float(v) => Column::new(name, v),
            Data::Bool(v) => Column::new(name, v),
            Data::Str(b) => b.finish().into_column(),
        }
    }
}

/// Rows appended as typed columns; [`FrameBuilder::finish`] gives the
/// DataFrame. Columns are in the order their names first appear.
#[derive(Default)]
pub struct FrameBuilder {
    columns: Vec<ColumnBuf>,
    rows: usize,
    /// The column the next field of the current row is expected to be:
    /// rows of one struct type name their fields in the same order, so the
    /// lookup by name is a comparison, not a search.
    cursor: usize,
}

impl FrameBuilder {
    pub fn new() -> FrameBuilder {
        FrameBuilder::default()
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Append one row: a struct or a map of scalars (or JSON object). After
    /// an error the columns may hold part of the row: discard the builder
    /// (both callers do; no row type of ours can fail).
    pub fn push<T: Serialize + ?Sized>(&mut self, row: &T) -> Result<(), RowError> {
        self.cursor = 0;
        row.serialize(RowSerializer { b: self })?;
        // A field left out of this row (a skipped `None`, a key a JSON
        // object lacks) is a null.
        let rows = self.rows + 1;
        for c in &mut self.columns {
            if c.len < rows {
                c.push(Cell::Null);
            }
        }
        self.rows = rows;
        Ok(())
    }

    fn column(&mut self, name: &str) -> &mut ColumnBuf {
        let at = match self.columns.get(self.cursor) {
            Some(c) if c.name == name => self.cursor,
            _ => match self.columns.iter().position(|c| c.name == name) {
                Some(i) => i,
                None => {
                    self.columns.push(ColumnBuf::new(name, self.rows));
                    self.columns.len() - 1
                }
            },
        };
        self.cursor = at + 1;
        &mut self.columns[at]
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), RowError> {
        let col = self.column(name);
        match value.serialize(CellSerializer { col: &mut *col }) {
            Ok(()) => Ok(()),
            // A list or a map (nothing was pushed): its JSON text.
            Err(RowError::Nested) => {
                let text =
                    serde_json::to_string(value).map_err(|e| RowError::Other(e.to_string()))?;
                col.push(Cell::Str(&text));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The rows as a DataFrame (empty, with no columns, when there are none).
    pub fn finish(self) -> PolarsResult<DataFrame> {
        let rows = self.rows;
        let cols: Vec<Column> = self
            .columns
            .into_iter()
            .map(ColumnBuf::into_column)
            .collect();
        DataFrame::new(rows, cols)
    }
}

/// Why a row could not be added.
#[derive(Debug)]
pub enum RowError {
    /// A cell that is a list or a map (handled by the caller: JSON text).
    Nested,
    NotARow,
    Other(String),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::Nested => f.write_str("a table cell is a list or a map"),
            RowError::NotARow => f.write_str("a table row must be a struct or a map"),
            RowError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for RowError {}

impl ser::Error for RowError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RowError::Other(msg.to_string())
    }
}

/// Serializes one row: a struct or a map, field by field into columns.
struct RowSerializer<'a> {
    b: &'a mut FrameBuilder,
}

/// A map row (a JSON object) waits for its value with the key here.
struct MapRow<'a> {
    b: &'a mut FrameBuilder,
    key: Option<String>,
}

/// `Some(x)` and a newtype struct serialize as what they wrap, in a row
/// and in a cell alike.
macro_rules! transparent_wrappers {
    () => {
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), RowError> {
            v.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<(), RowError> {
            v.serialize(self)
        }
    };
}

/// The compound forms neither a row nor a cell can be: sequences, tuples,
/// enum variants with data: their associated types and methods, which
/// return `$err`.
macro_rules! refuse_compound {
    ($err:expr) => {
        type SerializeSeq = ser::Impossible<(), RowError>;
        type SerializeTuple = ser::Impossible<(), RowError>;
        type SerializeTupleStruct = ser::Impossible<(), RowError>;
        type SerializeTupleVariant = ser::Impossible<(), RowError>;
        type SerializeStructVariant = ser::Impossible<(), RowError>;

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), RowError> {
            Err($err)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, RowError> {
            Err($err)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, RowError> {
            Err($err)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, RowError> {
            Err($err)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, RowError> {
            Err($err)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, RowError> {
            Err($err)
        }
    };
}

macro_rules! not_a_row {
    ($($f:ident: $t:ty),*) => {
        $(fn $f(self, _v: $t) -> Result<(), RowError> { Err(RowError::NotARow) })*
    };
}

impl<'a> ser::Serializer for RowSerializer<'a> {
    type Ok = ();
    type Error = RowError;
    type SerializeMap = MapRow<'a>;
    type SerializeStruct = Self;

    not_a_row!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str);

    fn serialize_none(self) -> Result<(), RowError> {
        Err(RowError::NotARow)
    }
    fn serialize_unit(self) -> Result<(), RowError> {
        Err(RowError::NotARow)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), RowError> {
        Err(RowError::NotARow)
    }
    transparent_wrappers!();
    refuse_compound!(RowError::NotARow);
    fn serialize_map(self, _: Option<usize>) -> Result<MapRow<'a>, RowError> {
        Ok(MapRow {
            b: self.b,
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, RowError> {
        Ok(self)
    }
}

impl ser::SerializeStruct for RowSerializer<'_> {
    type Ok = ();
    type Error = RowError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        self.b.field(key, value)
    }
    fn end(self) -> Result<(), RowError> {
        Ok(())
    }
}

impl ser::SerializeMap for MapRow<'_> {
    type Ok = ();
    type Error = RowError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), RowError> {
        // Keys are strings in every table (JSON objects have nothing else).
        match serde_json::to_value(key) {
            Ok(serde_json::Value::String(k)) => {
                self.key = Some(k);
                Ok(())
            }
            _ => Err(RowError::Other(
                "a table column name must be a string".into(),
            )),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RowError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| RowError::Other("a map value without a key".into()))?;
        self.b.field(&key, value)
    }
    fn end(self) -> Result<(), RowError> {
        Ok(())
    }
}

/// Serializes one cell into its column; lists and maps are refused with
/// [`RowError::Nested`] before anything is pushed.
struct CellSerializer<'a> {
    col: &'a mut ColumnBuf,
}

macro_rules! cell_int {
    ($($f:ident: $t:ty),*) => {
        $(fn $f(self, v: $t) -> Result<(), RowError> {
            self.col.push(Cell::Int(i64::from(v)));
            Ok(())
        })*
    };
}

impl ser::Serializer for CellSerializer<'_> {
    type Ok = ();
    type Error = RowError;
    type SerializeMap = ser::Impossible<(), RowError>;
    type SerializeStruct = ser::Impossible<(), RowError>;

    cell_int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32);

    fn serialize_u64(self, v: u64) -> Result<(), RowError> {
        // Beyond i64 (no counter gets there): null, as the JSON path did.
        self.col
            .push(i64::try_from(v).map_or(Cell::Null, Cell::Int));
        Ok(())
    }
    fn serialize_bool(self, v: bool) -> Result<(), RowError> {
        self.col.push(Cell::Bool(v));
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), RowError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), RowError> {
        // JSON has no NaN or infinity; serde_json writes them as null.
        self.col.push(if v.is_finite() {
            Cell::Float(v)
        } else {
            Cell::Null
        });
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), RowError> {
        let mut buf = [0u8; 4];
        self.col.push(Cell::Str(v.encode_utf8(&mut buf)));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), RowError> {
        self.col.push(Cell::Str(v));
        Ok(())
    }
    fn serialize_none(self) -> Result<(), RowError> {
        self.col.push(Cell::Null);
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), RowError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), RowError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), RowError> {
        self.serialize_str(variant)
    }
    transparent_wrappers!();
    fn serialize_bytes(self, _: &[u8]) -> Result<(), RowError> {
        Err(RowError::Nested)
    }
    refuse_compound!(RowError::Nested);
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, RowError> {
        Err(RowError::Nested)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, RowError> {
        Err(RowError::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Row {
        capture: String,
        flow_id: u64,
        state: &'static str,
        handshake_rtt_ms: Option<f64>,
        syn_mss_fwd: Option<u16>,
        reused_ports: bool,
        ports: Vec<u16>,
    }

    #[test]
    fn struct_rows_become_typed_columns() {
        let mut b = FrameBuilder::new();
        for i in 0..3u64 {
            b.push(&Row {
                capture: "a.pcap".into(),
                flow_id: i,
                state: "closed",
                handshake_rtt_ms: (i == 2).then_some(1.5),
                syn_mss_fwd: None,
                reused_ports: i == 1,
                ports: vec![80, 443],
            })
            .unwrap();
        }
        assert_eq!(b.len(), 3);
        let df = b.finish().unwrap();
        assert_eq!(df.height(), 3);
        let dtype = |c: &str| df.column(c).unwrap().dtype().clone();
        assert_eq!(dtype("capture"), DataType::String);
        assert_eq!(dtype("flow_id"), DataType::Int64);
        assert_eq!(dtype("handshake_rtt_ms"), DataType::Float64);
        assert_eq!(df.column("handshake_rtt_ms").unwrap().null_count(), 2);
        // All null, typed by name.
        assert_eq!(dtype("syn_mss_fwd"), DataType::Int64);
        assert_eq!(dtype("reused_ports"), DataType::Boolean);
        assert_eq!(
            df.column("ports").unwrap().str().unwrap().get(0),
            Some("[80,443]")
        );
    }

    #[test]
    fn json_rows_with_missing_and_mixed_values() {
        let mut b = FrameBuilder::new();
        for v in [
            serde_json::json!({"n": 1, "x": null, "m": 1}),
            serde_json::json!({"x": "late", "n": 2.5}),
            serde_json::json!({"n": 3, "m": "text", "new": true}),
        ] {
            b.push(&v).unwrap();
        }
        let df = b.finish().unwrap();
        assert_eq!(df.height(), 3);
        let n = df.column("n").unwrap();
        assert_eq!(n.dtype(), &DataType::Float64);
        assert_eq!(n.f64().unwrap().get(1), Some(2.5));
        let x = df.column("x").unwrap().str().unwrap();
        assert_eq!((x.get(0), x.get(1), x.get(2)), (None, Some("late"), None));
        let m = df.column("m").unwrap().str().unwrap();
        assert_eq!(
            (m.get(0), m.get(1), m.get(2)),
            (Some("1"), None, Some("text"))
        );
        let new = df.column("new").unwrap().bool().unwrap();
        assert_eq!((new.get(0), new.get(2)), (None, Some(true)));
    }

    #[test]
    fn a_scalar_is_not_a_row() {
        assert!(matches!(
            FrameBuilder::new().push(&5u8),
            Err(RowError::NotARow)
        ));
    }
}
