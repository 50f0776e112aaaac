//! The rasters of a spec: opened, checked (band, CRS) and hashed at load
//! time, and their extents in the working CRS (zone covers).

use std::collections::BTreeMap;

use geo::{Geometry, MultiPolygon};
use terrastat_core::raster::{self, RasterInfo};
use terrastat_core::Crs;

use crate::error::{Error, Result};
use crate::lineage::sha256_file;
use crate::lineage::InputFile;
use crate::spec::Spec;

/// A raster of the spec, checked at load time (opened, band present, CRS known).
#[derive(Debug, Clone)]
pub struct RasterInput {
    /// What the file says (with the spec's `crs` override applied).
    pub info: RasterInfo,
}

impl RasterInput {
    /// The raster's CRS, or an error telling how to give one.
    pub fn crs(&self, name: &str) -> Result<&Crs> {
        self.info.crs.as_ref().ok_or_else(|| {
            Error::Core(terrastat_core::Error::Crs(format!(
                "raster {}: the file has no CRS terrastat can name; set `crs = \"EPSG:XXXX\"` in `[rasters.{name}]`",
                self.info.path.display()
            )))
        })
    }

    pub(crate) fn open(&self) -> Result<Box<dyn raster::RasterSource>> {
        Ok(raster::open(
            &self.info.path,
            self.info.band,
            self.info.crs.clone(),
        )?)
    }
}

/// The names of the rasters a spec reads (by indicators and as zone covers).
fn used_rasters(spec: &Spec) -> std::collections::BTreeSet<&str> {
    let by_indicators = spec.indicators.iter().flat_map(|i| {
        let i = i.get_ref();
        i.raster.iter().chain(i.weights.iter()).map(String::as_str)
    });
    let by_zones = spec.zones.values().flat_map(|z| {
        let z = z.get_ref();
        z.cover.as_deref().into_iter().chain(z.extent.as_deref())
    });
    by_indicators
        .chain(by_zones)
        .filter(|n| spec.rasters.contains_key(*n))
        .collect()
}

/// Open every raster the spec uses (to fail early on a bad file, band or
/// CRS) and record each in the lineage.
pub(crate) fn load_rasters(
    spec: &Spec,
    files: &mut Vec<InputFile>,
) -> Result<BTreeMap<String, RasterInput>> {
    let mut out = BTreeMap::new();
    for name in used_rasters(spec) {
        let rs = &spec.rasters[name];
        let path = spec.resolve(&rs.path);
        let crs = rs
            .crs
            .as_deref()
            .map(Crs::parse)
            .transpose()
            .map_err(Error::Core)?;
        let source = raster::open(&path, rs.band, crs)?;
        let info = source.info().clone();
        files.push(InputFile {
            role: format!("rasters.{name}"),
            sha256: sha256_file(&path)?,
            path,
            crs: info
                .crs
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "unknown".into()),
            report: Default::default(),
        });
        out.insert(name.to_string(), RasterInput { info });
    }
    Ok(out)
}

/// Geometries from one CRS to another: as they are when the CRSs are the
/// same, with PROJ (the `proj` feature) otherwise.
pub(crate) fn transform(
    geoms: Vec<Geometry>,
    from: &Crs,
    to: &Crs,
    what: &str,
) -> Result<Vec<Geometry>> {
    if from.same_as(to) {
        return Ok(geoms);
    }
    #[cfg(feature = "proj")]
    {
        terrastat_core::reproject::reproject_geometries(&geoms, from, to).map_err(|(i, m)| {
            Error::Input {
                input: what.to_string(),
                message: match i {
                    Some(i) => format!("zone {i}: {m}"),
                    None => m,
                },
            }
        })
    }
    #[cfg(not(feature = "proj"))]
    {
        let _ = geoms;
        Err(Error::Core(terrastat_core::Error::Crs(format!(
            "`{what}`: {from} differs from {to}: reproject the data, or build terrastat with the `proj` feature"
        ))))
    }
}

/// The extent of a raster as a polygon in the working CRS (a zone cover).
pub(crate) fn extent_in(r: &RasterInput, name: &str, working: &Crs) -> Result<geo::MultiPolygon> {
    let info = &r.info;
    let rect = info.transform.extent(info.width, info.height);
    // Densified, so that a reprojected extent follows the curved edges.
    let (a, b) = (rect.min(), rect.max());
    let n = 64;
    let lerp = |p: f64, q: f64, t: usize| p + (q - p) * t as f64 / n as f64;
    let mut ring = Vec::with_capacity(4 * n + 1);
    ring.extend((0..n).map(|t| (lerp(a.x, b.x, t), a.y)));
    ring.extend((0..n).map(|t| (b.x, lerp(a.y, b.y, t))));
    ring.extend((0..n).map(|t| (lerp(b.x, a.x, t), b.y)));
    ring.extend((0..n).map(|t| (a.x, lerp(b.y, a.y, t))));
    ring.push((a.x, a.y));
    let poly = Geometry::Polygon(geo::Polygon::new(ring.into(), vec![]));
    let g = transform(vec![poly], r.crs(name)?, working, name)?;
    match g.into_iter().next() {
        Some(Geometry::Polygon(p)) => Ok(MultiPolygon(vec![p])),
        _ => Err(Error::Input {
            input: format!("raster `{name}`"),
            message: "the raster's extent cannot be reprojected".into(),
        }),
    }
}
