//! The semantic layer: the template library, zone columns and tables in
//! expressions, units, labels and hidden helpers, and `terrastat catalog`.
//!
//! Golden files: `tests/golden/`. After an intended change of the sample
//! outputs, rewrite them with
//! `UPDATE_GOLDEN=1 cargo test -p terrastat-cli --test catalog`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use geo::{Centroid, Contains};
use terrastat_core::{read_layer, NoProgress, ReadOptions};
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;

fn sample(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples/idf92")
        .join(f)
}

/// A CSV output as (header, rows of cells).
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Column `name` of a CSV output, by zone id (first column); empty = null.
fn column(path: &Path, name: &str) -> BTreeMap<String, Option<f64>> {
    let (h, rows) = csv(path);
    let i = h
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {}: {h:?}", path.display()));
    rows.iter()
        .map(|r| (r[0].clone(), r[i].parse().ok()))
        .collect()
}

fn spec_in(dir: &Path, text: &str) -> Spec {
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    Spec::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn spec_err(dir: &Path, text: &str) -> String {
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    match Spec::load(&p) {
        Ok(spec) => match run(&spec, &dir.join("out"), &RunOptions::default(), &NoProgress) {
            Ok(_) => panic!("no error for:\n{text}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

/// The sample's inputs, copied next to a test spec.
fn with_inputs(dir: &Path) {
    for f in [
        "buildings.parquet",
        "communes.parquet",
        "flood.parquet",
        "vegetation.parquet",
        "elus_municipaux.csv",
    ] {
        std::fs::copy(sample(f), dir.join(f)).unwrap();
    }
}

const HEAD: &str = r#"
crs = "EPSG:2154"
[layers.buildings]
path = "buildings.parquet"
[layers.flood]
path = "flood.parquet"
[layers.vegetation]
path = "vegetation.parquet"
[zones.communes]
path = "communes.parquet"
id = "insee"
rollup = ["dep"]
"#;

#[test]
fn sample_catalog_spec_matches_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::load(&sample("catalog.toml")).unwrap();
    run(&spec, dir.path(), &RunOptions::default(), &NoProgress).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for f in ["communes.csv", "communes_by_dep.csv"] {
        let got = dir.path().join(f);
        let want = golden.join(format!("catalog_{f}"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::copy(&got, &want).unwrap();
            continue;
        }
        let (gh, gr) = csv(&got);
        let (wh, wr) = csv(&want);
        assert_eq!(gh, wh, "{f}: columns");
        assert_eq!(gr.len(), wr.len(), "{f}: rows");
        for (g, w) in gr.iter().zip(&wr) {
            for ((gc, wc), name) in g.iter().zip(w).zip(&gh) {
                match (gc.parse::<f64>(), wc.parse::<f64>()) {
                    (Ok(a), Ok(b)) => assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{f} zone {} column {name}: {a} vs golden {b}",
                        g[0]
                    ),
                    _ => assert_eq!(gc, wc, "{f} zone {} column {name}", g[0]),
                }
            }
        }
    }
}

/// Column `name` of a layer as text.
fn text_col(layer: &terrastat_core::Layer, name: &str) -> Vec<Option<String>> {
    let c = arrow_cast::cast(
        layer.attributes().column_by_name(name).unwrap(),
        &arrow_schema::DataType::Utf8,
    )
    .unwrap();
    let c = c
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    c.iter().map(|v| v.map(str::to_string)).collect()
}

/// Column `name` of a layer as numbers.
fn num_col(layer: &terrastat_core::Layer, name: &str) -> Vec<Option<f64>> {
    let c = arrow_cast::cast(
        layer.attributes().column_by_name(name).unwrap(),
        &arrow_schema::DataType::Float64,
    )
    .unwrap();
    let c = c
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .unwrap();
    c.iter().collect()
}

/// Brute force, from the files: for each commune (id, population), the
/// buildings whose centroid it contains (first match in file order, no index).
fn brute_force_members() -> (Vec<String>, Vec<f64>, Vec<Vec<usize>>) {
    let communes = read_layer("c", &sample("communes.parquet"), &ReadOptions::default()).unwrap();
    let buildings = read_layer("b", &sample("buildings.parquet"), &ReadOptions::default()).unwrap();
    let mut members = vec![Vec::new(); communes.len()];
    for (b, g) in buildings.geometries().iter().enumerate() {
        let c = g.centroid().unwrap();
        if let Some(z) = communes.geometries().iter().position(|z| z.contains(&c)) {
            members[z].push(b);
        }
    }
    (
        text_col(&communes, "insee")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        num_col(&communes, "population")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        members,
    )
}

#[test]
fn templates_equal_brute_force_on_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::load(&sample("catalog.toml")).unwrap();
    run(&spec, dir.path(), &RunOptions::default(), &NoProgress).unwrap();
    let out = dir.path().join("communes.csv");
    let (ids, pop, members) = brute_force_members();
    let buildings = read_layer("b", &sample("buildings.parquet"), &ReadOptions::default()).unwrap();
    let floor = num_col(&buildings, "floor_area");
    let class = text_col(&buildings, "energy_class");
    let elus = std::fs::read_to_string(sample("elus_municipaux.csv")).unwrap();
    let councillors: BTreeMap<&str, f64> = elus
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            (v[0], v[1].parse().unwrap())
        })
        .collect();
    let per_inhabitant = column(&out, "floor_per_inhabitant");
    let fg = column(&out, "share_fg");
    let per_1000 = column(&out, "councillors_per_1000");
    let cat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("catalog.json")).unwrap()).unwrap();
    let c = cat["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "councillors_per_1000")
        .unwrap();
    let roles: Vec<&str> = c["lineage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["tables.elus", "zones.communes"]);
    let n = column(&out, "n_buildings");
    for (z, id) in ids.iter().enumerate() {
        let m = &members[z];
        assert_eq!(n[id], Some(m.len() as f64), "{id}: count");
        let s: f64 = m.iter().filter_map(|&b| floor[b]).sum();
        let want = s / pop[z];
        let got = per_inhabitant[id].unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "{id}: floor per inhabitant {got} vs {want}"
        );
        let known = m
            .iter()
            .filter(|&&b| {
                class[b]
                    .as_deref()
                    .is_some_and(|c| "ABCDEFG".contains(c) && c.len() == 1)
            })
            .count();
        let bad = m
            .iter()
            .filter(|&&b| matches!(class[b].as_deref(), Some("F" | "G")))
            .count();
        let want = (known > 0).then(|| bad as f64 / known as f64 * 100.0);
        match (fg[id], want) {
            (Some(g), Some(w)) => assert!(
                (g - w).abs() <= 1e-9 * w.max(1.0),
                "{id}: share F/G {g} vs {w}"
            ),
            (g, w) => assert_eq!(g, w, "{id}: share F/G"),
        }
        let want = councillors[id.as_str()] / pop[z] * 1000.0;
        let got = per_1000[id].unwrap();
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "{id}: councillors {got} vs {want}"
        );
    }
    // The département: additive zone and table columns summed over its communes.
    let dep = column(
        &dir.path().join("communes_by_dep.csv"),
        "councillors_per_1000",
    );
    let want = councillors.values().sum::<f64>() / pop.iter().sum::<f64>() * 1000.0;
    assert!((dep["92"].unwrap() - want).abs() <= 1e-12 * want);
}

