//! Exact coverage fractions: for every pixel of a window, the area of
//! pixel ∩ polygon divided by the pixel's area.
//!
//! The polygon is first mapped to pixel space (column `u`, row `v`, one unit
//! per pixel), where a fraction is a plain area. Every edge then adds, row by
//! row, the signed area between itself and the right end of the row
//! (Green's theorem, the accumulation of exact font rasterisers): a piece of
//! edge inside pixel column `k` with vertical extent `dv` and mean abscissa
//! `m` puts `dv·(k+1−m)` into column `k` and the rest of `dv` into column
//! `k+1`; a running sum along the row turns these differences into areas.
//! The sum over a closed ring is the ring's area inside each pixel, exactly
//! up to floating-point rounding (~1e-16 of a pixel), and edges outside the
//! window are clamped to its sides, so a window of a large polygon costs its
//! size plus its edges, not the polygon's bounding box.
//!
//! Pixels that no edge passes through are wholly inside or wholly outside:
//! their running sum is rounded to 0 or 1, so interior pixels get exactly 1
//! and exterior ones exactly 0, as with exactextract's flood fill.

use geo::{Coord, MultiPolygon};

use crate::geometry::signed_area;

use super::GeoTransform;

/// An edge in pixel space, oriented so that the ring it belongs to adds
/// positive area (exterior rings) or negative area (holes).
#[derive(Debug, Clone, Copy)]
struct Edge {
    a: Coord,
    b: Coord,
}

impl Edge {
    fn vmin(&self) -> f64 {
        self.a.y.min(self.b.y)
    }
    fn vmax(&self) -> f64 {
        self.a.y.max(self.b.y)
    }
}

/// A polygon mapped to a raster's pixel space, ready to give the coverage
/// fractions of any window of pixels.
///
/// ```
/// use geo::{MultiPolygon, Rect};
/// use terrastat_core::raster::{GeoTransform, PixelPolygon};
///
/// // 1 m pixels from (0, 4) down; a 1.5 × 1 m rectangle from (0.25, 2).
/// let gt = GeoTransform::north_up(0.0, 4.0, 1.0, 1.0);
/// let zone = MultiPolygon(vec![Rect::new((0.25, 2.0), (1.75, 3.0)).to_polygon()]);
/// let p = PixelPolygon::new(&zone, &gt);
/// let mut scratch = Default::default();
/// let f = p.coverage(1..2, 0..2, &mut scratch); // row 1, columns 0 and 1
/// assert_eq!(f, &[0.75, 0.75]);
/// ```
#[derive(Debug, Clone)]
pub struct PixelPolygon {
    /// Edges sorted by their smallest row coordinate.
    edges: Vec<Edge>,
    /// Bounding box in pixel space: (umin, vmin, umax, vmax).
    bbox: [f64; 4],
}

/// Reusable buffers of [`PixelPolygon::coverage`] (one per worker thread).
#[derive(Debug, Default, Clone)]
pub struct CoverageScratch {
    acc: Vec<f64>,
    touched: Vec<bool>,
    frac: Vec<f64>,
}

