//! Bad input: every test builds its inputs in a temporary directory and
//! checks that terrastat answers with a clear error (the exact variant, and a
//! message naming the file / spec line / key / column / feature), or skips and
//! reports what it could not use — never a panic, never silent loss.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow_schema::{Field, Schema};
use geo::{Geometry, LineString, Point, Polygon, Rect};
use terrastat_core::io::{with_geometry_column, write_parquet};
use terrastat_core::{Crs, NoProgress};
use terrastat_indicators::run::{run, RunOptions, RunOutput};
use terrastat_indicators::spec::Spec;
use terrastat_indicators::Error;

use common::{input, report};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Where the CRS of a written layer comes from.
enum CrsMeta {
    /// GeoParquet `geo` metadata with this CRS.
    Geo(Crs),
    /// No `geo` metadata at all: a plain Parquet file with a WKB `geometry` column.
    Plain,
}

/// A batch of attribute columns with `rows` rows (works with no column).
fn batch(rows: usize, cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays: Vec<ArrayRef> = cols.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .unwrap()
}

/// Write geometries plus attribute columns as (Geo)Parquet.
fn write_layer(path: &Path, crs: CrsMeta, geoms: &[Geometry], cols: Vec<(&str, ArrayRef)>) {
    let b = batch(geoms.len(), cols);
    let meta_crs = match &crs {
        CrsMeta::Geo(c) => c.clone(),
        CrsMeta::Plain => Crs::epsg(2154),
    };
    let (b, meta) = with_geometry_column(&b, "geometry", &meta_crs, geoms).unwrap();
    let kv = match crs {
        CrsMeta::Geo(_) => vec![("geo".to_string(), meta)],
        CrsMeta::Plain => vec![],
    };
    write_parquet(path, &b, &kv).unwrap();
}

fn l93() -> CrsMeta {
    CrsMeta::Geo(Crs::epsg(2154))
}

fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Geometry {
    Geometry::Polygon(Rect::new((x0, y0), (x1, y1)).to_polygon())
}

fn pt(x: f64, y: f64) -> Geometry {
    Geometry::Point(Point::new(x, y))
}

/// A self-intersecting "bow-tie" polygon inside the square (x0, y0)–(x0+s, y0+s).
fn bow_tie(x0: f64, y0: f64, s: f64) -> Geometry {
    Geometry::Polygon(Polygon::new(
        LineString::from(vec![
            (x0, y0),
            (x0 + s, y0 + s),
            (x0 + s, y0),
            (x0, y0 + s),
            (x0, y0),
        ]),
        vec![],
    ))
}

fn strings(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn floats(v: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}

/// Two zones `A` = (0,0)–(100,100) and `B` = (100,0)–(200,100), EPSG:2154, id column `id`.
fn write_zones(dir: &Path) -> PathBuf {
    let p = dir.join("zones.parquet");
    write_layer(
        &p,
        l93(),
        &[square(0., 0., 100., 100.), square(100., 0., 200., 100.)],
        vec![("id", strings(&["A", "B"]))],
    );
    p
}

/// Write a spec beside the inputs and load it.
fn spec_in(dir: &Path, text: &str) -> Result<Spec, Error> {
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    Spec::load(&p)
}

fn run_in(dir: &Path, spec: &Spec) -> Result<RunOutput, Error> {
    run(spec, &dir.join("out"), &RunOptions::default(), &NoProgress)
}

/// A spec with one layer `b` (file `layer_file`, extra layer keys `layer_keys`),
/// the zones of [`write_zones`], and the given indicators.
fn simple_spec(layer_file: &str, layer_keys: &str, indicators: &str) -> String {
    format!(
        r#"crs = "EPSG:2154"

[layers.b]
path = "{layer_file}"
{layer_keys}

[zones.z]
path = "zones.parquet"
id = "id"

{indicators}"#
    )
}

const COUNT: &str = r#"[[indicators]]
name = "n"
kind = "count"
layer = "b"
"#;

/// The values of an output column, as `f64`, by zone id.
fn column(out: &RunOutput, name: &str) -> Vec<(String, Option<f64>)> {
    let t = &out.tables[0].batch;
    let ids = t.column_by_name("id").expect("id column");
    let ids = arrow_cast::cast(ids, &arrow_schema::DataType::Utf8).unwrap();
    let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
    let col = t
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no output column `{name}`"));
    let vals: Vec<Option<f64>> = if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
        a.iter().map(|v| v.map(|x| x as f64)).collect()
    } else {
        let a = col
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("numeric output");
        a.iter().collect()
    };
    ids.iter()
        .map(|s| s.unwrap().to_string())
        .zip(vals)
        .collect()
}

fn value(out: &RunOutput, name: &str, zone: &str) -> Option<f64> {
    column(out, name)
        .into_iter()
        .find(|(z, _)| z == zone)
        .unwrap_or_else(|| panic!("no zone `{zone}`"))
        .1
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message does not contain {p:?}:\n{msg}");
    }
}

/// Line (1-based) of the first line of `text` that equals `line` after trimming,
/// searching from the `nth` (0-based) occurrence.
fn line_of(text: &str, line: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == line)
        .nth(nth)
        .unwrap_or_else(|| panic!("no line {line:?} in spec"))
        .0
        + 1
}

// ---------------------------------------------------------------------------
// 1. Invalid polygons
// ---------------------------------------------------------------------------

/// Three polygons in zone A, the middle one (row 1) a bow-tie.
fn write_bow_tie_layer(dir: &Path) {
    write_zones(dir);
    write_layer(
        &dir.join("b.parquet"),
        l93(),
        &[
            square(10., 10., 20., 20.),
            bow_tie(40., 40., 10.),
            square(60., 60., 70., 70.),
        ],
        vec![],
    );
}

