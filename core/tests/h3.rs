//! H3 zones and index: exact shares, selection modes, O(1) centroid keys,
//! each checked against an independent brute force.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use geo::line_measures::{Distance, Euclidean};
use geo::{Area, Coord, Geometry, LineString, MultiPolygon, Polygon};
use h3o::{LatLng, Resolution};
use proptest::prelude::*;
use terrastat_core::h3::{centroid_cells, cover_cells, partition_by_parent, CellMode, LonLat};
use terrastat_core::locate_zone_exact;
use terrastat_core::{
    oracle, read_layer, Crs, Layer, Location, NoProgress, Overlay, PreparedPolygon, ReadOptions,
    Zones,
};

fn l93() -> LonLat {
    LonLat::new(&Crs::epsg(2154)).unwrap()
}

/// A star-shaped polygon around a point of Paris (Lambert-93 metres).
fn star(cx: f64, cy: f64, radii: &[f64]) -> MultiPolygon {
    let n = radii.len();
    let mut ring: Vec<Coord> = radii
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let a = i as f64 * std::f64::consts::TAU / n as f64;
            Coord {
                x: cx + r * a.cos(),
                y: cy + r * a.sin(),
            }
        })
        .collect();
    ring.push(ring[0]);
    MultiPolygon(vec![Polygon::new(LineString(ring), vec![])])
}

const PARIS: (f64, f64) = (652_000.0, 6_862_000.0);

fn cells_with_polygons(
    covers: &[MultiPolygon],
    res: u8,
    mode: CellMode,
) -> Vec<(h3o::CellIndex, MultiPolygon)> {
    let ll = l93();
    let prepared: Vec<PreparedPolygon> = covers.iter().cloned().map(PreparedPolygon::new).collect();
    let cells = cover_cells(&prepared, Resolution::try_from(res).unwrap(), mode, &ll).unwrap();
    cells
        .into_iter()
        .map(|c| (c, MultiPolygon(vec![ll.cell_polygon(c).unwrap()])))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Σ over the covering cells of area(cell ∩ P) = area(P) (within 1e-9
    /// relative), every share lies in [0, 1], and the modes nest:
    /// contains ⊆ covers ⊆ intersects, centroid ⊆ intersects.
    #[test]
    fn shares_add_up_and_modes_nest(
        dx in -3000.0..3000.0f64,
        dy in -3000.0..3000.0f64,
        radii in prop::collection::vec(150.0..2500.0f64, 5..24),
        res in 7u8..=9,
    ) {
        let p = star(PARIS.0 + dx, PARIS.1 + dy, &radii);
        let covers = cells_with_polygons(std::slice::from_ref(&p), res, CellMode::Covers);
        let mut total = 0.0;
        for (_, c) in &covers {
            let a = oracle::intersection_area(c, &p);
            let share = a / c.unsigned_area();
            prop_assert!((-1e-9..=1.0 + 1e-9).contains(&share), "share {share}");
            prop_assert!(a > 0.0, "a `covers` cell with no area in common");
            total += a;
        }
        let area = p.unsigned_area();
        prop_assert!((total - area).abs() <= 1e-9 * area, "{total} vs {area}");

        let ids = |m: CellMode| -> Vec<h3o::CellIndex> {
            cells_with_polygons(std::slice::from_ref(&p), res, m).into_iter().map(|c| c.0).collect()
        };
        let (cov, int, con, cen) = (
            ids(CellMode::Covers),
            ids(CellMode::Intersects),
            ids(CellMode::Contains),
            ids(CellMode::Centroid),
        );
        prop_assert!(con.iter().all(|c| cov.binary_search(c).is_ok()));
        prop_assert!(cov.iter().all(|c| int.binary_search(c).is_ok()));
        prop_assert!(cen.iter().all(|c| int.binary_search(c).is_ok()));
        // Every `contains` cell lies inside P: its whole area is shared.
        for (_, c) in cells_with_polygons(std::slice::from_ref(&p), res, CellMode::Contains) {
            let a = oracle::intersection_area(&c, &p);
            prop_assert!((a - c.unsigned_area()).abs() <= 1e-9 * c.unsigned_area());
        }
    }

    /// A polygon far smaller than a cell still gets its cell in `covers`
    /// and `intersects` modes (and none in `contains`).
    #[test]
    fn small_polygons_get_a_cell(dx in -5000.0..5000.0f64, dy in -5000.0..5000.0f64, size in 0.5..20.0f64) {
        let p = star(PARIS.0 + dx, PARIS.1 + dy, &[size, size, size, size]);
        let cov = cells_with_polygons(std::slice::from_ref(&p), 8, CellMode::Covers);
        prop_assert!(!cov.is_empty());
        let total: f64 = cov.iter().map(|(_, c)| oracle::intersection_area(c, &p)).sum();
        prop_assert!((total - p.unsigned_area()).abs() <= 1e-9 * p.unsigned_area());
        prop_assert!(!cells_with_polygons(std::slice::from_ref(&p), 8, CellMode::Intersects).is_empty());
        prop_assert!(cells_with_polygons(std::slice::from_ref(&p), 8, CellMode::Contains).is_empty());
    }
}

/// Neighbouring cells share bit-identical corners: the projected cells tile
/// the plane, every point lies in exactly one cell or on a shared edge.
#[test]
fn projected_cells_tile_the_plane() {
    let p = star(PARIS.0, PARIS.1, &[3000.0; 12]);
    let cells = cells_with_polygons(&[p], 9, CellMode::Intersects);
    let prepared: Vec<PreparedPolygon> = cells
        .iter()
        .map(|(_, c)| PreparedPolygon::new(c.clone()))
        .collect();
    let mut rng = 12345u64;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..5000 {
        let c = Coord {
            x: PARIS.0 + (next() - 0.5) * 4000.0,
            y: PARIS.1 + (next() - 0.5) * 4000.0,
        };
        let locs: Vec<Location> = prepared.iter().map(|p| p.locate(c)).collect();
        let inside = locs.iter().filter(|l| **l == Location::Inside).count();
        let on = locs.iter().filter(|l| **l == Location::Boundary).count();
        assert!(
            inside == 1 && on == 0 || inside == 0 && on >= 2,
            "{c:?}: {inside} inside, {on} on"
        );
    }
    // Shared corners are the same floats in every cell using them.
    let mut corners: std::collections::HashMap<(u64, u64), usize> = Default::default();
    for (_, c) in &cells {
        for v in &c.0[0].exterior().0[..6] {
            *corners.entry((v.x.to_bits(), v.y.to_bits())).or_default() += 1;
        }
    }
    let shared = corners.values().filter(|n| **n == 3).count();
    assert!(
        shared > cells.len(),
        "{shared} corners shared by three cells"
    );
}

fn communes() -> (Layer, Zones) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples/idf92/communes.parquet");
    let layer = read_layer("communes", &path, &ReadOptions::default()).unwrap();
    let zones = Zones::from_layer("communes", &layer, "insee").unwrap();
    (layer, zones)
}

