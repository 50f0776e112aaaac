//! Any OGR vector format through GDAL (the `gdal` feature).

use std::path::Path;

use gdal::vector::{FieldValue, LayerAccess};
use gdal::Dataset;

use super::columns::{ColumnCollector, Value};
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::layer::RawLayer;

/// Read one layer of an OGR data source (Shapefile, GeoPackage, OSM PBF,
/// CSV with WKT…). `layer` names the layer; by default the first one.
pub fn read_ogr(path: &Path, layer: Option<&str>) -> Result<RawLayer> {
    let ds = Dataset::open(path).map_err(|e| Error::format(path, format!("GDAL: {e}")))?;
    let mut lyr = match layer {
        Some(name) => ds
            .layer_by_name(name)
            .map_err(|e| Error::format(path, format!("GDAL layer `{name}`: {e}")))?,
        None => ds
            .layer(0)
            .map_err(|e| Error::format(path, format!("GDAL: {e}")))?,
    };
    let crs = lyr.spatial_ref().and_then(|srs| {
        let auth = srs.auth_name()?;
        let code = srs.auth_code().ok()?;
        Crs::parse(&format!("{auth}:{code}")).ok()
    });
    let names: Vec<String> = lyr.defn().fields().map(|f| f.name()).collect();
    let mut cols = ColumnCollector::default();
    let mut geometries = Vec::new();
    for (row, feature) in lyr.features().enumerate() {
        for (i, name) in names.iter().enumerate() {
            let v = match feature.field(i) {
                Ok(Some(FieldValue::IntegerValue(v))) => Value::Int(v as i64),
                Ok(Some(FieldValue::Integer64Value(v))) => Value::Int(v),
                Ok(Some(FieldValue::RealValue(v))) => Value::Float(v),
                Ok(Some(FieldValue::StringValue(v))) => Value::Str(v),
                Ok(Some(other)) => match other.into_string() {
                    Some(s) => Value::Str(s),
                    None => Value::Null,
                },
                _ => Value::Null,
            };
            cols.push(row, name, v);
        }
        geometries.push(match feature.geometry() {
            None => Err("null geometry".to_string()),
            Some(g) => match g.wkb() {
                Ok(bytes) => wkb::reader::read_wkb(&bytes)
                    .map_err(|e| format!("bad WKB: {e}"))
                    .and_then(|w| {
                        use geo_traits::to_geo::ToGeoGeometry;
                        w.try_to_geometry().ok_or_else(|| "empty point".to_string())
                    }),
                Err(e) => Err(format!("GDAL geometry: {e}")),
            },
        });
    }
    cols.set_rows(geometries.len());
    Ok(RawLayer {
        geometries,
        attributes: cols.finish()?,
        crs,
        reduced: None,
    })
}
