//! A raster over a set of polygons that answers most point and box queries
//! in O(1): each cell knows the first polygon (in set order) that contains
//! the whole cell, and the first polygon whose boundary comes near it.
//!
//! A query is *resolved* by the grid when the answer cannot depend on where
//! in the cell the point lies; otherwise the caller falls back to the exact
//! per-polygon test. Cells touched by an edge's box are marked with a margin
//! of one cell, so rounding in the cell computation never hides an edge, and
//! the state of edge-free cells comes from an exact point location of one
//! cell centre per run: the grid never changes an answer, it only skips work.

use geo::{Coord, Rect};
use rayon::prelude::*;

use crate::geometry::{grow, union_rects, Frame};
use crate::index::{mark_cells, PreparedPolygon, EDGE, IN, OUT};

const NONE: u32 = u32::MAX;
/// The two items of a [`SetGrid`] cell.
const INSIDE: usize = 0;
const EDGE_AT: usize = 1;

/// The grid; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct SetGrid {
    f: Frame,
    /// Per cell, side by side (one cache line per query): `[INSIDE]` the
    /// first polygon containing the whole cell (`NONE`: none); `[EDGE_AT]`
    /// `NONE` when no polygon's boundary comes near the cell, else the
    /// cell's entry in `near`.
    state: Vec<[u32; 2]>,
    /// Per cell, whether more than one polygon contains the whole cell.
    shared: Vec<bool>,
    /// The cells some boundary comes near.
    near: Near,
}

/// The cells of a [`SetGrid`] that some boundary comes near, each with the
/// polygons that may contain a point of it (in set order): every other
/// polygon has the whole cell strictly outside it.
#[derive(Debug, Clone, Default)]
struct Near {
    /// Per entry, the first polygon whose boundary comes near the cell.
    first_edge: Vec<u32>,
    /// Per entry, where its polygons start in `polygons` (one more item at
    /// the end); an empty list means "not kept" (too many polygons).
    start: Vec<u32>,
    polygons: Vec<u32>,
}

/// Polygons over one cell from which its list is not kept.
const MAX_NEAR: u8 = u8::MAX;

/// What the grid says about a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// No polygon contains or comes near the point.
    Empty,
    /// The first polygon strictly containing the point, and no polygon
    /// before it has its boundary near: the answer of a first-match search.
    First(u32),
    /// Some polygon strictly contains the point, but an earlier polygon's
    /// boundary comes near it.
    Inside,
    /// A boundary comes near the point and no polygon contains the whole cell.
    Unknown,
}

impl SetGrid {
    /// Build the grid over `polygons` with about `cells` cells (at most
    /// 2²² ≈ 4.2 M); `None` when the set is empty or degenerate.
    pub fn new(polygons: &[PreparedPolygon], cells: usize) -> Option<SetGrid> {
        let ext = polygons
            .iter()
            .fold(None, |acc, p| union_rects(acc, p.rect().copied()));
        let f = Frame::new(&ext?, cells.clamp(64, 1 << 22) as f64)?;
        let (nx, ny) = (f.nx, f.ny);
        let mut g = SetGrid {
            f,
            state: vec![],
            shared: vec![],
            near: Near::default(),
        };
        // Each polygon marks its own box (in parallel); marks merge by minimum index.
        let marks: Vec<(usize, usize, usize, usize, Vec<u8>)> =
            polygons.par_iter().map(|p| g.mark(p)).collect();
        g.state = vec![[NONE; 2]; nx * ny];
        g.shared = vec![false; nx * ny];
        // Polygons marking each cell edge or inside (saturating).
        let mut count = vec![0u8; nx * ny];
        for (k, mark) in marks.iter().enumerate() {
            let k = k as u32;
            for (c, m) in marked_cells(mark, nx) {
                match m {
                    EDGE => g.state[c][EDGE_AT] = g.state[c][EDGE_AT].min(k),
                    IN => {
                        g.shared[c] |= g.state[c][INSIDE] != NONE;
                        g.state[c][INSIDE] = g.state[c][INSIDE].min(k);
                    }
                    _ => continue,
                }
                count[c] = count[c].saturating_add(1);
            }
        }
        // Number the cells a boundary comes near, then list their polygons
        // in set order (each polygon adds itself to the cells it marks).
        let mut at = 0u32;
        for (c, st) in g.state.iter_mut().enumerate() {
            let e = &mut st[EDGE_AT];
            if *e == NONE {
                continue;
            }
            g.near.first_edge.push(*e);
            g.near.start.push(at);
            *e = (g.near.first_edge.len() - 1) as u32;
            if count[c] < MAX_NEAR {
                at += u32::from(count[c]);
            }
        }
        g.near.start.push(at);
        g.near.polygons = vec![NONE; at as usize];
        let mut next = g.near.start.clone();
        for (k, mark) in marks.iter().enumerate() {
            for (c, m) in marked_cells(mark, nx) {
                let slot = g.state[c][EDGE_AT] as usize;
                if m == OUT || slot == NONE as usize || count[c] == MAX_NEAR {
                    continue;
                }
                g.near.polygons[next[slot] as usize] = k as u32;
                next[slot] += 1;
            }
        }
        Some(g)
    }

