//! Small geometric helpers shared by the modules above (a leaf: it uses
//! nothing else of the crate): feature centroids and measures, boxes (union,
//! widening, a regular grid over a box), ring signed areas, and clipping of
//! polygons to a rectangle.

use geo::line_measures::Euclidean;
use geo::{Area, Centroid, Coord, Geometry, Length, LineString, MultiPolygon, Polygon, Rect};

/// The point a feature is attributed by under `assign = "centroid"`: the
/// area centroid of polygons, the length centroid of lines, the mean of points.
pub fn centroid(g: &Geometry) -> Option<Coord> {
    g.centroid().map(|p| p.0)
}

/// The measure of a geometry: area, length, or number of points.
pub(crate) fn measure(g: &Geometry) -> f64 {
    match g {
        Geometry::Point(_) => 1.0,
        Geometry::MultiPoint(mp) => mp.0.len() as f64,
        Geometry::Line(l) => Euclidean.length(l),
        Geometry::LineString(l) => Euclidean.length(l),
        Geometry::MultiLineString(l) => Euclidean.length(l),
        other => other.unsigned_area(),
    }
}

/// The smallest box holding both (either may be absent).
///
/// ```
/// use geo::Rect;
/// use terrastat_core::union_rects;
/// let u = union_rects(Some(Rect::new((0., 0.), (1., 1.))), Some(Rect::new((2., -1.), (3., 0.))));
/// assert_eq!(u, Some(Rect::new((0., -1.), (3., 1.))));
/// assert_eq!(union_rects(None, None), None);
/// ```
pub fn union_rects(a: Option<Rect>, b: Option<Rect>) -> Option<Rect> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Rect::new(
            Coord {
                x: a.min().x.min(b.min().x),
                y: a.min().y.min(b.min().y),
            },
            Coord {
                x: a.max().x.max(b.max().x),
                y: a.max().y.max(b.max().y),
            },
        )),
        (x, None) | (None, x) => x,
    }
}

/// `r` widened by `m` on every side.
pub(crate) fn grow(r: &Rect, m: f64) -> Rect {
    Rect::new(
        Coord {
            x: r.min().x - m,
            y: r.min().y - m,
        },
        Coord {
            x: r.max().x + m,
            y: r.max().y + m,
        },
    )
}

/// The polygonal geometry `g` as a multipolygon (`None` for points and lines).
pub(crate) fn as_multipolygon(g: &Geometry) -> Option<MultiPolygon> {
    match g {
        Geometry::Polygon(p) => Some(MultiPolygon(vec![p.clone()])),
        Geometry::MultiPolygon(mp) => Some(mp.clone()),
        _ => None,
    }
}

/// Signed area of a ring (open or closed): positive when counter-clockwise.
/// A closing point equal to the first adds nothing.
///
/// The one signed area of the crate: exact areas, ring orientation, the
/// layer checks and raster coverage all use it. For a ring of 3 or more
/// points it is, operation for operation, `geo`'s `get_linestring_area` (the
/// area `geo` orients and validates by; the layer checks had their own copy
/// of it): the same shifted differences, the same products (up to operand
/// order, which IEEE multiplication ignores), summed in the same order.
pub(crate) fn signed_area(ring: &[Coord]) -> f64 {
    if ring.len() < 3 {
        return 0.0;
    }
    // Relative to the first point: with projected coordinates in the
    // millions, the plain shoelace would lose ~1e-3 m² to cancellation.
    let o = ring[0];
    let mut s = 0.0;
    let n = ring.len();
    for i in 1..n - 1 {
        let (a, b) = (ring[i], ring[i + 1]);
        s += (a.x - o.x) * (b.y - o.y) - (b.x - o.x) * (a.y - o.y);
    }
    s / 2.0
}

