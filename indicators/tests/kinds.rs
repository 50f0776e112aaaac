//! The kinds added as one file each (`length`, `quantile`), against
//! brute-force oracles written here without the engine's indexes: on the
//! real Hauts-de-Seine communes and buildings, on lines made of their real
//! boundaries and seeded random segments, and through the partials of a
//! distributed run (the kernel under `terrastat.spark`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, RecordBatch};
use geo::line_intersection::{line_intersection, LineIntersection};
use geo::{Centroid, Contains, Coord, Geometry, Intersects, Line, LineString, Point, Polygon};
use proptest::prelude::*;
use terrastat_core::{read_layer, NoProgress, RawLayer, ReadOptions};
use terrastat_indicators::distributed::partition_partials;
use terrastat_indicators::run::{compute_distributed, run, RunOptions, RunOutput};
use terrastat_indicators::spec::Spec;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92")
}

fn run_spec(dir: &Path, text: &str) -> RunOutput {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    let spec = Spec::load(&path).unwrap();
    run(&spec, &dir.join("out"), &RunOptions::default(), &NoProgress).unwrap()
}

fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("{name}"));
    let c = c.as_any().downcast_ref::<Float64Array>().unwrap();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect()
}

/// numpy.quantile(values, q, method="averaged_inverted_cdf"), written from
/// its definition: with n sorted values and g = n·q, the value of rank
/// ⌈g⌉ when g is not an integer, else the mean of ranks g and g + 1.
fn averaged_inverted_cdf(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let g = n as f64 * q;
    let k = g.floor() as usize;
    if g == k as f64 && k >= 1 && k < n {
        Some((v[k - 1] + v[k]) / 2.0)
    } else {
        Some(v[(g.ceil() as usize).clamp(1, n) - 1])
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// The kind's rule with unit weights is numpy's averaged_inverted_cdf,
    /// checked on a one-zone spec over points whose values proptest draws.
    #[test]
    fn quantile_of_unit_weights_is_numpy_averaged_inverted_cdf(
        values in proptest::collection::vec(-1e6f64..1e6, 1..40),
        q in prop_oneof![Just(0.0), Just(0.25), Just(0.5), Just(1.0), 0.0f64..=1.0],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let features: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = 0.1 + (i % 7) as f64 * 0.1;
                format!(r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{x},0.5]}},"properties":{{"v":{v:?}}}}}"#)
            })
            .collect();
        std::fs::write(
            dir.path().join("p.geojson"),
            format!(r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::2154"}}}},"features":[{}]}}"#, features.join(",")),
        ).unwrap();
        let spec = format!(
            "crs = \"EPSG:2154\"\n[layers.p]\npath = \"p.geojson\"\n[zones.g]\ngrid = 1.0\nbbox = [0, 0, 1, 1]\n\
             [[indicators]]\nname = \"q\"\nkind = \"quantile\"\nlayer = \"p\"\ncolumn = \"v\"\nq = {q:?}\n\
             [[indicators]]\nname = \"m\"\nkind = \"median\"\nlayer = \"p\"\ncolumn = \"v\"\n"
        );
        let out = run_spec(dir.path(), &spec);
        let got = floats(&out.tables[0].batch, "q")[0];
        // The values as read (JSON numbers may parse to a neighbouring float).
        let read = read_layer("p", &dir.path().join("p.geojson"), &ReadOptions::default()).unwrap();
        let values: Vec<f64> = read.numeric_column("v").unwrap().into_iter().flatten().collect();
        prop_assert_eq!(got, averaged_inverted_cdf(&values, q));
        if q == 0.5 {
            prop_assert_eq!(got, floats(&out.tables[0].batch, "m")[0]);
        }
    }
}

