//! Brute-force reference computations: no index, one thread, `geo`'s
//! predicates and boolean operations used directly. The indexed, parallel
//! paths of the overlay ([`Overlay`](crate::Overlay)) and of [`crate::relate`]
//! are tested against these. They are slow (quadratic): for tests and checks
//! only.
//!
//! Compiled only with the `testing` feature (and in the crate's own unit
//! tests); not part of the stable API. Crates whose tests use it enable the
//! feature in their `[dev-dependencies]`.

use geo::line_measures::{Distance, Euclidean};

use geo::{Area, BooleanOps, Contains, Geometry, Intersects, MultiPolygon, TriangulateEarcut};

use crate::layer::Layer;
use crate::relate::Predicate;

use crate::geometry::as_multipolygon as as_mp;
use crate::geometry::centroid;

/// The engine's own polygon validity (what the layer checks run), to be
/// compared with `geo`'s `Validation` (the `validity_check` example).
pub use crate::validity::multi_polygon_is_valid;

/// The centroid zone of each feature: first zone strictly containing the
/// centroid, else first zone whose boundary it is on.
pub fn centroid_zones(features: &[Geometry], zones: &[MultiPolygon]) -> Vec<Option<u32>> {
    features
        .iter()
        .map(|g| {
            let c = centroid(g)?;
            let inside = zones.iter().position(|z| z.contains(&c));
            inside
                .or_else(|| zones.iter().position(|z| z.intersects(&c)))
                .map(|z| z as u32)
        })
        .collect()
}

fn triangles(mp: &MultiPolygon) -> Vec<Vec<geo::Coord>> {
    mp.iter()
        .flat_map(|p| p.earcut_triangles_iter())
        .map(|t| {
            let mut r = vec![t.v1(), t.v2(), t.v3()];
            if crate::geometry::signed_area(&r) < 0.0 {
                r.reverse();
            }
            r
        })
        .collect()
}

/// Area of a ∩ b as Σ over pairs of triangles of both (ear-cut) of the
/// area of their (convex) intersection: exact in floating point, and
/// independent of the ring clipping used by the indexed path.
pub fn intersection_area(a: &MultiPolygon, b: &MultiPolygon) -> f64 {
    let tb = triangles(b);
    triangles(a)
        .iter()
        .map(|ta| {
            tb.iter()
                .map(|t| crate::exact::clipped_signed_area(t, ta).abs())
                .sum::<f64>()
        })
        .sum()
}

/// Area of the union of a few polygons by inclusion–exclusion, each
/// intersection Σ over tuples of (ear-cut) triangles of their convex
/// intersection: independent of the sweep of [`crate::exact::union_area`]
/// and of boolean operations. Exponential in the number of polygons.
pub fn union_area_small(polys: &[MultiPolygon]) -> f64 {
    // Degenerate (zero-area) triangles add nothing and cannot clip.
    let tris: Vec<Vec<Vec<geo::Coord>>> = polys
        .iter()
        .map(|p| {
            triangles(p)
                .into_iter()
                .filter(|t| crate::geometry::signed_area(t) > 0.0)
                .collect()
        })
        .collect();
    let n = polys.len();
    let mut total = 0.0;
    for subset in 1u32..(1 << n) {
        let members: Vec<usize> = (0..n).filter(|i| subset & (1 << i) != 0).collect();
        // Σ over one triangle per member of the area of their intersection.
        let mut partial: Vec<Vec<geo::Coord>> = tris[members[0]].clone();
        for &m in &members[1..] {
            partial = partial
                .iter()
                .flat_map(|p| {
                    tris[m]
                        .iter()
                        .map(|t| crate::exact::clip_to_convex(p, t))
                        .filter(|r| r.len() >= 3)
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        let area: f64 = partial
            .iter()
            .map(|r| crate::geometry::signed_area(r).abs())
            .sum();
        if members.len() % 2 == 1 {
            total += area;
        } else {
            total -= area;
        }
    }
    total
}

/// Length of a line inside or on the boundary of a zone: every segment is
/// cut at its crossings with every edge (no index) and the pieces whose
/// midpoint `geo` says intersects the zone are kept.
pub fn length_inside(zone: &MultiPolygon, l: &geo::LineString) -> f64 {
    use geo::LinesIter;
    let edges: Vec<geo::Line> = zone.lines_iter().collect();
    crate::exact::length_where(
        l,
        |a, b, ts| {
            for e in &edges {
                crate::exact::crossings(a, b, e.start, e.end, ts);
            }
        },
        |m| zone.intersects(&m),
    )
}

/// measure(feature ∩ zone) for every intersecting pair, as `(zone, feature, measure)`, sorted.
pub fn pairs(features: &[Geometry], zones: &[MultiPolygon]) -> Vec<(u32, u32, f64)> {
    let mut out = Vec::new();
    for (z, zone) in zones.iter().enumerate() {
        for (f, g) in features.iter().enumerate() {
            if !g.intersects(zone) {
                continue;
            }
            let m = match g {
                Geometry::Point(p) => {
                    if zone.intersects(p) {
                        1.0
                    } else {
                        0.0
                    }
                }
                Geometry::MultiPoint(mp) => {
                    mp.iter().filter(|p| zone.intersects(*p)).count() as f64
                }
                Geometry::LineString(l) => length_inside(zone, l),
                Geometry::MultiLineString(ml) => ml.iter().map(|l| length_inside(zone, l)).sum(),
                other => match as_mp(other) {
                    Some(mp) => intersection_area(&mp, zone),
                    None => 0.0,
                },
            };
            out.push((z as u32, f as u32, m));
        }
    }
    out
}

/// Area of the union of the polygon features inside each zone.
pub fn covered_areas(features: &[Geometry], zones: &[MultiPolygon]) -> Vec<f64> {
    zones
        .iter()
        .map(|zone| {
            let pieces: Vec<MultiPolygon> = features
                .iter()
                .filter_map(as_mp)
                .map(|mp| mp.intersection(zone))
                .collect();
            geo::unary_union(pieces.iter()).unsigned_area()
        })
        .collect()
}

/// `share_within` flags, by scanning every pair.
pub fn flags(layer: &Layer, other: &Layer, predicate: Predicate) -> Vec<bool> {
    layer
        .geometries()
        .iter()
        .map(|g| match predicate {
            Predicate::Intersects => other.geometries().iter().any(|o| o.intersects(g)),
            Predicate::Centroid => {
                centroid(g).is_some_and(|c| other.geometries().iter().any(|o| o.intersects(&c)))
            }
        })
        .collect()
}

/// Nearest distances, by scanning every pair.
pub fn nearest_distances(layer: &Layer, other: &Layer) -> Vec<Option<f64>> {
    layer
        .geometries()
        .iter()
        .map(|g| {
            other
                .geometries()
                .iter()
                .map(|o| Euclidean.distance(g, o))
                .min_by(f64::total_cmp)
        })
        .collect()
}
