//! Reprojection into the working CRS with PROJ (the `proj` feature).
//!
//! A `Proj` object is not thread-safe and costs milliseconds to create, so
//! each rayon worker builds its own once (`map_init`) and reuses it.
//! Geographic CRSs are taken in longitude, latitude order (PROJ's
//! normalised-for-visualisation order), as GeoJSON and GeoParquet store them.

use geo::{Geometry, MapCoordsInPlace};
use proj::Proj;
use rayon::prelude::*;

use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::layer::Layer;

fn proj_for(from: &Crs, to: &Crs) -> Result<Proj> {
    let from_s = if from.epsg_code() == Some(4326) {
        "EPSG:4326".to_string()
    } else {
        from.to_string()
    };
    Proj::new_known_crs(&from_s, &to.to_string(), None)
        .map_err(|e| Error::Crs(format!("PROJ cannot transform {from} to {to}: {e}")))
}

/// Reproject a layer into `to`. A layer already in `to` is returned as is.
/// A coordinate PROJ cannot transform is an error naming the feature.
pub fn reproject(layer: Layer, to: &Crs) -> Result<Layer> {
    if layer.crs().same_as(to) {
        return Ok(layer);
    }
    let from = layer.crs().clone();
    // Fail early, on this thread, if the transformation does not exist.
    proj_for(&from, to)?;
    let geoms: Vec<Geometry> = layer
        .geometries()
        .par_iter()
        .enumerate()
        .map_init(
            || proj_for(&from, to),
            |proj, (i, g)| {
                let proj = proj.as_ref().map_err(|e| Error::Crs(e.to_string()))?;
                let mut g = g.clone();
                let failure = std::cell::Cell::new(None);
                g.map_coords_in_place(|c| match proj.convert((c.x, c.y)) {
                    Ok((x, y)) if x.is_finite() && y.is_finite() => geo::coord! { x: x, y: y },
                    Ok(_) | Err(_) => {
                        if failure.get().is_none() {
                            failure.set(Some(c));
                        }
                        c
                    }
                });
                let failure = failure.get();
                match failure {
                    None => Ok(g),
                    Some(c) => Err(Error::Feature {
                        path: layer.source().to_path_buf(),
                        feature: layer.source_rows().get(i).copied().unwrap_or(0) as usize,
                        message: format!("cannot reproject ({}, {}) from {from} to {to}", c.x, c.y),
                    }),
                }
            },
        )
        .collect::<Result<_>>()?;
    layer.with_geometries(geoms, to.clone())
}