impl PixelPolygon {
    /// Map `polygon` (in the raster's CRS) to the pixel space of `gt`.
    /// Rings are re-oriented as needed: input orientation does not matter.
    pub fn new(polygon: &MultiPolygon, gt: &GeoTransform) -> PixelPolygon {
        let mut edges = Vec::new();
        let mut bbox = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for p in &polygon.0 {
            let rings = std::iter::once((p.exterior(), true))
                .chain(p.interiors().iter().map(|r| (r, false)));
            for (ring, exterior) in rings {
                let mut pts: Vec<Coord> = ring.0.iter().map(|c| gt.to_pixel(*c)).collect();
                if pts.len() < 3 {
                    continue;
                }
                let a = signed_area(&pts);
                if a == 0.0 {
                    continue;
                }
                // With the accumulation below a ring of positive shoelace
                // area in (u, v) adds −area: flip so exteriors add +area
                // and holes add −area.
                if (a > 0.0) == exterior {
                    pts.reverse();
                }
                for w in pts.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    bbox[0] = bbox[0].min(a.x);
                    bbox[1] = bbox[1].min(a.y);
                    bbox[2] = bbox[2].max(a.x);
                    bbox[3] = bbox[3].max(a.y);
                    if a != b {
                        edges.push(Edge { a, b });
                    }
                }
                // An unclosed ring still closes.
                let (first, last) = (pts[0], pts[pts.len() - 1]);
                if first != last {
                    edges.push(Edge { a: last, b: first });
                }
            }
        }
        edges.sort_by(|e, f| e.vmin().total_cmp(&f.vmin()));
        PixelPolygon { edges, bbox }
    }

    /// Bounding box in pixel space: `[umin, vmin, umax, vmax]`.
    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }

    /// Whether the polygon has no area.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// The pixels whose closure meets the polygon's bounding box, clipped to
    /// a `width` × `height` raster: `(rows, columns)`, or `None` when outside.
    pub fn pixel_window(
        &self,
        width: usize,
        height: usize,
    ) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
        if self.is_empty() {
            return None;
        }
        let [umin, vmin, umax, vmax] = self.bbox;
        let clamp = |x: f64, n: usize| x.clamp(0.0, n as f64) as usize;
        let (c0, c1) = (clamp(umin.floor(), width), clamp(umax.ceil(), width));
        let (r0, r1) = (clamp(vmin.floor(), height), clamp(vmax.ceil(), height));
        (c0 < c1 && r0 < r1).then_some((r0..r1, c0..c1))
    }

    /// Coverage fractions of the pixels of rows `rows` × columns `cols`, row
    /// by row (`rows.len() * cols.len()` values in `[0, 1]`).
    pub fn coverage<'s>(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        scratch: &'s mut CoverageScratch,
    ) -> &'s [f64] {
        let (nr, nc) = (rows.len(), cols.len());
        let stride = nc + 1;
        scratch.acc.clear();
        scratch.acc.resize(nr * stride, 0.0);
        scratch.touched.clear();
        scratch.touched.resize(nr * nc, false);
        let (r0, r1) = (rows.start as f64, rows.end as f64);
        let c0 = cols.start as f64;
        let mut window = Window {
            acc: &mut scratch.acc,
            touched: &mut scratch.touched,
            nc,
            r0: rows.start,
        };
        // Edges are sorted by vmin: stop at the first one starting below the window.
        let end = self.edges.partition_point(|e| e.vmin() < r1);
        for e in &self.edges[..end] {
            if e.vmax() <= r0 {
                continue;
            }
            let a = Coord {
                x: e.a.x - c0,
                y: e.a.y,
            };
            let b = Coord {
                x: e.b.x - c0,
                y: e.b.y,
            };
            window.edge(a, b, r0, r1);
        }
        scratch.frac.clear();
        scratch.frac.reserve(nr * nc);
        for r in 0..nr {
            let acc = &scratch.acc[r * stride..r * stride + nc];
            let touched = &scratch.touched[r * nc..(r + 1) * nc];
            let mut s = 0.0;
            for (a, t) in acc.iter().zip(touched) {
                s += a;
                let f = if *t { s } else { s.round() };
                scratch.frac.push(f.clamp(0.0, 1.0));
            }
        }
        &scratch.frac
    }
}

/// The accumulation buffers of one window, in window-local columns.
struct Window<'a> {
    acc: &'a mut [f64],
    touched: &'a mut [bool],
    nc: usize,
    r0: usize,
}

