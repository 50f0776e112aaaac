//! GeoTIFF in pure Rust (the `tiff` crate), for builds without GDAL: strips
//! or tiles, chunky or planar bands, integer and floating-point samples,
//! every compression the `tiff` crate decodes. The georeferencing comes
//! from the GeoTIFF tags (`ModelPixelScale` + `ModelTiepoint`, or
//! `ModelTransformation`; `PixelIsPoint` shifted by half a pixel as GDAL
//! does), the CRS from the EPSG code of the GeoKey directory, nodata and
//! scale/offset from GDAL's own tags (`GDAL_NODATA`, `GDAL_METADATA`).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::{ChunkType, Decoder, DecodingResult};
use tiff::tags::{PlanarConfiguration, Tag};

use super::{GeoTransform, RasterInfo, RasterSource};
use crate::crs::Crs;
use crate::error::{Error, Result};

const GDAL_METADATA: Tag = Tag::Unknown(42112);

/// One band of a GeoTIFF file.
pub(crate) struct GeoTiffSource {
    dec: Decoder<BufReader<File>>,
    info: RasterInfo,
    planar: bool,
    samples: usize,
    chunk: (usize, usize),
    across: usize,
    per_plane: usize,
}

fn tiff_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::raster(path, format!("TIFF: {e}"))
}

/// The value of GeoKey `id`, when stored inline.
fn geokey(dir: &[u16], id: u16) -> Option<u16> {
    dir.get(4..)?
        .chunks_exact(4)
        .find(|k| k[0] == id && k[1] == 0)
        .map(|k| k[3])
}

/// `<Item name="SCALE" sample="0" role="scale">0.5</Item>` in GDAL_METADATA.
fn gdal_item(xml: &str, name: &str, sample: usize) -> Option<f64> {
    let mut rest = xml;
    while let Some(i) = rest.find("<Item") {
        rest = &rest[i..];
        let end = rest.find("</Item>")?;
        let item = &rest[..end];
        rest = &rest[end..];
        let (head, value) = item.split_once('>')?;
        let has = |k: &str, v: &str| head.contains(&format!("{k}=\"{v}\""));
        if has("name", name) && (has("sample", &sample.to_string()) || !head.contains("sample=")) {
            return value.trim().parse().ok();
        }
    }
    None
}

impl GeoTiffSource {
    // Long because it reads the TIFF tags a GeoTIFF needs (layout, sample
    // format, compression, nodata, georeferencing, CRS) in the file's own order.
    pub(crate) fn open(path: &Path, band: usize) -> Result<GeoTiffSource> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut dec = Decoder::new(BufReader::new(f)).map_err(|e| tiff_err(path, e))?;
        let (w, h) = dec.dimensions().map_err(|e| tiff_err(path, e))?;
        let samples: usize = dec
            .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
            .map_err(|e| tiff_err(path, e))?
            .unwrap_or(1)
            .into();
        if band > samples {
            return Err(Error::raster(
                path,
                format!("no band {band}: the raster has {samples} band(s)"),
            ));
        }
        let photometric = dec
            .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
            .map_err(|e| tiff_err(path, e))?;
        if photometric == Some(3) {
            return Err(Error::raster(
                path,
                "palette-colour TIFFs are read with the `gdal` feature only (or convert with `gdal_translate -co PHOTOMETRIC=MINISBLACK`)",
            ));
        }
        let planar = dec
            .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
            .map_err(|e| tiff_err(path, e))?
            == Some(PlanarConfiguration::Planar.to_u16());
        let f64s = |dec: &mut Decoder<BufReader<File>>, tag: Tag| -> Result<Option<Vec<f64>>> {
            dec.find_tag(tag)
                .map_err(|e| tiff_err(path, e))?
                .map(|v| v.into_f64_vec().map_err(|e| tiff_err(path, e)))
                .transpose()
        };
        let scale = f64s(&mut dec, Tag::ModelPixelScaleTag)?;
        let tie = f64s(&mut dec, Tag::ModelTiepointTag)?;
        let matrix = f64s(&mut dec, Tag::ModelTransformationTag)?;
        let mut transform = match (scale, tie, matrix) {
            (_, _, Some(m)) if m.len() >= 8 => GeoTransform {
                x0: m[3],
                dx: m[0],
                rx: m[1],
                y0: m[7],
                ry: m[4],
                dy: m[5],
            },
            (Some(s), Some(t), _) if s.len() >= 2 && t.len() >= 6 => GeoTransform {
                x0: t[3] - t[0] * s[0],
                dx: s[0],
                rx: 0.0,
                y0: t[4] + t[1] * s[1],
                ry: 0.0,
                dy: -s[1],
            },
            _ => {
                return Err(Error::raster(
                    path,
                    "no georeferencing (ModelPixelScale/ModelTiepoint or ModelTransformation tags): not a GeoTIFF",
                ))
            }
        };
        let keys: Vec<u16> = dec
            .find_tag(Tag::GeoKeyDirectoryTag)
            .map_err(|e| tiff_err(path, e))?
            .map(|v| v.into_u16_vec().map_err(|e| tiff_err(path, e)))
            .transpose()?
            .unwrap_or_default();
        if geokey(&keys, 1025) == Some(2) {
            // PixelIsPoint: the tie point is a pixel centre.
            transform.x0 -= 0.5 * (transform.dx + transform.rx);
            transform.y0 -= 0.5 * (transform.ry + transform.dy);
        }
        let code = geokey(&keys, 3072).or_else(|| geokey(&keys, 2048));
        let crs = code
            .filter(|c| *c != 0 && *c != 32767)
            .map(|c| Crs::epsg(c.into()));
        let nodata = match dec
            .find_tag(Tag::GdalNodata)
            .map_err(|e| tiff_err(path, e))?
        {
            Some(v) => {
                let s = v.into_string().map_err(|e| tiff_err(path, e))?;
                let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                match s.to_ascii_lowercase().as_str() {
                    "nan" | "-nan" => Some(f64::NAN),
                    other => Some(other.parse::<f64>().map_err(|_| {
                        Error::raster(path, format!("GDAL_NODATA `{s}` is not a number"))
                    })?),
                }
            }
            None => None,
        };
        let meta = match dec.find_tag(GDAL_METADATA).map_err(|e| tiff_err(path, e))? {
            Some(v) => v.into_string().unwrap_or_default(),
            None => String::new(),
        };
        let sample = band - 1;
        let (cw, ch) = dec.chunk_dimensions();
        let (cw, ch) = (cw as usize, ch as usize);
        let (width, height) = (w as usize, h as usize);
        let across = match dec.get_chunk_type() {
            ChunkType::Strip => 1,
            ChunkType::Tile => width.div_ceil(cw),
        };
        let per_plane = across * height.div_ceil(ch);
        let bits: u16 = dec
            .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
            .map_err(|e| tiff_err(path, e))?
            .and_then(|v| v.first().copied())
            .unwrap_or(8);
        let format: u16 = dec
            .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
            .map_err(|e| tiff_err(path, e))?
            .and_then(|v| v.first().copied())
            .unwrap_or(1);
        let data_type = match format {
            2 => format!("Int{bits}"),
            3 => format!("Float{bits}"),
            _ => format!("UInt{bits}"),
        };
        let info = RasterInfo {
            path: path.to_path_buf(),
            band,
            width,
            height,
            transform,
            crs,
            nodata: nodata.filter(|v| !v.is_nan()),
            scale: gdal_item(&meta, "SCALE", sample).unwrap_or(1.0),
            offset: gdal_item(&meta, "OFFSET", sample).unwrap_or(0.0),
            block: (cw.min(width), ch.min(height)),
            data_type,
        };
        Ok(GeoTiffSource {
            dec,
            info,
            planar,
            samples,
            chunk: (cw, ch),
            across,
            per_plane,
        })
    }
}

