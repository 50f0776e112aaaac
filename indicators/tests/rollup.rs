//! Roll-ups equal the direct computation at the coarser level: every
//! indicator of the sample spec, rolled up from communes to groups of
//! communes and from resolution-9 H3 cells to resolution-7 parents, against
//! the same spec run directly on the gathered polygons (written by the first
//! run's `--geo`). Counts: to the last bit; floating point: 1e-9 relative
//! (unions included: both sides use the exact union sweep).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use terrastat_core::io::{with_geometry_column, write_parquet};
use terrastat_core::{read_layer, NoProgress, ReadOptions};
use terrastat_indicators::run::{run, RunOptions, RunOutput};
use terrastat_indicators::spec::Spec;

fn sample(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples/idf92")
        .join(p)
}

/// The sample spec's layers (absolute paths) and indicators, with `zones`.
fn spec_text(zones: &str) -> String {
    let text = std::fs::read_to_string(sample("indicators.toml")).unwrap();
    let indicators = &text[text.find("[[indicators]]").unwrap()..];
    let layer = |n: &str| {
        format!(
            "[layers.{n}]\npath = \"{}\"\n",
            sample(&format!("{n}.parquet")).display()
        )
    };
    let raster = format!(
        "[rasters.canopy]\npath = \"{}\"\n",
        sample("canopy.tif").display()
    );
    format!(
        "crs = \"EPSG:2154\"\n{}{}{}{raster}\n{zones}\n{indicators}",
        layer("buildings"),
        layer("vegetation"),
        layer("flood")
    )
}

fn run_spec(dir: &Path, name: &str, text: &str, geo: bool) -> RunOutput {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    let spec = Spec::load(&p).unwrap();
    run(
        &spec,
        &dir.join(name),
        &RunOptions::default().geo(geo),
        &NoProgress,
    )
    .unwrap()
}

fn table<'a>(out: &'a RunOutput, zones: &str) -> &'a RecordBatch {
    &out.tables.iter().find(|t| t.zones == zones).unwrap().batch
}

/// Compare two tables column by column (same rows in the same order).
fn assert_same(rolled: &RecordBatch, direct: &RecordBatch, what: &str) {
    assert_eq!(rolled.num_rows(), direct.num_rows(), "{what}: rows");
    let schema = rolled.schema();
    let mut checked = 0;
    for (i, f) in schema.fields().iter().enumerate().skip(1) {
        let name = f.name();
        let Some(d) = direct.column_by_name(name) else {
            continue; // the direct table's key column(s) differ
        };
        let r = rolled.column(i);
        match r.data_type() {
            DataType::Int64 => {
                let (r, d) = (
                    r.as_any().downcast_ref::<Int64Array>().unwrap(),
                    d.as_any().downcast_ref::<Int64Array>().unwrap(),
                );
                assert_eq!(r, d, "{what}: {name}");
            }
            DataType::Float64 => {
                let (r, d) = (
                    r.as_any().downcast_ref::<Float64Array>().unwrap(),
                    d.as_any().downcast_ref::<Float64Array>().unwrap(),
                );
                let tol = 1e-9;
                for z in 0..r.len() {
                    assert_eq!(
                        r.is_null(z),
                        d.is_null(z),
                        "{what}: {name} row {z} nullness"
                    );
                    if r.is_null(z) {
                        continue;
                    }
                    let (a, b) = (r.value(z), d.value(z));
                    assert!(
                        (a - b).abs() <= tol * a.abs().max(b.abs()) + 1e-9,
                        "{what}: {name} row {z}: rolled up {a} vs direct {b}"
                    );
                }
            }
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked >= 30, "{what}: only {checked} columns compared");
}

#[test]
fn commune_groups_roll_up_to_the_direct_values() {
    let dir = tempfile::tempdir().unwrap();
    // The sample communes with a grouping column: the first four digits of
    // the INSEE code (8 groups of 1 to 9 communes).
    let communes = read_layer(
        "communes",
        &sample("communes.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let insee = communes.string_column("insee").unwrap();
    let grp: Vec<String> = insee
        .iter()
        .map(|s| s.as_ref().unwrap()[..4].to_string())
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("insee", DataType::Utf8, false),
            Field::new("grp", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(
                insee.iter().map(|s| s.clone().unwrap()).collect::<Vec<_>>(),
            )) as ArrayRef,
            Arc::new(StringArray::from(grp.clone())),
        ],
    )
    .unwrap();
    let (batch, meta) =
        with_geometry_column(&batch, "geometry", communes.crs(), communes.geometries()).unwrap();
    write_parquet(
        &dir.path().join("communes.parquet"),
        &batch,
        &[("geo".into(), meta)],
    )
    .unwrap();
    let mut groups = grp.clone();
    groups.sort();
    groups.dedup();
    assert!(groups.len() >= 5, "{groups:?}");

    let rolled = run_spec(
        dir.path(),
        "rolled",
        &spec_text(&format!(
            "[zones.communes]\npath = \"{}\"\nid = \"insee\"\nrollup = [\"grp\"]\n",
            dir.path().join("communes.parquet").display()
        )),
        true,
    );
    // Direct: the gathered polygons as plain zones, kept exactly as written.
    let direct = run_spec(
        dir.path(),
        "direct",
        &spec_text(&format!(
            "[zones.communes_by_grp]\npath = \"{}\"\nid = \"grp\"\ninvalid = \"off\"\n",
            dir.path()
                .join("rolled/communes_by_grp.geo.parquet")
                .display()
        )),
        false,
    );
    let r = table(&rolled, "communes_by_grp");
    assert_eq!(r.schema().field(0).name(), "grp");
    assert_same(r, table(&direct, "communes_by_grp"), "communes by grp");
    // Counts by centroid add up exactly: the groups hold every building the communes hold.
    let n = |t: &RecordBatch| {
        t.column_by_name("n_buildings")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .iter()
            .flatten()
            .sum::<i64>()
    };
    assert_eq!(n(r), n(table(&rolled, "communes")));
}

#[test]
fn h3_cells_roll_up_to_their_parents() {
    let dir = tempfile::tempdir().unwrap();
    let rolled = run_spec(
        dir.path(),
        "rolled",
        &spec_text(&format!(
            "[zones.communes]\npath = \"{}\"\nid = \"insee\"\n\n[zones.hex9]\nh3 = 9\ncover = \"communes\"\n\n[zones.hex7]\nh3 = 7\nfrom = \"hex9\"\n",
            sample("communes.parquet").display()
        )),
        true,
    );
    let r = table(&rolled, "hex7");
    let schema = r.schema();
    let keys: Vec<&str> = schema
        .fields()
        .iter()
        .take(2)
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(keys, ["h3", "h3_str"]);
    assert!(r.num_rows() >= 20, "{} parents", r.num_rows());
    let direct = run_spec(
        dir.path(),
        "direct",
        &spec_text(&format!(
            "[zones.hex7]\npath = \"{}\"\nid = \"h3\"\ninvalid = \"off\"\n",
            dir.path().join("rolled/hex7.geo.parquet").display()
        )),
        false,
    );
    assert_same(r, table(&direct, "hex7"), "hex9 -> hex7");
}
