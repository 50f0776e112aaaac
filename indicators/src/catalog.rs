//! The catalog: every indicator's definition, unit, sources and lineage,
//! written as `catalog.json` beside the outputs.
//!
//! definitions in words and formulas, labels, units, themes, template ids,
//! hidden helpers, the zone and table columns ratios read: `catalog.json`.

use serde::Serialize;

use crate::eval::ZoneTable;
use crate::lineage::InputFile;
use crate::spec::{Assign, IndicatorSpec, Kind, Spec};
use crate::templates::Texts;

/// One indicator in the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct IndicatorEntry {
    /// Name (output column, or prefix for `category_share`).
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// The exact definition, in words and formula.
    pub definition: String,
    /// Unit (see [`crate::units`]).
    pub unit: String,
    /// Label, in English and French (English defaults to the name).
    pub label: Texts,
    /// Description from the spec or the template, in English and French.
    pub description: Texts,
    /// Theme.
    pub theme: Option<String>,
    /// Search keywords.
    pub keywords: Vec<String>,
    /// The template it comes from (`use = "…"`).
    pub template: Option<String>,
    /// A helper: computed for ratios, not written.
    pub hidden: bool,
    /// Zone columns a ratio reads.
    pub zone_columns: Vec<String>,
    /// Table columns a ratio reads (`<table>.<column>`).
    pub table_columns: Vec<String>,
    /// Source layers (the layer, then `other`).
    pub sources: Vec<String>,
    /// Attribution of features to zones, where it applies.
    pub assign: Option<Assign>,
    /// Filter applied before attribution.
    pub filter: Option<String>,
    /// Attribute column.
    pub column: Option<String>,
    /// Weight column.
    pub weight: Option<String>,
    /// Expression of a ratio.
    pub expr: Option<String>,
    /// Line of the spec where it is defined.
    pub spec_line: usize,
    /// Output columns, by zone layer.
    pub outputs: std::collections::BTreeMap<String, Vec<String>>,
    /// Publication thresholds that apply (see [`crate::quality`]).
    pub thresholds: Option<crate::quality::Thresholds>,
    /// Quality summary by zone layer: zones, zones withheld, smallest and
    /// mean completeness and coverage, features used.
    pub quality: std::collections::BTreeMap<String, serde_json::Value>,
    /// Every input file the values depend on (its layers, other layer,
    /// rasters, zone files, tables, and those of the indicators a ratio
    /// reads), with its SHA-256: the lineage down to the files.
    pub lineage: Vec<Lineage>,
}

/// One input file an indicator depends on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lineage {
    /// `layers.<name>`, `zones.<name>`, `rasters.<name>`, `tables.<name>`.
    pub role: String,
    /// The file (or directory of partitions).
    pub path: std::path::PathBuf,
    /// Its SHA-256.
    pub sha256: String,
}

/// The input roles indicator `i` reads directly, and the indicators it reads.
fn direct_roles(spec: &Spec, ind: &IndicatorSpec, zones: &[String]) -> (Vec<String>, Vec<String>) {
    let mut roles: Vec<String> = ind
        .layer
        .iter()
        .chain(ind.other.iter())
        .map(|l| format!("layers.{l}"))
        .chain(
            ind.raster
                .iter()
                .chain(ind.weights.iter())
                .map(|r| format!("rasters.{r}")),
        )
        .chain(zones.iter().map(|z| format!("zones.{z}")))
        .collect();
    // A layer's declared extent (quality coverage).
    if let Some(e) = ind
        .layer
        .as_ref()
        .and_then(|l| spec.layers.get(l))
        .and_then(|l| l.extent.as_ref())
    {
        roles.push(format!("layers.{e}"));
        roles.push(format!("zones.{e}"));
    }
    let mut reads = Vec::new();
    if let Some(a) = ind
        .expr
        .as_deref()
        .and_then(|e| crate::expr::Arith::parse(e).ok())
    {
        for n in a.names() {
            match n.split_once('.') {
                Some((t, _)) if spec.tables.contains_key(t) => roles.push(format!("tables.{t}")),
                _ => reads.push(n),
            }
        }
    }
    (roles, reads)
}

/// The whole catalog of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    /// `terrastat` and its version.
    pub engine: serde_json::Value,
    /// Title of the spec.
    pub title: Option<String>,
    /// The spec file and its SHA-256.
    pub spec: serde_json::Value,
    /// Working CRS.
    pub crs: String,
    /// Run facts: start time (UTC), duration, threads.
    pub run: serde_json::Value,
    /// Input files with hashes and read reports.
    pub inputs: Vec<InputFile>,
    /// Zone layers and their output files.
    pub zones: Vec<serde_json::Value>,
    /// Indicators.
    pub indicators: Vec<IndicatorEntry>,
}

fn default_unit(ind: &IndicatorSpec) -> &'static str {
    ind.kind.imp().default_unit(ind)
}