/// The signed area of ring `ring` by the plain shoelace over raw
/// coordinates, wrapping from the last point to the first (so it takes
/// open or closed rings).
///
/// Not the same arithmetic as [`signed_area`] (no shift to the first
/// point, another summation order): the two can differ in the last bits,
/// and in sign for a nearly degenerate ring. H3 cells are oriented by this
/// one; moving them to [`signed_area`] could flip a cell and change
/// outputs, so both are kept.
pub(crate) fn signed_area_unshifted(ring: &[Coord]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a.x * b.y - b.x * a.y
        })
        .sum::<f64>()
        / 2.0
}

/// Clip a ring to a rectangle (Sutherland–Hodgman against the four sides).
/// The result may have zero-width spikes along the rectangle's sides; its
/// signed area is exactly the area of the ring inside the rectangle.
fn clip_ring(ring: &LineString, r: &Rect) -> Vec<Coord> {
    let mut pts: Vec<Coord> = ring.0.clone();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    type Inside = fn(Coord, f64) -> bool;
    type Cut = fn(Coord, Coord, f64) -> Coord;
    fn cut_x(a: Coord, b: Coord, x: f64) -> Coord {
        let t = (x - a.x) / (b.x - a.x);
        Coord {
            x,
            y: a.y + t * (b.y - a.y),
        }
    }
    fn cut_y(a: Coord, b: Coord, y: f64) -> Coord {
        let t = (y - a.y) / (b.y - a.y);
        Coord {
            x: a.x + t * (b.x - a.x),
            y,
        }
    }
    let sides: [(Inside, Cut, f64); 4] = [
        (|c, v| c.x >= v, cut_x, r.min().x),
        (|c, v| c.x <= v, cut_x, r.max().x),
        (|c, v| c.y >= v, cut_y, r.min().y),
        (|c, v| c.y <= v, cut_y, r.max().y),
    ];
    for (inside, cut, v) in sides {
        if pts.is_empty() {
            break;
        }
        let mut out = Vec::with_capacity(pts.len() + 4);
        let mut prev = pts[pts.len() - 1];
        for &cur in &pts {
            let (ci, pi) = (inside(cur, v), inside(prev, v));
            if ci {
                if !pi {
                    out.push(cut(prev, cur, v));
                }
                out.push(cur);
            } else if pi {
                out.push(cut(prev, cur, v));
            }
            prev = cur;
        }
        pts = out;
    }
    pts
}

/// Clip a multipolygon to a rectangle; rings that vanish are dropped.
pub fn clip_multipolygon_to_rect(mp: &MultiPolygon, r: &Rect) -> MultiPolygon {
    let mut out = Vec::new();
    for p in mp {
        let ext = clip_ring(p.exterior(), r);
        if ext.len() < 3 {
            continue;
        }
        let holes: Vec<LineString> = p
            .interiors()
            .iter()
            .map(|h| clip_ring(h, r))
            .filter(|h| h.len() >= 3)
            .map(LineString::from)
            .collect();
        out.push(Polygon::new(LineString::from(ext), holes));
    }
    MultiPolygon(out)
}

/// A regular grid laid over a box: cell arithmetic shared by
/// [`SetGrid`](crate::setgrid::SetGrid) and the per-polygon grid of
/// [`PreparedPolygon`](crate::index::PreparedPolygon).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) x0: f64,
    pub(crate) y0: f64,
    pub(crate) w: f64,
    pub(crate) h: f64,
    pub(crate) nx: usize,
    pub(crate) ny: usize,
    /// Rounding guard: well above the error of the interpolations below,
    /// far below any cell size.
    pub(crate) eps: f64,
}

