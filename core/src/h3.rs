//! H3 cells (with [`h3o`]) as territory units and as an index.
//!
//! # Cells in the working CRS
//!
//! A cell's polygon in the working CRS joins its topological vertexes
//! ([`CellIndex::vertexes`], each computed once from its canonical
//! [`h3o::VertexIndex`], so neighbours share bit-identical corners)
//! projected from WGS84 longitude/latitude with straight edges. The cells
//! of a resolution therefore tile the plane exactly, without gap or overlap,
//! and every area is computed on these polygons: the share of a cell is
//! `area(cell ∩ polygon) / area(cell)` with the cell's true area, never the
//! nominal average area of the resolution (off by up to ~20 % across
//! France). H3 edges are great-circle arcs on the icosahedron faces; the
//! straight projected edges depart from them by millimetres at resolution 7
//! and less at finer ones.
//!
//! # Selection modes
//!
//! For a cover polygon `P` and a cell `C` (both closed sets in the working
//! CRS), exact with robust orientation predicates:
//! - [`CellMode::Centroid`]: the cell's centre (H3's own) lies in `P`
//!   (boundary included);
//! - [`CellMode::Contains`]: `C ⊆ P`;
//! - [`CellMode::Intersects`]: `C ∩ P ≠ ∅` (touching counts), so every part
//!   of `P` is covered and a polygon smaller than a cell still gets one;
//! - [`CellMode::Covers`]: the interiors meet, i.e. `area(C ∩ P) > 0`: the
//!   smallest set of cells whose union covers `P` (cells tile the plane, so
//!   no other cell can cover the part of `P` inside `C`).
//!
//! # Projection
//!
//! Longitude/latitude conversions use `proj4rs` (pure Rust, EPSG
//! definitions from `crs-definitions`) in every build, so H3 results do not
//! depend on the `proj` feature.

use std::collections::{HashMap, HashSet, VecDeque};

use geo::{BoundingRect, Coord, Geometry, LineString, MultiPolygon, Polygon, Rect};
use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;
use robust::{orient2d, Coord as RCoord};

use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::index::{clip_multipolygon_to_rect, Location, PreparedPolygon};
use crate::layer::Layer;
use crate::overlay::centroid;

/// How cells are chosen for a cover polygon; see the module docs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CellMode {
    /// The cell's centre lies in the polygon (boundary included).
    Centroid,
    /// The cell lies entirely in the polygon.
    Contains,
    /// The cell meets the polygon (touching counts).
    Intersects,
    /// The cell's interior meets the polygon's: the smallest covering set.
    #[default]
    Covers,
}

/// Conversions between a projected working CRS and WGS84 longitude/latitude.
#[derive(Debug)]
pub struct LonLat {
    crs: Crs,
    working: proj4rs::Proj,
    wgs84: proj4rs::Proj,
}

impl LonLat {
    /// The conversions for `crs`, which must be a projected CRS with an EPSG code.
    pub fn new(crs: &Crs) -> Result<LonLat> {
        let code = crs
            .epsg_code()
            .and_then(|c| u16::try_from(c).ok())
            .ok_or_else(|| {
                Error::Crs(format!(
                    "H3 needs a working CRS with an EPSG code, not {crs}"
                ))
            })?;
        let working = proj4rs::Proj::from_epsg_code(code)
            .map_err(|e| Error::Crs(format!("EPSG:{code} for H3: {e}")))?;
        if working.is_latlong() {
            return Err(Error::Crs(format!(
                "H3 zones need a projected working CRS (areas in metres), not the geographic {crs}"
            )));
        }
        let wgs84 = proj4rs::Proj::from_epsg_code(4326)
            .map_err(|e| Error::Crs(format!("EPSG:4326: {e}")))?;
        Ok(LonLat {
            crs: crs.clone(),
            working,
            wgs84,
        })
    }

    /// The working CRS.
    pub fn crs(&self) -> &Crs {
        &self.crs
    }

    /// A point of the working CRS as an H3 latitude/longitude.
    pub fn to_latlng(&self, c: Coord) -> Result<LatLng> {
        let mut p = (c.x, c.y, 0.0);
        proj4rs::transform::transform(&self.working, &self.wgs84, &mut p)
            .map_err(|e| Error::Crs(format!("({}, {}) to longitude/latitude: {e}", c.x, c.y)))?;
        LatLng::new(p.1.to_degrees(), p.0.to_degrees())
            .map_err(|e| Error::Crs(format!("({}, {}) to longitude/latitude: {e}", c.x, c.y)))
    }

