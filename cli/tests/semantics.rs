//! Hand-checked semantics of every indicator kind on tiny layers whose
//! answers can be worked out on paper, plus the sample run's invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use geo::{Geometry, Rect};
use terrastat_core::{Crs, Layer, NoProgress, Zones};
use terrastat_indicators::eval::Evaluator;
use terrastat_indicators::inputs::Inputs;
use terrastat_indicators::spec::Spec;

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Geometry {
    Geometry::Polygon(Rect::new((x0, y0), (x1, y1)).to_polygon())
}

fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// Zones A = [0,10]², B = [10,20]×[0,10], C = [100,110]² (empty).
/// Buildings: b1 = [1,2]² in A; b2 = [9,11]×[1,2] across A|B, centroid on
/// the shared edge; b3 = [15,16]×[5,6] in B; b4 = [-1,1]×[5,6] half outside.
/// Flood = [5,15]×[0,10]; vegetation = [0,1]×[9,10].
fn inputs() -> Inputs {
    let crs = Crs::epsg(2154);
    let zl = Layer::new(
        "zones",
        crs.clone(),
        vec![
            rect(0., 0., 10., 10.),
            rect(10., 0., 20., 10.),
            rect(100., 100., 110., 110.),
        ],
        batch(vec![(
            "id",
            Arc::new(StringArray::from(vec!["A", "B", "C"])),
        )]),
    )
    .unwrap();
    let zones = Zones::from_layer("z", &zl, "id").unwrap();
    let buildings = Layer::new(
        "b",
        crs.clone(),
        vec![
            rect(1., 1., 2., 2.),
            rect(9., 1., 11., 2.),
            rect(15., 5., 16., 6.),
            rect(-1., 5., 1., 6.),
        ],
        batch(vec![
            (
                "v",
                Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 8.0])),
            ),
            (
                "rate",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
            ),
            ("w", Arc::new(Float64Array::from(vec![1.0, 3.0, 1.0, 0.0]))),
            (
                "cls",
                Arc::new(StringArray::from(vec![
                    Some("E"),
                    Some("F"),
                    Some("G"),
                    Some("E"),
                ])),
            ),
            (
                "year",
                Arc::new(Int64Array::from(vec![1950, 1990, 1960, 2010])),
            ),
        ]),
    )
    .unwrap();
    let flood = Layer::new(
        "f",
        crs.clone(),
        vec![rect(5., 0., 15., 10.)],
        RecordBatch::new_empty(Arc::new(Schema::empty())),
    )
    .unwrap();
    let veg = Layer::new(
        "g",
        crs,
        vec![rect(0., 9., 1., 10.)],
        RecordBatch::new_empty(Arc::new(Schema::empty())),
    )
    .unwrap();
    let mut i = Inputs::default();
    i.layers.insert("buildings".into(), Arc::new(buildings));
    i.layers.insert("flood".into(), Arc::new(flood));
    i.layers.insert("veg".into(), Arc::new(veg));
    i.zones.insert("z".into(), Arc::new(zones));
    i
}

const HEAD: &str = r#"
[layers.buildings]
path = "unused"
[layers.flood]
path = "unused"
[layers.veg]
path = "unused"
[zones.z]
path = "unused"
id = "id"
"#;

fn eval(indicators: &str) -> RecordBatch {
    let spec = Spec::from_str(&format!("{HEAD}{indicators}"), "test.toml".as_ref())
        .unwrap_or_else(|e| panic!("{e}"));
    let inputs = inputs();
    let plan = terrastat_indicators::Plan::new(&spec).unwrap();
    let mut t = Evaluator::new(&plan, &inputs, &NoProgress)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    t.remove(0).batch
}

fn floats(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    match c.data_type() {
        DataType::Int64 => c
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .iter()
            .map(|v| v.map(|x| x as f64))
            .collect(),
        _ => c
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .iter()
            .collect(),
    }
}