#[test]
fn bow_tie_is_repaired_by_default_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_bow_tie_layer(dir.path());
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!(r.read, 3);
    assert_eq!(r.kept, 3);
    assert_eq!(r.skipped_total(), 0);
    assert_eq!(r.repaired_total(), 1);
    let (reason, n) = r.repaired.iter().next().unwrap();
    assert_eq!(*n, 1);
    assert_contains(reason, &["invalid polygon", "repaired"]);
    assert_eq!(r.examples.len(), 1);
    assert_eq!(r.examples[0].0, 1, "the bow-tie is row 1");
    assert_eq!(value(&out, "n", "A"), Some(3.0));
    assert_eq!(value(&out, "n", "B"), Some(0.0));
    // The catalog keeps the repair count too.
    let cat = serde_json::to_string(&out.catalog).unwrap();
    assert!(cat.contains("invalid polygon repaired"), "{cat}");
}

#[test]
fn bow_tie_is_skipped_with_skip_policy_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_bow_tie_layer(dir.path());
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"invalid = "skip""#, COUNT),
    )
    .unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!(r.read, 3);
    assert_eq!(r.kept, 2);
    assert_eq!(r.repaired_total(), 0);
    assert_eq!(
        r.skipped.get("invalid polygon"),
        Some(&1),
        "{:?}",
        r.skipped
    );
    assert_eq!(
        r.examples,
        vec![(1, "skipped: invalid polygon".to_string())]
    );
    assert_eq!(value(&out, "n", "A"), Some(2.0));
}

#[test]
fn bow_tie_fails_with_error_policy_naming_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    write_bow_tie_layer(dir.path());
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"invalid = "error""#, COUNT),
    )
    .unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::Feature {
            path,
            feature,
            message,
        }) => {
            assert_eq!(path, &dir.path().join("b.parquet"));
            assert_eq!(*feature, 1);
            assert_contains(message, &["invalid polygon"]);
        }
        other => panic!("expected Core(Feature), got {other:?}"),
    }
    assert_contains(
        &err.to_string(),
        &["b.parquet", "feature 1", "invalid polygon"],
    );
}

#[test]
fn features_of_lower_dimension_are_skipped_and_reported() {
    // A polygon layer with one stray point: the point is not silently lost.
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    write_layer(
        &dir.path().join("b.parquet"),
        l93(),
        &[
            square(10., 10., 20., 20.),
            pt(50., 50.),
            square(110., 10., 120., 20.),
        ],
        vec![],
    );
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!((r.read, r.kept, r.skipped_total()), (3, 2, 1));
    let (reason, _) = r.skipped.iter().next().unwrap();
    assert_contains(reason, &["lower dimension", "Polygon"]);
    assert_eq!(r.examples[0].0, 1);
    assert_eq!(value(&out, "n", "A"), Some(1.0));
    assert_eq!(value(&out, "n", "B"), Some(1.0));
}

// ---------------------------------------------------------------------------
// 2. NaN coordinates
// ---------------------------------------------------------------------------

#[test]
fn nan_coordinate_is_skipped_and_reported_others_computed() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    write_layer(
        &dir.path().join("b.parquet"),
        l93(),
        &[
            pt(10., 10.),
            pt(f64::NAN, 50.),
            pt(20., 20.),
            pt(150., 50.),
            pt(f64::INFINITY, 50.),
        ],
        vec![("v", floats(&[1., 10., 100., 1000., 10000.]))],
    );
    let ind = r#"[[indicators]]
name = "n"
kind = "count"
layer = "b"

[[indicators]]
name = "s"
kind = "sum"
layer = "b"
column = "v"
"#;
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", ind)).unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!((r.read, r.kept), (5, 3));
    assert_eq!(r.skipped_total(), 2);
    let (reason, n) = r.skipped.iter().next().unwrap();
    assert_contains(reason, &["NaN"]);
    assert_eq!(*n, 2);
    let rows: Vec<usize> = r.examples.iter().map(|e| e.0).collect();
    assert_eq!(rows, vec![1, 4]);
    assert_eq!(value(&out, "n", "A"), Some(2.0));
    assert_eq!(value(&out, "n", "B"), Some(1.0));
    // Attributes stay aligned with the kept features: 10 (row 1) is gone.
    assert_eq!(value(&out, "s", "A"), Some(101.0));
    assert_eq!(value(&out, "s", "B"), Some(1000.0));
}

#[test]
fn nan_in_polygon_ring_is_skipped_even_with_error_policy() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let bad = Geometry::Polygon(Polygon::new(
        LineString::from(vec![(10., 10.), (20., f64::NAN), (20., 20.), (10., 10.)]),
        vec![],
    ));
    write_layer(
        &dir.path().join("b.parquet"),
        l93(),
        &[square(10., 10., 20., 20.), bad],
        vec![],
    );
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"invalid = "error""#, COUNT),
    )
    .unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!((r.read, r.kept), (2, 1));
    assert_eq!(
        r.skipped.get("NaN or infinite coordinate"),
        Some(&1),
        "{:?}",
        r.skipped
    );
    assert_eq!(value(&out, "n", "A"), Some(1.0));
}

#[test]
fn undecodable_wkb_is_skipped_and_reported() {
    // A plain Parquet file whose second WKB value is garbage.
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let good = terrastat_core::io::to_wkb_array(&[pt(10., 10.)]).unwrap();
    let mut b = arrow_array::builder::BinaryBuilder::new();
    b.append_value(good.value(0));
    b.append_value(b"\x01\x63\x00\x00\x00garbage");
    b.append_null();
    let geom: ArrayRef = Arc::new(b.finish());
    let rb = batch(3, vec![("geometry", geom)]);
    write_parquet(&dir.path().join("b.parquet"), &rb, &[]).unwrap();
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"crs = "EPSG:2154""#, COUNT),
    )
    .unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!((r.read, r.kept, r.skipped_total()), (3, 1, 2));
    assert!(
        r.skipped.keys().any(|k| k.contains("bad WKB")),
        "{:?}",
        r.skipped
    );
    assert_eq!(r.skipped.get("null geometry"), Some(&1), "{:?}", r.skipped);
    assert_eq!(value(&out, "n", "A"), Some(1.0));
}

// ---------------------------------------------------------------------------
// 3. Missing CRS
// ---------------------------------------------------------------------------

fn write_plain_points(dir: &Path) {
    write_zones(dir);
    write_layer(
        &dir.join("b.parquet"),
        CrsMeta::Plain,
        &[pt(10., 10.), pt(20., 20.), pt(150., 50.)],
        vec![],
    );
}

