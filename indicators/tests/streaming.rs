//! Streamed runs (issue 6): a partitioned layer read a few partitions at a
//! time gives the same bytes as the run holding it whole, for every
//! streamable kind, on polygon zones, their roll-ups, a grid and H3 cells.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::{Path, PathBuf};

mod common;

use common::{communes_path, outputs, partitioned, report};
use terrastat_core::{NoProgress, ReadOptions};
use terrastat_indicators::run::{run, RunOptions, RunOutput};
use terrastat_indicators::spec::Spec;

/// 12,000 buildings in dozens of partitions, with vegetation and flood.
fn dataset(dir: &Path, seed: u64) -> PathBuf {
    partitioned(dir, 12_000, 60, 4, seed)
}

const INDICATORS: &str = r#"
[[indicators]]
name = "n"
kind = "count"
layer = "b"
[[indicators]]
name = "n_x"
kind = "count"
layer = "b"
assign = "intersects"
[[indicators]]
name = "n_aw"
kind = "count"
layer = "b"
assign = "area_weighted"
[[indicators]]
name = "floor"
kind = "sum"
layer = "b"
column = "floor_area"
filter = "year < 1975"
[[indicators]]
name = "dens"
kind = "density"
layer = "b"
[[indicators]]
name = "h_mean"
kind = "mean"
layer = "b"
column = "height"
weight = "floor_area"
[[indicators]]
name = "h_min"
kind = "min"
layer = "b"
column = "height"
[[indicators]]
name = "h_max"
kind = "max"
layer = "b"
column = "height"
assign = "intersects"
[[indicators]]
name = "ext"
kind = "extensive"
layer = "b"
column = "floor_area"
[[indicators]]
name = "int"
kind = "intensive"
layer = "b"
column = "energy_kwh"
[[indicators]]
name = "flood"
kind = "share_within"
layer = "b"
other = "flood"
[[indicators]]
name = "energy"
kind = "category_share"
layer = "b"
column = "energy_class"
[[indicators]]
name = "to_green"
kind = "nearest_distance"
layer = "b"
other = "veg"
[[indicators]]
name = "to_green_max"
kind = "nearest_distance"
layer = "b"
other = "veg"
stat = "max"
[[indicators]]
name = "veg"
kind = "coverage"
layer = "veg"
[[indicators]]
name = "floor_per_km2"
kind = "ratio"
expr = "floor / dens"
"#;

fn spec(dir: &Path, gen: &Path, extra: &str) -> Spec {
    let text = format!(
        "crs = \"EPSG:2154\"\n\
         [layers.b]\npath = \"{b}\"\n\
         [layers.veg]\npath = \"{g}/vegetation.parquet\"\n\
         [layers.flood]\npath = \"{g}/flood.parquet\"\n\
         [zones.communes]\npath = \"{c}\"\nid = \"insee\"\nrollup = [\"dep\"]\n\
         [zones.grid]\ngrid = 2000\nextent = \"communes\"\n\
         [zones.hex8]\nh3 = 8\ncover = \"communes\"\n\
         [zones.hex6]\nh3 = 6\nfrom = \"hex8\"\n\
         {INDICATORS}{extra}",
        b = gen.join("buildings").display(),
        g = gen.display(),
        c = communes_path().display(),
    );
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    Spec::load(&p).unwrap()
}

fn run_with(spec: &Spec, out: &Path, memory: u64) -> RunOutput {
    run(
        spec,
        out,
        &RunOptions::default().memory(Some(memory)),
        &NoProgress,
    )
    .unwrap()
}