fn assert_close(got: Vec<Option<f64>>, want: &[Option<f64>]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        match (g, w) {
            (Some(g), Some(w)) => assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{got:?} vs {want:?}"
            ),
            _ => assert_eq!(g, w, "{got:?} vs {want:?}"),
        }
    }
}

#[test]
fn counts_by_each_assignment() {
    let b = eval(
        r#"
[[indicators]]
name = "c"
kind = "count"
layer = "buildings"
[[indicators]]
name = "i"
kind = "count"
layer = "buildings"
assign = "intersects"
[[indicators]]
name = "a"
kind = "count"
layer = "buildings"
assign = "area_weighted"
"#,
    );
    // b2's centroid (10, 1.5) is on the A|B edge: it goes to exactly one zone, the first (A).
    // b4's centroid (0, 5.5) is on A's outer edge: A.
    assert_eq!(b.column(1).data_type(), &DataType::Int64);
    assert_close(floats(&b, "c"), &[Some(3.0), Some(1.0), Some(0.0)]);
    assert_close(floats(&b, "i"), &[Some(3.0), Some(2.0), Some(0.0)]);
    assert_close(
        floats(&b, "a"),
        &[Some(1.0 + 0.5 + 0.5), Some(0.5 + 1.0), Some(0.0)],
    );
}

#[test]
fn sums_statistics_and_filters() {
    let b = eval(
        r#"
[[indicators]]
name = "s"
kind = "sum"
layer = "buildings"
column = "v"
[[indicators]]
name = "s_old"
kind = "sum"
layer = "buildings"
column = "v"
filter = "year < 1975"
[[indicators]]
name = "m"
kind = "mean"
layer = "buildings"
column = "rate"
[[indicators]]
name = "mw"
kind = "mean"
layer = "buildings"
column = "rate"
weight = "w"
[[indicators]]
name = "lo"
kind = "min"
layer = "buildings"
column = "rate"
[[indicators]]
name = "hi"
kind = "max"
layer = "buildings"
column = "rate"
[[indicators]]
name = "med"
kind = "median"
layer = "buildings"
column = "rate"
[[indicators]]
name = "sa"
kind = "sum"
layer = "buildings"
column = "v"
assign = "area_weighted"
"#,
    );
    // A holds b1 (10), b2 (20), b4 (8) by centroid; B holds b3 (30).
    assert_close(floats(&b, "s"), &[Some(38.0), Some(30.0), Some(0.0)]);
    assert_close(floats(&b, "s_old"), &[Some(10.0), Some(30.0), Some(0.0)]);
    assert_close(
        floats(&b, "m"),
        &[Some((1.0 + 2.0 + 4.0) / 3.0), Some(3.0), None],
    );
    assert_close(
        floats(&b, "mw"),
        &[Some((1.0 + 6.0) / 4.0), Some(3.0), None],
    );
    assert_close(floats(&b, "lo"), &[Some(1.0), Some(3.0), None]);
    assert_close(floats(&b, "hi"), &[Some(4.0), Some(3.0), None]);
    assert_close(floats(&b, "med"), &[Some(2.0), Some(3.0), None]);
    assert_close(
        floats(&b, "sa"),
        &[Some(10.0 + 10.0 + 4.0), Some(10.0 + 30.0), Some(0.0)],
    );
}

#[test]
fn areal_interpolation() {
    let b = eval(
        r#"
[[indicators]]
name = "ext"
kind = "extensive"
layer = "buildings"
column = "v"
[[indicators]]
name = "ext_part"
kind = "extensive"
layer = "buildings"
column = "v"
allocate_total = false
[[indicators]]
name = "int"
kind = "intensive"
layer = "buildings"
column = "rate"
"#,
    );
    // b4 is half outside every zone: with allocate_total its whole value goes to A.
    assert_close(
        floats(&b, "ext"),
        &[Some(10.0 + 10.0 + 8.0), Some(10.0 + 30.0), Some(0.0)],
    );
    assert_close(
        floats(&b, "ext_part"),
        &[Some(10.0 + 10.0 + 4.0), Some(10.0 + 30.0), Some(0.0)],
    );
    // A: areas in A are b1 1, b2 1, b4 1 → (1 + 2 + 4) / 3; B: b2 1, b3 1 → (2 + 3) / 2.
    assert_close(floats(&b, "int"), &[Some(7.0 / 3.0), Some(2.5), None]);
}