#[test]
fn plain_parquet_without_crs_is_missing_crs_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_plain_points(dir.path());
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::MissingCrs { path }) => {
            assert_eq!(path, &dir.path().join("b.parquet"))
        }
        other => panic!("expected Core(MissingCrs), got {other:?}"),
    }
    assert_contains(&err.to_string(), &["b.parquet", "no CRS", "crs = "]);
}

#[test]
fn geoparquet_with_null_crs_is_missing_crs() {
    // GeoParquet: `"crs": null` means "unknown" (a missing key would mean CRS84).
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let geoms = [pt(10., 10.)];
    let (b, meta) =
        with_geometry_column(&batch(1, vec![]), "geometry", &Crs::epsg(2154), &geoms).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    meta["columns"]["geometry"]["crs"] = serde_json::Value::Null;
    write_parquet(
        &dir.path().join("b.parquet"),
        &b,
        &[("geo".into(), meta.to_string())],
    )
    .unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    assert!(
        matches!(&err, Error::Core(terrastat_core::Error::MissingCrs { path }) if path.ends_with("b.parquet")),
        "{err:?}"
    );
}

#[test]
fn plain_parquet_with_crs_in_spec_works() {
    let dir = tempfile::tempdir().unwrap();
    write_plain_points(dir.path());
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"crs = "EPSG:2154""#, COUNT),
    )
    .unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    assert_eq!(value(&out, "n", "A"), Some(2.0));
    assert_eq!(value(&out, "n", "B"), Some(1.0));
    assert_eq!(input(&out, "layers.b").crs, "EPSG:2154");
}

#[test]
fn bad_crs_string_on_layer_names_layer_and_key() {
    let dir = tempfile::tempdir().unwrap();
    write_plain_points(dir.path());
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"crs = "lambert93""#, COUNT),
    );
    // Caught when the spec is loaded, before any input is read.
    let err = spec.unwrap_err();
    match &err {
        Error::Spec {
            path,
            what,
            message,
            ..
        } => {
            assert!(path.ends_with("spec.toml"));
            assert_contains(what, &["layers `b`", "key `crs`"]);
            assert_contains(message, &["lambert93"]);
        }
        other => panic!("expected Spec, got {other:?}"),
    }
}

#[test]
fn bad_crs_string_on_layer_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_plain_points(dir.path());
    let text = simple_spec("b.parquet", r#"crs = "lambert93""#, COUNT);
    let err = spec_in(dir.path(), &text)
        .and_then(|s| run_in(dir.path(), &s))
        .unwrap_err();
    let want = line_of(&text, r#"crs = "lambert93""#, 0);
    match &err {
        Error::Spec { line, .. } => assert_eq!(*line, want, "{err}"),
        other => panic!("expected Spec, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 4. CRS mismatch
// ---------------------------------------------------------------------------

/// Lambert-93 of Paris Notre-Dame (lon 2.3499, lat 48.8530), from the Lambert
/// conformal conic formulas (GRS80; PROJ agrees to the millimetre).
const NOTRE_DAME_L93: (f64, f64) = (652_297.0, 6_861_636.4);

/// Zones in EPSG:2154 (a ±1000 m square around Notre-Dame, id `ND`, and a
/// square 10 km east, id `E`) and a point layer in EPSG:4326.
fn write_4326_points(dir: &Path) {
    let (x, y) = NOTRE_DAME_L93;
    write_layer(
        &dir.join("zones.parquet"),
        l93(),
        &[
            square(x - 1000., y - 1000., x + 1000., y + 1000.),
            square(x + 9000., y - 1000., x + 11000., y + 1000.),
        ],
        vec![("id", strings(&["ND", "E"]))],
    );
    write_layer(
        &dir.join("b.parquet"),
        CrsMeta::Geo(Crs::epsg(4326)),
        &[
            pt(2.3499, 48.8530), // Notre-Dame
            pt(2.2945, 48.8584), // Eiffel Tower, ~4 km west: in no zone
            pt(2.3522, 48.8566), // Hôtel de Ville, ~450 m north of Notre-Dame
        ],
        vec![],
    );
}

#[cfg(not(feature = "proj"))]
#[test]
fn crs_mismatch_without_proj_names_file_and_both_crs() {
    let dir = tempfile::tempdir().unwrap();
    write_4326_points(dir.path());
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::CrsMismatch {
            path,
            layer_crs,
            working_crs,
        }) => {
            assert_eq!(path, &dir.path().join("b.parquet"));
            assert_eq!(layer_crs, "EPSG:4326");
            assert_eq!(working_crs, "EPSG:2154");
        }
        other => panic!("expected Core(CrsMismatch), got {other:?}"),
    }
    assert_contains(
        &err.to_string(),
        &["b.parquet", "EPSG:4326", "EPSG:2154", "proj"],
    );
}

#[cfg(feature = "proj")]
#[test]
fn crs_mismatch_with_proj_is_reprojected() {
    let dir = tempfile::tempdir().unwrap();
    write_4326_points(dir.path());
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    // The read report keeps the CRS as read.
    let f = out
        .inputs
        .files
        .iter()
        .find(|f| f.role == "layers.b")
        .unwrap();
    assert_eq!(f.crs, "EPSG:4326");
    assert_eq!(report(&out, "layers.b").kept, 3);
    assert_eq!(value(&out, "n", "ND"), Some(2.0));
    assert_eq!(value(&out, "n", "E"), Some(0.0));
    // And the reprojected point lies within 1 m of the expected Lambert-93 position.
    let l = &out.inputs.layers["b"];
    assert_eq!(l.crs().to_string(), "EPSG:2154");
    let Geometry::Point(p) = &l.geometries()[0] else {
        panic!("not a point")
    };
    let (x, y) = NOTRE_DAME_L93;
    assert!((p.x() - x).abs() < 1.0 && (p.y() - y).abs() < 1.0, "{p:?}");
}

// ---------------------------------------------------------------------------
// 5. Wrong column types, unknown columns
// ---------------------------------------------------------------------------

fn write_typed_points(dir: &Path) {
    write_zones(dir);
    write_layer(
        &dir.join("b.parquet"),
        l93(),
        &[pt(10., 10.), pt(150., 50.)],
        vec![
            ("kind", strings(&["house", "shop"])),
            ("v", floats(&[1., 2.])),
        ],
    );
}

#[test]
fn sum_over_string_column_names_column_layer_and_expected_type() {
    let dir = tempfile::tempdir().unwrap();
    write_typed_points(dir.path());
    let ind = r#"[[indicators]]
name = "s"
kind = "sum"
layer = "b"
column = "kind"
"#;
    let text = simple_spec("b.parquet", "", ind);
    let spec = spec_in(dir.path(), &text).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Spec {
            path,
            line,
            what,
            message,
        } => {
            assert!(path.ends_with("spec.toml"));
            assert_eq!(*line, spec.indicator_line(0));
            assert_contains(what, &["indicator `s`", "key `column`"]);
            assert_contains(
                message,
                &["layer `b`", "b.parquet", "`kind`", "Utf8", "numeric"],
            );
        }
        other => panic!("expected Spec, got {other:?}"),
    }
}

#[test]
fn weight_on_missing_column_names_key_and_available_columns() {
    let dir = tempfile::tempdir().unwrap();
    write_typed_points(dir.path());
    let ind = r#"[[indicators]]
name = "m"
kind = "mean"
layer = "b"
column = "v"
weight = "surface"
"#;
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", ind)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Spec { what, message, .. } => {
            assert_contains(what, &["indicator `m`", "key `weight`"]);
            assert_contains(message, &["`surface`", "kind", "v"]);
        }
        other => panic!("expected Spec, got {other:?}"),
    }
}

