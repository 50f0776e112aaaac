//! Oracle tests: the indexed, parallel overlay equals a brute-force
//! computation (no index, one thread, `geo` used directly), on seeded
//! random layers (proptest) and on the real samples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use geo::{Coord, Geometry, LineString, MultiPolygon, Polygon};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use terrastat_core::{
    oracle, read_layer, relate, Crs, Layer, NoProgress, Overlay, Predicate, ReadOptions, Zones,
};

fn empty_batch() -> RecordBatch {
    RecordBatch::new_empty(Arc::new(Schema::empty()))
}

/// A tiling of `nx × ny` quadrilaterals over jittered grid nodes; shared
/// edges are densified identically in both neighbours (so some zones have
/// well over 64 vertices and go through the clipping path).
fn tiling(rng: &mut ChaCha8Rng, nx: usize, ny: usize, cell: f64) -> Vec<MultiPolygon> {
    let node = |i: usize, j: usize, rng: &mut ChaCha8Rng| -> Coord {
        let border = i == 0 || j == 0 || i == nx || j == ny;
        let (dx, dy) = if border {
            (0.0, 0.0)
        } else {
            (
                rng.random_range(-0.3..0.3) * cell,
                rng.random_range(-0.3..0.3) * cell,
            )
        };
        Coord {
            x: i as f64 * cell + dx,
            y: j as f64 * cell + dy,
        }
    };
    let mut nodes = vec![vec![Coord { x: 0.0, y: 0.0 }; ny + 1]; nx + 1];
    for (i, col) in nodes.iter_mut().enumerate() {
        for (j, n) in col.iter_mut().enumerate() {
            *n = node(i, j, rng);
        }
    }
    let dens: Vec<usize> = (0..4 * (nx + 1) * (ny + 1))
        .map(|_| {
            if rng.random_bool(0.3) {
                rng.random_range(10..60)
            } else {
                0
            }
        })
        .collect();
    // Points along the edge a→b, computed in a canonical order.
    let edge = |a: (usize, usize), b: (usize, usize)| -> Vec<Coord> {
        let (lo, hi, rev) = if a <= b { (a, b, false) } else { (b, a, true) };
        let k = dens[(lo.0 * (ny + 1) + lo.1) * 4
            + usize::from(hi.0 > lo.0) * 2
            + usize::from(hi.1 > lo.1)];
        let (p, q) = (nodes[lo.0][lo.1], nodes[hi.0][hi.1]);
        let mut pts: Vec<Coord> = (0..=k)
            .map(|s| {
                let t = s as f64 / (k + 1) as f64;
                Coord {
                    x: p.x + t * (q.x - p.x),
                    y: p.y + t * (q.y - p.y),
                }
            })
            .collect();
        if rev {
            pts.push(q);
            pts.reverse();
            pts.pop();
        }
        pts
    };
    let mut out = Vec::new();
    for i in 0..nx {
        for j in 0..ny {
            let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let mut ring = Vec::new();
            for k in 0..4 {
                ring.extend(edge(corners[k], corners[(k + 1) % 4]));
            }
            ring.push(ring[0]);
            out.push(MultiPolygon(vec![Polygon::new(LineString(ring), vec![])]));
        }
    }
    out
}

fn features(rng: &mut ChaCha8Rng, n: usize, extent: f64, zones: &[MultiPolygon]) -> Vec<Geometry> {
    (0..n)
        .map(|_| {
            let c = Coord {
                x: rng.random_range(-0.1..1.1) * extent,
                y: rng.random_range(-0.1..1.1) * extent,
            };
            match rng.random_range(0..10) {
                0 => {
                    // A point exactly on a zone vertex (a shared boundary).
                    let z = &zones[rng.random_range(0..zones.len())].0[0];
                    let ring = &z.exterior().0;
                    Geometry::Point(ring[rng.random_range(0..ring.len())].into())
                }
                1 => Geometry::Point(c.into()),
                2 => Geometry::LineString(LineString(vec![
                    c,
                    Coord {
                        x: c.x + rng.random_range(-300.0..300.0),
                        y: c.y + rng.random_range(-300.0..300.0),
                    },
                ])),
                _ => {
                    let (w, h) = (rng.random_range(1.0..400.0), rng.random_range(1.0..400.0));
                    let t: f64 = rng.random_range(0.0..std::f64::consts::PI);
                    let (s, co) = t.sin_cos();
                    let p = |u: f64, v: f64| Coord {
                        x: c.x + u * co - v * s,
                        y: c.y + u * s + v * co,
                    };
                    Geometry::Polygon(Polygon::new(
                        LineString(vec![
                            p(0.0, 0.0),
                            p(w, 0.0),
                            p(w, h),
                            p(0.0, h),
                            p(0.0, 0.0),
                        ]),
                        vec![],
                    ))
                }
            }
        })
        .collect()
}