/// Centroid keys: the parallel O(1) path equals a one-thread loop over h3o,
/// and H3 zones attribute centroids to the cell H3 gives them; the polygon
/// search agrees except within a millimetre of a cell edge.
#[test]
fn centroid_keys_match_h3_and_polygons() {
    let (_, communes) = communes();
    let hex = Zones::h3_cells(
        "hex9",
        Crs::epsg(2154),
        communes.prepared(),
        9,
        CellMode::Covers,
    )
    .unwrap();
    let h = hex.h3().unwrap();
    let ll = h.lonlat();
    // Points: a lattice over the département.
    let r = communes.bounding_rect().unwrap();
    let pts: Vec<Geometry> = (0..120)
        .flat_map(|i| {
            (0..120).map(move |j| {
                Geometry::Point(geo::point!(
                    x: r.min().x + (i as f64 + 0.31) * r.width() / 120.0,
                    y: r.min().y + (j as f64 + 0.77) * r.height() / 120.0
                ))
            })
        })
        .collect();
    let layer = Arc::new(
        Layer::new(
            "pts",
            Crs::epsg(2154),
            pts.clone(),
            RecordBatch::new_empty(Arc::new(Schema::empty())),
        )
        .unwrap(),
    );
    let keys = centroid_cells(&layer, Resolution::Nine, ll).unwrap();
    for (g, k) in pts.iter().zip(&keys) {
        let Geometry::Point(p) = g else {
            unreachable!()
        };
        let (lng, lat) = {
            let l = ll.to_latlng(p.0).unwrap();
            (l.lng(), l.lat())
        };
        assert_eq!(
            *k,
            Some(LatLng::new(lat, lng).unwrap().to_cell(Resolution::Nine))
        );
    }
    let overlay = Overlay::new(layer.clone(), Arc::new(hex)).unwrap();
    let fast = overlay.centroid_zones(&NoProgress).unwrap();
    let hex = overlay.zones();
    let mut disagree = 0;
    for (i, g) in pts.iter().enumerate() {
        let Geometry::Point(p) = g else {
            unreachable!()
        };
        let by_h3 = fast[i];
        if let Some(z) = by_h3 {
            assert_eq!(hex.h3().unwrap().cells[z as usize], keys[i].unwrap());
        }
        let by_polygon = locate_zone_exact(hex, p.0);
        if by_h3 != by_polygon {
            disagree += 1;
            // Only a sliver along edges: the point is within 1 mm of the
            // polygon of the cell H3 chose.
            let z = by_h3.or(by_polygon).unwrap() as usize;
            let cell = Geometry::MultiPolygon(hex.prepared()[z].geometry().clone());
            let d = Euclidean.distance(&Geometry::Point(*p), &cell);
            assert!(d < 1e-3, "point {:?} is {d} m from its cell", p.0);
        }
    }
    assert!(disagree <= pts.len() / 1000, "{disagree} disagreements");

    let parts = partition_by_parent(&keys, Resolution::Five);
    let n: usize = parts.iter().map(|(_, rows)| rows.len()).sum();
    assert_eq!(n, keys.iter().flatten().count());
    for (parent, rows) in &parts {
        for r in rows {
            assert_eq!(
                keys[*r as usize].unwrap().parent(Resolution::Five),
                Some(*parent)
            );
        }
    }
}

