//! Raster layers and exact zonal statistics.
//!
//! - [`RasterSource`]: one band of a raster, read in full-width strips of
//!   rows, with nodata turned into `NaN` and scale/offset applied. Sources:
//!   any GDAL raster with the `gdal` feature ([`open`]), plain GeoTIFFs in
//!   pure Rust without it, and [`MemRaster`] for arrays already in memory.
//! - [`PixelPolygon`]: the exact fraction of every pixel covered by a
//!   polygon (area of pixel ∩ polygon / area of pixel).
//! - [`zonal`]: one pass over a raster, strip by strip, accumulating the
//!   coverage-weighted statistics of every zone ([`ZonalStats`]) in
//!   parallel; memory is bounded by the strip size, not the raster's.
//!
//! Statistics follow exactextract's definitions; see [`ZonalStats`].

mod coverage;
#[cfg(feature = "gdal")]
mod gdal_source;
mod geotiff;
mod stats;
mod zonal;

use std::path::{Path, PathBuf};

use geo::Coord;

pub use coverage::{CoverageScratch, PixelPolygon};
pub use stats::{Needs, ValuePredicate, ZonalStats};
pub use zonal::{zonal, Zonal, ZonalOptions};

use crate::crs::Crs;
use crate::error::{Error, Result};

/// The affine map from pixel (column, row) to world (x, y) coordinates, in
/// GDAL's order: `x = x0 + col·dx + row·rx`, `y = y0 + col·ry + row·dy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoTransform {
    /// x of the top-left corner of pixel (0, 0).
    pub x0: f64,
    /// Pixel width.
    pub dx: f64,
    /// Row rotation term (0 for north-up rasters).
    pub rx: f64,
    /// y of the top-left corner of pixel (0, 0).
    pub y0: f64,
    /// Column rotation term (0 for north-up rasters).
    pub ry: f64,
    /// Pixel height, negative for north-up rasters.
    pub dy: f64,
}

impl GeoTransform {
    /// From GDAL's six coefficients `[x0, dx, rx, y0, ry, dy]`.
    pub fn from_gdal(c: [f64; 6]) -> GeoTransform {
        GeoTransform {
            x0: c[0],
            dx: c[1],
            rx: c[2],
            y0: c[3],
            ry: c[4],
            dy: c[5],
        }
    }

    /// A north-up grid: top-left corner `(x0, y0)`, pixels `width` × `height`
    /// (both positive) in CRS units.
    pub fn north_up(x0: f64, y0: f64, width: f64, height: f64) -> GeoTransform {
        GeoTransform {
            x0,
            dx: width,
            rx: 0.0,
            y0,
            ry: 0.0,
            dy: -height,
        }
    }

    /// Whether the grid is aligned with the axes (no rotation or shear),
    /// the only case the zonal statistics support.
    pub fn is_axis_aligned(&self) -> bool {
        self.rx == 0.0 && self.ry == 0.0
    }

    /// World → pixel space (column `x`, row `y`, fractional), for an
    /// axis-aligned grid.
    #[inline]
    pub fn to_pixel(&self, c: Coord) -> Coord {
        Coord {
            x: (c.x - self.x0) / self.dx,
            y: (c.y - self.y0) / self.dy,
        }
    }

    /// Pixel space → world.
    #[inline]
    pub fn to_world(&self, p: Coord) -> Coord {
        Coord {
            x: self.x0 + p.x * self.dx + p.y * self.rx,
            y: self.y0 + p.x * self.ry + p.y * self.dy,
        }
    }

    /// The area of one pixel, in CRS units².
    pub fn pixel_area(&self) -> f64 {
        (self.dx * self.dy - self.rx * self.ry).abs()
    }

    /// The rectangle covered by a `width` × `height` axis-aligned grid.
    pub fn extent(&self, width: usize, height: usize) -> geo::Rect {
        let a = self.to_world(Coord { x: 0.0, y: 0.0 });
        let b = self.to_world(Coord {
            x: width as f64,
            y: height as f64,
        });
        geo::Rect::new(a, b)
    }
}

/// What is known of one raster band before reading it.
#[derive(Debug, Clone)]
pub struct RasterInfo {
    /// The file (or `memory:<name>`).
    pub path: PathBuf,
    /// The band, from 1.
    pub band: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Pixel → world.
    pub transform: GeoTransform,
    /// The CRS, when the file declares one that terrastat can name.
    pub crs: Option<Crs>,
    /// The nodata value, in stored (unscaled) units.
    pub nodata: Option<f64>,
    /// Values are `stored · scale + offset`.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// The natural block size (columns, rows): reads are aligned on it.
    pub block: (usize, usize),
    /// The stored data type, for messages (`UInt8`, `Float32`…).
    pub data_type: String,
}

impl RasterInfo {
    /// Whether another band has the same grid (size and transform), so that
    /// their pixels pair one to one.
    pub fn same_grid(&self, other: &RasterInfo) -> bool {
        self.width == other.width
            && self.height == other.height
            && self.transform == other.transform
    }

