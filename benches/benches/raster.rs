//! Raster kernels on the 36 real communes of data/samples/idf92:
//! - `coverage/*`: exact coverage fractions of every pixel of each commune's
//!   window on a 10 m grid (~15 M pixels in all), one thread: the
//!   accumulation kernel against clipping each boundary-window pixel with
//!   Sutherland–Hodgman (one commune only, it is slow);
//! - `zonal/*`: one pass over an in-memory 10 m raster (1,400 × 2,460
//!   pixels) for every commune, and for the ~2,000 resolution-9 H3 cells
//!   covering them, with count/sum/mean only and with every statistic.
//!
//! `cargo bench -p terrastat-benches --bench raster`

use criterion::{criterion_group, criterion_main, Criterion};
use geo::{BoundingRect, MultiPolygon};
use terrastat_core::h3::CellMode;
use terrastat_core::raster::{
    zonal, CoverageScratch, GeoTransform, MemRaster, Needs, PixelPolygon, ZonalOptions,
};
use terrastat_core::{read_layer, NoProgress, ReadOptions, Zones};

fn bench(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples/idf92/communes.parquet");
    let communes = read_layer("communes", &path, &ReadOptions::default()).unwrap();
    let zones = Zones::from_layer("communes", &communes, "insee").unwrap();
    let polys: Vec<MultiPolygon> = zones
        .prepared()
        .iter()
        .map(|p| p.geometry().clone())
        .collect();
    let ext = zones.bounding_rect().unwrap();
    let px = 10.0;
    let gt = GeoTransform::north_up(ext.min().x.floor(), ext.max().y.ceil(), px, px);
    let w = (ext.width() / px).ceil() as usize + 1;
    let h = (ext.height() / px).ceil() as usize + 1;
    let prepared: Vec<PixelPolygon> = polys.iter().map(|p| PixelPolygon::new(p, &gt)).collect();
    let pixels: usize = prepared
        .iter()
        .filter_map(|p| p.pixel_window(w, h))
        .map(|(r, c)| r.len() * c.len())
        .sum();
    eprintln!("{w} x {h} raster, {pixels} pixels in the communes' windows");

    let mut g = c.benchmark_group("coverage");
    g.sample_size(10);
    g.bench_function("accumulation_36_communes", |b| {
        let mut s = CoverageScratch::default();
        b.iter(|| {
            let mut total = 0.0;
            for p in &prepared {
                if let Some((rows, cols)) = p.pixel_window(w, h) {
                    total += p.coverage(rows, cols, &mut s).iter().sum::<f64>();
                }
            }
            total
        })
    });
    // One commune, every pixel of its window clipped (the naive method).
    let one = &polys[0];
    let rect = one.bounding_rect().unwrap();
    g.bench_function("clip_each_pixel_1_commune", |b| {
        b.iter(|| {
            let mut total = 0.0;
            let c0 = ((rect.min().x - gt.x0) / px).floor() as i64;
            let c1 = ((rect.max().x - gt.x0) / px).ceil() as i64;
            let r0 = ((gt.y0 - rect.max().y) / px).floor() as i64;
            let r1 = ((gt.y0 - rect.min().y) / px).ceil() as i64;
            for r in r0..r1 {
                for col in c0..c1 {
                    let (x0, y1) = (gt.x0 + col as f64 * px, gt.y0 - r as f64 * px);
                    let sq = [
                        geo::coord! {x: x0, y: y1 - px},
                        geo::coord! {x: x0 + px, y: y1 - px},
                        geo::coord! {x: x0 + px, y: y1},
                        geo::coord! {x: x0, y: y1},
                    ];
                    total += terrastat_core::area_in_part(&one.0, &sq);
                }
            }
            total
        })
    });
    g.bench_function("accumulation_1_commune", |b| {
        let mut s = CoverageScratch::default();
        let p = &prepared[0];
        let (rows, cols) = p.pixel_window(w, h).unwrap();
        b.iter(|| {
            p.coverage(rows.clone(), cols.clone(), &mut s)
                .iter()
                .sum::<f64>()
        })
    });
    g.finish();

    let values: Vec<f64> = (0..w * h)
        .map(|i| ((i % w) as f64 * 0.01).sin() + ((i / w) as f64 * 0.013).cos())
        .collect();
    let mut raster = MemRaster::new("r", gt, w, h, values, None).unwrap();
    let hex = Zones::h3_cells(
        "hex9",
        communes.crs().clone(),
        zones.prepared(),
        9,
        CellMode::Covers,
    )
    .unwrap();
    let cells: Vec<MultiPolygon> = hex
        .prepared()
        .iter()
        .map(|p| p.geometry().clone())
        .collect();
    let all = Needs {
        minmax: true,
        variance: true,
        histogram: true,
        ..Needs::default()
    };
    let mut g = c.benchmark_group("zonal");
    g.sample_size(10);
    for (name, z) in [("communes", &polys), ("hex9", &cells)] {
        for (stats, needs) in [("mean", Needs::default()), ("all", all.clone())] {
            let opts = ZonalOptions {
                needs,
                ..ZonalOptions::default()
            };
            g.bench_function(format!("{name}_{stats}"), |b| {
                b.iter(|| zonal(&mut raster, None, z, &opts, &NoProgress).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