#[test]
fn filter_on_unknown_column_names_line_key_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write_typed_points(dir.path());
    let ind = r#"[[indicators]]
name = "n"
kind = "count"
layer = "b"

[[indicators]]
name = "n_old"
kind = "count"
layer = "b"
filter = "year < 1975"
"#;
    let text = simple_spec("b.parquet", "", ind);
    let spec = spec_in(dir.path(), &text).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Spec {
            line,
            what,
            message,
            ..
        } => {
            assert_eq!(*line, spec.indicator_line(1));
            // The second `[[indicators]]` table.
            assert_eq!(*line, line_of(&text, "[[indicators]]", 1));
            assert_contains(what, &["indicator `n_old`", "key `filter`"]);
            assert_contains(message, &["`year`", "kind", "v"]);
        }
        other => panic!("expected Spec, got {other:?}"),
    }
    let msg = err.to_string();
    assert_contains(&msg, &["spec.toml:", "filter", "year"]);
}

#[test]
fn geometry_column_of_wrong_type_names_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let rb = batch(1, vec![("geometry", strings(&["POINT (1 2)"]))]);
    write_parquet(&dir.path().join("b.parquet"), &rb, &[]).unwrap();
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"crs = "EPSG:2154""#, COUNT),
    )
    .unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::ColumnType {
            layer,
            column,
            found,
            expected,
        }) => {
            assert_contains(layer, &["b.parquet"]);
            assert_eq!(column, "geometry");
            assert_eq!(found, "Utf8");
            assert_contains(expected, &["WKB"]);
        }
        other => panic!("expected Core(ColumnType), got {other:?}"),
    }
}

#[test]
fn zones_of_points_are_a_geometry_type_error() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("zones.parquet"),
        l93(),
        &[pt(1., 1.)],
        vec![("id", strings(&["A"]))],
    );
    write_layer(&dir.path().join("b.parquet"), l93(), &[pt(1., 1.)], vec![]);
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::GeometryType { layer, message }) => {
            assert_contains(layer, &["zones `z`", "zones.parquet"]);
            assert_contains(message, &["polygons", "Point"]);
        }
        other => panic!("expected Core(GeometryType), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 6. Empty layers
// ---------------------------------------------------------------------------

#[test]
fn zero_row_layer_is_empty_layer_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    write_layer(
        &dir.path().join("b.parquet"),
        l93(),
        &[],
        vec![("v", floats(&[]))],
    );
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::EmptyLayer { path, .. }) => {
            assert_eq!(path, &dir.path().join("b.parquet"))
        }
        other => panic!("expected Core(EmptyLayer), got {other:?}"),
    }
    assert_contains(&err.to_string(), &["b.parquet", "empty"]);
}

#[test]
fn all_rows_skipped_is_empty_layer_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    write_layer(
        &dir.path().join("b.parquet"),
        l93(),
        &[pt(f64::NAN, 1.), pt(2., f64::NAN), bow_tie(0., 0., 10.)],
        vec![],
    );
    // With `skip`, the bow-tie goes too: nothing is left.
    let spec = spec_in(
        dir.path(),
        &simple_spec("b.parquet", r#"invalid = "skip""#, COUNT),
    )
    .unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::EmptyLayer { path, detail }) => {
            assert_eq!(path, &dir.path().join("b.parquet"));
            assert_contains(
                detail,
                &["3 rows read", "all skipped", "NaN", "invalid polygon"],
            );
        }
        other => panic!("expected Core(EmptyLayer), got {other:?}"),
    }
}