fn zones_of(polys: &[MultiPolygon]) -> Arc<Zones> {
    let ids: Vec<String> = (0..polys.len()).map(|i| format!("z{i}")).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(ids))],
    )
    .unwrap();
    let layer = Layer::new(
        "zones",
        Crs::epsg(2154),
        polys.iter().cloned().map(Geometry::MultiPolygon).collect(),
        batch,
    )
    .unwrap();
    Arc::new(Zones::from_layer("zones", &layer, "id").unwrap())
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

fn check_overlay(features: Vec<Geometry>, polys: &[MultiPolygon]) {
    let zones = zones_of(polys);
    // Compare on the geometries as the layer keeps them (after checks).
    let layer = Arc::new(
        Layer::new("f", Crs::epsg(2154), features, empty_batch()).unwrap_or_else(|e| panic!("{e}")),
    );
    let feats = layer.geometries().to_vec();
    let ov = Overlay::new(layer.clone(), zones.clone()).unwrap();
    // Centroid zones.
    let got = ov.centroid_zones(&NoProgress).unwrap().to_vec();
    let want = oracle::centroid_zones(&feats, polys);
    assert_eq!(got, want, "centroid zones differ");
    // Pairs.
    let pairs = ov.pairs(&NoProgress).unwrap();
    let mut got = Vec::new();
    for z in 0..polys.len() {
        let (fs, ms) = pairs.zone(z);
        for (f, m) in fs.iter().zip(ms) {
            got.push((z as u32, *f, *m));
        }
    }
    let want = oracle::pairs(&feats, polys);
    let gk: std::collections::BTreeSet<(u32, u32)> = got.iter().map(|g| (g.0, g.1)).collect();
    let wk: std::collections::BTreeSet<(u32, u32)> = want.iter().map(|w| (w.0, w.1)).collect();
    if let Some(extra) = gk.symmetric_difference(&wk).next() {
        let m = got
            .iter()
            .chain(&want)
            .find(|g| (g.0, g.1) == *extra)
            .map(|g| g.2);
        panic!(
            "pair (zone {}, feature {}) only in {} (measure {m:?}); feature {:?}",
            extra.0,
            extra.1,
            if gk.contains(extra) {
                "the indexed result"
            } else {
                "the oracle"
            },
            feats[extra.1 as usize]
        );
    }
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.0, g.1), (w.0, w.1));
        let scale = ov.feature_measures().unwrap()[g.1 as usize];
        assert!(
            close(g.2, w.2, scale),
            "measure of zone {} feature {}: {} vs {}",
            g.0,
            g.1,
            g.2,
            w.2
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn overlay_equals_brute_force(seed in any::<u64>(), nx in 1usize..5, ny in 1usize..5, n in 1usize..150) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cell = 1000.0;
        let polys = tiling(&mut rng, nx, ny, cell);
        let feats = features(&mut rng, n, cell * nx.max(ny) as f64, &polys);
        check_overlay(feats, &polys);
    }

    /// Overlapping zones (the tiling, then a zone over several tiles and a
    /// duplicate tile, like neighbouring communes' overlaps in real data):
    /// a feature inside two zones is paired with both.
    #[test]
    fn overlay_on_overlapping_zones_equals_brute_force(seed in any::<u64>(), n in 1usize..150) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cell = 1000.0;
        let mut polys = tiling(&mut rng, 3, 3, cell);
        polys.push(MultiPolygon(vec![geo::Rect::new((300.0, 300.0), (1700.0, 2500.0)).to_polygon()]));
        polys.push(polys[4].clone());
        let feats = features(&mut rng, n, cell * 3.0, &polys);
        check_overlay(feats, &polys);
    }

    #[test]
    fn coverage_equals_brute_force(seed in any::<u64>(), n in 1usize..40) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let polys = tiling(&mut rng, 3, 2, 1000.0);
        let feats: Vec<Geometry> = features(&mut rng, n * 3, 3000.0, &polys)
            .into_iter()
            .filter(|g| matches!(g, Geometry::Polygon(_)))
            .collect();
        prop_assume!(!feats.is_empty());
        let layer = Arc::new(Layer::new("v", Crs::epsg(2154), feats, empty_batch()).unwrap());
        let feats = layer.geometries().to_vec();
        let ov = Overlay::new(layer, zones_of(&polys)).unwrap();
        let got = ov.covered_areas(None, &NoProgress).unwrap();
        let want = oracle::covered_areas(&feats, &polys);
        // Unions go through `geo`'s boolean operations (i_overlay), which snap
        // to an integer grid scaled to the inputs' extent: agreement is ~1e-8.
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((g - w).abs() <= 1e-7 * 1e6, "{g} vs {w}");
        }
    }

    #[test]
    fn relate_equals_brute_force(seed in any::<u64>(), n in 1usize..80, m in 1usize..20) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let polys = tiling(&mut rng, 2, 2, 1000.0);
        let a = Layer::new("a", Crs::epsg(2154), features(&mut rng, n, 2000.0, &polys), empty_batch()).unwrap();
        let others: Vec<Geometry> = features(&mut rng, m * 2, 2000.0, &polys).into_iter().filter(|g| matches!(g, Geometry::Polygon(_))).collect();
        prop_assume!(!others.is_empty());
        let b = Layer::new("b", Crs::epsg(2154), others, empty_batch()).unwrap();
        for p in [Predicate::Intersects, Predicate::Centroid] {
            prop_assert_eq!(relate::flags(&a, &b, p, &NoProgress).unwrap(), oracle::flags(&a, &b, p));
        }
        let got = relate::nearest_distances(&a, &b, &NoProgress).unwrap();
        let want = oracle::nearest_distances(&a, &b);
        for (g, w) in got.iter().zip(&want) {
            prop_assert!(close(g.unwrap(), w.unwrap(), 1e3), "{g:?} vs {w:?}");
        }
    }
}

