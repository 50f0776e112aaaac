//! Incremental runs (issue 6): after one commune's buildings change, only
//! the zones near the changed partition are recomputed, only that commune's
//! row (and its roll-up's) changes, and every output equals a full run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array};
use common::{communes_path, outputs, partitioned};
use geo::{BoundingRect, Contains};
use terrastat_core::io::{dataset_files, read_raw, with_geometry_and_bbox_columns, write_parquet};
use terrastat_core::{read_layer, NoProgress, ReadOptions};
use terrastat_indicators::run::{run, RunOptions, RunOutput};
use terrastat_indicators::spec::Spec;

/// The spec over generated data; with `rollup`, the communes roll up to
/// their one département (whose every member then needs every partition).
fn setup(dir: &Path, rollup: bool) -> (PathBuf, Spec) {
    let gen = partitioned(dir, 15_000, 40, 3, 21);
    let text = format!(
        "crs = \"EPSG:2154\"\n\
         [layers.b]\npath = \"{g}/buildings\"\n\
         [layers.flood]\npath = \"{g}/flood.parquet\"\n\
         [zones.communes]\npath = \"{c}\"\nid = \"insee\"\n{r}\n\
         [zones.hex8]\nh3 = 8\ncover = \"communes\"\n\
         [[indicators]]\nname = \"n\"\nkind = \"count\"\nlayer = \"b\"\n\
         [[indicators]]\nname = \"floor\"\nkind = \"sum\"\nlayer = \"b\"\ncolumn = \"floor_area\"\n\
         [[indicators]]\nname = \"ext\"\nkind = \"extensive\"\nlayer = \"b\"\ncolumn = \"floor_area\"\n\
         [[indicators]]\nname = \"h\"\nkind = \"mean\"\nlayer = \"b\"\ncolumn = \"height\"\n\
         [[indicators]]\nname = \"flood\"\nkind = \"share_within\"\nlayer = \"b\"\nother = \"flood\"\n\
         [[indicators]]\nname = \"cls\"\nkind = \"category_share\"\nlayer = \"b\"\ncolumn = \"energy_class\"\n",
        g = gen.display(),
        c = communes_path().display(),
        r = if rollup { "rollup = [\"dep\"]" } else { "" },
    );
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    (gen, Spec::load(&p).unwrap())
}

fn go(spec: &Spec, out: &Path, incremental: bool) -> RunOutput {
    run(
        spec,
        out,
        &RunOptions::default().incremental(incremental),
        &NoProgress,
    )
    .unwrap()
}

fn csv_lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Double the floor area of the buildings of one partition lying wholly
/// inside one commune; returns that commune's INSEE code and the partition.
fn change_one_commune(gen: &Path) -> (String, PathBuf) {
    let communes = read_layer("communes", &communes_path(), &ReadOptions::default()).unwrap();
    let insee = communes.string_column("insee").unwrap();
    let files = dataset_files(&gen.join("buildings")).unwrap();
    // The most populated partition, and its commune holding the most buildings.
    let file = files
        .iter()
        .max_by_key(|f| terrastat_core::io::parquet_rows(f).unwrap())
        .unwrap()
        .clone();
    let raw = read_raw(&file, &ReadOptions::default()).unwrap();
    let geoms: Vec<geo::Geometry> = raw.geometries.into_iter().map(|g| g.unwrap()).collect();
    let inside = |c: usize, g: &geo::Geometry| communes.geometries()[c].contains(g);
    let (best, _) = (0..communes.len())
        .map(|c| (c, geoms.iter().filter(|g| inside(c, g)).count()))
        .max_by_key(|x| x.1)
        .unwrap();
    let floor = raw
        .attributes
        .column_by_name("floor_area")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let changed: Float64Array = geoms
        .iter()
        .zip(floor.iter())
        .map(|(g, v)| v.map(|v| if inside(best, g) { v * 2.0 } else { v }))
        .collect();
    let k = raw.attributes.schema().index_of("floor_area").unwrap();
    let mut cols = raw.attributes.columns().to_vec();
    cols[k] = std::sync::Arc::new(changed);
    let attrs = arrow_array::RecordBatch::try_new(raw.attributes.schema(), cols).unwrap();
    let crs = raw.crs.unwrap();
    assert!(geoms.iter().all(|g| g.bounding_rect().is_some()));
    let (batch, meta) = with_geometry_and_bbox_columns(&attrs, "geometry", &crs, &geoms).unwrap();
    write_parquet(&file, &batch, &[("geo".into(), meta)]).unwrap();
    (insee[best].clone().unwrap(), file)
}

