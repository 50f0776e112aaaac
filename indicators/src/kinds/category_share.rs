//! `category_share`: for each value of a text `column`, the (weighted)
//! share of the features attributed to each zone that have it; one output
//! column `<name>_<value>` per value met.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use terrastat_core::ExactSum;

use super::{Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `category_share` kind.
pub(crate) struct CategoryShare;

impl IndicatorKind for CategoryShare {
    fn name(&self) -> &'static str {
        "category_share"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
            weight: true,
            ..Keys::FEATURES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, _: &Check<'_>) -> Result<()> {
        Ok(())
    }

    fn reads(&self, ind: &IndicatorSpec) -> Reads {
        Reads::Features(ind.assign.unwrap_or_default(), PerFeature::Category)
    }

    fn centroids_suffice(&self, ind: &IndicatorSpec) -> bool {
        ind.assign.unwrap_or_default() == Assign::Centroid
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::Accumulate(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        "fraction"
    }

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        let col = w.column;
        format!("For each value c of `{col}`, the share of `{}` {}{}{} with `{col}` = c; one column `{}_<c>` per value; null in zones without features.", w.layer, w.assign, w.filter, w.weight, ind.name)
    }
}

impl Accumulate for CategoryShare {
    fn state(
        &self,
        ind: &IndicatorSpec,
        nz: usize,
        seeds: &BTreeMap<String, Vec<String>>,
    ) -> Partial {
        Partial::Categories {
            names: seeds
                .get(&ind.name)
                .into_iter()
                .flatten()
                .map(|n| (n.clone(), vec![ExactSum::new(); nz]))
                .collect(),
            total: vec![ExactSum::new(); nz],
            seen: Default::default(),
        }
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        let fi = cx.features()?;
        let nz = cx.nz();
        let col = cx.ind().column.as_deref().unwrap_or_default();
        let cats = fi
            .layer
            .string_column(col)
            .map_err(|e| cx.error("column", e.to_string()))?;
        let mask = fi.mask();
        // Every category met (attributed to a zone or not) gets its column.
        let mut here: Vec<&str> = cats
            .iter()
            .enumerate()
            .filter(|(f, _)| mask.is_none_or(|m| m[*f]))
            .filter_map(|(_, c)| c.as_deref())
            .collect();
        here.sort_unstable();
        here.dedup();
        let Partial::Categories { names, total, seen } = state else {
            return Err(cx.internal("a category share without its state"));
        };
        for n in &here {
            if !names.contains_key(*n) {
                names.insert(n.to_string(), vec![ExactSum::new(); nz]);
            }
            if !seen.contains(*n) {
                seen.insert(n.to_string());
            }
        }
        let code: HashMap<&str, usize> = here.iter().enumerate().map(|(k, n)| (*n, k)).collect();
        let a = cx.attribution()?;
        let columns: Vec<&Vec<ExactSum>> = here.iter().map(|n| &names[*n]).collect();
        let mut rows: Vec<(Vec<ExactSum>, ExactSum)> = (0..nz)
            .into_par_iter()
            .map(|z| {
                let mut row: Vec<ExactSum> = columns.iter().map(|c| c[z].clone()).collect();
                let mut t = total[z].clone();
                let (fs, ws) = a.zone(z);
                for (f, w) in fs.iter().zip(ws) {
                    let f = *f as usize;
                    let (Some(c), Some(wc)) = (cats[f].as_deref(), fi.weight(f)) else {
                        continue;
                    };
                    row[code[c]] += w * wc;
                    t += w * wc;
                }
                (row, t)
            })
            .collect();
        for (k, n) in here.iter().enumerate() {
            if let Some(col) = names.get_mut(*n) {
                for (z, (row, _)) in rows.iter_mut().enumerate() {
                    col[z] = std::mem::take(&mut row[k]);
                }
            }
        }
        for (z, (_, t)) in rows.into_iter().enumerate() {
            total[z] = t;
        }
        Ok(())
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        let Partial::Categories { names, total, seen } = state else {
            return Err(cx.internal("a category share without its state"));
        };
        let name = cx.ind().name.clone();
        cx.record_categories(names.keys().cloned().collect(), seen);
        Ok(names
            .into_iter()
            .map(|(n, col)| {
                let v = col
                    .iter()
                    .zip(&total)
                    .map(|(x, t)| {
                        let t = t.value();
                        (t > 0.0).then(|| x.value() / t)
                    })
                    .collect();
                (format!("{name}_{}", sanitize(&n)), Values::Float(v))
            })
            .collect())
    }
}

/// Category values made safe for column names.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