#[test]
fn empty_geojson_zones_is_empty_layer_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(&dir.path().join("b.parquet"), l93(), &[pt(1., 1.)], vec![]);
    std::fs::write(
        dir.path().join("zones.geojson"),
        r#"{"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
            "features": []}"#,
    )
    .unwrap();
    let text = simple_spec("b.parquet", "", COUNT).replace("zones.parquet", "zones.geojson");
    let spec = spec_in(dir.path(), &text).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    assert!(
        matches!(&err, Error::Core(terrastat_core::Error::EmptyLayer { path, .. }) if path.ends_with("zones.geojson")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------
// 7. Missing files
// ---------------------------------------------------------------------------

#[test]
fn missing_layer_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let spec = spec_in(
        dir.path(),
        &simple_spec("nope/buildings.parquet", "", COUNT),
    )
    .unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::Io { path, source }) => {
            assert_eq!(path, &dir.path().join("nope/buildings.parquet"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Core(Io), got {other:?}"),
    }
    assert_contains(&err.to_string(), &["nope/buildings.parquet", "not found"]);
    // Nothing was written.
    assert!(!dir.path().join("out").exists());
}

#[test]
fn missing_spec_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("absent.toml");
    let err = Spec::load(&p).unwrap_err();
    match &err {
        Error::Io { path, source } => {
            assert_eq!(path, &p);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert_contains(&err.to_string(), &["absent.toml"]);
}

#[test]
fn unsupported_extension_names_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    std::fs::write(dir.path().join("b.shp"), b"not really").unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.shp", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    #[cfg(not(feature = "gdal"))]
    match &err {
        Error::Core(terrastat_core::Error::UnsupportedFormat { path, reason }) => {
            assert!(path.ends_with("b.shp"));
            assert_contains(reason, &[".shp", "gdal"]);
        }
        other => panic!("expected Core(UnsupportedFormat), got {other:?}"),
    }
    assert_contains(&err.to_string(), &["b.shp"]);
}

// ---------------------------------------------------------------------------
// 8. Spec errors
// ---------------------------------------------------------------------------

const HEAD: &str = r#"crs = "EPSG:2154"

[layers.b]
path = "b.parquet"

[zones.z]
path = "zones.parquet"
id = "id"
"#;

fn spec_err(text: &str) -> Error {
    Spec::from_str(text, Path::new("dir/spec.toml")).expect_err("the spec should be rejected")
}

/// Checks a semantic spec error: variant, file, line, key and message parts.
fn assert_spec_error(err: &Error, want_line: usize, what_parts: &[&str], msg_parts: &[&str]) {
    match err {
        Error::Spec {
            path,
            line,
            what,
            message,
        } => {
            assert_eq!(path, Path::new("dir/spec.toml"));
            assert_eq!(*line, want_line, "{err}");
            assert_contains(what, what_parts);
            assert_contains(message, msg_parts);
        }
        other => panic!("expected Spec, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("dir/spec.toml:{want_line}: ")),
        "{err}"
    );
}

/// The error is reported at the `[[indicators]]` header of the `nth` table.
fn assert_line_in_table(err: &Error, text: &str, nth: usize) {
    let header = line_of(text, "[[indicators]]", nth);
    match err {
        Error::Spec { line, .. } => {
            assert_eq!(*line, header, "expected the table at {header}: {err}")
        }
        other => panic!("expected Spec, got {other:?}"),
    }
}

#[test]
fn unknown_key_typo_gives_line_and_key() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"s\"
kind = \"sum\"
layer = \"b\"
colum = \"floor_area\"
"
    );
    let err = spec_err(&text);
    let line = line_of(&text, "colum = \"floor_area\"", 0);
    assert_spec_error(
        &err,
        line,
        &["indicator `s`", "key `colum`"],
        &["unknown field `colum`", "expected one of", "`column`"],
    );
}

#[test]
fn unknown_key_in_layer_table_gives_line() {
    let text = HEAD.replace(
        "path = \"b.parquet\"",
        "path = \"b.parquet\"\ninvalide = \"skip\"",
    );
    let err = spec_err(&text);
    let line = line_of(&text, "invalide = \"skip\"", 0);
    match &err {
        Error::SpecSyntax { message, .. } => {
            assert_contains(message, &[&format!("line {line}"), "invalide"])
        }
        other => panic!("expected SpecSyntax, got {other:?}"),
    }
}

#[test]
fn unknown_kind_gives_line_and_value() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"cuont\"
layer = \"b\"
"
    );
    let err = spec_err(&text);
    let line = line_of(&text, "kind = \"cuont\"", 0);
    assert_spec_error(
        &err,
        line,
        &["indicator `n`", "key `kind`"],
        &["unknown variant `cuont`", "`count`"],
    );
}

#[test]
fn unknown_invalid_policy_gives_line_and_value() {
    let text = HEAD.replace(
        "path = \"b.parquet\"",
        "path = \"b.parquet\"\ninvalid = \"fix\"",
    );
    let err = spec_err(&text);
    let line = line_of(&text, "invalid = \"fix\"", 0);
    match &err {
        Error::SpecSyntax { message, .. } => {
            assert_contains(message, &[&format!("line {line}"), "fix", "repair"])
        }
        other => panic!("expected SpecSyntax, got {other:?}"),
    }
}

#[test]
fn unknown_layer_in_indicator_gives_line_and_key() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"

[[indicators]]
name = \"m\"
kind = \"count\"
layer = \"buildings\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 1);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    assert_spec_error(
        &err,
        *line,
        &["indicator `m`", "key `layer`"],
        &["no layer `buildings`", "layers: b"],
    );
}

#[test]
fn missing_column_for_sum_gives_line_and_key() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"s\"
kind = \"sum\"
layer = \"b\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 0);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    assert_spec_error(
        &err,
        *line,
        &["indicator `s`", "key `column`"],
        &["missing"],
    );
}

#[test]
fn duplicate_indicator_names_give_both_lines() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"

[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"
filter = \"v > 1\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 1);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    // The first definition's line, as the spec computes it.
    let first = *line - (line_of(&text, "[[indicators]]", 1) - line_of(&text, "[[indicators]]", 0));
    assert_spec_error(
        &err,
        *line,
        &["indicator `n`", "key `name`"],
        &["duplicate", &format!("first at line {first}")],
    );
}

#[test]
fn ratio_with_unknown_indicator_gives_line_and_name() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"

[[indicators]]
name = \"r\"
kind = \"ratio\"
expr = \"n / stats.n_total * 100\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 1);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    assert_spec_error(
        &err,
        *line,
        &["indicator `r`", "key `expr`"],
        &[
            "`stats.n_total` names no indicator",
            "`stats` is no table of this spec",
        ],
    );
}

#[test]
fn ratio_cycle_gives_line_and_key() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"

[[indicators]]
name = \"r1\"
kind = \"ratio\"
expr = \"r2 + n\"

