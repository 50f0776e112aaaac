//! FlatGeobuf reader.

use std::io::BufReader;
use std::path::Path;

use flatgeobuf::{FallibleStreamingIterator, FgbReader};
use geozero::{ColumnValue, FeatureProperties, PropertyProcessor, ToGeo};

use super::columns::{ColumnCollector, Value};
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::layer::RawLayer;

struct Props<'a> {
    row: usize,
    cols: &'a mut ColumnCollector,
}

impl PropertyProcessor for Props<'_> {
    fn property(
        &mut self,
        _idx: usize,
        name: &str,
        value: &ColumnValue,
    ) -> geozero::error::Result<bool> {
        let v = match value {
            ColumnValue::Byte(v) => Value::Int(*v as i64),
            ColumnValue::UByte(v) => Value::Int(*v as i64),
            ColumnValue::Bool(v) => Value::Bool(*v),
            ColumnValue::Short(v) => Value::Int(*v as i64),
            ColumnValue::UShort(v) => Value::Int(*v as i64),
            ColumnValue::Int(v) => Value::Int(*v as i64),
            ColumnValue::UInt(v) => Value::Int(*v as i64),
            ColumnValue::Long(v) => Value::Int(*v),
            ColumnValue::ULong(v) => i64::try_from(*v)
                .map(Value::Int)
                .unwrap_or(Value::Float(*v as f64)),
            ColumnValue::Float(v) => Value::Float(*v as f64),
            ColumnValue::Double(v) => Value::Float(*v),
            ColumnValue::String(v) | ColumnValue::Json(v) | ColumnValue::DateTime(v) => {
                Value::Str(v.to_string())
            }
            ColumnValue::Binary(_) => Value::Null,
        };
        self.cols.push(self.row, name, v);
        Ok(false)
    }
}

/// Read a FlatGeobuf file. The CRS comes from the header (`org:code`).
pub fn read_fgb(path: &Path) -> Result<RawLayer> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let fgb = FgbReader::open(&mut reader).map_err(|e| Error::format(path, e.to_string()))?;
    let crs = fgb.header().crs().and_then(|c| {
        let org = c.org().unwrap_or("EPSG");
        if c.code() > 0 {
            Crs::parse(&format!("{org}:{}", c.code())).ok()
        } else {
            c.code_string().and_then(|s| Crs::parse(s).ok())
        }
    });
    let mut iter = fgb
        .select_all_seq()
        .map_err(|e| Error::format(path, e.to_string()))?;
    let mut cols = ColumnCollector::default();
    let mut geometries = Vec::new();
    let mut row = 0;
    while let Some(feature) = iter
        .next()
        .map_err(|e| Error::format(path, format!("feature {row}: {e}")))?
    {
        feature
            .process_properties(&mut Props {
                row,
                cols: &mut cols,
            })
            .map_err(|e| Error::format(path, format!("feature {row}: {e}")))?;
        geometries.push(feature.to_geo().map_err(|e| format!("bad geometry: {e}")));
        row += 1;
    }
    cols.set_rows(row);
    Ok(RawLayer {
        geometries,
        attributes: cols.finish()?,
        crs,
        reduced: None,
    })
}
