//! GeoParquet reader (WKB and GeoArrow encodings) and writer (WKB).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, LargeBinaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use geo::Geometry;
use geo_traits::to_geo::ToGeoGeometry;
use geoarrow_array::cast::AsGeoArrowArray;
use geoarrow_array::{GeoArrowArray, GeoArrowArrayAccessor};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;

use super::chunks::Window;
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::layer::RawLayer;

/// The parts of the GeoParquet `geo` metadata terrastat uses.
#[derive(Debug, Clone)]
struct GeoMeta {
    column: String,
    encoding: String,
    crs: Option<Crs>,
    covering: Option<String>,
    /// The file-level bbox of the geometry column, when declared.
    bbox: Option<[f64; 4]>,
}

fn parse_geo_meta(path: &Path, text: &str) -> Result<GeoMeta> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::format(path, format!("invalid `geo` metadata: {e}")))?;
    let column = v
        .get("primary_column")
        .and_then(|c| c.as_str())
        .ok_or_else(|| Error::format(path, "`geo` metadata has no primary_column"))?
        .to_string();
    let col = v
        .get("columns")
        .and_then(|c| c.get(&column))
        .ok_or_else(|| {
            Error::format(
                path,
                format!("`geo` metadata does not describe column `{column}`"),
            )
        })?;
    let encoding = col
        .get("encoding")
        .and_then(|e| e.as_str())
        .unwrap_or("WKB")
        .to_string();
    // GeoParquet: a missing `crs` key means OGC:CRS84; an explicit null means unknown.
    let crs = match col.get("crs") {
        None => Some(Crs::crs84()),
        Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Crs::parse(s).ok(),
        Some(obj) => Some(Crs::from_projjson(obj).ok_or_else(|| {
            Error::format(path, "the PROJJSON CRS of the geometry column has no `id`; terrastat needs an authority code")
        })?),
    };
    let covering = col
        .get("covering")
        .and_then(|c| c.get("bbox"))
        .and_then(|b| b.get("xmin"))
        .and_then(|x| x.as_array())
        .and_then(|a| a.first())
        .and_then(|s| s.as_str())
        .map(str::to_string);
    let bbox = col
        .get("bbox")
        .and_then(|b| b.as_array())
        .filter(|a| a.len() == 4)
        .and_then(|a| {
            let v: Vec<f64> = a.iter().filter_map(|x| x.as_f64()).collect();
            (v.len() == 4).then(|| [v[0], v[1], v[2], v[3]])
        });
    Ok(GeoMeta {
        column,
        encoding,
        crs,
        covering,
        bbox,
    })
}

fn decode_wkb(bytes: Option<&[u8]>) -> std::result::Result<Geometry, String> {
    let bytes = bytes.ok_or_else(|| "null geometry".to_string())?;
    if let Some(g) = super::wkb_fast::decode(bytes) {
        return Ok(g);
    }
    let wkb = wkb::reader::read_wkb(bytes).map_err(|e| format!("bad WKB: {e}"))?;
    wkb.try_to_geometry()
        .ok_or_else(|| "empty point in WKB".to_string())
}

/// A column of WKB values read for centroids only (see
/// [`crate::ReadOptions::centroids`]), in parallel: polygons of one ring
/// (and multi-polygons of one of them) that pass the checks become their
/// centroid, marked done; every other row is decoded whole. The rows done
/// and the union of their boxes come along.
fn reduce_wkb_rows<'a>(
    n: usize,
    value: impl Fn(usize) -> Option<&'a [u8]> + Sync,
    policy: crate::layer::InvalidPolicy,
) -> (Decoded, crate::layer::Reduced) {
    const CHUNK: usize = 8192;
    // Written in place, chunk by chunk (no per-chunk vectors to concatenate).
    let mut geoms: Decoded = vec![Err(String::new()); n];
    let mut done = vec![false; n];
    let extent = geoms
        .par_chunks_mut(CHUNK)
        .zip(done.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(k, (geoms, done))| {
            let mut ring = Vec::new();
            let mut extent = None;
            for (j, (g, d)) in geoms.iter_mut().zip(done.iter_mut()).enumerate() {
                let bytes = value(k * CHUNK + j);
                let fast = bytes
                    .and_then(|b| super::wkb_fast::one_ring(b, &mut ring))
                    .and_then(|multi| crate::layer::reduce_polygon(&mut ring, multi, policy));
                *g = match fast {
                    Some((c, r)) => {
                        *d = true;
                        extent = crate::geometry::union_rects(extent, Some(r));
                        Ok(Geometry::Point(geo::Point(c)))
                    }
                    None => decode_wkb(bytes),
                };
            }
            extent
        })
        .reduce(|| None, crate::geometry::union_rects);
    (geoms, crate::layer::Reduced { done, extent })
}

