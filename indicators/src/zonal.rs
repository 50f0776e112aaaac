//! Raster passes of `zonal` indicators: one pass per (raster, weights
//! raster, zone layer) that serves every zonal indicator of the spec on that
//! pair (the rasters themselves are loaded by [`crate::rasters`]).
//!
//! `Passes` (one `core::raster::zonal` pass per (raster,
//! weights, zone layer), planned from every zonal indicator of the spec; zone
//! polygons in the raster's CRS: the zone file's own geometry when it is in
//! that CRS, else reprojected), output columns per statistic (`frac`: one per
//! class).

use std::collections::HashMap;
use std::sync::Arc;

use geo::{Geometry, MultiPolygon};
use terrastat_core::raster::{self, Needs, ValuePredicate, Zonal, ZonalOptions, ZonalStats};
use terrastat_core::{Crs, Progress, Zones};

use crate::error::{Error, Result};
use crate::expr::{Filter, Literal};
use crate::rasters::transform;
use crate::spec::{Kind, Spec, Stat};

/// What one pass accumulates, and which predicate each `coverage` indicator reads.
struct Plan {
    needs: Needs,
    predicate_of: HashMap<usize, usize>,
}

/// The weights raster a zonal indicator reads (`weighted_mean` only).
pub(crate) fn weights_of(ind: &crate::spec::IndicatorSpec) -> Option<&str> {
    (ind.stat == Some(Stat::WeightedMean))
        .then_some(ind.weights.as_deref())
        .flatten()
}

fn predicate(ind: &crate::spec::IndicatorSpec, where_: Option<&Filter>) -> Result<ValuePredicate> {
    if let Some(values) = &ind.values {
        let values = values.clone();
        return Ok(Arc::new(move |v| values.contains(&v)));
    }
    let f = where_
        .cloned()
        .ok_or_else(|| crate::error::Error::Internal {
            what: format!("coverage `{}` has neither `values` nor `where`", ind.name),
        })?;
    Ok(Arc::new(move |v| {
        f.eval(&|name| (name == "value").then_some(Literal::Num(v))) == Some(true)
    }))
}

fn plan(planned: &crate::plan::Plan<'_>, raster: &str, weights: Option<&str>) -> Result<Plan> {
    let spec = planned.spec();
    let mut needs = Needs {
        weights: weights.is_some(),
        ..Needs::default()
    };
    let mut predicate_of = HashMap::new();
    for (i, ind) in spec.indicators.iter().enumerate() {
        let ind = ind.get_ref();
        if ind.kind != Kind::Zonal
            || ind.raster.as_deref() != Some(raster)
            || weights_of(ind) != weights
        {
            continue;
        }
        match ind.stat.unwrap_or_default() {
            Stat::Min | Stat::Max => needs.minmax = true,
            Stat::Stdev => needs.variance = true,
            Stat::Majority | Stat::Minority | Stat::Variety | Stat::Frac => needs.histogram = true,
            Stat::Coverage => {
                predicate_of.insert(i, needs.predicates.len());
                needs
                    .predicates
                    .push(predicate(ind, planned.step(i).where_.as_ref())?);
            }
            _ => {}
        }
    }
    Ok(Plan {
        needs,
        predicate_of,
    })
}

/// What a pass noticed, for the run report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassReport {
    /// The raster.
    pub raster: String,
    /// The weights raster, if any.
    pub weights: Option<String>,
    /// The zone layer.
    pub zones: String,
    /// Zones entirely outside the raster.
    pub outside: usize,
    /// Zones partly outside the raster.
    pub partly_outside: usize,
    /// Zones over the raster without a valid pixel.
    pub no_valid: usize,
}

/// A pass's statistics, and the predicate index of each `coverage` indicator.
pub(crate) type Pass = (Arc<Zonal>, Arc<HashMap<usize, usize>>);

/// Passes already made, by (raster, weights, zone layer).
#[derive(Default)]
pub(crate) struct Passes {
    done: HashMap<(String, Option<String>, String), Pass>,
    /// Reports of the passes, in the order they ran.
    pub reports: Vec<PassReport>,
}

/// The zones of `zones` as polygons in `crs`: the zone file's own
/// geometries when it is in that CRS (no round trip through the working
/// CRS), else the working-CRS polygons reprojected.
fn zone_polygons(
    inputs: &crate::inputs::Inputs,
    name: &str,
    zones: &Zones,
    crs: &Crs,
) -> Result<Vec<MultiPolygon>> {
    let geoms = match inputs.zone_sources.get(name) {
        Some((src, g)) if src.same_as(crs) => g.as_ref().clone(),
        _ => transform(zones.geometries(), zones.crs(), crs, name)?,
    };
    geoms
        .into_iter()
        .map(|g| match g {
            Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
            Geometry::MultiPolygon(m) => Ok(m),
            other => Err(Error::Input {
                input: format!("zones `{name}`"),
                message: format!("zones must be polygons, found {other:?}"),
            }),
        })
        .collect()
}