#[test]
fn one_communes_change_recomputes_its_neighbourhood_and_equals_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let (gen, spec) = setup(dir.path(), true);
    let out = dir.path().join("out");
    // No manifest yet: a full run, which writes one.
    let first = go(&spec, &out, true);
    let r = first.incremental.unwrap();
    assert_eq!(r.mode, "full");
    assert_eq!(r.reason.as_deref(), Some("no previous manifest"));
    assert!(out.join("manifest.json").exists());
    let before = outputs(&out);
    let before_csv = csv_lines(&out, "communes.csv");
    // Nothing changed: nothing read, the same bytes.
    let again = go(&spec, &out, true);
    let r = again.incremental.unwrap();
    assert_eq!(
        (r.mode.as_str(), r.read, r.changed.len()),
        ("dirty", 0, 0),
        "{r:?}"
    );
    assert_eq!(r.zones["communes"].0, 0);
    assert_eq!(outputs(&out), before);

    let (insee, file) = change_one_commune(&gen);
    let inc = go(&spec, &out, true);
    let r = inc.incremental.unwrap();
    let rel = file
        .strip_prefix(gen.join("buildings"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(r.mode, "dirty", "{r:?}");
    assert_eq!(r.changed, vec![rel]);
    // The département holds every commune: all its members' partitions are read.
    assert_eq!(r.read, inc.stream.partitions);
    let (dirty, all) = r.zones["communes"];
    assert!(dirty >= 1 && dirty < all, "{dirty} of {all} communes");
    assert!(r.zones["hex8"].0 < r.zones["hex8"].1);
    // Only that commune's row changed, and its département's.
    let after_csv = csv_lines(&out, "communes.csv");
    let differing: Vec<&str> = before_csv
        .iter()
        .zip(&after_csv)
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b.split(',').next().unwrap())
        .collect();
    assert_eq!(differing, vec![insee.as_str()]);
    assert_ne!(
        csv_lines(&out, "communes_by_dep.csv"),
        before
            .iter()
            .find(|(n, _)| n == "communes_by_dep.csv")
            .map(|(_, b)| String::from_utf8(b.clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>())
            .unwrap()
    );
    // Every output equals a full recomputation.
    let full = dir.path().join("full");
    go(&spec, &full, false);
    assert_eq!(outputs(&out), outputs(&full));

    // A removed partition is reported as changed, and the result is again a full run's.
    std::fs::remove_file(&file).unwrap();
    let r = go(&spec, &out, true).incremental.unwrap();
    assert_eq!(r.mode, "dirty");
    assert_eq!(r.changed.len(), 1);
    go(&spec, &full, false);
    assert_eq!(outputs(&out), outputs(&full));

    // A changed indicator definition, or another input: a full run, and why.
    let flood = gen.join("flood.parquet");
    let bytes = std::fs::read(&flood).unwrap();
    let raw = read_raw(&flood, &ReadOptions::default()).unwrap();
    let geoms: Vec<geo::Geometry> = raw.geometries.into_iter().map(|g| g.unwrap()).collect();
    let n = geoms.len();
    let (batch, meta) = with_geometry_and_bbox_columns(
        &raw.attributes.slice(0, n - 1),
        "geometry",
        &raw.crs.unwrap(),
        &geoms[..n - 1],
    )
    .unwrap();
    write_parquet(&flood, &batch, &[("geo".into(), meta)]).unwrap();
    assert_ne!(std::fs::read(&flood).unwrap(), bytes);
    let r = go(&spec, &out, true).incremental.unwrap();
    assert_eq!(r.mode, "full");
    assert_eq!(r.reason.as_deref(), Some("input `layers.flood` changed"));
    // An output edited by hand: a full run.
    std::fs::write(out.join("communes.csv"), "edited").unwrap();
    let r = go(&spec, &out, true).incremental.unwrap();
    assert!(r.reason.unwrap().contains("communes.csv"));
    go(&spec, &full, false);
    assert_eq!(outputs(&out), outputs(&full));
}

#[test]
fn without_roll_up_only_the_partitions_near_the_change_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (gen, spec) = setup(dir.path(), false);
    let out = dir.path().join("out");
    go(&spec, &out, false);
    let before_csv = csv_lines(&out, "communes.csv");
    let (insee, _) = change_one_commune(&gen);
    let inc = go(&spec, &out, true);
    let r = inc.incremental.unwrap();
    let total = inc.stream.partitions;
    assert_eq!((r.mode.as_str(), r.changed.len()), ("dirty", 1), "{r:?}");
    assert!(r.read >= 1 && r.read < total, "read {} of {total}", r.read);
    let differing: Vec<String> = before_csv
        .iter()
        .zip(&csv_lines(&out, "communes.csv"))
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(differing, vec![insee]);
    let full = dir.path().join("full");
    go(&spec, &full, false);
    assert_eq!(outputs(&out), outputs(&full));
}

/// A full run reads each partition's footer once, for its plan and reads,
/// and hashes its inputs beside the computation: the manifest it leaves
/// holds the same partitions (paths, hashes, rows, boxes) as a separate
/// reading of every footer.
#[test]
fn a_full_run_manifest_holds_every_partition_s_footer_facts() {
    use terrastat_indicators::incremental::Manifest;
    use terrastat_indicators::lineage::partitions;
    let dir = tempfile::tempdir().unwrap();
    let (gen, spec) = setup(dir.path(), false);
    let out = dir.path().join("out");
    go(&spec, &out, false);
    let manifest = Manifest::read(&out).expect("a manifest");
    let expected = partitions(&gen.join("buildings")).unwrap();
    assert!(expected.len() > 10);
    assert!(expected.iter().all(|p| p.rows > 0 && p.bbox.is_some()));
    assert_eq!(manifest.partitions, expected);
}
