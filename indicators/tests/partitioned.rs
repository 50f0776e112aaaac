//! The generator's H3-partitioned output (issue 6): every building in
//! exactly one partition, by the H3 cell of its centroid, and a run over the
//! partitioned directory equals the run over the single file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::Path;

use arrow_array::{Array, Float64Array, Int64Array};
use terrastat_core::{read_layer, NoProgress, ReadOptions};
use terrastat_indicators::generate::{generate, GenerateOptions};
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;

#[test]
fn partitioned_buildings_hold_every_building_once_and_run_the_same() {
    let communes_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/communes.parquet");
    let communes = read_layer("communes", &communes_path, &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (one, parts) = (dir.path().join("one"), dir.path().join("parts"));
    let opts = GenerateOptions::default()
        .buildings(20_000)
        .vegetation(50)
        .flood(3)
        .seed(7);
    generate(&communes, &opts, &one).unwrap();
    let s = generate(&communes, &opts.clone().partition_h3(Some(6)), &parts).unwrap();
    assert!(s.files[0].is_dir());
    // Partitions: one directory per res-6 cell, each building's centroid in its cell.
    let cells: Vec<_> = std::fs::read_dir(parts.join("buildings"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(cells.len() > 5, "{cells:?}");
    assert!(cells.iter().all(|c| c.starts_with("h3_6=8")), "{cells:?}");
    let lonlat = terrastat_core::h3::LonLat::new(communes.crs()).unwrap();
    let mut seen = 0;
    for c in &cells {
        let cell: h3o::CellIndex = c.trim_start_matches("h3_6=").parse().unwrap();
        let l = read_layer(
            "b",
            &parts.join("buildings").join(c),
            &ReadOptions::default(),
        )
        .unwrap();
        for g in l.geometries() {
            let p = terrastat_core::centroid(g).unwrap();
            assert_eq!(lonlat.cell_of(p, h3o::Resolution::Six).unwrap(), cell);
        }
        seen += l.len();
    }
    // Every building once: the same ids as the single file.
    let a = read_layer("a", &one.join("buildings.parquet"), &ReadOptions::default()).unwrap();
    let b = read_layer("b", &parts.join("buildings"), &ReadOptions::default()).unwrap();
    assert_eq!(seen, a.len());
    let ids = |l: &terrastat_core::Layer| {
        let mut v: Vec<i64> = l
            .column("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        v.sort_unstable();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    // The same indicators from either.
    let spec_for = |buildings: &Path, name: &str| {
        let text = format!(
            "crs = \"EPSG:2154\"\n[layers.b]\npath = \"{}\"\n[zones.c]\npath = \"{}\"\nid = \"insee\"\n\
             [[indicators]]\nname = \"n\"\nkind = \"count\"\nlayer = \"b\"\n\
             [[indicators]]\nname = \"f\"\nkind = \"sum\"\nlayer = \"b\"\ncolumn = \"floor_area\"\n\
             [[indicators]]\nname = \"x\"\nkind = \"extensive\"\nlayer = \"b\"\ncolumn = \"floor_area\"\n",
            buildings.display(),
            communes_path.display()
        );
        let p = dir.path().join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        run(
            &Spec::load(&p).unwrap(),
            &dir.path().join(format!("out_{name}")),
            &RunOptions::default(),
            &NoProgress,
        )
        .unwrap()
    };
    let (ra, rb) = (
        spec_for(&one.join("buildings.parquet"), "a"),
        spec_for(&parts.join("buildings"), "b"),
    );
    let (ta, tb) = (&ra.tables[0].batch, &rb.tables[0].batch);
    // Bit for bit: the partitions hold the buildings in another order, and
    // sums are exact, rounded once (plain f64 addition differs in the last
    // bits here).
    for c in ["n", "f", "x"] {
        assert_eq!(ta.column_by_name(c), tb.column_by_name(c), "{c}");
    }
    let f = ta.column_by_name("f").unwrap();
    let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
    assert!(f.values().iter().filter(|v| **v > 0.0).count() > 10);
}

#[test]
fn chunked_generation_writes_the_same_rows_in_path_order() {
    let communes_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/communes.parquet");
    let communes = read_layer("communes", &communes_path, &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions::default()
        .buildings(9_000)
        .vegetation(10)
        .flood(1)
        .seed(3)
        .partition_h3(Some(6));
    generate(&communes, &opts, &dir.path().join("a")).unwrap();
    generate(&communes, &opts.clone().chunk(2_000), &dir.path().join("b")).unwrap();
    let files = terrastat_core::io::dataset_files(&dir.path().join("b/buildings")).unwrap();
    let names: std::collections::BTreeSet<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 4, "{names:?}");
    let a = read_layer(
        "a",
        &dir.path().join("a/buildings"),
        &ReadOptions::default(),
    )
    .unwrap();
    let b = read_layer(
        "b",
        &dir.path().join("b/buildings"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(a.len(), 9_000);
    assert_eq!(a.geometries(), b.geometries());
    assert_eq!(a.attributes(), b.attributes());
}