/// Every indicator path works on H3 zones: the `covers` cells of the
/// département hold each commune's whole area, and area-weighted pieces of
/// the communes on the cells sum to the communes' areas.
#[test]
fn overlay_on_h3_zones_is_exact() {
    let (layer, communes) = communes();
    let hex = Arc::new(
        Zones::h3_cells(
            "hex8",
            Crs::epsg(2154),
            communes.prepared(),
            8,
            CellMode::Covers,
        )
        .unwrap(),
    );
    let overlay = Overlay::new(Arc::new(layer.clone()), hex.clone()).unwrap();
    let pairs = overlay.pairs(&NoProgress).unwrap();
    let area: f64 = layer.geometries().iter().map(|g| g.unsigned_area()).sum();
    let total: f64 = pairs.measures.iter().sum();
    assert!((total - area).abs() <= 1e-9 * area, "{total} vs {area}");
    for (f, t) in pairs.totals.iter().enumerate() {
        let a = layer.geometries()[f].unsigned_area();
        assert!((t - a).abs() <= 1e-9 * a);
    }
    // The département's area is covered: each cell's share of communes is in (0, 1].
    for z in 0..hex.len() {
        let (_, m) = pairs.zone(z);
        let share = m.iter().sum::<f64>() / hex.prepared()[z].area();
        assert!(share > 0.0 && share <= 1.0 + 1e-9, "cell {z}: {share}");
    }
}

#[test]
fn bad_h3_input_is_an_error_not_a_panic() {
    let (_, communes) = communes();
    let e = Zones::h3_cells(
        "x",
        Crs::epsg(2154),
        communes.prepared(),
        16,
        CellMode::Covers,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("16") && e.contains("0..=15"), "{e}");
    // A geographic working CRS cannot hold areas.
    let e = Zones::h3_cells("x", Crs::epsg(4326), &[], 5, CellMode::Covers)
        .unwrap_err()
        .to_string();
    assert!(e.contains("projected"), "{e}");
    // No cover: no cells, an empty zone layer.
    let z = Zones::h3_cells("x", Crs::epsg(2154), &[], 5, CellMode::Covers).unwrap();
    assert_eq!(z.len(), 0);
    // Web Mercator across the antimeridian: a clear error, not a strip across the map.
    let p = PreparedPolygon::new(MultiPolygon(vec![geo::Rect::new(
        (20_037_000.0, 1_000_000.0),
        (20_037_500.0, 1_000_500.0),
    )
    .to_polygon()]));
    let e = Zones::h3_cells("x", Crs::epsg(3857), &[p], 6, CellMode::Intersects)
        .unwrap_err()
        .to_string();
    assert!(e.contains("antimeridian"), "{e}");
    // The cell around the pole cannot be drawn in Web Mercator: an error.
    let p = PreparedPolygon::new(MultiPolygon(vec![geo::Rect::new(
        (0.0, 40_000_000.0),
        (500.0, 40_000_500.0),
    )
    .to_polygon()]));
    let e = Zones::h3_cells("x", Crs::epsg(3857), &[p], 2, CellMode::Covers)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be drawn"), "{e}");
    // A cover far too large for the resolution.
    let p = PreparedPolygon::new(MultiPolygon(vec![geo::Rect::new(
        (0.0, 6_000_000.0),
        (1_000_000.0, 7_000_000.0),
    )
    .to_polygon()]));
    let e = Zones::h3_cells("x", Crs::epsg(2154), &[p], 15, CellMode::Covers)
        .unwrap_err()
        .to_string();
    assert!(e.contains("coarser"), "{e}");
}