/// Row `i` of a binary column: its bytes, `None` in a null row.
type Values<'a> = Box<dyn Fn(usize) -> Option<&'a [u8]> + Sync + 'a>;

/// The values of a binary column (plain, large or view); `None` for a
/// column of another type.
fn wkb_values(arr: &dyn Array) -> Option<Values<'_>> {
    let any = arr.as_any();
    if let Some(b) = any.downcast_ref::<BinaryArray>() {
        return Some(Box::new(|i| b.is_valid(i).then(|| b.value(i))));
    }
    if let Some(b) = any.downcast_ref::<LargeBinaryArray>() {
        return Some(Box::new(|i| b.is_valid(i).then(|| b.value(i))));
    }
    if let Some(b) = any.downcast_ref::<arrow_array::BinaryViewArray>() {
        return Some(Box::new(|i| b.is_valid(i).then(|| b.value(i))));
    }
    None
}

/// [`reduce_wkb_rows`] over a binary column (`None`: not a binary column).
fn reduce_wkb_array(
    arr: &dyn Array,
    policy: crate::layer::InvalidPolicy,
) -> Option<(Decoded, crate::layer::Reduced)> {
    wkb_values(arr).map(|value| reduce_wkb_rows(arr.len(), value, policy))
}

/// Decode a column of WKB values, in parallel.
pub(crate) fn decode_wkb_array(
    arr: &dyn Array,
) -> Option<Vec<std::result::Result<Geometry, String>>> {
    let value = wkb_values(arr)?;
    Some(
        (0..arr.len())
            .into_par_iter()
            .map(|i| decode_wkb(value(i)))
            .collect(),
    )
}

macro_rules! decode_native {
    ($arr:expr, $as:ident) => {{
        let a = $arr.$as();
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    return Err("null geometry".to_string());
                }
                let v = a.value(i).map_err(|e| format!("bad geometry: {e}"))?;
                v.try_to_geometry().ok_or_else(|| "empty point".to_string())
            })
            .collect::<Vec<_>>()
    }};
}

fn decode_native(
    path: &Path,
    arr: &ArrayRef,
    field: &Field,
    encoding: &str,
) -> Result<Vec<std::result::Result<Geometry, String>>> {
    let ext = match encoding {
        "point" => "geoarrow.point",
        "linestring" => "geoarrow.linestring",
        "polygon" => "geoarrow.polygon",
        "multipoint" => "geoarrow.multipoint",
        "multilinestring" => "geoarrow.multilinestring",
        "multipolygon" => "geoarrow.multipolygon",
        other => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                reason: format!("GeoParquet geometry encoding `{other}`"),
            })
        }
    };
    let mut md = field.metadata().clone();
    md.insert("ARROW:extension:name".into(), ext.into());
    md.insert("ARROW:extension:metadata".into(), "{}".into());
    let field = field.clone().with_metadata(md);
    let ga = geoarrow_array::array::from_arrow_array(arr.as_ref(), &field)
        .map_err(|e| Error::format(path, format!("GeoArrow column `{}`: {e}", field.name())))?;
    let ga = ga.as_ref();
    Ok(match encoding {
        "point" => decode_native!(ga, as_point),
        "linestring" => decode_native!(ga, as_line_string),
        "polygon" => decode_native!(ga, as_polygon),
        "multipoint" => decode_native!(ga, as_multi_point),
        "multilinestring" => decode_native!(ga, as_multi_line_string),
        _ => decode_native!(ga, as_multi_polygon),
    })
}

