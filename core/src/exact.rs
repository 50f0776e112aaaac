//! Exact measures of intersections, in plain floating point (no snapping to
//! an integer grid, unlike general-purpose boolean operations).
//!
//! - The area of feature ∩ zone is computed by splitting the feature into
//!   convex parts (itself when convex, else an ear-cut triangulation) and
//!   clipping each zone ring against each part with Sutherland–Hodgman: for
//!   a convex clip region, the clipped ring's signed area is exactly the
//!   area of the ring's region inside it (zero-width bridges along the clip
//!   edges add nothing).
//! - The length of a line inside a zone is computed by cutting every
//!   segment at its intersections with the zone's edges and keeping the
//!   pieces whose midpoint is inside or on the boundary.

use geo::line_intersection::{line_intersection, LineIntersection};
use geo::{Coord, IsConvex, Kernel, LineString, Orientation, Polygon, TriangulateEarcut};

use crate::geometry::signed_area;

/// Convex parts of a polygon, each a counter-clockwise ring without the
/// closing point, whose union is the polygon and whose interiors are disjoint.
pub(crate) fn convex_parts(p: &Polygon) -> Vec<Vec<Coord>> {
    let ext = &p.exterior().0;
    if p.interiors().is_empty() && ext.len() >= 4 && p.exterior().is_convex() {
        let mut ring: Vec<Coord> = ext[..ext.len() - 1].to_vec();
        if signed_area(&ring) < 0.0 {
            ring.reverse();
        }
        ring.dedup();
        return vec![ring];
    }
    p.earcut_triangles_iter()
        .map(|t| {
            let mut r = vec![t.v1(), t.v2(), t.v3()];
            if signed_area(&r) < 0.0 {
                r.reverse();
            }
            r
        })
        .filter(|r| signed_area(r) > 0.0)
        .collect()
}

fn cut(a: Coord, b: Coord, c: Coord, d: Coord) -> Coord {
    // Intersection of segment a→b with the line c→d (a and b on opposite sides).
    let e = Coord {
        x: d.x - c.x,
        y: d.y - c.y,
    };
    let da = e.x * (a.y - c.y) - e.y * (a.x - c.x);
    let db = e.x * (b.y - c.y) - e.y * (b.x - c.x);
    let t = da / (da - db);
    // Robust side tests can split points that the float products cannot
    // (both ~0): the crossing is then at `a` to within rounding.
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Coord {
        x: a.x + t * (b.x - a.x),
        y: a.y + t * (b.y - a.y),
    }
}

/// Clip a ring (open or closed) against a convex counter-clockwise ring;
/// returns the signed area of the result.
pub(crate) fn clipped_signed_area(ring: &[Coord], clip: &[Coord]) -> f64 {
    signed_area(&clip_to_convex(ring, clip))
}

/// A ring (open or closed) clipped to a convex counter-clockwise ring
/// (Sutherland–Hodgman with robust side tests); open, possibly degenerate.
pub(crate) fn clip_to_convex(ring: &[Coord], clip: &[Coord]) -> Vec<Coord> {
    let mut pts: Vec<Coord> = ring.to_vec();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    let n = clip.len();
    let mut out = Vec::with_capacity(pts.len() + n);
    for i in 0..n {
        if pts.len() < 3 {
            return vec![];
        }
        let (c, d) = (clip[i], clip[(i + 1) % n]);
        let inside =
            |p: Coord| <f64 as geo::GeoNum>::Ker::orient2d(c, d, p) != Orientation::Clockwise;
        out.clear();
        let mut prev = pts[pts.len() - 1];
        let mut prev_in = inside(prev);
        for &cur in &pts {
            let cur_in = inside(cur);
            if cur_in {
                if !prev_in {
                    out.push(cut(prev, cur, c, d));
                }
                out.push(cur);
            } else if prev_in {
                out.push(cut(prev, cur, c, d));
            }
            prev = cur;
            prev_in = cur_in;
        }
        std::mem::swap(&mut pts, &mut out);
    }
    pts
}

/// Area of (polygons) ∩ (convex part), for valid polygons of any orientation.
pub fn area_in_part(polys: &[Polygon], part: &[Coord]) -> f64 {
    let mut a = 0.0;
    for p in polys {
        let ext = clipped_signed_area(&p.exterior().0, part).abs();
        if ext == 0.0 {
            continue;
        }
        let holes: f64 = p
            .interiors()
            .iter()
            .map(|h| clipped_signed_area(&h.0, part).abs())
            .sum();
        a += (ext - holes).max(0.0);
    }
    a
}