    /// One polygon's marks over its box: edge cells (with a one-cell
    /// margin), then runs of edge-free cells located by their first centre.
    fn mark(&self, p: &PreparedPolygon) -> (usize, usize, usize, usize, Vec<u8>) {
        let Some(r) = p.rect() else {
            return (0, 0, 0, 0, vec![OUT]);
        };
        mark_cells(&self.f, r, p.edges(), |c| p.locate(c))
    }

    /// The cell of point `c`, if it lies in the grid's box.
    fn cell(&self, c: Coord) -> Option<usize> {
        self.f
            .contains_point(c)
            .then(|| self.f.row(c.y) * self.f.nx + self.f.col(c.x))
    }

    /// What the grid says about point `c`.
    pub fn at(&self, c: Coord) -> Cell {
        let Some(k) = self.cell(c) else {
            return Cell::Empty;
        };
        let inside = self.state[k][INSIDE];
        let edge = match self.state[k][EDGE_AT] {
            NONE => NONE,
            slot => self.near.first_edge[slot as usize],
        };
        if inside < edge {
            Cell::First(inside)
        } else if inside != NONE {
            Cell::Inside
        } else if edge != NONE {
            Cell::Unknown
        } else {
            Cell::Empty
        }
    }

    /// The polygons that may contain point `c`, in set order, when a
    /// boundary comes near it (where [`SetGrid::at`] says
    /// [`Cell::Inside`] or [`Cell::Unknown`]): every other polygon has `c`
    /// strictly outside it. `None` where no list is kept (no boundary near,
    /// outside the grid, or too many polygons over the cell).
    pub fn near(&self, c: Coord) -> Option<&[u32]> {
        let slot = self.state[self.cell(c)?][EDGE_AT];
        if slot == NONE {
            return None;
        }
        let (a, b) = (
            self.near.start[slot as usize] as usize,
            self.near.start[slot as usize + 1] as usize,
        );
        (b > a).then(|| &self.near.polygons[a..b])
    }

    /// Whether no polygon contains or comes near any point of `r`
    /// (`false` means "not shown empty here").
    pub fn empty_in(&self, r: &Rect) -> bool {
        if self.f.outside(r) {
            return true;
        }
        let (ax, bx, ay, by) = self.f.cells(r);
        (ay..=by).all(|j| {
            let row = j * self.f.nx;
            (row + ax..=row + bx)
                .all(|k| self.state[k][INSIDE] == NONE && self.state[k][EDGE_AT] == NONE)
        })
    }

    /// The one polygon containing the whole of `r`, when the grid shows it:
    /// every cell `r` meets lies inside that polygon, inside no other one,
    /// and near no polygon's boundary. `None` means "not shown here".
    pub fn sole_in(&self, r: &Rect) -> Option<u32> {
        let r = grow(r, self.f.eps);
        if !(self.f.contains_point(r.min()) && self.f.contains_point(r.max())) {
            return None;
        }
        let (ax, bx, ay, by) = self.f.cells(&r);
        let z = self.state[ay * self.f.nx + ax][INSIDE];
        if z == NONE {
            return None;
        }
        (ay..=by)
            .all(|j| {
                let row = j * self.f.nx;
                (row + ax..=row + bx).all(|k| {
                    self.state[k][INSIDE] == z && self.state[k][EDGE_AT] == NONE && !self.shared[k]
                })
            })
            .then_some(z)
    }
}

/// The cells of a polygon's marks (see [`mark_cells`]) in a grid `nx`
/// cells wide, with their marks.
fn marked_cells(
    (ax, bx, ay, by, m): &(usize, usize, usize, usize, Vec<u8>),
    nx: usize,
) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (ax, bx, ay, by) = (*ax, *bx, *ay, *by);
    let bw = bx + 1 - ax;
    (ay..=by).flat_map(move |j| {
        m[(j - ay) * bw..(j - ay + 1) * bw]
            .iter()
            .enumerate()
            .map(move |(i, v)| (j * nx + ax + i, *v))
    })
}