/// Whether a decoded geometry's bounding box meets `b` (closed); an
/// undecodable one is kept so that it is reported.
fn meets(g: &std::result::Result<Geometry, String>, b: &geo::Rect) -> bool {
    use geo::BoundingRect;
    match g {
        Err(_) => true,
        Ok(g) => g
            .bounding_rect()
            .is_none_or(|r| box_meets([r.min().x, r.min().y, r.max().x, r.max().y], b)),
    }
}

/// Whether the closed box `[xmin, ymin, xmax, ymax]` meets `b`.
fn box_meets([x0, y0, x1, y1]: [f64; 4], b: &geo::Rect) -> bool {
    x0 <= b.max().x && x1 >= b.min().x && y0 <= b.max().y && y1 >= b.min().y
}

/// The rows of (`geometries`, `attributes`) whose bounding box meets `b`
/// (undecodable geometries kept, to be reported).
fn filter_meeting(
    geometries: Decoded,
    attributes: &RecordBatch,
    b: &geo::Rect,
) -> Result<(Decoded, RecordBatch)> {
    let mask: Vec<bool> = geometries.iter().map(|g| meets(g, b)).collect();
    let filter = arrow_array::BooleanArray::from(mask.clone());
    let attributes = arrow_select::filter::filter_record_batch(attributes, &filter)?;
    let geometries = geometries
        .into_iter()
        .zip(mask)
        .filter(|(_, m)| *m)
        .map(|(g, _)| g)
        .collect();
    Ok((geometries, attributes))
}

/// The features of `raw` whose bounding box meets `b` (undecodable ones kept).
pub(crate) fn keep_meeting(raw: RawLayer, b: &geo::Rect) -> Result<RawLayer> {
    let (geometries, attributes) = filter_meeting(raw.geometries, &raw.attributes, b)?;
    Ok(RawLayer {
        geometries,
        attributes,
        crs: raw.crs,
        reduced: None,
    })
}

/// Min and max of a Float64 or Float32 leaf column in one row group.
fn stat_range(rg: &parquet::file::metadata::RowGroupMetaData, leaf: usize) -> Option<(f64, f64)> {
    use parquet::file::statistics::Statistics;
    match rg.column(leaf).statistics()? {
        Statistics::Double(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        Statistics::Float(s) => Some((f64::from(*s.min_opt()?), f64::from(*s.max_opt()?))),
        _ => None,
    }
}

/// The row groups whose bbox covering statistics meet `b` (all of them
/// when the file has no covering column or no statistics).
fn groups_meeting(
    md: &parquet::file::metadata::ParquetMetaData,
    covering: Option<&str>,
    b: geo::Rect,
) -> Vec<usize> {
    let all: Vec<usize> = (0..md.num_row_groups()).collect();
    let Some(cov) = covering else {
        return all;
    };
    let schema = md.file_metadata().schema_descr();
    let leaf = |f: &str| {
        (0..schema.num_columns())
            .find(|i| schema.column(*i).path().string() == format!("{cov}.{f}"))
    };
    let (Some(x0), Some(y0), Some(x1), Some(y1)) =
        (leaf("xmin"), leaf("ymin"), leaf("xmax"), leaf("ymax"))
    else {
        return all;
    };
    all.into_iter()
        .filter(|&g| {
            let rg = md.row_group(g);
            match (
                stat_range(rg, x0),
                stat_range(rg, y0),
                stat_range(rg, x1),
                stat_range(rg, y1),
            ) {
                // Features' xmin ≥ xmin.0, xmax ≤ xmax.1, …
                (Some(xmin), Some(ymin), Some(xmax), Some(ymax)) => {
                    box_meets([xmin.0, ymin.0, xmax.1, ymax.1], &b)
                }
                _ => true,
            }
        })
        .collect()
}

/// A Parquet file's metadata and its parsed `geo` metadata, if any.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    metadata: ArrowReaderMetadata,
    geo: Option<GeoMeta>,
}

impl Loaded {
    /// Whether the file may hold a feature meeting `b`: false only when its
    /// `geo` metadata declares a bbox that misses `b`.
    pub(crate) fn may_meet(&self, b: &geo::Rect) -> bool {
        self.geo
            .as_ref()
            .and_then(|m| m.bbox)
            .is_none_or(|declared| box_meets(declared, b))
    }