/// The parameters along `a→b` where it crosses or touches the segment `c→d`.
pub(crate) fn crossings(a: Coord, b: Coord, c: Coord, d: Coord, ts: &mut Vec<f64>) {
    let len2 = (b.x - a.x).powi(2) + (b.y - a.y).powi(2);
    if len2 == 0.0 {
        return;
    }
    let t_of = |p: Coord| ((p.x - a.x) * (b.x - a.x) + (p.y - a.y) * (b.y - a.y)) / len2;
    match line_intersection(geo::Line::new(a, b), geo::Line::new(c, d)) {
        Some(LineIntersection::SinglePoint { intersection, .. }) => ts.push(t_of(intersection)),
        Some(LineIntersection::Collinear { intersection }) => {
            ts.push(t_of(intersection.start));
            ts.push(t_of(intersection.end));
        }
        None => {}
    }
}

/// Total length of the parts of `line` for which `inside(midpoint)` holds,
/// after cutting each segment at the parameters `cuts(a, b)` returns.
pub(crate) fn length_where(
    line: &LineString,
    mut cuts: impl FnMut(Coord, Coord, &mut Vec<f64>),
    inside: impl Fn(Coord) -> bool,
) -> f64 {
    let mut total = 0.0;
    let mut ts = Vec::new();
    for seg in line.lines() {
        let (a, b) = (seg.start, seg.end);
        ts.clear();
        ts.push(0.0);
        ts.push(1.0);
        cuts(a, b, &mut ts);
        ts.retain(|t| (0.0..=1.0).contains(t));
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        let len = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt();
        for w in ts.windows(2) {
            if w[1] <= w[0] {
                continue;
            }
            let tm = (w[0] + w[1]) / 2.0;
            let m = Coord {
                x: a.x + tm * (b.x - a.x),
                y: a.y + tm * (b.y - a.y),
            };
            if inside(m) {
                total += (w[1] - w[0]) * len;
            }
        }
    }
    total
}

/// Area of the union of valid polygons (overlaps counted once); see
/// [`covered_area`].
pub fn union_area(polys: &[&Polygon]) -> f64 {
    covered_area(None, polys)
}

/// Area of (∪ `polys`) ∩ (∪ `zone`), or of ∪ `polys` without a zone, for
/// valid polygons of any orientation, by a sweep over vertical slabs: slab
/// boundaries at every vertex and at every crossing of two edges, so no two
/// edges cross inside a slab; in each slab the edges are ordered by height
/// at the slab's middle and the parts covered by the zone and by at least
/// one polygon (winding counts; each valid polygon adds 1 inside, 0 in its
/// holes) are summed as trapezoids. No snapping: every coordinate is an
/// input coordinate, an interpolation along one edge, or one crossing
/// point, so the result is exact up to floating-point rounding (~1e-12
/// relative in tests), unlike boolean-operation unions.
// Long because it is one exact sweep (directed edges, the abscissas where
// they start, end or cross, winding counts per slab between them), kept whole
// so that its invariants read together.
pub fn covered_area(zone: Option<&[&Polygon]>, polys: &[&Polygon]) -> f64 {
    // Directed, non-vertical edges: (left, right, winding +1/-1, is zone).
    let mut edges: Vec<(Coord, Coord, i32, bool)> = Vec::new();
    let mut push = |p: &Polygon, is_zone: bool| {
        // Exteriors counter-clockwise, holes clockwise: winding 1 inside.
        for (k, ring) in std::iter::once(p.exterior())
            .chain(p.interiors())
            .enumerate()
        {
            let ccw = signed_area(&ring.0) >= 0.0;
            let flip = if k == 0 { !ccw } else { ccw };
            for w in ring.0.windows(2) {
                let (a, b) = if flip { (w[1], w[0]) } else { (w[0], w[1]) };
                if a.x == b.x {
                    continue;
                }
                // Going right with the inside on the left (above) adds coverage above.
                if a.x < b.x {
                    edges.push((a, b, 1, is_zone));
                } else {
                    edges.push((b, a, -1, is_zone));
                }
            }
        }
    };
    for p in polys {
        push(p, false);
    }
    for z in zone.into_iter().flatten() {
        push(z, true);
    }
    if edges.is_empty() {
        return 0.0;
    }
    let need_zone = zone.is_some();
    let mut xs: Vec<f64> = edges.iter().flat_map(|e| [e.0.x, e.1.x]).collect();
    // Crossings, found with an R-tree of edge boxes.
    let tree = rstar::RTree::bulk_load(
        edges
            .iter()
            .enumerate()
            .map(|(i, e)| {
                rstar::primitives::GeomWithData::new(
                    rstar::primitives::Rectangle::from_corners(
                        [e.0.x, e.0.y.min(e.1.y)],
                        [e.1.x, e.0.y.max(e.1.y)],
                    ),
                    i,
                )
            })
            .collect(),
    );
    for (i, e) in edges.iter().enumerate() {
        let env = rstar::AABB::from_corners([e.0.x, e.0.y.min(e.1.y)], [e.1.x, e.0.y.max(e.1.y)]);
        for other in tree.locate_in_envelope_intersecting(&env) {
            let j = other.data;
            if j <= i {
                continue;
            }
            if let Some(x) = crossing_x(e.0, e.1, edges[j].0, edges[j].1) {
                xs.push(x);
            }
        }
    }
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    // Edges sorted by left end, swept into an active list.
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by(|a, b| edges[*a].0.x.total_cmp(&edges[*b].0.x));
    let y_at = |a: Coord, b: Coord, x: f64| -> f64 {
        if x <= a.x {
            a.y
        } else if x >= b.x {
            b.y
        } else {
            a.y + (b.y - a.y) * ((x - a.x) / (b.x - a.x))
        }
    };
    let mut active: Vec<usize> = Vec::new();
    let mut next = 0;
    let mut total = 0.0;
    let mut slab: Vec<(f64, f64, f64, i32, bool)> = Vec::new();
    for w in xs.windows(2) {
        let (x0, x1) = (w[0], w[1]);
        if x1 <= x0 {
            continue;
        }
        while next < order.len() && edges[order[next]].0.x <= x0 {
            active.push(order[next]);
            next += 1;
        }
        active.retain(|&i| edges[i].1.x > x0);
        let xm = 0.5 * (x0 + x1);
        slab.clear();
        for &i in &active {
            let (a, b, wd, z) = edges[i];
            if a.x <= x0 && b.x >= x1 {
                slab.push((y_at(a, b, xm), y_at(a, b, x0), y_at(a, b, x1), wd, z));
            }
        }
        slab.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut cf, mut cz) = (0, 0);
        let mut start: Option<(f64, f64)> = None;
        for &(_, ya, yb, wd, is_zone) in &slab {
            if is_zone {
                cz += wd;
            } else {
                cf += wd;
            }
            let covered = cf > 0 && (!need_zone || cz > 0);
            match (start, covered) {
                (None, true) => start = Some((ya, yb)),
                (Some((sa, sb)), false) => {
                    total += 0.5 * ((ya - sa) + (yb - sb)) * (x1 - x0);
                    start = None;
                }
                _ => {}
            }
        }
    }
    total
}