#[test]
fn coverage_area_share_density() {
    let b = eval(
        r#"
[[indicators]]
name = "cov"
kind = "coverage"
layer = "flood"
[[indicators]]
name = "farea"
kind = "area"
layer = "flood"
[[indicators]]
name = "zarea"
kind = "area"
[[indicators]]
name = "sw"
kind = "share_within"
layer = "buildings"
other = "flood"
[[indicators]]
name = "swc"
kind = "share_within"
layer = "buildings"
other = "flood"
predicate = "centroid"
[[indicators]]
name = "dens"
kind = "density"
layer = "buildings"
[[indicators]]
name = "vdens"
kind = "density"
layer = "buildings"
column = "v"
"#,
    );
    // A square zone half covered by a square flood zone gives 0.5.
    assert_close(floats(&b, "cov"), &[Some(0.5), Some(0.5), Some(0.0)]);
    assert_close(floats(&b, "farea"), &[Some(50.0), Some(50.0), Some(0.0)]);
    assert_close(
        floats(&b, "zarea"),
        &[Some(100.0), Some(100.0), Some(100.0)],
    );
    // A: b1 no, b2 yes, b4 no. B: b3 touches the flood edge x = 15: touching counts.
    assert_close(floats(&b, "sw"), &[Some(1.0 / 3.0), Some(1.0), None]);
    // By centroid: b2's (10, 1.5) is inside the flood; b3's (15.5, 5.5) is not.
    assert_close(floats(&b, "swc"), &[Some(1.0 / 3.0), Some(0.0), None]);
    // 100 m² = 1e-4 km².
    assert_close(floats(&b, "dens"), &[Some(3.0e4), Some(1.0e4), Some(0.0)]);
    assert_close(
        floats(&b, "vdens"),
        &[Some(38.0e4), Some(30.0e4), Some(0.0)],
    );
}

#[test]
fn categories_distances_ratios() {
    let b = eval(
        r#"
[[indicators]]
name = "cls"
kind = "category_share"
layer = "buildings"
column = "cls"
[[indicators]]
name = "d_mean"
kind = "nearest_distance"
layer = "buildings"
other = "veg"
[[indicators]]
name = "d_max"
kind = "nearest_distance"
layer = "buildings"
other = "veg"
stat = "max"
[[indicators]]
name = "n"
kind = "count"
layer = "buildings"
[[indicators]]
name = "n_old"
kind = "count"
layer = "buildings"
filter = "year < 1975"
[[indicators]]
name = "old_pct"
kind = "ratio"
expr = "n_old / n * 100"
"#,
    );
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(&names[..4], &["id", "cls_E", "cls_F", "cls_G"]);
    assert_close(floats(&b, "cls_E"), &[Some(2.0 / 3.0), Some(0.0), None]);
    assert_close(floats(&b, "cls_F"), &[Some(1.0 / 3.0), Some(0.0), None]);
    assert_close(floats(&b, "cls_G"), &[Some(0.0), Some(1.0), None]);
    // Distances to veg [0,1]×[9,10]: b1 7; b2 √(8² + 7²); b4 3 (it touches x ∈ [0,1]); b3 √(14² + 3²).
    let d2 = (64.0f64 + 49.0).sqrt();
    assert_close(
        floats(&b, "d_mean"),
        &[
            Some((7.0 + d2 + 3.0) / 3.0),
            Some((196.0f64 + 9.0).sqrt()),
            None,
        ],
    );
    assert_close(
        floats(&b, "d_max"),
        &[Some(d2), Some((196.0f64 + 9.0).sqrt()), None],
    );
    // 0 / 0 is null.
    assert_close(
        floats(&b, "old_pct"),
        &[Some(100.0 / 3.0), Some(100.0), None],
    );
}

