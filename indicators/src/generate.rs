//! A seeded generator of realistic synthetic layers inside real communes:
//! buildings (footprints, floors, height, floor area, construction year,
//! material, energy class A–G, energy use), vegetation polygons and flood
//! corridors. No open registry holds French buildings or flood zones; this
//! stands in for them in samples and benchmarks. Same seed, same bytes,
//! whatever the thread count.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use geo::{Area, Buffer, Coord, Geometry, LineString, Polygon};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use terrastat_core::io::{with_geometry_and_bbox_columns, write_parquet};
use terrastat_core::{Layer, Location, PreparedPolygon};

use crate::error::{Error, Result};

/// What to generate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Number of buildings (shared among communes by population).
    pub buildings: usize,
    /// Number of vegetation polygons.
    pub vegetation: usize,
    /// Number of flood corridors.
    pub flood: usize,
    /// The seed.
    pub seed: u64,
    /// The population column of the communes.
    pub population_column: String,
    /// Write the buildings as a dataset partitioned by the H3 cell of this
    /// resolution containing each centroid (`buildings/h3_<r>=<cell>/part-0.parquet`)
    /// instead of one `buildings.parquet`.
    pub partition_h3: Option<u8>,
    /// With `partition_h3`: generate and write the buildings this many at a
    /// time (whole communes), so that memory follows the chunk and not the
    /// total. Chunk `k` writes `part-<k>.parquet` in each cell's directory;
    /// in path order the rows are the same as unchunked.
    pub chunk: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            buildings: 10_000,
            vegetation: 500,
            flood: 10,
            seed: 42,
            population_column: "population".into(),
            partition_h3: None,
            chunk: 4_000_000,
        }
    }
}

impl GenerateOptions {
    /// Partition the buildings by the H3 cell of resolution `res` of their centroids.
    #[must_use]
    pub fn partition_h3(mut self, res: Option<u8>) -> Self {
        self.partition_h3 = res;
        self
    }
    /// Set the chunk size (buildings generated and written at a time).
    #[must_use]
    pub fn chunk(mut self, n: usize) -> Self {
        self.chunk = n.max(1);
        self
    }
    /// Set the number of buildings.
    #[must_use]
    pub fn buildings(mut self, n: usize) -> Self {
        self.buildings = n;
        self
    }
    /// Set the number of vegetation polygons.
    #[must_use]
    pub fn vegetation(mut self, n: usize) -> Self {
        self.vegetation = n;
        self
    }
    /// Set the number of flood corridors.
    #[must_use]
    pub fn flood(mut self, n: usize) -> Self {
        self.flood = n;
        self
    }
    /// Set the seed.
    #[must_use]
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
}

fn rng_for(seed: u64, stream: u64, i: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
    r.set_stream(i);
    r
}

/// Largest-remainder apportionment of `n` among weights.
fn apportion(n: usize, w: &[f64]) -> Vec<usize> {
    let total: f64 = w.iter().sum();
    if total <= 0.0 || w.is_empty() {
        return vec![0; w.len()];
    }
    let exact: Vec<f64> = w.iter().map(|x| n as f64 * x / total).collect();
    let mut out: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let rest = n - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|a, b| {
        (exact[*b] - exact[*b].floor())
            .total_cmp(&(exact[*a] - exact[*a].floor()))
            .then(a.cmp(b))
    });
    for i in order.into_iter().take(rest) {
        out[i] += 1;
    }
    out
}

fn point_in(zone: &PreparedPolygon, rng: &mut ChaCha8Rng) -> Option<Coord> {
    let r = zone.rect()?;
    for _ in 0..1000 {
        let c = Coord {
            x: rng.random_range(r.min().x..=r.max().x),
            y: rng.random_range(r.min().y..=r.max().y),
        };
        if zone.locate(c) == Location::Inside {
            return Some(c);
        }
    }
    None
}

