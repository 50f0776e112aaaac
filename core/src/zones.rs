//! Zones: the territory units indicators are computed for (communes, IRIS,
//! départements, a square grid, any polygons).
//!
//! `Zones`: prepared polygons + box index + lazily built `SetGrid` + id column;
//! from a polygon layer, a square grid or H3 cells (`ZoneKind`); `key_columns`
//! lead every output (`h3`, `h3_str` for H3). Roll-up levels (`Zones::rollup`
//! by a column, `Zones::h3_rollup` by parent cell) carry a `Grouping` (base
//! layer + members per zone); their polygons gather the members'.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use geo::{Area, BoundingRect, Geometry, MultiPolygon, Rect};
use rayon::prelude::*;

use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::index::{BoxIndex, PreparedPolygon};
use crate::layer::{GeomKind, Layer};

/// How a zone layer was made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ZoneKind {
    /// Polygons read from a file.
    Polygons {
        /// The file.
        source: PathBuf,
    },
    /// A regular square grid.
    Grid {
        /// Cell size in CRS units (metres).
        cell: f64,
    },
    /// Groups of the zones of another zone layer (a roll-up).
    Rollup {
        /// The zone layer grouped.
        base: String,
        /// The grouping: a column of the base zones, or `h3 parent` for H3 cells.
        by: String,
    },
    /// H3 cells (see [`crate::h3`]).
    H3 {
        /// The resolution (0–15).
        resolution: u8,
        /// How the cells were chosen.
        mode: CellMode,
    },
}

/// A zone layer: one polygon per zone, an id column, the other attributes,
/// and the indexes used by overlays.
#[derive(Debug)]
pub struct Zones {
    name: String,
    id_column: String,
    attributes: RecordBatch,
    prepared: Vec<PreparedPolygon>,
    index: BoxIndex,
    crs: Crs,
    kind: ZoneKind,
    grid: std::sync::OnceLock<Option<SetGrid>>,
    h3: Option<Arc<H3Zones>>,
    grouping: Option<Grouping>,
}

/// How the zones of a roll-up level group the zones of their base layer.
#[derive(Debug, Clone)]
pub struct Grouping {
    /// The base zone layer.
    pub base: String,
    /// For each zone of the level, its base zones (ascending).
    pub members: Vec<Vec<u32>>,
}

use crate::geometry::as_multipolygon as to_multipolygon;
use crate::h3::{CellMode, H3Zones, LonLat};
use crate::setgrid::{default_cells, SetGrid};

impl Zones {
    /// Zones from a polygon layer, identified by column `id` (whose values
    /// must be unique and not null).
    pub fn from_layer(name: impl Into<String>, layer: &Layer, id: &str) -> Result<Zones> {
        let name = name.into();
        if layer.kind() != GeomKind::Polygon {
            return Err(Error::GeometryType {
                layer: format!("zones `{name}` ({})", layer.source().display()),
                message: format!(
                    "zones must be polygons, found {:?} geometries",
                    layer.kind()
                ),
            });
        }
        let ids = layer.column(id)?;
        check_ids(&name, layer.source(), id, ids)?;
        let polys: Vec<MultiPolygon> = layer
            .geometries()
            .iter()
            .map(|g| to_multipolygon(g).unwrap_or_else(|| MultiPolygon(vec![])))
            .collect();
        Ok(Self::build(
            name,
            id.to_string(),
            layer.attributes().clone(),
            polys,
            layer.crs().clone(),
            ZoneKind::Polygons {
                source: layer.source().to_path_buf(),
            },
        ))
    }

