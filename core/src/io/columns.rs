//! Building typed Arrow columns from schemaless feature properties
//! (GeoJSON, FlatGeobuf, OGR).

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema};

use crate::error::Result;

/// One property value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// Collects `(row, column, value)` triples and infers one Arrow type per
/// column: all integers → Int64; numbers → Float64; all booleans → Boolean;
/// anything else → Utf8 (numbers in their display form).
#[derive(Debug, Default)]
pub(crate) struct ColumnCollector {
    names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
    values: Vec<Vec<(usize, Value)>>,
    rows: usize,
}

impl ColumnCollector {
    pub(crate) fn push(&mut self, row: usize, name: &str, value: Value) {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.names.push(name.to_string());
                self.values.push(Vec::new());
                self.index.insert(name.to_string(), self.names.len() - 1);
                self.names.len() - 1
            }
        };
        if value != Value::Null {
            self.values[i].push((row, value));
        }
    }

    pub(crate) fn set_rows(&mut self, rows: usize) {
        self.rows = rows;
    }

    pub(crate) fn finish(self) -> Result<RecordBatch> {
        let mut fields = Vec::with_capacity(self.names.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.names.len());
        for (name, vals) in self.names.into_iter().zip(self.values) {
            let all_int = vals.iter().all(|(_, v)| matches!(v, Value::Int(_)));
            let all_num = vals
                .iter()
                .all(|(_, v)| matches!(v, Value::Int(_) | Value::Float(_)));
            let all_bool = vals.iter().all(|(_, v)| matches!(v, Value::Bool(_)));
            let (dt, arr): (DataType, ArrayRef) = if vals.is_empty() {
                let mut b = StringBuilder::new();
                (0..self.rows).for_each(|_| b.append_null());
                (DataType::Utf8, Arc::new(b.finish()))
            } else if all_int {
                let mut b = Int64Builder::with_capacity(self.rows);
                fill(&mut b, self.rows, &vals, |b, v| {
                    if let Value::Int(i) = v {
                        b.append_value(*i)
                    }
                });
                (DataType::Int64, Arc::new(b.finish()))
            } else if all_num {
                let mut b = Float64Builder::with_capacity(self.rows);
                fill(&mut b, self.rows, &vals, |b, v| match v {
                    Value::Int(i) => b.append_value(*i as f64),
                    Value::Float(f) => b.append_value(*f),
                    _ => {}
                });
                (DataType::Float64, Arc::new(b.finish()))
            } else if all_bool {
                let mut b = BooleanBuilder::with_capacity(self.rows);
                fill(&mut b, self.rows, &vals, |b, v| {
                    if let Value::Bool(x) = v {
                        b.append_value(*x)
                    }
                });
                (DataType::Boolean, Arc::new(b.finish()))
            } else {
                let mut b = StringBuilder::new();
                fill(&mut b, self.rows, &vals, |b, v| match v {
                    Value::Str(s) => b.append_value(s),
                    Value::Int(i) => b.append_value(i.to_string()),
                    Value::Float(f) => b.append_value(f.to_string()),
                    Value::Bool(x) => b.append_value(x.to_string()),
                    Value::Null => b.append_null(),
                });
                (DataType::Utf8, Arc::new(b.finish()))
            };
            fields.push(Field::new(name, dt, true));
            arrays.push(arr);
        }
        Ok(RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )?)
    }
}

/// Appends values at their rows and nulls in between.
trait NullAppend {
    fn null(&mut self);
}
impl NullAppend for Int64Builder {
    fn null(&mut self) {
        self.append_null()
    }
}
impl NullAppend for Float64Builder {
    fn null(&mut self) {
        self.append_null()
    }
}
impl NullAppend for BooleanBuilder {
    fn null(&mut self) {
        self.append_null()
    }
}
impl NullAppend for StringBuilder {
    fn null(&mut self) {
        self.append_null()
    }
}

fn fill<B: NullAppend>(
    b: &mut B,
    rows: usize,
    vals: &[(usize, Value)],
    mut put: impl FnMut(&mut B, &Value),
) {
    let mut next = 0;
    for (row, v) in vals {
        while next < *row {
            b.null();
            next += 1;
        }
        if next == *row {
            put(b, v);
            next += 1;
        }
    }
    while next < rows {
        b.null();
        next += 1;
    }
}
