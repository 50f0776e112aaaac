//! Centroid assignment of 1,000,000 generated buildings (seeded, in the 36
//! real communes of data/samples/idf92) to the resolution-9 H3 cells that
//! cover them, three ways:
//! - `h3_lookup`: H3's own cell of each centroid (`h3o`, O(1)) and a hash lookup;
//! - `polygons_setgrid`: the same cells as plain polygon zones, through the
//!   default polygon path (cell grid over the zones, exact fallback);
//! - `polygons_rtree`: R-tree of cell boxes + exact point-in-polygon, no grid.
//!
//! Each includes computing the centroids.
//!
//! `cargo bench -p terrastat-benches --bench h3`

use std::sync::Arc;

use arrow_array::{RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, Criterion};
use geo::Geometry;
use rayon::prelude::*;
use terrastat_core::centroid;
use terrastat_core::h3::CellMode;
use terrastat_core::locate_zone_exact;
use terrastat_core::{read_layer, Layer, NoProgress, Overlay, ReadOptions, Zones};
use terrastat_indicators::generate::{generate, GenerateOptions};

fn bench(c: &mut Criterion) {
    let communes_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples/idf92/communes.parquet");
    let communes = read_layer("communes", &communes_path, &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    generate(
        &communes,
        &GenerateOptions::default()
            .buildings(1_000_000)
            .vegetation(10)
            .flood(2)
            .seed(9),
        dir.path(),
    )
    .unwrap();
    let buildings = Arc::new(
        read_layer(
            "buildings",
            &dir.path().join("buildings.parquet"),
            &ReadOptions::default().columns(Some(vec![])),
        )
        .unwrap(),
    );
    let zones = Zones::from_layer("communes", &communes, "insee").unwrap();
    let hex = Arc::new(
        Zones::h3_cells(
            "hex9",
            communes.crs().clone(),
            zones.prepared(),
            9,
            CellMode::Covers,
        )
        .unwrap(),
    );
    // The same cells as plain polygons with a u64 id.
    let ids = hex.ids().unwrap().clone();
    let ids = ids.as_any().downcast_ref::<UInt64Array>().unwrap().clone();
    let polys: Vec<Geometry> = hex.geometries();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("h3", DataType::UInt64, false)])),
        vec![Arc::new(ids)],
    )
    .unwrap();
    let plain = Arc::new(
        Zones::from_layer(
            "hex9_polygons",
            &Layer::new("hex9_polygons", communes.crs().clone(), polys, batch).unwrap(),
            "h3",
        )
        .unwrap(),
    );

    let mut g = c.benchmark_group(format!(
        "centroid_to_h3_res9_{}k_buildings_{}_cells",
        buildings.len() / 1000,
        hex.len()
    ));
    g.sample_size(10);
    g.bench_function("h3_lookup", |b| {
        b.iter(|| {
            let ov = Overlay::new(buildings.clone(), hex.clone()).unwrap();
            ov.centroid_zones(&NoProgress).unwrap().len()
        })
    });
    g.bench_function("polygons_setgrid", |b| {
        b.iter(|| {
            let ov = Overlay::new(buildings.clone(), plain.clone()).unwrap();
            ov.centroid_zones(&NoProgress).unwrap().len()
        })
    });
    g.bench_function("polygons_rtree", |b| {
        b.iter(|| {
            buildings
                .geometries()
                .par_iter()
                .map(|g| centroid(g).and_then(|c| locate_zone_exact(&plain, c)))
                .filter(Option::is_some)
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