    /// The bbox the `geo` metadata declares.
    pub(crate) fn declared_bbox(&self) -> Option<[f64; 4]> {
        self.geo.as_ref().and_then(|m| m.bbox)
    }

    /// Rows in the file (from the footer).
    pub(crate) fn rows(&self) -> usize {
        usize::try_from(self.metadata.metadata().file_metadata().num_rows()).unwrap_or(0)
    }
}

/// Open a Parquet file's metadata (footer and `geo` key) once.
pub(crate) fn load_metadata(path: &Path) -> Result<Loaded> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())
        .map_err(|e| Error::parquet(path, e))?;
    let meta = metadata
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "geo"))
        .and_then(|k| k.value.as_deref())
        .map(|text| parse_geo_meta(path, text))
        .transpose()?;
    Ok(Loaded {
        metadata,
        geo: meta,
    })
}

/// The row groups of a GeoParquet file that a read restricted to `bbox`
/// decodes, and how many row groups the file has.
pub fn row_groups_meeting(path: &Path, bbox: geo::Rect) -> Result<(Vec<usize>, usize)> {
    let loaded = load_metadata(path)?;
    let md = loaded.metadata.metadata();
    let covering = loaded.geo.and_then(|m| m.covering);
    Ok((
        groups_meeting(md, covering.as_deref(), bbox),
        md.num_row_groups(),
    ))
}

/// Decoded geometries, or why each could not be decoded.
type Decoded = Vec<std::result::Result<Geometry, String>>;

/// Read a GeoParquet file (or a plain Parquet file with a WKB column named
/// `geometry`, `geom` or `wkb_geometry`, whose CRS must then come from the spec).
pub fn read_geoparquet(path: &Path) -> Result<RawLayer> {
    read_geoparquet_columns(path, None)
}

/// Read a GeoParquet file, keeping only the named attribute columns (all of
/// them with `None`, or when the file lacks one of them, so that the
/// caller's column check can list the file's columns). Row groups are decoded in parallel, each on
/// one worker, and only the projected columns are decompressed.
pub fn read_geoparquet_columns(path: &Path, columns: Option<&[String]>) -> Result<RawLayer> {
    read_geoparquet_in(path, columns, None)
}

/// The features whose bounding box meets `bbox` (closed boxes; all of them
/// with `None`), reading only the row groups that can hold some: with a
/// GeoParquet 1.1 bbox covering column, row groups whose covering
/// statistics miss `bbox` are not decompressed at all (see
/// [`row_groups_meeting`]). Undecodable geometries are kept, to be reported.
pub fn read_geoparquet_in(
    path: &Path,
    columns: Option<&[String]>,
    bbox: Option<geo::Rect>,
) -> Result<RawLayer> {
    let opts = crate::ReadOptions::default()
        .columns(columns.map(<[String]>::to_vec))
        .bbox(bbox);
    read_loaded(path, load_metadata(path)?, &opts)
}

