//! Polygon validity, with the answer of `geo`'s [`Validation::is_valid`]
//! in O(n log n) per ring instead of O(n²).
//!
//! `geo` tests every pair of a ring's edges for a self-intersection, and
//! every pair of a multi-polygon's members with a full `relate`. A French
//! commune layer (35 k rings of up to a few hundred vertices) spent most of
//! its reading time there. Here the edges are swept in order of their
//! smallest x, so only pairs whose boxes overlap are tested, with the same
//! exact predicate; members whose boxes are apart cannot overlap or touch,
//! so their `relate` is skipped. Everything else (rings with holes) is
//! `geo`'s own code path. `tests` compares both on random and real shapes.
//!
//! [`Validation::is_valid`]: geo::Validation::is_valid

use geo::coordinate_position::CoordPos;
use geo::dimensions::Dimensions;
use geo::{
    BoundingRect, Coord, Intersects, Line, LineString, MultiPolygon, Polygon, PreparedGeometry,
    Relate,
};

/// Whether a ring has fewer than four points once consecutive repeats
/// are dropped (`geo`'s `check_too_few_points`).
fn too_few_points(ring: &LineString) -> bool {
    let distinct = 1 + ring.0.windows(2).filter(|w| w[0] != w[1]).count();
    ring.0.is_empty() || distinct < 4
}

/// Whether two edges of a ring meet other than where one ends and the
/// other starts (`geo`'s `linestring_has_self_intersection`, whose test is
/// symmetric in the two edges).
fn crossing(a: &Line, b: &Line) -> bool {
    a.start != b.end && a.end != b.start && a.intersects(b)
}

/// Whether a ring intersects itself, by a sweep over its edges' boxes.
///
/// Two segments that meet share a point, which lies in both boxes: a pair
/// whose boxes are apart cannot pass [`crossing`], so testing only the
/// pairs whose boxes overlap (closed intervals) gives `geo`'s answer.
pub(crate) fn self_intersects(ring: &LineString) -> bool {
    let lines: Vec<Line> = ring.lines().collect();
    if lines.len() < 2 {
        return false;
    }
    let lo = |l: &Line| l.start.x.min(l.end.x);
    let mut order: Vec<u32> = (0..lines.len() as u32).collect();
    // NaN coordinates sort last and are caught by the finiteness check.
    order.sort_unstable_by(|a, b| lo(&lines[*a as usize]).total_cmp(&lo(&lines[*b as usize])));
    for (k, &i) in order.iter().enumerate() {
        let a = &lines[i as usize];
        let hi = a.start.x.max(a.end.x);
        let (ya0, ya1) = (a.start.y.min(a.end.y), a.start.y.max(a.end.y));
        for &j in &order[k + 1..] {
            let b = &lines[j as usize];
            if lo(b) > hi {
                break;
            }
            let (yb0, yb1) = (b.start.y.min(b.end.y), b.start.y.max(b.end.y));
            if yb0 <= ya1 && ya0 <= yb1 && crossing(a, b) {
                return true;
            }
        }
    }
    // Non-finite coordinates defeat the box comparisons: test those rings whole.
    if lines.iter().any(|l| {
        !(l.start.x.is_finite()
            && l.start.y.is_finite()
            && l.end.x.is_finite()
            && l.end.y.is_finite())
    }) {
        return lines.iter().enumerate().any(|(i, a)| {
            lines
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && crossing(a, b))
        });
    }
    false
}

fn finite(c: &Coord) -> bool {
    c.x.is_finite() && c.y.is_finite()
}

