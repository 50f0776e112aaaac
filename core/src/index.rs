//! Spatial indexes: an R-tree of bounding boxes (features or zones) and
//! polygons prepared for repeated queries (their edges in an R-tree).
//!
//! `BoxIndex` (bulk-loaded `rstar` tree of boxes carrying indexes);
//! `PreparedPolygon` (its `Edges` in an R-tree, or a plain list up to 64 edges:
//! scanning a commune's 27 edges is as fast as a tree query and costs nothing
//! to build; `locate` point → Inside/Boundary/Outside with robust orientation,
//! `boundary_near`, `piece` = measure of a feature inside, big polygons
//! clipped to the feature's box first); the cell marks of a grid over a
//! polygon (`mark_cells`, shared with `setgrid`).

use std::ops::ControlFlow;

use crate::geometry::{as_multipolygon, clip_multipolygon_to_rect, grow, Frame};
use geo::{
    Area, BoundingRect, Coord, CoordsIter, Geometry, Intersects, Kernel, Line, LineString,
    MultiPolygon, Orientation, Polygon, Rect,
};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

/// An R-tree over the bounding boxes of a slice of geometries, bulk-loaded,
/// each entry carrying the geometry's index.
#[derive(Debug, Clone)]
pub struct BoxIndex {
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
}

/// The axis-aligned envelope of a rectangle.
pub(crate) fn aabb(r: &Rect) -> AABB<[f64; 2]> {
    AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y])
}

impl BoxIndex {
    /// Bulk-load the bounding boxes of `rects` (index i for `rects[i]`;
    /// `None` entries are left out).
    pub fn new<'a>(rects: impl IntoIterator<Item = Option<&'a Rect>>) -> Self {
        let items = rects
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.map(|r| {
                    GeomWithData::new(
                        Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                        i as u32,
                    )
                })
            })
            .collect();
        Self {
            tree: RTree::bulk_load(items),
        }
    }

    /// Indexes of the boxes that intersect `r` (boundaries included), sorted.
    pub fn intersecting(&self, r: &Rect) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(&aabb(r))
            .map(|e| e.data)
            .collect();
        v.sort_unstable();
        v
    }

    /// Indexes of the boxes that contain `c` (boundaries included), sorted.
    pub fn at_point(&self, c: Coord) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .tree
            .locate_all_at_point(&[c.x, c.y])
            .map(|e| e.data)
            .collect();
        v.sort_unstable();
        v
    }

    /// The underlying R-tree.
    pub fn tree(&self) -> &RTree<GeomWithData<Rectangle<[f64; 2]>, u32>> {
        &self.tree
    }

    /// Number of boxes.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }
}

/// Where a point lies relative to a polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Strictly inside.
    Inside,
    /// On an edge or a vertex.
    Boundary,
    /// Outside.
    Outside,
}

/// The measure of the part of a feature inside a polygon, and whether they
/// intersect at all (touching counts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Piece {
    /// Area (polygons), length (lines) or number of points inside or on the
    /// boundary (points) of feature ∩ polygon.
    pub measure: f64,
    /// Whether the feature intersects the polygon (boundaries included).
    pub intersects: bool,
}

/// A polygon's boundary edges, for the queries of [`PreparedPolygon`]: a
/// plain list when there are few (scanning them is as fast as a tree query,
/// and costs nothing to build), else an R-tree.
#[derive(Debug, Clone)]
pub(crate) enum Edges {
    /// At most [`EDGE_TREE_THRESHOLD`] edges, scanned.
    List(Vec<Line>),
    /// More edges, in an R-tree.
    Tree(RTree<Line>),
}

/// Edge count above which a polygon's edges go into an R-tree.
pub(crate) const EDGE_TREE_THRESHOLD: usize = 32;

/// The edges whose boxes meet a query box (see [`Edges::in_envelope`]).
pub(crate) enum EdgesIn<'a> {
    /// From a list.
    List(std::slice::Iter<'a, Line>, AABB<geo::Point>),
    /// From an R-tree.
    Tree(rstar::iterators::LocateInEnvelopeIntersecting<'a, Line>),
}

impl<'a> Iterator for EdgesIn<'a> {
    type Item = &'a Line;
    fn next(&mut self) -> Option<&'a Line> {
        match self {
            EdgesIn::List(it, env) => it.find(|l| edge_meets(l, env)),
            EdgesIn::Tree(it) => it.next(),
        }
    }
}