/// Read a GeoParquet file as [`crate::io::read_raw`] does with `opts`
/// (columns, bbox, centroids), on metadata already loaded.
// Long because it turns a loaded file into a raw layer (the `geo` metadata or
// its fallback, the projection, the bbox pruning, the geometry decoding) in one
// pass that shares the row selection and the column projection.
pub(crate) fn read_loaded(
    path: &Path,
    loaded: Loaded,
    opts: &crate::ReadOptions,
) -> Result<RawLayer> {
    let (columns, bbox) = (opts.columns.as_deref(), opts.bbox);
    let Loaded {
        metadata,
        geo: meta,
    } = loaded;
    let schema = metadata.schema().clone();
    let meta = match meta {
        Some(meta) => meta,
        None => {
            let column = ["geometry", "geom", "wkb_geometry"]
                .into_iter()
                .find(|c| schema.field_with_name(c).is_ok())
                .ok_or_else(|| {
                    Error::format(
                        path,
                        "not a GeoParquet file: no `geo` metadata and no `geometry` column",
                    )
                })?;
            GeoMeta {
                column: column.to_string(),
                encoding: "WKB".into(),
                crs: None,
                covering: None,
                bbox: None,
            }
        }
    };
    let (gi, gfield) = schema
        .column_with_name(&meta.column)
        .ok_or_else(|| Error::format(path, format!("geometry column `{}` missing", meta.column)))?;
    let gfield = gfield.clone();
    // Centroids only when they are the working CRS's (no reprojection
    // follows) and no box filter needs the geometries.
    let reduce = opts
        .centroids
        .as_ref()
        .filter(|_| bbox.is_none() && meta.encoding.eq_ignore_ascii_case("wkb"))
        .filter(|target| {
            opts.crs
                .as_ref()
                .or(meta.crs.as_ref())
                .is_some_and(|c| c.same_as(target))
        })
        .map(|_| opts.invalid);
    // A requested column the file lacks: read them all, so that the caller's
    // error can list what the file has.
    let columns = columns.filter(|cols| cols.iter().all(|c| schema.field_with_name(c).is_ok()));
    let attrs: Vec<usize> = (0..schema.fields().len())
        .filter(|i| {
            let n = schema.field(*i).name();
            *i != gi
                && Some(n) != meta.covering.as_ref()
                && columns.is_none_or(|cols| cols.iter().any(|c| c == n))
        })
        .collect();
    let mut roots = attrs.clone();
    roots.push(gi);
    let mask = ProjectionMask::roots(
        metadata.metadata().file_metadata().schema_descr(),
        roots.iter().copied(),
    );
    let attr_schema = Arc::new(schema.project(&attrs)?);
    // The projected columns' decoders, as the reader builder would make them.
    let levels = parquet::arrow::parquet_to_arrow_field_levels(
        metadata.metadata().file_metadata().schema_descr(),
        mask,
        Some(schema.fields()),
    )
    .map_err(|e| Error::parquet(path, e))?;
    let groups = match bbox {
        Some(b) => groups_meeting(metadata.metadata(), meta.covering.as_deref(), b),
        None => (0..metadata.metadata().num_row_groups()).collect(),
    };
    let parts: Vec<(Decoded, Vec<RecordBatch>, Option<crate::layer::Reduced>)> = groups
        .into_par_iter()
        .map(|rg| {
            // The row group's bytes in one read (a `File` reader would dup
            // the descriptor, seek and read for every column chunk).
            let file = Window::read(path, metadata.metadata(), rg, &roots)?;
            let reader =
                super::chunks::row_group_reader(file, metadata.metadata(), rg, &levels, 65_536)
                    .map_err(|e| Error::parquet(path, e))?;
            // Decoding errors of the data pages come as ArrowError: keep the file in the
            // message. The parquet decoder can panic on some corrupt pages
            // (apache/arrow-rs #10722): turn that into an error naming the file.
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reader.collect::<std::result::Result<Vec<RecordBatch>, _>>()
            }))
            .map_err(|_| {
                Error::format(
                    path,
                    "corrupt Parquet data (the decoder failed on a data page)",
                )
            })?;
            let batches =
                decoded.map_err(|e: arrow_schema::ArrowError| Error::parquet(path, e.into()))?;
            let mut geoms = Vec::new();
            let mut reduced = reduce.map(|_| crate::layer::Reduced::default());
            let mut out = Vec::with_capacity(batches.len());
            for batch in batches {
                let bg = batch.schema().index_of(&meta.column)?;
                let garr = batch.column(bg);
                let not_wkb = || Error::ColumnType {
                    layer: path.display().to_string(),
                    column: meta.column.clone(),
                    found: garr.data_type().to_string(),
                    expected: "binary (WKB)".into(),
                };
                let decoded = if let (Some(policy), Some(red)) = (reduce, reduced.as_mut()) {
                    let (decoded, r) =
                        reduce_wkb_array(garr.as_ref(), policy).ok_or_else(not_wkb)?;
                    red.append(r);
                    decoded
                } else if meta.encoding.eq_ignore_ascii_case("wkb") {
                    decode_wkb_array(garr.as_ref()).ok_or_else(not_wkb)?
                } else {
                    decode_native(path, garr, &gfield, &meta.encoding)?
                };
                let keep: Vec<usize> = (0..batch.num_columns()).filter(|i| *i != bg).collect();
                let attrs = batch.project(&keep)?;
                let (decoded, attrs) = match &bbox {
                    None => (decoded, attrs),
                    Some(b) => filter_meeting(decoded, &attrs, b)?,
                };
                super::append_taking(&mut geoms, decoded, 0);
                out.push(attrs);
            }
            Ok((geoms, out, reduced))
        })
        .collect::<Result<_>>()?;
    let total = parts.iter().map(|p| p.0.len()).sum();
    let mut geometries = Vec::new();
    let mut batches = Vec::new();
    let mut reduced = reduce.map(|_| crate::layer::Reduced::default());
    for (g, b, r) in parts {
        super::append_taking(&mut geometries, g, total);
        batches.extend(b);
        if let (Some(all), Some(r)) = (reduced.as_mut(), r) {
            all.append(r);
        }
    }
    let attributes = arrow_select::concat::concat_batches(&attr_schema, &batches)?;
    Ok(RawLayer {
        geometries,
        attributes,
        crs: meta.crs,
        reduced,
    })
}