/// Whether a polygon is valid, as [`geo::Validation::is_valid`] says.
pub(crate) fn polygon_is_valid(p: &Polygon) -> bool {
    if p.exterior().0.is_empty() {
        return true;
    }
    for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
        if ring.0.is_empty() {
            continue;
        }
        if too_few_points(ring) || self_intersects(ring) || !ring.0.iter().all(finite) {
            return false;
        }
    }
    if p.interiors().iter().all(|r| r.0.is_empty()) {
        return true;
    }
    // Rings with holes: the rest of `geo`'s checks, as it writes them.
    let exterior = Polygon::new(p.exterior().clone(), vec![]);
    let exterior = PreparedGeometry::from(&exterior);
    let holes: Vec<Polygon> = p
        .interiors()
        .iter()
        .filter(|r| !r.0.is_empty())
        .map(|r| Polygon::new(r.clone(), vec![]))
        .collect();
    for (k, hole) in holes.iter().enumerate() {
        let prepared = PreparedGeometry::from(hole);
        let m = exterior.relate(&prepared);
        if !m.is_contains()
            || m.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional
        {
            return false;
        }
        for other in &holes[k + 1..] {
            let m = prepared.relate(other);
            if m.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional
                || m.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional
            {
                return false;
            }
        }
    }
    true
}

