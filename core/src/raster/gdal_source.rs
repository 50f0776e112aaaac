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
}

/// GDAL settings for strip reads, unless the user set them: a small block
/// cache (strips are whole rows of blocks, so each block is decoded once and
/// GDAL's default of 5 % of RAM only adds memory), and block decoding on as
/// many threads as the rayon pool has (GTiff decodes the blocks of one read
/// in parallel).
fn configure() {
    for (key, value) in [
        ("GDAL_CACHEMAX", "64".to_string()),
        ("GDAL_NUM_THREADS", rayon::current_num_threads().to_string()),
    ] {
        let set = std::env::var_os(key).is_some()
            || gdal::config::get_config_option(key, "").is_ok_and(|v| !v.is_empty());
        if !set {
            let _ = gdal::config::set_config_option(key, &value);
        }
    }
}

impl GdalSource {
    pub(crate) fn open(path: &Path, band: usize) -> Result<GdalSource> {
        configure();
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
        Ok(GdalSource { ds, info })
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
        out.clear();
        out.resize(w * rows.len(), 0.0);
        band.read_into_slice::<f64>(
            (0, rows.start as isize),
            (w, rows.len()),
            (w, rows.len()),
            out,
            None,
        )
        .map_err(|e| {
            Error::raster(
                path,
                format!("reading rows {}..{}: {e}", rows.start, rows.end),
            )
        })?;
        for v in out.iter_mut() {
            *v = self.info.value(*v);
        }
        Ok(())
    }
}
