//! Criterion benches of the overlay kernels on the sample communes
//! (Hauts-de-Seine, real) with 100,000 generated buildings (seeded).
//!
//! `cargo bench -p terrastat-benches`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use terrastat_core::{read_layer, relate, NoProgress, Overlay, Predicate, ReadOptions, Zones};
use terrastat_indicators::generate::{generate, GenerateOptions};

fn bench(c: &mut Criterion) {
    let communes_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples/idf92/communes.parquet");
    let communes = read_layer("communes", &communes_path, &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    generate(
        &communes,
        &GenerateOptions::default()
            .buildings(100_000)
            .vegetation(2_000)
            .flood(20)
            .seed(1),
        dir.path(),
    )
    .unwrap();
    let buildings = Arc::new(
        read_layer(
            "buildings",
            &dir.path().join("buildings.parquet"),
            &ReadOptions::default(),
        )
        .unwrap(),
    );
    let flood = read_layer(
        "flood",
        &dir.path().join("flood.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let vegetation = Arc::new(
        read_layer(
            "vegetation",
            &dir.path().join("vegetation.parquet"),
            &ReadOptions::default(),
        )
        .unwrap(),
    );
    let zones = Arc::new(Zones::from_layer("communes", &communes, "insee").unwrap());

    let mut g = c.benchmark_group("overlay_100k_buildings_x_36_communes");
    g.sample_size(10);
    g.bench_function("read_geoparquet", |b| {
        b.iter(|| {
            read_layer(
                "buildings",
                &dir.path().join("buildings.parquet"),
                &ReadOptions::default(),
            )
            .unwrap()
        })
    });
    g.bench_function("centroid_zones", |b| {
        b.iter(|| {
            Overlay::new(buildings.clone(), zones.clone())
                .unwrap()
                .centroid_zones(&NoProgress)
                .unwrap()
                .len()
        })
    });
    g.bench_function("pairs_exact_areas", |b| {
        b.iter(|| {
            Overlay::new(buildings.clone(), zones.clone())
                .unwrap()
                .pairs(&NoProgress)
                .unwrap()
                .features
                .len()
        })
    });
    g.bench_function("coverage_2k_vegetation", |b| {
        b.iter(|| {
            Overlay::new(vegetation.clone(), zones.clone())
                .unwrap()
                .covered_areas(None, &NoProgress)
                .unwrap()
        })
    });
    g.bench_function("share_within_flood", |b| {
        b.iter(|| relate::flags(&buildings, &flood, Predicate::Intersects, &NoProgress).unwrap())
    });
    g.bench_function("nearest_vegetation", |b| {
        b.iter(|| relate::nearest_distances(&buildings, &vegetation, &NoProgress).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
