//! Reading a layer for its centroids only (`ReadOptions::centroids`) gives,
//! feature by feature and to the bit, the centroid that the whole read
//! gives, with the same report, attributes, kind and extent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use geo::{Coord, Geometry, LineString, MultiPolygon, Polygon};
use proptest::prelude::*;
use terrastat_core::centroid;
use terrastat_core::{io, Crs, InvalidPolicy, Layer, ReadOptions};

fn path(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Read `file` whole and as centroids with `policy`, and compare.
fn same_both_ways(file: &std::path::Path, policy: InvalidPolicy) -> Result<(), TestCaseError> {
    let crs = Crs::epsg(2154);
    let whole_opts = ReadOptions::default().invalid(policy);
    let reduced_opts = whole_opts.clone().centroids(Some(crs.clone()));
    let whole =
        io::read_raw(file, &whole_opts).and_then(|r| Layer::from_raw("l", file, r, None, policy));
    let reduced =
        io::read_raw(file, &reduced_opts).and_then(|r| Layer::from_raw("l", file, r, None, policy));
    let (whole, reduced) = match (whole, reduced) {
        (Ok(w), Ok(r)) => (w, r),
        (Err(a), Err(b)) => {
            prop_assert_eq!(a.to_string(), b.to_string());
            return Ok(());
        }
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "whole {:?} vs reduced {:?}",
                a.map(|l| l.len()),
                b.map(|l| l.len())
            )))
        }
    };
    prop_assert!(reduced.is_reduced() && !whole.is_reduced());
    prop_assert_eq!(whole.kind(), reduced.kind());
    prop_assert_eq!(whole.source_rows(), reduced.source_rows());
    prop_assert_eq!(whole.attributes(), reduced.attributes());
    let (a, b) = (whole.report(), reduced.report());
    prop_assert_eq!(
        (a.read, a.kept, &a.skipped, &a.repaired, &a.examples),
        (b.read, b.kept, &b.skipped, &b.repaired, &b.examples)
    );
    prop_assert_eq!(whole.bounding_rect(), reduced.bounding_rect());
    for (g, p) in whole.geometries().iter().zip(reduced.geometries()) {
        let (c, d) = (centroid(g), centroid(p));
        let bits = |c: Option<Coord>| c.map(|c| (c.x.to_bits(), c.y.to_bits()));
        prop_assert_eq!(bits(c), bits(d), "{:?}", g);
        prop_assert!(matches!(p, Geometry::Point(_)) || c.is_none());
    }
    Ok(())
}

fn write(dir: &std::path::Path, geoms: &[Geometry]) -> std::path::PathBuf {
    let attrs = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, true)])),
        vec![Arc::new(Float64Array::from_iter_values(
            (0..geoms.len()).map(|i| i as f64),
        ))],
    )
    .unwrap();
    let (batch, meta) =
        io::with_geometry_column(&attrs, "geometry", &Crs::epsg(2154), geoms).unwrap();
    let file = dir.join("l.parquet");
    io::write_parquet(&file, &batch, &[("geo".into(), meta)]).unwrap();
    file
}

/// Small rings on a coarse lattice (so that some cross or repeat, and some
/// are clockwise), sometimes not closed, sometimes with a NaN.
fn ring() -> impl Strategy<Value = Vec<Coord>> {
    (
        prop::collection::vec((0i32..5, 0i32..5), 0..9),
        any::<bool>(),
        0usize..40,
    )
        .prop_map(|(v, close, nan)| {
            let mut r: Vec<Coord> = v
                .into_iter()
                .map(|(x, y)| Coord {
                    x: 1000.0 + x as f64 * 3.7,
                    y: 6.8e6 + y as f64 * 2.9,
                })
                .collect();
            if close && !r.is_empty() {
                r.push(r[0]);
            }
            if nan < r.len() {
                r[nan].x = f64::NAN;
            }
            r
        })
}

fn feature() -> impl Strategy<Value = Geometry> {
    prop_oneof![
        4 => ring().prop_map(|r| Geometry::Polygon(Polygon::new(LineString(r), vec![]))),
        2 => ring().prop_map(|r| Geometry::MultiPolygon(MultiPolygon(vec![Polygon::new(LineString(r), vec![])]))),
        1 => (ring(), ring()).prop_map(|(a, b)| Geometry::MultiPolygon(MultiPolygon(vec![
            Polygon::new(LineString(a), vec![]),
            Polygon::new(LineString(b), vec![]),
        ]))),
        1 => (ring(), ring()).prop_map(|(a, b)| Geometry::Polygon(Polygon::new(LineString(a), vec![LineString(b)]))),
        1 => (0.0..10.0f64).prop_map(|x| Geometry::Point(geo::Point::new(x, x))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn centroids_equal_the_whole_read(
        geoms in prop::collection::vec(feature(), 1..30),
        policy in prop::sample::select(vec![InvalidPolicy::Repair, InvalidPolicy::Skip, InvalidPolicy::Error, InvalidPolicy::Off]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), &geoms);
        same_both_ways(&file, policy)?;
    }
}

/// Real footprints: the Hauts-de-Seine sample buildings, and the communes.
#[test]
fn real_layers_read_as_centroids_equal_the_whole_read() {
    for f in [
        "../data/samples/idf92/buildings.parquet",
        "../data/samples/idf92/communes.parquet",
    ] {
        same_both_ways(&path(f), InvalidPolicy::Repair).unwrap();
    }
}

/// A reduced layer refuses to be measured, reprojected or related by its
/// shape, instead of answering for the points.
#[test]
fn reduced_layers_refuse_what_needs_geometries() {
    let file = path("../data/samples/idf92/buildings.parquet");
    let opts = ReadOptions::default().centroids(Some(Crs::epsg(2154)));
    let l = io::read_layer("b", &file, &opts).unwrap();
    assert!(l.is_reduced());
    let other = io::read_layer("b2", &file, &ReadOptions::default()).unwrap();
    let err = terrastat_core::relate::flags(
        &l,
        &other,
        terrastat_core::relate::Predicate::Intersects,
        &terrastat_core::NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("centroids only"), "{err}");
    assert!(terrastat_core::relate::flags(
        &l,
        &other,
        terrastat_core::relate::Predicate::Centroid,
        &terrastat_core::NoProgress
    )
    .is_ok());
    let err = terrastat_core::relate::nearest_distances(&l, &other, &terrastat_core::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("centroids only"), "{err}");
    let n = l.len();
    assert!(l.with_geometries(vec![], Crs::epsg(2154)).is_err());
    // Another CRS than the layer's: read whole.
    let opts = ReadOptions::default().centroids(Some(Crs::epsg(4326)));
    let l = io::read_layer("b", &file, &opts).unwrap();
    assert!(!l.is_reduced());
    assert_eq!(l.len(), n);
}
