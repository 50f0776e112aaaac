//! `zonal`: a statistic of a raster's pixels over each zone, each pixel
//! weighted by the exact fraction of it the zone covers (exactextract's
//! definitions). The raster passes themselves are in [`crate::zonal`].

use rayon::prelude::*;
use terrastat_core::raster::ZonalStats;

use super::{AtOnce, Check, Evaluation, IndicatorKind, Key, Keys, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Values};
use crate::expr::Filter;
use crate::spec::{IndicatorSpec, Stat};

/// The `zonal` kind.
pub(crate) struct Zonal;

impl IndicatorKind for Zonal {
    fn name(&self) -> &'static str {
        "zonal"
    }

    fn keys(&self) -> Keys {
        Keys {
            layer: Key::No,
            stat: true,
            raster: true,
            ..Keys::PIECES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, cx: &Check<'_>) -> Result<()> {
        cx.absent(
            &cx.ind.layer,
            "layer",
            "a zonal indicator reads a `raster`, not a layer",
        )?;
        check_keys(cx, true)?;
        match cx.ind.stat {
            Some(Stat::Median) => Err(cx.error("stat", "`median` is not a zonal statistic (count, sum, mean, min, max, stdev, majority, minority, variety, frac, weighted_mean, coverage)")),
            Some(_) => Ok(()),
            None => Err(cx.error("stat", "missing: count, sum, mean, min, max, stdev, majority, minority, variety, frac, weighted_mean or coverage")),
        }
    }

    fn reads(&self, _: &IndicatorSpec) -> Reads {
        Reads::NoLayer
    }

    fn centroids_suffice(&self, _: &IndicatorSpec) -> bool {
        false
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::AtOnce(self)
    }

    fn default_unit(&self, ind: &IndicatorSpec) -> &'static str {
        match ind.stat {
            Some(Stat::Frac | Stat::Coverage) => "fraction",
            Some(Stat::Count) => "pixels",
            Some(Stat::Variety) => "count",
            _ => "",
        }
    }

    fn definition(&self, ind: &IndicatorSpec, _: &Words<'_>) -> String {
        definition(ind)
    }
}

impl AtOnce for Zonal {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        let ind = cx.ind();
        let raster = ind.raster.as_deref().unwrap_or_default();
        let weights = crate::zonal::weights_of(ind);
        let (pass, predicates) = cx.raster_pass(raster, weights)?;
        let merged;
        let stats = match cx.members() {
            None => &pass.stats,
            Some(m) => {
                merged = m
                    .par_iter()
                    .map(|zs| {
                        let mut acc = ZonalStats::default();
                        let mut it = zs.iter();
                        if let Some(&first) = it.next() {
                            acc = pass.stats[first as usize].clone();
                        }
                        for &z in it {
                            acc.merge(&pass.stats[z as usize]);
                        }
                        acc
                    })
                    .collect::<Vec<_>>();
                &merged
            }
        };
        Ok(
            crate::zonal::columns(cx.spec(), cx.index(), stats, &predicates)
                .into_iter()
                .map(|(n, v)| (n, Values::Float(v)))
                .collect(),
        )
    }
}