#[test]
fn a_template_equals_its_hand_written_indicators() {
    let dir = tempfile::tempdir().unwrap();
    with_inputs(dir.path());
    let a = spec_in(
        dir.path(),
        &format!(
            "{HEAD}\n[[indicators]]\nuse = \"buildings.share_energy_fg\"\nname = \"fg\"\n\
             [[indicators]]\nuse = \"risks.share_buildings_flood\"\nlayers = {{ flood = \"flood\" }}\n\
             [[indicators]]\nuse = \"buildings.energy_class_shares\"\nname = \"ec\"\n"
        ),
    );
    run(
        &a,
        &dir.path().join("a"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let b = spec_in(
        dir.path(),
        &format!(
            r#"{HEAD}
[[indicators]]
name = "fg_n"
kind = "count"
layer = "buildings"
filter = "energy_class in ['F', 'G']"
[[indicators]]
name = "known"
kind = "count"
layer = "buildings"
filter = "energy_class in ['A', 'B', 'C', 'D', 'E', 'F', 'G']"
[[indicators]]
name = "fg"
kind = "ratio"
expr = "fg_n / known * 100"
[[indicators]]
name = "flood"
kind = "share_within"
layer = "buildings"
other = "flood"
[[indicators]]
name = "share_buildings_flood"
kind = "ratio"
expr = "flood * 100"
[[indicators]]
name = "ec"
kind = "category_share"
layer = "buildings"
column = "energy_class"
"#
        ),
    );
    run(
        &b,
        &dir.path().join("b"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    for f in ["communes.csv", "communes_by_dep.csv"] {
        let (ha, _) = csv(&dir.path().join("a").join(f));
        assert_eq!(
            ha,
            [
                "insee",
                "fg",
                "share_buildings_flood",
                "ec_A",
                "ec_B",
                "ec_C",
                "ec_D",
                "ec_E",
                "ec_F",
                "ec_G"
            ]
            .map(String::from)
            .to_vec()
            .iter()
            .map(|s| if f.contains("dep") && s == "insee" {
                "dep".to_string()
            } else {
                s.clone()
            })
            .collect::<Vec<_>>(),
            "{f}: helpers are not written"
        );
        for c in ["fg", "share_buildings_flood", "ec_A", "ec_G"] {
            assert_eq!(
                column(&dir.path().join("a").join(f), c),
                column(&dir.path().join("b").join(f), c),
                "{f}: {c}"
            );
        }
    }
    // The catalog keeps the helpers (hidden), the published ones carry the template's texts.
    let cat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("a/catalog.json")).unwrap()).unwrap();
    let inds = cat["indicators"].as_array().unwrap();
    let fg = inds.iter().find(|i| i["name"] == "fg").unwrap();
    assert_eq!(fg["template"], "buildings.share_energy_fg");
    assert_eq!(fg["unit"], "%");
    assert_eq!(fg["theme"], "buildings");
    assert!(fg["label"]["fr"].as_str().unwrap().contains("passoires"));
    // Lineage down to the files: the ratio depends on the buildings and the
    // communes through its helpers.
    let roles: Vec<&str> = fg["lineage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["layers.buildings", "zones.communes"]);
    assert_eq!(fg["lineage"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(cat["run"]["options"]["geo"], false);
    let helper = inds.iter().find(|i| i["name"] == "fg__fg").unwrap();
    assert_eq!(helper["hidden"], true);
    assert_eq!(helper["filter"], "`energy_class` in ['F', 'G']");
}

#[test]
fn templates_take_other_column_names() {
    let dir = tempfile::tempdir().unwrap();
    with_inputs(dir.path());
    // Per capita over another zone column name, and a parameter.
    let s = spec_in(
        dir.path(),
        &format!(
            "{HEAD}\nadditive = [\"population\"]\n\
             [[indicators]]\nuse = \"buildings.share_built_before\"\nname = \"pre\"\nparams = {{ before = 1946 }}\ncolumns = {{ construction_year = \"year\" }}\n\
             [[indicators]]\nname = \"old\"\nkind = \"count\"\nlayer = \"buildings\"\nfilter = \"year < 1946\"\n\
             [[indicators]]\nname = \"known\"\nkind = \"count\"\nlayer = \"buildings\"\nfilter = \"year is not null\"\n\
             [[indicators]]\nname = \"pre2\"\nkind = \"ratio\"\nexpr = \"old / known * 100\"\n"
        ),
    );
    let out = run(
        &s,
        &dir.path().join("o"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let label = &out
        .catalog
        .indicators
        .iter()
        .find(|i| i.name == "pre")
        .unwrap()
        .label;
    assert_eq!(
        label.en.as_deref(),
        Some("Share of buildings built before 1946")
    );
    let f = dir.path().join("o/communes.csv");
    assert_eq!(column(&f, "pre"), column(&f, "pre2"));
}

#[test]
fn zone_columns_in_expressions() {
    let dir = tempfile::tempdir().unwrap();
    with_inputs(dir.path());
    let ind = "[[indicators]]\nname = \"floor\"\nkind = \"sum\"\nlayer = \"buildings\"\ncolumn = \"floor_area\"\n\
               [[indicators]]\nname = \"per_inh\"\nkind = \"ratio\"\nexpr = \"floor / population\"\n";
    // Without `additive`, the roll-up cannot read the communes' population.
    let e = spec_err(dir.path(), &format!("{HEAD}\n{ind}"));
    assert!(e.contains("spec.toml") && e.contains("per_inh"), "{e}");
    assert!(
        e.contains("declare `additive = [\"population\"]` in `[zones.communes]`"),
        "{e}"
    );
    let s = spec_in(
        dir.path(),
        &format!("{HEAD}additive = [\"population\"]\n{ind}"),
    );
    run(
        &s,
        &dir.path().join("o"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let floor = column(&dir.path().join("o/communes.csv"), "floor");
    let per = column(&dir.path().join("o/communes.csv"), "per_inh");
    let (ids, pop, _) = brute_force_members();
    for (z, id) in ids.iter().enumerate() {
        assert_eq!(per[id], Some(floor[id].unwrap() / pop[z]));
    }
    let dep = column(&dir.path().join("o/communes_by_dep.csv"), "per_inh");
    let f = column(&dir.path().join("o/communes_by_dep.csv"), "floor");
    assert_eq!(dep["92"], Some(f["92"].unwrap() / pop.iter().sum::<f64>()));
    // A text column, an unknown name, a type error.
    for (expr, says) in [
        ("floor / nom", "column `nom` of zones `communes` is Utf8, not numbers"),
        ("floor / popultion", "`popultion` is not an indicator computed for zones `communes`, nor a column of those zones"),
        ("if(floor, 1, 0)", "argument 1 of `if` needs a condition, got a number"),
        ("mean(floor)", "unknown function `mean`"),
        ("floor / tax.base", "`tax` is no table of this spec"),
    ] {
        let e = spec_err(
            dir.path(),
            &format!("{HEAD}additive = [\"population\"]\n[[indicators]]\nname = \"floor\"\nkind = \"sum\"\nlayer = \"buildings\"\ncolumn = \"floor_area\"\n[[indicators]]\nname = \"r\"\nkind = \"ratio\"\nexpr = \"{expr}\"\n"),
        );
        assert!(e.contains(says), "{expr}: {e}");
        assert!(e.contains("indicator `r`"), "{expr}: {e}");
    }
}

fn table_spec(
    dir: &Path,
    table: &str,
    csv_text: &str,
    expr: &str,
) -> std::result::Result<terrastat_indicators::run::RunOutput, String> {
    std::fs::write(dir.join(table), csv_text).unwrap();
    let p = dir.join("spec.toml");
    std::fs::write(
        &p,
        format!(
            "{}\n[tables.t]\npath = \"{table}\"\nkey = \"code\"\nzones = \"communes\"\nzone_key = \"insee\"\n\
             [[indicators]]\nname = \"v\"\nkind = \"ratio\"\nzones = \"communes\"\nexpr = \"{expr}\"\n",
            // No roll-up: the table's columns are not additive.
            HEAD.replace("rollup = [\"dep\"]\n", "")
        ),
    )
    .unwrap();
    let spec = Spec::load(&p).map_err(|e| e.to_string())?;
    run(&spec, &dir.join("o"), &RunOptions::default(), &NoProgress).map_err(|e| e.to_string())
}

#[test]
fn tables_report_every_key_that_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    with_inputs(dir.path());
    let (ids, _, _) = brute_force_members();
    // 34 of the 36 communes, two codes of other départements (one with a
    // leading zero, kept as text), and an empty value.
    let mut text = String::from("code,base,label\n");
    for (k, id) in ids.iter().enumerate().skip(2) {
        text += &format!(
            "{id},{},x\n",
            if k == 5 {
                String::new()
            } else {
                (k * 10).to_string()
            }
        );
    }
    text += "01001,7,y\n2A004,8,z\n";
    let out = table_spec(dir.path(), "t.csv", &text, "coalesce(t.base, -1)").unwrap();
    let (_, report) = &out.inputs.joins["t"]["communes"];
    assert_eq!(report.n_zones, 36);
    assert_eq!(report.matched, 34);
    assert_eq!(report.zones_without_row, 2);
    assert_eq!(
        report.examples_without_row,
        [ids[0].clone(), ids[1].clone()]
    );
    assert_eq!(report.rows_without_zone, 2);
    assert_eq!(report.examples_without_zone, ["01001", "2A004"]);
    assert!(report
        .to_string()
        .contains("2 rows matching no zone (e.g. 01001, 2A004)"));
    let v = column(&dir.path().join("o/communes.csv"), "v");
    assert_eq!(v[&ids[0]], Some(-1.0), "a zone without a row reads null");
    assert_eq!(v[&ids[5]], Some(-1.0), "an empty cell is null");
    assert_eq!(v[&ids[6]], Some(60.0));
    // The same table as Parquet (integer key: compared as text).
    {
        use arrow_array::{Float64Array, Int64Array, RecordBatch};
        use std::sync::Arc;
        let keys: Vec<i64> = ids.iter().map(|i| i.parse().unwrap()).collect();
        let vals: Vec<f64> = (0..ids.len()).map(|k| k as f64).collect();
        let b = RecordBatch::try_from_iter([
            (
                "code",
                Arc::new(Int64Array::from(keys)) as arrow_array::ArrayRef,
            ),
            (
                "base",
                Arc::new(Float64Array::from(vals)) as arrow_array::ArrayRef,
            ),
        ])
        .unwrap();
        let f = std::fs::File::create(dir.path().join("t.parquet")).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, b.schema(), None).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let p = dir.path().join("spec.toml");
        let s = std::fs::read_to_string(&p)
            .unwrap()
            .replace("t.csv", "t.parquet");
        std::fs::write(&p, s).unwrap();
        let out = run(
            &Spec::load(&p).unwrap(),
            &dir.path().join("o"),
            &RunOptions::default(),
            &NoProgress,
        )
        .unwrap();
        assert_eq!(out.inputs.joins["t"]["communes"].1.matched, 36);
        let v = column(&dir.path().join("o/communes.csv"), "v");
        assert_eq!(v[&ids[3]], Some(3.0));
    }
    // Errors name the file, the line and the key.
    let dup = format!("code,base\n{},1\n{},2\n{},3\n", ids[0], ids[1], ids[0]);
    let e = table_spec(dir.path(), "dup.csv", &dup, "t.base").unwrap_err();
    assert!(
        e.contains("dup.csv")
            && e.contains(&format!(
                "line 4: key `code` = `{}` already at line 2",
                ids[0]
            )),
        "{e}"
    );
    let e = table_spec(dir.path(), "nokey.csv", "insee,base\n92002,1\n", "t.base").unwrap_err();
    assert!(
        e.contains("nokey.csv") && e.contains("no key column `code` (columns: insee, base)"),
        "{e}"
    );
    let e = table_spec(
        dir.path(),
        "text.csv",
        "code,base,label\n92002,1,a\n",
        "t.label",
    )
    .unwrap_err();
    assert!(
        e.contains("column `label` of table `t` is text, not numbers"),
        "{e}"
    );
    let e = table_spec(dir.path(), "miss.csv", "code,base\n92002,1\n", "t.bse").unwrap_err();
    assert!(
        e.contains("table `t` has no column `bse` (numeric columns: base)"),
        "{e}"
    );
}

#[test]
fn units_templates_and_labels_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    with_inputs(dir.path());
    let ind = |extra: &str| {
        format!("{HEAD}\n[[indicators]]\nname = \"n\"\nkind = \"count\"\nlayer = \"buildings\"\n{extra}\n")
    };
    let e = spec_err(dir.path(), &ind("unit = \"furlongs\""));
    assert!(
        e.contains("spec.toml:14") && e.contains("unknown unit `furlongs` (units: `count`"),
        "{e}"
    );
    let s = spec_in(dir.path(), &ind("unit = \"m2\"\nlabel = { en = \"Buildings\", fr = \"Bâtiments\" }\ndescription = \"All of them.\""));
    let out = run(
        &s,
        &dir.path().join("o"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let e = &out.catalog.indicators[0];
    assert_eq!(e.unit, "m²");
    assert_eq!(e.label.fr.as_deref(), Some("Bâtiments"));
    assert_eq!(e.description.en.as_deref(), Some("All of them."));
    for (entry, line, says) in [
        (
            "use = \"buildings.passoires\"",
            14,
            "no template `buildings.passoires`; did you mean one of buildings.count",
        ),
        (
            "use = \"buildings.count\"\ncolumns = { year = \"annee\" }",
            14,
            "`columns.year`: `buildings.count` has no such parameter (it takes no `columns`)",
        ),
        (
            "use = \"buildings.count\"\nfilter = \"year > 1\"",
            14,
            "`filter` is not a key of a template use",
        ),
        ("use = 3", 14, "`use` must be a template id"),
        (
            "name = \"x\"\nkind = \"count\"\nlayr = \"buildings\"",
            17,
            "unknown field `layr`",
        ),
    ] {
        let e = spec_err(dir.path(), &format!("{HEAD}\n[[indicators]]\n{entry}\n"));
        assert!(
            e.contains(&format!("spec.toml:{line}:")) && e.contains(says),
            "{entry}: {e}"
        );
    }
}

#[test]
fn catalog_command_lists_searches_and_formats() {
    let bin = env!("CARGO_BIN_EXE_terrastat");
    let out = std::process::Command::new(bin)
        .args(["catalog", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = all.as_array().unwrap();
    assert!(all.len() >= 15);
    for t in all {
        assert!(
            t["label"]["en"].is_string() && t["label"]["fr"].is_string(),
            "{t}"
        );
        assert!(terrastat_indicators::units::canonical(t["unit"].as_str().unwrap()).is_some());
        assert!(t["theme"].is_string() && t["keywords"].is_array());
    }
    let fg = all
        .iter()
        .find(|t| t["id"] == "buildings.share_energy_fg")
        .unwrap();
    assert_eq!(fg["columns"]["energy_class"], "energy_class");
    let md = std::process::Command::new(bin)
        .args(["catalog", "--format", "markdown", "--lang", "fr"])
        .output()
        .unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("## buildings") && md.contains("## risks"));
    assert!(md.contains("### `buildings.share_energy_fg`: Part des passoires thermiques"));
    assert!(md.contains("| colonnes requises | `energy_class` = `energy_class` |"));
    let found = std::process::Command::new(bin)
        .args(["catalog", "--search", "Inondation"])
        .output()
        .unwrap();
    let found = String::from_utf8(found.stdout).unwrap();
    let ids: Vec<&str> = found
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "risks.population_in_flood",
            "risks.share_buildings_flood",
            "risks.share_dwellings_flood"
        ]
    );
    let none = std::process::Command::new(bin)
        .args(["catalog", "--search", "volcano"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no template matches `volcano`"));
}

#[test]
fn filters_read_the_zone_columns() {
    let dir = tempfile::tempdir().unwrap();
    with_inputs(dir.path());
    let s = spec_in(
        dir.path(),
        &format!(
            "{HEAD}\n[[indicators]]\nname = \"old_in_big\"\nkind = \"count\"\nlayer = \"buildings\"\n\
             filter = \"year < 1975 and zone.population > 60000\"\n\
             [[indicators]]\nname = \"floor_big\"\nkind = \"sum\"\nlayer = \"buildings\"\ncolumn = \"floor_area\"\n\
             filter = \"zone.population > 60000\"\n"
        ),
    );
    run(
        &s,
        &dir.path().join("o"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let (ids, pop, members) = brute_force_members();
    let buildings = read_layer("b", &sample("buildings.parquet"), &ReadOptions::default()).unwrap();
    let year = num_col(&buildings, "year");
    let floor = num_col(&buildings, "floor_area");
    let n = column(&dir.path().join("o/communes.csv"), "old_in_big");
    let fl = column(&dir.path().join("o/communes.csv"), "floor_big");
    let (mut dep_n, mut dep_f) = (0.0, 0.0);
    let mut big = 0;
    for (z, id) in ids.iter().enumerate() {
        let want = if pop[z] > 60000.0 {
            big += 1;
            members[z]
                .iter()
                .filter(|&&b| year[b].is_some_and(|y| y < 1975.0))
                .count() as f64
        } else {
            0.0
        };
        assert_eq!(n[id], Some(want), "{id}");
        let f: f64 = if pop[z] > 60000.0 {
            members[z].iter().filter_map(|&b| floor[b]).sum()
        } else {
            0.0
        };
        assert!((fl[id].unwrap() - f).abs() <= 1e-9 * f.max(1.0), "{id}");
        dep_n += want;
        dep_f += f;
    }
    assert!(
        big > 3 && big < 36,
        "{big} big communes: the filter must select some"
    );
    // The département: each building checked against its own commune.
    let d = column(&dir.path().join("o/communes_by_dep.csv"), "old_in_big");
    assert_eq!(d["92"], Some(dep_n));
    let d = column(&dir.path().join("o/communes_by_dep.csv"), "floor_big");
    assert!((d["92"].unwrap() - dep_f).abs() <= 1e-9 * dep_f);
    // Not for the area kinds; an unknown zone column is named.
    let e = spec_err(
        dir.path(),
        &format!("{HEAD}\n[[indicators]]\nname = \"x\"\nkind = \"extensive\"\nlayer = \"buildings\"\ncolumn = \"floor_area\"\nfilter = \"zone.population > 1\"\n"),
    );
    assert!(
        e.contains("indicator `x`, key `filter`") && e.contains("not with extensive"),
        "{e}"
    );
    let e = spec_err(
        dir.path(),
        &format!("{HEAD}\n[[indicators]]\nname = \"x\"\nkind = \"count\"\nlayer = \"buildings\"\nfilter = \"zone.popultion > 1\"\n"),
    );
    assert!(
        e.contains("indicator `x`, key `filter`") && e.contains("popultion"),
        "{e}"
    );
}
