//! Quality records and flags on crafted incomplete data: completeness,
//! coverage of the source's declared extent, feature counts, thresholds
//! from `[quality]` and per indicator, withheld values written as null, the
//! same records whatever the batches of a streamed layer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use geo::{Geometry, Rect};
use terrastat_core::io::{with_geometry_column, write_parquet};
use terrastat_core::{Crs, NoProgress};
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;

fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Geometry {
    Geometry::Polygon(Rect::new((x0, y0), (x1, y1)).to_polygon())
}

fn write(path: &Path, geoms: &[Geometry], cols: Vec<(&str, ArrayRef)>) {
    // Every column nullable, so that the partitions share one schema.
    let b = RecordBatch::try_from_iter_with_nullable(cols.into_iter().map(|(n, a)| (n, a, true)))
        .unwrap();
    let (b, meta) = with_geometry_column(&b, "geometry", &Crs::epsg(2154), geoms).unwrap();
    write_parquet(path, &b, &[("geo".to_string(), meta)]).unwrap();
}

/// Zones a, b, c (1 km squares side by side); buildings: 10 in a (classes
/// known), 10 in b (4 without class), 2 in c; the buildings' declared
/// extent covers a, b and half of c. Buildings as one file per zone.
fn data(dir: &Path) {
    write(
        &dir.join("zones.parquet"),
        &[
            square(0.0, 0.0, 1000.0, 1000.0),
            square(1000.0, 0.0, 2000.0, 1000.0),
            square(2000.0, 0.0, 3000.0, 1000.0),
        ],
        vec![
            (
                "id",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            (
                "population",
                Arc::new(Float64Array::from(vec![100.0, 200.0, 300.0])) as ArrayRef,
            ),
        ],
    );
    write(
        &dir.join("cover.parquet"),
        &[square(0.0, 0.0, 2500.0, 1000.0)],
        vec![("id", Arc::new(StringArray::from(vec!["all"])) as ArrayRef)],
    );
    std::fs::create_dir_all(dir.join("buildings")).unwrap();
    for (k, (x0, n, unknown)) in [(0.0, 10, 0), (1000.0, 10, 4), (2000.0, 2, 0)]
        .into_iter()
        .enumerate()
    {
        let geoms: Vec<Geometry> = (0..n)
            .map(|i| {
                let x = x0 + 50.0 + 80.0 * i as f64;
                square(x, 100.0, x + 10.0, 110.0)
            })
            .collect();
        let classes: Vec<Option<&str>> = (0..n)
            .map(|i| {
                if i < unknown {
                    None
                } else if i % 3 == 0 {
                    Some("G")
                } else {
                    Some("C")
                }
            })
            .collect();
        let floor: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
        write(
            &dir.join(format!("buildings/part-{k}.parquet")),
            &geoms,
            vec![
                (
                    "energy_class",
                    Arc::new(StringArray::from(classes)) as ArrayRef,
                ),
                (
                    "floor_area",
                    Arc::new(Float64Array::from(floor)) as ArrayRef,
                ),
            ],
        );
    }
}

const SPEC: &str = r#"
crs = "EPSG:2154"
[quality]
min_completeness = 0.8
min_features = 3
[layers.buildings]
path = "buildings"
extent = "cover"
[layers.cover]
path = "cover.parquet"
[zones.z]
path = "zones.parquet"
id = "id"
[[indicators]]
use = "buildings.share_energy_fg"
name = "fg"
[[indicators]]
name = "n"
kind = "count"
layer = "buildings"
quality = { min_features = 1 }
[[indicators]]
name = "floor"
kind = "sum"
layer = "buildings"
column = "floor_area"
quality = { min_coverage = 0.9 }
"#;

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

#[test]
fn thresholds_withhold_values_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    data(dir.path());
    std::fs::write(dir.path().join("spec.toml"), SPEC).unwrap();
    let spec = Spec::load(&dir.path().join("spec.toml")).unwrap();
    let out = run(
        &spec,
        &dir.path().join("o"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let q = terrastat_core::io::read_table(&dir.path().join("o/z.quality.parquet")).unwrap();
    // One row per zone and published indicator, zone-major.
    let ind = col::<StringArray>(&q, "indicator");
    let rows: Vec<(String, String)> = (0..q.num_rows())
        .map(|r| {
            (
                col::<StringArray>(&q, "id").value(r).to_string(),
                ind.value(r).to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0], ("a".into(), "fg".into()));
    assert_eq!(rows[4], ("b".into(), "n".into()));
    let get = |zone: &str, name: &str| {
        let r = rows
            .iter()
            .position(|x| x.0 == zone && x.1 == name)
            .unwrap();
        let n = col::<UInt64Array>(&q, "n_features");
        let c = col::<Float64Array>(&q, "completeness");
        let v = col::<Float64Array>(&q, "coverage");
        let reason = col::<StringArray>(&q, "reason");
        (
            n.is_valid(r).then(|| n.value(r)),
            c.is_valid(r).then(|| c.value(r)),
            v.is_valid(r).then(|| v.value(r)),
            col::<StringArray>(&q, "flag").value(r).to_string(),
            reason.is_valid(r).then(|| reason.value(r).to_string()),
        )
    };
    // a: complete, covered, enough features.
    assert_eq!(
        get("a", "fg"),
        (Some(10), Some(1.0), Some(1.0), "ok".into(), None)
    );
    // b: 4 of 10 buildings without class: the share (from its helpers' counts) is withheld.
    let (n, c, cov, flag, why) = get("b", "fg");
    assert_eq!(
        (n, c, cov, flag.as_str()),
        (Some(6), Some(0.6), Some(1.0), "withheld")
    );
    assert_eq!(why.unwrap(), "completeness 0.600 < 0.8");
    // The count needs no column: complete; its own threshold (1 feature) passes in c.
    assert_eq!(
        get("b", "n"),
        (Some(10), Some(1.0), Some(1.0), "ok".into(), None)
    );
    assert_eq!(
        get("c", "n"),
        (Some(2), Some(1.0), Some(0.5), "ok".into(), None)
    );
    // c: half outside the declared extent; 2 features < 3.
    assert_eq!(get("c", "floor").4.unwrap(), "coverage 0.500 < 0.9");
    assert_eq!(get("c", "fg").4.unwrap(), "2 features < 3");
    // Withheld values are null in the outputs; the count column stays Int64.
    let t = &out.tables[0].batch;
    let fg = col::<Float64Array>(t, "fg");
    assert!(fg.is_valid(0) && fg.is_null(1) && fg.is_null(2));
    let n = col::<arrow_array::Int64Array>(t, "n");
    assert_eq!(n.values().to_vec(), [10, 10, 2]);
    assert!(col::<Float64Array>(t, "floor").is_null(2));
    let csv = std::fs::read_to_string(dir.path().join("o/z.csv")).unwrap();
    assert!(csv.lines().nth(3).unwrap().starts_with("c,,2,"), "{csv}");
    // The catalog summarises it.
    let fgc = out
        .catalog
        .indicators
        .iter()
        .find(|i| i.name == "fg")
        .unwrap();
    assert_eq!(fgc.quality["z"]["withheld"], 2);
    assert_eq!(fgc.quality["z"]["completeness"]["min"], 0.6);
    assert_eq!(fgc.thresholds.as_ref().unwrap().min_completeness, Some(0.8));
}

#[test]
fn quality_does_not_depend_on_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    data(dir.path());
    std::fs::write(dir.path().join("spec.toml"), SPEC).unwrap();
    let spec = Spec::load(&dir.path().join("spec.toml")).unwrap();
    let mut files = Vec::new();
    for (k, batch) in [None, Some(1), Some(5)].into_iter().enumerate() {
        let o = dir.path().join(format!("o{k}"));
        let r = run(
            &spec,
            &o,
            &RunOptions::default().batch_features(batch),
            &NoProgress,
        )
        .unwrap();
        if batch == Some(1) {
            assert_eq!(r.stream.batches, 3, "one partition per batch");
        }
        files.push((
            std::fs::read(o.join("z.quality.parquet")).unwrap(),
            std::fs::read(o.join("z.csv")).unwrap(),
        ));
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0], files[2]);
}

#[test]
fn a_bad_extent_is_a_spec_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.toml"),
        SPEC.replace("extent = \"cover\"", "extent = \"nowhere\""),
    )
    .unwrap();
    let e = Spec::load(&dir.path().join("spec.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spec.toml:8: layers `buildings`, key `extent`: `nowhere` names no other layer"),
        "{e}"
    );
}