fn sample_spec() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/indicators.toml")
}

#[test]
fn sample_run_invariants() {
    let spec = Spec::load(&sample_spec()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = terrastat_indicators::run::run(&spec, out.path(), &Default::default(), &NoProgress)
        .unwrap();
    assert!(spec.indicators.len() >= 15);
    let communes = r.tables.iter().find(|t| t.zones == "communes").unwrap();
    let b = &communes.batch;
    assert_eq!(b.num_rows(), 36);
    // Every building has exactly one centroid commune (they were generated inside them).
    let n: f64 = floats(b, "n_buildings").iter().map(|v| v.unwrap()).sum();
    assert_eq!(n, 16_000.0);
    // Area-weighted counts add up to the buildings' total share inside the communes.
    let aw: f64 = floats(b, "n_buildings_weighted")
        .iter()
        .map(|v| v.unwrap())
        .sum();
    assert!(aw <= 16_000.0 + 1e-6 && aw > 15_900.0, "{aw}");
    // allocate_total: the whole floor area is kept; the commune sum equals the centroid sum's total.
    let ext: f64 = floats(b, "floor_ext").iter().map(|v| v.unwrap()).sum();
    let sum: f64 = floats(b, "floor_sum").iter().map(|v| v.unwrap()).sum();
    assert!((ext - sum).abs() <= 1e-9 * sum, "{ext} vs {sum}");
    // Shares are fractions; category shares sum to 1 in every commune with buildings.
    for z in 0..b.num_rows() {
        for name in ["veg_share", "forest_share", "flood_share"] {
            let v = floats(b, name)[z].unwrap();
            assert!((0.0..=1.0).contains(&v), "{name} = {v}");
        }
        let s: f64 = ["A", "B", "C", "D", "E", "F", "G"]
            .iter()
            .map(|c| floats(b, &format!("energy_class_{c}"))[z].unwrap())
            .sum();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }
    // The grid covers the communes: its zone areas add up to at least theirs.
    let grid = r.tables.iter().find(|t| t.zones == "grid1km").unwrap();
    let gn: f64 = floats(&grid.batch, "n_buildings")
        .iter()
        .map(|v| v.unwrap())
        .sum();
    assert_eq!(gn, 16_000.0);
    // Outputs and catalog.
    for f in [
        "communes.parquet",
        "communes.csv",
        "grid1km.parquet",
        "grid1km.csv",
        "catalog.json",
    ] {
        assert!(out.path().join(f).exists(), "{f}");
    }
    let cat: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("catalog.json")).unwrap())
            .unwrap();
    assert_eq!(
        cat["indicators"].as_array().unwrap().len(),
        spec.indicators.len()
    );
    assert_eq!(cat["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(cat["indicators"][0]["definition"]
        .as_str()
        .unwrap()
        .contains("centroid"));
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    let exe = env!("CARGO_BIN_EXE_terrastat");
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for (threads, dir) in ["1", "2"].iter().zip(&dirs) {
        let st = std::process::Command::new(exe)
            .args([
                "run",
                sample_spec().to_str().unwrap(),
                "--out",
                dir.path().to_str().unwrap(),
                "--threads",
                threads,
                "--quiet",
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }
    for f in [
        "communes.parquet",
        "communes.csv",
        "grid1km.parquet",
        "grid1km.csv",
    ] {
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        let b = std::fs::read(dirs[1].path().join(f)).unwrap();
        assert!(a == b, "{f} differs between 1 and 2 threads");
    }
}
