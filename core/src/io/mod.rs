//! Readers and writers.
//!
//! | format | extension | reader | needs |
//! |---|---|---|---|
//! | GeoParquet 1.0/1.1 (WKB or GeoArrow) | `.parquet`, `.geoparquet` | [`read_geoparquet`] | — |
//! | GeoJSON | `.geojson`, `.json` | [`read_geojson`] | — |
//! | FlatGeobuf | `.fgb` | [`read_fgb`] | — |
//! | any OGR vector format | other | `read_ogr` | `gdal` feature |
//!
//! Every output is written atomically: to a temporary file in the target
//! directory, flushed, then renamed over the target.

mod chunks;
mod columns;
mod fgb;
mod geojson;
mod geoparquet;
#[cfg(feature = "gdal")]
mod ogr;
mod wkb_fast;

use std::fs::File;
use std::io::Write;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

pub use self::fgb::read_fgb;
pub use self::geojson::read_geojson;
pub use self::geoparquet::{
    geo_metadata, raw_from_arrow, read_geoparquet, read_geoparquet_columns, read_geoparquet_in,
    row_groups_meeting, to_wkb_array, with_geometry_and_bbox_columns, with_geometry_column,
};
#[cfg(feature = "gdal")]
pub use self::ogr::read_ogr;

use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::layer::{InvalidPolicy, Layer, RawLayer};

/// How to read a layer.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The CRS to assume, overriding the file's (for files without one).
    pub crs: Option<Crs>,
    /// What to do with invalid polygons.
    pub invalid: InvalidPolicy,
    /// For multi-layer sources (GeoPackage, OSM PBF…, with `gdal`): the layer to read.
    pub source_layer: Option<String>,
    /// Keep only the features whose bounding box meets this box (closed),
    /// in the file's CRS. GeoParquet files with a bbox covering column skip
    /// the row groups that cannot hold any.
    pub bbox: Option<geo::Rect>,
    /// The attribute columns to keep (`None`: all). Columnar readers
    /// (GeoParquet) skip the others without decompressing them; names the
    /// file lacks are ignored here and reported by the caller's checks.
    pub columns: Option<Vec<String>>,
    /// Read each feature as its centroid, for a layer that is only ever
    /// attributed by centroid: when the layer's CRS (the override, else the
    /// file's) is this one, WKB GeoParquet polygons are reduced to their
    /// centroid as they are decoded, after the same checks, without
    /// building them (see [`Layer::is_reduced`]). Other readers, other
    /// CRSs and reads with a `bbox` read the geometries whole.
    pub centroids: Option<Crs>,
}

impl ReadOptions {
    /// Set the CRS to assume.
    #[must_use]
    pub fn crs(mut self, crs: Option<Crs>) -> Self {
        self.crs = crs;
        self
    }
    /// Set the invalid-polygon policy.
    #[must_use]
    pub fn invalid(mut self, policy: InvalidPolicy) -> Self {
        self.invalid = policy;
        self
    }
    /// Keep only these attribute columns (`None`: all).
    #[must_use]
    pub fn columns(mut self, columns: Option<Vec<String>>) -> Self {
        self.columns = columns;
        self
    }
    /// Keep only the features whose bounding box meets `bbox`.
    #[must_use]
    pub fn bbox(mut self, bbox: Option<geo::Rect>) -> Self {
        self.bbox = bbox;
        self
    }
    /// Set the source layer (for multi-layer formats).
    #[must_use]
    pub fn source_layer(mut self, layer: Option<String>) -> Self {
        self.source_layer = layer;
        self
    }
    /// Read features as their centroids when the layer is in `crs` (see
    /// [`ReadOptions::centroids`]).
    #[must_use]
    pub fn centroids(mut self, crs: Option<Crs>) -> Self {
        self.centroids = crs;
        self
    }
}

