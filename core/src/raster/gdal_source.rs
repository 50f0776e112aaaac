//! Raster bands through GDAL (the `gdal` feature): any format GDAL reads.

use std::path::Path;

use gdal::Dataset;

use super::{GeoTransform, RasterInfo, RasterSource};
use crate::crs::Crs;
use crate::error::{Error, Result};

/// One band of a GDAL dataset.
pub(crate) struct GdalSource {
    ds: Dataset,
    info: RasterInfo,
    raw: Vec<f64>,
}

impl GdalSource {
    pub(crate) fn open(path: &Path, band: usize) -> Result<GdalSource> {
        let ds = Dataset::open(path)
            .map_err(|e| Error::raster(path, format!("GDAL cannot open it: {e}")))?;
        let count = ds.raster_count();
        if count == 0 {
            return Err(Error::raster(path, "no raster band (is it a vector file?)"));
        }
        if band > count {
            return Err(Error::raster(
                path,
                format!("no band {band}: the raster has {count} band(s)"),
            ));
        }
        let transform = ds
            .geo_transform()
            .map_err(|e| Error::raster(path, format!("no geotransform: {e}")))?;
        let crs = ds.spatial_ref().ok().and_then(|mut srs| {
            if srs.auth_name().is_none() {
                let _ = srs.auto_identify_epsg();
            }
            let auth = srs.auth_name()?;
            let code = srs.auth_code().ok()?;
            Crs::parse(&format!("{auth}:{code}")).ok()
        });
        let (width, height) = ds.raster_size();
        let info = {
            let b = ds
                .rasterband(band)
                .map_err(|e| Error::raster(path, format!("band {band}: {e}")))?;
            RasterInfo {
                path: path.to_path_buf(),
                band,
                width,
                height,
                transform: GeoTransform::from_gdal(transform),
                crs,
                nodata: b.no_data_value(),
                scale: b.scale().unwrap_or(1.0),
                offset: b.offset().unwrap_or(0.0),
                block: b.block_size(),
                data_type: b.band_type().name(),
            }
        };
        Ok(GdalSource {
            ds,
            info,
            raw: Vec::new(),
        })
    }
}

impl RasterSource for GdalSource {
    fn info(&self) -> &RasterInfo {
        &self.info
    }
    fn info_mut(&mut self) -> &mut RasterInfo {
        &mut self.info
    }
    fn read_rows(&mut self, rows: std::ops::Range<usize>, out: &mut Vec<f64>) -> Result<()> {
        let path = &self.info.path;
        let w = self.info.width;
        let band = self
            .ds
            .rasterband(self.info.band)
            .map_err(|e| Error::raster(path, format!("band {}: {e}", self.info.band)))?;
        self.raw.clear();
        self.raw.resize(w * rows.len(), 0.0);
        band.read_into_slice::<f64>(
            (0, rows.start as isize),
            (w, rows.len()),
            (w, rows.len()),
            &mut self.raw,
            None,
        )
        .map_err(|e| {
            Error::raster(
                path,
                format!("reading rows {}..{}: {e}", rows.start, rows.end),
            )
        })?;
        out.clear();
        out.extend(self.raw.iter().map(|v| self.info.value(*v)));
        Ok(())
    }
}