impl Passes {
    /// The pass of `raster` (with `weights`) over the zones `zones_name`,
    /// made on first use.
    pub(crate) fn get(
        &mut self,
        planned: &crate::plan::Plan<'_>,
        inputs: &crate::inputs::Inputs,
        (raster, weights): (&str, Option<&str>),
        zones_name: &str,
        progress: &dyn Progress,
    ) -> Result<Pass> {
        let key = (
            raster.to_string(),
            weights.map(str::to_string),
            zones_name.to_string(),
        );
        if let Some(p) = self.done.get(&key) {
            return Ok(p.clone());
        }
        let r = inputs.rasters.get(raster).ok_or_else(|| Error::Internal {
            what: format!("raster `{raster}` is not loaded"),
        })?;
        let zones = inputs
            .zones
            .get(zones_name)
            .ok_or_else(|| Error::Internal {
                what: format!("zones `{zones_name}` are not loaded"),
            })?;
        let crs = r.crs(raster)?;
        let polygons = zone_polygons(inputs, zones_name, zones, crs)?;
        let plan = plan(planned, raster, weights)?;
        let mut source = r.open()?;
        let mut wsource = match weights {
            Some(w) => Some(
                inputs
                    .rasters
                    .get(w)
                    .ok_or_else(|| Error::Internal {
                        what: format!("raster `{w}` is not loaded"),
                    })?
                    .open()?,
            ),
            None => None,
        };
        let opts = ZonalOptions {
            needs: plan.needs,
            ..ZonalOptions::default()
        };
        let z = raster::zonal(
            source.as_mut(),
            wsource
                .as_deref_mut()
                .map(|w| w as &mut dyn raster::RasterSource),
            &polygons,
            &opts,
            progress,
        )?;
        if z.outside == polygons.len() && !polygons.is_empty() {
            return Err(Error::Input {
                input: format!("raster `{raster}`"),
                message: format!(
                    "no zone of `{zones_name}` meets raster {} (extent {:?} in {crs}): check the CRSs",
                    r.info.path.display(),
                    r.info.transform.extent(r.info.width, r.info.height)
                ),
            });
        }
        self.reports.push(PassReport {
            raster: raster.into(),
            weights: weights.map(str::to_string),
            zones: zones_name.into(),
            outside: z.outside,
            partly_outside: z.partly_outside,
            no_valid: z.no_valid,
        });
        let entry = (Arc::new(z), Arc::new(plan.predicate_of));
        self.done.insert(key, entry.clone());
        Ok(entry)
    }
}

/// Output columns of zonal indicator `i` from per-zone statistics:
/// (column name, values); `frac` gives one column per value.
pub(crate) fn columns(
    spec: &Spec,
    i: usize,
    stats: &[ZonalStats],
    predicate_of: &HashMap<usize, usize>,
) -> Vec<(String, Vec<Option<f64>>)> {
    let ind = spec.indicators[i].get_ref();
    let name = ind.name.clone();
    let col = |f: &dyn Fn(&ZonalStats) -> Option<f64>| stats.iter().map(f).collect::<Vec<_>>();
    let v = match ind.stat.unwrap_or_default() {
        Stat::Count => col(&|s| Some(s.count())),
        Stat::Sum => col(&|s| Some(s.sum())),
        Stat::Mean | Stat::Median => col(&|s| s.mean()),
        Stat::Min => col(&|s| s.min()),
        Stat::Max => col(&|s| s.max()),
        Stat::Stdev => col(&|s| s.stdev()),
        Stat::Majority => col(&|s| s.majority()),
        Stat::Minority => col(&|s| s.minority()),
        Stat::Variety => col(&|s| s.variety().map(|v| v as f64)),
        Stat::WeightedMean => col(&|s| s.weighted_mean()),
        Stat::Coverage => {
            let k = predicate_of.get(&i).copied().unwrap_or(0);
            col(&|s| s.coverage(k))
        }
        Stat::Frac => {
            let mut classes: Vec<f64> = stats
                .iter()
                .flat_map(|s| s.frac().into_iter().map(|(v, _)| v))
                .collect();
            classes.sort_by(f64::total_cmp);
            classes.dedup();
            return classes
                .into_iter()
                .map(|c| (format!("{name}_{}", class_label(c)), col(&|s| s.frac_of(c))))
                .collect();
        }
    };
    vec![(name, v)]
}

/// `11` for 11.0, `0p5` for 0.5, `m1` for −1: a column-name-safe label.
fn class_label(v: f64) -> String {
    let s = if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    };
    s.replace('-', "m").replace('.', "p")
}