/// Read what a file holds, before checks, choosing the reader by extension.
pub fn read_raw(path: &Path, opts: &ReadOptions) -> Result<RawLayer> {
    if path.is_dir() {
        return read_dataset(path, opts);
    }
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let raw = match ext.as_str() {
        "parquet" | "geoparquet" | "pq" => {
            return geoparquet::read_loaded(path, geoparquet::load_metadata(path)?, opts)
        }
        "geojson" | "json" => read_geojson(path),
        "fgb" => read_fgb(path),
        _ => {
            #[cfg(feature = "gdal")]
            {
                read_ogr(path, opts.source_layer.as_deref())
            }
            #[cfg(not(feature = "gdal"))]
            {
                let _ = opts;
                Err(Error::UnsupportedFormat {
                    path: path.to_path_buf(),
                    reason: format!(
                        "`.{ext}` files need the `gdal` feature; without it terrastat reads GeoParquet, GeoJSON and FlatGeobuf"
                    ),
                })
            }
        }
    }?;
    match opts.bbox {
        Some(b) => geoparquet::keep_meeting(raw, &b),
        None => Ok(raw),
    }
}

/// Every `.parquet` file below `dir` (recursively, e.g. a Hive-partitioned
/// dataset `h3_5=85…/part-0.parquet`), in path order, as one layer. With a
/// `bbox`, files whose declared bbox misses it are not opened further, and
/// each file is read with row-group pruning. The files must share their
/// attribute columns and CRS (an error names the first file that differs).
/// Partition keys in directory names are not added as columns.
pub fn read_dataset(dir: &Path, opts: &ReadOptions) -> Result<RawLayer> {
    read_files(&dataset_files(dir)?, opts)
}

/// The `.parquet` files below `dir` (recursively), in path order: the
/// partitions of a directory layer. An empty directory is an error.
pub fn dataset_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    // Each directory's entries sorted by name, visited depth first: the
    // order of the whole paths compared component by component, without
    // comparing thousands of paths (and one `stat` only for symlinks).
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
        let mut entries = std::fs::read_dir(d)
            .map_err(|e| Error::io(d, e))?
            .map(|e| {
                let e = e.map_err(|e| Error::io(d, e))?;
                let is_dir = match e.file_type() {
                    Ok(t) if t.is_symlink() => e.path().is_dir(),
                    Ok(t) => t.is_dir(),
                    Err(_) => e.path().is_dir(),
                };
                Ok((e.file_name(), is_dir))
            })
            .collect::<Result<Vec<_>>>()?;
        entries.sort_unstable();
        for (name, is_dir) in entries {
            let p = d.join(&name);
            if is_dir {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    if files.is_empty() {
        return Err(Error::format(
            dir,
            "a directory layer needs .parquet files; found none",
        ));
    }
    Ok(files)
}

/// The bbox a GeoParquet file declares in its `geo` metadata
/// (`[xmin, ymin, xmax, ymax]`), from its footer alone.
pub fn declared_bbox(path: &Path) -> Result<Option<[f64; 4]>> {
    geoparquet::load_metadata(path).map(|l| l.declared_bbox())
}

/// The number of rows of a Parquet file and the bbox its `geo` metadata
/// declares, from one read of its footer.
pub fn footer_facts(path: &Path) -> Result<(usize, Option<[f64; 4]>)> {
    Footer::read(path).map(|f| (f.rows(), f.bbox()))
}

/// The number of rows of a Parquet file, from its footer alone.
pub fn parquet_rows(path: &Path) -> Result<usize> {
    geoparquet::load_metadata(path).map(|l| l.rows())
}

/// A Parquet partition's footer, read once: its rows, the bbox its `geo`
/// metadata declares, and what a read of the file needs (see [`read_parts`]).
///
/// ```
/// use terrastat_core::io::{read_footers, read_parts, Footer};
/// use terrastat_core::ReadOptions;
/// let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/communes.parquet");
/// let footer = Footer::read(&path)?;
/// assert_eq!(footer.rows(), 36);
/// let footers = read_footers(&[path.clone(), path])?;
/// let both = read_parts(&footers, &ReadOptions::default())?;
/// assert_eq!(both.geometries.len(), 72);
/// # Ok::<(), terrastat_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Footer {
    path: std::path::PathBuf,
    loaded: geoparquet::Loaded,
}