/// Whether the box of edge `l` meets `env`: the R-tree's own test.
#[inline]
fn edge_meets(l: &Line, env: &AABB<geo::Point>) -> bool {
    use rstar::{Envelope, RTreeObject};
    env.intersects(&l.envelope())
}

impl Edges {
    /// `edges` in a list or, when there are more than
    /// [`EDGE_TREE_THRESHOLD`], in an R-tree.
    pub fn new(edges: Vec<Line>) -> Self {
        if edges.len() > EDGE_TREE_THRESHOLD {
            Edges::Tree(RTree::bulk_load(edges))
        } else {
            Edges::List(edges)
        }
    }

    /// The number of edges.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        match self {
            Edges::List(v) => v.len(),
            Edges::Tree(t) => t.size(),
        }
    }

    /// Every edge once (in no particular order for a tree).
    pub fn for_each(&self, mut f: impl FnMut(&Line)) {
        match self {
            Edges::List(v) => v.iter().for_each(f),
            Edges::Tree(t) => t.iter().for_each(&mut f),
        }
    }

    /// The edges whose boxes meet `env`.
    pub fn in_envelope(&self, env: &AABB<geo::Point>) -> EdgesIn<'_> {
        match self {
            Edges::List(v) => EdgesIn::List(v.iter(), *env),
            Edges::Tree(t) => EdgesIn::Tree(t.locate_in_envelope_intersecting(env)),
        }
    }

    /// `f` on the edges whose boxes meet `env`, until it breaks.
    pub fn visit_in(
        &self,
        env: &AABB<geo::Point>,
        mut f: impl FnMut(&Line) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        match self {
            Edges::List(v) => {
                for l in v {
                    if edge_meets(l, env) {
                        f(l)?;
                    }
                }
                ControlFlow::Continue(())
            }
            Edges::Tree(t) => t.locate_in_envelope_intersecting_int(env, f),
        }
    }
}

/// A polygonal geometry prepared for repeated point-location and
/// intersection queries: its edges are held in an R-tree (or, when there
/// are few, a list), so a point is located in O(log n) and a
/// small feature far from the boundary is classified without touching the
/// edges.
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    geom: MultiPolygon,
    rect: Option<Rect>,
    edges: Edges,
    area: f64,
    n_coords: usize,
    grid: Option<CellGrid>,
}

/// A grid over a large polygon's box, each cell marked outside, inside, or
/// crossed by the boundary: points and small boxes in unmarked cells are
/// answered without touching the edges.
#[derive(Debug, Clone)]
struct CellGrid {
    f: Frame,
    state: Vec<u8>,
}

/// Vertex count from which a polygon gets a [`CellGrid`].
const GRID_THRESHOLD: usize = 48;

impl CellGrid {
    fn build(
        rect: Rect,
        edges: &Edges,
        n_coords: usize,
        locate: impl Fn(Coord) -> Location,
    ) -> Option<CellGrid> {
        let f = Frame::new(&rect, (4 * n_coords).clamp(16, 65_536) as f64)?;
        let (ax, bx, ay, by, state) = mark_cells(&f, &rect, edges, locate);
        // The marks cover the whole frame (the box is the polygon's own).
        debug_assert!(ax == 0 && ay == 0 && bx == f.nx - 1 && by == f.ny - 1);
        Some(CellGrid { f, state })
    }

    /// The state shared by every cell `r` meets, or `EDGE` when they differ
    /// or one is crossed by the boundary.
    fn state_of(&self, r: &Rect) -> u8 {
        let (ax, bx, ay, by) = self.f.cells(r);
        let first = self.state[ay * self.f.nx + ax];
        if first == EDGE {
            return EDGE;
        }
        for j in ay..=by {
            for i in ax..=bx {
                if self.state[j * self.f.nx + i] != first {
                    return EDGE;
                }
            }
        }
        first
    }
}

/// Vertex count above which a polygon is clipped to the feature's box
/// before the exact overlay.
const CLIP_THRESHOLD: usize = 16;

