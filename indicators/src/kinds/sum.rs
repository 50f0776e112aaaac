//! `sum`: Σ `column` over the features attributed to each zone (nulls
//! ignored; area-weighted: Σ w·v).

use std::collections::BTreeMap;

use rayon::prelude::*;
use terrastat_core::ManyTerms;

use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `sum` kind.
pub(crate) struct Sum;

impl IndicatorKind for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
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
        Reads::Features(ind.assign.unwrap_or_default(), PerFeature::Column)
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
        ""
    }

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Σ `{}` over `{}` {}{}; nulls ignored. 0 when none.",
            w.column, w.layer, w.assign, w.filter
        )
    }
}

impl Accumulate for Sum {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(1, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        fold_values(cx, state)
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        let acc = state.into_sums()?;
        let v = Values::Float(acc.iter().map(|s| Some(s.value())).collect());
        Ok(vec![(cx.ind().name.clone(), v)])
    }
}

/// Add Σ w·v of each zone's features (`v` their `column`, `w` their
/// attribution weight; nulls skipped) to its one sum (sums, and densities
/// of a column).
pub(crate) fn fold_values(cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
    let col = cx.ind().column.as_deref().unwrap_or_default();
    let v = cx.numeric("column", col)?;
    let a = cx.attribution()?;
    let acc = state.sums_mut()?;
    acc.par_iter_mut().enumerate().for_each(|(z, s)| {
        let (fs, ws) = a.zone(z);
        if fs.is_empty() {
            return;
        }
        let mut t = ManyTerms::new();
        for (f, w) in fs.iter().zip(ws) {
            if let Some(x) = v[*f as usize] {
                t.add(x * w);
            }
        }
        t.add_to(s);
    });
    Ok(())
}