/// Sample `sample` of every pixel of a decoded chunk, as f64.
fn take_sample(d: &DecodingResult, stride: usize, sample: usize, out: &mut Vec<f64>) {
    macro_rules! pick {
        ($v:expr) => {
            out.extend($v.iter().skip(sample).step_by(stride).map(|x| *x as f64))
        };
    }
    out.clear();
    match d {
        DecodingResult::U8(v) => pick!(v),
        DecodingResult::U16(v) => pick!(v),
        DecodingResult::U32(v) => pick!(v),
        DecodingResult::U64(v) => pick!(v),
        DecodingResult::I8(v) => pick!(v),
        DecodingResult::I16(v) => pick!(v),
        DecodingResult::I32(v) => pick!(v),
        DecodingResult::I64(v) => pick!(v),
        DecodingResult::F32(v) => pick!(v),
        DecodingResult::F64(v) => pick!(v),
        DecodingResult::F16(v) => {
            out.extend(v.iter().skip(sample).step_by(stride).map(|x| f64::from(*x)))
        }
    }
}

impl RasterSource for GeoTiffSource {
    fn info(&self) -> &RasterInfo {
        &self.info
    }
    fn info_mut(&mut self) -> &mut RasterInfo {
        &mut self.info
    }
    fn read_rows(&mut self, rows: std::ops::Range<usize>, out: &mut Vec<f64>) -> Result<()> {
        let (w, (cw, ch)) = (self.info.width, self.chunk);
        let path = self.info.path.clone();
        out.clear();
        out.resize(w * rows.len(), f64::NAN);
        let (stride, sample, plane) = if self.planar {
            (1, 0, self.info.band - 1)
        } else {
            (self.samples, self.info.band - 1, 0)
        };
        let mut vals = Vec::new();
        for cr in rows.start / ch..rows.end.div_ceil(ch) {
            for cc in 0..self.across {
                let index = plane * self.per_plane + cr * self.across + cc;
                let index32 = u32::try_from(index).map_err(|e| tiff_err(&path, e))?;
                let (dw, dh) = self.dec.chunk_data_dimensions(index32);
                let (dw, dh) = (dw as usize, dh as usize);
                let d = self
                    .dec
                    .read_chunk(index32)
                    .map_err(|e| tiff_err(&path, format!("chunk {index}: {e}")))?;
                take_sample(&d, stride, sample, &mut vals);
                if vals.len() < dw * dh {
                    return Err(tiff_err(&path, format!("chunk {index} is truncated")));
                }
                let (x0, y0) = (cc * cw, cr * ch);
                for r in y0.max(rows.start)..(y0 + dh).min(rows.end) {
                    let src = &vals[(r - y0) * dw..(r - y0) * dw + dw.min(w - x0)];
                    let dst = (r - rows.start) * w + x0;
                    for (o, v) in out[dst..dst + src.len()].iter_mut().zip(src) {
                        *o = self.info.value(*v);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdal_metadata_items() {
        let xml = r#"<GDALMetadata><Item name="OFFSET" sample="0" role="offset">-1.5</Item><Item name="SCALE" sample="0" role="scale">0.01</Item><Item name="SCALE" sample="1" role="scale">2</Item></GDALMetadata>"#;
        assert_eq!(gdal_item(xml, "SCALE", 0), Some(0.01));
        assert_eq!(gdal_item(xml, "SCALE", 1), Some(2.0));
        assert_eq!(gdal_item(xml, "OFFSET", 0), Some(-1.5));
        assert_eq!(gdal_item(xml, "OFFSET", 1), None);
    }
}
