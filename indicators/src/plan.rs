//! The plan of a run: a spec resolved once, before any feature is read.
//!
//! [`Plan::new`] parses every indicator's `filter`, `expr` and `where` once
//! (the executor and the kinds read them parsed, from the plan), orders the indicators so that a
//! ratio comes after what it reads, and notes for each one whether it folds
//! its features batch by batch (a streamable kind) and which feature
//! columns it reads. Every mode of the executor runs a plan: a whole run, a
//! streamed one under a memory budget, an incremental one over dirty boxes,
//! a partition's partials on Spark and the finish from them
//! ([`crate::stream`], [`crate::distributed`]); `explain` runs a plan
//! [`restricted`](Plan::restricted) to one indicator and what it reads.

use terrastat_core::Crs;

use crate::error::Result;
use crate::expr::{Arith, Filter, ZONE_PREFIX};
use crate::kinds::Evaluation;
use crate::spec::{IndicatorSpec, Spec};

/// One indicator of a [`Plan`], its expressions parsed.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The parsed `filter`.
    pub(crate) filter: Option<Filter>,
    /// Whether the filter reads the zone's columns (`zone.<column>`): then
    /// it is evaluated per feature and zone, in the attribution.
    pub(crate) zone_filter: bool,
    /// The parsed `expr` of a ratio.
    pub(crate) expr: Option<Arith>,
    /// The parsed `where` of a zonal coverage.
    pub(crate) where_: Option<Filter>,
    /// Whether the indicator reduces its layer's features through a
    /// [`crate::kinds::Partial`]: then batches of features (partitions of a
    /// streamed layer) are folded one after the other. Medians, quantiles
    /// and the union areas of `coverage` / `area` need every feature at once.
    pub(crate) streamable: bool,
    /// The columns of its layer it reads: `column`, `weight`, the filter's
    /// (those of the zones, `zone.<column>`, included), for the quality
    /// records' completeness.
    pub(crate) columns: Vec<String>,
}

/// A spec resolved for execution (see the module documentation).
#[derive(Debug, Clone)]
pub struct Plan<'s> {
    spec: &'s Spec,
    crs: Crs,
    steps: Vec<Step>,
    order: Vec<usize>,
}

impl<'s> Plan<'s> {
    /// Resolve `spec`: parse its expressions, order its indicators. Errors
    /// name the spec file, the indicator's line and the key.
    pub fn new(spec: &'s Spec) -> Result<Plan<'s>> {
        let steps = spec
            .indicators
            .iter()
            .enumerate()
            .map(|(i, s)| step(spec, i, s.get_ref()))
            .collect::<Result<Vec<_>>>()?;
        let order = order(spec, &steps)?;
        Ok(Plan {
            spec,
            crs: Crs::parse(&spec.crs)?,
            steps,
            order,
        })
    }

    /// The plan of indicator `target` alone, with the indicators it reads
    /// (a ratio's operands), in evaluation order.
    pub fn restricted(&self, target: usize) -> Plan<'s> {
        let mut needed = vec![false; self.steps.len()];
        if let Some(n) = needed.get_mut(target) {
            *n = true;
        }
        // The order puts what an indicator reads before it: walking it
        // backwards marks every operand of a needed indicator.
        let names = self.spec.indicator_indexes();
        for &i in self.order.iter().rev() {
            if !needed[i] {
                continue;
            }
            for n in self.steps[i].expr.iter().flat_map(Arith::names) {
                if let Some(&j) = names.get(n.as_str()) {
                    needed[j] = true;
                }
            }
        }
        Plan {
            spec: self.spec,
            crs: self.crs.clone(),
            steps: self.steps.clone(),
            order: self.order.iter().copied().filter(|&i| needed[i]).collect(),
        }
    }

    /// The spec planned.
    pub fn spec(&self) -> &'s Spec {
        self.spec
    }

    /// The working CRS, parsed.
    pub fn crs(&self) -> &Crs {
        &self.crs
    }

    /// Indicator indexes in evaluation order: every ratio after what it reads.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Indicator `i`'s step.
    pub(crate) fn step(&self, i: usize) -> &Step {
        &self.steps[i]
    }

    /// Whether indicator `i` folds its features batch by batch.
    pub(crate) fn streamable(&self, i: usize) -> bool {
        self.steps.get(i).is_some_and(|s| s.streamable)
    }
}

/// Whether `ind` reduces its layer's features through a partial (see
/// [`Step::streamable`]).
pub(crate) fn streamable(ind: &IndicatorSpec) -> bool {
    ind.layer.is_some() && matches!(ind.kind.imp().evaluation(ind), Evaluation::Accumulate(_))
}