fn normalish(rng: &mut ChaCha8Rng) -> f64 {
    (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

struct Building {
    geom: Polygon,
    floors: i32,
    height: f64,
    floor_area: f64,
    year: i32,
    material: &'static str,
    energy_class: Option<&'static str>,
    energy_kwh: Option<f64>,
    dwellings: i32,
}

fn building(c: Coord, density: f64, rng: &mut ChaCha8Rng) -> Building {
    let w = (9.0 * (0.45 * normalish(rng)).exp()).clamp(4.0, 60.0);
    let d = (8.0 * (0.35 * normalish(rng)).exp()).clamp(4.0, 40.0);
    let t: f64 = rng.random_range(0.0..std::f64::consts::PI);
    let (s, co) = t.sin_cos();
    let corner = |u: f64, v: f64| Coord {
        x: round1(c.x + u * co - v * s),
        y: round1(c.y + u * s + v * co),
    };
    let ring = vec![
        corner(-w / 2.0, -d / 2.0),
        corner(w / 2.0, -d / 2.0),
        corner(w / 2.0, d / 2.0),
        corner(-w / 2.0, d / 2.0),
        corner(-w / 2.0, -d / 2.0),
    ];
    let geom = Polygon::new(LineString(ring), vec![]);
    let base = 1.0 + (density / 3000.0).min(8.0);
    let floors = (base + 1.5 * normalish(rng)).round().clamp(1.0, 20.0) as i32;
    let height = round1(floors as f64 * 3.0 + rng.random_range(0.5..2.5));
    let floor_area = round1(geom.unsigned_area() * floors as f64);
    let u: f64 = rng.random();
    let year = if u < 0.15 {
        rng.random_range(1850..1915)
    } else if u < 0.25 {
        rng.random_range(1915..1946)
    } else if u < 0.55 {
        rng.random_range(1946..1975)
    } else if u < 0.80 {
        rng.random_range(1975..2001)
    } else {
        rng.random_range(2001..2024)
    };
    let r = rng.random_range(0..4);
    let material = if year < 1915 {
        ["stone", "stone", "brick", "brick"][r]
    } else if year < 1946 {
        ["stone", "brick", "brick", "brick"][r]
    } else if year < 1975 {
        ["concrete", "concrete", "concrete", "brick"][r]
    } else {
        ["wood", "steel", "mixed", "concrete"][r]
    };
    const CLASSES: [&str; 7] = ["A", "B", "C", "D", "E", "F", "G"];
    const KWH: [f64; 7] = [50.0, 90.0, 150.0, 230.0, 330.0, 420.0, 500.0];
    let centre = if year < 1946 {
        4.3
    } else if year < 1975 {
        4.0
    } else if year < 2001 {
        3.0
    } else if year < 2013 {
        2.0
    } else {
        1.0
    };
    let k = (centre + 1.2 * normalish(rng)).round().clamp(0.0, 6.0) as usize;
    let known = rng.random::<f64>() >= 0.04;
    let energy_class = known.then_some(CLASSES[k]);
    let energy_kwh = known.then(|| round1(KWH[k] * rng.random_range(0.85..1.15)));
    let dwellings = ((floor_area / 70.0).round() as i32).max(1);
    Building {
        geom,
        floors,
        height,
        floor_area,
        year,
        material,
        energy_class,
        energy_kwh,
        dwellings,
    }
}

fn blob(c: Coord, radius: f64, rng: &mut ChaCha8Rng) -> Polygon {
    // Evenly spaced, jittered angles: a star-shaped ring that stays simple
    // after rounding.
    let k = rng.random_range(7..14);
    let step = std::f64::consts::TAU / k as f64;
    let angles: Vec<f64> = (0..k)
        .map(|i| (i as f64 + rng.random_range(0.2..0.8)) * step)
        .collect();
    let mut ring: Vec<Coord> = angles
        .iter()
        .map(|a| {
            let r = radius * rng.random_range(0.55..1.0);
            Coord {
                x: round1(c.x + r * a.cos()),
                y: round1(c.y + r * a.sin()),
            }
        })
        .collect();
    if let Some(first) = ring.first().copied() {
        ring.push(first);
    }
    Polygon::new(LineString(ring), vec![])
}

/// Counts of what was generated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerateSummary {
    /// Buildings written.
    pub buildings: usize,
    /// Vegetation polygons written.
    pub vegetation: usize,
    /// Flood corridors written.
    pub flood: usize,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Named attribute columns as one batch (all nullable).
fn attribute_batch(cols: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|(_, a)| a).collect(),
    )?)
}