/// Check the raster keys of an indicator (`raster`, `weights`, `where`,
/// `values`): those of a `zonal` indicator, or (`zonal` false) their absence.
pub(crate) fn check_keys(cx: &Check<'_>, zonal: bool) -> Result<()> {
    let (spec, ind) = (cx.spec, cx.ind);
    let e = |key: &str, msg: String| Err(cx.error(key, msg));
    let raster_names = || spec.rasters.keys().cloned().collect::<Vec<_>>().join(", ");
    match (&ind.raster, zonal) {
        (None, true) => return e("raster", "missing: a zonal indicator needs `raster`".into()),
        (Some(_), false) => return e("raster", "applies to zonal only".into()),
        (Some(r), true) if !spec.rasters.contains_key(r) => {
            return e(
                "raster",
                format!("no raster `{r}` (rasters: {})", raster_names()),
            )
        }
        _ => {}
    }
    let stat = ind.stat.filter(|_| zonal);
    match (&ind.weights, stat) {
        (None, Some(Stat::WeightedMean)) => {
            return e(
                "weights",
                "missing: `weighted_mean` needs `weights = \"<raster>\"`".into(),
            )
        }
        (Some(w), Some(Stat::WeightedMean)) if !spec.rasters.contains_key(w) => {
            return e(
                "weights",
                format!("no raster `{w}` (rasters: {})", raster_names()),
            )
        }
        (Some(_), Some(Stat::WeightedMean)) | (None, _) => {}
        (Some(_), _) => {
            return e(
                "weights",
                "applies to `stat = \"weighted_mean\"` only".into(),
            )
        }
    }
    match (&ind.where_, &ind.values, stat) {
        (None, None, Some(Stat::Coverage)) => {
            return e(
                "where",
                "missing: `coverage` needs `where = \"value > …\"` or `values = [...]`".into(),
            )
        }
        (Some(_), Some(_), _) => return e("values", "give `where` or `values`, not both".into()),
        (Some(w), None, Some(Stat::Coverage)) => {
            let f = Filter::parse(w).map_err(|err| cx.error("where", err.to_string()))?;
            if let Some(c) = f.columns().into_iter().find(|c| c != "value") {
                return e(
                    "where",
                    format!("`{c}`: a pixel predicate reads `value` only"),
                );
            }
        }
        (None, Some(v), Some(Stat::Coverage)) if v.is_empty() => {
            return e("values", "is empty".into())
        }
        (None, None, _) | (_, _, Some(Stat::Coverage)) => {}
        _ => {
            return e(
                "where",
                "`where` and `values` apply to `stat = \"coverage\"` only".into(),
            )
        }
    }
    Ok(())
}

/// The catalog's definition of a zonal indicator.
fn definition(ind: &IndicatorSpec) -> String {
    let r = ind.raster.as_deref().unwrap_or("?");
    let over = "over the pixels of the zone with a valid (not nodata) value, c being the exact fraction of each pixel covered by the zone (area(pixel ∩ zone) / area(pixel), in the raster's CRS) and v its value";
    let stat = match ind.stat.unwrap_or_default() {
        Stat::Count => format!("Σ c of raster `{r}` {over}; 0 when none"),
        Stat::Sum => format!("Σ c·v of raster `{r}` {over}; 0 when none"),
        Stat::Mean | Stat::Median => format!("Σ c·v / Σ c of raster `{r}` {over}"),
        Stat::Min => format!("Minimum of v of raster `{r}` {over}, among pixels with c > 0"),
        Stat::Max => format!("Maximum of v of raster `{r}` {over}, among pixels with c > 0"),
        Stat::Stdev => format!("√(Σ c·(v − mean)² / Σ c), the coverage-weighted population standard deviation of raster `{r}` {over}"),
        Stat::Majority => format!("The value of raster `{r}` with the largest Σ c (ties: the largest value) {over}"),
        Stat::Minority => format!("The value of raster `{r}` with the smallest Σ c (ties: the smallest value) {over}"),
        Stat::Variety => format!("The number of distinct values of raster `{r}` with c > 0 {over}"),
        Stat::Frac => format!("For each value x of raster `{r}`, Σ c over pixels of value x / Σ c, {over}; one column `{}_<x>` per value", ind.name),
        Stat::WeightedMean => format!("Σ c·w·v / Σ c·w of raster `{r}`, w from raster `{}` (pixels whose weight is nodata skipped), {over}", ind.weights.as_deref().unwrap_or("?")),
        Stat::Coverage => {
            let what = match (&ind.where_, &ind.values) {
                (Some(w), _) => format!("`{w}`"),
                (None, Some(v)) => format!("value ∈ {v:?}"),
                _ => "?".into(),
            };
            format!("Share Σ c [{what}] / Σ c of raster `{r}` {over}")
        }
    };
    format!("{stat}. Null when the zone has no valid pixel (exactextract's definitions).")
}