/// Encode geometries as WKB (little endian).
pub fn to_wkb_array(geoms: &[Geometry]) -> Result<BinaryArray> {
    let encoded: Vec<std::result::Result<Vec<u8>, String>> = geoms
        .par_iter()
        .map(|g| {
            let mut buf = Vec::new();
            wkb::writer::write_geometry(&mut buf, g, &Default::default())
                .map_err(|e| e.to_string())?;
            Ok(buf)
        })
        .collect();
    let mut b = arrow_array::builder::BinaryBuilder::new();
    for e in encoded {
        b.append_value(e.map_err(Error::InvalidArgument)?);
    }
    Ok(b.finish())
}

/// The GeoParquet 1.1 `geo` metadata for a WKB column.
pub fn geo_metadata(
    column: &str,
    crs: &Crs,
    geoms: &[Geometry],
    bbox: Option<geo::Rect>,
) -> String {
    let mut types: Vec<&str> = geoms
        .iter()
        .map(|g| match g {
            Geometry::Point(_) => "Point",
            Geometry::LineString(_) | Geometry::Line(_) => "LineString",
            Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => "Polygon",
            Geometry::MultiPoint(_) => "MultiPoint",
            Geometry::MultiLineString(_) => "MultiLineString",
            Geometry::MultiPolygon(_) => "MultiPolygon",
            Geometry::GeometryCollection(_) => "GeometryCollection",
        })
        .collect();
    types.sort();
    types.dedup();
    let mut col = serde_json::json!({
        "encoding": "WKB",
        "geometry_types": types,
        "crs": crs.to_projjson(),
    });
    if let Some(b) = bbox {
        col["bbox"] = serde_json::json!([b.min().x, b.min().y, b.max().x, b.max().y]);
    }
    serde_json::json!({
        "version": "1.1.0",
        "primary_column": column,
        "columns": { column: col }
    })
    .to_string()
}

/// Append a WKB geometry column to a batch and return the batch and its GeoParquet metadata.
pub fn with_geometry_column(
    batch: &RecordBatch,
    column: &str,
    crs: &Crs,
    geoms: &[Geometry],
) -> Result<(RecordBatch, String)> {
    let wkb: ArrayRef = Arc::new(to_wkb_array(geoms)?);
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(column, DataType::Binary, true)));
    let mut cols = batch.columns().to_vec();
    cols.push(wkb);
    let bbox = {
        use geo::BoundingRect;
        let gc = geo::GeometryCollection(geoms.to_vec());
        gc.bounding_rect()
    };
    let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    Ok((out, geo_metadata(column, crs, geoms, bbox)))
}

