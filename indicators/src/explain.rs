//! `terrastat explain OUTDIR INDICATOR ZONE_ID`: how one published value
//! was computed. The run's catalog names the spec; the inputs are read
//! again (their SHA-256 compared with the lineage), the indicator is
//! recomputed for its zone layer with what it reads, and the zone's trace
//! lists the features used (row, `id`, attribution weight, value, weight
//! column, part inside the zone), those the filter left out, the operands
//! of a ratio, and the value next to the published one.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::eval::{Evaluator, Trace};
use crate::inputs::Inputs;
use crate::spec::Spec;

/// An explained value.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The zone's id, as given.
    pub zone: String,
    /// The catalog's definition of the indicator.
    pub definition: String,
    /// The spec and the line of the indicator.
    pub spec: String,
    /// The filter, the expression, the template, where they apply.
    pub filter: Option<String>,
    /// The expression of a ratio.
    pub expr: Option<String>,
    /// The template it comes from.
    pub template: Option<String>,
    /// Inputs whose SHA-256 differs from the run's lineage (then the
    /// recomputed value may differ from the published one).
    pub changed_inputs: Vec<String>,
    /// The published value (first output column), from `<zones>.parquet`.
    pub published: Option<f64>,
    /// A helper of a template: computed, not written (nothing published).
    pub hidden: bool,
    /// The recomputation and its trace.
    pub trace: Trace,
}

fn not_found(what: String) -> Error {
    Error::NotFound { what }
}

/// Explain the value of `indicator` for zone `zone_id` of the run in `out`
/// (zone layer `zones`, default: the first one the indicator is written for
/// that has this id).
pub fn explain(
    out: &Path,
    indicator: &str,
    zone_id: &str,
    zones: Option<&str>,
) -> Result<Explanation> {
    let cat_path = out.join("catalog.json");
    let text = std::fs::read_to_string(&cat_path).map_err(|source| Error::Io {
        path: cat_path.clone(),
        source,
    })?;
    let cat: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Core(terrastat_core::Error::format(&cat_path, e.to_string())))?;
    let entry = cat["indicators"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == indicator)
        .ok_or_else(|| {
            not_found(format!(
                "no indicator `{indicator}` in {}",
                cat_path.display()
            ))
        })?;
    let spec_path = cat["spec"]["path"]
        .as_str()
        .ok_or_else(|| not_found("the catalog names no spec".into()))?;
    let spec = Spec::load(Path::new(spec_path))?;
    let i = spec
        .indicators
        .iter()
        .position(|s| s.get_ref().name == indicator)
        .ok_or_else(|| {
            not_found(format!(
                "the spec {spec_path} has no indicator `{indicator}` any more"
            ))
        })?;
    // Candidate zone layers: those written for the indicator (helpers: all).
    let mut layers: Vec<String> = entry["outputs"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if layers.is_empty() {
        layers = cat["zones"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| z["name"].as_str().map(str::to_string))
            .collect();
    }
    if let Some(z) = zones {
        if !layers.iter().any(|l| l == z) {
            return Err(not_found(format!(
                "`{indicator}` is not written for zones `{z}` (zone layers: {})",
                layers.join(", ")
            )));
        }
        layers = vec![z.to_string()];
    }
    let inputs = Inputs::load(&spec, &terrastat_core::NoProgress)?;
    let changed_inputs = cat["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            inputs
                .files
                .iter()
                .find(|g| f["role"] == g.role.as_str())
                .is_some_and(|g| f["sha256"] != g.sha256.as_str())
        })
        .filter_map(|f| f["role"].as_str().map(str::to_string))
        .collect();
    for zl in &layers {
        let Some(z) = inputs.zones.get(zl) else {
            continue;
        };
        let keys = crate::tables::zone_keys(z.ids()?)?;
        let Some(index) = keys.iter().position(|k| k.as_deref() == Some(zone_id)) else {
            continue;
        };
        let plan = crate::plan::Plan::new(&spec)?;
        let mut ev = Evaluator::new(&plan, &inputs, &terrastat_core::NoProgress);
        let trace = ev.trace(i, zl, index)?;
        let published =
            published_value(out, zl, index, trace.columns.first().map(|c| c.0.as_str()))?;
        let ind = spec.indicators[i].get_ref();
        return Ok(Explanation {
            zone: zone_id.to_string(),
            definition: entry["definition"].as_str().unwrap_or_default().to_string(),
            spec: format!("{}:{}", spec.path.display(), spec.indicator_line(i)),
            filter: ind.filter.clone(),
            expr: ind.expr.clone(),
            template: ind.template.clone(),
            changed_inputs,
            published,
            hidden: ind.hidden == Some(true),
            trace,
        });
    }
    Err(not_found(format!(
        "no zone `{zone_id}` in zone layers {}",
        layers.join(", ")
    )))
}

