//! Non-spatial tables joined to zones by a key (`[tables.<name>]`): INSEE
//! census tables, tax bases per commune… Their numeric columns are read by
//! ratio expressions as `<table>.<column>`.
//!
//! A table joins the zone layers whose key column is the table's `key`
//! (the id column of a zone layer, or the grouping column of a roll-up:
//! a table keyed by `dep` joins `communes_by_dep`), or those its `zones`
//! names (with `zone_key` naming the zone column to match). Keys compare
//! as text, so `01001` keeps its leading zero. Every join is reported:
//! zones without a row, rows matching no zone; a key given twice is an error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde::Serialize;

use crate::error::{Error, Result};

/// A loaded table: its keys and numeric columns, row by row.
#[derive(Debug, Clone)]
pub struct Table {
    /// The table's name in the spec.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The key column.
    pub key: String,
    /// Row of each key.
    pub rows: HashMap<String, usize>,
    /// The keys, in file order.
    pub keys: Vec<String>,
    /// Numeric columns (every non-empty value a number).
    pub numeric: BTreeMap<String, Vec<Option<f64>>>,
    /// Other columns (text).
    pub text: Vec<String>,
}

/// How a table joined one zone layer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct JoinReport {
    /// The zone layer.
    pub zones: String,
    /// The zone column matched with the table's key.
    pub zone_key: String,
    /// Zones in the layer.
    pub n_zones: usize,
    /// Zones with a row.
    pub matched: usize,
    /// Zones without a row (their values are null).
    pub zones_without_row: usize,
    /// Up to 5 of them.
    pub examples_without_row: Vec<String>,
    /// Rows matching no zone (left out).
    pub rows_without_zone: usize,
    /// Up to 5 of their keys.
    pub examples_without_zone: Vec<String>,
}

impl std::fmt::Display for JoinReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} zones of `{}` matched on `{}`",
            self.matched, self.n_zones, self.zones, self.zone_key
        )?;
        if self.zones_without_row > 0 {
            write!(
                f,
                "; {} zones without a row (e.g. {})",
                self.zones_without_row,
                self.examples_without_row.join(", ")
            )?;
        }
        if self.rows_without_zone > 0 {
            write!(
                f,
                "; {} rows matching no zone (e.g. {})",
                self.rows_without_zone,
                self.examples_without_zone.join(", ")
            )?;
        }
        Ok(())
    }
}

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Core(terrastat_core::Error::format(path, message.into()))
}

/// Read a table (CSV with a header, or Parquet) keyed by `key`.
pub fn read(name: &str, path: &Path, key: &str) -> Result<Table> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let batch = match ext.as_deref() {
        Some("csv" | "txt") => read_csv(path)?,
        Some("parquet") => read_parquet(path)?,
        _ => {
            return Err(format_err(
                path,
                "a table is a .csv (with a header) or a .parquet file",
            ))
        }
    };
    let schema = batch.schema();
    let Some((ki, _)) = schema.column_with_name(key) else {
        let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(format_err(
            path,
            format!("no key column `{key}` (columns: {})", cols.join(", ")),
        ));
    };
    let as_text = |a: &ArrayRef| -> Result<StringArray> {
        let c =
            arrow_cast::cast(a, &DataType::Utf8).map_err(|e| format_err(path, e.to_string()))?;
        Ok(c.as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new())))
    };
    let keycol = as_text(batch.column(ki))?;
    let line = |row: usize| {
        if ext.as_deref() == Some("parquet") {
            format!("row {}", row + 1)
        } else {
            format!("line {}", row + 2)
        }
    };
    let mut rows = HashMap::with_capacity(batch.num_rows());
    let mut keys = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        if keycol.is_null(r) || keycol.value(r).trim().is_empty() {
            return Err(format_err(
                path,
                format!("{}: the key `{key}` is empty", line(r)),
            ));
        }
        let k = keycol.value(r).trim().to_string();
        if let Some(first) = rows.insert(k.clone(), r) {
            return Err(format_err(
                path,
                format!(
                    "{}: key `{key}` = `{k}` already at {}",
                    line(r),
                    line(first)
                ),
            ));
        }
        keys.push(k);
    }
    let mut numeric = BTreeMap::new();
    let mut text = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if i == ki {
            continue;
        }
        match numbers(batch.column(i)) {
            Some(v) => {
                numeric.insert(field.name().clone(), v);
            }
            None => text.push(field.name().clone()),
        }
    }
    Ok(Table {
        name: name.to_string(),
        path: path.to_path_buf(),
        key: key.to_string(),
        rows,
        keys,
        numeric,
        text,
    })
}

