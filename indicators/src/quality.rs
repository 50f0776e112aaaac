//! Quality of every value: for each indicator and zone, how many features
//! it used, how complete their needed columns are, how much of the zone the
//! source layer covers, and whether the value is published.
//!
//! - **n_features**: features attributed to the zone that pass the filter
//!   (for `extensive`, `intensive`, `coverage` and `area`: by their centroid).
//! - **completeness**: among the features attributed to the zone (before
//!   the filter), the share whose needed columns (`column`, `weight`, the
//!   filter's columns) are all non-null; 1 when nothing is needed; null
//!   without features.
//! - **coverage**: the share of the zone's area inside the source layer's
//!   extent: the polygons of the layer or zone layer its `extent` key names
//!   (where the source is meant to be complete), else the bounding box of
//!   its features (over every batch).
//! - **flag**: `ok`, or `withheld` with the reason, from the thresholds of
//!   `[quality]` (for every indicator) and of an indicator's `quality = {…}`
//!   (overriding them). A withheld value is written as null.
//!
//! A ratio takes the largest n_features (a share's denominator), the
//! smallest completeness and coverage of the indicators it reads, and is
//! withheld when one of them is. Written as
//! `DIR/<zones>.quality.parquet` (one row per zone and published indicator,
//! zone-major) and summarised per indicator in `catalog.json`.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use geo::{Area, BoundingRect, Rect};
use serde::{Deserialize, Serialize};

/// Publication thresholds (`[quality]`, or an indicator's `quality = {…}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Withhold when completeness is below this (0–1).
    #[serde(default)]
    pub min_completeness: Option<f64>,
    /// Withhold when coverage is below this (0–1).
    #[serde(default)]
    pub min_coverage: Option<f64>,
    /// Withhold when fewer features were used.
    #[serde(default)]
    pub min_features: Option<u64>,
}

impl Thresholds {
    /// `self`'s thresholds where set, else `base`'s.
    pub fn over(&self, base: &Thresholds) -> Thresholds {
        Thresholds {
            min_completeness: self.min_completeness.or(base.min_completeness),
            min_coverage: self.min_coverage.or(base.min_coverage),
            min_features: self.min_features.or(base.min_features),
        }
    }
}

/// Per zone counts of the features of one indicator (summed over batches).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Features attributed to the zone (before the filter).
    pub attributed: Vec<u64>,
    /// Of those, the ones whose needed columns are non-null.
    pub complete: Vec<u64>,
    /// Features used: attributed and passing the filter.
    pub used: Vec<u64>,
}

impl Counts {
    /// Zero counts for `n` zones.
    pub fn new(n: usize) -> Counts {
        Counts {
            attributed: vec![0; n],
            complete: vec![0; n],
            used: vec![0; n],
        }
    }
}

/// One indicator's quality over the zones of a zone layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Features used, per zone (null for indicators without a layer).
    pub n_features: Vec<Option<u64>>,
    /// Completeness, per zone.
    pub completeness: Vec<Option<f64>>,
    /// Coverage, per zone.
    pub coverage: Vec<Option<f64>>,
    /// Why the value is withheld, per zone (`None`: published).
    pub withheld: Vec<Option<String>>,
}

impl Record {
    /// Nothing known (no layer: a zone area, a raster statistic).
    pub fn unknown(n: usize) -> Record {
        Record {
            n_features: vec![None; n],
            completeness: vec![None; n],
            coverage: vec![None; n],
            withheld: vec![None; n],
        }
    }

    /// From counts and coverage.
    pub fn from_counts(c: &Counts, coverage: Vec<Option<f64>>) -> Record {
        let n = c.used.len();
        Record {
            n_features: c.used.iter().map(|u| Some(*u)).collect(),
            completeness: (0..n)
                .map(|z| {
                    (c.attributed[z] > 0).then(|| c.complete[z] as f64 / c.attributed[z] as f64)
                })
                .collect(),
            coverage,
            withheld: vec![None; n],
        }
    }