/// Row `z` of column `col` of `<zones>.parquet` (`None`: null, or a helper
/// not written).
fn published_value(out: &Path, zl: &str, z: usize, col: Option<&str>) -> Result<Option<f64>> {
    let Some(col) = col else { return Ok(None) };
    let b = terrastat_core::io::read_table(&out.join(format!("{zl}.parquet")))?;
    let Some(a) = b.column_by_name(col) else {
        return Ok(None);
    };
    let values = terrastat_core::numeric_values(a.as_ref())
        .ok_or_else(|| not_found(format!("column `{col}` is not numeric")))?;
    Ok(values.get(z).copied().flatten())
}

impl Explanation {
    /// The explanation in words, for a terminal.
    pub fn to_text(&self, max_features: usize) -> String {
        let t = &self.trace;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} for zone {} of `{}` ({})",
            t.indicator, self.zone, t.zones, self.spec
        );
        let _ = writeln!(s, "  definition: {}", self.definition);
        if let Some(x) = &self.template {
            let _ = writeln!(s, "  template:   {x}");
        }
        if let Some(f) = &self.filter {
            let _ = writeln!(
                s,
                "  filter:     {f} ({} attributed features left out)",
                t.filtered_out
            );
        }
        if let (Some(l), Some(a)) = (&t.layer, &t.assign) {
            let _ = writeln!(s, "  layer:      {l}, features attributed by {a:?}");
        }
        if let Some(e) = &self.expr {
            let _ = writeln!(s, "  expression: {e}");
            for (n, v) in &t.operands {
                let _ = writeln!(s, "    {n} = {}", fmt(*v));
            }
        }
        if t.layer.is_some() && t.operands.is_empty() {
            let _ = writeln!(s, "  features used: {}", t.features.len());
            let _ = writeln!(
                s,
                "    {:>8}  {:>10}  {:>10}  {:>14}  {:>12}  {:>14}  other",
                "row", "id", "weight", "value", "weight col", "part inside"
            );
            for f in t.features.iter().take(max_features) {
                let mut other = String::new();
                if let Some(c) = &f.category {
                    other += &format!("category {c} ");
                }
                if let Some(r) = f.related {
                    other += &format!("related {r}");
                }
                let _ = writeln!(
                    s,
                    "    {:>8}  {:>10}  {:>10.6}  {:>14}  {:>12}  {:>14}  {other}",
                    f.row,
                    f.id.as_deref().unwrap_or("-"),
                    f.weight,
                    fmt(f.value),
                    fmt(f.weight_column),
                    match (f.measure_inside, f.measure) {
                        (Some(i), Some(m)) => format!("{i:.3}/{m:.3}"),
                        _ => "-".into(),
                    },
                );
            }
            if t.features.len() > max_features {
                let _ = writeln!(
                    s,
                    "    … {} more (--format json lists them all)",
                    t.features.len() - max_features
                );
            }
        }
        for (n, v) in &t.columns {
            let _ = writeln!(s, "  {n} = {}", fmt(*v));
        }
        let same = match (self.published, t.value) {
            (Some(a), Some(b)) => a.to_bits() == b.to_bits(),
            (None, None) => true,
            _ => false,
        };
        if self.hidden {
            let _ = writeln!(
                s,
                "  a helper: computed for the ratios that read it, not written"
            );
        } else {
            let _ = writeln!(
                s,
                "  published: {}  recomputed: {}  {}",
                fmt(self.published),
                fmt(t.value),
                if same { "(equal)" } else { "(DIFFERENT)" }
            );
        }
        if !self.changed_inputs.is_empty() {
            let _ = writeln!(
                s,
                "  inputs changed since the run: {}",
                self.changed_inputs.join(", ")
            );
        }
        s
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("null".into(), |x| format!("{x}"))
}