/// The column as numbers, when every non-empty value is one.
fn numbers(a: &ArrayRef) -> Option<Vec<Option<f64>>> {
    if a.data_type().is_numeric() {
        return terrastat_core::numeric_values(a.as_ref());
    }
    let c = arrow_cast::cast(a, &DataType::Utf8).ok()?;
    let c = c.as_any().downcast_ref::<StringArray>()?;
    c.iter()
        .map(|v| match v.map(str::trim) {
            None | Some("") => Some(None),
            Some(s) => s.parse::<f64>().ok().map(Some),
        })
        .collect()
}

fn read_csv(path: &Path) -> Result<RecordBatch> {
    use arrow_csv::reader::Format;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let format = Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(&mut f, Some(100))
        .map_err(|e| format_err(path, e.to_string()))?;
    // Every column as text: keys keep their leading zeros, numbers are parsed after.
    let text = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|fl| Field::new(fl.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let f = std::fs::File::open(path).map_err(io)?;
    let reader = arrow_csv::ReaderBuilder::new(text.clone())
        .with_format(format)
        .build(f)
        .map_err(|e| format_err(path, e.to_string()))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format_err(path, e.to_string()))?;
    arrow_select::concat::concat_batches(&text, &batches)
        .map_err(|e| format_err(path, e.to_string()))
}

fn read_parquet(path: &Path) -> Result<RecordBatch> {
    let f = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| format_err(path, e.to_string()))?;
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .map_err(|e| format_err(path, e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format_err(path, e.to_string()))?;
    arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| format_err(path, e.to_string()))
}

/// Zone keys as text.
pub fn zone_keys(col: &ArrayRef) -> Result<Vec<Option<String>>> {
    let c = arrow_cast::cast(col, &DataType::Utf8)?;
    let Some(s) = c.as_any().downcast_ref::<StringArray>() else {
        return Ok(vec![None; col.len()]);
    };
    Ok(s.iter().map(|v| v.map(|x| x.trim().to_string())).collect())
}

impl Table {
    /// The row of each zone (by its key) and the join report.
    pub fn join(
        &self,
        zones: &str,
        zone_key: &str,
        keys: &[Option<String>],
    ) -> (Vec<Option<usize>>, JoinReport) {
        let rows: Vec<Option<usize>> = keys
            .iter()
            .map(|k| k.as_ref().and_then(|k| self.rows.get(k).copied()))
            .collect();
        let mut used = vec![false; self.keys.len()];
        for r in rows.iter().flatten() {
            used[*r] = true;
        }
        let without: Vec<String> = keys
            .iter()
            .zip(&rows)
            .filter(|(_, r)| r.is_none())
            .map(|(k, _)| k.clone().unwrap_or_else(|| "(null)".into()))
            .collect();
        let unmatched: Vec<String> = self
            .keys
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(k, _)| k.clone())
            .collect();
        let report = JoinReport {
            zones: zones.to_string(),
            zone_key: zone_key.to_string(),
            n_zones: keys.len(),
            matched: keys.len() - without.len(),
            zones_without_row: without.len(),
            examples_without_row: without.into_iter().take(5).collect(),
            rows_without_zone: unmatched.len(),
            examples_without_zone: unmatched.into_iter().take(5).collect(),
        };
        (rows, report)
    }

    /// Column `column` per zone, given the zones' rows.
    pub fn values(
        &self,
        column: &str,
        rows: &[Option<usize>],
    ) -> std::result::Result<Vec<Option<f64>>, String> {
        match self.numeric.get(column) {
            Some(v) => Ok(rows.iter().map(|r| r.and_then(|r| v[r])).collect()),
            None if self.text.iter().any(|c| c == column) => Err(format!(
                "column `{column}` of table `{}` is text, not numbers",
                self.name
            )),
            None => Err(format!(
                "table `{}` has no column `{column}` (numeric columns: {})",
                self.name,
                self.numeric.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}