    /// The quality of a value computed from `parts`: the most features, the
    /// smallest completeness and coverage, withheld when a part is (its name
    /// and reason given).
    pub fn combine(n: usize, parts: &[(&str, &Record)]) -> Record {
        let max_u = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (x, None) | (None, x) => x,
        };
        let min_f = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (x, None) | (None, x) => x,
        };
        let mut r = Record::unknown(n);
        for (name, p) in parts {
            for z in 0..n {
                r.n_features[z] = max_u(r.n_features[z], p.n_features[z]);
                r.completeness[z] = min_f(r.completeness[z], p.completeness[z]);
                r.coverage[z] = min_f(r.coverage[z], p.coverage[z]);
                if r.withheld[z].is_none() {
                    if let Some(why) = &p.withheld[z] {
                        r.withheld[z] = Some(format!("`{name}` withheld: {why}"));
                    }
                }
            }
        }
        r
    }

    /// Withhold the zones that miss a threshold (the first missed is the reason).
    pub fn apply(&mut self, t: &Thresholds) {
        for z in 0..self.withheld.len() {
            if self.withheld[z].is_some() {
                continue;
            }
            let why = match (self.completeness[z], t.min_completeness) {
                (Some(c), Some(m)) if c < m => Some(format!("completeness {c:.3} < {m}")),
                _ => None,
            }
            .or_else(|| match (self.coverage[z], t.min_coverage) {
                (Some(c), Some(m)) if c < m => Some(format!("coverage {c:.3} < {m}")),
                _ => None,
            })
            .or_else(|| match (self.n_features[z], t.min_features) {
                (Some(n), Some(m)) if n < m => Some(format!("{n} features < {m}")),
                _ => None,
            });
            self.withheld[z] = why;
        }
    }
}

/// The share of each zone's area inside `extent` (exact: the zone clipped
/// to the box); `None` without an extent.
pub fn coverage(zones: &terrastat_core::Zones, extent: Option<&Rect>) -> Vec<Option<f64>> {
    use rayon::prelude::*;
    zones
        .prepared()
        .par_iter()
        .map(|p| {
            let e = extent?;
            let a = p.area();
            if a <= 0.0 {
                return None;
            }
            let r = p.geometry().bounding_rect()?;
            if r.min().x >= e.min().x
                && r.min().y >= e.min().y
                && r.max().x <= e.max().x
                && r.max().y <= e.max().y
            {
                return Some(1.0);
            }
            if r.max().x < e.min().x
                || r.max().y < e.min().y
                || r.min().x > e.max().x
                || r.min().y > e.max().y
            {
                return Some(0.0);
            }
            let inside = terrastat_core::clip_multipolygon_to_rect(p.geometry(), e);
            Some((inside.unsigned_area() / a).min(1.0))
        })
        .collect()
}

/// The share of each zone's area inside the union of `extent`'s polygons
/// (exact sweep, overlaps counted once).
pub fn coverage_by(zones: &terrastat_core::Zones, extent: &[geo::Geometry]) -> Vec<Option<f64>> {
    use rayon::prelude::*;
    let rects: Vec<Option<Rect>> = extent.iter().map(|g| g.bounding_rect()).collect();
    let index = terrastat_core::BoxIndex::new(rects.iter().map(|r| r.as_ref()));
    zones
        .prepared()
        .par_iter()
        .map(|p| {
            let a = p.area();
            let r = p.geometry().bounding_rect()?;
            if a <= 0.0 {
                return None;
            }
            let polys: Vec<&geo::Polygon> = index
                .intersecting(&r)
                .into_iter()
                .flat_map(|k| match &extent[k as usize] {
                    geo::Geometry::Polygon(p) => vec![p],
                    geo::Geometry::MultiPolygon(m) => m.0.iter().collect(),
                    _ => vec![],
                })
                .collect();
            let zp: Vec<&geo::Polygon> = p.geometry().0.iter().collect();
            Some((terrastat_core::covered_area(Some(&zp), &polys) / a).min(1.0))
        })
        .collect()
}