#[test]
fn thread_count_does_not_change_the_overlay() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let polys = tiling(&mut rng, 4, 4, 1000.0);
    let feats = features(&mut rng, 1_500, 4000.0, &polys);
    let zones = zones_of(&polys);
    let layer = Arc::new(Layer::new("f", Crs::epsg(2154), feats, empty_batch()).unwrap());
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let ov = Overlay::new(layer.clone(), zones.clone()).unwrap();
            let c = ov.centroid_zones(&NoProgress).unwrap().to_vec();
            let p = ov.pairs(&NoProgress).unwrap().clone();
            let cov = ov.covered_areas(None, &NoProgress).unwrap();
            (c, p, cov.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}

fn sample(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples")
        .join(p)
}

#[test]
fn real_communes_and_buildings_equal_brute_force() {
    let communes = read_layer(
        "communes",
        &sample("idf92/communes.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let polys: Vec<MultiPolygon> = communes
        .geometries()
        .iter()
        .map(|g| match g {
            Geometry::MultiPolygon(mp) => mp.clone(),
            Geometry::Polygon(p) => MultiPolygon(vec![p.clone()]),
            _ => panic!("not a polygon"),
        })
        .collect();
    let buildings = read_layer(
        "buildings",
        &sample("idf92/buildings.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    // Every 4th building keeps the test fast; boundary cases are plentiful.
    let feats: Vec<Geometry> = buildings.geometries().iter().step_by(4).cloned().collect();
    check_overlay(feats, &polys);
}

#[test]
fn real_kotka_landuse_coverage_on_a_grid_equals_brute_force() {
    let landuse = read_layer(
        "landuse",
        &sample("kotka/landuse.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert!(
        landuse.report().repaired_total() > 0,
        "the Kotka sample has invalid polygons to repair"
    );
    let rect = landuse.bounding_rect().unwrap();
    let grid = Arc::new(Zones::grid("g", landuse.crs().clone(), rect, 250.0, None).unwrap());
    let polys: Vec<MultiPolygon> = grid
        .prepared()
        .iter()
        .map(|p| p.geometry().clone())
        .collect();
    let feats = landuse.geometries().to_vec();
    let ov = Overlay::new(Arc::new(landuse), grid.clone()).unwrap();
    let got = ov.covered_areas(None, &NoProgress).unwrap();
    let want = oracle::covered_areas(&feats, &polys);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-7 * 62_500.0, "{g} vs {w}");
    }
    // The grid tiles the extent: the covered areas add up to the area of the union.
    let total: f64 = got.iter().sum();
    let union = oracle::covered_areas(
        &feats,
        &[MultiPolygon(vec![geo::Rect::new(
            (rect.min().x - 1000.0, rect.min().y - 1000.0),
            (rect.max().x + 1000.0, rect.max().y + 1000.0),
        )
        .to_polygon()])],
    )[0];
    assert!((total - union).abs() <= 1e-7 * union, "{total} vs {union}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The exact union sweep equals inclusion–exclusion over triangle
    /// intersections (1e-9 relative), for overlapping polygons with holes,
    /// shared edges and shared vertices; so does the covered part of a zone.
    #[test]
    fn union_sweep_equals_inclusion_exclusion(
        shapes in prop::collection::vec(
            (0.0..60.0f64, 0.0..60.0f64, prop::collection::vec(5.0..40.0f64, 3..9), any::<bool>()),
            1..5,
        ),
        twin in any::<bool>(),
    ) {
        let mut polys: Vec<MultiPolygon> = shapes
            .iter()
            .map(|(cx, cy, radii, hole)| {
                let n = radii.len();
                let ring = |scale: f64, rev: bool| -> LineString {
                    let mut pts: Vec<Coord> = radii
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let a = i as f64 * std::f64::consts::TAU / n as f64;
                            Coord { x: cx + scale * r * a.cos(), y: cy + scale * r * a.sin() }
                        })
                        .collect();
                    if rev {
                        pts.reverse();
                    }
                    pts.push(pts[0]);
                    LineString(pts)
                };
                let holes = if *hole { vec![ring(0.3, true)] } else { vec![] };
                MultiPolygon(vec![Polygon::new(ring(1.0, false), holes)])
            })
            .collect();
        if twin {
            // An exact duplicate and a neighbour sharing an edge.
            polys.push(polys[0].clone());
            polys.push(MultiPolygon(vec![geo::Rect::new((-10.0, -10.0), (0.0, 10.0)).to_polygon()]));
            polys.push(MultiPolygon(vec![geo::Rect::new((0.0, -10.0), (10.0, 10.0)).to_polygon()]));
        }
        let refs: Vec<&Polygon> = polys.iter().flat_map(|m| m.0.iter()).collect();
        let got = terrastat_core::union_area(&refs);
        let want = oracle::union_area_small(&polys);
        prop_assert!((got - want).abs() <= 1e-9 * want.max(1.0), "{got} vs {want}");
        // Covered part of a zone: area(Z ∩ ∪F) = area(Z) + area(∪F) − area(Z ∪ ∪F).
        let zone = MultiPolygon(vec![geo::Rect::new((5.0, -5.0), (45.0, 35.0)).to_polygon()]);
        let zp: Vec<&Polygon> = zone.0.iter().collect();
        let got = terrastat_core::covered_area(Some(&zp), &refs);
        let mut with_zone = polys.clone();
        with_zone.push(zone.clone());
        let want = 1600.0 + want - oracle::union_area_small(&with_zone);
        prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "covered {got} vs {want}");
    }
}