[[indicators]]
name = \"r2\"
kind = \"ratio\"
expr = \"r1 * 2\"
"
    );
    let err = spec_err(&text);
    match &err {
        Error::Spec {
            line,
            what,
            message,
            ..
        } => {
            let r1 = line_of(&text, "[[indicators]]", 1);
            let r2 = line_of(&text, "[[indicators]]", 2);
            assert!([r1, r2].contains(line), "line {line}: {err}");
            assert!(
                what.contains("indicator `r1`") || what.contains("indicator `r2`"),
                "{what}"
            );
            assert_contains(what, &["key `expr`"]);
            assert_contains(message, &["cycle"]);
        }
        other => panic!("expected Spec, got {other:?}"),
    }
}

#[test]
fn self_referencing_ratio_is_a_cycle() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"r\"
kind = \"ratio\"
expr = \"r + 1\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 0);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    assert_spec_error(&err, *line, &["indicator `r`", "key `expr`"], &["cycle"]);
}

#[test]
fn unparsable_filter_gives_line_and_key() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"
filter = \"year <\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 0);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    assert_spec_error(&err, *line, &["indicator `n`", "key `filter`"], &["year <"]);
}

#[test]
fn unknown_zone_layer_in_indicator_gives_line_and_key() {
    let text = format!(
        "{HEAD}
[[indicators]]
name = \"n\"
kind = \"count\"
layer = \"b\"
zones = \"communes\"
"
    );
    let err = spec_err(&text);
    assert_line_in_table(&err, &text, 0);
    let Error::Spec { line, .. } = &err else {
        unreachable!()
    };
    assert_spec_error(
        &err,
        *line,
        &["indicator `n`", "key `zones`"],
        &["`communes`"],
    );
}

#[test]
fn zone_file_without_id_gives_zone_line() {
    let text = HEAD.replace("id = \"id\"\n", "");
    let err = spec_err(&text);
    let line = line_of(&text, "[zones.z]", 0);
    match &err {
        Error::Spec {
            line: l,
            what,
            message,
            ..
        } => {
            assert_eq!(*l, line, "{err}");
            assert_contains(what, &["zones `z`"]);
            assert_contains(message, &["id"]);
        }
        other => panic!("expected Spec, got {other:?}"),
    }
}

#[test]
fn spec_without_zones_is_rejected() {
    let err = spec_err("crs = \"EPSG:2154\"\n");
    assert_spec_error(&err, 1, &["spec"], &["no zone layer"]);
}

#[test]
fn invalid_toml_is_syntax_error_with_line() {
    let text = format!("{HEAD}\n[[indicators]]\nname = \"n\nkind = \"count\"\n");
    let err = spec_err(&text);
    let line = line_of(&text, "name = \"n", 0);
    match &err {
        Error::SpecSyntax { path, message } => {
            assert_eq!(path, Path::new("dir/spec.toml"));
            assert_contains(message, &[&format!("line {line}")]);
        }
        other => panic!("expected SpecSyntax, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 9. Malformed files
// ---------------------------------------------------------------------------

#[test]
fn geojson_that_is_not_json_is_format_error_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    std::fs::write(
        dir.path().join("b.geojson"),
        r#"{"type": "FeatureCollection", "features": [ {"type": "Feature", "#,
    )
    .unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.geojson", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::Format { path, message }) => {
            assert_eq!(path, &dir.path().join("b.geojson"));
            assert_contains(message, &["invalid JSON", "line 1"]);
        }
        other => panic!("expected Core(Format), got {other:?}"),
    }
    assert_contains(&err.to_string(), &["b.geojson"]);
}

#[test]
fn json_that_is_not_geojson_is_format_error_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    std::fs::write(dir.path().join("b.geojson"), r#"{"hello": [1, 2, 3]}"#).unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.geojson", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::Format { path, message }) => {
            assert_eq!(path, &dir.path().join("b.geojson"));
            assert_contains(message, &["GeoJSON"]);
        }
        other => panic!("expected Core(Format), got {other:?}"),
    }
}

#[test]
fn geojson_bad_feature_geometry_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    std::fs::write(
        dir.path().join("b.geojson"),
        r#"{"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
            "features": [
              {"type": "Feature", "properties": {"v": 1}, "geometry": {"type": "Point", "coordinates": [10, 10]}},
              {"type": "Feature", "properties": {"v": 2}, "geometry": null},
              {"type": "Feature", "properties": {"v": 3}, "geometry": {"type": "Point", "coordinates": [150, 10]}}
            ]}"#,
    )
    .unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.geojson", "", COUNT)).unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let r = report(&out, "layers.b");
    assert_eq!((r.read, r.kept), (3, 2));
    assert_eq!(r.skipped.get("null geometry"), Some(&1), "{:?}", r.skipped);
    assert_eq!(r.examples[0].0, 1);
    assert_eq!(value(&out, "n", "A"), Some(1.0));
    assert_eq!(value(&out, "n", "B"), Some(1.0));
}

/// A valid GeoParquet file with some rows, as bytes.
fn parquet_bytes(dir: &Path) -> Vec<u8> {
    let p = dir.join("full.parquet");
    let geoms: Vec<Geometry> = (0..200).map(|i| pt(10. + (i % 80) as f64, 10.)).collect();
    let vals: Vec<f64> = (0..200).map(|i| i as f64).collect();
    write_layer(&p, l93(), &geoms, vec![("v", floats(&vals))]);
    std::fs::read(&p).unwrap()
}

#[test]
fn truncated_parquet_is_parquet_error_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let bytes = parquet_bytes(dir.path());
    for keep in [
        0,
        3,
        4,
        12,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        std::fs::write(dir.path().join("b.parquet"), &bytes[..keep]).unwrap();
        let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
        let err = run_in(dir.path(), &spec).unwrap_err();
        match &err {
            Error::Core(terrastat_core::Error::Parquet { path, .. }) => {
                assert_eq!(path, &dir.path().join("b.parquet"), "keep {keep}")
            }
            other => panic!("keep {keep}: expected Core(Parquet), got {other:?}"),
        }
        assert_contains(&err.to_string(), &["b.parquet", "parquet"]);
    }
}