/// The x of the proper crossing of segments a–b and c–d (robust
/// orientation tests decide whether they cross), `None` if they do not.
fn crossing_x(a: Coord, b: Coord, c: Coord, d: Coord) -> Option<f64> {
    use geo::Kernel;
    type K = <f64 as geo::GeoNum>::Ker;
    let o1 = K::orient2d(a, b, c);
    let o2 = K::orient2d(a, b, d);
    let o3 = K::orient2d(c, d, a);
    let o4 = K::orient2d(c, d, b);
    if o1 == Orientation::Collinear
        || o2 == Orientation::Collinear
        || o1 == o2
        || o3 == Orientation::Collinear
        || o4 == Orientation::Collinear
        || o3 == o4
    {
        return None;
    }
    Some(cut(a, b, c, d).x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{coord, polygon, Area};

    #[test]
    fn square_clipped_by_square() {
        let zone =
            polygon![(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)];
        let f =
            polygon![(x: 5.0, y: 5.0), (x: 15.0, y: 5.0), (x: 15.0, y: 15.0), (x: 5.0, y: 15.0)];
        let parts = convex_parts(&f);
        assert_eq!(parts.len(), 1);
        assert_eq!(area_in_part(std::slice::from_ref(&zone), &parts[0]), 25.0);
        // Clockwise zone, same answer.
        let mut cw = zone.clone();
        cw.exterior_mut(|r| r.0.reverse());
        assert_eq!(area_in_part(&[cw], &parts[0]), 25.0);
    }

    #[test]
    fn nonconvex_feature_is_split() {
        let l = polygon![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 1.0), (x: 1.0, y: 1.0), (x: 1.0, y: 4.0), (x: 0.0, y: 4.0)];
        let parts = convex_parts(&l);
        assert!(parts.len() > 1);
        let total: f64 = parts.iter().map(|p| signed_area(p)).sum();
        assert!((total - l.unsigned_area()).abs() < 1e-12);
        let zone =
            polygon![(x: 0.5, y: -1.0), (x: 10.0, y: -1.0), (x: 10.0, y: 10.0), (x: 0.5, y: 10.0)];
        let a: f64 = parts
            .iter()
            .map(|p| area_in_part(std::slice::from_ref(&zone), p))
            .sum();
        assert!((a - (3.5 + 0.5 * 3.0)).abs() < 1e-12, "{a}");
    }

    #[test]
    fn hole_is_subtracted() {
        let z = polygon![
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 2.0, y: 2.0), (x: 8.0, y: 2.0), (x: 8.0, y: 8.0), (x: 2.0, y: 8.0)]],
        ];
        let part = vec![
            coord! {x: 0.0, y: 0.0},
            coord! {x: 10.0, y: 0.0},
            coord! {x: 10.0, y: 5.0},
            coord! {x: 0.0, y: 5.0},
        ];
        assert_eq!(area_in_part(&[z], &part), 50.0 - 18.0);
    }
}