impl Footer {
    /// Read the footer of the Parquet file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        Ok(Footer {
            path: path.to_path_buf(),
            loaded: geoparquet::load_metadata(path)?,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.loaded.rows()
    }

    /// The bbox the file's `geo` metadata declares (`[xmin, ymin, xmax, ymax]`).
    pub fn bbox(&self) -> Option<[f64; 4]> {
        self.loaded.declared_bbox()
    }
}

/// The footers of `files`, read in parallel, in the given order.
pub fn read_footers(files: &[std::path::PathBuf]) -> Result<Vec<Footer>> {
    use rayon::prelude::*;
    files.par_iter().map(|f| Footer::read(f)).collect()
}

/// Some partitions of a directory layer (see [`read_dataset`]), read in
/// parallel and concatenated in the given order; they must share their
/// attribute columns and CRS (an error names the first file that differs).
pub fn read_files(files: &[std::path::PathBuf], opts: &ReadOptions) -> Result<RawLayer> {
    let paths: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    read_loaded_parts(&paths, |k| geoparquet::load_metadata(paths[k]), opts)
}

/// [`read_files`] for partitions whose footers were read already: each
/// footer is parsed once whatever reads it.
pub fn read_parts(parts: &[Footer], opts: &ReadOptions) -> Result<RawLayer> {
    let paths: Vec<&Path> = parts.iter().map(|f| f.path()).collect();
    read_loaded_parts(&paths, |k| Ok(parts[k].loaded.clone()), opts)
}

/// Files of a partitioned layer per parallel task: small enough that a
/// thread left idle by other work finds some to take (rayon splits a
/// parallel loop further only when another thread steals from it).
const FILES_PER_TASK: usize = 8;

fn read_loaded_parts(
    files: &[&Path],
    loaded: impl Fn(usize) -> Result<geoparquet::Loaded> + Sync,
    opts: &ReadOptions,
) -> Result<RawLayer> {
    let Some(first_file) = files.first() else {
        return Err(Error::format(Path::new("."), "no partition to read"));
    };
    // Files in parallel (each also decodes its row groups in parallel),
    // collected in path order.
    use rayon::prelude::*;
    let parts: Vec<(&Path, RawLayer)> = files
        .par_iter()
        .enumerate()
        .with_max_len(FILES_PER_TASK)
        .map(|(k, f)| -> Result<Option<(&Path, RawLayer)>> {
            let loaded = loaded(k)?;
            if opts.bbox.as_ref().is_some_and(|b| !loaded.may_meet(b)) {
                return Ok(None);
            }
            let raw = geoparquet::read_loaded(f, loaded, opts)?;
            Ok(Some((*f, raw)))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let Some((first_path, first)) = parts.first() else {
        // No file can meet the box: an empty layer with the first file's columns.
        let mut raw = read_geoparquet_in(first_file, opts.columns.as_deref(), opts.bbox)?;
        raw.geometries.clear();
        raw.attributes = raw.attributes.slice(0, 0);
        return Ok(raw);
    };
    let (schema, crs) = (first.attributes.schema(), first.crs.clone());
    for (p, raw) in &parts {
        if raw.attributes.schema().fields() != schema.fields() {
            return Err(Error::format(
                p,
                format!("its columns differ from those of {}", first_path.display()),
            ));
        }
        if raw.crs != crs {
            return Err(Error::format(
                p,
                format!(
                    "its CRS ({}) differs from that of {} ({})",
                    raw.crs
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "none".into()),
                    first_path.display(),
                    crs.as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "none".into())
                ),
            ));
        }
    }
    // Each file's own metadata (its `geo` bbox…) does not describe the whole.
    let schema = std::sync::Arc::new(schema.as_ref().clone().with_metadata(Default::default()));
    let batches: Vec<_> = parts
        .iter()
        .map(|(_, r)| {
            RecordBatch::try_new_with_options(
                schema.clone(),
                r.attributes.columns().to_vec(),
                &arrow_array::RecordBatchOptions::new()
                    .with_row_count(Some(r.attributes.num_rows())),
            )
        })
        .collect::<std::result::Result<_, _>>()?;
    let attributes = arrow_select::concat::concat_batches(&schema, &batches)?;
    // Reduced if any file was (all share the CRS); a file read whole adds rows not done.
    let mut reduced = parts
        .iter()
        .any(|(_, r)| r.reduced.is_some())
        .then(crate::layer::Reduced::default);
    let mut pieces = Vec::with_capacity(parts.len());
    for (_, r) in parts {
        if let Some(all) = reduced.as_mut() {
            let n = r.geometries.len();
            all.append(r.reduced.unwrap_or_else(|| crate::layer::Reduced {
                done: vec![false; n],
                extent: None,
            }));
        }
        pieces.push(r.geometries);
    }
    let geometries = concat_parallel(pieces, Err(String::new()));
    Ok(RawLayer {
        geometries,
        attributes,
        crs,
        reduced,
    })
}