#[test]
fn corrupt_parquet_data_is_an_error_naming_file() {
    // The footer is intact, the data pages are garbage: the error must still name the file.
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let mut bytes = parquet_bytes(dir.path());
    // Data pages start right after the 4-byte magic; the footer is at the end.
    let end = bytes.len() / 3;
    for (k, b) in bytes[8..end].iter_mut().enumerate() {
        *b = (k as u8).wrapping_mul(37) ^ 0x5a;
    }
    std::fs::write(dir.path().join("b.parquet"), &bytes).unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Core(terrastat_core::Error::Parquet { path, .. }) if path == &dir.path().join("b.parquet")
        ),
        "{err:?}"
    );
    assert_contains(&err.to_string(), &["b.parquet"]);
}

#[test]
fn not_a_parquet_file_is_parquet_error_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    std::fs::write(dir.path().join("b.parquet"), "id,x,y\n1,2,3\n").unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    assert!(
        matches!(&err, Error::Core(terrastat_core::Error::Parquet { path, .. }) if path.ends_with("b.parquet")),
        "{err:?}"
    );
}

#[test]
fn parquet_without_geometry_is_format_error_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    write_parquet(
        &dir.path().join("b.parquet"),
        &batch(2, vec![("v", floats(&[1., 2.]))]),
        &[],
    )
    .unwrap();
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::Format { path, message }) => {
            assert!(path.ends_with("b.parquet"));
            assert_contains(message, &["geo", "geometry"]);
        }
        other => panic!("expected Core(Format), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 10. Zone ids
// ---------------------------------------------------------------------------

#[test]
fn duplicate_zone_ids_name_the_id_column_and_file() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("zones.parquet"),
        l93(),
        &[
            square(0., 0., 100., 100.),
            square(100., 0., 200., 100.),
            square(200., 0., 300., 100.),
        ],
        vec![("id", strings(&["A", "92012", "92012"]))],
    );
    write_layer(&dir.path().join("b.parquet"), l93(), &[pt(1., 1.)], vec![]);
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::InvalidArgument(msg)) => {
            assert_contains(
                msg,
                &[
                    "zones `z`",
                    "zones.parquet",
                    "`92012`",
                    "more than once",
                    "column `id`",
                ],
            );
        }
        other => panic!("expected Core(InvalidArgument), got {other:?}"),
    }
}

#[test]
fn null_zone_ids_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ids: ArrayRef = Arc::new(StringArray::from(vec![Some("A"), None]));
    write_layer(
        &dir.path().join("zones.parquet"),
        l93(),
        &[square(0., 0., 100., 100.), square(100., 0., 200., 100.)],
        vec![("id", ids)],
    );
    write_layer(&dir.path().join("b.parquet"), l93(), &[pt(1., 1.)], vec![]);
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::InvalidArgument(msg)) => {
            assert_contains(
                msg,
                &["zones `z`", "zones.parquet", "column `id`", "1 null"],
            );
        }
        other => panic!("expected Core(InvalidArgument), got {other:?}"),
    }
}