    /// An H3 latitude/longitude in the working CRS.
    pub fn from_latlng(&self, ll: LatLng) -> Result<Coord> {
        let mut p = (ll.lng_radians(), ll.lat_radians(), 0.0);
        proj4rs::transform::transform(&self.wgs84, &self.working, &mut p).map_err(|e| {
            Error::Crs(format!("({}, {}) to {}: {e}", ll.lat(), ll.lng(), self.crs))
        })?;
        if !(p.0.is_finite() && p.1.is_finite()) {
            return Err(Error::Crs(format!(
                "({}, {}) has no coordinates in {}",
                ll.lat(),
                ll.lng(),
                self.crs
            )));
        }
        Ok(Coord { x: p.0, y: p.1 })
    }

    /// The polygon of `cell` in the working CRS (see the module docs),
    /// counter-clockwise.
    pub fn cell_polygon(&self, cell: CellIndex) -> Result<Polygon> {
        let mut ring = cell
            .vertexes()
            .map(|v| self.from_latlng(LatLng::from(v)))
            .collect::<Result<Vec<Coord>>>()?;
        if signed_area(&ring) < 0.0 {
            ring.reverse();
        }
        // A cell cut by the projection's discontinuity (the antimeridian of
        // a world projection) comes out as a strip across the map: its centre
        // no longer maps back into it.
        let n = ring.len() as f64;
        let mid = Coord {
            x: ring.iter().map(|c| c.x).sum::<f64>() / n,
            y: ring.iter().map(|c| c.y).sum::<f64>() / n,
        };
        if self.cell_of(mid, cell.resolution()).ok() != Some(cell) {
            return Err(Error::Crs(format!(
                "H3 cell {cell} cannot be drawn in {} (it crosses the projection's edge, e.g. the antimeridian)",
                self.crs
            )));
        }
        ring.push(ring[0]);
        Ok(Polygon::new(LineString(ring), vec![]))
    }

    /// The cell at resolution `res` holding point `c` of the working CRS.
    pub fn cell_of(&self, c: Coord, res: Resolution) -> Result<CellIndex> {
        Ok(self.to_latlng(c)?.to_cell(res))
    }
}

fn signed_area(ring: &[Coord]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a.x * b.y - b.x * a.y
        })
        .sum::<f64>()
        / 2.0
}

/// Parse an H3 resolution (0 to 15).
pub fn resolution(r: u8) -> Result<Resolution> {
    Resolution::try_from(r)
        .map_err(|_| Error::InvalidArgument(format!("H3 resolution {r} is not in 0..=15")))
}

/// The cells of resolution `res` chosen by `mode` for the union of `covers`
/// (polygons of the working CRS), sorted by index, each once.
pub fn cover_cells(
    covers: &[PreparedPolygon],
    res: Resolution,
    mode: CellMode,
    lonlat: &LonLat,
) -> Result<Vec<CellIndex>> {
    let per: Vec<Vec<CellIndex>> = covers
        .par_iter()
        .map(|p| polygon_cells(p, res, mode, lonlat))
        .collect::<Result<_>>()?;
    let mut cells: Vec<CellIndex> = per.into_iter().flatten().collect();
    cells.par_sort_unstable();
    cells.dedup();
    Ok(cells)
}

/// The most cells one cover polygon may make terrastat test.
const MAX_CELLS: usize = 50_000_000;

/// The cells of one cover polygon: a breadth-first walk over the cells
/// whose box meets the polygon's box (a connected set that holds every cell
/// meeting the polygon), each then tested exactly.
fn polygon_cells(
    p: &PreparedPolygon,
    res: Resolution,
    mode: CellMode,
    lonlat: &LonLat,
) -> Result<Vec<CellIndex>> {
    let Some(r) = p.rect().copied() else {
        return Ok(vec![]);
    };
    let estimate = r.width() * r.height() / res.area_m2();
    if estimate > MAX_CELLS as f64 {
        return Err(Error::InvalidArgument(format!(
            "an H3 cover at resolution {res} over a {:.0} × {:.0} m box would test about {estimate:.0} cells (more than {MAX_CELLS}); use a coarser resolution",
            r.width(),
            r.height()
        )));
    }
    let centre = Coord {
        x: (r.min().x + r.max().x) / 2.0,
        y: (r.min().y + r.max().y) / 2.0,
    };
    let seed = lonlat.cell_of(centre, res)?;
    let mut seen: HashSet<CellIndex> = HashSet::new();
    let mut queue: VecDeque<CellIndex> = VecDeque::new();
    // The seed's ring too: the projected cell holding the centre may be a
    // neighbour of H3's by a rounding-sized sliver.
    for c in seed.grid_disk::<Vec<_>>(1) {
        if seen.insert(c) {
            queue.push_back(c);
        }
    }
    let mut out = Vec::new();
    while let Some(cell) = queue.pop_front() {
        let poly = lonlat.cell_polygon(cell)?;
        let Some(cr) = poly.bounding_rect() else {
            continue;
        };
        if !rects_meet(&cr, &r) {
            continue;
        }
        if selected(p, cell, &poly, &cr, mode, lonlat)? {
            out.push(cell);
        }
        for n in cell.grid_disk::<Vec<_>>(1) {
            if seen.insert(n) {
                queue.push_back(n);
            }
        }
    }
    Ok(out)
}