impl PreparedPolygon {
    /// Prepare a multipolygon.
    pub fn new(geom: MultiPolygon) -> Self {
        let edges: Vec<Line> = geom
            .iter()
            .flat_map(|p| {
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .flat_map(|r| r.lines())
            })
            .filter(|l| l.start != l.end)
            .collect();
        let rect = geom.bounding_rect();
        let area = geom.unsigned_area();
        let n_coords = geom.coords_count();
        let mut p = Self {
            geom,
            rect,
            edges: Edges::new(edges),
            area,
            n_coords,
            grid: None,
        };
        if n_coords >= GRID_THRESHOLD {
            if let Some(r) = p.rect {
                p.grid = CellGrid::build(r, &p.edges, n_coords, |c| p.locate_exact(c));
            }
        }
        p
    }

    /// Prepare a geometry: polygons as they are; points and lines give an
    /// empty polygon (which contains nothing).
    pub fn from_geometry(g: &Geometry) -> Self {
        Self::new(as_multipolygon(g).unwrap_or_else(|| MultiPolygon(vec![])))
    }

    /// The geometry.
    pub fn geometry(&self) -> &MultiPolygon {
        &self.geom
    }

    /// The bounding box (`None` when empty).
    pub fn rect(&self) -> Option<&Rect> {
        self.rect.as_ref()
    }

    /// The boundary edges (every ring).
    pub(crate) fn edges(&self) -> &Edges {
        &self.edges
    }

    /// The number of vertices.
    pub fn n_coords(&self) -> usize {
        self.n_coords
    }

    /// The area.
    pub fn area(&self) -> f64 {
        self.area
    }

    /// Locate a point: inside, on the boundary, or outside. Uses the winding
    /// number with robust orientation predicates (as `geo` does), so the
    /// answer is exact for the given floating-point coordinates.
    pub fn locate(&self, c: Coord) -> Location {
        if let Some(g) = &self.grid {
            let inside_box = self.rect.is_some_and(|r| {
                c.x >= r.min().x && c.x <= r.max().x && c.y >= r.min().y && c.y <= r.max().y
            });
            if !inside_box {
                return Location::Outside;
            }
            match g.state_of(&Rect::new(c, c)) {
                IN => return Location::Inside,
                OUT => return Location::Outside,
                _ => {}
            }
        }
        self.locate_exact(c)
    }