/// [`write_layer`] as a directory of files, one per H3 cell of resolution
/// `res` holding the features' centroids (`h3_<res>=<cell>/part-0.parquet`,
/// `h3_<res>=none` for features without a centroid cell): every feature in
/// exactly one file, in its original order within the file. `chunk` numbers
/// the file (`part-<chunk>.parquet`, zero-padded so path order is chunk order).
fn write_partitioned(
    dir: &Path,
    res: u8,
    crs: &terrastat_core::Crs,
    geoms: Vec<Geometry>,
    cols: Vec<(&str, ArrayRef)>,
    chunk: usize,
) -> Result<Vec<PathBuf>> {
    use terrastat_core::h3::LonLat;
    let r = h3o::Resolution::try_from(res).map_err(|e| Error::Option {
        option: "partition-h3".into(),
        message: format!("partition resolution {res}: {e}"),
    })?;
    let lonlat = LonLat::new(crs)?;
    let keys: Vec<Option<h3o::CellIndex>> = geoms
        .par_iter()
        .map(|g| terrastat_core::centroid(g).and_then(|c| lonlat.cell_of(c, r).ok()))
        .collect();
    let mut groups = terrastat_core::h3::partition_by_parent(&keys, r)
        .into_iter()
        .map(|(cell, rows)| (cell.to_string(), rows))
        .collect::<Vec<_>>();
    let orphans: Vec<u32> = (0..keys.len() as u32)
        .filter(|i| keys[*i as usize].is_none())
        .collect();
    if !orphans.is_empty() {
        groups.push(("none".into(), orphans));
    }
    let batch = attribute_batch(cols)?;
    let mut files = Vec::with_capacity(groups.len());
    for (cell, rows) in groups {
        let d = dir.join(format!("h3_{res}={cell}"));
        std::fs::create_dir_all(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        let idx = arrow_array::UInt32Array::from(rows.clone());
        let part = arrow_select::take::take_record_batch(&batch, &idx)?;
        let g: Vec<Geometry> = rows.iter().map(|i| geoms[*i as usize].clone()).collect();
        let (part, meta) = with_geometry_and_bbox_columns(&part, "geometry", crs, &g)?;
        let path = d.join(format!("part-{chunk:05}.parquet"));
        write_parquet(&path, &part, &[("geo".into(), meta)])?;
        files.push(path);
    }
    Ok(files)
}

fn write_layer(
    path: &Path,
    crs: &terrastat_core::Crs,
    geoms: Vec<Geometry>,
    cols: Vec<(&str, ArrayRef)>,
) -> Result<()> {
    let batch = attribute_batch(cols)?;
    let (batch, meta) = with_geometry_and_bbox_columns(&batch, "geometry", crs, &geoms)?;
    write_parquet(path, &batch, &[("geo".into(), meta)])?;
    Ok(())
}

/// Footprints and attribute columns of generated buildings, ids from `first_id`.
fn building_columns(
    b: Vec<Building>,
    first_id: i64,
) -> (Vec<Geometry>, Vec<(&'static str, ArrayRef)>) {
    let nb = b.len() as i64;
    let bcols: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(first_id..first_id + nb)) as ArrayRef,
        ),
        (
            "floors",
            Arc::new(Int32Array::from_iter_values(b.iter().map(|x| x.floors))),
        ),
        (
            "height",
            Arc::new(Float64Array::from_iter_values(b.iter().map(|x| x.height))),
        ),
        (
            "floor_area",
            Arc::new(Float64Array::from_iter_values(
                b.iter().map(|x| x.floor_area),
            )),
        ),
        (
            "year",
            Arc::new(Int32Array::from_iter_values(b.iter().map(|x| x.year))),
        ),
        (
            "material",
            Arc::new(StringArray::from_iter_values(b.iter().map(|x| x.material))),
        ),
        (
            "energy_class",
            Arc::new(StringArray::from_iter(b.iter().map(|x| x.energy_class))),
        ),
        (
            "energy_kwh",
            Arc::new(Float64Array::from_iter(b.iter().map(|x| x.energy_kwh))),
        ),
        (
            "dwellings",
            Arc::new(Int32Array::from_iter_values(b.iter().map(|x| x.dwellings))),
        ),
    ];
    let geoms = b.into_iter().map(|x| Geometry::Polygon(x.geom)).collect();
    (geoms, bcols)
}