/// The definition of an indicator, in words, as written in the catalog.
pub fn definition(ind: &IndicatorSpec) -> String {
    let layer = ind.layer.as_deref().unwrap_or("?");
    let col = ind.column.as_deref().unwrap_or("?");
    let assign = match ind.assign.unwrap_or_default() {
        Assign::Centroid => "features whose centroid lies in the zone (a centroid on a shared boundary goes to the first zone in zone order)",
        Assign::Intersects => "features that intersect the zone (each counted once in every zone it touches)",
        Assign::AreaWeighted => "features weighted by measure(f ∩ z) / measure(f) (area for polygons, length for lines, containment for points)",
    };
    let filter = ind
        .filter
        .as_ref()
        .map(|f| format!(", among features where `{f}`"))
        .unwrap_or_default();
    let weight = ind
        .weight
        .as_ref()
        .map(|w| format!(", weighted by `{w}`"))
        .unwrap_or_default();
    let other = ind.other.as_deref().unwrap_or("?");
    let words = crate::kinds::Words {
        layer,
        column: col,
        other,
        assign,
        filter: &filter,
        weight: &weight,
    };
    ind.kind.imp().definition(ind, &words)
}

/// The input files indicator `i` depends on, through the indicators it reads.
fn lineage(spec: &Spec, i: usize, inputs: &[InputFile]) -> Vec<Lineage> {
    let zones: Vec<String> = spec.indicators[i]
        .get_ref()
        .zone_names(&spec.zones)
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut roles = std::collections::BTreeSet::new();
    let mut todo = vec![i];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(k) = todo.pop() {
        if !seen.insert(k) {
            continue;
        }
        let (direct, reads) = direct_roles(spec, spec.indicators[k].get_ref(), &zones);
        roles.extend(direct);
        for n in reads {
            if let Some(j) = spec.indicators.iter().position(|s| s.get_ref().name == n) {
                todo.push(j);
            }
        }
    }
    let mut out: Vec<Lineage> = inputs
        .iter()
        .filter(|f| roles.contains(&f.role))
        .map(|f| Lineage {
            role: f.role.clone(),
            path: f.path.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    out.sort();
    out
}

/// Build the catalog of a run.
pub fn build(
    spec: &Spec,
    spec_sha: &str,
    inputs: &[InputFile],
    tables: &[ZoneTable],
    run: serde_json::Value,
    zones: Vec<serde_json::Value>,
) -> Catalog {
    let indicators = spec
        .indicators
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let ind = s.get_ref();
            let names: Vec<String> = ind
                .expr
                .as_deref()
                .and_then(|e| crate::expr::Arith::parse(e).ok())
                .map(|a| a.names().into_iter().collect())
                .unwrap_or_default();
            let is_indicator = |n: &str| spec.indicators.iter().any(|j| j.get_ref().name == n);
            let (table_columns, zone_columns): (Vec<String>, Vec<String>) = names
                .into_iter()
                .filter(|n| !is_indicator(n))
                .partition(|n| {
                    n.split_once('.')
                        .is_some_and(|(t, _)| spec.tables.contains_key(t))
                });
            let mut label = ind.label.clone().unwrap_or_default();
            if label.en.is_none() {
                label.en = Some(ind.name.clone());
            }
            IndicatorEntry {
                name: ind.name.clone(),
                kind: ind.kind,
                definition: definition(ind),
                unit: ind
                    .unit
                    .clone()
                    .unwrap_or_else(|| default_unit(ind).to_string()),
                label,
                description: ind.description.clone().unwrap_or_default(),
                theme: ind.theme.clone(),
                keywords: ind.keywords.clone().unwrap_or_default(),
                template: ind.template.clone(),
                hidden: ind.hidden == Some(true),
                zone_columns,
                table_columns,
                sources: ind
                    .layer
                    .iter()
                    .chain(ind.other.iter())
                    .chain(ind.raster.iter())
                    .chain(ind.weights.iter())
                    .cloned()
                    .collect(),
                assign: ind
                    .kind
                    .takes_assign()
                    .then(|| ind.assign.unwrap_or_default()),
                filter: ind.filter.clone(),
                column: ind.column.clone(),
                weight: ind.weight.clone(),
                expr: ind.expr.clone(),
                spec_line: spec.indicator_line(i),
                outputs: tables
                    .iter()
                    .filter_map(|t| {
                        t.columns
                            .get(&ind.name)
                            .map(|c| (t.zones.clone(), c.clone()))
                    })
                    .collect(),
                thresholds: {
                    let t = ind
                        .quality
                        .clone()
                        .unwrap_or_default()
                        .over(&spec.quality.clone().unwrap_or_default());
                    (t != Default::default()).then_some(t)
                },
                quality: tables
                    .iter()
                    .filter_map(|t| {
                        t.quality_summary
                            .get(&ind.name)
                            .map(|q| (t.zones.clone(), q.clone()))
                    })
                    .collect(),
                lineage: lineage(spec, i, inputs),
            }
        })
        .collect();
    Catalog {
        engine: serde_json::json!({"name": "terrastat", "version": terrastat_core::VERSION}),
        title: spec.title.clone(),
        spec: serde_json::json!({"path": spec.path, "sha256": spec_sha}),
        crs: spec.crs.clone(),
        run,
        inputs: inputs.to_vec(),
        zones,
        indicators,
    }
}