fn step(spec: &Spec, i: usize, ind: &IndicatorSpec) -> Result<Step> {
    let parse_filter = |key: &str, src: &Option<String>| {
        src.as_deref()
            .map(Filter::parse)
            .transpose()
            .map_err(|e| spec.indicator_error(i, key, e.to_string()))
    };
    let filter = parse_filter("filter", &ind.filter)?;
    let where_ = parse_filter("where", &ind.where_)?;
    let expr = ind
        .expr
        .as_deref()
        .map(Arith::parse)
        .transpose()
        .map_err(|e| spec.indicator_error(i, "expr", e.to_string()))?;
    let filter_columns = filter.iter().flat_map(Filter::columns);
    let zone_filter = filter
        .iter()
        .flat_map(Filter::columns)
        .any(|c| c.starts_with(ZONE_PREFIX));
    let columns = ind
        .column
        .iter()
        .chain(ind.weight.iter())
        .cloned()
        .chain(filter_columns)
        .collect();
    Ok(Step {
        streamable: streamable(ind),
        filter,
        zone_filter,
        expr,
        where_,
        columns,
    })
}

/// Indicator indexes in an order where every ratio comes after what it
/// reads (depth first, in spec order); a cycle is an error.
fn order(spec: &Spec, steps: &[Step]) -> Result<Vec<usize>> {
    let index = spec.indicator_indexes();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; steps.len()];
    let mut order = Vec::with_capacity(steps.len());
    // Iterative depth-first search: (indicator, its operands not yet visited).
    for root in 0..steps.len() {
        let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
        let operands = |i: usize| -> Vec<usize> {
            let mut v: Vec<usize> = steps[i]
                .expr
                .iter()
                .flat_map(Arith::names)
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect();
            v.reverse();
            v
        };
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        stack.push((root, operands(root)));
        while let Some((i, pending)) = stack.last_mut() {
            let i = *i;
            match pending.pop() {
                Some(j) => match mark[j] {
                    Mark::Done => {}
                    Mark::Open => {
                        return Err(spec.indicator_error(
                            j,
                            "expr",
                            "ratios refer to each other in a cycle",
                        ))
                    }
                    Mark::New => {
                        mark[j] = Mark::Open;
                        stack.push((j, operands(j)));
                    }
                },
                None => {
                    mark[i] = Mark::Done;
                    order.push(i);
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
crs = "EPSG:2154"
[layers.b]
path = "b.parquet"
[zones.z]
path = "z.parquet"
id = "id"
[[indicators]]
name = "share"
kind = "ratio"
expr = "part / n"
[[indicators]]
name = "n"
kind = "count"
layer = "b"
[[indicators]]
name = "other"
kind = "sum"
layer = "b"
column = "v"
filter = "year < 1975 and zone.dep = '92'"
[[indicators]]
name = "part"
kind = "count"
layer = "b"
filter = "year < 1975"
[[indicators]]
name = "pct"
kind = "ratio"
expr = "share * 100"
"#;

    fn spec(text: &str) -> crate::Result<Spec> {
        Spec::from_str(text, std::path::Path::new("/tmp/spec.toml"))
    }

    #[test]
    fn operands_come_first_and_restriction_keeps_only_them() {
        let spec = spec(SPEC).unwrap();
        let plan = Plan::new(&spec).unwrap();
        let names = |p: &Plan<'_>| -> Vec<String> {
            p.order()
                .iter()
                .map(|&i| spec.indicators[i].get_ref().name.clone())
                .collect()
        };
        assert_eq!(names(&plan), ["n", "part", "share", "other", "pct"]);
        let pct = spec.indicator_indexes()["pct"];
        assert_eq!(names(&plan.restricted(pct)), ["n", "part", "share", "pct"]);
        let other = spec.indicator_indexes()["other"];
        assert_eq!(names(&plan.restricted(other)), ["other"]);
    }

    #[test]
    fn filters_are_parsed_once_with_their_columns() {
        let spec = spec(SPEC).unwrap();
        let plan = Plan::new(&spec).unwrap();
        let other = plan.step(spec.indicator_indexes()["other"]);
        assert!(other.zone_filter);
        assert_eq!(other.columns, ["v", "year", "zone.dep"]);
        assert!(other.streamable);
        let part = plan.step(spec.indicator_indexes()["part"]);
        assert!(!part.zone_filter && part.filter.is_some());
        let share = plan.step(spec.indicator_indexes()["share"]);
        assert!(!share.streamable && share.expr.is_some());
    }

    #[test]
    fn a_cycle_of_ratios_is_an_error_naming_the_line() {
        let text = SPEC.replace("expr = \"part / n\"", "expr = \"pct / n\"");
        let err = spec(&text).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        assert!(err.contains("/tmp/spec.toml:"), "{err}");
    }
}
