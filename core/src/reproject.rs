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
    let geoms = reproject_geometries(layer.geometries(), &from, to).map_err(|e| match e {
        (Some(i), message) => Error::Feature {
            path: layer.source().to_path_buf(),
            feature: layer.source_rows().get(i).copied().unwrap_or(0) as usize,
            message,
        },
        (None, message) => Error::Crs(message),
    })?;
    layer.with_geometries(geoms, to.clone())
}

/// Reproject geometries from `from` to `to`, in parallel. On failure, the
/// index of the geometry that could not be transformed (if any) and why.
pub fn reproject_geometries(
    geometries: &[Geometry],
    from: &Crs,
    to: &Crs,
) -> std::result::Result<Vec<Geometry>, (Option<usize>, String)> {
    if from.same_as(to) {
        return Ok(geometries.to_vec());
    }
    // Fail early, on this thread, if the transformation does not exist.
    proj_for(from, to).map_err(|e| (None, e.to_string()))?;
    geometries
        .par_iter()
        .enumerate()
        .map_init(
            || proj_for(from, to),
            |proj, (i, g)| {
                let proj = proj.as_ref().map_err(|e| (None, e.to_string()))?;
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
                match failure.get() {
                    None => Ok(g),
                    Some(c) => Err((
                        Some(i),
                        format!("cannot reproject ({}, {}) from {from} to {to}", c.x, c.y),
                    )),
                }
            },
        )
        .collect()
}