/// The pieces, concatenated in order, moved into place by all threads: the
/// fresh pages of millions of geometries are slow to touch, and one thread
/// copying them held the other idle (0.15 s of a 1 s run). `fill` holds
/// each slot until its item moves in (it should allocate nothing).
fn concat_parallel<T: Send + Sync + Clone>(mut pieces: Vec<Vec<T>>, fill: T) -> Vec<T> {
    use rayon::prelude::*;
    if pieces.len() <= 1 {
        return pieces.pop().unwrap_or_default();
    }
    let total = pieces.iter().map(Vec::len).sum();
    let mut all: Vec<T> = Vec::with_capacity(total);
    all.par_extend(rayon::iter::repeat_n(fill, total));
    let mut rest = all.as_mut_slice();
    let mut slots = Vec::with_capacity(pieces.len());
    for p in &pieces {
        let (head, tail) = rest.split_at_mut(p.len());
        slots.push(head);
        rest = tail;
    }
    slots
        .into_par_iter()
        .zip(pieces)
        .with_max_len(FILES_PER_TASK)
        .for_each(|(slot, piece)| {
            for (s, g) in slot.iter_mut().zip(piece) {
                *s = g;
            }
        });
    all
}

/// Append `part` to `all`, which ends with `total` items: the first part
/// is taken as it is, not copied (a layer read from one file or row group
/// is then never copied; fresh pages for millions of geometries are slow).
pub(crate) fn append_taking<T>(all: &mut Vec<T>, part: Vec<T>, total: usize) {
    if all.capacity() == 0 {
        *all = part;
        all.reserve(total.saturating_sub(all.len()));
    } else {
        all.extend(part);
    }
}

/// Read a layer from a file and check it (see [`Layer::from_raw`]).
///
/// ```
/// use terrastat_core::{read_layer, ReadOptions};
/// let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/communes.parquet");
/// let communes = read_layer("communes", &path, &ReadOptions::default())?;
/// assert_eq!(communes.len(), 36);
/// assert_eq!(communes.crs().to_string(), "EPSG:2154");
/// # Ok::<(), terrastat_core::Error>(())
/// ```
pub fn read_layer(name: &str, path: &Path, opts: &ReadOptions) -> Result<Layer> {
    let raw = read_raw(path, opts)?;
    Layer::from_raw(name, path, raw, opts.crs.clone(), opts.invalid)
}

/// Write `contents` to `path` atomically: a temporary file in the same
/// directory, flushed and synced, then renamed over `path`.
pub fn write_atomic(path: &Path, contents: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut s = Staging::default();
    s.write(path, contents)?;
    s.commit()
}