#[test]
fn missing_zone_id_column_lists_available_columns() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    write_layer(&dir.path().join("b.parquet"), l93(), &[pt(1., 1.)], vec![]);
    let text = simple_spec("b.parquet", "", COUNT).replace("id = \"id\"", "id = \"insee\"");
    let spec = spec_in(dir.path(), &text).unwrap();
    let err = run_in(dir.path(), &spec).unwrap_err();
    match &err {
        Error::Core(terrastat_core::Error::MissingColumn {
            layer,
            column,
            available,
        }) => {
            assert_contains(layer, &["zones.parquet"]);
            assert_eq!(column, "insee");
            assert_eq!(available, "id");
        }
        other => panic!("expected Core(MissingColumn), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 11. The binary
// ---------------------------------------------------------------------------

fn terrastat(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_terrastat"))
        .args(args)
        .output()
        .expect("run terrastat")
}

#[test]
fn binary_run_on_bad_spec_exits_non_zero_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.toml");
    std::fs::write(
        &p,
        format!("{HEAD}\n[[indicators]]\nname = \"s\"\nkind = \"sum\"\nlayer = \"b\"\n"),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = terrastat(&[
        "run".as_ref(),
        p.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert_contains(&stderr, &["broken.toml", "key `column`", "missing"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out_dir.exists(), "nothing should be written");
}

#[test]
fn binary_check_on_missing_input_exits_non_zero_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let p = dir.path().join("spec.toml");
    std::fs::write(&p, simple_spec("missing.parquet", "", COUNT)).unwrap();
    let out = terrastat(&["check".as_ref(), p.as_os_str()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert_contains(&stderr, &["missing.parquet", "not found"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn binary_run_on_missing_spec_exits_non_zero_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nowhere.toml");
    let out_dir = dir.path().join("out");
    let out = terrastat(&[
        "run".as_ref(),
        p.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
        "-q".as_ref(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert_contains(&stderr, &["nowhere.toml"]);
}

#[test]
fn corrupt_parquet_sweep_never_panics_and_names_file() {
    // Overwrite a 16-byte window at many offsets (footer included): every
    // outcome must be a successful read or an error naming the file.
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path());
    let good = parquet_bytes(dir.path());
    let spec = spec_in(dir.path(), &simple_spec("b.parquet", "", COUNT)).unwrap();
    let step = (good.len() / 97).max(1);
    let (mut errors, mut failures) = (0, Vec::new());
    for start in (4..good.len().saturating_sub(4)).step_by(step) {
        let mut bytes = good.clone();
        let end = (start + 16).min(bytes.len() - 4);
        for (k, b) in bytes[start..end].iter_mut().enumerate() {
            *b ^= 0xa5 ^ (k as u8).wrapping_mul(29);
        }
        std::fs::write(dir.path().join("b.parquet"), &bytes).unwrap();
        let result = std::panic::catch_unwind(|| run_in(dir.path(), &spec).map(|_| ()));
        match result {
            Err(_) => failures.push(format!("byte {start}: panic")),
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                errors += 1;
                if !e.to_string().contains("b.parquet") {
                    failures.push(format!("byte {start}: error without the file: {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corruptions mishandled:\n{}",
        failures.len(),
        good.len() / step,
        failures.join("\n")
    );
    assert!(errors > 0, "no corruption was detected at all");
}

// ---------------------------------------------------------------------------
// H3 zones in the spec
// ---------------------------------------------------------------------------

const H3_TAIL: &str = r#"
[[indicators]]
name = "n"
kind = "count"
layer = "b"
"#;

#[test]
fn h3_resolution_out_of_range_names_line_and_key() {
    let text = format!("{HEAD}\n[zones.hex]\nh3 = 16\ncover = \"z\"\n{H3_TAIL}");
    let err = spec_err(&text);
    assert_spec_error(
        &err,
        line_of(&text, "h3 = 16", 0),
        &["zones `hex`"],
        &["h3 = 16", "0 to 15"],
    );
}

#[test]
fn h3_cover_naming_nothing_names_line_and_key() {
    let text = format!("{HEAD}\n[zones.hex]\nh3 = 8\ncover = \"nope\"\n{H3_TAIL}");
    let err = spec_err(&text);
    assert_spec_error(
        &err,
        line_of(&text, "cover = \"nope\"", 0),
        &["zones `hex`"],
        &["nope", "names no layer, zone layer or raster"],
    );
}

#[test]
fn h3_needs_exactly_one_of_cover_or_bbox() {
    for extra in ["", "cover = \"z\"\nbbox = [0, 0, 1, 1]\n"] {
        let text = format!("{HEAD}\n[zones.hex]\nh3 = 8\n{extra}{H3_TAIL}");
        let err = spec_err(&text);
        assert_spec_error(
            &err,
            line_of(&text, "[zones.hex]", 0),
            &["zones `hex`"],
            &["exactly one of `cover` or `bbox`"],
        );
    }
    // `mode` belongs to H3 zones.
    let text = HEAD.replace("id = \"id\"", "id = \"id\"\nmode = \"covers\"") + H3_TAIL;
    let err = spec_err(&text);
    assert_spec_error(
        &err,
        line_of(&text, "[zones.z]", 0),
        &["zones `z`"],
        &["H3 zones"],
    );
    // An unknown mode is a syntax error naming the line.
    let text = format!("{HEAD}\n[zones.hex]\nh3 = 8\ncover = \"z\"\nmode = \"touches\"\n{H3_TAIL}");
    let err = spec_err(&text).to_string();
    assert_contains(&err, &["touches", "centroid", "covers"]);
}

/// A run with H3 zones over a polygon cover: every building is counted once
/// (the cells cover the zones), and the output leads with `h3` and `h3_str`.
#[test]
fn h3_zones_run_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // Two zones in Paris (H3 needs real places).
    write_layer(
        &dir.path().join("zones.parquet"),
        l93(),
        &[
            square(650_000., 6_860_000., 650_500., 6_860_300.),
            square(650_500., 6_860_000., 651_000., 6_860_300.),
        ],
        vec![("id", strings(&["A", "B"]))],
    );
    let buildings: Vec<Geometry> = (0..50)
        .map(|i| {
            let x = 650_100.0 + (i % 10) as f64 * 37.0;
            let y = 6_860_100.0 + (i / 10) as f64 * 41.0;
            square(x, y, x + 8.0, y + 6.0)
        })
        .collect();
    write_layer(&dir.path().join("b.parquet"), l93(), &buildings, vec![]);
    let text =
        format!("{HEAD}\n[zones.hex]\nh3 = 10\ncover = \"z\"\nmode = \"intersects\"\n{H3_TAIL}");
    let spec = spec_in(dir.path(), &text).unwrap();
    let out = run_in(dir.path(), &spec).unwrap();
    let t = out.tables.iter().find(|t| t.zones == "hex").unwrap();
    let schema = t.batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[..3], ["h3", "h3_str", "n"]);
    let n = t
        .batch
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(n.iter().flatten().sum::<i64>(), 50);
}

/// A layer can be a directory of GeoParquet files (a partitioned dataset):
/// it runs like the single file, and its lineage hash covers every file.
#[test]
fn directory_layers_run_like_files_and_hash_all_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let zones = write_zones(dir.path());
    let pts: Vec<Geometry> = (0..20).map(|i| pt(5.0 + 10.0 * i as f64, 50.0)).collect();
    write_layer(
        &dir.path().join("one.parquet"),
        l93(),
        &pts,
        vec![("v", floats(&[1.0; 20]))],
    );
    for (k, r) in [0..7, 7..20].into_iter().enumerate() {
        let d = dir.path().join(format!("parts/k={k}"));
        std::fs::create_dir_all(&d).unwrap();
        write_layer(
            &d.join("part-0.parquet"),
            l93(),
            &pts[r.clone()],
            vec![("v", floats(&vec![1.0; r.len()]))],
        );
    }
    let _ = zones;
    let ind = "[[indicators]]\nname = \"n\"\nkind = \"count\"\nlayer = \"b\"\n\n[[indicators]]\nname = \"s\"\nkind = \"sum\"\nlayer = \"b\"\ncolumn = \"v\"\n";
    let run_with = |file: &str| {
        let spec = spec_in(dir.path(), &simple_spec(file, "", ind)).unwrap();
        run_in(dir.path(), &spec).unwrap()
    };
    let (one, parts) = (run_with("one.parquet"), run_with("parts"));
    assert_eq!(column(&one, "n"), column(&parts, "n"));
    assert_eq!(
        column(&parts, "n"),
        [("A".to_string(), Some(10.0)), ("B".to_string(), Some(10.0))]
    );
    let sha = |out: &RunOutput| {
        out.inputs
            .files
            .iter()
            .find(|f| f.role == "layers.b")
            .unwrap()
            .sha256
            .clone()
    };
    let before = sha(&parts);
    assert_eq!(before.len(), 64);
    write_layer(
        &dir.path().join("parts/k=1/part-0.parquet"),
        l93(),
        &pts[7..19],
        vec![("v", floats(&[1.0; 12]))],
    );
    let after = run_with("parts");
    assert_ne!(sha(&after), before);
    assert_eq!(value(&after, "n", "B"), Some(9.0));
}
