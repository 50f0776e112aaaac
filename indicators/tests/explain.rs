//! `terrastat explain`: the value it recomputes is the published one, to
//! the bit, and its trace adds up to it (features, weights, values, parts
//! inside the zone, operands), for every kind of the sample specs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::Path;

use terrastat_core::NoProgress;
use terrastat_indicators::explain::explain;
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;

fn sample_run(spec: &str) -> tempfile::TempDir {
    let spec = Spec::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/samples/idf92")
            .join(spec),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(&spec, dir.path(), &RunOptions::default(), &NoProgress).unwrap();
    dir
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn explained_values_equal_the_published_ones_and_add_up() {
    let dir = sample_run("indicators.toml");
    for zone in ["92002", "92004", "92073"] {
        // A count with a filter: one feature per unit, the rest filtered out.
        let e = explain(dir.path(), "n_pre1975", zone, Some("communes")).unwrap();
        let v = e.trace.value.unwrap();
        assert_eq!(e.published.map(f64::to_bits), Some(v.to_bits()), "{zone}");
        assert_eq!(e.trace.features.len() as f64, v);
        let all = explain(dir.path(), "n_buildings", zone, Some("communes")).unwrap();
        assert_eq!(
            e.trace.features.len() + e.trace.filtered_out,
            all.trace.features.len()
        );
        // A mean: Σ value / n over the features listed.
        let e = explain(dir.path(), "height_mean", zone, None).unwrap();
        let vals: Vec<f64> = e.trace.features.iter().filter_map(|f| f.value).collect();
        assert!(close(
            vals.iter().sum::<f64>() / vals.len() as f64,
            e.trace.value.unwrap()
        ));
        assert_eq!(
            e.published.map(f64::to_bits),
            e.trace.value.map(f64::to_bits)
        );
        // Extensive interpolation: Σ value × part inside / whole measure.
        let e = explain(dir.path(), "floor_ext", zone, None).unwrap();
        let s: f64 = e
            .trace
            .features
            .iter()
            .map(|f| f.value.unwrap_or(0.0) * f.measure_inside.unwrap() / f.measure.unwrap())
            .sum();
        assert!(
            close(s, e.trace.value.unwrap()),
            "{zone}: {s} vs {:?}",
            e.trace.value
        );
        assert_eq!(
            e.published.map(f64::to_bits),
            e.trace.value.map(f64::to_bits)
        );
        // A share: the related features among those listed.
        let e = explain(dir.path(), "flood_share", zone, None).unwrap();
        let n = e.trace.features.len() as f64;
        let r = e
            .trace
            .features
            .iter()
            .filter(|f| f.related == Some(true))
            .count() as f64;
        assert_eq!(
            e.published.map(f64::to_bits),
            e.trace.value.map(f64::to_bits)
        );
        if n > 0.0 {
            assert!(close(r / n, e.trace.value.unwrap()));
        }
        // Category shares: one column per category, from the features' categories.
        let e = explain(dir.path(), "energy_class", zone, None).unwrap();
        let (name, share) = &e.trace.columns[0];
        let cat = name.strip_prefix("energy_class_").unwrap();
        let k = e
            .trace
            .features
            .iter()
            .filter(|f| f.category.as_deref() == Some(cat))
            .count();
        let known = e
            .trace
            .features
            .iter()
            .filter(|f| f.category.is_some())
            .count();
        assert!(
            close(k as f64 / known as f64, share.unwrap()),
            "{zone}: {k}/{known} of {} vs {share:?}",
            e.trace.features.len()
        );
    }
    // A roll-up level.
    let e = explain(dir.path(), "n_buildings", "92", None).unwrap();
    assert_eq!(e.trace.zones, "communes_by_dep");
    assert_eq!(e.trace.features.len(), 16000);
    assert_eq!(e.published, Some(16000.0));
    assert!(e
        .to_text(3)
        .contains("published: 16000  recomputed: 16000  (equal)"));
}

#[test]
fn ratios_show_their_operands_and_tables() {
    let dir = sample_run("catalog.toml");
    let e = explain(dir.path(), "councillors_per_1000", "92002", None).unwrap();
    let ops: std::collections::BTreeMap<_, _> = e.trace.operands.iter().cloned().collect();
    assert_eq!(ops["elus.councillors"], Some(49.0));
    assert_eq!(ops["population"], Some(62570.0));
    assert_eq!(e.published, Some(49.0 / 62570.0 * 1000.0));
    assert_eq!(
        e.published.map(f64::to_bits),
        e.trace.value.map(f64::to_bits)
    );
    let e = explain(dir.path(), "share_fg", "92002", None).unwrap();
    assert_eq!(e.template.as_deref(), Some("buildings.share_energy_fg"));
    let ops: std::collections::BTreeMap<_, _> = e.trace.operands.iter().cloned().collect();
    assert!(close(
        ops["share_fg__fg"].unwrap() / ops["share_fg__known"].unwrap() * 100.0,
        e.published.unwrap()
    ));
    // A helper is explained, and said to be unpublished.
    let h = explain(dir.path(), "share_fg__fg", "92002", None).unwrap();
    assert!(h.hidden && h.to_text(0).contains("a helper"));
    assert_eq!(h.trace.value, ops["share_fg__fg"]);
    // Errors name what is missing.
    let err = explain(dir.path(), "nope", "92002", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no indicator `nope`"), "{err}");
    let err = explain(dir.path(), "share_fg", "99999", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no zone `99999` in zone layers communes, communes_by_dep"),
        "{err}"
    );
}