    /// [`Self::locate`] without the cell grid.
    fn locate_exact(&self, c: Coord) -> Location {
        let Some(rect) = self.rect else {
            return Location::Outside;
        };
        if c.x < rect.min().x || c.x > rect.max().x || c.y < rect.min().y || c.y > rect.max().y {
            return Location::Outside;
        }
        let ray = AABB::from_corners(geo::Point::from(c), geo::point! { x: rect.max().x, y: c.y });
        let mut winding = 0i32;
        let mut step = |seg: &Line| {
            let (a, b) = (seg.start, seg.end);
            if a.y <= c.y {
                if b.y >= c.y {
                    let o = <f64 as geo::GeoNum>::Ker::orient2d(a, b, c);
                    if o == Orientation::CounterClockwise && b.y != c.y {
                        winding += 1;
                    } else if o == Orientation::Collinear && between(c.x, a.x, b.x) {
                        return ControlFlow::Break(());
                    }
                }
            } else {
                let o = <f64 as geo::GeoNum>::Ker::orient2d(a, b, c);
                if o == Orientation::Clockwise {
                    winding -= 1;
                } else if o == Orientation::Collinear && between(c.x, a.x, b.x) {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        };
        let flow = match &self.edges {
            // The edges meeting the ray, without the box arithmetic.
            Edges::List(v) => v
                .iter()
                .filter(|s| {
                    let (a, b) = (s.start, s.end);
                    !((a.y > c.y && b.y > c.y)
                        || (a.y < c.y && b.y < c.y)
                        || (a.x < c.x && b.x < c.x))
                })
                .try_for_each(&mut step),
            Edges::Tree(_) => self.edges.visit_in(&ray, step),
        };
        if flow.is_break() {
            Location::Boundary
        } else if winding != 0 {
            Location::Inside
        } else {
            Location::Outside
        }
    }

    /// Whether any edge's bounding box meets `r`: if not, a geometry within
    /// `r` is entirely inside or entirely outside.
    pub fn boundary_near(&self, r: &Rect) -> bool {
        if let Some(g) = &self.grid {
            if g.state_of(r) != EDGE {
                return false;
            }
        }
        self.edges
            .visit_in(
                &AABB::from_corners(geo::Point::from(r.min()), geo::Point::from(r.max())),
                |_| ControlFlow::Break(()),
            )
            .is_break()
    }

    /// The polygon clipped to a box slightly larger than `r`, when the
    /// polygon is large: the exact overlay then only sees the edges nearby.
    fn clipped_to(&self, r: &Rect) -> std::borrow::Cow<'_, MultiPolygon> {
        if self.n_coords <= CLIP_THRESHOLD {
            return std::borrow::Cow::Borrowed(&self.geom);
        }
        let w = (r.width().max(r.height())).max(1e-9);
        let pad = w * 0.01 + 1e-6;
        std::borrow::Cow::Owned(clip_multipolygon_to_rect(&self.geom, &grow(r, pad)))
    }

    /// The part of `g` inside this polygon: area for polygons, length for
    /// lines, number of points for points. `g_rect` is `g`'s bounding box and
    /// `g_measure` its full measure (returned as is when `g` is entirely inside).
    pub(crate) fn piece(&self, g: &Geometry, g_rect: &Rect, g_measure: f64) -> Option<Piece> {
        let rect = self.rect?;
        if !g_rect.intersects(&rect) {
            return None;
        }
        if let Geometry::Point(p) = g {
            return match self.locate(p.0) {
                Location::Outside => None,
                _ => Some(Piece {
                    measure: 1.0,
                    intersects: true,
                }),
            };
        }
        if let Geometry::MultiPoint(mp) = g {
            let n = mp
                .iter()
                .filter(|p| self.locate(p.0) != Location::Outside)
                .count();
            return (n > 0).then_some(Piece {
                measure: n as f64,
                intersects: true,
            });
        }
        if !self.boundary_near(g_rect) {
            let first = g.coords_iter().next()?;
            return match self.locate(first) {
                Location::Inside => Some(Piece {
                    measure: g_measure,
                    intersects: true,
                }),
                _ => None,
            };
        }
        // The robust predicate decides whether they meet at all; the measure
        // of a feature that only touches is 0.
        if !self.meets(g, g_rect) {
            return None;
        }
        let measure = match g {
            Geometry::Polygon(p) => self.area_inside(std::slice::from_ref(p), g_rect),
            Geometry::MultiPolygon(mp) => self.area_inside(&mp.0, g_rect),
            Geometry::LineString(l) => self.length_inside(l),
            Geometry::MultiLineString(ml) => ml.iter().map(|l| self.length_inside(l)).sum(),
            _ => 0.0,
        };
        Some(Piece {
            measure,
            intersects: true,
        })
    }

    /// Whether `g` meets this polygon (touching counts), with robust
    /// predicates: an edge of `g` meets an edge of the polygon (edges found
    /// through the R-tree), or, failing that, `g` lies inside the polygon,
    /// or a part of the polygon lies inside `g`.
    pub(crate) fn meets(&self, g: &Geometry, g_rect: &Rect) -> bool {
        use geo::LinesIter;
        let mut edges_meet = false;
        let visit = |l: Line| {
            let env = AABB::from_corners(geo::Point::from(l.start), geo::Point::from(l.end));
            self.edges
                .visit_in(&env, |e| {
                    if e.intersects(&l) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .is_break()
        };
        let lines: Box<dyn Iterator<Item = Line>> = match g {
            Geometry::Polygon(p) => Box::new(p.lines_iter()),
            Geometry::MultiPolygon(mp) => Box::new(mp.lines_iter()),
            Geometry::LineString(l) => Box::new(l.lines_iter()),
            Geometry::MultiLineString(ml) => Box::new(ml.lines_iter()),
            _ => Box::new(std::iter::empty()),
        };
        for l in lines {
            if visit(l) {
                edges_meet = true;
                break;
            }
        }
        if edges_meet {
            return true;
        }
        if g.coords_iter().any(|c| self.locate(c) != Location::Outside) {
            return true;
        }
        self.geom.iter().any(|p| {
            p.bounding_rect().is_some_and(|r| r.intersects(g_rect))
                && p.exterior().0.first().is_some_and(|c| g.intersects(c))
        })
    }

    /// Exact area of `polys` ∩ this polygon (see [`crate::exact`]).
    fn area_inside(&self, polys: &[Polygon], g_rect: &Rect) -> f64 {
        let zone = self.clipped_to(g_rect);
        polys
            .iter()
            .flat_map(crate::exact::convex_parts)
            .map(|part| crate::exact::area_in_part(&zone.0, &part))
            .sum()
    }

    /// Exact length of `line` inside or on the boundary of this polygon.
    fn length_inside(&self, line: &LineString) -> f64 {
        crate::exact::length_where(
            line,
            |a, b, ts| {
                let env = AABB::from_corners(geo::Point::from(a), geo::Point::from(b));
                for e in self.edges.in_envelope(&env) {
                    crate::exact::crossings(a, b, e.start, e.end, ts);
                }
            },
            |m| self.locate(m) != Location::Outside,
        )
    }
}

fn between(x: f64, a: f64, b: f64) -> bool {
    (a <= x && x <= b) || (b <= x && x <= a)
}

/// Mark the cells of `f` over box `r` for polygon `p`: `EDGE` where its
/// boundary may pass, then `IN`/`OUT` for runs of edge-free cells, each run
/// located by the exact location of its first cell's centre (a run crossed by
/// no boundary lies all inside or all outside). Returns the cell range and
/// the marks, row-major.
pub(crate) fn mark_cells(
    f: &Frame,
    r: &Rect,
    edges: &Edges,
    locate: impl Fn(Coord) -> Location,
) -> (usize, usize, usize, usize, Vec<u8>) {
    // The box widened by the guard: no boundary point lies outside it.
    let (ax, bx, ay, by) = f.cells(&grow(r, f.eps));
    let bw = bx + 1 - ax;
    let mut m = vec![OUT; bw * (by + 1 - ay)];
    edges.for_each(|e| {
        f.segment_cells(e.start, e.end, |i0, i1, j| {
            if j < ay || j > by {
                return;
            }
            let row = (j - ay) * bw;
            for i in i0.max(ax)..=i1.min(bx) {
                m[row + i - ax] = EDGE;
            }
        });
    });
    for j in ay..=by {
        let row = &mut m[(j - ay) * bw..(j - ay + 1) * bw];
        let mut i = 0;
        while i < bw {
            if row[i] == EDGE {
                i += 1;
                continue;
            }
            let v = if locate(f.centre(ax + i, j)) == Location::Inside {
                IN
            } else {
                OUT
            };
            while i < bw && row[i] != EDGE {
                row[i] = v;
                i += 1;
            }
        }
    }
    (ax, bx, ay, by, m)
}

/// The marks of [`mark_cells`]: outside, inside, crossed by the boundary.
pub(crate) const OUT: u8 = 0;
pub(crate) const IN: u8 = 1;
pub(crate) const EDGE: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::measure;
    use geo::BooleanOps;
    use geo::{coord, polygon};

    #[test]
    fn few_edges_are_a_list_queried_by_box() {
        let square = [(0., 0.), (1., 0.), (1., 1.), (0., 1.), (0., 0.)];
        let lines: Vec<Line> = square.windows(2).map(|w| Line::new(w[0], w[1])).collect();
        let edges = Edges::new(lines);
        assert!(matches!(edges, Edges::List(_)));
        assert_eq!(edges.len(), 4);
        let env = AABB::from_corners(
            geo::point! { x: 0.5, y: -0.5 },
            geo::point! { x: 2., y: 0.5 },
        );
        // The bottom and right sides.
        assert_eq!(edges.in_envelope(&env).count(), 2);
    }

    fn square(x0: f64, y0: f64, s: f64) -> MultiPolygon {
        MultiPolygon(vec![
            polygon![(x: x0, y: y0), (x: x0 + s, y: y0), (x: x0 + s, y: y0 + s), (x: x0, y: y0 + s)],
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Point location and edge queries, on edges in a list (few) or in
        /// an R-tree (many), equal brute force: `geo`'s coordinate position
        /// and a scan of every edge. Lattice stars with holes, so points fall
        /// on vertices, on edges and on collinear runs.
        #[test]
        fn edges_listed_or_indexed_answer_as_brute_force(
            radii in proptest::collection::vec(3i32..9, 3..90),
            hole in proptest::prelude::any::<bool>(),
            pts in proptest::collection::vec((-10i32..=10, -10i32..=10), 40),
        ) {
            use geo::coordinate_position::{CoordPos, CoordinatePosition};
            use geo::LinesIter;
            let n = radii.len();
            let ring: Vec<Coord> = radii
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let t = std::f64::consts::TAU * k as f64 / n as f64;
                    coord! { x: (f64::from(*r) * t.cos()).round(), y: (f64::from(*r) * t.sin()).round() }
                })
                .collect();
            let holes = if hole {
                vec![LineString::from(vec![(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)])]
            } else {
                vec![]
            };
            // Oriented, as layers are (exterior counter-clockwise, holes clockwise).
            let poly = geo::orient::Orient::orient(
                &Polygon::new(LineString(ring), holes),
                geo::orient::Direction::Default,
            );
            let mp = MultiPolygon(vec![poly]);
            let p = PreparedPolygon::new(mp.clone());
            proptest::prop_assert_eq!(matches!(p.edges(), Edges::Tree(_)), p.edges().len() > EDGE_TREE_THRESHOLD);
            let all: Vec<Line> = mp.lines_iter().filter(|l| l.start != l.end).collect();
            proptest::prop_assert_eq!(p.edges().len(), all.len());
            for (x, y) in &pts {
                let c = coord! { x: f64::from(*x), y: f64::from(*y) };
                let want = match mp.coordinate_position(&c) {
                    CoordPos::Inside => Location::Inside,
                    CoordPos::OnBoundary => Location::Boundary,
                    CoordPos::Outside => Location::Outside,
                };
                proptest::prop_assert_eq!(p.locate(c), want, "{:?}", c);
                let env = AABB::from_corners(geo::Point::from(c), geo::point! { x: c.x + 1.5, y: c.y + 0.5 });
                let mut got: Vec<String> = p.edges().in_envelope(&env).map(|l| format!("{l:?}")).collect();
                let mut brute: Vec<String> = all.iter().filter(|l| edge_meets(l, &env)).map(|l| format!("{l:?}")).collect();
                got.sort();
                brute.sort();
                proptest::prop_assert_eq!(&got, &brute);
            }
        }
    }

    #[test]
    fn locate_square() {
        let p = PreparedPolygon::new(square(0.0, 0.0, 10.0));
        assert_eq!(p.locate(coord! {x: 5.0, y: 5.0}), Location::Inside);
        assert_eq!(p.locate(coord! {x: 0.0, y: 5.0}), Location::Boundary);
        assert_eq!(p.locate(coord! {x: 10.0, y: 10.0}), Location::Boundary);
        assert_eq!(p.locate(coord! {x: 10.5, y: 5.0}), Location::Outside);
        assert_eq!(p.locate(coord! {x: -1.0, y: 5.0}), Location::Outside);
    }

    #[test]
    fn half_covered_square() {
        let zone = PreparedPolygon::new(square(0.0, 0.0, 10.0));
        let f = Geometry::MultiPolygon(square(5.0, 0.0, 10.0));
        let r = f.bounding_rect().unwrap();
        let piece = zone.piece(&f, &r, measure(&f)).unwrap();
        assert_eq!(piece.measure, 50.0);
        // Touching only: intersects, zero area.
        let t = Geometry::MultiPolygon(square(10.0, 0.0, 5.0));
        let piece = zone.piece(&t, &t.bounding_rect().unwrap(), 25.0).unwrap();
        assert_eq!(piece.measure, 0.0);
        assert!(piece.intersects);
    }

    #[test]
    fn rect_clip_keeps_area_of_nonconvex_ring() {
        // A U shape clipped by a box crossing both arms.
        let u: MultiPolygon = MultiPolygon(vec![polygon![
            (x: 0.0, y: 0.0), (x: 30.0, y: 0.0), (x: 30.0, y: 30.0), (x: 20.0, y: 30.0),
            (x: 20.0, y: 10.0), (x: 10.0, y: 10.0), (x: 10.0, y: 30.0), (x: 0.0, y: 30.0)
        ]]);
        let r = Rect::new(coord! {x: 5.0, y: 5.0}, coord! {x: 25.0, y: 20.0});
        let clipped = clip_multipolygon_to_rect(&u, &r);
        let exact = u
            .intersection(&MultiPolygon(vec![r.to_polygon()]))
            .unsigned_area();
        assert!((clipped.signed_area().abs() - exact).abs() < 1e-9);
    }
}