fn rects_meet(a: &Rect, b: &Rect) -> bool {
    a.min().x <= b.max().x
        && b.min().x <= a.max().x
        && a.min().y <= b.max().y
        && b.min().y <= a.max().y
}

/// Whether `cell` (polygon `c`, box `cr`) is selected for `p` under `mode`.
fn selected(
    p: &PreparedPolygon,
    cell: CellIndex,
    c: &Polygon,
    cr: &Rect,
    mode: CellMode,
    lonlat: &LonLat,
) -> Result<bool> {
    if mode == CellMode::Centroid {
        let centre = lonlat.from_latlng(LatLng::from(cell))?;
        return Ok(p.locate(centre) != Location::Outside);
    }
    if mode == CellMode::Intersects {
        return Ok(p.intersects(&Geometry::Polygon(c.clone()), cr));
    }
    // Away from the boundary the cell is all inside or all outside.
    if !p.boundary_near(cr) {
        let inside = c.exterior().0[0];
        return Ok(p.locate(inside) == Location::Inside);
    }
    let rel = relation(p, c, cr);
    Ok(match mode {
        CellMode::Covers => match rel.interiors_meet {
            Some(v) => v,
            None => relate_with(p, c, cr, |m| m.is_intersects() && !m.is_touches()),
        },
        _ => match rel.within {
            Some(v) => v,
            None => relate_with(p, c, cr, |m| m.is_covers()),
        },
    })
}

/// What robust predicates decide about a convex cell `c` and polygon `p`
/// (`None`: undecided, the boundaries touch).
struct Relation {
    interiors_meet: Option<bool>,
    within: Option<bool>,
}

fn rc(c: Coord) -> RCoord<f64> {
    RCoord { x: c.x, y: c.y }
}

fn relation(p: &PreparedPolygon, c: &Polygon, cr: &Rect) -> Relation {
    let ring = &c.exterior().0;
    let n = ring.len() - 1;
    let (mut c_in, mut c_out, mut c_on) = (false, false, false);
    for v in &ring[..n] {
        match p.locate(*v) {
            Location::Inside => c_in = true,
            Location::Outside => c_out = true,
            Location::Boundary => c_on = true,
        }
    }
    let (mut cross, mut touch, mut p_in) = (false, false, false);
    let env = rstar::AABB::from_corners(geo::Point::from(cr.min()), geo::Point::from(cr.max()));
    for e in p.edges().locate_in_envelope_intersecting(&env) {
        for end in [e.start, e.end] {
            // Position of the polygon's vertex relative to the convex, counter-clockwise cell.
            let mut inside = true;
            let mut on = false;
            for i in 0..n {
                let o = orient2d(rc(ring[i]), rc(ring[i + 1]), rc(end));
                if o < 0.0 {
                    inside = false;
                    on = false;
                    break;
                }
                if o == 0.0 {
                    on = true;
                }
            }
            if inside && on {
                touch = true;
            } else if inside {
                p_in = true;
            }
        }
        for i in 0..n {
            let (a, b) = (ring[i], ring[i + 1]);
            let o1 = orient2d(rc(a), rc(b), rc(e.start));
            let o2 = orient2d(rc(a), rc(b), rc(e.end));
            let o3 = orient2d(rc(e.start), rc(e.end), rc(a));
            let o4 = orient2d(rc(e.start), rc(e.end), rc(b));
            if o1 * o2 < 0.0 && o3 * o4 < 0.0 {
                cross = true;
            } else if (o1 == 0.0 || o2 == 0.0 || o3 == 0.0 || o4 == 0.0)
                && segments_meet(a, b, e.start, e.end, [o1, o2, o3, o4])
            {
                touch = true;
            }
        }
    }
    let undecided = touch || c_on;
    Relation {
        interiors_meet: if c_in || p_in || cross {
            Some(true)
        } else if undecided {
            None
        } else {
            Some(false)
        },
        within: if c_out || cross || p_in {
            Some(false)
        } else if undecided {
            None
        } else {
            Some(true)
        },
    }
}