/// [`with_geometry_column`] plus a GeoParquet 1.1 bbox covering column
/// `bbox` (struct of Float64 `xmin`, `ymin`, `xmax`, `ymax`, declared in the
/// `geo` metadata), so that readers can skip row groups by bounding box.
pub fn with_geometry_and_bbox_columns(
    batch: &RecordBatch,
    column: &str,
    crs: &Crs,
    geoms: &[Geometry],
) -> Result<(RecordBatch, String)> {
    use geo::BoundingRect;
    let (with_geom, meta) = with_geometry_column(batch, column, crs, geoms)?;
    let boxes: Vec<Option<geo::Rect>> = geoms.par_iter().map(|g| g.bounding_rect()).collect();
    let side = |f: fn(&geo::Rect) -> f64| -> ArrayRef {
        Arc::new(arrow_array::Float64Array::from(
            boxes.iter().map(|b| b.as_ref().map(f)).collect::<Vec<_>>(),
        ))
    };
    let fields = vec![
        Field::new("xmin", DataType::Float64, true),
        Field::new("ymin", DataType::Float64, true),
        Field::new("xmax", DataType::Float64, true),
        Field::new("ymax", DataType::Float64, true),
    ];
    let bbox = arrow_array::StructArray::try_new(
        fields.clone().into(),
        vec![
            side(|b| b.min().x),
            side(|b| b.min().y),
            side(|b| b.max().x),
            side(|b| b.max().y),
        ],
        None,
    )?;
    let mut schema_fields: Vec<Arc<Field>> = with_geom.schema().fields().iter().cloned().collect();
    schema_fields.push(Arc::new(Field::new(
        "bbox",
        DataType::Struct(fields.into()),
        true,
    )));
    let mut cols = with_geom.columns().to_vec();
    cols.push(Arc::new(bbox));
    let out = RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), cols)?;
    let mut v: serde_json::Value =
        serde_json::from_str(&meta).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    v["columns"][column]["covering"] = serde_json::json!({"bbox": {
        "xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
        "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"]
    }});
    Ok((out, v.to_string()))
}

/// What an in-memory Arrow table holds as a layer, before checks: the
/// geometry column is the one tagged `geoarrow.wkb` / `ogc.wkb` or a native
/// GeoArrow type (its CRS from the GeoArrow extension metadata), else a
/// binary column named `geometry`, `geom` or `wkb_geometry` (CRS unknown:
/// the caller must give one). `label` names the table in errors.
pub fn raw_from_arrow(
    label: &Path,
    schema: arrow_schema::SchemaRef,
    batches: &[RecordBatch],
) -> Result<RawLayer> {
    let ext = |f: &Field| f.metadata().get("ARROW:extension:name").cloned();
    let (gi, encoding) = schema
        .fields()
        .iter()
        .enumerate()
        .find_map(|(i, f)| match ext(f).as_deref() {
            Some("geoarrow.wkb" | "ogc.wkb") => Some((i, "WKB".to_string())),
            Some(e) if e.starts_with("geoarrow.") => {
                Some((i, e.trim_start_matches("geoarrow.").to_string()))
            }
            _ => None,
        })
        .or_else(|| {
            ["geometry", "geom", "wkb_geometry"]
                .into_iter()
                .find_map(|n| schema.index_of(n).ok())
                .map(|i| (i, "WKB".to_string()))
        })
        .ok_or_else(|| {
            Error::format(
                label,
                "no geometry column (a `geoarrow.wkb` or GeoArrow column, or a binary column named `geometry`)",
            )
        })?;
    let field = schema.field(gi).clone();
    let crs = match field
        .metadata()
        .get("ARROW:extension:metadata")
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| v.get("crs").cloned())
    {
        Some(serde_json::Value::String(s)) => Some(Crs::parse(&s)?),
        Some(serde_json::Value::Null) | None => None,
        Some(obj) => Some(Crs::from_projjson(&obj).ok_or_else(|| {
            Error::format(label, "the PROJJSON CRS of the geometry column has no `id`")
        })?),
    };
    let batch = arrow_select::concat::concat_batches(&schema, batches)?;
    let garr = batch.column(gi);
    let geometries = if encoding == "WKB" {
        decode_wkb_array(garr.as_ref()).ok_or_else(|| Error::ColumnType {
            layer: label.display().to_string(),
            column: field.name().clone(),
            found: garr.data_type().to_string(),
            expected: "binary (WKB)".into(),
        })?
    } else {
        decode_native(label, garr, &field, &encoding)?
    };
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|i| *i != gi).collect();
    Ok(RawLayer {
        geometries,
        attributes: batch.project(&keep)?,
        crs,
        reduced: None,
    })
}
