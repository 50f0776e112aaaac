//! GeoJSON reader (RFC 7946, plus the legacy `crs` member).

use std::path::Path;

use geo::Geometry;

use super::columns::{ColumnCollector, Value};
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::layer::RawLayer;

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => n.as_f64().map(Value::Float).unwrap_or(Value::Null),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        other => Value::Str(other.to_string()),
    }
}

/// Read a GeoJSON FeatureCollection (or a single Feature or Geometry).
///
/// The CRS is the legacy `crs` member when present (`urn:ogc:def:crs:EPSG::2154`),
/// otherwise WGS 84 longitude/latitude as RFC 7946 says.
pub fn read_geojson(path: &Path) -> Result<RawLayer> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("invalid JSON: {e}")))?;
    let crs = match doc.get("crs") {
        Some(c) => {
            let name = c
                .get("properties")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .ok_or_else(|| Error::format(path, "`crs` member without `properties.name`"))?;
            Crs::parse(name).map_err(|e| Error::format(path, e.to_string()))?
        }
        None => Crs::crs84(),
    };
    let gj = serde_json::from_value::<geojson::GeoJson>(doc)
        .map_err(|e| Error::format(path, format!("invalid GeoJSON: {e}")))?;
    let features: Vec<geojson::Feature> = match gj {
        geojson::GeoJson::FeatureCollection(fc) => fc.features,
        geojson::GeoJson::Feature(f) => vec![f],
        geojson::GeoJson::Geometry(g) => vec![geojson::Feature {
            geometry: Some(g),
            ..Default::default()
        }],
    };
    let mut cols = ColumnCollector::default();
    let mut geometries = Vec::with_capacity(features.len());
    for (row, f) in features.into_iter().enumerate() {
        if let Some(props) = &f.properties {
            for (k, v) in props {
                cols.push(row, k, json_value(v));
            }
        }
        geometries.push(match f.geometry {
            None => Err("null geometry".to_string()),
            Some(g) => Geometry::<f64>::try_from(g).map_err(|e| format!("bad geometry: {e}")),
        });
    }
    cols.set_rows(geometries.len());
    Ok(RawLayer {
        geometries,
        attributes: cols.finish()?,
        crs: Some(crs),
        reduced: None,
    })
}