/// A cell budget for a set of polygons: about 8 cells per vertex, at least
/// 4 per polygon, between 64 Ki and 4 Mi.
pub(crate) fn default_cells(polygons: &[PreparedPolygon]) -> usize {
    let vertices: usize = polygons.iter().map(PreparedPolygon::n_coords).sum();
    (8 * vertices)
        .max(4 * polygons.len())
        .clamp(1 << 16, 1 << 22)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Location;
    use geo::{MultiPolygon, Polygon};
    use proptest::prelude::*;

    fn first_containing(ps: &[PreparedPolygon], c: Coord) -> (Option<u32>, bool, bool) {
        let first = ps
            .iter()
            .position(|p| p.locate(c) == Location::Inside)
            .map(|k| k as u32);
        let any_boundary = ps.iter().any(|p| p.locate(c) == Location::Boundary);
        (first, first.is_some(), any_boundary)
    }

    fn star(cx: f64, cy: f64, r: f64, n: usize, phase: f64) -> PreparedPolygon {
        star_ratio(cx, cy, r, n, phase, 0.45)
    }

    fn star_ratio(cx: f64, cy: f64, r: f64, n: usize, phase: f64, inner: f64) -> PreparedPolygon {
        let pts: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let a = phase + i as f64 * std::f64::consts::TAU / n as f64;
                let rr = if i % 2 == 0 { r } else { r * inner };
                (cx + rr * a.cos(), cy + rr * a.sin())
            })
            .collect();
        PreparedPolygon::new(MultiPolygon(vec![Polygon::new(pts.into(), vec![])]))
    }

    proptest! {
        /// Whatever the grid resolves equals the exact first-match search.
        #[test]
        fn resolved_answers_are_exact(
            shapes in prop::collection::vec((0.0..100.0f64, 0.0..100.0f64, 1.0..40.0f64, 3usize..40, 0.0..6.3f64), 1..12),
            cells in 64usize..5000,
            pts in prop::collection::vec((-10.0..110.0f64, -10.0..110.0f64), 200),
        ) {
            let ps: Vec<PreparedPolygon> = shapes.iter().map(|&(x, y, r, n, ph)| star(x, y, r, 2 * n, ph)).collect();
            let g = SetGrid::new(&ps, cells).expect("non-empty");
            for (x, y) in pts {
                // Also probe points snapped to cell corners and edges.
                for c in [Coord { x, y }, Coord { x: x.round(), y: y.round() }] {
                    let (first, any_inside, any_boundary) = first_containing(&ps, c);
                    match g.at(c) {
                        Cell::Empty => prop_assert!(!any_inside && !any_boundary),
                        Cell::First(k) => {
                            prop_assert_eq!(Some(k), first);
                            // No earlier polygon has the point on its boundary.
                            prop_assert!(ps[..k as usize].iter().all(|p| p.locate(c) == Location::Outside));
                        }
                        Cell::Inside => prop_assert!(any_inside),
                        Cell::Unknown => {}
                    }
                    // A cell's candidates: in set order, and every other
                    // polygon has the point strictly outside.
                    if let Some(near) = g.near(c) {
                        prop_assert!(near.windows(2).all(|w| w[0] < w[1]));
                        for (k, p) in ps.iter().enumerate() {
                            if !near.contains(&(k as u32)) {
                                prop_assert_eq!(p.locate(c), Location::Outside, "polygon {} left out", k);
                            }
                        }
                    } else {
                        prop_assert!(!matches!(g.at(c), Cell::Inside | Cell::Unknown));
                    }
                    let r = Rect::new(c, Coord { x: c.x + 3.0, y: c.y + 2.0 });
                    if g.empty_in(&r) {
                        for p in &ps {
                            prop_assert!(!p.intersects(&geo::Geometry::Rect(r), &r));
                        }
                    }
                }
            }
        }
    }

    proptest! {
        /// The cell of a coordinate by truncation equals `floor` then clamping,
        /// for any value (negative, huge, infinite, NaN).
        #[test]
        fn cells_by_truncation_are_cells_by_floor(
            v in prop_oneof![
                -1e3..1e3f64,
                prop::num::f64::ANY,
                Just(-0.5), Just(-0.0), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)
            ],
            n in 1usize..20,
        ) {
            let f = Frame::new(&Rect::new((0.0, 0.0), (n as f64, n as f64)), (n * n) as f64).expect("frame");
            let by_floor = |t: f64, m: usize| t.floor().clamp(0.0, (m - 1) as f64) as usize;
            prop_assert_eq!(f.col(v), by_floor(v / f.w, f.nx));
            prop_assert_eq!(f.row(v), by_floor(v / f.h, f.ny));
        }
    }

    #[test]
    fn most_points_are_resolved() {
        // Five overlapping, mildly wiggly 60-gons (like communes).
        let ps: Vec<PreparedPolygon> = (0..5)
            .map(|k| star_ratio(20.0 * k as f64, 50.0, 15.0, 60, 0.3, 0.95))
            .collect();
        let g = SetGrid::new(&ps, default_cells(&ps)).expect("non-empty");
        let mut resolved = 0;
        let n = 10_000;
        for i in 0..n {
            let c = Coord {
                x: (i % 100) as f64 + 0.37,
                y: (i / 100) as f64 + 0.61,
            };
            if g.at(c) != Cell::Unknown {
                resolved += 1;
            }
        }
        assert!(resolved > n * 9 / 10, "{resolved} of {n} resolved");
    }
}