impl Frame {
    /// About `cells` square-ish cells over `r` (at most 2¹⁴ per side);
    /// `None` when `r` is degenerate or not finite.
    pub(crate) fn new(r: &Rect, cells: f64) -> Option<Frame> {
        let (wd, ht) = (r.width(), r.height());
        if !(wd > 0.0 && ht > 0.0 && wd.is_finite() && ht.is_finite()) {
            return None;
        }
        let nx = ((cells * wd / ht).sqrt().round() as usize).clamp(1, 1 << 14);
        let ny = ((cells / nx as f64).round() as usize).clamp(1, 1 << 14);
        let scale = r.min().x.abs().max(r.max().x.abs()) + r.min().y.abs().max(r.max().y.abs());
        Some(Frame {
            x0: r.min().x,
            y0: r.min().y,
            w: wd / nx as f64,
            h: ht / ny as f64,
            nx,
            ny,
            eps: scale * 1e-11,
        })
    }

    /// The cells `r` meets, clamped to the grid: `(x0, x1, y0, y1)`, inclusive.
    pub(crate) fn cells(&self, r: &Rect) -> (usize, usize, usize, usize) {
        (
            self.col(r.min().x),
            self.col(r.max().x),
            self.row(r.min().y),
            self.row(r.max().y),
        )
    }

    // `as usize` truncates and saturates (negatives and NaN give 0): the
    // same cells as `floor` then clamping, without a call to libm's `floor`
    // (the baseline x86-64 target has no rounding instruction).
    pub(crate) fn col(&self, x: f64) -> usize {
        (((x - self.x0) / self.w) as usize).min(self.nx - 1)
    }

    pub(crate) fn row(&self, y: f64) -> usize {
        (((y - self.y0) / self.h) as usize).min(self.ny - 1)
    }

    /// Whether `c` lies in the grid's box.
    pub(crate) fn contains_point(&self, c: Coord) -> bool {
        c.x >= self.x0
            && c.y >= self.y0
            && c.x <= self.x0 + self.w * self.nx as f64
            && c.y <= self.y0 + self.h * self.ny as f64
    }

    /// Whether `r` lies entirely outside the grid's box.
    pub(crate) fn outside(&self, r: &Rect) -> bool {
        r.max().x < self.x0
            || r.max().y < self.y0
            || r.min().x > self.x0 + self.w * self.nx as f64
            || r.min().y > self.y0 + self.h * self.ny as f64
    }

    /// Every cell whose closure segment `a`–`b` may touch, row by row:
    /// `visit(i0, i1, j)` for cells `i0..=i1` of row `j`. Each row's x-range
    /// is the segment's extent within the row band, both widened by a guard
    /// far above floating-point rounding: a point on the segment (or on a
    /// cell border the segment touches) always falls in a visited cell, since
    /// the cell of a coordinate is a monotone function of it.
    pub(crate) fn segment_cells(
        &self,
        a: Coord,
        b: Coord,
        mut visit: impl FnMut(usize, usize, usize),
    ) {
        let e = self.eps;
        let (lo, hi) = if a.y <= b.y { (a, b) } else { (b, a) };
        let (j0, j1) = (self.row(lo.y - e), self.row(hi.y + e));
        for j in j0..=j1 {
            let band_lo = (self.y0 + j as f64 * self.h - e).max(lo.y);
            let band_hi = (self.y0 + (j + 1) as f64 * self.h + e).min(hi.y);
            let (xa, xb) = if hi.y - lo.y <= e || band_hi < band_lo {
                (lo.x.min(hi.x), lo.x.max(hi.x))
            } else {
                let x_at =
                    |y: f64| lo.x + (hi.x - lo.x) * ((y - lo.y) / (hi.y - lo.y)).clamp(0.0, 1.0);
                let (p, q) = (x_at(band_lo), x_at(band_hi));
                (p.min(q), p.max(q))
            };
            visit(self.col(xa - e), self.col(xb + e), j);
        }
    }

    /// The centre of cell `(i, j)`.
    pub(crate) fn centre(&self, i: usize, j: usize) -> Coord {
        Coord {
            x: self.x0 + (i as f64 + 0.5) * self.w,
            y: self.y0 + (j as f64 + 0.5) * self.h,
        }
    }
}
