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

/// Convex parts of a polygon, each a counter-clockwise ring without the
/// closing point, whose union is the polygon and whose interiors are disjoint.
pub fn convex_parts(p: &Polygon) -> Vec<Vec<Coord>> {
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

/// Signed area of a ring (open or closed): positive when counter-clockwise.
/// A closing point equal to the first adds nothing.
pub fn signed_area(ring: &[Coord]) -> f64 {
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

fn cut(a: Coord, b: Coord, c: Coord, d: Coord) -> Coord {
    // Intersection of segment a→b with the line c→d (a and b on opposite sides).
    let e = Coord {
        x: d.x - c.x,
        y: d.y - c.y,
    };
    let da = e.x * (a.y - c.y) - e.y * (a.x - c.x);
    let db = e.x * (b.y - c.y) - e.y * (b.x - c.x);
    let t = da / (da - db);
    Coord {
        x: a.x + t * (b.x - a.x),
        y: a.y + t * (b.y - a.y),
    }
}

/// Clip a ring (open or closed) against a convex counter-clockwise ring;
/// returns the signed area of the result.
pub fn clipped_signed_area(ring: &[Coord], clip: &[Coord]) -> f64 {
    let mut pts: Vec<Coord> = ring.to_vec();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    let n = clip.len();
    let mut out = Vec::with_capacity(pts.len() + n);
    for i in 0..n {
        if pts.len() < 3 {
            return 0.0;
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
    signed_area(&pts)
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
