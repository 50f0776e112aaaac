//! An output never overwrites an input (issue 18, item 1): an output
//! directory where an output file would replace an input, or inside a
//! dataset directory read as an input, is refused before anything is read,
//! and the inputs keep their bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::path::Path;

use terrastat_core::NoProgress;
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;
use terrastat_indicators::ErrorKind;

const SPEC: &str = r#"
crs = "EPSG:2154"
[layers.buildings]
path = "gen/buildings"
[zones.communes]
path = "communes.parquet"
id = "insee"
rollup = ["dep"]
[[indicators]]
name = "n"
kind = "count"
layer = "buildings"
"#;

/// A data folder: the sample communes, partitioned buildings, the spec.
fn folder(dir: &Path) -> Spec {
    common::partitioned(dir, 2_000, 10, 2, 3);
    std::fs::copy(common::communes_path(), dir.join("communes.parquet")).unwrap();
    let path = dir.join("indicators.toml");
    std::fs::write(&path, SPEC).unwrap();
    Spec::load(&path).unwrap()
}

fn refused(spec: &Spec, out: &Path, role: &str) {
    let err = run(spec, out, &RunOptions::default(), &NoProgress).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Option, "{err}");
    let text = err.to_string();
    assert!(text.contains("--out") && text.contains(role), "{text}");
}

#[test]
fn the_data_folder_as_output_is_refused_and_its_inputs_keep_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = folder(dir.path());
    let before = std::fs::read(dir.path().join("communes.parquet")).unwrap();
    refused(&spec, dir.path(), "zones.communes");
    // The same folder by another spelling: `..` and a symbolic link.
    refused(&spec, &dir.path().join("gen/.."), "zones.communes");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    refused(&spec, &link, "zones.communes");
    assert_eq!(
        std::fs::read(dir.path().join("communes.parquet")).unwrap(),
        before
    );
    assert!(!dir.path().join("catalog.json").exists());
    assert!(!dir.path().join("communes.csv").exists());
}

#[test]
fn an_output_inside_a_dataset_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = folder(dir.path());
    let buildings = dir.path().join("gen/buildings");
    let parts = std::fs::read_dir(&buildings).unwrap().count();
    refused(&spec, &buildings, "layers.buildings");
    refused(&spec, &buildings.join("new/out"), "layers.buildings");
    assert_eq!(std::fs::read_dir(&buildings).unwrap().count(), parts);
}

#[test]
fn a_sibling_output_directory_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = folder(dir.path());
    let out = run(
        &spec,
        &dir.path().join("out"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(out.tables[0].batch.num_rows(), 36);
    // A folder holding an input that no output is named like is fine too:
    // the buildings are read from `gen/`, the outputs go to `gen/`.
    let gen = dir.path().join("gen");
    run(&spec, &gen, &RunOptions::default(), &NoProgress).unwrap();
    assert!(gen.join("communes.parquet").exists());
}

/// A spec over the sample communes (and their grid, H3 cells, roll-up),
/// with `extra` indicators appended.
fn sample_spec(dir: &Path, extra: &str) -> terrastat_indicators::Result<Spec> {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92");
    let text = format!(
        r#"
crs = "EPSG:2154"
[layers.buildings]
path = "{b}"
[zones.communes]
path = "{c}"
id = "insee"
rollup = ["dep"]
[zones.grid]
grid = 1000
extent = "communes"
[zones.hex]
h3 = 7
cover = "communes"
{extra}
"#,
        b = samples.join("buildings.parquet").display(),
        c = samples.join("communes.parquet").display(),
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    Spec::load(&path)
}

#[test]
fn an_indicator_named_like_a_key_column_is_refused_at_spec_time() {
    let dir = tempfile::tempdir().unwrap();
    for (name, zones, key) in [
        ("insee", "communes", "insee"),
        ("geometry", "communes", "geometry"),
        ("dep", "communes", "dep"), // the key of communes_by_dep
        ("cell", "grid", "cell"),
        ("h3_str", "hex", "h3_str"),
    ] {
        let extra = format!(
            "[[indicators]]\nname = \"{name}\"\nkind = \"count\"\nlayer = \"buildings\"\nzones = \"{zones}\"\n"
        );
        let err = sample_spec(dir.path(), &extra).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Spec, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("indicator `{name}`, key `name`"))
                && text.contains(&format!("`{key}` is a key column")),
            "{text}"
        );
    }
    // Elsewhere the same names are free: `insee` over the grid only, and a
    // hidden helper (never written).
    let extra = "[[indicators]]\nname = \"insee\"\nkind = \"count\"\nlayer = \"buildings\"\nzones = \"grid\"\n\
                 [[indicators]]\nname = \"cell\"\nkind = \"count\"\nlayer = \"buildings\"\nhidden = true\n";
    sample_spec(dir.path(), extra).unwrap();
}

#[test]
fn a_category_column_named_like_another_indicator_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[[indicators]]\nname = \"energy\"\nkind = \"category_share\"\nlayer = \"buildings\"\ncolumn = \"energy_class\"\nzones = \"communes\"\n\
                 [[indicators]]\nname = \"energy_A\"\nkind = \"count\"\nlayer = \"buildings\"\nzones = \"communes\"\n";
    let spec = sample_spec(dir.path(), extra).unwrap();
    let out = dir.path().join("out");
    let err = run(&spec, &out, &RunOptions::default(), &NoProgress).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("indicator `energy_A`, key `name`")
            && text.contains("`energy_A` is also a column of indicator `energy`"),
        "{text}"
    );
    assert!(!out.join("communes.parquet").exists());
}