/// Several output files replaced together: each is written to a temporary
/// file beside its target (flushed and synced), and only once all are
/// written does [`Staging::commit`] rename them over their targets, in the
/// order written. A failed write (a full disk) or a drop without commit
/// removes the temporaries and leaves every previous file as it was.
///
/// ```
/// use std::io::Write;
/// use terrastat_core::io::Staging;
/// let dir = tempfile::tempdir().unwrap();
/// let mut s = Staging::default();
/// s.write(&dir.path().join("a.txt"), |f| Ok(f.write_all(b"a").unwrap()))?;
/// assert!(!dir.path().join("a.txt").exists());
/// s.commit()?;
/// assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"a");
/// # Ok::<(), terrastat_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Staging {
    /// (temporary, target) pairs written and not yet renamed.
    files: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Staging {
    /// Stage `text` as the new contents of `path`.
    pub fn text(&mut self, path: &Path, text: &str) -> Result<()> {
        self.write(path, |f| {
            f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
        })
    }

    /// Write `contents` to a temporary file for `path`.
    pub fn write(
        &mut self,
        path: &Path,
        contents: impl FnOnce(&mut File) -> Result<()>,
    ) -> Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            contents(&mut f)?;
            f.flush().map_err(|e| Error::io(&tmp, e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))
        })();
        match result {
            Ok(()) => {
                self.files.push((tmp, path.to_path_buf()));
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// A Parquet file (ZSTD, row groups of 64 Ki rows, `metadata` as
    /// key-value metadata), see [`write_parquet`].
    pub fn parquet(
        &mut self,
        path: &Path,
        batch: &RecordBatch,
        metadata: &[(String, String)],
    ) -> Result<()> {
        self.write(path, |f| {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                // Row groups of 64 Ki rows (GDAL's default): readers decode them in parallel.
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_key_value_metadata(Some(
                    metadata
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                        .collect(),
                ))
                .build();
            let mut w = ArrowWriter::try_new(
                f.try_clone().map_err(|e| Error::io(path, e))?,
                batch.schema(),
                Some(props),
            )
            .map_err(|e| Error::parquet(path, e))?;
            w.write(batch).map_err(|e| Error::parquet(path, e))?;
            w.close().map_err(|e| Error::parquet(path, e))?;
            Ok(())
        })
    }

    /// A CSV file with a header, see [`write_csv`].
    pub fn csv(&mut self, path: &Path, batch: &RecordBatch) -> Result<()> {
        self.write(path, |f| {
            let mut w = arrow_csv::WriterBuilder::new()
                .with_header(true)
                .build(f.try_clone().map_err(|e| Error::io(path, e))?);
            w.write(batch)?;
            Ok(())
        })
    }

    /// The (temporary, target) pairs written so far.
    pub fn pending(&self) -> &[(std::path::PathBuf, std::path::PathBuf)] {
        &self.files
    }

    /// Rename every temporary over its target, in the order written.
    pub fn commit(mut self) -> Result<()> {
        let files = std::mem::take(&mut self.files);
        let mut it = files.into_iter();
        while let Some((tmp, path)) = it.next() {
            if let Err(e) = std::fs::rename(&tmp, &path) {
                let _ = std::fs::remove_file(&tmp);
                self.files = it.collect();
                return Err(Error::io(&path, e));
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Rows per Parquet row group in written files.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Write a batch as Parquet (zstd), atomically, with extra key-value metadata.
pub fn write_parquet(
    path: &Path,
    batch: &RecordBatch,
    metadata: &[(String, String)],
) -> Result<()> {
    let mut s = Staging::default();
    s.parquet(path, batch, metadata)?;
    s.commit()
}

/// Read a whole Parquet file as one batch (no geometry decoding: e.g. a
/// run's output table).
pub fn read_table(path: &Path) -> Result<RecordBatch> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| Error::parquet(path, e))?
        .build()
        .map_err(|e| Error::parquet(path, e))?;
    let schema = arrow_array::RecordBatchReader::schema(&reader);
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow_select::concat::concat_batches(&schema, &batches)?)
}

/// Write a batch as CSV with a header, atomically.
pub fn write_csv(path: &Path, batch: &RecordBatch) -> Result<()> {
    let mut s = Staging::default();
    s.csv(path, batch)?;
    s.commit()
}