    /// A square grid of `cell`-sized cells (in CRS units), aligned on
    /// multiples of `cell`, over `extent`; with `cover`, only the cells that
    /// intersect `cover` are kept. The id column `cell` reads like
    /// `1000mN6860000E650000` (size, then the south-west corner).
    pub fn grid(
        name: impl Into<String>,
        crs: Crs,
        extent: Rect,
        cell: f64,
        cover: Option<&Zones>,
    ) -> Result<Zones> {
        let name = name.into();
        if !(cell.is_finite() && cell > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "zones `{name}`: grid cell size must be a positive number, got {cell}"
            )));
        }
        let x0 = (extent.min().x / cell).floor() as i64;
        let y0 = (extent.min().y / cell).floor() as i64;
        let x1 = (extent.max().x / cell).ceil() as i64;
        let y1 = (extent.max().y / cell).ceil() as i64;
        let n = (x1 - x0).max(0) as u64 * (y1 - y0).max(0) as u64;
        if n > 50_000_000 {
            return Err(Error::InvalidArgument(format!(
                "zones `{name}`: a {cell} grid over this extent has {n} cells (more than 50 million)"
            )));
        }
        let cells: Vec<(i64, i64)> = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .collect();
        let kept: Vec<(i64, i64, MultiPolygon)> = cells
            .into_par_iter()
            .filter_map(|(x, y)| {
                let r = Rect::new(
                    geo::coord! { x: x as f64 * cell, y: y as f64 * cell },
                    geo::coord! { x: (x + 1) as f64 * cell, y: (y + 1) as f64 * cell },
                );
                let poly = MultiPolygon(vec![r.to_polygon()]);
                if let Some(cover) = cover {
                    let g = Geometry::MultiPolygon(poly.clone());
                    let hit = cover.index().intersecting(&r).into_iter().any(|z| {
                        cover.prepared()[z as usize]
                            .piece(&g, &r, r.unsigned_area())
                            .is_some_and(|p| p.measure > 0.0)
                    });
                    if !hit {
                        return None;
                    }
                }
                Some((x, y, poly))
            })
            .collect();
        let size = if cell.fract() == 0.0 {
            format!("{}m", cell as i64)
        } else {
            format!("{cell}m")
        };
        let ids: Vec<String> = kept
            .iter()
            .map(|(x, y, _)| {
                format!(
                    "{size}N{}E{}",
                    (*y as f64 * cell) as i64,
                    (*x as f64 * cell) as i64
                )
            })
            .collect();
        let polys = kept.into_iter().map(|(_, _, p)| p).collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "cell",
            arrow_schema::DataType::Utf8,
            false,
        )]));
        let attributes =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(ids)) as ArrayRef])?;
        Ok(Self::build(
            name,
            "cell".into(),
            attributes,
            polys,
            crs,
            ZoneKind::Grid { cell },
        ))
    }

    fn build(
        name: String,
        id_column: String,
        attributes: RecordBatch,
        polys: Vec<MultiPolygon>,
        crs: Crs,
        kind: ZoneKind,
    ) -> Zones {
        let prepared: Vec<PreparedPolygon> =
            polys.into_par_iter().map(PreparedPolygon::new).collect();
        let index = BoxIndex::new(prepared.iter().map(|p| p.rect()));
        Zones {
            name,
            id_column,
            attributes,
            prepared,
            index,
            crs,
            kind,
            grid: std::sync::OnceLock::new(),
            h3: None,
            grouping: None,
        }
    }

    /// The roll-up of `base` by the values of its column `column`: one zone
    /// per distinct value (sorted), whose polygon gathers its members'
    /// polygons and whose id column is `column`. Indicators on it are
    /// computed from the base zones' attributions (see the README), equal to
    /// a direct computation on the gathered polygons. Null values are an error.
    pub fn rollup(name: impl Into<String>, base: &Zones, column: &str) -> Result<Zones> {
        let name = name.into();
        let col = crate::layer::column_of(
            &base.attributes,
            || format!("zones `{}`", base.name),
            column,
        )?;
        if col.null_count() > 0 {
            return Err(Error::InvalidArgument(format!(
                "zones `{}`: roll-up column `{column}` has {} null values (every zone needs a group)",
                base.name,
                col.null_count()
            )));
        }
        let keys = arrow_cast::cast(col, &arrow_schema::DataType::Utf8)?;
        let keys = keys
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::InvalidArgument("roll-up key cast failed".into()))?;
        let mut groups: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
        for z in 0..keys.len() {
            groups.entry(keys.value(z)).or_default().push(z as u32);
        }
        let ids: Vec<&str> = groups.keys().copied().collect();
        let attributes = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                column,
                arrow_schema::DataType::Utf8,
                false,
            )])),
            vec![Arc::new(StringArray::from(ids))],
        )?;
        let members: Vec<Vec<u32>> = groups.into_values().collect();
        Ok(Self::from_groups(
            name,
            base,
            column.to_string(),
            attributes,
            members,
            ZoneKind::Rollup {
                base: base.name.clone(),
                by: column.to_string(),
            },
        ))
    }

    /// The roll-up of H3 zones to their parent cells at `resolution`: one
    /// zone per parent, gathering its children among the base cells (the
    /// children of an H3 cell do not tile it exactly, so the zone is the
    /// union of the children, not the parent's hexagon).
    pub fn h3_rollup(name: impl Into<String>, base: &Zones, resolution: u8) -> Result<Zones> {
        let name = name.into();
        let h3 = base.h3.as_ref().ok_or_else(|| {
            Error::InvalidArgument(format!("zones `{}` are not H3 cells", base.name))
        })?;
        let res = crate::h3::resolution(resolution)?;
        if res >= h3.resolution {
            return Err(Error::InvalidArgument(format!(
                "zones `{name}`: resolution {resolution} is not coarser than the {} of `{}`",
                u8::from(h3.resolution),
                base.name
            )));
        }
        let mut groups: std::collections::BTreeMap<h3o::CellIndex, Vec<u32>> = Default::default();
        for (z, c) in h3.cells.iter().enumerate() {
            if let Some(p) = c.parent(res) {
                groups.entry(p).or_default().push(z as u32);
            }
        }
        let parents: Vec<h3o::CellIndex> = groups.keys().copied().collect();
        let attributes = h3_attributes(&parents)?;
        let members: Vec<Vec<u32>> = groups.into_values().collect();
        Ok(Self::from_groups(
            name,
            base,
            "h3".into(),
            attributes,
            members,
            ZoneKind::Rollup {
                base: base.name.clone(),
                by: format!("h3 parent at resolution {resolution}"),
            },
        ))
    }

    fn from_groups(
        name: String,
        base: &Zones,
        id_column: String,
        attributes: RecordBatch,
        members: Vec<Vec<u32>>,
        kind: ZoneKind,
    ) -> Zones {
        let polys: Vec<MultiPolygon> = members
            .iter()
            .map(|m| {
                MultiPolygon(
                    m.iter()
                        .flat_map(|z| base.prepared[*z as usize].geometry().0.iter().cloned())
                        .collect(),
                )
            })
            .collect();
        let mut z = Self::build(name, id_column, attributes, polys, base.crs.clone(), kind);
        z.grouping = Some(Grouping {
            base: base.name.clone(),
            members,
        });
        z
    }

    /// For a roll-up level, how it groups its base zones.
    pub fn grouping(&self) -> Option<&Grouping> {
        self.grouping.as_ref()
    }

    /// H3 cells of resolution `resolution` chosen by `mode` over `covers`
    /// (polygons in the working CRS `crs`); see [`crate::h3`]. The id column
    /// `h3` holds the cell index (`u64`), `h3_str` its string form.
    ///
    /// ```
    /// use terrastat_core::{read_layer, ReadOptions, Zones, h3::CellMode};
    /// let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/communes.parquet");
    /// let communes = read_layer("communes", &path, &ReadOptions::default())?;
    /// let communes = Zones::from_layer("communes", &communes, "insee")?;
    /// let hex = Zones::h3_cells("hex6", communes.crs().clone(), communes.prepared(), 6, CellMode::Covers)?;
    /// assert!(hex.len() > 10);
    /// // The cells cover the communes: their total area is at least the communes'.
    /// let area = |z: &Zones| z.prepared().iter().map(|p| p.area()).sum::<f64>();
    /// assert!(area(&hex) >= area(&communes));
    /// # Ok::<(), terrastat_core::Error>(())
    /// ```
    pub fn h3_cells(
        name: impl Into<String>,
        crs: Crs,
        covers: &[PreparedPolygon],
        resolution: u8,
        mode: CellMode,
    ) -> Result<Zones> {
        let name = name.into();
        let res = crate::h3::resolution(resolution)?;
        let lonlat = LonLat::new(&crs)?;
        let h3 = H3Zones::new(covers, res, mode, lonlat)?;
        let polys = h3.polygons()?;
        let attributes = h3_attributes(&h3.cells)?;
        let mut z = Self::build(
            name,
            "h3".into(),
            attributes,
            polys,
            crs,
            ZoneKind::H3 { resolution, mode },
        );
        z.h3 = Some(Arc::new(h3));
        Ok(z)
    }

    /// The H3 side of H3 zones (`None` for other zones).
    pub fn h3(&self) -> Option<&H3Zones> {
        self.h3.as_deref()
    }

    /// The key columns that lead every output table: the id column, and for
    /// H3 zones also `h3_str`.
    pub fn key_columns(&self) -> Vec<&str> {
        if self.id_column == "h3" && self.attributes.column_by_name("h3_str").is_some() {
            vec![self.id_column.as_str(), "h3_str"]
        } else {
            vec![self.id_column.as_str()]
        }
    }

    /// Build now the grid over the zones that answers most point-to-zone
    /// queries without touching the polygons (otherwise built on first
    /// use): to build the grids of several zone layers in parallel, before
    /// the features come.
    pub fn prepare_grid(&self) {
        self.set_grid();
    }

    /// A [`SetGrid`] over the zones (built on first use), which answers
    /// most point-to-zone queries without touching the polygons.
    pub(crate) fn set_grid(&self) -> Option<&SetGrid> {
        self.grid
            .get_or_init(|| SetGrid::new(&self.prepared, default_cells(&self.prepared)))
            .as_ref()
    }

    /// The zone layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The name of the id column.
    pub fn id_column(&self) -> &str {
        &self.id_column
    }
    /// The id values, one per zone.
    pub fn ids(&self) -> Result<&ArrayRef> {
        self.attributes
            .column_by_name(&self.id_column)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("zones `{}` lost their id column", self.name))
            })
    }
    /// All attribute columns (the id among them).
    pub fn attributes(&self) -> &RecordBatch {
        &self.attributes
    }
    /// Number of zones.
    pub fn len(&self) -> usize {
        self.prepared.len()
    }
    /// Whether there is no zone.
    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }
    /// The prepared zone polygons.
    pub fn prepared(&self) -> &[PreparedPolygon] {
        &self.prepared
    }
    /// The R-tree of zone boxes.
    pub fn index(&self) -> &BoxIndex {
        &self.index
    }
    /// The CRS.
    pub fn crs(&self) -> &Crs {
        &self.crs
    }
    /// How the zones were made.
    pub fn kind(&self) -> &ZoneKind {
        &self.kind
    }
    /// The zone polygons as geometries (for writing).
    pub fn geometries(&self) -> Vec<Geometry> {
        self.prepared
            .iter()
            .map(|p| Geometry::MultiPolygon(p.geometry().clone()))
            .collect()
    }
    /// The bounding box of all zones.
    pub fn bounding_rect(&self) -> Option<Rect> {
        let mut it = self.prepared.iter().filter_map(|p| p.rect().copied());
        let first = it.next()?;
        Some(it.fold(first, |a, b| {
            geo::GeometryCollection(vec![Geometry::Rect(a), Geometry::Rect(b)])
                .bounding_rect()
                .unwrap_or(a)
        }))
    }
}

