//! H3 cells (with [`h3o`]) as territory units and as an index.
//!
//! # Cells in the working CRS
//!
//! A cell's polygon in the working CRS joins its topological vertexes
//! ([`CellIndex::vertexes`], each computed once from its canonical
//! [`h3o::VertexIndex`], so neighbours share bit-identical corners), plus the
//! extra points H3 places where an edge crosses an icosahedron edge (taken
//! from the smaller of the edge's two cells, so shared too), projected from
//! WGS84 longitude/latitude with straight edges. The cells
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
use crate::geometry::{centroid, clip_multipolygon_to_rect, grow, signed_area_unshifted};
use crate::index::{BoxIndex, Location, PreparedPolygon};
use crate::layer::Layer;
use crate::setgrid::{default_cells, Cell, SetGrid};

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
        let vs: Vec<h3o::VertexIndex> = cell.vertexes().collect();
        let corners = vs
            .iter()
            .map(|v| self.from_latlng(LatLng::from(*v)))
            .collect::<Result<Vec<Coord>>>()?;
        let ring = self.with_distortion(cell, &vs, corners)?;
        self.ring_to_cell(cell, ring)
    }

    /// The ring of `cell` from its projected corners (`vs` and `corners` in
    /// H3's vertex order), with the extra points H3 puts on edges that cross
    /// an icosahedron edge (class III resolutions). Each such point is taken
    /// from the edge as seen from the smaller of its two cells, so both
    /// neighbours get the same floats.
    fn with_distortion(
        &self,
        cell: CellIndex,
        vs: &[h3o::VertexIndex],
        corners: Vec<Coord>,
    ) -> Result<Vec<Coord>> {
        let n = vs.len();
        if cell.boundary().len() <= n {
            return Ok(corners);
        }
        let ll: Vec<LatLng> = vs.iter().map(|v| LatLng::from(*v)).collect();
        let nearest = |p: &LatLng| {
            (0..n)
                .min_by(|a, b| {
                    let d = |k: usize| {
                        (ll[k].lat() - p.lat()).powi(2) + (ll[k].lng() - p.lng()).powi(2)
                    };
                    d(*a).total_cmp(&d(*b))
                })
                .unwrap_or(0)
        };
        // Extra points after corner k, going to corner k + 1.
        let mut extra: Vec<Vec<Coord>> = vec![vec![]; n];
        for e in cell.edges() {
            let other = e.destination();
            let canonical = if cell < other {
                Some(e)
            } else {
                other.edges().find(|d| d.destination() == cell)
            };
            let Some(edge) = canonical else { continue };
            let b = edge.boundary();
            if b.len() <= 2 {
                continue;
            }
            let (first, last) = (nearest(&b[0]), nearest(&b[b.len() - 1]));
            let mut mids = b[1..b.len() - 1]
                .iter()
                .map(|p| self.from_latlng(*p))
                .collect::<Result<Vec<Coord>>>()?;
            let k = if (first + 1) % n == last {
                first
            } else {
                mids.reverse();
                last
            };
            extra[k] = mids;
        }
        Ok(corners
            .into_iter()
            .zip(extra)
            .flat_map(|(c, mids)| std::iter::once(c).chain(mids))
            .collect())
    }

    /// Orient, check and close the projected corners of `cell`.
    fn ring_to_cell(&self, cell: CellIndex, mut ring: Vec<Coord>) -> Result<Polygon> {
        if signed_area_unshifted(&ring) < 0.0 {
            ring.reverse();
        }
        // A cell cut by the projection's discontinuity (the antimeridian of
        // a world projection) comes out as a strip across the map: its centre
        // no longer maps back into it.
        // A cell of ordinary size (under 20 times the side of the average
        // cell of its resolution) cannot be such a strip; others are checked.
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for c in &ring {
            (x0, x1, y0, y1) = (x0.min(c.x), x1.max(c.x), y0.min(c.y), y1.max(c.y));
        }
        let limit = 20.0 * cell.resolution().area_m2().sqrt();
        let n = ring.len() as f64;
        let mid = Coord {
            x: ring.iter().map(|c| c.x).sum::<f64>() / n,
            y: ring.iter().map(|c| c.y).sum::<f64>() / n,
        };
        if (x1 - x0 > limit || y1 - y0 > limit)
            && self.cell_of(mid, cell.resolution()).ok() != Some(cell)
        {
            return Err(Error::Crs(format!(
                "H3 cell {cell} cannot be drawn in {} (it crosses the projection's edge, e.g. the antimeridian)",
                self.crs
            )));
        }
        ring.push(ring[0]);
        Ok(Polygon::new(LineString(ring), vec![]))
    }

    /// The polygons of many cells, each shared corner converted once
    /// (same result as [`Self::cell_polygon`] on each cell).
    pub fn cell_polygons(&self, cells: &[CellIndex]) -> Result<Vec<Polygon>> {
        let per_cell: Vec<Vec<h3o::VertexIndex>> =
            cells.par_iter().map(|c| c.vertexes().collect()).collect();
        let mut corners: Vec<h3o::VertexIndex> = per_cell.iter().flatten().copied().collect();
        corners.par_sort_unstable();
        corners.dedup();
        let coords: Vec<Coord> = corners
            .par_iter()
            .map(|v| self.from_latlng(LatLng::from(*v)))
            .collect::<Result<_>>()?;
        cells
            .par_iter()
            .zip(&per_cell)
            .map(|(cell, vs)| {
                let ring: Vec<Coord> = vs
                    .iter()
                    .map(|v| coords[corners.binary_search(v).unwrap_or_default()])
                    .collect();
                let ring = self.with_distortion(*cell, vs, ring)?;
                self.ring_to_cell(*cell, ring)
            })
            .collect()
    }

    /// The cell at resolution `res` holding point `c` of the working CRS.
    pub fn cell_of(&self, c: Coord, res: Resolution) -> Result<CellIndex> {
        Ok(self.to_latlng(c)?.to_cell(res))
    }
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
    Ok(select_cells(covers, res, mode, lonlat)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// The most cells a cover may make terrastat test.
const MAX_CELLS: usize = 50_000_000;

/// The selected cells, ascending, with their polygons when the mode needed
/// them. Two phases:
/// 1. candidates, sequentially: a breadth-first walk over the cells whose
///    centre lies within `r` of some cover's box, from a seed in each box,
///    where `r` is twice the largest centre-to-corner distance of the seeds'
///    cells: every cell meeting a cover is reached, each cell is visited once
///    however many covers it touches, and only cell centres are computed;
/// 2. the exact test of each candidate against the covers its box meets,
///    in parallel.
fn select_cells(
    covers: &[PreparedPolygon],
    res: Resolution,
    mode: CellMode,
    lonlat: &LonLat,
) -> Result<Vec<(CellIndex, Option<Polygon>)>> {
    let rects: Vec<Option<&Rect>> = covers.iter().map(|p| p.rect()).collect();
    let boxes: Vec<&Rect> = rects.iter().flatten().copied().collect();
    if boxes.is_empty() {
        return Ok(vec![]);
    }
    let estimate: f64 = boxes.iter().map(|r| r.width() * r.height()).sum::<f64>() / res.area_m2();
    if estimate > MAX_CELLS as f64 {
        return Err(Error::InvalidArgument(format!(
            "an H3 cover at resolution {res} would test about {estimate:.0} cells (more than {MAX_CELLS}); use a coarser resolution"
        )));
    }
    let index = BoxIndex::new(rects.iter().copied());
    // Seeds (the cells at each box's centre and their neighbours) and the reach.
    let mut seeds = Vec::new();
    let mut reach: f64 = 0.0;
    for r in &boxes {
        let centre = Coord {
            x: (r.min().x + r.max().x) / 2.0,
            y: (r.min().y + r.max().y) / 2.0,
        };
        let seed = lonlat.cell_of(centre, res)?;
        let poly = lonlat.cell_polygon(seed)?;
        let c = lonlat.from_latlng(LatLng::from(seed))?;
        for v in &poly.exterior().0 {
            reach = reach.max(((v.x - c.x).powi(2) + (v.y - c.y).powi(2)).sqrt());
        }
        seeds.extend(seed.grid_disk::<Vec<_>>(1));
    }
    let reach = 2.0 * reach;
    let near = |c: Coord| {
        !index
            .intersecting(&grow(&Rect::new(c, c), reach))
            .is_empty()
    };
    let mut seen: HashSet<CellIndex> = HashSet::new();
    let mut queue: VecDeque<CellIndex> = VecDeque::new();
    for s in seeds {
        if seen.insert(s) {
            queue.push_back(s);
        }
    }
    let mut candidates: Vec<(CellIndex, Coord)> = Vec::new();
    while let Some(cell) = queue.pop_front() {
        let centre = lonlat.from_latlng(LatLng::from(cell))?;
        if !near(centre) {
            continue;
        }
        candidates.push((cell, centre));
        if candidates.len() > MAX_CELLS {
            return Err(Error::InvalidArgument(format!(
                "an H3 cover at resolution {res} reaches more than {MAX_CELLS} cells; use a coarser resolution"
            )));
        }
        for n in cell.grid_disk::<Vec<_>>(1) {
            if seen.insert(n) {
                queue.push_back(n);
            }
        }
    }
    candidates.sort_unstable_by_key(|c| c.0);
    let grid = (mode == CellMode::Centroid)
        .then(|| SetGrid::new(covers, default_cells(covers)))
        .flatten();
    let polys: Vec<Polygon> = if mode == CellMode::Centroid {
        vec![]
    } else {
        let cells: Vec<CellIndex> = candidates.iter().map(|c| c.0).collect();
        lonlat.cell_polygons(&cells)?
    };
    let picked: Vec<Option<(CellIndex, Option<Polygon>)>> = candidates
        .par_iter()
        .enumerate()
        .map(|(i, &(cell, centre))| {
            if mode == CellMode::Centroid {
                let inside = match grid.as_ref().map(|g| g.at(centre)) {
                    Some(Cell::Empty) => false,
                    Some(Cell::First(_) | Cell::Inside) => true,
                    _ => index
                        .at_point(centre)
                        .into_iter()
                        .any(|k| covers[k as usize].locate(centre) != Location::Outside),
                };
                return Ok(inside.then_some((cell, None)));
            }
            let poly = &polys[i];
            let Some(cr) = poly.bounding_rect() else {
                return Ok(None);
            };
            for k in index.intersecting(&cr) {
                if selected(&covers[k as usize], poly, &cr, mode) {
                    return Ok(Some((cell, Some(poly.clone()))));
                }
            }
            Ok(None)
        })
        .collect::<Result<_>>()?;
    Ok(picked.into_iter().flatten().collect())
}

/// Whether the cell of polygon `c` (box `cr`) is selected for `p` under
/// `mode` (any mode but `Centroid`).
fn selected(p: &PreparedPolygon, c: &Polygon, cr: &Rect, mode: CellMode) -> bool {
    if mode == CellMode::Intersects {
        return p.intersects(&Geometry::Polygon(c.clone()), cr);
    }
    // Away from the boundary the cell is all inside or all outside.
    if !p.boundary_near(cr) {
        let inside = c.exterior().0[0];
        return p.locate(inside) == Location::Inside;
    }
    let rel = relation(p, c, cr);
    match mode {
        CellMode::Covers => match rel.interiors_meet {
            Some(v) => v,
            None => relate_with(p, c, cr, |m| m.is_intersects() && !m.is_touches()),
        },
        _ => match rel.within {
            Some(v) => v,
            None => relate_with(p, c, cr, |m| m.is_covers()),
        },
    }
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
    for e in p.edges().in_envelope(&env) {
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
    let bx = grow(cr, cr.width().max(cr.height()));
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
    /// The cell polygons, when the selection already drew them.
    polygons: Option<Vec<Polygon>>,
}

impl H3Zones {
    /// Select the cells for `covers` and prepare the lookup.
    pub fn new(
        covers: &[PreparedPolygon],
        res: Resolution,
        mode: CellMode,
        lonlat: LonLat,
    ) -> Result<H3Zones> {
        let picked = select_cells(covers, res, mode, &lonlat)?;
        let (cells, polys): (Vec<CellIndex>, Vec<Option<Polygon>>) = picked.into_iter().unzip();
        let mut z = Self::from_cells(cells, mode, res, lonlat);
        if polys.iter().all(Option::is_some) {
            z.polygons = Some(polys.into_iter().flatten().collect());
        }
        Ok(z)
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
            polygons: None,
        }
    }

    /// The polygons of the cells in the working CRS.
    pub fn polygons(&self) -> Result<Vec<MultiPolygon>> {
        if let Some(p) = &self.polygons {
            return Ok(p.iter().map(|p| MultiPolygon(vec![p.clone()])).collect());
        }
        Ok(self
            .lonlat
            .cell_polygons(&self.cells)?
            .into_iter()
            .map(|p| MultiPolygon(vec![p]))
            .collect())
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