impl Window<'_> {
    /// Add edge `a → b` (columns relative to the window) for rows in `[r0, r1)`.
    fn edge(&mut self, a: Coord, b: Coord, r0: f64, r1: f64) {
        if a.y == b.y {
            // Horizontal: no area, but the pixels it crosses are partial
            // unless it runs along a row boundary.
            if a.y.fract() != 0.0 && a.y >= r0 && a.y < r1 {
                let row = a.y.floor() as usize - self.r0;
                let (lo, hi) = (a.x.min(b.x), a.x.max(b.x));
                let nc = self.nc as f64;
                let k0 = lo.floor().clamp(0.0, nc) as usize;
                let k1 = hi.ceil().clamp(0.0, nc) as usize;
                self.touched[row * self.nc + k0..row * self.nc + k1].fill(true);
            }
            return;
        }
        let (lo, hi) = (a.y.min(b.y).max(r0), a.y.max(b.y).min(r1));
        if lo >= hi {
            return;
        }
        let u_at = |v: f64| -> f64 {
            if v == a.y {
                a.x
            } else if v == b.y {
                b.x
            } else {
                a.x + (v - a.y) * (b.x - a.x) / (b.y - a.y)
            }
        };
        let down = b.y > a.y;
        let mut v = lo;
        let mut u = u_at(lo);
        while v < hi {
            let row = v.floor();
            let next = (row + 1.0).min(hi);
            let un = u_at(next);
            let r = row as usize - self.r0;
            if down {
                self.piece(r, u, v, un, next);
            } else {
                self.piece(r, un, next, u, v);
            }
            v = next;
            u = un;
        }
    }

    /// Add the piece `(u0, v0) → (u1, v1)` lying within row `r`.
    fn piece(&mut self, r: usize, u0: f64, v0: f64, u1: f64, v1: f64) {
        let nc = self.nc;
        let row = r * (nc + 1);
        let dv = v1 - v0;
        let ncf = nc as f64;
        if u0 == u1 {
            let x = u0;
            if x <= 0.0 {
                self.acc[row] += dv;
            } else if x < ncf {
                let k = x.floor();
                let ki = k as usize;
                let right = k + 1.0 - x;
                self.acc[row + ki] += dv * right;
                self.acc[row + ki + 1] += dv - dv * right;
                if x != k {
                    self.touched[r * nc + ki] = true;
                }
            }
            return;
        }
        // Walk from left to right; `dir` restores the piece's direction.
        let (xa, va, xb, vb, dir) = if u0 < u1 {
            (u0, v0, u1, v1, 1.0)
        } else {
            (u1, v1, u0, v0, -1.0)
        };
        let v_at = |x: f64| -> f64 {
            if x == xa {
                va
            } else if x == xb {
                vb
            } else {
                va + (x - xa) * (vb - va) / (xb - xa)
            }
        };
        let mut x = xa;
        let mut vx = va;
        if x < 0.0 {
            // The part left of the window covers every column of the row.
            let xe = xb.min(0.0);
            let ve = v_at(xe);
            self.acc[row] += dir * (ve - vx);
            x = xe;
            vx = ve;
        }
        while x < xb && x < ncf {
            let k = x.floor();
            let xe = (k + 1.0).min(xb);
            let ve = v_at(xe);
            let dvp = dir * (ve - vx);
            let ki = k as usize;
            let right = k + 1.0 - 0.5 * (x + xe);
            self.acc[row + ki] += dvp * right;
            self.acc[row + ki + 1] += dvp - dvp * right;
            self.touched[r * nc + ki] = true;
            x = xe;
            vx = ve;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Polygon, Rect};
    use proptest::prelude::*;

    fn unit_gt() -> GeoTransform {
        GeoTransform::north_up(0.0, 0.0, 1.0, 1.0)
    }

    /// Brute force: clip the polygon to every pixel square (Sutherland–Hodgman).
    fn brute(
        p: &MultiPolygon,
        gt: &GeoTransform,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> Vec<f64> {
        let mut out = Vec::new();
        for r in rows {
            for c in cols.clone() {
                let corners = [(c, r + 1), (c + 1, r + 1), (c + 1, r), (c, r)].map(|(c, r)| {
                    gt.to_world(Coord {
                        x: c as f64,
                        y: r as f64,
                    })
                });
                let mut sq = corners.to_vec();
                if signed_area(&sq) < 0.0 {
                    sq.reverse();
                }
                let area = signed_area(&sq);
                out.push(crate::exact::area_in_part(&p.0, &sq) / area);
            }
        }
        out
    }

    #[test]
    fn pixel_inside_is_one_and_zone_inside_pixel_is_its_share() {
        let gt = GeoTransform::north_up(100.0, 200.0, 10.0, 10.0);
        // A zone covering pixels (1..3, 1..3) fully.
        let z = MultiPolygon(vec![Rect::new((105.0, 165.0), (135.0, 195.0)).to_polygon()]);
        let p = PixelPolygon::new(&z, &gt);
        let mut s = CoverageScratch::default();
        let f = p.coverage(0..4, 0..4, &mut s).to_vec();
        assert_eq!(f[4 + 1], 1.0);
        assert_eq!(f[8 + 2], 1.0);
        assert_eq!(f[0], 0.25);
        assert_eq!(f[3], 0.25);
        assert_eq!(f[4], 0.5);
        // A 2 × 3 m building inside one 10 m pixel: 6 / 100.
        let b = MultiPolygon(vec![Rect::new((112.0, 181.0), (114.0, 184.0)).to_polygon()]);
        let p = PixelPolygon::new(&b, &gt);
        let (rows, cols) = p.pixel_window(10, 10).expect("inside");
        assert_eq!((rows.clone(), cols.clone()), (1..2, 1..2));
        assert!((p.coverage(rows, cols, &mut s)[0] - 0.06).abs() < 1e-15);
    }

    #[test]
    fn hole_and_orientation() {
        let gt = unit_gt();
        let outer = Rect::new((0.0, -4.0), (4.0, 0.0)).to_polygon();
        let hole = Rect::new((1.5, -2.5), (2.5, -1.5)).to_polygon();
        let with_hole = Polygon::new(outer.exterior().clone(), vec![hole.exterior().clone()]);
        for poly in [with_hole.clone(), {
            let mut p = with_hole.clone();
            p.exterior_mut(|e| e.0.reverse());
            p
        }] {
            let mp = MultiPolygon(vec![poly]);
            let p = PixelPolygon::new(&mp, &gt);
            let f = p
                .coverage(0..4, 0..4, &mut CoverageScratch::default())
                .to_vec();
            let total: f64 = f.iter().sum();
            assert!((total - 15.0).abs() < 1e-12, "{total}");
            assert_eq!(f[5], 0.75);
            assert_eq!(f[0], 1.0);
        }
    }

    fn star(cx: f64, cy: f64, n: usize, radii: Vec<f64>, phase: f64) -> Polygon {
        let pts: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let t = phase + i as f64 * std::f64::consts::TAU / n as f64;
                let r = radii[i % radii.len()];
                (cx + r * t.cos(), cy + r * t.sin())
            })
            .collect();
        Polygon::new(pts.into(), vec![])
    }

    proptest! {
        /// The accumulation equals clipping every pixel, on star-shaped
        /// (non-convex) polygons with holes, any window, any pixel size.
        #[test]
        fn agrees_with_clipping_each_pixel(
            cx in 3.0..7.0f64, cy in -7.0..-3.0f64,
            n in 3usize..12, radii in prop::collection::vec(0.3..3.5f64, 1..5),
            phase in 0.0..6.3f64, px in 0.3..2.0f64, py in 0.3..2.0f64,
            hole in any::<bool>(), r0 in 0usize..6, c0 in 0usize..6,
        ) {
            let mut poly = star(cx, cy, n, radii, phase);
            if hole {
                let h = star(cx, cy, 4, vec![0.1], 0.3);
                poly = Polygon::new(poly.exterior().clone(), vec![h.exterior().clone()]);
            }
            let mp = MultiPolygon(vec![poly]);
            let gt = GeoTransform::north_up(0.0, 0.0, px, py);
            let (h, w) = ((12.0 / py).ceil() as usize, (12.0 / px).ceil() as usize);
            let rows = r0.min(h - 1)..h;
            let cols = c0.min(w - 1)..w;
            let p = PixelPolygon::new(&mp, &gt);
            let fast = p.coverage(rows.clone(), cols.clone(), &mut CoverageScratch::default()).to_vec();
            let slow = brute(&mp, &gt, rows, cols);
            for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
                prop_assert!((f - s).abs() < 1e-12, "pixel {}: {} vs {}", i, f, s);
                // A pixel the polygon misses gets exactly 0 (it would
                // otherwise count in min, max and variety).
                if *s == 0.0 {
                    prop_assert_eq!(*f, 0.0, "pixel {}", i);
                }
            }
        }

        /// The fractions of the cells of a tiling sum to 1 in every pixel.
        #[test]
        fn tiling_sums_to_one(cuts in prop::collection::vec(0.05..0.95f64, 3), px in 0.2..1.5f64, ox in -0.5..0.5f64) {
            // Four quadrilaterals tiling [0, 6]²: a shared interior vertex.
            let (x, y) = (6.0 * cuts[0], 6.0 * cuts[1]);
            let m = 6.0 * cuts[2];
            let tiles = [
                vec![(0.0, 0.0), (m, 0.0), (x, y), (0.0, 6.0 - m)],
                vec![(m, 0.0), (6.0, 0.0), (6.0, m), (x, y)],
                vec![(x, y), (6.0, m), (6.0, 6.0), (6.0 - m, 6.0)],
                vec![(0.0, 6.0 - m), (x, y), (6.0 - m, 6.0), (0.0, 6.0)],
            ];
            let gt = GeoTransform::north_up(ox, 6.0 - ox, px, px);
            let n = (7.0 / px).ceil() as usize;
            let mut sum = vec![0.0; n * n];
            for t in tiles {
                let mut ring = t.clone();
                ring.push(t[0]);
                let mp = MultiPolygon(vec![Polygon::new(ring.into(), vec![])]);
                let f = PixelPolygon::new(&mp, &gt).coverage(0..n, 0..n, &mut CoverageScratch::default()).to_vec();
                for (s, f) in sum.iter_mut().zip(f) { *s += f; }
            }
            let square = MultiPolygon(vec![Rect::new((0.0, 0.0), (6.0, 6.0)).to_polygon()]);
            let whole = PixelPolygon::new(&square, &gt).coverage(0..n, 0..n, &mut CoverageScratch::default()).to_vec();
            for (s, w) in sum.iter().zip(&whole) {
                prop_assert!((s - w).abs() < 1e-12, "{} vs {}", s, w);
            }
        }
    }
}