/// On the real sample: `q = 0.5` is `median` bit for bit (unit and column
/// weights, with a filter); other quantiles equal the brute force over the
/// buildings whose centroid lies in each commune (geo's `Contains`, every
/// commune scanned, no index).
#[test]
fn quantile_on_the_sample_equals_median_and_the_brute_force() {
    let d = samples();
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
crs = "EPSG:2154"
[layers.buildings]
path = "{d}/buildings.parquet"
[zones.communes]
path = "{d}/communes.parquet"
id = "insee"
rollup = ["dep"]
[[indicators]]
name = "h_median"
kind = "median"
layer = "buildings"
column = "height"
[[indicators]]
name = "h_q50"
kind = "quantile"
layer = "buildings"
column = "height"
q = 0.5
[[indicators]]
name = "e_median_w"
kind = "median"
layer = "buildings"
column = "energy_kwh"
weight = "floor_area"
filter = "year < 1975"
[[indicators]]
name = "e_q50_w"
kind = "quantile"
layer = "buildings"
column = "energy_kwh"
weight = "floor_area"
filter = "year < 1975"
q = 0.5
[[indicators]]
name = "h_q10"
kind = "quantile"
layer = "buildings"
column = "height"
q = 0.1
[[indicators]]
name = "h_q90"
kind = "quantile"
layer = "buildings"
column = "height"
q = 0.9
"#,
        d = d.display()
    );
    let out = run_spec(dir.path(), &spec);
    for t in &out.tables {
        assert_eq!(
            floats(&t.batch, "h_median"),
            floats(&t.batch, "h_q50"),
            "{}",
            t.zones
        );
        assert_eq!(
            floats(&t.batch, "e_median_w"),
            floats(&t.batch, "e_q50_w"),
            "{}",
            t.zones
        );
    }
    let communes = read_layer("c", &d.join("communes.parquet"), &ReadOptions::default()).unwrap();
    let buildings = read_layer("b", &d.join("buildings.parquet"), &ReadOptions::default()).unwrap();
    let heights = buildings.numeric_column("height").unwrap();
    let mut per_zone: Vec<Vec<f64>> = vec![Vec::new(); communes.len()];
    for (f, g) in buildings.geometries().iter().enumerate() {
        let c: Point = g.centroid().unwrap();
        if let Some(z) = communes.geometries().iter().position(|z| z.contains(&c)) {
            per_zone[z].extend(heights[f]);
        }
    }
    let table = &out.tables[0].batch;
    for (name, q) in [("h_q10", 0.1), ("h_q90", 0.9)] {
        let got = floats(table, name);
        let want: Vec<Option<f64>> = per_zone
            .iter()
            .map(|v| averaged_inverted_cdf(v, q))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    // A spec error names the key: `q` outside [0, 1], and `q` missing.
    for (bad, msg) in [
        ("q = 1.5", "`1.5` is not a number from 0 to 1"),
        ("", "missing: a quantile needs `q`"),
    ] {
        let text = format!(
            "crs = \"EPSG:2154\"\n[layers.b]\npath = \"b.parquet\"\n[zones.z]\ngrid = 1.0\nbbox = [0, 0, 1, 1]\n[[indicators]]\nname = \"x\"\nkind = \"quantile\"\nlayer = \"b\"\ncolumn = \"h\"\n{bad}\n"
        );
        let e = Spec::from_str(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `q`") && e.contains(msg), "{e}");
    }
}

/// Lines over the sample communes: each commune's outer boundary (real;
/// the parts shared by two communes lie on both), and seeded random
/// segments across the département; `kind` is `boundary` or `segment`.
fn lines() -> (Vec<LineString>, Vec<&'static str>) {
    let communes = read_layer(
        "c",
        &samples().join("communes.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut kinds = Vec::new();
    for g in communes.geometries() {
        let polys: Vec<Polygon> = match g {
            Geometry::Polygon(p) => vec![p.clone()],
            Geometry::MultiPolygon(m) => m.0.clone(),
            _ => vec![],
        };
        for p in polys {
            out.push(p.exterior().clone());
            kinds.push("boundary");
        }
    }
    let bb = communes.bounding_rect().unwrap();
    let mut x = 42u64;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..400 {
        let a = Coord {
            x: bb.min().x + next() * bb.width(),
            y: bb.min().y + next() * bb.height(),
        };
        let b = Coord {
            x: a.x + (next() - 0.5) * 3000.0,
            y: a.y + (next() - 0.5) * 3000.0,
        };
        let c = Coord {
            x: b.x + (next() - 0.5) * 2000.0,
            y: b.y + (next() - 0.5) * 2000.0,
        };
        out.push(LineString(vec![a, b, c]));
        kinds.push("segment");
    }
    (out, kinds)
}

fn write_lines(path: &Path, lines: &[LineString], kinds: &[&str]) {
    let features: Vec<String> = lines
        .iter()
        .zip(kinds)
        .map(|(l, k)| {
            let coords: Vec<String> = l.0.iter().map(|c| format!("[{:?},{:?}]", c.x, c.y)).collect();
            format!(
                r#"{{"type":"Feature","geometry":{{"type":"LineString","coordinates":[{}]}},"properties":{{"kind":"{k}"}}}}"#,
                coords.join(",")
            )
        })
        .collect();
    std::fs::write(
        path,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::2154"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
}

/// Σ length(line ∩ zone) by brute force: every segment cut at its
/// crossings with every edge of the zone, each piece kept when its midpoint
/// is inside the zone or on its boundary (geo's `Intersects`).
fn brute_length(zone: &Geometry, line: &LineString) -> f64 {
    let edges: Vec<Line> = match zone {
        Geometry::Polygon(p) => p
            .exterior()
            .lines()
            .chain(p.interiors().iter().flat_map(|r| r.lines()))
            .collect(),
        Geometry::MultiPolygon(m) => {
            m.0.iter()
                .flat_map(|p| {
                    p.exterior()
                        .lines()
                        .chain(p.interiors().iter().flat_map(|r| r.lines()))
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        _ => vec![],
    };
    let mut total = 0.0;
    for seg in line.lines() {
        let d = seg.delta();
        let len2 = d.x * d.x + d.y * d.y;
        if len2 == 0.0 {
            continue;
        }
        let t_of = |c: Coord| ((c.x - seg.start.x) * d.x + (c.y - seg.start.y) * d.y) / len2;
        let mut ts = vec![0.0, 1.0];
        for e in &edges {
            match line_intersection(seg, *e) {
                Some(LineIntersection::SinglePoint { intersection, .. }) => {
                    ts.push(t_of(intersection))
                }
                Some(LineIntersection::Collinear { intersection }) => {
                    ts.push(t_of(intersection.start));
                    ts.push(t_of(intersection.end));
                }
                None => {}
            }
        }
        ts.retain(|t| (0.0..=1.0).contains(t));
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        let seg_len = len2.sqrt();
        for w in ts.windows(2) {
            let tm = (w[0] + w[1]) / 2.0;
            let mid = Point::new(seg.start.x + d.x * tm, seg.start.y + d.y * tm);
            if zone.intersects(&mid) {
                total += (w[1] - w[0]) * seg_len;
            }
        }
    }
    total
}

const LENGTH_SPEC: &str = r#"
crs = "EPSG:2154"
[layers.lines]
path = "lines.geojson"
[zones.communes]
path = "{d}/communes.parquet"
id = "insee"
rollup = ["dep"]
[[indicators]]
name = "len"
kind = "length"
layer = "lines"
[[indicators]]
name = "len_segments"
kind = "length"
layer = "lines"
filter = "kind = 'segment'"
[[indicators]]
name = "area_km2"
kind = "area"
unit = "m²"
hidden = true
[[indicators]]
name = "km_per_km2"
kind = "ratio"
expr = "len / 1000 / (area_km2 / 1000000)"
"#;

/// `length` on real boundaries and random lines equals the brute force in
/// every commune (boundary parts count in both communes), its filter
/// applies, roll-ups add up, and a ratio over `length` and `area` gives km
/// per km².
#[test]
fn length_equals_the_brute_force_on_real_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let (ls, kinds) = lines();
    write_lines(&dir.path().join("lines.geojson"), &ls, &kinds);
    let out = run_spec(
        dir.path(),
        &LENGTH_SPEC.replace("{d}", &samples().display().to_string()),
    );
    let communes = read_layer(
        "c",
        &samples().join("communes.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let table = &out.tables[0].batch;
    let (all, seg) = (floats(table, "len"), floats(table, "len_segments"));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 + 1e-9 * b.abs();
    let mut shared = 0.0;
    for (z, zone) in communes.geometries().iter().enumerate() {
        let (mut want_all, mut want_seg) = (0.0, 0.0);
        for (l, k) in ls.iter().zip(&kinds) {
            let m = brute_length(zone, l);
            want_all += m;
            if *k == "segment" {
                want_seg += m;
            }
        }
        let (a, s) = (all[z].unwrap(), seg[z].unwrap());
        assert!(close(a, want_all), "commune {z}: {a} vs {want_all}");
        assert!(close(s, want_seg), "commune {z}: {s} vs {want_seg}");
        shared += a - s;
    }
    // Each commune's own boundary lies in it, and the parts it shares with
    // its neighbours (where their vertices coincide) lie in them too: the
    // boundaries count more than once.
    let own: f64 = ls
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| **k == "boundary")
        .map(|(l, _)| geo::Euclidean.length(l))
        .sum();
    assert!(shared > own * 1.05, "{shared} vs {own}");
    // The roll-up to the département is the sum over its communes.
    let dep = out
        .tables
        .iter()
        .find(|t| t.zones == "communes_by_dep")
        .unwrap();
    let total: f64 = all.iter().map(|x| x.unwrap()).sum();
    assert!(close(floats(&dep.batch, "len")[0].unwrap(), total));
    let ratio = floats(table, "km_per_km2");
    let areas: Vec<f64> = communes
        .geometries()
        .iter()
        .map(geo::Area::unsigned_area)
        .collect();
    for z in 0..areas.len() {
        let want = all[z].unwrap() / 1000.0 / (areas[z] / 1e6);
        assert!((ratio[z].unwrap() - want).abs() < 1e-9 * want, "{z}");
    }
}

use geo::Length as _;

/// A line lying on the boundary two zones share counts in both, a line
/// along the outer edge in its one zone, and a line crossing the shared
/// edge is cut there exactly.
#[test]
fn length_on_a_shared_boundary_counts_in_both_zones() {
    let dir = tempfile::tempdir().unwrap();
    let ls = vec![
        LineString::from(vec![(1.0, 0.0), (1.0, 1.0)]), // the shared edge
        LineString::from(vec![(0.0, 0.0), (0.0, 0.5)]), // the outer edge of the first cell
        LineString::from(vec![(0.25, 0.5), (1.75, 0.5)]), // across
    ];
    write_lines(&dir.path().join("lines.geojson"), &ls, &["a", "b", "c"]);
    let out = run_spec(
        dir.path(),
        "crs = \"EPSG:2154\"\n[layers.lines]\npath = \"lines.geojson\"\n[zones.g]\ngrid = 1.0\nbbox = [0, 0, 2, 1]\n\
         [[indicators]]\nname = \"len\"\nkind = \"length\"\nlayer = \"lines\"\n",
    );
    assert_eq!(
        floats(&out.tables[0].batch, "len"),
        vec![Some(1.0 + 0.5 + 0.75), Some(1.0 + 0.75)]
    );
    // A polygon layer is refused, naming the key.
    let text = "crs = \"EPSG:2154\"\n[layers.c]\npath = \"{d}/communes.parquet\"\n[zones.g]\ngrid = 1000.0\nbbox = [640000, 6850000, 660000, 6870000]\n[[indicators]]\nname = \"len\"\nkind = \"length\"\nlayer = \"c\"\n"
        .replace("{d}", &samples().display().to_string());
    std::fs::write(dir.path().join("bad.toml"), text).unwrap();
    let spec = Spec::load(&dir.path().join("bad.toml")).unwrap();
    let e = run(
        &spec,
        &dir.path().join("o2"),
        &RunOptions::default(),
        &NoProgress,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("`length` needs a line layer"), "{e}");
}

/// `length` streams like the other additive kinds: the lines dealt in a
/// shuffled order to 5 parts, each folded by `partition_partials` (the
/// kernel under `terrastat.spark`), finish to the single run's bits.
#[test]
fn length_partials_of_shuffled_parts_finish_to_the_single_machine_bits() {
    let dir = tempfile::tempdir().unwrap();
    let (ls, kinds) = lines();
    write_lines(&dir.path().join("lines.geojson"), &ls, &kinds);
    let text = LENGTH_SPEC.replace("{d}", &samples().display().to_string());
    let single = run_spec(dir.path(), &text);
    let spec = Spec::load(&dir.path().join("spec.toml")).unwrap();
    let raw =
        terrastat_core::io::read_raw(&dir.path().join("lines.geojson"), &ReadOptions::default())
            .unwrap();
    let n = raw.geometries.len() as u32;
    let mut order: Vec<u32> = (0..n).collect();
    let mut x = 7u64;
    for i in (1..order.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    let cuts = [0, 3, 50, 51, 300, n as usize];
    let mut batches = Vec::new();
    for w in cuts.windows(2) {
        let rows = &order[w[0]..w[1]];
        let idx = arrow_array::UInt32Array::from(rows.to_vec());
        let part = RawLayer {
            geometries: rows
                .iter()
                .map(|r| raw.geometries[*r as usize].clone())
                .collect(),
            attributes: arrow_select::take::take_record_batch(&raw.attributes, &idx).unwrap(),
            crs: raw.crs.clone(),
            reduced: None,
        };
        let mut memory = BTreeMap::new();
        memory.insert("lines".to_string(), part);
        batches.push(partition_partials(&spec, "lines", memory).unwrap());
    }
    let dist = compute_distributed(&spec, &NoProgress, BTreeMap::new(), "lines", batches).unwrap();
    for (a, b) in single.tables.iter().zip(&dist.tables) {
        for name in ["len", "len_segments", "km_per_km2"] {
            assert_eq!(
                a.batch.column_by_name(name),
                b.batch.column_by_name(name),
                "{} {name}",
                a.zones
            );
        }
        assert_eq!(a.quality, b.quality, "{} quality", a.zones);
    }
}