/// Whether a multi-polygon is valid, as [`geo::Validation::is_valid`] says:
/// every member valid, no two members overlapping or touching along a line.
pub fn multi_polygon_is_valid(mp: &MultiPolygon) -> bool {
    if !mp.0.iter().all(polygon_is_valid) {
        return false;
    }
    let boxes: Vec<_> = mp.0.iter().map(|p| p.bounding_rect()).collect();
    for (i, p) in mp.0.iter().enumerate() {
        for (j, q) in mp.0.iter().enumerate().skip(i + 1) {
            // Members whose boxes are apart share no point (empty ones have no box).
            let near = match (boxes[i], boxes[j]) {
                (Some(a), Some(b)) => a.intersects(&b),
                _ => true,
            };
            if !near {
                continue;
            }
            let m = p.relate(q);
            if m.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional
                || m.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional
            {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bowtie_and_members_sharing_an_edge_are_invalid() {
        use geo::{polygon, Validation};
        let square = polygon![(x: 0., y: 0.), (x: 1., y: 0.), (x: 1., y: 1.), (x: 0., y: 1.)];
        let bowtie = polygon![(x: 0., y: 0.), (x: 1., y: 1.), (x: 1., y: 0.), (x: 0., y: 1.)];
        assert!(polygon_is_valid(&square));
        assert!(!polygon_is_valid(&bowtie));
        assert!(!bowtie.is_valid());
        let b = polygon![(x: 1., y: 0.), (x: 2., y: 0.), (x: 2., y: 1.), (x: 1., y: 1.)];
        let c = polygon![(x: 3., y: 0.), (x: 4., y: 0.), (x: 4., y: 1.), (x: 3., y: 1.)];
        // They share an edge.
        assert!(!multi_polygon_is_valid(&MultiPolygon(vec![
            square.clone(),
            b
        ])));
        assert!(multi_polygon_is_valid(&MultiPolygon(vec![square, c])));
    }
    use geo::Validation;
    use proptest::prelude::*;

    /// Rings on a coarse lattice, so that edges often cross, touch, overlap
    /// and repeat vertices.
    fn ring(max: usize) -> impl Strategy<Value = LineString> {
        prop::collection::vec((0i32..6, 0i32..6), 0..max).prop_map(|v| {
            LineString(
                v.into_iter()
                    .map(|(x, y)| Coord {
                        x: x as f64,
                        y: y as f64,
                    })
                    .collect(),
            )
        })
    }

    fn polygon() -> impl Strategy<Value = Polygon> {
        (ring(10), prop::collection::vec(ring(6), 0..3)).prop_map(|(e, h)| Polygon::new(e, h))
    }

    /// A valid member (a lattice triangle or box, maybe with a hole), so
    /// that pairs overlap, touch along a line or at a point, or are apart.
    /// (`geo`'s debug assertions trip on relating invalid members, and an
    /// invalid member makes both answers false before any `relate`.)
    fn member() -> impl Strategy<Value = Polygon> {
        (
            0i32..4,
            0i32..4,
            1i32..4,
            1i32..4,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(x, y, w, h, triangle, hole)| {
                let c = |x: i32, y: i32| Coord {
                    x: x as f64,
                    y: y as f64,
                };
                let ring = if triangle {
                    vec![c(x, y), c(x + w, y), c(x, y + h), c(x, y)]
                } else {
                    vec![c(x, y), c(x + w, y), c(x + w, y + h), c(x, y + h), c(x, y)]
                };
                let holes = if hole && !triangle && w > 1 && h > 1 {
                    let (x, y) = (x as f64 + 0.25, y as f64 + 0.25);
                    vec![LineString(vec![
                        Coord { x, y },
                        Coord { x, y: y + 0.5 },
                        Coord {
                            x: x + 0.5,
                            y: y + 0.5,
                        },
                        Coord { x, y },
                    ])]
                } else {
                    vec![]
                };
                Polygon::new(LineString(ring), holes)
            })
    }

    fn shifted(p: &Polygon, dx: f64) -> Polygon {
        use geo::Translate;
        p.translate(dx, 0.0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn polygons_agree_with_geo(p in polygon()) {
            prop_assert_eq!(polygon_is_valid(&p), p.is_valid(), "{:?}", p);
        }

        #[test]
        fn multi_polygons_agree_with_geo(a in member(), b in member(), dx in prop::sample::select(vec![0.0, 1.0, 2.0, 5.0, 7.0, 100.0])) {
            let mp = MultiPolygon(vec![a, shifted(&b, dx)]);
            prop_assert_eq!(multi_polygon_is_valid(&mp), mp.is_valid(), "{:?}", mp);
        }

        /// Random rings with many vertices (the sweep's pruning matters there).
        #[test]
        fn long_rings_agree_with_geo(pts in prop::collection::vec((0.0..100.0f64, 0.0..100.0f64), 3..60), star in any::<bool>()) {
            let mut coords: Vec<Coord> = pts.into_iter().map(|(x, y)| Coord { x, y }).collect();
            if star {
                // A star-shaped ring around its mean: valid unless angles repeat.
                let n = coords.len() as f64;
                let (mx, my) = coords.iter().fold((0.0, 0.0), |(a, b), c| (a + c.x / n, b + c.y / n));
                coords.sort_by(|a, b| (a.y - my).atan2(a.x - mx).total_cmp(&(b.y - my).atan2(b.x - mx)));
            }
            let p = Polygon::new(LineString(coords), vec![]);
            prop_assert_eq!(polygon_is_valid(&p), p.is_valid());
        }
    }

    #[test]
    fn non_finite_rings_agree_with_geo() {
        let p = Polygon::new(
            LineString(vec![
                Coord { x: 0.0, y: 0.0 },
                Coord {
                    x: f64::NAN,
                    y: 1.0,
                },
                Coord { x: 1.0, y: 1.0 },
                Coord { x: 1.0, y: 0.0 },
            ]),
            vec![],
        );
        assert_eq!(polygon_is_valid(&p), p.is_valid());
        assert!(!polygon_is_valid(&p));
    }

    /// The real communes of the Hauts-de-Seine sample, and broken copies of them.
    #[test]
    fn real_communes_agree_with_geo() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92");
        let raw =
            crate::io::read_geoparquet(&dir.join("communes.parquet")).expect("sample communes");
        let mut n = 0;
        for g in raw.geometries.into_iter().flatten() {
            let mp = match g {
                geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
                geo::Geometry::MultiPolygon(mp) => mp,
                _ => continue,
            };
            assert_eq!(multi_polygon_is_valid(&mp), mp.is_valid());
            // Swap two vertices of each ring: usually a bow tie.
            let broken = MultiPolygon(
                mp.0.iter()
                    .map(|p| {
                        let mut e = p.exterior().0.clone();
                        let k = e.len() / 3;
                        e.swap(k, k + 1);
                        Polygon::new(LineString(e), p.interiors().to_vec())
                    })
                    .collect(),
            );
            assert_eq!(multi_polygon_is_valid(&broken), broken.is_valid());
            n += 1;
        }
        assert!(n >= 36, "{n} communes");
    }
}
