//! Partials of a distributed run (the kernel under `terrastat.spark`), in
//! Rust: the sample buildings dealt in shuffled order to parts, each part
//! folded by `partition_partials`, and the rows of every part handed to the
//! final step as they are (Spark would first add them per key; the digits of
//! a sum add up either way). Every value, and every quality record, equals
//! the single-machine run's bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::UInt32Array;
use terrastat_core::io::read_geoparquet;
use terrastat_core::{NoProgress, RawLayer};
use terrastat_indicators::distributed::partition_partials;
use terrastat_indicators::run::{compute_distributed, run, RunOptions};
use terrastat_indicators::spec::Spec;

const SPEC: &str = r#"
crs = "EPSG:2154"
[layers.buildings]
path = "{d}/buildings.parquet"
[layers.flood]
path = "{d}/flood.parquet"
[zones.communes]
path = "{d}/communes.parquet"
id = "insee"
rollup = ["dep"]
[[indicators]]
name = "n"
kind = "count"
layer = "buildings"
[[indicators]]
name = "floor"
kind = "sum"
layer = "buildings"
column = "floor_area"
[[indicators]]
name = "ext"
kind = "extensive"
layer = "buildings"
column = "floor_area"
[[indicators]]
name = "h_mean"
kind = "mean"
layer = "buildings"
column = "height"
[[indicators]]
name = "h_max"
kind = "max"
layer = "buildings"
column = "height"
[[indicators]]
name = "flood"
kind = "share_within"
layer = "buildings"
other = "flood"
[[indicators]]
name = "energy"
kind = "category_share"
layer = "buildings"
column = "energy_class"
"#;

/// The rows `rows` of `raw`, in that order.
fn take(raw: &RawLayer, rows: &[u32]) -> RawLayer {
    let idx = UInt32Array::from(rows.to_vec());
    RawLayer {
        geometries: rows
            .iter()
            .map(|r| raw.geometries[*r as usize].clone())
            .collect(),
        attributes: arrow_select::take::take_record_batch(&raw.attributes, &idx).unwrap(),
        crs: raw.crs.clone(),
        reduced: None,
    }
}

#[test]
fn partials_of_shuffled_parts_finish_to_the_single_machine_bits() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, SPEC.replace("{d}", &d.display().to_string())).unwrap();
    let spec = Spec::load(&path).unwrap();
    let single = run(
        &spec,
        &dir.path().join("out"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();

    let buildings = read_geoparquet(&d.join("buildings.parquet")).unwrap();
    let flood = read_geoparquet(&d.join("flood.parquet")).unwrap();
    let n = buildings.geometries.len() as u32;
    // A fixed shuffle (an LCG), dealt to 7 parts of unequal sizes.
    let mut order: Vec<u32> = (0..n).collect();
    let mut x = 12345u64;
    for i in (1..order.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    let cuts = [0, 100, 2_000, 2_001, 5_000, 9_000, 13_500, n as usize];
    let mut batches = Vec::new();
    for w in cuts.windows(2) {
        let mut memory = BTreeMap::new();
        memory.insert(
            "buildings".to_string(),
            take(&buildings, &order[w[0]..w[1]]),
        );
        // Every flood zone with every part (a part's buildings meet some).
        let all: Vec<u32> = (0..flood.geometries.len() as u32).collect();
        memory.insert("flood".to_string(), take(&flood, &all));
        batches.push(partition_partials(&spec, "buildings", memory).unwrap());
    }
    // Rows of several parts for the same zone and slot: not combined here.
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 1_000, "{rows}");
    // A digit at a scale no f64 has is refused, not clamped.
    let mut bad = batches[1].clone();
    let at = bad.schema().index_of("scale").unwrap();
    let mut scales: Vec<i32> = bad
        .column(at)
        .as_any()
        .downcast_ref::<arrow_array::Int32Array>()
        .unwrap()
        .values()
        .to_vec();
    let last = scales.len() - 1;
    scales[last] = 40;
    let mut cols = bad.columns().to_vec();
    cols[at] = std::sync::Arc::new(arrow_array::Int32Array::from(scales));
    bad = arrow_array::RecordBatch::try_new(bad.schema(), cols).unwrap();
    let e = match compute_distributed(&spec, &NoProgress, BTreeMap::new(), "buildings", vec![bad]) {
        Ok(_) => panic!("a scale of 40 is refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("scale 40"), "{e}");
    let dist =
        compute_distributed(&spec, &NoProgress, BTreeMap::new(), "buildings", batches).unwrap();

    assert_eq!(single.tables.len(), dist.tables.len());
    for (a, b) in single.tables.iter().zip(&dist.tables) {
        assert_eq!(a.zones, b.zones);
        for f in a.batch.schema().fields() {
            let name = f.name();
            assert_eq!(
                a.batch.column_by_name(name),
                b.batch.column_by_name(name),
                "{} {name}",
                a.zones
            );
        }
        assert_eq!(a.quality, b.quality, "{} quality", a.zones);
    }
    // The values are real: every building counted once over the communes.
    let counts = single.tables[0].batch.column_by_name("n").unwrap();
    let counts = counts
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .unwrap();
    assert_eq!(counts.values().iter().sum::<i64>(), n as i64);
}
