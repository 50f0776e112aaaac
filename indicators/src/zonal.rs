//! Raster (`zonal`) indicators: the rasters a spec uses, their extents as
//! zone covers, and one pass per (raster, weights raster, zone layer) that
//! serves every zonal indicator of the spec on that pair.
//!
//! rasters of a spec (`load_rasters`: opened, checked, hashed), raster extents
//! as zone covers, `Passes` (one `core::raster::zonal` pass per (raster,
//! weights, zone layer), planned from every zonal indicator of the spec; zone
//! polygons in the raster's CRS: the zone file's own geometry when it is in
//! that CRS, else reprojected), output columns per statistic (`frac`: one per
//! class).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use geo::{Geometry, MultiPolygon};
use terrastat_core::raster::{
    self, Needs, RasterInfo, ValuePredicate, Zonal, ZonalOptions, ZonalStats,
};
use terrastat_core::{Crs, Progress, Zones};

use crate::error::{Error, Result};
use crate::eval::{sha256_file, InputFile};
use crate::expr::{Filter, Literal};
use crate::spec::{Kind, Spec, Stat};

/// A raster of the spec, checked at load time (opened, band present, CRS known).
#[derive(Debug, Clone)]
pub struct RasterInput {
    /// What the file says (with the spec's `crs` override applied).
    pub info: RasterInfo,
}

impl RasterInput {
    /// The raster's CRS, or an error telling how to give one.
    pub fn crs(&self, name: &str) -> Result<&Crs> {
        self.info.crs.as_ref().ok_or_else(|| {
            Error::Core(terrastat_core::Error::Crs(format!(
                "raster {}: the file has no CRS terrastat can name; set `crs = \"EPSG:XXXX\"` in `[rasters.{name}]`",
                self.info.path.display()
            )))
        })
    }

    fn open(&self) -> Result<Box<dyn raster::RasterSource>> {
        Ok(raster::open(
            &self.info.path,
            self.info.band,
            self.info.crs.clone(),
        )?)
    }
}

/// The names of the rasters a spec reads (by indicators and as zone covers).
fn used_rasters(spec: &Spec) -> std::collections::BTreeSet<&str> {
    let by_indicators = spec.indicators.iter().flat_map(|i| {
        let i = i.get_ref();
        i.raster.iter().chain(i.weights.iter()).map(String::as_str)
    });
    let by_zones = spec.zones.values().flat_map(|z| {
        let z = z.get_ref();
        z.cover.as_deref().into_iter().chain(z.extent.as_deref())
    });
    by_indicators
        .chain(by_zones)
        .filter(|n| spec.rasters.contains_key(*n))
        .collect()
}

/// Open every raster the spec uses (to fail early on a bad file, band or
/// CRS) and record each in the lineage.
pub(crate) fn load_rasters(
    spec: &Spec,
    files: &mut Vec<InputFile>,
) -> Result<BTreeMap<String, RasterInput>> {
    let mut out = BTreeMap::new();
    for name in used_rasters(spec) {
        let rs = &spec.rasters[name];
        let path = spec.resolve(&rs.path);
        let crs = rs
            .crs
            .as_deref()
            .map(Crs::parse)
            .transpose()
            .map_err(Error::Core)?;
        let source = raster::open(&path, rs.band, crs)?;
        let info = source.info().clone();
        files.push(InputFile {
            role: format!("rasters.{name}"),
            sha256: sha256_file(&path)?,
            path,
            crs: info
                .crs
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "unknown".into()),
            report: Default::default(),
        });
        out.insert(name.to_string(), RasterInput { info });
    }
    Ok(out)
}

/// Geometries from one CRS to another: as they are when the CRSs are the
/// same, with PROJ (the `proj` feature) otherwise.
fn transform(geoms: Vec<Geometry>, from: &Crs, to: &Crs, what: &str) -> Result<Vec<Geometry>> {
    if from.same_as(to) {
        return Ok(geoms);
    }
    #[cfg(feature = "proj")]
    {
        terrastat_core::reproject::reproject_geometries(&geoms, from, to).map_err(|(i, m)| {
            Error::Input {
                input: what.to_string(),
                message: match i {
                    Some(i) => format!("zone {i}: {m}"),
                    None => m,
                },
            }
        })
    }
    #[cfg(not(feature = "proj"))]
    {
        let _ = geoms;
        Err(Error::Core(terrastat_core::Error::Crs(format!(
            "`{what}`: {from} differs from {to}: reproject the data, or build terrastat with the `proj` feature"
        ))))
    }
}

/// The extent of a raster as a polygon in the working CRS (a zone cover).
pub(crate) fn extent_in(r: &RasterInput, name: &str, working: &Crs) -> Result<geo::MultiPolygon> {
    let info = &r.info;
    let rect = info.transform.extent(info.width, info.height);
    // Densified, so that a reprojected extent follows the curved edges.
    let (a, b) = (rect.min(), rect.max());
    let n = 64;
    let lerp = |p: f64, q: f64, t: usize| p + (q - p) * t as f64 / n as f64;
    let mut ring = Vec::with_capacity(4 * n + 1);
    ring.extend((0..n).map(|t| (lerp(a.x, b.x, t), a.y)));
    ring.extend((0..n).map(|t| (b.x, lerp(a.y, b.y, t))));
    ring.extend((0..n).map(|t| (lerp(b.x, a.x, t), b.y)));
    ring.extend((0..n).map(|t| (a.x, lerp(b.y, a.y, t))));
    ring.push((a.x, a.y));
    let poly = Geometry::Polygon(geo::Polygon::new(ring.into(), vec![]));
    let g = transform(vec![poly], r.crs(name)?, working, name)?;
    match g.into_iter().next() {
        Some(Geometry::Polygon(p)) => Ok(MultiPolygon(vec![p])),
        _ => Err(Error::Input {
            input: format!("raster `{name}`"),
            message: "the raster's extent cannot be reprojected".into(),
        }),
    }
}

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

fn predicate(ind: &crate::spec::IndicatorSpec) -> Result<ValuePredicate> {
    if let Some(values) = &ind.values {
        let values = values.clone();
        return Ok(Arc::new(move |v| values.contains(&v)));
    }
    let f = Filter::parse(ind.where_.as_deref().unwrap_or_default())?;
    Ok(Arc::new(move |v| {
        f.eval(&|name| (name == "value").then_some(Literal::Num(v))) == Some(true)
    }))
}

fn plan(spec: &Spec, raster: &str, weights: Option<&str>) -> Result<Plan> {
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
                needs.predicates.push(predicate(ind)?);
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
    inputs: &crate::eval::Inputs,
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
        spec: &Spec,
        inputs: &crate::eval::Inputs,
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
        let plan = plan(spec, raster, weights)?;
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

/// Check the raster keys of an indicator (`raster`, `weights`, `where`,
/// `values`): those of a `zonal` indicator, or (`zonal` false) their absence.
pub(crate) fn check_keys(cx: &crate::kinds::Check<'_>, zonal: bool) -> Result<()> {
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
pub(crate) fn definition(ind: &crate::spec::IndicatorSpec) -> String {
    use crate::spec::Stat;
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