/// Generate `buildings.parquet`, `vegetation.parquet` and `flood.parquet`
/// (GeoParquet, WKB, in the communes' CRS) into `out`.
// Long because it draws every synthetic layer from one seeded generator in
// a fixed order; split, the draw order (and so the bytes) would be easy to break.
pub fn generate(communes: &Layer, opts: &GenerateOptions, out: &Path) -> Result<GenerateSummary> {
    let pop = communes.numeric_column(&opts.population_column)?;
    let zones: Vec<PreparedPolygon> = communes
        .geometries()
        .par_iter()
        .map(PreparedPolygon::from_geometry)
        .collect();
    let weights: Vec<f64> = pop.iter().map(|p| p.unwrap_or(0.0).max(0.0)).collect();
    let counts = apportion(opts.buildings, &weights);
    let seed = opts.seed;
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let crs = communes.crs().clone();
    // Communes in chunks of about `opts.chunk` buildings (one chunk unless
    // partitioned: a single file is written whole).
    let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    let mut acc = 0;
    for (i, c) in counts.iter().enumerate() {
        acc += c;
        if opts.partition_h3.is_some() && acc >= opts.chunk {
            chunks.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < counts.len() || chunks.is_empty() {
        chunks.push(start..counts.len());
    }
    let mut nb = 0;
    let mut bpath = out.join("buildings.parquet");
    for (k, range) in chunks.into_iter().enumerate() {
        let b: Vec<Building> = range
            .into_par_iter()
            .map(|i| {
                let mut rng = rng_for(seed, 1, i as u64);
                let area_km2 = zones[i].area() / 1e6;
                let density = if area_km2 > 0.0 {
                    weights[i] / area_km2
                } else {
                    0.0
                };
                (0..counts[i])
                    .filter_map(|_| {
                        point_in(&zones[i], &mut rng).map(|c| building(c, density, &mut rng))
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flatten()
            .collect();
        let first_id = nb as i64;
        nb += b.len();
        let (bgeoms, bcols) = building_columns(b, first_id);
        match opts.partition_h3 {
            None => write_layer(&bpath, &crs, bgeoms, bcols)?,
            Some(res) => {
                bpath = out.join("buildings");
                write_partitioned(&bpath, res, &crs, bgeoms, bcols, k)?;
            }
        }
    }
    // Vegetation: blobs centred uniformly over the communes' area.
    let areas: Vec<f64> = zones.iter().map(|z| z.area()).collect();
    let vcounts = apportion(opts.vegetation, &areas);
    let owners: Vec<usize> = vcounts
        .iter()
        .enumerate()
        .flat_map(|(i, n)| std::iter::repeat_n(i, *n))
        .collect();
    const KINDS: [&str; 4] = ["forest", "park", "grass", "garden"];
    let veg: Vec<(Polygon, &str)> = owners
        .par_iter()
        .enumerate()
        .filter_map(|(k, &i)| {
            let mut rng = rng_for(seed, 2, k as u64);
            let c = point_in(&zones[i], &mut rng)?;
            let radius = (60.0 * (0.7 * normalish(&mut rng)).exp()).clamp(10.0, 600.0);
            Some((
                blob(c, radius, &mut rng),
                KINDS[rng.random_range(0..KINDS.len())],
            ))
        })
        .collect();
    let nv = veg.len();
    let vpath = out.join("vegetation.parquet");
    write_layer(
        &vpath,
        &crs,
        veg.iter()
            .map(|(p, _)| Geometry::Polygon(p.clone()))
            .collect(),
        vec![
            (
                "id",
                Arc::new(Int64Array::from_iter_values(0..nv as i64)) as ArrayRef,
            ),
            (
                "kind",
                Arc::new(StringArray::from_iter_values(veg.iter().map(|(_, k)| *k))),
            ),
        ],
    )?;
    // Flood corridors: meandering buffered lines across the extent.
    let extent = communes.bounding_rect().ok_or_else(|| Error::Input {
        input: format!("communes `{}`", communes.name()),
        message: "no extent (no feature)".into(),
    })?;
    const LEVELS: [&str; 3] = ["high", "medium", "low"];
    let flood: Vec<(geo::MultiPolygon, &str)> = (0..opts.flood)
        .into_par_iter()
        .map(|k| {
            let mut rng = rng_for(seed, 3, k as u64);
            let mut c = Coord {
                x: rng.random_range(extent.min().x..=extent.max().x),
                y: rng.random_range(extent.min().y..=extent.max().y),
            };
            let mut heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            let steps = rng.random_range(8..25);
            let span = (extent.width().max(extent.height()) / 40.0).max(50.0);
            let mut pts = vec![c];
            for _ in 0..steps {
                heading += 0.5 * normalish(&mut rng);
                let len = span * rng.random_range(0.5..1.5);
                c = Coord {
                    x: round1(c.x + len * heading.cos()),
                    y: round1(c.y + len * heading.sin()),
                };
                pts.push(c);
            }
            let width = span * rng.random_range(0.05..0.3);
            (
                LineString(pts).buffer(width),
                LEVELS[rng.random_range(0..3)],
            )
        })
        .collect();
    let nf = flood.len();
    let fpath = out.join("flood.parquet");
    write_layer(
        &fpath,
        &crs,
        flood
            .iter()
            .map(|(p, _)| Geometry::MultiPolygon(p.clone()))
            .collect(),
        vec![
            (
                "id",
                Arc::new(Int64Array::from_iter_values(0..nf as i64)) as ArrayRef,
            ),
            (
                "level",
                Arc::new(StringArray::from_iter_values(flood.iter().map(|(_, l)| *l))),
            ),
        ],
    )?;
    let _ = DataType::Null;
    Ok(GenerateSummary {
        buildings: nb,
        vegetation: nv,
        flood: nf,
        files: vec![bpath, vpath, fpath],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact() {
        let a = apportion(10, &[1.0, 1.0, 1.0]);
        assert_eq!(a.iter().sum::<usize>(), 10);
        assert_eq!(a, vec![4, 3, 3]);
        assert_eq!(apportion(5, &[0.0, 0.0]), vec![0, 0]);
    }
}