/// The cells H3's reference library selects for the 36 real communes at
/// resolution 9 (recorded by `fixtures/make_h3_fixtures.py`) are terrastat's,
/// except cells whose fate is decided within a metre of a commune boundary:
/// the reference works on the sphere with edges straight in longitude/latitude,
/// terrastat in Lambert-93 with edges straight there.
#[test]
fn selection_matches_the_reference_library() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/h3_idf92_res9.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (layer, communes) = communes();
    let boundaries: Vec<Geometry> = layer
        .geometries()
        .iter()
        .map(|g| {
            let Geometry::MultiPolygon(mp) = g else {
                panic!("communes are multipolygons")
            };
            Geometry::MultiLineString(geo::MultiLineString(
                mp.0.iter()
                    .flat_map(|p| {
                        std::iter::once(p.exterior().clone()).chain(p.interiors().iter().cloned())
                    })
                    .collect(),
            ))
        })
        .collect();
    let near_boundary = |g: &Geometry| {
        boundaries
            .iter()
            .map(|b| Euclidean.distance(g, b))
            .fold(f64::INFINITY, f64::min)
    };
    let ll = l93();
    for (theirs, ours) in [
        ("center", CellMode::Centroid),
        ("full", CellMode::Contains),
        ("overlap", CellMode::Intersects),
    ] {
        let reference: std::collections::BTreeSet<h3o::CellIndex> = v["modes"][theirs]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect();
        let mine: std::collections::BTreeSet<h3o::CellIndex> =
            cover_cells(communes.prepared(), Resolution::Nine, ours, &ll)
                .unwrap()
                .into_iter()
                .collect();
        assert!(reference.len() > 100, "{theirs}: {} cells", reference.len());
        let differ: Vec<h3o::CellIndex> = reference.symmetric_difference(&mine).copied().collect();
        eprintln!(
            "{theirs}: {} reference cells, {} differ",
            reference.len(),
            differ.len()
        );
        assert!(
            differ.len() * 100 <= reference.len(),
            "{theirs}: {} of {} cells differ",
            differ.len(),
            reference.len()
        );
        for cell in differ {
            let d = if ours == CellMode::Centroid {
                let c = ll.from_latlng(LatLng::from(cell)).unwrap();
                near_boundary(&Geometry::Point(geo::Point(c)))
            } else {
                let ring = ll.cell_polygon(cell).unwrap().exterior().clone();
                near_boundary(&Geometry::LineString(ring))
            };
            assert!(
                d < 1.0,
                "{theirs}: cell {cell} differs {d} m away from any boundary"
            );
        }
    }
}

/// Cells whose edges cross an icosahedron edge (near 48.32° N, 2.91° E at
/// resolution 9) carry H3's extra boundary points: their areas are those of
/// H3's own boundary, neighbours still share every point (the cells tile the
/// plane), and shares still add up.
#[test]
fn cells_across_an_icosahedron_edge_keep_their_true_shape() {
    let ll = l93();
    let c = ll
        .from_latlng(LatLng::new(48.3209, 2.9112).unwrap())
        .unwrap();
    let p = star(c.x, c.y, &[1500.0, 1200.0, 1700.0, 1300.0, 1600.0, 1100.0]);
    let cells = cells_with_polygons(std::slice::from_ref(&p), 9, CellMode::Intersects);
    let distorted: Vec<_> = cells
        .iter()
        .filter(|(_, poly)| poly.0[0].exterior().0.len() > 7)
        .collect();
    assert!(distorted.len() >= 3, "{} distorted cells", distorted.len());
    for (cell, poly) in &distorted {
        // H3's own boundary, projected point by point.
        let ring: Vec<Coord> = cell
            .boundary()
            .iter()
            .map(|q| ll.from_latlng(*q).unwrap())
            .collect();
        let h3_poly = Polygon::new(LineString(ring), vec![]);
        let (a, b) = (poly.unsigned_area(), h3_poly.unsigned_area());
        assert!((a - b).abs() <= 1e-9 * b, "{cell}: {a} vs H3's {b}");
    }
    // Tiling: every point in exactly one cell, or on shared edges.
    let prepared: Vec<PreparedPolygon> = cells
        .iter()
        .map(|(_, c)| PreparedPolygon::new(c.clone()))
        .collect();
    for i in 0..3000 {
        let q = Coord {
            x: c.x + ((i * 7919) % 1400) as f64 - 700.0 + 0.37,
            y: c.y + ((i * 104_729) % 1400) as f64 - 700.0 + 0.61,
        };
        let locs: Vec<Location> = prepared.iter().map(|p| p.locate(q)).collect();
        let inside = locs.iter().filter(|l| **l == Location::Inside).count();
        let on = locs.iter().filter(|l| **l == Location::Boundary).count();
        assert!(
            inside == 1 && on == 0 || inside == 0 && on >= 2,
            "{q:?}: {inside}/{on}"
        );
    }
    let covers = cells_with_polygons(std::slice::from_ref(&p), 9, CellMode::Covers);
    let total: f64 = covers
        .iter()
        .map(|(_, c)| oracle::intersection_area(c, &p))
        .sum();
    assert!((total - p.unsigned_area()).abs() <= 1e-9 * p.unsigned_area());
}
