//! `count`: the number of features attributed to each zone (with
//! `assign = "area_weighted"`, the sum of their weights).

use std::collections::BTreeMap;

use rayon::prelude::*;
use terrastat_core::ManyTerms;

use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `count` kind.
pub(crate) struct Count;

impl IndicatorKind for Count {
    fn name(&self) -> &'static str {
        "count"
    }

    fn keys(&self) -> Keys {
        Keys::FEATURES
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, _: &Check<'_>) -> Result<()> {
        Ok(())
    }

    fn reads(&self, ind: &IndicatorSpec) -> Reads {
        Reads::Features(ind.assign.unwrap_or_default(), PerFeature::Nothing)
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
        "count"
    }

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Number of `{}` {}{}. 0 when none.",
            w.layer, w.assign, w.filter
        )
    }
}

impl Accumulate for Count {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(1, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        fold_weights(cx, state)
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        let acc = state.into_sums()?;
        let v = if cx.ind().assign.unwrap_or_default() == Assign::AreaWeighted {
            Values::Float(acc.iter().map(|c| Some(c.value())).collect())
        } else {
            Values::Int(acc.iter().map(|c| c.value() as i64).collect())
        };
        Ok(vec![(cx.ind().name.clone(), v)])
    }
}

/// Add the attribution weights of each zone's features to its one sum
/// (counts, and densities of features).
pub(crate) fn fold_weights(cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
    let a = cx.attribution()?;
    let acc = state.sums_mut()?;
    acc.par_iter_mut().enumerate().for_each(|(z, s)| {
        let ws = a.zone(z).1;
        if !ws.is_empty() {
            let mut t = ManyTerms::new();
            ws.iter().for_each(|w| t.add(*w));
            t.add_to(s);
        }
    });
    Ok(())
}