/// The long quality table of a zone layer: the zones' key columns, then
/// `indicator`, `n_features`, `completeness`, `coverage`, `flag`, `reason`;
/// one row per zone and indicator, zone-major.
pub fn table(
    keys: &[(Field, ArrayRef)],
    records: &[(String, Record)],
    n_zones: usize,
) -> crate::error::Result<RecordBatch> {
    let k = records.len();
    let take: Vec<u32> = (0..n_zones as u32)
        .flat_map(|z| std::iter::repeat_n(z, k))
        .collect();
    let idx = arrow_array::UInt32Array::from(take);
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (f, a) in keys {
        fields.push(f.clone());
        cols.push(arrow_select::take::take(a.as_ref(), &idx, None)?);
    }
    let each = |f: &dyn Fn(&Record, usize) -> Option<String>| -> StringArray {
        (0..n_zones)
            .flat_map(|z| records.iter().map(move |(_, r)| (z, r)))
            .map(|(z, r)| f(r, z))
            .collect()
    };
    let names: StringArray = (0..n_zones)
        .flat_map(|_| records.iter().map(|(n, _)| Some(n.as_str())))
        .collect();
    let n: UInt64Array = (0..n_zones)
        .flat_map(|z| records.iter().map(move |(_, r)| r.n_features[z]))
        .collect();
    let comp: Float64Array = (0..n_zones)
        .flat_map(|z| records.iter().map(move |(_, r)| r.completeness[z]))
        .collect();
    let cov: Float64Array = (0..n_zones)
        .flat_map(|z| records.iter().map(move |(_, r)| r.coverage[z]))
        .collect();
    let flag = each(&|r, z| {
        Some(
            if r.withheld[z].is_some() {
                "withheld"
            } else {
                "ok"
            }
            .to_string(),
        )
    });
    let reason = each(&|r, z| r.withheld[z].clone());
    for (name, ty, a) in [
        ("indicator", DataType::Utf8, Arc::new(names) as ArrayRef),
        ("n_features", DataType::UInt64, Arc::new(n) as ArrayRef),
        (
            "completeness",
            DataType::Float64,
            Arc::new(comp) as ArrayRef,
        ),
        ("coverage", DataType::Float64, Arc::new(cov) as ArrayRef),
        ("flag", DataType::Utf8, Arc::new(flag) as ArrayRef),
        ("reason", DataType::Utf8, Arc::new(reason) as ArrayRef),
    ] {
        fields.push(Field::new(name, ty, name != "indicator" && name != "flag"));
        cols.push(a);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Per indicator, a summary of its records: zones, zones withheld, the
/// smallest and mean completeness and coverage.
pub fn summary(r: &Record) -> serde_json::Value {
    let stats = |v: &[Option<f64>]| {
        let known: Vec<f64> = v.iter().flatten().copied().collect();
        if known.is_empty() {
            return serde_json::Value::Null;
        }
        let min = known.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = known.iter().sum::<f64>() / known.len() as f64;
        serde_json::json!({"min": min, "mean": mean})
    };
    serde_json::json!({
        "zones": r.withheld.len(),
        "withheld": r.withheld.iter().filter(|w| w.is_some()).count(),
        "completeness": stats(&r.completeness),
        "coverage": stats(&r.coverage),
        "n_features": r.n_features.iter().flatten().sum::<u64>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_combine_and_apply() {
        let c = Counts {
            attributed: vec![10, 10, 0, 4],
            complete: vec![10, 5, 0, 4],
            used: vec![8, 9, 0, 4],
        };
        let mut r = Record::from_counts(&c, vec![Some(1.0), Some(1.0), Some(1.0), Some(0.5)]);
        assert_eq!(r.completeness, [Some(1.0), Some(0.5), None, Some(1.0)]);
        let t = Thresholds {
            min_completeness: Some(0.8),
            min_coverage: Some(0.9),
            min_features: Some(1),
        };
        r.apply(&t);
        assert_eq!(r.withheld[0], None);
        assert_eq!(r.withheld[1].as_deref(), Some("completeness 0.500 < 0.8"));
        assert_eq!(r.withheld[2].as_deref(), Some("0 features < 1"));
        assert_eq!(r.withheld[3].as_deref(), Some("coverage 0.500 < 0.9"));
        let ratio = Record::combine(4, &[("a", &r), ("b", &Record::unknown(4))]);
        assert_eq!(
            ratio.withheld[1].as_deref(),
            Some("`a` withheld: completeness 0.500 < 0.8")
        );
        assert_eq!(ratio.withheld[0], None);
        assert_eq!(ratio.n_features, [Some(8), Some(9), Some(0), Some(4)]);
        let two = Record::combine(
            4,
            &[
                ("a", &r),
                (
                    "c",
                    &Record::from_counts(
                        &Counts {
                            used: vec![1, 20, 1, 1],
                            ..c.clone()
                        },
                        vec![None; 4],
                    ),
                ),
            ],
        );
        assert_eq!(two.n_features, [Some(8), Some(20), Some(1), Some(4)]);
        let o = Thresholds {
            min_features: Some(5),
            ..Default::default()
        };
        assert_eq!(o.over(&t).min_features, Some(5));
        assert_eq!(o.over(&t).min_coverage, Some(0.9));
    }
}