    /// The stored value `v` as a statistic sees it: `NaN` for nodata (and
    /// for a stored `NaN`), else `v · scale + offset`.
    #[inline]
    pub fn value(&self, v: f64) -> f64 {
        if Some(v) == self.nodata || v.is_nan() {
            f64::NAN
        } else {
            v * self.scale + self.offset
        }
    }

    fn check(&self) -> Result<()> {
        let t = &self.transform;
        if !t.is_axis_aligned() {
            return Err(Error::raster(
                &self.path,
                format!(
                    "rotated or sheared geotransform (row/column terms {}, {}) is not supported; warp the raster to a north-up grid first (gdalwarp)",
                    t.rx, t.ry
                ),
            ));
        }
        let finite = [t.x0, t.dx, t.y0, t.dy].iter().all(|v| v.is_finite());
        if !finite || t.dx == 0.0 || t.dy == 0.0 {
            return Err(Error::raster(
                &self.path,
                format!("invalid geotransform {t:?}"),
            ));
        }
        if self.width == 0 || self.height == 0 {
            return Err(Error::raster(&self.path, "the raster has no pixel"));
        }
        Ok(())
    }
}

/// One band of a raster, read in full-width strips of rows.
pub trait RasterSource: Send {
    /// The band's description.
    fn info(&self) -> &RasterInfo;
    /// The band's description, to override what the file says (its CRS).
    fn info_mut(&mut self) -> &mut RasterInfo;
    /// Read rows `rows` (all columns) into `out`, row after row, as values
    /// ([`RasterInfo::value`]: nodata is `NaN`, scale and offset applied).
    fn read_rows(&mut self, rows: std::ops::Range<usize>, out: &mut Vec<f64>) -> Result<()>;
}

/// A raster band held in memory (values already scaled; `NaN` is nodata).
///
/// ```
/// use terrastat_core::raster::{GeoTransform, MemRaster, RasterSource};
/// let r = MemRaster::new("dem", GeoTransform::north_up(0.0, 2.0, 1.0, 1.0), 2, 2, vec![1.0, 2.0, 3.0, f64::NAN], None)?;
/// assert_eq!(r.info().width, 2);
/// # Ok::<(), terrastat_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemRaster {
    info: RasterInfo,
    values: Vec<f64>,
}

impl MemRaster {
    /// A `width` × `height` band of `values` (row-major, top row first).
    pub fn new(
        name: &str,
        transform: GeoTransform,
        width: usize,
        height: usize,
        values: Vec<f64>,
        crs: Option<Crs>,
    ) -> Result<MemRaster> {
        let info = RasterInfo {
            path: PathBuf::from(format!("memory:{name}")),
            band: 1,
            width,
            height,
            transform,
            crs,
            nodata: None,
            scale: 1.0,
            offset: 0.0,
            block: (width, 1),
            data_type: "Float64".into(),
        };
        info.check()?;
        if values.len() != width * height {
            return Err(Error::raster(
                &info.path,
                format!("{} values for a {width} × {height} raster", values.len()),
            ));
        }
        Ok(MemRaster { info, values })
    }
}

impl RasterSource for MemRaster {
    fn info(&self) -> &RasterInfo {
        &self.info
    }
    fn info_mut(&mut self) -> &mut RasterInfo {
        &mut self.info
    }
    fn read_rows(&mut self, rows: std::ops::Range<usize>, out: &mut Vec<f64>) -> Result<()> {
        let w = self.info.width;
        out.clear();
        out.extend_from_slice(&self.values[rows.start * w..rows.end * w]);
        Ok(())
    }
}

/// Open band `band` (from 1) of a raster file: with GDAL when built with
/// the `gdal` feature (any GDAL raster format), else with the pure-Rust
/// GeoTIFF reader (`.tif`/`.tiff` only). `crs` overrides the file's CRS.
///
/// Errors name the file: unreadable, missing band, rotated geotransform,
/// no CRS (and none given), an unsupported data type.
pub fn open(path: &Path, band: usize, crs: Option<Crs>) -> Result<Box<dyn RasterSource>> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "raster file not found"),
        ));
    }
    if band == 0 {
        return Err(Error::raster(path, "bands are numbered from 1"));
    }
    #[cfg(feature = "gdal")]
    let mut source: Box<dyn RasterSource> = Box::new(gdal_source::GdalSource::open(path, band)?);
    #[cfg(not(feature = "gdal"))]
    let mut source: Box<dyn RasterSource> = {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ext != "tif" && ext != "tiff" {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                reason: "without the `gdal` feature only GeoTIFF rasters (.tif) are read".into(),
            });
        }
        Box::new(geotiff::GeoTiffSource::open(path, band)?)
    };
    source.info().check()?;
    if let Some(c) = crs {
        source.info_mut().crs = Some(c);
    }
    Ok(source)
}

/// Open a GeoTIFF with the pure-Rust reader, whatever the features: the
/// oracle of the GDAL reader in tests, and a fallback.
pub fn open_geotiff(path: &Path, band: usize) -> Result<Box<dyn RasterSource>> {
    let s = geotiff::GeoTiffSource::open(path, band)?;
    s.info().check()?;
    Ok(Box::new(s))
}