/// The id columns of H3 zones: `h3` (the cell index) and `h3_str`.
fn h3_attributes(cells: &[h3o::CellIndex]) -> Result<RecordBatch> {
    let ids: Vec<u64> = cells.iter().map(|c| u64::from(*c)).collect();
    let strs: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("h3", arrow_schema::DataType::UInt64, false),
            Field::new("h3_str", arrow_schema::DataType::Utf8, false),
        ])),
        vec![
            Arc::new(arrow_array::UInt64Array::from(ids)),
            Arc::new(StringArray::from(strs)),
        ],
    )?)
}

fn check_ids(name: &str, source: &Path, id: &str, ids: &ArrayRef) -> Result<()> {
    if ids.null_count() > 0 {
        return Err(Error::InvalidArgument(format!(
            "zones `{name}` ({}): id column `{id}` has {} null values",
            source.display(),
            ids.null_count()
        )));
    }
    let strings = arrow_cast::cast(ids, &arrow_schema::DataType::Utf8)?;
    let strings = strings
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::InvalidArgument("id cast failed".into()))?;
    let mut seen = std::collections::HashSet::with_capacity(strings.len());
    for v in strings.iter().flatten() {
        if !seen.insert(v) {
            return Err(Error::InvalidArgument(format!(
                "zones `{name}` ({}): id `{v}` appears more than once in column `{id}`",
                source.display()
            )));
        }
    }
    Ok(())
}