#[test]
fn streamed_runs_equal_the_whole_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dataset(dir.path(), 11);
    let spec = spec(dir.path(), &gen, "");
    let whole = run_with(&spec, &dir.path().join("whole"), 1 << 40);
    assert_eq!(whole.stream.layer.as_deref(), Some("b"));
    assert_eq!(whole.stream.batches, 1);
    let parts = whole.stream.partitions;
    assert!(parts > 10, "{parts} partitions");
    // A budget below what the context holds: one partition per batch.
    let tiny = run_with(&spec, &dir.path().join("tiny"), 1);
    assert_eq!(tiny.stream.batches, parts);
    // A few partitions per batch (by the batch cap: a budget just above the
    // context's resident memory depends on what earlier runs left resident).
    let some = run(
        &spec,
        &dir.path().join("some"),
        &RunOptions::default().batch_features(Some(3_000)),
        &NoProgress,
    )
    .unwrap();
    assert!(
        some.stream.batches > 1 && some.stream.batches < parts,
        "{:?}",
        some.stream
    );
    let a = outputs(&dir.path().join("whole"));
    assert_eq!(
        a.len(),
        3 * 5, // values (Parquet, CSV) and quality, per zone layer
        "{:?}",
        a.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert_eq!(a, outputs(&dir.path().join("tiny")));
    assert_eq!(a, outputs(&dir.path().join("some")));
    // The lineage and read report of the streamed layer are those of a whole read.
    let f = |o: &RunOutput| {
        o.inputs
            .files
            .iter()
            .map(|f| (f.role.clone(), f.sha256.clone(), f.report.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(f(&whole), f(&tiny));
    // The values are real: every building counted once over the communes.
    let n = whole.tables[0]
        .batch
        .column_by_name("n")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .unwrap()
        .values()
        .iter()
        .sum::<i64>();
    assert_eq!(n, 12_000);
}

#[test]
fn a_median_holds_the_layer_whole_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dataset(dir.path(), 12);
    let extra =
        "[[indicators]]\nname = \"h_med\"\nkind = \"median\"\nlayer = \"b\"\ncolumn = \"height\"\n";
    let spec = spec(dir.path(), &gen, extra);
    let o = run_with(&spec, &dir.path().join("o"), 1);
    assert_eq!(o.stream.layer, None);
    let why = o.stream.reason.unwrap();
    assert!(why.contains("h_med") && why.contains("Median"), "{why}");
}

#[test]
fn a_partition_with_other_columns_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dataset(dir.path(), 13);
    let spec = spec(dir.path(), &gen, "");
    // Rewrite the last partition without its `height` column.
    let files = terrastat_core::io::dataset_files(&gen.join("buildings")).unwrap();
    let last = files.last().unwrap();
    let raw = terrastat_core::io::read_raw(last, &ReadOptions::default()).unwrap();
    let keep: Vec<usize> = (0..raw.attributes.num_columns())
        .filter(|k| raw.attributes.schema().field(*k).name() != "height")
        .collect();
    let attrs = raw.attributes.project(&keep).unwrap();
    let crs = raw.crs.clone().unwrap();
    let (batch, meta) = terrastat_core::io::with_geometry_column(
        &attrs,
        "geometry",
        &crs,
        &raw.geometries
            .into_iter()
            .map(|g| g.unwrap())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    terrastat_core::io::write_parquet(last, &batch, &[("geo".into(), meta)]).unwrap();
    for budget in [1, 1 << 40] {
        let err = run(
            &spec,
            &dir.path().join("o"),
            &RunOptions::default().memory(Some(budget)),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&last.display().to_string()) && err.contains("columns differ"),
            "{err}"
        );
    }
    assert!(!dir.path().join("o").join("communes.parquet").exists());
}

/// Only counted, summed and shared by centroid: the layer is read as
/// centroids (no polygon built), whole or streamed, and every value equals
/// the one of the run that reads the polygons (the full indicator set,
/// whose intersections need them), to the bit.
#[test]
fn a_layer_read_as_centroids_gives_the_values_of_the_polygons() {
    // The indicators of the full set that attribute by centroid, and a
    // share by centroid (the full set's share tests intersections).
    let keep = ["n", "floor", "dens", "h_mean", "h_min", "energy"];
    let mut centroid_set: String = INDICATORS
        .split("[[indicators]]")
        .filter(|block| {
            keep.iter()
                .any(|k| block.contains(&format!("name = \"{k}\"\n")))
        })
        .map(|block| format!("[[indicators]]{block}"))
        .collect();
    let share = "[[indicators]]\nname = \"flood_c\"\nkind = \"share_within\"\nlayer = \"b\"\nother = \"flood\"\npredicate = \"centroid\"\n";
    centroid_set.push_str(share);
    assert_eq!(
        centroid_set.matches("[[indicators]]").count(),
        keep.len() + 1
    );
    let dir = tempfile::tempdir().unwrap();
    let gen = dataset(dir.path(), 5);
    // The full set, plus the centroid share: the polygons are read.
    let full = spec(dir.path(), &gen, share);
    let whole = run_with(&full, &dir.path().join("polygons"), 1 << 40);
    assert_eq!(report(&whole, "layers.b").centroids, 0);
    // The centroid indicators alone, whole and in batches.
    let text = std::fs::read_to_string(dir.path().join("spec.toml")).unwrap();
    let head = &text[..text.find("[[indicators]]").unwrap()];
    let cdir = dir.path().join("c");
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(cdir.join("spec.toml"), format!("{head}{centroid_set}")).unwrap();
    let cspec = Spec::load(&cdir.join("spec.toml")).unwrap();
    for (k, memory) in [(0, 1u64 << 40), (1, 1 << 20)] {
        let out = dir.path().join(format!("centroids{k}"));
        let run = run(
            &cspec,
            &out,
            &RunOptions::default()
                .memory(Some(memory))
                .batch_features((k == 1).then_some(2_000)),
            &NoProgress,
        )
        .unwrap();
        let b = report(&run, "layers.b");
        assert_eq!(b.centroids, b.kept, "read as centroids");
        assert!(b.kept > 11_000);
        assert_eq!(run.stream.batches > 1, k == 1);
        for t in &run.tables {
            let w = whole.tables.iter().find(|w| w.zones == t.zones).unwrap();
            for (i, field) in t.batch.schema().fields().iter().enumerate() {
                let col = w.batch.column_by_name(field.name()).unwrap_or_else(|| {
                    panic!(
                        "{}: no column {} in the polygons' run",
                        t.zones,
                        field.name()
                    )
                });
                assert_eq!(
                    t.batch.column(i).as_ref(),
                    col.as_ref(),
                    "{} {}",
                    t.zones,
                    field.name()
                );
            }
        }
    }
}