/// Whether segments `a–b` and `c–d` meet, given their four orientations.
fn segments_meet(a: Coord, b: Coord, c: Coord, d: Coord, o: [f64; 4]) -> bool {
    let on = |p: Coord, q: Coord, r: Coord| {
        r.x >= p.x.min(q.x) && r.x <= p.x.max(q.x) && r.y >= p.y.min(q.y) && r.y <= p.y.max(q.y)
    };
    (o[0] == 0.0 && on(a, b, c))
        || (o[1] == 0.0 && on(a, b, d))
        || (o[2] == 0.0 && on(c, d, a))
        || (o[3] == 0.0 && on(c, d, b))
        || (o[0] * o[1] < 0.0 && o[2] * o[3] < 0.0)
}

/// The DE-9IM relation of `p` (clipped to a box around the cell, which
/// changes nothing near it) and cell `c`, tested by `test`.
fn relate_with(
    p: &PreparedPolygon,
    c: &Polygon,
    cr: &Rect,
    test: impl Fn(&geo::relate::IntersectionMatrix) -> bool,
) -> bool {
    use geo::Relate;
    let m = cr.width().max(cr.height());
    let bx = Rect::new(
        Coord {
            x: cr.min().x - m,
            y: cr.min().y - m,
        },
        Coord {
            x: cr.max().x + m,
            y: cr.max().y + m,
        },
    );
    let clipped: MultiPolygon = clip_multipolygon_to_rect(p.geometry(), &bx);
    test(&clipped.relate(c))
}

/// The H3 cell of each feature's centroid at `res` (`None` for a feature
/// without centroid). O(1) per feature.
pub fn centroid_cells(
    layer: &Layer,
    res: Resolution,
    lonlat: &LonLat,
) -> Result<Vec<Option<CellIndex>>> {
    layer
        .geometries()
        .par_iter()
        .map(|g| centroid(g).map(|c| lonlat.cell_of(c, res)).transpose())
        .collect()
}

/// Rows grouped by the parent cell at `parent` of their key (rows without a
/// key, or with a key coarser than `parent`, are left out), in parent order,
/// rows ascending: the partitions of a layer by H3 parent cell.
pub fn partition_by_parent(
    keys: &[Option<CellIndex>],
    parent: Resolution,
) -> Vec<(CellIndex, Vec<u32>)> {
    let mut map: std::collections::BTreeMap<CellIndex, Vec<u32>> = Default::default();
    for (row, k) in keys.iter().enumerate() {
        if let Some(p) = k.and_then(|k| k.parent(parent)) {
            map.entry(p).or_default().push(row as u32);
        }
    }
    map.into_iter().collect()
}

/// H3 zones: the cells, their polygons in the working CRS, and an O(1)
/// lookup from cell to zone.
#[derive(Debug)]
pub struct H3Zones {
    /// The resolution.
    pub resolution: Resolution,
    /// The selection mode.
    pub mode: CellMode,
    /// The cells, ascending.
    pub cells: Vec<CellIndex>,
    lookup: HashMap<CellIndex, u32>,
    lonlat: LonLat,
}

impl H3Zones {
    /// Select the cells for `covers` and prepare the lookup.
    pub fn new(
        covers: &[PreparedPolygon],
        res: Resolution,
        mode: CellMode,
        lonlat: LonLat,
    ) -> Result<H3Zones> {
        let cells = cover_cells(covers, res, mode, &lonlat)?;
        Ok(Self::from_cells(cells, mode, res, lonlat))
    }

    /// Zones from given cells (all of resolution `res`, sorted, unique).
    pub fn from_cells(
        cells: Vec<CellIndex>,
        mode: CellMode,
        res: Resolution,
        lonlat: LonLat,
    ) -> H3Zones {
        let lookup = cells
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        H3Zones {
            resolution: res,
            mode,
            cells,
            lookup,
            lonlat,
        }
    }

    /// The polygons of the cells in the working CRS.
    pub fn polygons(&self) -> Result<Vec<MultiPolygon>> {
        self.cells
            .par_iter()
            .map(|c| Ok(MultiPolygon(vec![self.lonlat.cell_polygon(*c)?])))
            .collect()
    }

    /// The zone holding point `c` of the working CRS: the zone of H3's cell
    /// of `c`, in O(1).
    pub fn zone_of(&self, c: Coord) -> Option<u32> {
        let cell = self.lonlat.cell_of(c, self.resolution).ok()?;
        self.lookup.get(&cell).copied()
    }

    /// The conversions used.
    pub fn lonlat(&self) -> &LonLat {
        &self.lonlat
    }
}
